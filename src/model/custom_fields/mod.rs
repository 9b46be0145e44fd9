//! Custom field definitions (the `customFieldDefinitions` an IAM lists per
//! entity) and a validator for the values a write body carries.
//!
//! A school adds fields of its own (`blood_type`, `nickname`) and assigns
//! each to a scope. Their values travel inside that scope group as
//! `customFields`, so FieldFilter and FieldWriteGuard already govern them
//! with their group: no extra permission check exists or is needed. What
//! is left is validating the values, which the service does in its handler
//! with [`CustomFieldDefinitions::validate_body`]:
//!
//! - the type: TEXT → string, NUMBER → number, DATE → ISO `YYYY-MM-DD`
//!   (a real calendar date), BOOLEAN → boolean, SELECT → one of the
//!   options;
//! - required fields must be present on create ([`WriteMode::Create`]) and
//!   are not demanded on update ([`WriteMode::Update`], PATCH semantics);
//!   `null` clears an optional field and is refused for a required one;
//! - a key with no definition in that scope is refused.
//!
//! The error names the field, so the client can fix its input. With the
//! `axum` feature [`CustomFieldError`] is an `IntoResponse` (400
//! `INVALID_BODY`), and it converts into a
//! [`Rejection`](crate::rejection::Rejection) for other stacks.
//!
//! # Example
//!
//! ```
//! use iam_guard::model::custom_fields::{
//!     CustomFieldDef, CustomFieldDefinitions, FieldType, WriteMode,
//! };
//! use serde_json::json;
//!
//! // The IAM's definitions, as its `customFieldDefinitions` lists them.
//! let defs = CustomFieldDefinitions::from_json(&json!([
//!     { "key": "nickname", "label": "Nickname", "scope": "anagraphic", "type": "TEXT" },
//!     { "key": "blood_type", "label": "Blood Type", "scope": "sensitive", "type": "SELECT",
//!       "options": ["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"], "isRequired": true },
//! ]))
//! .unwrap();
//!
//! let body = json!({
//!     "anagraphic": { "firstName": "Marco", "customFields": { "nickname": "Marc" } },
//!     "sensitive": { "customFields": { "blood_type": "O+" } },
//! });
//! assert!(defs.validate_body(&body, WriteMode::Create).is_ok());
//!
//! // A PATCH need not repeat the required field...
//! let patch = json!({ "anagraphic": { "customFields": { "nickname": "Gigi" } } });
//! assert!(defs.validate_body(&patch, WriteMode::Update).is_ok());
//! // ...but a create must carry it, and the error names it.
//! let err = defs.validate_body(&patch, WriteMode::Create).unwrap_err();
//! assert_eq!(err.field(), "blood_type");
//! assert_eq!(err.to_string(), "custom field `sensitive.blood_type` is required");
//!
//! // Definitions can also be built in code.
//! let defs = CustomFieldDefinitions::new([CustomFieldDef::new("enrolled_on", "others", FieldType::Date)]);
//! let bad = json!({ "others": { "customFields": { "enrolled_on": "2026-02-30" } } });
//! assert!(defs.validate_body(&bad, WriteMode::Update).is_err());
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Catalogue, CompiledPermissions};

pub use error::{CustomFieldError, CustomFieldErrorKind};

mod error;

/// The type of a custom field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum FieldType {
    /// A JSON string.
    Text,
    /// A JSON number.
    Number,
    /// A string holding an ISO calendar date, `YYYY-MM-DD`.
    Date,
    /// `true` or `false`.
    Boolean,
    /// A string equal to one of the definition's options.
    Select,
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "TEXT",
            Self::Number => "NUMBER",
            Self::Date => "DATE",
            Self::Boolean => "BOOLEAN",
            Self::Select => "SELECT",
        })
    }
}

/// The scope of a definition that names none: the catch-all `others`
/// group.
pub const DEFAULT_CUSTOM_FIELD_SCOPE: &str = "others";

fn default_scope() -> String {
    DEFAULT_CUSTOM_FIELD_SCOPE.to_owned()
}

/// One custom field definition, as the IAM's `customFieldDefinitions`
/// lists it: `{"key", "label", "scope", "type", "options", "isRequired",
/// "sortOrder"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CustomFieldDef {
    /// The key inside `customFields`, such as `blood_type`.
    pub key: String,
    /// The display name.
    #[serde(default)]
    pub label: String,
    /// The scope group the field belongs to (default `others`).
    #[serde(default = "default_scope")]
    pub scope: String,
    /// The value's type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The allowed values of a SELECT field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Whether a create must carry the field.
    #[serde(default)]
    pub is_required: bool,
    /// Display order within the scope.
    #[serde(default)]
    pub sort_order: i64,
}

impl CustomFieldDef {
    /// An optional field `key` of `field_type` in `scope`.
    pub fn new(key: &str, scope: &str, field_type: FieldType) -> Self {
        Self {
            key: key.to_owned(),
            label: key.to_owned(),
            scope: scope.to_owned(),
            field_type,
            options: Vec::new(),
            is_required: false,
            sort_order: 0,
        }
    }

    /// Makes the field required on create.
    pub fn required(mut self) -> Self {
        self.is_required = true;
        self
    }

    /// The options of a SELECT field.
    pub fn options<I, S>(mut self, options: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options = options.into_iter().map(Into::into).collect();
        self
    }

    /// The display name.
    pub fn label(mut self, label: &str) -> Self {
        self.label = label.to_owned();
        self
    }

    /// The definition as a permissions document lists it:
    /// `{"key", "label", "scope", "type", "options", "isRequired",
    /// "sortOrder"}`, with `options` only when there are some.
    pub fn to_document(&self) -> Value {
        let mut doc = Map::with_capacity(7);
        doc.insert("key".to_owned(), Value::from(self.key.as_str()));
        doc.insert("label".to_owned(), Value::from(self.label.as_str()));
        doc.insert("scope".to_owned(), Value::from(self.scope.as_str()));
        doc.insert("type".to_owned(), Value::from(self.field_type.to_string()));
        if !self.options.is_empty() {
            doc.insert(
                "options".to_owned(),
                self.options.iter().map(String::as_str).collect(),
            );
        }
        doc.insert("isRequired".to_owned(), Value::Bool(self.is_required));
        doc.insert("sortOrder".to_owned(), Value::from(self.sort_order));
        Value::Object(doc)
    }

    /// The display order within the scope (lower first).
    pub fn sort_order(mut self, sort_order: i64) -> Self {
        self.sort_order = sort_order;
        self
    }

    fn check(&self, value: &Value) -> Result<(), CustomFieldErrorKind> {
        let ok = match (self.field_type, value) {
            (_, Value::Null) => !self.is_required,
            (FieldType::Text, Value::String(_))
            | (FieldType::Number, Value::Number(_))
            | (FieldType::Boolean, Value::Bool(_)) => true,
            (FieldType::Date, Value::String(s)) => is_iso_date(s),
            (FieldType::Select, Value::String(s)) => {
                if self.options.iter().any(|o| o == s) {
                    true
                } else {
                    return Err(CustomFieldErrorKind::NotAnOption);
                }
            }
            _ => false,
        };
        match (ok, value) {
            (true, _) => Ok(()),
            (false, Value::Null) => Err(CustomFieldErrorKind::Required),
            (false, _) => Err(CustomFieldErrorKind::WrongType(self.field_type)),
        }
    }
}

/// Whether a write creates the record (required fields enforced) or
/// updates it (PATCH: only the fields sent are checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// POST: every required field must be present.
    Create,
    /// PATCH/PUT of part of a record: required fields may be absent.
    Update,
}

/// The custom field definitions of one entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomFieldDefinitions {
    defs: Vec<CustomFieldDef>,
}

impl CustomFieldDefinitions {
    /// The definitions `defs`, kept in (scope, sort order, key) order.
    pub fn new(defs: impl IntoIterator<Item = CustomFieldDef>) -> Self {
        let mut defs: Vec<CustomFieldDef> = defs.into_iter().collect();
        defs.sort_by(|a, b| {
            (&a.scope, a.sort_order, &a.key).cmp(&(&b.scope, b.sort_order, &b.key))
        });
        Self { defs }
    }

    /// Parses a JSON array of definitions in the shape [`CustomFieldDef`]
    /// describes.
    ///
    /// # Errors
    ///
    /// When `value` is not such an array (an unknown `type` included).
    pub fn from_json(value: &Value) -> Result<Self, serde_json::Error> {
        Vec::<CustomFieldDef>::deserialize(value).map(Self::new)
    }

    /// Every definition, in (scope, sort order, key) order.
    pub fn iter(&self) -> impl Iterator<Item = &CustomFieldDef> {
        self.defs.iter()
    }

    /// Whether there are no definitions.
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// The definition of `key` in `scope`.
    pub fn get(&self, scope: &str, key: &str) -> Option<&CustomFieldDef> {
        self.defs.iter().find(|d| d.scope == scope && d.key == key)
    }

    /// The definitions a caller may see: those whose scope the caller can
    /// READ on `entity`, the ones a permissions endpoint may list next to
    /// the entity's scopes.
    pub fn readable<'a>(
        &'a self,
        perms: &'a CompiledPermissions,
        entity: &'a str,
    ) -> impl Iterator<Item = &'a CustomFieldDef> + 'a {
        self.defs
            .iter()
            .filter(move |d| perms.can_read(entity, &d.scope))
    }

    /// Validates the `customFields` of every scope group of a write body
    /// (`{scope: {..., "customFields": {key: value}}}`).
    ///
    /// # Errors
    ///
    /// The first problem found, naming its field: a body or
    /// `customFields` that is not an object, an unknown key, a value of
    /// the wrong type or outside a SELECT's options, or (on create) a
    /// missing required field.
    pub fn validate_body(&self, body: &Value, mode: WriteMode) -> Result<(), CustomFieldError> {
        let Value::Object(groups) = body else {
            return Err(CustomFieldError::new(
                "",
                "",
                CustomFieldErrorKind::NotAnObject,
            ));
        };
        for (scope, group) in groups {
            let custom = match group {
                Value::Object(members) => members.get("customFields"),
                // Not a group of fields: nothing custom to check here.
                _ => None,
            };
            self.validate_scope(scope, custom, mode)?;
        }
        if mode == WriteMode::Create {
            for def in self.defs.iter().filter(|d| d.is_required) {
                if !groups.contains_key(&def.scope) {
                    return Err(CustomFieldError::new(
                        &def.scope,
                        &def.key,
                        CustomFieldErrorKind::Required,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Validates the `customFields` value of one scope group (`None` when
    /// the group has none).
    ///
    /// # Errors
    ///
    /// As [`validate_body`](Self::validate_body), for this scope.
    pub fn validate_scope(
        &self,
        scope: &str,
        custom_fields: Option<&Value>,
        mode: WriteMode,
    ) -> Result<(), CustomFieldError> {
        let empty = Map::new();
        let values = match custom_fields {
            None => &empty,
            Some(Value::Object(values)) => values,
            Some(_) => {
                return Err(CustomFieldError::new(
                    scope,
                    "customFields",
                    CustomFieldErrorKind::NotAnObject,
                ))
            }
        };
        for (key, value) in values {
            let def = self
                .get(scope, key)
                .ok_or_else(|| CustomFieldError::new(scope, key, CustomFieldErrorKind::Unknown))?;
            def.check(value)
                .map_err(|kind| CustomFieldError::new(scope, key, kind))?;
        }
        if mode == WriteMode::Create {
            let missing = self
                .defs
                .iter()
                .filter(|d| d.scope == scope && d.is_required)
                .find(|d| !values.contains_key(&d.key));
            if let Some(def) = missing {
                return Err(CustomFieldError::new(
                    scope,
                    &def.key,
                    CustomFieldErrorKind::Required,
                ));
            }
        }
        Ok(())
    }
}

/// The custom field definitions of several entities, by entity key: what
/// a permissions document lists as each entity's
/// `customFieldDefinitions`.
///
/// Build it from a catalogue that declares them
/// ([`from_catalogue`](Self::from_catalogue)) or entity by entity
/// ([`with`](Self::with)).
///
/// ```
/// use iam_guard::model::custom_fields::{
///     CustomFieldDef, CustomFieldDefinitions, EntityCustomFields, FieldType,
/// };
///
/// let fields = EntityCustomFields::new().with(
///     "students",
///     CustomFieldDefinitions::new([CustomFieldDef::new("nickname", "anagraphic", FieldType::Text)]),
/// );
/// assert_eq!(fields.get("students").map(|d| d.iter().count()), Some(1));
/// assert!(fields.get("teachers").is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityCustomFields {
    by_entity: BTreeMap<String, CustomFieldDefinitions>,
}

impl EntityCustomFields {
    /// No definitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// The definitions every entity of `catalogue` declares; entities that
    /// declare none are left out.
    pub fn from_catalogue(catalogue: &Catalogue) -> Self {
        let by_entity = catalogue
            .entities()
            .filter(|e| !e.custom_fields().is_empty())
            .map(|e| (e.key().to_owned(), e.custom_fields().clone()))
            .collect();
        Self { by_entity }
    }

    /// Sets the definitions of `entity`, replacing any it had.
    pub fn with(mut self, entity: &str, defs: CustomFieldDefinitions) -> Self {
        self.by_entity.insert(entity.to_owned(), defs);
        self
    }

    /// The definitions of `entity`, if it has any.
    pub fn get(&self, entity: &str) -> Option<&CustomFieldDefinitions> {
        self.by_entity.get(entity)
    }

    /// Every entity with its definitions, by entity key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &CustomFieldDefinitions)> {
        self.by_entity.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether no entity has definitions.
    pub fn is_empty(&self) -> bool {
        self.by_entity.is_empty()
    }
}

impl FromIterator<CustomFieldDef> for CustomFieldDefinitions {
    fn from_iter<I: IntoIterator<Item = CustomFieldDef>>(iter: I) -> Self {
        Self::new(iter)
    }
}

/// `YYYY-MM-DD` naming a day that exists (proleptic Gregorian).
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> CustomFieldDefinitions {
        CustomFieldDefinitions::new([
            CustomFieldDef::new("nickname", "anagraphic", FieldType::Text),
            CustomFieldDef::new("shoe_size", "anagraphic", FieldType::Number),
            CustomFieldDef::new("enrolled_on", "others", FieldType::Date).required(),
            CustomFieldDef::new("allergic", "sensitive", FieldType::Boolean),
            CustomFieldDef::new("blood_type", "sensitive", FieldType::Select).options(["A+", "O+"]),
        ])
    }

    fn err(body: Value, mode: WriteMode) -> (String, String, CustomFieldErrorKind) {
        let e = defs().validate_body(&body, mode).unwrap_err();
        (e.scope().to_owned(), e.field().to_owned(), e.kind())
    }

    #[test]
    fn each_type_accepts_its_values() {
        let body = json!({
            "anagraphic": { "firstName": "M", "customFields": { "nickname": "Gigi", "shoe_size": 38.5 } },
            "sensitive": { "customFields": { "allergic": false, "blood_type": "O+" } },
            "others": { "customFields": { "enrolled_on": "2024-02-29" } },
        });
        assert_eq!(defs().validate_body(&body, WriteMode::Create), Ok(()));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            (
                json!({"anagraphic": {"customFields": {"nickname": 1}}}),
                "nickname",
                CustomFieldErrorKind::WrongType(FieldType::Text),
            ),
            (
                json!({"anagraphic": {"customFields": {"shoe_size": "38"}}}),
                "shoe_size",
                CustomFieldErrorKind::WrongType(FieldType::Number),
            ),
            (
                json!({"sensitive": {"customFields": {"allergic": "no"}}}),
                "allergic",
                CustomFieldErrorKind::WrongType(FieldType::Boolean),
            ),
            (
                json!({"sensitive": {"customFields": {"blood_type": "Z"}}}),
                "blood_type",
                CustomFieldErrorKind::NotAnOption,
            ),
            (
                json!({"sensitive": {"customFields": {"blood_type": 1}}}),
                "blood_type",
                CustomFieldErrorKind::WrongType(FieldType::Select),
            ),
            (
                json!({"others": {"customFields": {"enrolled_on": "2023-02-29"}}}),
                "enrolled_on",
                CustomFieldErrorKind::WrongType(FieldType::Date),
            ),
            (
                json!({"others": {"customFields": {"enrolled_on": "2023-1-09"}}}),
                "enrolled_on",
                CustomFieldErrorKind::WrongType(FieldType::Date),
            ),
            (
                json!({"others": {"customFields": {"enrolled_on": null}}}),
                "enrolled_on",
                CustomFieldErrorKind::Required,
            ),
            (
                json!({"anagraphic": {"customFields": {"blood_type": "O+"}}}),
                "blood_type",
                CustomFieldErrorKind::Unknown,
            ),
            (
                json!({"anagraphic": {"customFields": ["x"]}}),
                "customFields",
                CustomFieldErrorKind::NotAnObject,
            ),
        ];
        for (body, field, kind) in cases {
            let (_, f, k) = err(body.clone(), WriteMode::Update);
            assert_eq!((f.as_str(), k), (field, kind), "{body}");
        }
    }

    #[test]
    fn required_only_on_create() {
        let body = json!({"anagraphic": {"customFields": {"nickname": null}}});
        assert_eq!(defs().validate_body(&body, WriteMode::Update), Ok(()));
        assert_eq!(
            err(body, WriteMode::Create),
            (
                "others".into(),
                "enrolled_on".into(),
                CustomFieldErrorKind::Required
            )
        );
        let body = json!({"others": {"customFields": {}}});
        assert_eq!(err(body, WriteMode::Create).1, "enrolled_on");
    }

    #[test]
    fn parses_seed_shape_and_defaults_scope_to_others() {
        let d = CustomFieldDefinitions::from_json(&json!([
            {"key": "notes", "label": "Notes", "type": "TEXT", "isRequired": false, "sortOrder": 0}
        ]))
        .unwrap();
        assert_eq!(
            d.get("others", "notes").unwrap().field_type,
            FieldType::Text
        );
        assert!(
            CustomFieldDefinitions::from_json(&json!([{"key": "x", "type": "COLOR"}])).is_err()
        );
    }

    #[test]
    fn readable_definitions_follow_scope_access() {
        let mut perms = CompiledPermissions::default();
        perms.grant_scope("students", "anagraphic", crate::model::ScopeAccess::Read);
        let d = defs();
        let keys: Vec<&str> = d
            .readable(&perms, "students")
            .map(|d| d.key.as_str())
            .collect();
        assert_eq!(keys, ["nickname", "shoe_size"]);
    }

    #[test]
    fn iso_dates() {
        for ok in ["2024-02-29", "2000-02-29", "1999-12-31", "0001-01-01"] {
            assert!(is_iso_date(ok), "{ok}");
        }
        for bad in [
            "1900-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-01-32",
            "2024-01-00",
            "24-01-01",
            "2024/01/01",
            "2024-01-01T00:00:00Z",
            "２０２４-01-01",
        ] {
            assert!(!is_iso_date(bad), "{bad}");
        }
    }
}
