//! Turning a catalogue document into a validated [`Catalogue`].
//!
//! Parsing only checks the shape (see [`format`](super::format)); every
//! cross-reference, uniqueness and naming rule is checked here, failing on
//! the first problem with the [`CatalogueError`] that names it.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::format::{Object, RawCatalogue, RawEntity, RawRole};
use super::{ActionDef, Catalogue, CatalogueError, Entities, EntityDef, RoleDef, ScopeDef};
use crate::model::access::{CompiledPermissions, ScopeAccess};
use crate::model::custom_fields::CustomFieldDefinitions;

/// Top-level keys of the permissions document that are not entities (see
/// [`permissions_document`](crate::model::permissions_document)).
const RESERVED_ENTITY_KEYS: [&str; 3] = ["permissions", "modules", "validUntil"];

impl Catalogue {
    /// Parses and validates a catalogue from JSON text.
    ///
    /// # Errors
    ///
    /// Returns [`CatalogueError::Json`] for malformed JSON or a wrong shape,
    /// or the variant that names the first inconsistency.
    pub fn from_json(json: &str) -> Result<Self, CatalogueError> {
        serde_json::from_str::<Object<RawCatalogue>>(json)
            .map_err(CatalogueError::Json)
            .and_then(Self::build)
    }

    /// Parses and validates a catalogue from JSON bytes.
    ///
    /// # Errors
    ///
    /// As [`Catalogue::from_json`].
    pub fn from_slice(json: &[u8]) -> Result<Self, CatalogueError> {
        serde_json::from_slice::<Object<RawCatalogue>>(json)
            .map_err(CatalogueError::Json)
            .and_then(Self::build)
    }

    pub(super) fn build(Object(raw): Object<RawCatalogue>) -> Result<Self, CatalogueError> {
        let mut entities = Entities {
            list: Vec::with_capacity(raw.entities.len()),
            index: BTreeMap::new(),
        };
        for Object(raw_entity) in raw.entities {
            let entity = EntityDef::build(raw_entity)?;
            match entities.index.entry(entity.key.clone()) {
                Entry::Occupied(_) => {
                    return Err(CatalogueError::DuplicateEntity { entity: entity.key })
                }
                Entry::Vacant(slot) => {
                    slot.insert(entities.list.len());
                }
            }
            entities.list.push(entity);
        }
        let mut catalogue = Self {
            entities: Arc::new(entities),
            roles: Vec::with_capacity(raw.roles.len()),
            role_index: BTreeMap::new(),
        };
        for Object(raw_role) in raw.roles {
            let role = catalogue.build_role(raw_role)?;
            catalogue.add_role(role)?;
        }
        Ok(catalogue)
    }

    /// Adds a validated role, refusing a second role with its id.
    pub(super) fn add_role(&mut self, role: RoleDef) -> Result<(), CatalogueError> {
        match self.role_index.entry(role.id.clone()) {
            Entry::Occupied(_) => Err(CatalogueError::DuplicateRole { role: role.id }),
            Entry::Vacant(slot) => {
                slot.insert(self.roles.len());
                self.roles.push(role);
                Ok(())
            }
        }
    }

    pub(super) fn build_role(&self, raw: RawRole) -> Result<RoleDef, CatalogueError> {
        check_free_form("role id", &raw.id)?;
        let role = raw.id;
        let mut grants = CompiledPermissions::deny_all();
        let mut seen_entities = BTreeSet::new();
        for (entity_key, scopes) in raw.scopes.0 {
            let entity = self
                .entity(&entity_key)
                .ok_or_else(|| CatalogueError::UnknownEntity {
                    role: role.clone(),
                    entity: entity_key.clone(),
                })?;
            if !seen_entities.insert(entity_key.clone()) {
                return Err(CatalogueError::DuplicateRoleEntity {
                    role,
                    entity: entity_key,
                });
            }
            let mut seen_scopes = BTreeSet::new();
            for (scope, access) in scopes.0 {
                if entity.scope(&scope).is_none() {
                    return Err(CatalogueError::UnknownScope {
                        role,
                        entity: entity_key,
                        scope,
                    });
                }
                if !seen_scopes.insert(scope.clone()) {
                    return Err(CatalogueError::DuplicateGrant {
                        role,
                        entity: entity_key,
                        scope,
                    });
                }
                grants.grant_scope(entity_key.as_str(), scope, access);
            }
        }
        let mut actions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for reference in raw.actions {
            let Some((entity_key, action)) = reference
                .split_once('.')
                .filter(|(entity, action)| is_key(entity) && is_key(action))
            else {
                return Err(CatalogueError::InvalidActionRef {
                    role,
                    action: reference,
                });
            };
            let Some(entity) = self.entity(entity_key) else {
                return Err(CatalogueError::UnknownEntity {
                    role,
                    entity: entity_key.to_owned(),
                });
            };
            if entity.action(action).is_none() {
                return Err(CatalogueError::UnknownAction {
                    role,
                    entity: entity_key.to_owned(),
                    action: action.to_owned(),
                });
            }
            // A repeated action means the same thing twice, unlike a repeated
            // map key, so it is accepted.
            actions
                .entry(entity_key.to_owned())
                .or_default()
                .insert(action.to_owned());
        }
        for permission in raw.permissions {
            check_free_form("permission", &permission)?;
            grants.grant_permission(permission);
        }
        for module in raw.modules {
            check_free_form("module", &module)?;
            grants.grant_module(module);
        }
        Ok(RoleDef {
            id: role,
            name: raw.name,
            description: raw.description,
            grants,
            actions,
        })
    }
}

impl EntityDef {
    fn build(raw: RawEntity) -> Result<Self, CatalogueError> {
        check_key("entity key", &raw.key)?;
        if RESERVED_ENTITY_KEYS.contains(&raw.key.as_str()) {
            return Err(CatalogueError::ReservedEntity { entity: raw.key });
        }
        let mut entity = Self {
            key: raw.key,
            label: raw.label,
            description: raw.description,
            scopes: Vec::with_capacity(raw.scopes.len()),
            scope_index: BTreeMap::new(),
            field_index: BTreeMap::new(),
            actions: Vec::with_capacity(raw.actions.len()),
            action_index: BTreeMap::new(),
            custom_fields: CustomFieldDefinitions::default(),
        };
        for Object(scope) in raw.scopes {
            check_key("scope key", &scope.key)?;
            let position = entity.scopes.len();
            if entity
                .scope_index
                .insert(scope.key.clone(), position)
                .is_some()
            {
                return Err(CatalogueError::DuplicateScope {
                    entity: entity.key,
                    scope: scope.key,
                });
            }
            for field in &scope.fields {
                if field.trim().is_empty() {
                    return Err(CatalogueError::InvalidName {
                        kind: "field",
                        value: field.clone(),
                        reason: "must not be blank",
                    });
                }
                if entity.field_index.insert(field.clone(), position).is_some() {
                    return Err(CatalogueError::DuplicateField {
                        entity: entity.key,
                        field: field.clone(),
                    });
                }
            }
            entity.scopes.push(ScopeDef {
                key: scope.key,
                label: scope.label,
                description: scope.description,
                fields: scope.fields,
            });
        }
        for Object(action) in raw.actions {
            check_key("action key", &action.key)?;
            let mut requires: Vec<(String, ScopeAccess)> =
                Vec::with_capacity(action.requires.0.len());
            for (scope, level) in action.requires.0 {
                let error = if entity.scope(&scope).is_none() {
                    Some(CatalogueError::UnknownRequirementScope {
                        entity: entity.key.clone(),
                        action: action.key.clone(),
                        scope: scope.clone(),
                    })
                } else if requires.iter().any(|(seen, _)| *seen == scope) {
                    Some(CatalogueError::DuplicateRequirement {
                        entity: entity.key.clone(),
                        action: action.key.clone(),
                        scope: scope.clone(),
                    })
                } else if level == ScopeAccess::None {
                    Some(CatalogueError::NoneRequirement {
                        entity: entity.key.clone(),
                        action: action.key.clone(),
                        scope: scope.clone(),
                    })
                } else {
                    None
                };
                if let Some(error) = error {
                    return Err(error);
                }
                requires.push((scope, level));
            }
            let position = entity.actions.len();
            if entity
                .action_index
                .insert(action.key.clone(), position)
                .is_some()
            {
                return Err(CatalogueError::DuplicateAction {
                    entity: entity.key,
                    action: action.key,
                });
            }
            entity.actions.push(ActionDef {
                key: action.key,
                description: action.description,
                requires,
            });
        }
        let mut custom_fields = Vec::with_capacity(raw.custom_fields.len());
        for Object(field) in raw.custom_fields {
            custom_fields.push(entity.build_custom_field(field, &custom_fields)?);
        }
        entity.custom_fields = CustomFieldDefinitions::new(custom_fields);
        Ok(entity)
    }
}

/// Keys become JSON object keys and parts of `<entity>.<action>`, so they are
/// kept to a character set that needs no escaping and contains no dot.
pub(super) fn check_key(kind: &'static str, key: &str) -> Result<(), CatalogueError> {
    let reason = if key.is_empty() {
        "must not be empty"
    } else if !is_key(key) {
        "only ASCII letters, digits, `_` and `-` are allowed"
    } else {
        return Ok(());
    };
    Err(CatalogueError::InvalidName {
        kind,
        value: key.to_owned(),
        reason,
    })
}

fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Role ids, permissions and modules come from other systems (token claims,
/// dotted permission strings such as `inventory.regions.delete`), so only
/// what can never match is refused.
pub(super) fn check_free_form(kind: &'static str, value: &str) -> Result<(), CatalogueError> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain whitespace or control characters"
    } else {
        return Ok(());
    };
    Err(CatalogueError::InvalidName {
        kind,
        value: value.to_owned(),
        reason,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A valid minimal catalogue, to be broken one way per test.
    pub(crate) fn base() -> serde_json::Value {
        serde_json::json!({
            "entities": [{
                "key": "students",
                "scopes": [
                    { "key": "anagraphic", "fields": ["firstName"] },
                    { "key": "sensitive", "fields": ["disabilityInfo"] }
                ],
                "actions": [
                    { "key": "create", "requires": { "anagraphic": "WRITE", "sensitive": "WRITE" } }
                ]
            }],
            "roles": [{
                "id": "admin",
                "name": "Admin",
                "scopes": { "students": { "anagraphic": "WRITE", "sensitive": "WRITE" } },
                "actions": ["students.create"]
            }]
        })
    }

    fn load(doc: &serde_json::Value) -> Result<Catalogue, CatalogueError> {
        Catalogue::from_json(&doc.to_string())
    }

    pub(crate) fn error_of(doc: &serde_json::Value) -> String {
        load(doc).unwrap_err().to_string()
    }

    #[test]
    fn base_catalogue_is_valid() {
        let catalogue = load(&base()).unwrap();
        assert_eq!(catalogue.entities().len(), 1);
        assert_eq!(catalogue.role("admin").unwrap().name(), "Admin");
    }

    #[test]
    fn from_slice_matches_from_json() {
        let text = base().to_string();
        let catalogue = Catalogue::from_slice(text.as_bytes()).unwrap();
        assert_eq!(
            catalogue
                .role("admin")
                .unwrap()
                .access("students", "anagraphic"),
            ScopeAccess::Write
        );
    }

    #[test]
    fn empty_document_is_an_empty_catalogue() {
        let catalogue = Catalogue::from_json("{}").unwrap();
        assert_eq!(catalogue.entities().len(), 0);
        assert_eq!(catalogue.roles().len(), 0);
    }

    #[test]
    fn duplicate_entity_is_named() {
        let mut doc = base();
        let copy = doc["entities"][0].clone();
        doc["entities"].as_array_mut().unwrap().push(copy);
        let err = load(&doc).unwrap_err();
        assert!(matches!(&err, CatalogueError::DuplicateEntity { entity } if entity == "students"));
        assert_eq!(err.to_string(), "entity `students` is declared twice");
    }

    #[test]
    fn reserved_entity_key_is_rejected() {
        let mut doc = base();
        doc["entities"][0]["key"] = "modules".into();
        doc["roles"] = serde_json::json!([]);
        assert_eq!(error_of(&doc), "entity key `modules` is reserved");
    }

    #[test]
    fn duplicate_scope_is_named() {
        let mut doc = base();
        doc["entities"][0]["scopes"][1]["key"] = "anagraphic".into();
        let err = load(&doc).unwrap_err();
        assert!(matches!(
            &err,
            CatalogueError::DuplicateScope { entity, scope } if entity == "students" && scope == "anagraphic"
        ));
        assert_eq!(
            err.to_string(),
            "scope `anagraphic` is declared twice in entity `students`"
        );
    }

    #[test]
    fn field_mapped_to_two_scopes_is_named() {
        let mut doc = base();
        doc["entities"][0]["scopes"][1]["fields"] = serde_json::json!(["firstName"]);
        assert_eq!(
            error_of(&doc),
            "field `firstName` is mapped twice in entity `students`"
        );
    }

    #[test]
    fn duplicate_action_is_named() {
        let mut doc = base();
        let copy = doc["entities"][0]["actions"][0].clone();
        doc["entities"][0]["actions"]
            .as_array_mut()
            .unwrap()
            .push(copy);
        assert_eq!(
            error_of(&doc),
            "action `create` is declared twice in entity `students`"
        );
    }

    #[test]
    fn action_requiring_unknown_scope_is_named() {
        let mut doc = base();
        doc["entities"][0]["actions"][0]["requires"] =
            serde_json::json!({ "anagraphic": "WRITE", "medical": "WRITE" });
        let err = load(&doc).unwrap_err();
        assert!(matches!(
            &err,
            CatalogueError::UnknownRequirementScope { entity, action, scope }
                if entity == "students" && action == "create" && scope == "medical"
        ));
        assert_eq!(
            err.to_string(),
            "action `students.create` requires unknown scope `medical`"
        );
    }

    #[test]
    fn none_requirement_is_rejected() {
        let mut doc = base();
        doc["entities"][0]["actions"][0]["requires"] = serde_json::json!({ "sensitive": "NONE" });
        assert_eq!(
            error_of(&doc),
            "action `students.create` requires NONE on scope `sensitive`, which is always met"
        );
    }

    #[test]
    fn duplicate_role_is_named() {
        let mut doc = base();
        let copy = doc["roles"][0].clone();
        doc["roles"].as_array_mut().unwrap().push(copy);
        let err = load(&doc).unwrap_err();
        assert!(matches!(&err, CatalogueError::DuplicateRole { role } if role == "admin"));
        assert_eq!(err.to_string(), "role `admin` is declared twice");
    }

    #[test]
    fn grant_on_unknown_entity_is_named() {
        let mut doc = base();
        doc["roles"][0]["scopes"] = serde_json::json!({ "teachers": { "anagraphic": "READ" } });
        let err = load(&doc).unwrap_err();
        assert!(matches!(
            &err,
            CatalogueError::UnknownEntity { role, entity } if role == "admin" && entity == "teachers"
        ));
        assert_eq!(
            err.to_string(),
            "role `admin` refers to unknown entity `teachers`"
        );
    }

    #[test]
    fn grant_on_unknown_scope_is_named() {
        let mut doc = base();
        doc["roles"][0]["scopes"]["students"]["medical"] = "READ".into();
        let err = load(&doc).unwrap_err();
        assert!(matches!(
            &err,
            CatalogueError::UnknownScope { role, entity, scope }
                if role == "admin" && entity == "students" && scope == "medical"
        ));
        assert_eq!(
            err.to_string(),
            "role `admin` grants unknown scope `medical` of entity `students`"
        );
    }

    #[test]
    fn undeclared_action_is_named() {
        let mut doc = base();
        doc["roles"][0]["actions"] = serde_json::json!(["students.create", "students.archive"]);
        let err = load(&doc).unwrap_err();
        assert!(matches!(
            &err,
            CatalogueError::UnknownAction { role, entity, action }
                if role == "admin" && entity == "students" && action == "archive"
        ));
        assert_eq!(
            err.to_string(),
            "role `admin` grants action `archive`, which entity `students` does not declare"
        );
    }

    #[test]
    fn action_on_unknown_entity_is_named() {
        let mut doc = base();
        doc["roles"][0]["actions"] = serde_json::json!(["teachers.create"]);
        assert_eq!(
            error_of(&doc),
            "role `admin` refers to unknown entity `teachers`"
        );
    }

    #[test]
    fn malformed_action_reference_is_named() {
        for reference in ["create", "students.", ".create", "students.create.now"] {
            let mut doc = base();
            doc["roles"][0]["actions"] = serde_json::json!([reference]);
            assert_eq!(
                error_of(&doc),
                format!("role `admin` grants action `{reference}`, expected `<entity>.<action>`")
            );
        }
    }

    #[test]
    fn bad_names_are_named() {
        let cases: [(&str, serde_json::Value, &str); 5] = [
            (
                "/entities/0/key",
                "".into(),
                "invalid entity key ``: must not be empty",
            ),
            (
                "/entities/0/scopes/0/key",
                "ana.graphic".into(),
                "invalid scope key `ana.graphic`: only ASCII letters, digits, `_` and `-` are allowed",
            ),
            (
                "/entities/0/actions/0/key",
                "cre ate".into(),
                "invalid action key `cre ate`: only ASCII letters, digits, `_` and `-` are allowed",
            ),
            (
                "/roles/0/id",
                "school admin".into(),
                "invalid role id `school admin`: must not contain whitespace or control characters",
            ),
            (
                "/entities/0/scopes/0/fields/0",
                " ".into(),
                "invalid field ` `: must not be blank",
            ),
        ];
        for (pointer, value, message) in cases {
            let mut doc = base();
            *doc.pointer_mut(pointer).unwrap() = value;
            assert_eq!(error_of(&doc), message, "{pointer}");
        }
        let mut doc = base();
        doc["roles"][0]["permissions"] = serde_json::json!([""]);
        assert_eq!(error_of(&doc), "invalid permission ``: must not be empty");
        doc["roles"][0]["permissions"] = serde_json::json!([]);
        doc["roles"][0]["modules"] = serde_json::json!(["fin\tance"]);
        assert_eq!(
            error_of(&doc),
            "invalid module `fin\tance`: must not contain whitespace or control characters"
        );
    }
}
