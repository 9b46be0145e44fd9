//! The RBAC catalogue: entities, scopes, actions and roles.
//!
//! A catalogue is the data seed 002 §3.2 keeps in six tables, as one JSON
//! document. It is loaded once (from a file, or fetched from the IAM by the
//! caller) with [`Catalogue::from_json`], validated as a whole, and then used
//! to [`compile`](Catalogue::compile) the roles in a token into
//! [`CompiledPermissions`].
//!
//! # Format
//!
//! ```json
//! {
//!   "entities": [{
//!     "key": "students",                 // required; [A-Za-z0-9_-]+
//!     "label": "Students",               // optional
//!     "description": "...",              // optional
//!     "scopes": [{
//!       "key": "anagraphic",             // required, unique in the entity
//!       "label": "Anagraphic",           // optional
//!       "description": "...",            // optional
//!       "fields": ["firstName", "lastName"]  // the fields the scope group covers
//!     }, {
//!       "key": "sensitive",
//!       "fields": ["disabilityInfo", "medical_records.*"]  // unique within the entity
//!     }],
//!     "actions": [{
//!       "key": "create",                 // required, unique in the entity
//!       "description": "...",            // optional
//!       "requires": { "anagraphic": "WRITE", "sensitive": "WRITE" }
//!     }]
//!   }],
//!   "roles": [{
//!     "id": "admin",                     // required, unique; the role name tokens carry
//!     "name": "Admin",                   // required
//!     "description": "...",              // optional
//!     "scopes": { "students": { "anagraphic": "WRITE", "sensitive": "WRITE" } },
//!     "actions": ["students.create"],    // "<entity>.<action>", declared by the entity
//!     "permissions": ["inventory.regions.delete"],  // flat permission strings
//!     "modules": ["finance"]
//!   }]
//! }
//! ```
//!
//! Access levels are `"NONE"`, `"READ"` or `"WRITE"` (lower case accepted).
//! Every list and map may be omitted when empty. Unknown keys are rejected
//! rather than ignored: a misspelt `"requires"` silently dropped would make
//! an action effective for every role that grants it.
//!
//! Validation fails on the first problem and names it; see
//! [`CatalogueError`]. In short: keys are unique where they are declared
//! (entities, scopes and actions per entity, fields per entity, roles, and
//! map keys everywhere, since a repeated JSON key would otherwise keep only
//! its last value), every grant and requirement refers to something
//! declared, and a role may only grant actions its entity declares. Flat
//! permissions and modules are free-form strings without whitespace.
//!
//! # Example
//!
//! ```
//! use iam_guard::model::{Catalogue, RoleAssignment, ScopeAccess};
//!
//! let catalogue = Catalogue::from_json(
//!     r#"{
//!       "entities": [{
//!         "key": "students",
//!         "label": "Students",
//!         "description": "Students enrolled in the school",
//!         "scopes": [
//!           { "key": "anagraphic", "fields": ["firstName", "lastName"] },
//!           {
//!             "key": "sensitive",
//!             "label": "Sensitive",
//!             "description": "Health and disability data",
//!             "fields": ["disabilityInfo"]
//!           }
//!         ],
//!         "actions": [
//!           {
//!             "key": "create",
//!             "description": "Create a student record",
//!             "requires": { "anagraphic": "WRITE", "sensitive": "WRITE" }
//!           }
//!         ]
//!       }],
//!       "roles": [
//!         {
//!           "id": "secretary",
//!           "name": "Secretary",
//!           "scopes": { "students": { "anagraphic": "WRITE", "sensitive": "READ" } },
//!           "actions": ["students.create"],
//!           "modules": ["basic"]
//!         },
//!         {
//!           "id": "nurse",
//!           "name": "Nurse",
//!           "description": "Reads and writes medical data",
//!           "scopes": { "students": { "sensitive": "write" } },
//!           "permissions": ["infirmary.visits.view"]
//!         }
//!       ]
//!     }"#,
//! )?;
//!
//! let students = catalogue.entity("students").expect("declared above");
//! assert_eq!(students.scope_of_field("disabilityInfo"), Some("sensitive"));
//! let create = students.action("create").expect("declared above");
//! assert_eq!(
//!     create.requirements().collect::<Vec<_>>(),
//!     [("anagraphic", ScopeAccess::Write), ("sensitive", ScopeAccess::Write)]
//! );
//!
//! // The secretary is granted `create` but lacks WRITE on `sensitive`.
//! let secretary = catalogue.compile_roles(["secretary"]);
//! assert!(secretary.can_write("students", "anagraphic"));
//! assert!(!secretary.has_action("students", "create"));
//!
//! // With a substitute nurse role active now, the requirement is met.
//! let now = 1_772_323_200; // 2026-03-01
//! let both = catalogue.compile(
//!     &[
//!         RoleAssignment::new("secretary"),
//!         RoleAssignment::new("nurse").valid_until(now + 3600),
//!     ],
//!     now,
//! );
//! assert_eq!(both.scope_access("students", "sensitive"), ScopeAccess::Write);
//! assert!(both.has_action("students", "create"));
//! assert!(both.has_permission("infirmary.visits.view") && both.has_module("basic"));
//! # Ok::<(), iam_guard::model::CatalogueError>(())
//! ```

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::access::{CompiledPermissions, ScopeAccess};

/// Top-level keys of the `GET /permissions` document that are not entities.
const RESERVED_ENTITY_KEYS: [&str; 2] = ["permissions", "modules"];

/// A validated RBAC catalogue.
///
/// See the [module docs](self) for the JSON format and an example.
#[derive(Clone, Debug)]
pub struct Catalogue {
    entities: Vec<EntityDef>,
    entity_index: BTreeMap<String, usize>,
    roles: Vec<RoleDef>,
    role_index: BTreeMap<String, usize>,
}

/// An entity (`students`) with its scopes and actions.
#[derive(Clone, Debug)]
pub struct EntityDef {
    key: String,
    label: Option<String>,
    description: Option<String>,
    scopes: Vec<ScopeDef>,
    scope_index: BTreeMap<String, usize>,
    field_index: BTreeMap<String, usize>,
    actions: Vec<ActionDef>,
    action_index: BTreeMap<String, usize>,
}

/// A scope (`anagraphic`): a named group of an entity's fields.
#[derive(Clone, Debug)]
pub struct ScopeDef {
    key: String,
    label: Option<String>,
    description: Option<String>,
    fields: Vec<String>,
}

/// An action (`create`) and the scope levels it requires.
#[derive(Clone, Debug)]
pub struct ActionDef {
    key: String,
    description: Option<String>,
    requires: Vec<(String, ScopeAccess)>,
}

/// A role as the catalogue defines it, before any requirement is checked.
#[derive(Clone, Debug)]
pub struct RoleDef {
    id: String,
    name: String,
    description: Option<String>,
    // Scopes, flat permissions and modules; actions live apart because a
    // granted action is not yet an effective one.
    grants: CompiledPermissions,
    actions: BTreeMap<String, BTreeSet<String>>,
}

/// Why a catalogue was rejected. Each variant names the offender.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogueError {
    /// The document is not JSON or does not have the catalogue's shape; the
    /// error carries serde's line and column.
    #[error("invalid catalogue json: {0}")]
    Json(serde_json::Error),
    /// A key, id or string breaks the naming rules.
    #[error("invalid {kind} `{value}`: {reason}")]
    InvalidName {
        /// What the string names: `entity key`, `role id`, ...
        kind: &'static str,
        /// The offending string.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two entities share a key.
    #[error("entity `{entity}` is declared twice")]
    DuplicateEntity {
        /// The entity key.
        entity: String,
    },
    /// An entity uses a key reserved by the `GET /permissions` document.
    #[error("entity key `{entity}` is reserved")]
    ReservedEntity {
        /// The entity key.
        entity: String,
    },
    /// Two scopes of one entity share a key.
    #[error("scope `{scope}` is declared twice in entity `{entity}`")]
    DuplicateScope {
        /// The entity key.
        entity: String,
        /// The scope key.
        scope: String,
    },
    /// A field is mapped twice within one entity, so its scope is ambiguous.
    #[error("field `{field}` is mapped twice in entity `{entity}`")]
    DuplicateField {
        /// The entity key.
        entity: String,
        /// The field.
        field: String,
    },
    /// Two actions of one entity share a key.
    #[error("action `{action}` is declared twice in entity `{entity}`")]
    DuplicateAction {
        /// The entity key.
        entity: String,
        /// The action key.
        action: String,
    },
    /// An action requires a scope its entity does not declare.
    #[error("action `{entity}.{action}` requires unknown scope `{scope}`")]
    UnknownRequirementScope {
        /// The entity key.
        entity: String,
        /// The action key.
        action: String,
        /// The undeclared scope.
        scope: String,
    },
    /// An action lists a scope twice in `requires`.
    #[error("action `{entity}.{action}` lists scope `{scope}` twice")]
    DuplicateRequirement {
        /// The entity key.
        entity: String,
        /// The action key.
        action: String,
        /// The repeated scope.
        scope: String,
    },
    /// An action requires NONE on a scope, which every caller satisfies.
    #[error("action `{entity}.{action}` requires NONE on scope `{scope}`, which is always met")]
    NoneRequirement {
        /// The entity key.
        entity: String,
        /// The action key.
        action: String,
        /// The scope.
        scope: String,
    },
    /// Two roles share an id.
    #[error("role `{role}` is declared twice")]
    DuplicateRole {
        /// The role id.
        role: String,
    },
    /// A role grants scopes or an action of an undeclared entity.
    #[error("role `{role}` refers to unknown entity `{entity}`")]
    UnknownEntity {
        /// The role id.
        role: String,
        /// The undeclared entity.
        entity: String,
    },
    /// A role lists one entity twice in its `scopes`.
    #[error("role `{role}` lists entity `{entity}` twice in its scopes")]
    DuplicateRoleEntity {
        /// The role id.
        role: String,
        /// The repeated entity.
        entity: String,
    },
    /// A role grants a scope its entity does not declare.
    #[error("role `{role}` grants unknown scope `{scope}` of entity `{entity}`")]
    UnknownScope {
        /// The role id.
        role: String,
        /// The entity key.
        entity: String,
        /// The undeclared scope.
        scope: String,
    },
    /// A role grants one scope twice.
    #[error("role `{role}` grants scope `{entity}.{scope}` twice")]
    DuplicateGrant {
        /// The role id.
        role: String,
        /// The entity key.
        entity: String,
        /// The repeated scope.
        scope: String,
    },
    /// A role's action is not written `<entity>.<action>`.
    #[error("role `{role}` grants action `{action}`, expected `<entity>.<action>`")]
    InvalidActionRef {
        /// The role id.
        role: String,
        /// The malformed reference.
        action: String,
    },
    /// A role grants an action its entity does not declare.
    #[error("role `{role}` grants action `{action}`, which entity `{entity}` does not declare")]
    UnknownAction {
        /// The role id.
        role: String,
        /// The entity key.
        entity: String,
        /// The undeclared action.
        action: String,
    },
}

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

    /// The bundled seed 002 catalogue: the `students` entity with its eight
    /// scopes, the `create` and `delete` actions, and the eleven preset roles.
    ///
    /// # Panics
    ///
    /// Never in practice: the bundled file is validated by this module's
    /// tests.
    pub fn students_fixture() -> Self {
        Self::from_json(include_str!("../../fixtures/students_catalogue.json"))
            .expect("the bundled students catalogue is valid, as its tests check")
    }

    /// The entities, in declaration order.
    pub fn entities(&self) -> impl ExactSizeIterator<Item = &EntityDef> {
        self.entities.iter()
    }

    /// The entity with this key.
    pub fn entity(&self, key: &str) -> Option<&EntityDef> {
        self.entity_index
            .get(key)
            .and_then(|&i| self.entities.get(i))
    }

    /// The roles, in declaration order.
    pub fn roles(&self) -> impl ExactSizeIterator<Item = &RoleDef> {
        self.roles.iter()
    }

    /// The role with this id (an exact, case-sensitive match).
    pub fn role(&self, id: &str) -> Option<&RoleDef> {
        self.role_index.get(id).and_then(|&i| self.roles.get(i))
    }

    fn build(Object(raw): Object<RawCatalogue>) -> Result<Self, CatalogueError> {
        let mut catalogue = Self {
            entities: Vec::with_capacity(raw.entities.len()),
            entity_index: BTreeMap::new(),
            roles: Vec::with_capacity(raw.roles.len()),
            role_index: BTreeMap::new(),
        };
        for Object(raw_entity) in raw.entities {
            let entity = EntityDef::build(raw_entity)?;
            match catalogue.entity_index.entry(entity.key.clone()) {
                Entry::Occupied(_) => {
                    return Err(CatalogueError::DuplicateEntity { entity: entity.key })
                }
                Entry::Vacant(slot) => {
                    slot.insert(catalogue.entities.len());
                }
            }
            catalogue.entities.push(entity);
        }
        for Object(raw_role) in raw.roles {
            let role = catalogue.build_role(raw_role)?;
            match catalogue.role_index.entry(role.id.clone()) {
                Entry::Occupied(_) => return Err(CatalogueError::DuplicateRole { role: role.id }),
                Entry::Vacant(slot) => {
                    slot.insert(catalogue.roles.len());
                }
            }
            catalogue.roles.push(role);
        }
        Ok(catalogue)
    }

    fn build_role(&self, raw: RawRole) -> Result<RoleDef, CatalogueError> {
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
        Ok(entity)
    }

    /// The entity key, such as `students`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The display label, if any.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The help text, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The scopes, in declaration order.
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = &ScopeDef> {
        self.scopes.iter()
    }

    /// The scope with this key.
    pub fn scope(&self, key: &str) -> Option<&ScopeDef> {
        self.scope_index.get(key).and_then(|&i| self.scopes.get(i))
    }

    /// The key of the scope whose field mapping lists `field` (exact match).
    pub fn scope_of_field(&self, field: &str) -> Option<&str> {
        self.field_index
            .get(field)
            .and_then(|&i| self.scopes.get(i))
            .map(|scope| scope.key.as_str())
    }

    /// The actions, in declaration order.
    pub fn actions(&self) -> impl ExactSizeIterator<Item = &ActionDef> {
        self.actions.iter()
    }

    /// The action with this key.
    pub fn action(&self, key: &str) -> Option<&ActionDef> {
        self.action_index
            .get(key)
            .and_then(|&i| self.actions.get(i))
    }
}

impl ScopeDef {
    /// The scope key, such as `anagraphic`; also the scope group's key in
    /// request and response bodies.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The display label, if any.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The help text, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The fields the scope group covers, as declared.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }
}

impl ActionDef {
    /// The action key, such as `create`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The help text, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The scope levels a caller must hold for the action to be effective.
    pub fn requirements(&self) -> impl ExactSizeIterator<Item = (&str, ScopeAccess)> {
        self.requires
            .iter()
            .map(|(scope, level)| (scope.as_str(), *level))
    }

    /// Whether `perms` holds every required scope level of `entity`.
    pub fn is_satisfied_by(&self, entity: &str, perms: &CompiledPermissions) -> bool {
        self.requires
            .iter()
            .all(|(scope, level)| perms.scope_access(entity, scope) >= *level)
    }
}

impl RoleDef {
    /// The role id tokens carry, such as `admin`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The display name, such as `HR / Secretary`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The help text, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The access this role grants to `entity.scope`.
    pub fn access(&self, entity: &str, scope: &str) -> ScopeAccess {
        self.grants.scope_access(entity, scope)
    }

    /// The role's scopes, flat permissions and modules, without actions.
    pub fn grants(&self) -> &CompiledPermissions {
        &self.grants
    }

    /// The actions the role grants: `entity -> actions`. A granted action is
    /// only effective once the caller's compiled scopes meet its requirements.
    pub fn actions(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.actions
    }

    /// Whether the role grants `entity.action` (before requirements).
    pub fn grants_action(&self, entity: &str, action: &str) -> bool {
        self.actions
            .get(entity)
            .is_some_and(|actions| actions.contains(action))
    }
}

/// Keys become JSON object keys and parts of `<entity>.<action>`, so they are
/// kept to a character set that needs no escaping and contains no dot.
fn check_key(kind: &'static str, key: &str) -> Result<(), CatalogueError> {
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
/// seed 000's dotted strings), so only what can never match is refused.
fn check_free_form(kind: &'static str, value: &str) -> Result<(), CatalogueError> {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(default)]
    entities: Vec<Object<RawEntity>>,
    #[serde(default)]
    roles: Vec<Object<RawRole>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    key: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    scopes: Vec<Object<RawScope>>,
    #[serde(default)]
    actions: Vec<Object<RawAction>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScope {
    key: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    key: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    requires: Entries<ScopeAccess>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    id: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    scopes: Entries<Entries<ScopeAccess>>,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    modules: Vec<String>,
}

/// A struct that must be written as a JSON object.
///
/// Derived struct impls also accept a JSON array of the field values in
/// order, so `[[], []]` would be an empty catalogue; a catalogue is easier
/// to audit when every value is labelled.
struct Object<T>(T);

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
struct Entries<V>(Vec<(String, V)>);

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

    const STUDENT_SCOPES: [&str; 8] = [
        "anagraphic",
        "sensitive",
        "attendance",
        "scoring",
        "financial",
        "family",
        "documents",
        "enrollment",
    ];

    /// A valid minimal catalogue, to be broken one way per test.
    fn base() -> serde_json::Value {
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

    fn error_of(doc: &serde_json::Value) -> String {
        load(doc).unwrap_err().to_string()
    }

    #[test]
    fn format_block_in_the_module_docs_is_a_valid_catalogue() {
        // The annotated block cannot be a doc test, so it is checked here
        // with its comments and `//! ` prefixes stripped.
        let source = include_str!("catalogue.rs");
        let block: String = source
            .lines()
            .filter_map(|line| line.strip_prefix("//!"))
            .skip_while(|line| line.trim() != "```json")
            .skip(1)
            .take_while(|line| line.trim() != "```")
            .map(|line| line.split("  //").next().unwrap_or(line))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(block.contains("\"requires\""), "format block not found");
        let catalogue = Catalogue::from_json(&block).unwrap();
        let admin = catalogue.compile_roles(["admin"]);
        assert!(admin.has_action("students", "create"));
        assert!(admin.has_permission("inventory.regions.delete"));
        assert!(admin.has_module("finance"));
    }

    #[test]
    fn base_catalogue_is_valid() {
        let catalogue = load(&base()).unwrap();
        assert_eq!(catalogue.entities().len(), 1);
        assert_eq!(catalogue.role("admin").unwrap().name(), "Admin");
    }

    #[test]
    fn students_fixture_has_eight_scopes_two_actions_and_eleven_roles() {
        let catalogue = Catalogue::students_fixture();
        let students = catalogue.entity("students").unwrap();
        let scopes: Vec<&str> = students.scopes().map(ScopeDef::key).collect();
        assert_eq!(scopes, STUDENT_SCOPES);
        let actions: Vec<&str> = students.actions().map(ActionDef::key).collect();
        assert_eq!(actions, ["create", "delete"]);
        for action in students.actions() {
            let requires: Vec<_> = action.requirements().collect();
            assert_eq!(
                requires,
                [
                    ("anagraphic", ScopeAccess::Write),
                    ("sensitive", ScopeAccess::Write)
                ],
                "{}",
                action.key()
            );
        }
        assert_eq!(catalogue.roles().len(), 11);
    }

    #[test]
    fn students_fixture_maps_the_seed_fields() {
        let catalogue = Catalogue::students_fixture();
        let students = catalogue.entity("students").unwrap();
        let expected: [(&str, &[&str]); 8] = [
            (
                "anagraphic",
                &[
                    "firstName",
                    "lastName",
                    "dateOfBirth",
                    "gender",
                    "nationality",
                    "address",
                    "photo",
                    "taxCode",
                ],
            ),
            (
                "sensitive",
                &[
                    "medical_records.*",
                    "disabilityInfo",
                    "psychological_notes.*",
                    "dietaryRestrictions",
                ],
            ),
            (
                "attendance",
                &[
                    "attendance_records.*",
                    "reason",
                    "timestamp",
                    "excusedBy",
                    "daily_class_lists.*",
                ],
            ),
            ("scoring", &["grades.*", "evaluations.*", "report_cards.*"]),
            (
                "financial",
                &["payment_plans.*", "fees.*", "invoices.*", "deposits.*"],
            ),
            (
                "family",
                &[
                    "parents.firstName",
                    "parents.lastName",
                    "parents.phone",
                    "parents.email",
                    "student_parents.*",
                    "emergency_contacts.*",
                ],
            ),
            ("documents", &["student_documents.*"]),
            (
                "enrollment",
                &[
                    "enrollment_history.*",
                    "class_assignments.*",
                    "admission_applications.*",
                ],
            ),
        ];
        for (scope, fields) in expected {
            assert_eq!(students.scope(scope).unwrap().fields(), fields, "{scope}");
            for field in fields {
                assert_eq!(students.scope_of_field(field), Some(scope));
            }
        }
        assert_eq!(students.scope_of_field("tenantId"), None);
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

    #[test]
    fn role_definition_exposes_grants_before_requirements() {
        let catalogue = Catalogue::students_fixture();
        let hr = catalogue.role("hr_secretary").unwrap();
        assert_eq!(hr.name(), "HR / Secretary");
        assert!(hr.grants_action("students", "create"));
        assert_eq!(hr.access("students", "sensitive"), ScopeAccess::Read);
        assert!(hr.grants().actions().is_empty());
        assert!(catalogue.role("Admin").is_none());
    }
}
