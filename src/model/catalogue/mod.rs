//! The RBAC catalogue: entities, scopes, actions and roles.
//!
//! A catalogue is one JSON document holding an IAM's RBAC definitions:
//! entities with their scopes, field mappings and actions (with the scope
//! levels each action requires), and roles with what they grant. It is
//! loaded once (from a file, or fetched from the IAM by the caller) with
//! [`Catalogue::from_json`], validated as a whole, and then used to
//! [`compile`](Catalogue::compile) the roles in a token into
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
//!     }],
//!     "customFieldDefinitions": [{       // optional: fields a school adds itself
//!       "key": "blood_type",             // required, unique in the entity
//!       "label": "Blood Type",           // optional (default: the key)
//!       "scope": "sensitive",            // a declared scope (default: `others`)
//!       "type": "SELECT",                // TEXT, NUMBER, DATE, BOOLEAN or SELECT
//!       "options": ["A+", "O-"],         // SELECT only, and required there
//!       "isRequired": false,             // optional: must a create carry it?
//!       "sortOrder": 0                   // optional: display order in its scope
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
//! Per-tenant role sets over these entities (each school's custom roles)
//! are the layered format of [`tenants`]: the same document with an
//! optional `tenants` map, read by [`TenantCatalogues`].
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

mod custom_fields;
mod error;
mod fixture;
mod format;
mod load;
pub mod tenants;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::access::{CompiledPermissions, ScopeAccess};
use super::custom_fields::CustomFieldDefinitions;

pub use error::CatalogueError;
#[doc(inline)]
pub use tenants::TenantCatalogues;

/// A validated RBAC catalogue.
///
/// See the [module docs](self) for the JSON format and an example.
#[derive(Clone, Debug)]
pub struct Catalogue {
    // Shared: the per-tenant catalogues of a `TenantCatalogues` all hold
    // the system's entities, and a clone costs a refcount instead of a
    // copy of every scope and field mapping.
    entities: Arc<Entities>,
    roles: Vec<RoleDef>,
    role_index: BTreeMap<String, usize>,
}

/// The entities of a catalogue, with their index by key.
#[derive(Debug, Default)]
struct Entities {
    list: Vec<EntityDef>,
    index: BTreeMap<String, usize>,
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
    custom_fields: CustomFieldDefinitions,
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

impl Catalogue {
    /// The entities, in declaration order.
    pub fn entities(&self) -> impl ExactSizeIterator<Item = &EntityDef> {
        self.entities.list.iter()
    }

    /// The entity with this key.
    pub fn entity(&self, key: &str) -> Option<&EntityDef> {
        self.entities
            .index
            .get(key)
            .and_then(|&i| self.entities.list.get(i))
    }

    /// The roles, in declaration order.
    pub fn roles(&self) -> impl ExactSizeIterator<Item = &RoleDef> {
        self.roles.iter()
    }

    /// The role with this id (an exact, case-sensitive match).
    pub fn role(&self, id: &str) -> Option<&RoleDef> {
        self.role_index.get(id).and_then(|&i| self.roles.get(i))
    }
}

impl EntityDef {
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

    /// The entity's custom field definitions (its
    /// `customFieldDefinitions`), each in a declared scope; empty when the
    /// catalogue lists none.
    pub fn custom_fields(&self) -> &CustomFieldDefinitions {
        &self.custom_fields
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_block_in_the_module_docs_is_a_valid_catalogue() {
        // The annotated block cannot be a doc test, so it is checked here
        // with its comments and `//! ` prefixes stripped.
        let source = include_str!("mod.rs");
        let block = crate::model::json_block_of_module_docs(source);
        assert!(block.contains("\"requires\""), "format block not found");
        let catalogue = Catalogue::from_json(&block).unwrap();
        let admin = catalogue.compile_roles(["admin"]);
        assert!(admin.has_action("students", "create"));
        assert!(admin.has_permission("inventory.regions.delete"));
        assert!(admin.has_module("finance"));
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
