//! The permissions document: [`CompiledPermissions`] as JSON.
//!
//! One format travels three ways. A resource service serves it to its
//! frontends from `GET /permissions` (the `permissions_endpoint` handler of
//! the `extract` module), so they can decide what to render; a remote IAM
//! answers with it when permissions are fetched per caller (`RemoteSource`);
//! and a token may carry it in a claim (`ClaimsSource`).
//! [`CompiledPermissions::to_document`] writes it and
//! [`CompiledPermissions::from_document`] reads it.
//!
//! # Format
//!
//! ```json
//! {
//!   "students": {
//!     "scopes": { "anagraphic": "WRITE", "sensitive": "READ" },
//!     "actions": { "create": true, "delete": false }
//!   },
//!   "users": { "scopes": { "profile": "WRITE" }, "actions": {} },
//!   "permissions": ["inventory.regions.delete"],
//!   "modules": ["finance"]
//! }
//! ```
//!
//! - Every top-level key whose value is an object is an entity. Its
//!   `scopes` map a scope key to an access level, `"NONE"`, `"READ"` or
//!   `"WRITE"` (lower case is accepted on input); its `actions` map an
//!   action key to whether the action is effective for the caller.
//! - The top-level `"permissions"` and `"modules"` keys hold arrays of
//!   strings: flat permission strings and module names. Those two keys are
//!   reserved, which is why a [`Catalogue`](super::Catalogue) refuses
//!   entities named like them.
//! - The top-level `"validUntil"` key, when present, is a whole number of
//!   unix seconds: the instant these permissions stop being the caller's
//!   (a temporal role assignment ends or begins). Caches drop the document
//!   then ([`CompiledPermissions::valid_until`]).
//!
//! When written, NONE scopes are omitted, every listed action is `true`, an
//! entity without actions has `"actions": {}`, and the two arrays appear
//! only when non-empty, so the document of a caller without flat grants
//! holds entities only.
//!
//! When read, `scopes` and `actions` may be absent or `null`, an action
//! mapped to `false` is not granted, and other keys inside an entity (such
//! as the `customFieldDefinitions` an IAM may list, see
//! [`custom_fields`](super::custom_fields)) are ignored. Anything else that
//! does not fit is a [`PermissionsDocumentError`], and nothing is granted from a
//! document that fails. Writing a document and reading it back gives the
//! same permissions.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::access::{CompiledPermissions, ScopeAccess};
use super::custom_fields::{CustomFieldDef, EntityCustomFields};

/// The key, inside an entity, of its custom field definitions.
const CUSTOM_FIELD_DEFINITIONS: &str = "customFieldDefinitions";

/// The top-level key of the validity bound.
const VALID_UNTIL: &str = "validUntil";

impl CompiledPermissions {
    /// The permissions document for these permissions, as
    /// `GET /permissions` serves it (the format is described in
    /// [`permissions_document`](crate::model::permissions_document)).
    ///
    /// Every entity with a granted scope or action maps to
    /// `{"scopes": {scope: "READ" | "WRITE"}, "actions": {action: true}}`;
    /// NONE scopes are omitted and `actions` is `{}` when there are none.
    /// When flat permissions or modules are granted they are added as
    /// top-level `"permissions"` and `"modules"` string arrays, so a caller
    /// with neither gets a document of entities only. Those two keys are
    /// reserved: the catalogue rejects entities named like them, and here a
    /// non-empty array takes the key over such an entity.
    ///
    /// ```
    /// # use iam_guard::model::{CompiledPermissions, ScopeAccess};
    /// let mut perms = CompiledPermissions::deny_all();
    /// perms
    ///     .grant_scope("students", "anagraphic", ScopeAccess::Write)
    ///     .grant_action("students", "create");
    /// assert_eq!(
    ///     perms.to_document(),
    ///     serde_json::json!({
    ///         "students": {
    ///             "scopes": { "anagraphic": "WRITE" },
    ///             "actions": { "create": true }
    ///         }
    ///     })
    /// );
    /// ```
    pub fn to_document(&self) -> Value {
        let mut doc = Map::new();
        let entities: BTreeSet<&String> =
            self.scopes().keys().chain(self.actions().keys()).collect();
        for entity in entities {
            let scopes: Map<String, Value> = self
                .scopes()
                .get(entity)
                .into_iter()
                .flatten()
                .map(|(scope, access)| (scope.clone(), Value::from(access.as_str())))
                .collect();
            let actions: Map<String, Value> = self
                .actions()
                .get(entity)
                .into_iter()
                .flatten()
                .map(|action| (action.clone(), Value::Bool(true)))
                .collect();
            let mut group = Map::new();
            group.insert("scopes".to_owned(), Value::Object(scopes));
            group.insert("actions".to_owned(), Value::Object(actions));
            doc.insert(entity.clone(), Value::Object(group));
        }
        if !self.permissions().is_empty() {
            doc.insert(
                "permissions".to_owned(),
                self.permissions().iter().cloned().collect(),
            );
        }
        if !self.modules().is_empty() {
            doc.insert(
                "modules".to_owned(),
                self.modules().iter().cloned().collect(),
            );
        }
        if let Some(until) = self.valid_until() {
            doc.insert(VALID_UNTIL.to_owned(), Value::from(until));
        }
        Value::Object(doc)
    }

    /// [`to_document`](Self::to_document), with each entity's
    /// `customFieldDefinitions`: the definitions in `fields` whose scope
    /// these permissions can READ, in (scope, sort order, key) order, each
    /// as `{"key", "label", "scope", "type", "options", "isRequired",
    /// "sortOrder"}` (`options` only for SELECT fields). An entity with
    /// definitions lists the key even when none is readable (`[]`); an
    /// entity the caller has no grant on is not in the document at all, so
    /// its definitions are not either.
    ///
    /// ```
    /// # use iam_guard::model::{CompiledPermissions, ScopeAccess};
    /// use iam_guard::model::custom_fields::{
    ///     CustomFieldDef, CustomFieldDefinitions, EntityCustomFields, FieldType,
    /// };
    /// let fields = EntityCustomFields::new().with(
    ///     "students",
    ///     CustomFieldDefinitions::new([
    ///         CustomFieldDef::new("nickname", "anagraphic", FieldType::Text).label("Nickname"),
    ///         CustomFieldDef::new("blood_type", "sensitive", FieldType::Select).options(["A+", "O-"]),
    ///     ]),
    /// );
    /// let mut teacher = CompiledPermissions::deny_all();
    /// teacher.grant_scope("students", "anagraphic", ScopeAccess::Read);
    /// let doc = teacher.to_document_with_custom_fields(&fields);
    /// assert_eq!(
    ///     doc["students"]["customFieldDefinitions"],
    ///     serde_json::json!([{
    ///         "key": "nickname", "label": "Nickname", "scope": "anagraphic",
    ///         "type": "TEXT", "isRequired": false, "sortOrder": 0
    ///     }])
    /// );
    /// ```
    pub fn to_document_with_custom_fields(&self, fields: &EntityCustomFields) -> Value {
        let mut doc = self.to_document();
        if let Value::Object(entities) = &mut doc {
            for (entity, defs) in fields.iter() {
                let Some(Value::Object(group)) = entities.get_mut(entity) else {
                    continue;
                };
                let readable = defs
                    .readable(self, entity)
                    .map(CustomFieldDef::to_document)
                    .collect();
                group.insert(CUSTOM_FIELD_DEFINITIONS.to_owned(), Value::Array(readable));
            }
        }
        doc
    }

    /// Parses the document [`to_document`](Self::to_document)
    /// produces, as served by an IAM's `GET /permissions` or carried in a
    /// token claim.
    ///
    /// Top-level object values are entities; top-level `"permissions"` and
    /// `"modules"` arrays are the flat grants. Inside an entity, keys other
    /// than `scopes` and `actions` (such as the `customFieldDefinitions` of
    /// [`custom_fields`](crate::model::custom_fields)) are ignored, and an
    /// action mapped to `false` is not granted.
    ///
    /// # Errors
    ///
    /// Returns a [`PermissionsDocumentError`] naming the first value that does not
    /// fit the shape; nothing is granted from a document that fails.
    pub fn from_document(doc: &Value) -> Result<Self, PermissionsDocumentError> {
        let Value::Object(doc) = doc else {
            return Err(PermissionsDocumentError::NotAnObject {
                path: String::new(),
            });
        };
        let mut perms = Self::deny_all();
        for (key, value) in doc {
            match value {
                Value::Object(group) => perms.parse_entity(key, group)?,
                Value::Array(items) if key == "permissions" || key == "modules" => {
                    for item in items {
                        let Value::String(item) = item else {
                            return Err(PermissionsDocumentError::NotAStringArray {
                                key: key.clone(),
                            });
                        };
                        if key == "permissions" {
                            perms.grant_permission(item.clone());
                        } else {
                            perms.grant_module(item.clone());
                        }
                    }
                }
                Value::Number(until) if key == VALID_UNTIL => match until.as_u64() {
                    Some(until) => {
                        perms.expire_at(until);
                    }
                    None => return Err(PermissionsDocumentError::InvalidValidUntil),
                },
                _ if key == VALID_UNTIL => return Err(PermissionsDocumentError::InvalidValidUntil),
                _ => return Err(PermissionsDocumentError::NotAnObject { path: key.clone() }),
            }
        }
        Ok(perms)
    }

    fn parse_entity(
        &mut self,
        entity: &str,
        group: &Map<String, Value>,
    ) -> Result<(), PermissionsDocumentError> {
        match group.get("scopes") {
            None | Some(Value::Null) => {}
            Some(Value::Object(scopes)) => {
                for (scope, access) in scopes {
                    let parsed = access
                        .as_str()
                        .and_then(|access| access.parse::<ScopeAccess>().ok())
                        .ok_or_else(|| PermissionsDocumentError::InvalidAccess {
                            entity: entity.to_owned(),
                            scope: scope.clone(),
                        })?;
                    self.grant_scope(entity, scope.clone(), parsed);
                }
            }
            Some(_) => {
                return Err(PermissionsDocumentError::NotAnObject {
                    path: format!("{entity}.scopes"),
                })
            }
        }
        match group.get("actions") {
            None | Some(Value::Null) => {}
            Some(Value::Object(actions)) => {
                for (action, granted) in actions {
                    match granted {
                        Value::Bool(true) => {
                            self.grant_action(entity, action.clone());
                        }
                        Value::Bool(false) => {}
                        _ => {
                            return Err(PermissionsDocumentError::NotABoolean {
                                entity: entity.to_owned(),
                                action: action.clone(),
                            })
                        }
                    }
                }
            }
            Some(_) => {
                return Err(PermissionsDocumentError::NotAnObject {
                    path: format!("{entity}.actions"),
                })
            }
        }
        Ok(())
    }
}

/// Why a permissions document (`GET /permissions`, a remote IAM's answer
/// or a token claim) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PermissionsDocumentError {
    /// A value that must be an object is not; `path` is empty for the root.
    #[error("permissions document: `{path}` is not an object")]
    NotAnObject {
        /// Where the value sits, such as `students.scopes`.
        path: String,
    },
    /// A scope's access is not `NONE`, `READ` or `WRITE`.
    #[error("permissions document: scope `{entity}.{scope}` has an unknown access level")]
    InvalidAccess {
        /// The entity.
        entity: String,
        /// The scope.
        scope: String,
    },
    /// An action is mapped to something other than a boolean.
    #[error("permissions document: action `{entity}.{action}` is not a boolean")]
    NotABoolean {
        /// The entity.
        entity: String,
        /// The action.
        action: String,
    },
    /// `permissions` or `modules` holds something other than strings.
    #[error("permissions document: `{key}` is not an array of strings")]
    NotAStringArray {
        /// `permissions` or `modules`.
        key: String,
    },
    /// `validUntil` is not a whole, non-negative number of unix seconds.
    #[error("permissions document: `validUntil` is not a whole number of unix seconds")]
    InvalidValidUntil,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::access::tests::{grants, teacher};
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn format_block_in_the_module_docs_is_a_valid_document() {
        let source = include_str!("permissions_document.rs");
        let block = crate::model::json_block_of_module_docs(source);
        let doc: Value = serde_json::from_str(&block).unwrap();
        let perms = CompiledPermissions::from_document(&doc).unwrap();
        assert_eq!(
            perms.scope_access("students", "sensitive"),
            ScopeAccess::Read
        );
        assert!(perms.has_action("students", "create"));
        assert!(!perms.has_action("students", "delete"));
        assert!(perms.can_write("users", "profile"));
        assert!(perms.has_permission("inventory.regions.delete"));
        assert!(perms.has_module("finance"));
    }

    #[test]
    fn document_follows_the_seed_shape() {
        let mut perms = CompiledPermissions::deny_all();
        perms
            .grant_scope("students", "anagraphic", ScopeAccess::Write)
            .grant_scope("students", "sensitive", ScopeAccess::Write)
            .grant_scope("students", "family", ScopeAccess::None)
            .grant_action("students", "create")
            .grant_action("students", "delete")
            .grant_scope("users", "profile", ScopeAccess::Write);
        assert_eq!(
            perms.to_document(),
            json!({
                "students": {
                    "scopes": { "anagraphic": "WRITE", "sensitive": "WRITE" },
                    "actions": { "create": true, "delete": true }
                },
                "users": {
                    "scopes": { "profile": "WRITE" },
                    "actions": {}
                }
            })
        );
    }

    #[test]
    fn document_adds_flat_permissions_and_modules_when_present() {
        let perms = teacher();
        assert_eq!(
            perms.to_document(),
            json!({
                "students": {
                    "scopes": { "anagraphic": "READ", "attendance": "WRITE" },
                    "actions": { "export": true }
                },
                "permissions": ["inventory.regions.update", "inventory.regions.view"],
                "modules": ["finance"]
            })
        );
        assert_eq!(CompiledPermissions::deny_all().to_document(), json!({}));
    }

    #[test]
    fn document_reads_the_seed_response() {
        let doc = json!({
            "students": {
                "scopes": { "anagraphic": "WRITE", "sensitive": "READ", "others": "NONE" },
                "actions": { "create": true, "delete": false },
                "customFieldDefinitions": [{ "key": "nickname" }]
            },
            "users": { "scopes": { "profile": "WRITE" }, "actions": {} },
            "permissions": ["inventory.access"],
            "modules": ["basic"]
        });
        let perms = CompiledPermissions::from_document(&doc).unwrap();
        assert_eq!(
            perms.scope_access("students", "anagraphic"),
            ScopeAccess::Write
        );
        assert_eq!(
            perms.scope_access("students", "sensitive"),
            ScopeAccess::Read
        );
        assert_eq!(perms.scope_access("students", "others"), ScopeAccess::None);
        assert!(perms.has_action("students", "create"));
        assert!(!perms.has_action("students", "delete"));
        assert!(perms.can_write("users", "profile"));
        assert!(perms.has_permission("inventory.access"));
        assert!(perms.has_module("basic"));
    }

    #[test]
    fn document_rejects_what_does_not_fit() {
        let cases = [
            (json!([]), "permissions document: `` is not an object"),
            (
                json!({ "students": 3 }),
                "permissions document: `students` is not an object",
            ),
            (
                json!({ "students": { "scopes": [] } }),
                "permissions document: `students.scopes` is not an object",
            ),
            (
                json!({ "students": { "scopes": { "anagraphic": "ADMIN" } } }),
                "permissions document: scope `students.anagraphic` has an unknown access level",
            ),
            (
                json!({ "students": { "actions": { "create": "yes" } } }),
                "permissions document: action `students.create` is not a boolean",
            ),
            (
                json!({ "modules": ["basic", 1] }),
                "permissions document: `modules` is not an array of strings",
            ),
            (
                json!({ "roles": ["admin"] }),
                "permissions document: `roles` is not an object",
            ),
        ];
        for (doc, message) in cases {
            let err = CompiledPermissions::from_document(&doc).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    proptest! {
        #[test]
        fn document_round_trips(perms in grants()) {
            let doc = perms.to_document();
            prop_assert_eq!(CompiledPermissions::from_document(&doc), Ok(perms));
        }
    }
}
