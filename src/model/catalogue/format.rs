//! The catalogue document as serde reads it, before validation.
//!
//! The raw structs mirror the JSON format of the [module docs](super) and
//! reject unknown keys. [`Object`] and [`Entries`] close two gaps of derived
//! deserialization that would otherwise let a catalogue mean something other
//! than what it says.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::model::access::ScopeAccess;
use crate::model::custom_fields::FieldType;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalogue {
    #[serde(default)]
    pub(super) entities: Vec<Object<RawEntity>>,
    #[serde(default)]
    pub(super) roles: Vec<Object<RawRole>>,
}

/// The layered document of [`tenants`](super::tenants): a catalogue with
/// an optional `version` and per-tenant role sets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenantCatalogues {
    #[serde(default)]
    pub(super) version: Option<String>,
    #[serde(default)]
    pub(super) entities: Vec<Object<RawEntity>>,
    #[serde(default)]
    pub(super) roles: Vec<Object<RawRole>>,
    #[serde(default)]
    pub(super) tenants: Entries<Object<RawTenant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    #[serde(default)]
    pub(super) roles: Vec<Object<RawRole>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntity {
    pub(super) key: String,
    #[serde(default)]
    pub(super) label: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) scopes: Vec<Object<RawScope>>,
    #[serde(default)]
    pub(super) actions: Vec<Object<RawAction>>,
    #[serde(default, rename = "customFieldDefinitions")]
    pub(super) custom_fields: Vec<Object<RawCustomField>>,
}

/// One entry of an entity's `customFieldDefinitions`, in the shape the
/// `GET /permissions` document lists it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawCustomField {
    pub(super) key: String,
    #[serde(default)]
    pub(super) label: Option<String>,
    #[serde(default)]
    pub(super) scope: Option<String>,
    #[serde(rename = "type")]
    pub(super) field_type: FieldType,
    #[serde(default)]
    pub(super) options: Vec<String>,
    #[serde(default)]
    pub(super) is_required: bool,
    #[serde(default)]
    pub(super) sort_order: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScope {
    pub(super) key: String,
    #[serde(default)]
    pub(super) label: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) fields: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    pub(super) key: String,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) requires: Entries<ScopeAccess>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub(super) id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) scopes: Entries<Entries<ScopeAccess>>,
    #[serde(default)]
    pub(super) actions: Vec<String>,
    #[serde(default)]
    pub(super) permissions: Vec<String>,
    #[serde(default)]
    pub(super) modules: Vec<String>,
}

/// A struct that must be written as a JSON object.
///
/// Derived struct impls also accept a JSON array of the field values in
/// order, so `[[], []]` would be an empty catalogue; a catalogue is easier
/// to audit when every value is labelled.
pub(super) struct Object<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<fn() -> T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a json object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// A JSON object read as its entries in document order, duplicates kept.
///
/// Deserializing into a map would keep only the last of two equal keys, so
/// `{"sensitive": "WRITE", "sensitive": "NONE"}` would quietly mean NONE;
/// keeping every entry lets validation reject the repetition instead.
pub(super) struct Entries<V>(pub(super) Vec<(String, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<fn() -> V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a json object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // The size hint comes from the input, so it is capped.
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = map.next_entry::<String, V>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalogue::load::tests::{base, error_of};
    use crate::model::catalogue::{Catalogue, CatalogueError};

    #[test]
    fn object_refuses_the_array_form_of_a_struct() {
        let raw: Object<RawScope> = serde_json::from_str(r#"{"key": "anagraphic"}"#).unwrap();
        assert_eq!(raw.0.key, "anagraphic");
        // `[key, label, description, fields]` fits a derived impl.
        let array = r#"["anagraphic", null, null, []]"#;
        assert!(serde_json::from_str::<RawScope>(array).is_ok());
        assert!(serde_json::from_str::<Object<RawScope>>(array).is_err());
    }

    #[test]
    fn entries_keep_repeated_keys_in_document_order() {
        let Entries(entries): Entries<ScopeAccess> = serde_json::from_str(
            r#"{"sensitive": "WRITE", "family": "READ", "sensitive": "NONE"}"#,
        )
        .unwrap();
        assert_eq!(
            entries,
            [
                ("sensitive".to_owned(), ScopeAccess::Write),
                ("family".to_owned(), ScopeAccess::Read),
                ("sensitive".to_owned(), ScopeAccess::None),
            ]
        );
        assert!(serde_json::from_str::<Entries<ScopeAccess>>("[]").is_err());
        assert!(Entries::<ScopeAccess>::default().0.is_empty());
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let err =
            Catalogue::from_json("{\n  \"entities\": [\n    {\"key\": }\n  ]\n}").unwrap_err();
        let CatalogueError::Json(inner) = &err else {
            panic!("expected a json error, got {err:?}");
        };
        assert_eq!((inner.line(), inner.column()), (3, 13));
        assert_eq!(
            err.to_string(),
            "invalid catalogue json: expected value at line 3 column 13"
        );
    }

    #[test]
    fn wrong_shape_is_a_json_error_with_position() {
        let err = Catalogue::from_json(r#"{"roles": [{"id": "admin"}]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid catalogue json: missing field `name` at line 1 column 26"
        );
        let err = Catalogue::from_json(r#"{"entities": [], "rolez": []}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid catalogue json: unknown field `rolez`"),
            "{err}"
        );
    }

    #[test]
    fn misspelt_requires_is_rejected_not_ignored() {
        let mut doc = base();
        doc["entities"][0]["actions"][0] = serde_json::json!({
            "key": "create", "require": { "anagraphic": "WRITE" }
        });
        assert!(error_of(&doc).starts_with("invalid catalogue json: unknown field `require`"));
    }

    #[test]
    fn unknown_access_level_is_rejected() {
        let mut doc = base();
        doc["roles"][0]["scopes"]["students"]["anagraphic"] = "ADMIN".into();
        assert!(error_of(&doc).starts_with("invalid catalogue json: unknown variant `ADMIN`"));
    }

    #[test]
    fn repeated_json_keys_are_rejected_not_collapsed() {
        let text = base().to_string().replace(
            r#""requires":{"anagraphic":"WRITE","sensitive":"WRITE"}"#,
            r#""requires":{"anagraphic":"WRITE","anagraphic":"READ"}"#,
        );
        assert_eq!(
            Catalogue::from_json(&text).unwrap_err().to_string(),
            "action `students.create` lists scope `anagraphic` twice"
        );
        let text = base().to_string().replace(
            r#""scopes":{"students":{"anagraphic":"WRITE","sensitive":"WRITE"}}"#,
            r#""scopes":{"students":{"sensitive":"WRITE","sensitive":"NONE"}}"#,
        );
        assert_eq!(
            Catalogue::from_json(&text).unwrap_err().to_string(),
            "role `admin` grants scope `students.sensitive` twice"
        );
        let text = base().to_string().replace(
            r#""scopes":{"students":{"anagraphic":"WRITE","sensitive":"WRITE"}}"#,
            r#""scopes":{"students":{"anagraphic":"WRITE"},"students":{"sensitive":"WRITE"}}"#,
        );
        assert_eq!(
            Catalogue::from_json(&text).unwrap_err().to_string(),
            "role `admin` lists entity `students` twice in its scopes"
        );
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "null",
            "[]",
            "{\"entities\": {}}",
            "{\"entities\": [null]}",
            "{\"roles\": [{\"id\": 1, \"name\": \"x\"}]}",
            "{\"roles\": [{\"id\": \"a\", \"name\": \"x\", \"scopes\": []}]}",
            "\u{feff}{}",
            "[[], []]",
            "{\"entities\": [[\"students\"]]}",
            "{\"entities\": [{\"key\": \"e\", \"actions\": [{\"key\": \"a\", \"requires\": 1}]}]}",
        ] {
            assert!(Catalogue::from_json(text).is_err(), "{text:?}");
            assert!(Catalogue::from_slice(text.as_bytes()).is_err(), "{text:?}");
        }
        assert!(Catalogue::from_slice(&[0xff, 0xfe, b'{']).is_err());
    }
}
