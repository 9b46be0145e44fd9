//! Why a catalogue is rejected.

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
    /// A problem in one tenant's role set; `error` names it as it would
    /// in a plain catalogue.
    #[error("tenant `{tenant}`: {error}")]
    InTenant {
        /// The tenant id, as the document's `tenants` map spells it.
        tenant: String,
        /// What is wrong with that tenant's roles.
        error: Box<CatalogueError>,
    },
    /// A tenant role reuses the id of a system role. System roles are
    /// presets shared by every tenant: a tenant changes one by cloning it
    /// under an id of its own.
    #[error(
        "role `{role}` is a system role; a tenant cannot redefine it (clone it under a new id)"
    )]
    SystemRoleRedefined {
        /// The role id.
        role: String,
    },
    /// Two entries of `tenants` share a tenant id.
    #[error("tenant `{tenant}` is declared twice")]
    DuplicateTenant {
        /// The tenant id.
        tenant: String,
    },
    /// A custom field definition names a scope its entity does not
    /// declare (an omitted scope means `others`).
    #[error("custom field `{entity}.{field}` belongs to unknown scope `{scope}`")]
    UnknownCustomFieldScope {
        /// The entity key.
        entity: String,
        /// The custom field key.
        field: String,
        /// The undeclared scope.
        scope: String,
    },
    /// Two custom fields of one entity share a key. Their values live in
    /// one `customFields` namespace per record, whichever scope holds them.
    #[error("custom field `{field}` is declared twice in entity `{entity}`")]
    DuplicateCustomField {
        /// The entity key.
        entity: String,
        /// The custom field key.
        field: String,
    },
    /// A custom field definition cannot be satisfied or means nothing as
    /// written (a SELECT without options, options on another type, an
    /// option listed twice).
    #[error("custom field `{entity}.{field}`: {reason}")]
    InvalidCustomField {
        /// The entity key.
        entity: String,
        /// The custom field key.
        field: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
