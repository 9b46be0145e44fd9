//! Why a custom field value fails its definition.

use std::fmt;

use super::FieldType;

/// What is wrong with a custom field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CustomFieldErrorKind {
    /// No definition has this key in this scope.
    Unknown,
    /// A required field is missing on create, or set to `null`.
    Required,
    /// The value is not of the definition's type.
    WrongType(FieldType),
    /// A SELECT value outside the options.
    NotAnOption,
    /// `customFields` (or the body) is not a JSON object.
    NotAnObject,
}

/// A custom field value that fails its definition. Names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFieldError {
    scope: String,
    field: String,
    kind: CustomFieldErrorKind,
}

impl CustomFieldError {
    pub(super) fn new(scope: &str, field: &str, kind: CustomFieldErrorKind) -> Self {
        Self {
            scope: scope.to_owned(),
            field: field.to_owned(),
            kind,
        }
    }

    /// The scope group holding the field (empty when the body itself is
    /// not an object).
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The field's key (`customFields` when that member is not an object).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong.
    pub fn kind(&self) -> CustomFieldErrorKind {
        self.kind
    }
}

impl fmt::Display for CustomFieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scope, field) = (&self.scope, &self.field);
        match self.kind {
            CustomFieldErrorKind::NotAnObject if scope.is_empty() => {
                f.write_str("the request body must be a JSON object")
            }
            CustomFieldErrorKind::NotAnObject => {
                write!(f, "`{scope}.customFields` must be a JSON object")
            }
            CustomFieldErrorKind::Unknown => {
                write!(f, "custom field `{scope}.{field}` is not defined")
            }
            CustomFieldErrorKind::Required => {
                write!(f, "custom field `{scope}.{field}` is required")
            }
            CustomFieldErrorKind::NotAnOption => {
                write!(
                    f,
                    "custom field `{scope}.{field}` is not one of its options"
                )
            }
            CustomFieldErrorKind::WrongType(FieldType::Date) => write!(
                f,
                "custom field `{scope}.{field}` must be a DATE (YYYY-MM-DD)"
            ),
            CustomFieldErrorKind::WrongType(t) => {
                write!(f, "custom field `{scope}.{field}` must be a {t}")
            }
        }
    }
}

impl std::error::Error for CustomFieldError {}
