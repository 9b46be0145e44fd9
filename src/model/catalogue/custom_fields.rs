//! An entity's `customFieldDefinitions`, validated against its scopes
//! when the catalogue is loaded.

use super::format::RawCustomField;
use super::load::check_key;
use super::{CatalogueError, EntityDef};
use crate::model::custom_fields::{CustomFieldDef, FieldType, DEFAULT_CUSTOM_FIELD_SCOPE};

impl EntityDef {
    /// Validates one `customFieldDefinitions` entry against the entity's
    /// scopes and the definitions before it.
    pub(super) fn build_custom_field(
        &self,
        raw: RawCustomField,
        before: &[CustomFieldDef],
    ) -> Result<CustomFieldDef, CatalogueError> {
        check_key("custom field key", &raw.key)?;
        let invalid = |reason| {
            Err(CatalogueError::InvalidCustomField {
                entity: self.key.clone(),
                field: raw.key.clone(),
                reason,
            })
        };
        if before.iter().any(|d| d.key == raw.key) {
            return Err(CatalogueError::DuplicateCustomField {
                entity: self.key.clone(),
                field: raw.key.clone(),
            });
        }
        let scope = raw.scope.as_deref().unwrap_or(DEFAULT_CUSTOM_FIELD_SCOPE);
        if self.scope(scope).is_none() {
            return Err(CatalogueError::UnknownCustomFieldScope {
                entity: self.key.clone(),
                field: raw.key.clone(),
                scope: scope.to_owned(),
            });
        }
        match (raw.field_type, raw.options.is_empty()) {
            (FieldType::Select, true) => return invalid("a SELECT field needs options"),
            (FieldType::Select, false) | (_, true) => {}
            (_, false) => return invalid("only a SELECT field has options"),
        }
        if (1..raw.options.len()).any(|i| raw.options[..i].contains(&raw.options[i])) {
            return invalid("an option is listed twice");
        }
        let mut def = CustomFieldDef::new(&raw.key, scope, raw.field_type)
            .options(raw.options.iter().cloned())
            .sort_order(raw.sort_order);
        if let Some(label) = &raw.label {
            def = def.label(label);
        }
        if raw.is_required {
            def = def.required();
        }
        Ok(def)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::catalogue::load::tests::{base, error_of};
    use crate::model::Catalogue;

    fn load(doc: &serde_json::Value) -> Catalogue {
        Catalogue::from_json(&doc.to_string()).unwrap()
    }

    fn with_custom_fields(fields: serde_json::Value) -> serde_json::Value {
        let mut doc = base();
        doc["entities"][0]["customFieldDefinitions"] = fields;
        doc
    }

    #[test]
    fn custom_fields_are_kept_in_scope_then_sort_order() {
        let doc = with_custom_fields(serde_json::json!([
            { "key": "nickname", "label": "Nickname", "scope": "anagraphic", "type": "TEXT", "sortOrder": 5 },
            { "key": "blood_type", "scope": "sensitive", "type": "SELECT", "options": ["A+", "O-"],
              "isRequired": true },
            { "key": "shoe_size", "scope": "anagraphic", "type": "NUMBER", "sortOrder": -1 }
        ]));
        let catalogue = load(&doc);
        let fields = catalogue.entity("students").unwrap().custom_fields();
        let listed: Vec<(&str, &str, i64, bool)> = fields
            .iter()
            .map(|d| {
                (
                    d.scope.as_str(),
                    d.key.as_str(),
                    d.sort_order,
                    d.is_required,
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("anagraphic", "shoe_size", -1, false),
                ("anagraphic", "nickname", 5, false),
                ("sensitive", "blood_type", 0, true),
            ]
        );
        // The label defaults to the key; options are kept.
        let blood = fields.get("sensitive", "blood_type").unwrap();
        assert_eq!(blood.label, "blood_type");
        assert_eq!(blood.options, ["A+", "O-"]);
        assert_eq!(
            fields.get("anagraphic", "nickname").unwrap().label,
            "Nickname"
        );
        // An entity without definitions has none.
        assert!(load(&base())
            .entity("students")
            .unwrap()
            .custom_fields()
            .is_empty());
    }

    #[test]
    fn custom_field_errors_are_named() {
        let cases = [
            (
                serde_json::json!([{ "key": "notes", "type": "TEXT" }]),
                "custom field `students.notes` belongs to unknown scope `others`",
            ),
            (
                serde_json::json!([{ "key": "x", "scope": "medical", "type": "TEXT" }]),
                "custom field `students.x` belongs to unknown scope `medical`",
            ),
            (
                serde_json::json!([
                    { "key": "x", "scope": "anagraphic", "type": "TEXT" },
                    { "key": "x", "scope": "sensitive", "type": "NUMBER" }
                ]),
                "custom field `x` is declared twice in entity `students`",
            ),
            (
                serde_json::json!([{ "key": "x", "scope": "anagraphic", "type": "SELECT" }]),
                "custom field `students.x`: a SELECT field needs options",
            ),
            (
                serde_json::json!([{ "key": "x", "scope": "anagraphic", "type": "TEXT", "options": ["a"] }]),
                "custom field `students.x`: only a SELECT field has options",
            ),
            (
                serde_json::json!([{ "key": "x", "scope": "anagraphic", "type": "SELECT",
                                     "options": ["a", "b", "a"] }]),
                "custom field `students.x`: an option is listed twice",
            ),
            (
                serde_json::json!([{ "key": "blood type", "scope": "anagraphic", "type": "TEXT" }]),
                "invalid custom field key `blood type`: only ASCII letters, digits, `_` and `-` are allowed",
            ),
        ];
        for (fields, message) in cases {
            assert_eq!(
                error_of(&with_custom_fields(fields.clone())),
                message,
                "{fields}"
            );
        }
        // Shape errors: an unknown key (a misspelt `isRequired` must not
        // silently make a field optional), an unknown type, no type.
        for fields in [
            serde_json::json!([{ "key": "x", "scope": "anagraphic", "type": "TEXT", "required": true }]),
            serde_json::json!([{ "key": "x", "scope": "anagraphic", "type": "COLOUR" }]),
            serde_json::json!([{ "key": "x", "scope": "anagraphic" }]),
            serde_json::json!({ "key": "x" }),
        ] {
            let error = error_of(&with_custom_fields(fields.clone()));
            assert!(
                error.starts_with("invalid catalogue json"),
                "{fields}: {error}"
            );
        }
    }
}
