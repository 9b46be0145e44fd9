//! Access levels, compiled permissions and route requirements.
//!
//! [`CompiledPermissions`] is what every guard reads: the union of a caller's
//! active roles, already reduced to lookups. A route declares a
//! [`Requirement`] and [`Requirement::evaluate`] answers it with map lookups
//! only, so the per-request cost does not grow with the catalogue.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How much of a scope a caller may touch: `None < Read < Write`.
///
/// `Write` implies `Read`, which is why the ordering is meaningful and
/// "highest access wins" is plain [`Ord::max`]. On the wire the levels are
/// `"NONE"`, `"READ"` and `"WRITE"`; lower-case spellings are accepted on
/// input.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum ScopeAccess {
    /// No access; never stored in [`CompiledPermissions`].
    #[default]
    #[serde(rename = "NONE", alias = "none")]
    None,
    /// The scope group may be read.
    #[serde(rename = "READ", alias = "read")]
    Read,
    /// The scope group may be read and written.
    #[serde(rename = "WRITE", alias = "write")]
    Write,
}

impl ScopeAccess {
    /// The wire spelling: `"NONE"`, `"READ"` or `"WRITE"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Read => "READ",
            Self::Write => "WRITE",
        }
    }

    /// Whether this level is at least `required`.
    pub fn satisfies(self, required: ScopeAccess) -> bool {
        self >= required
    }
}

impl fmt::Display for ScopeAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string is not an access level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope access `{0}`, expected NONE, READ or WRITE")]
pub struct ParseScopeAccessError(String);

impl FromStr for ScopeAccess {
    type Err = ParseScopeAccessError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "NONE" | "none" => Ok(Self::None),
            "READ" | "read" => Ok(Self::Read),
            "WRITE" | "write" => Ok(Self::Write),
            other => Err(ParseScopeAccessError(other.to_owned())),
        }
    }
}

/// A caller's effective permissions, ready for lookups.
///
/// Holds `entity -> scope -> access` (levels of [`ScopeAccess::None`] are
/// never stored), `entity -> effective actions`, flat permission strings
/// (`inventory.regions.delete`) and modules (`finance`). The [`Default`] value
/// denies everything.
///
/// Build one with [`Catalogue::compile`](super::Catalogue::compile), parse
/// one from an IAM's `GET /permissions` response with
/// [`CompiledPermissions::from_frontend_json`], or grant entries one by one
/// (for permissions carried in token claims).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledPermissions {
    scopes: BTreeMap<String, BTreeMap<String, ScopeAccess>>,
    actions: BTreeMap<String, BTreeSet<String>>,
    permissions: BTreeSet<String>,
    modules: BTreeSet<String>,
}

impl CompiledPermissions {
    /// Permissions that deny every requirement.
    pub const fn deny_all() -> Self {
        Self {
            scopes: BTreeMap::new(),
            actions: BTreeMap::new(),
            permissions: BTreeSet::new(),
            modules: BTreeSet::new(),
        }
    }

    /// Whether nothing at all is granted.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
            && self.actions.is_empty()
            && self.permissions.is_empty()
            && self.modules.is_empty()
    }

    /// Raises `entity.scope` to `access`; a lower level never lowers it.
    ///
    /// Returns `self` so grants can be chained.
    pub fn grant_scope(
        &mut self,
        entity: impl Into<String>,
        scope: impl Into<String>,
        access: ScopeAccess,
    ) -> &mut Self {
        // NONE is never stored so that "entity present" means "some access".
        if access == ScopeAccess::None {
            return self;
        }
        let slot = self
            .scopes
            .entry(entity.into())
            .or_default()
            .entry(scope.into())
            .or_default();
        *slot = (*slot).max(access);
        self
    }

    /// Marks `entity.action` as effective.
    ///
    /// No scope requirement is checked here: whoever grants the action
    /// directly (a token claim, the IAM's response) vouches for it.
    pub fn grant_action(
        &mut self,
        entity: impl Into<String>,
        action: impl Into<String>,
    ) -> &mut Self {
        self.actions
            .entry(entity.into())
            .or_default()
            .insert(action.into());
        self
    }

    /// Adds a flat permission string such as `inventory.regions.delete`.
    pub fn grant_permission(&mut self, permission: impl Into<String>) -> &mut Self {
        self.permissions.insert(permission.into());
        self
    }

    /// Adds a module such as `finance`.
    pub fn grant_module(&mut self, module: impl Into<String>) -> &mut Self {
        self.modules.insert(module.into());
        self
    }

    /// Unions `other` into `self`; the highest access wins per scope.
    pub fn merge(&mut self, other: &CompiledPermissions) -> &mut Self {
        for (entity, scopes) in &other.scopes {
            let mine = self.scopes.entry(entity.clone()).or_default();
            for (scope, access) in scopes {
                let slot = mine.entry(scope.clone()).or_default();
                *slot = (*slot).max(*access);
            }
        }
        for (entity, actions) in &other.actions {
            self.actions
                .entry(entity.clone())
                .or_default()
                .extend(actions.iter().cloned());
        }
        self.permissions.extend(other.permissions.iter().cloned());
        self.modules.extend(other.modules.iter().cloned());
        self
    }

    /// The access to `entity.scope`, [`ScopeAccess::None`] when not granted.
    pub fn scope_access(&self, entity: &str, scope: &str) -> ScopeAccess {
        self.scopes
            .get(entity)
            .and_then(|scopes| scopes.get(scope))
            .copied()
            .unwrap_or_default()
    }

    /// Whether ANY scope of `entity` is granted at `level` or above.
    ///
    /// This is the coarse entity gate of seed 002's ScopeGuard. A `level` of
    /// [`ScopeAccess::None`] is treated as [`ScopeAccess::Read`]: a gate must
    /// never open for a caller who holds nothing on the entity.
    pub fn has_any_scope(&self, entity: &str, level: ScopeAccess) -> bool {
        let level = level.max(ScopeAccess::Read);
        self.scopes
            .get(entity)
            .is_some_and(|scopes| scopes.values().any(|access| *access >= level))
    }

    /// Whether `entity.scope` may be read (READ or WRITE).
    pub fn can_read(&self, entity: &str, scope: &str) -> bool {
        self.scope_access(entity, scope) >= ScopeAccess::Read
    }

    /// Whether `entity.scope` may be written.
    pub fn can_write(&self, entity: &str, scope: &str) -> bool {
        self.scope_access(entity, scope) >= ScopeAccess::Write
    }

    /// Whether `entity.action` is effective.
    pub fn has_action(&self, entity: &str, action: &str) -> bool {
        self.actions
            .get(entity)
            .is_some_and(|actions| actions.contains(action))
    }

    /// Whether the flat permission string is granted (exact match).
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// Whether the module is granted (exact match).
    pub fn has_module(&self, module: &str) -> bool {
        self.modules.contains(module)
    }

    /// The scopes of `entity` with READ or WRITE, in key order.
    pub fn readable_scopes<'a>(&'a self, entity: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.scopes_at_least(entity, ScopeAccess::Read)
    }

    /// The scopes of `entity` with WRITE, in key order.
    pub fn writable_scopes<'a>(&'a self, entity: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.scopes_at_least(entity, ScopeAccess::Write)
    }

    fn scopes_at_least<'a>(
        &'a self,
        entity: &str,
        level: ScopeAccess,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.scopes
            .get(entity)
            .into_iter()
            .flatten()
            .filter(move |(_, access)| **access >= level)
            .map(|(scope, _)| scope.as_str())
    }

    /// Every granted scope: `entity -> scope -> access`, NONE omitted.
    pub fn scopes(&self) -> &BTreeMap<String, BTreeMap<String, ScopeAccess>> {
        &self.scopes
    }

    /// Every effective action: `entity -> actions`.
    pub fn actions(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.actions
    }

    /// Every flat permission string.
    pub fn permissions(&self) -> &BTreeSet<String> {
        &self.permissions
    }

    /// Every module.
    pub fn modules(&self) -> &BTreeSet<String> {
        &self.modules
    }

    /// The entity-grouped document of seed 002 §4 (`GET /permissions`).
    ///
    /// Every entity with a granted scope or action maps to
    /// `{"scopes": {scope: "READ" | "WRITE"}, "actions": {action: true}}`;
    /// NONE scopes are omitted and `actions` is `{}` when there are none.
    /// When flat permissions or modules are granted they are added as
    /// top-level `"permissions"` and `"modules"` string arrays, so a
    /// seed 002 caller with neither sees exactly the seed's shape. Those two
    /// keys are reserved: the catalogue rejects entities named like them, and
    /// here a non-empty array takes the key over such an entity.
    ///
    /// ```
    /// # use iam_guard::model::{CompiledPermissions, ScopeAccess};
    /// let mut perms = CompiledPermissions::deny_all();
    /// perms
    ///     .grant_scope("students", "anagraphic", ScopeAccess::Write)
    ///     .grant_action("students", "create");
    /// assert_eq!(
    ///     perms.to_frontend_json(),
    ///     serde_json::json!({
    ///         "students": {
    ///             "scopes": { "anagraphic": "WRITE" },
    ///             "actions": { "create": true }
    ///         }
    ///     })
    /// );
    /// ```
    pub fn to_frontend_json(&self) -> Value {
        let mut doc = Map::new();
        let entities: BTreeSet<&String> = self.scopes.keys().chain(self.actions.keys()).collect();
        for entity in entities {
            let scopes: Map<String, Value> = self
                .scopes
                .get(entity)
                .into_iter()
                .flatten()
                .map(|(scope, access)| (scope.clone(), Value::from(access.as_str())))
                .collect();
            let actions: Map<String, Value> = self
                .actions
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
        if !self.permissions.is_empty() {
            doc.insert(
                "permissions".to_owned(),
                self.permissions.iter().cloned().collect(),
            );
        }
        if !self.modules.is_empty() {
            doc.insert("modules".to_owned(), self.modules.iter().cloned().collect());
        }
        Value::Object(doc)
    }

    /// Parses the document [`to_frontend_json`](Self::to_frontend_json)
    /// produces, as served by an IAM's `GET /permissions`.
    ///
    /// Top-level object values are entities; top-level `"permissions"` and
    /// `"modules"` arrays are the flat grants. Inside an entity, keys other
    /// than `scopes` and `actions` (such as seed 002 §9's
    /// `customFieldDefinitions`) are ignored, and an action mapped to `false`
    /// is not granted.
    ///
    /// # Errors
    ///
    /// Returns a [`FrontendJsonError`] naming the first value that does not
    /// fit the shape; nothing is granted from a document that fails.
    pub fn from_frontend_json(doc: &Value) -> Result<Self, FrontendJsonError> {
        let Value::Object(doc) = doc else {
            return Err(FrontendJsonError::NotAnObject {
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
                            return Err(FrontendJsonError::NotAStringArray { key: key.clone() });
                        };
                        if key == "permissions" {
                            perms.grant_permission(item.clone());
                        } else {
                            perms.grant_module(item.clone());
                        }
                    }
                }
                _ => return Err(FrontendJsonError::NotAnObject { path: key.clone() }),
            }
        }
        Ok(perms)
    }

    fn parse_entity(
        &mut self,
        entity: &str,
        group: &Map<String, Value>,
    ) -> Result<(), FrontendJsonError> {
        match group.get("scopes") {
            None | Some(Value::Null) => {}
            Some(Value::Object(scopes)) => {
                for (scope, access) in scopes {
                    let parsed = access
                        .as_str()
                        .and_then(|access| access.parse::<ScopeAccess>().ok())
                        .ok_or_else(|| FrontendJsonError::InvalidAccess {
                            entity: entity.to_owned(),
                            scope: scope.clone(),
                        })?;
                    self.grant_scope(entity, scope.clone(), parsed);
                }
            }
            Some(_) => {
                return Err(FrontendJsonError::NotAnObject {
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
                            return Err(FrontendJsonError::NotABoolean {
                                entity: entity.to_owned(),
                                action: action.clone(),
                            })
                        }
                    }
                }
            }
            Some(_) => {
                return Err(FrontendJsonError::NotAnObject {
                    path: format!("{entity}.actions"),
                })
            }
        }
        Ok(())
    }
}

impl Default for CompiledPermissions {
    /// The same as [`CompiledPermissions::deny_all`].
    fn default() -> Self {
        Self::deny_all()
    }
}

/// Why a `GET /permissions` document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrontendJsonError {
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
}

/// What a route demands of the caller.
///
/// Evaluated by [`Requirement::evaluate`] against the caller's
/// [`CompiledPermissions`]; each variant fails with its own [`Denial`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Requirement {
    /// ANY scope of `entity` at `level` or above (seed 002
    /// `@RequireScopes`); fails with [`Denial::InsufficientScope`].
    Scopes {
        /// The entity, such as `students`.
        entity: String,
        /// The lowest acceptable level; NONE counts as READ.
        level: ScopeAccess,
    },
    /// The effective action `entity.action` (seed 002 `@RequireAction`);
    /// fails with [`Denial::ActionNotPermitted`].
    Action {
        /// The entity, such as `students`.
        entity: String,
        /// The action, such as `create`.
        action: String,
    },
    /// Flat permission strings; fails with [`Denial::PermissionDenied`].
    Permissions(PermissionRule),
    /// A module such as `finance`; fails with [`Denial::PermissionDenied`].
    Module(String),
}

/// How a [`Requirement::Permissions`] combines its strings.
///
/// An empty list denies under either rule: a requirement that names nothing
/// is a wiring mistake, and failing closed makes it visible.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PermissionRule {
    /// Every permission must be granted.
    AllOf(Vec<String>),
    /// At least one permission must be granted.
    AnyOf(Vec<String>),
}

impl Requirement {
    /// ANY scope of `entity` at `level` or above.
    pub fn scopes(entity: impl Into<String>, level: ScopeAccess) -> Self {
        Self::Scopes {
            entity: entity.into(),
            level,
        }
    }

    /// The effective action `entity.action`.
    pub fn action(entity: impl Into<String>, action: impl Into<String>) -> Self {
        Self::Action {
            entity: entity.into(),
            action: action.into(),
        }
    }

    /// Every one of `permissions`.
    pub fn all_of<I, S>(permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Permissions(PermissionRule::AllOf(
            permissions.into_iter().map(Into::into).collect(),
        ))
    }

    /// At least one of `permissions`.
    pub fn any_of<I, S>(permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Permissions(PermissionRule::AnyOf(
            permissions.into_iter().map(Into::into).collect(),
        ))
    }

    /// The module `module`.
    pub fn module(module: impl Into<String>) -> Self {
        Self::Module(module.into())
    }

    /// The entity the requirement is about, for the field guards.
    ///
    /// `Some` for [`Requirement::Scopes`] and [`Requirement::Action`] (seed
    /// 002: the field guards derive the entity from either), `None` for
    /// flat permissions and modules.
    pub fn entity(&self) -> Option<&str> {
        match self {
            Self::Scopes { entity, .. } | Self::Action { entity, .. } => Some(entity),
            Self::Permissions(_) | Self::Module(_) => None,
        }
    }

    /// Checks the requirement against `perms` with lookups only.
    ///
    /// # Errors
    ///
    /// Returns the [`Denial`] the variant maps to when `perms` falls short.
    pub fn evaluate(&self, perms: &CompiledPermissions) -> Result<(), Denial> {
        let allowed = match self {
            Self::Scopes { entity, level } => perms.has_any_scope(entity, *level),
            Self::Action { entity, action } => perms.has_action(entity, action),
            Self::Permissions(PermissionRule::AllOf(required)) => {
                !required.is_empty() && required.iter().all(|p| perms.has_permission(p))
            }
            Self::Permissions(PermissionRule::AnyOf(required)) => {
                required.iter().any(|p| perms.has_permission(p))
            }
            Self::Module(module) => perms.has_module(module),
        };
        if allowed {
            Ok(())
        } else {
            Err(self.denial())
        }
    }

    /// The denial this requirement produces when it is not met.
    pub fn denial(&self) -> Denial {
        match self {
            Self::Scopes { .. } => Denial::InsufficientScope,
            Self::Action { .. } => Denial::ActionNotPermitted,
            Self::Permissions(_) | Self::Module(_) => Denial::PermissionDenied,
        }
    }
}

impl fmt::Display for Requirement {
    /// A compact form for audit logs, such as `scopes students >= WRITE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scopes { entity, level } => write!(f, "scopes {entity} >= {level}"),
            Self::Action { entity, action } => write!(f, "action {entity}.{action}"),
            Self::Permissions(PermissionRule::AllOf(required)) => {
                write!(f, "all of [{}]", required.join(", "))
            }
            Self::Permissions(PermissionRule::AnyOf(required)) => {
                write!(f, "any of [{}]", required.join(", "))
            }
            Self::Module(module) => write!(f, "module {module}"),
        }
    }
}

/// Why [`Requirement::evaluate`] refused; each maps to one 403 code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// No scope of the entity at the required level: `INSUFFICIENT_SCOPE`.
    #[error("insufficient scope")]
    InsufficientScope,
    /// The action is not effective: `ACTION_NOT_PERMITTED`.
    #[error("action not permitted")]
    ActionNotPermitted,
    /// A flat permission or module is missing: `PERMISSION_DENIED`.
    #[error("permission denied")]
    PermissionDenied,
}

impl Denial {
    /// The error code the HTTP layer sends with its 403.
    pub const fn code(self) -> &'static str {
        match self {
            Self::InsufficientScope => "INSUFFICIENT_SCOPE",
            Self::ActionNotPermitted => "ACTION_NOT_PERMITTED",
            Self::PermissionDenied => "PERMISSION_DENIED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn teacher() -> CompiledPermissions {
        let mut perms = CompiledPermissions::deny_all();
        perms
            .grant_scope("students", "anagraphic", ScopeAccess::Read)
            .grant_scope("students", "attendance", ScopeAccess::Write)
            .grant_action("students", "export")
            .grant_permission("inventory.regions.view")
            .grant_permission("inventory.regions.update")
            .grant_module("finance");
        perms
    }

    #[test]
    fn scope_access_orders_none_read_write() {
        assert!(ScopeAccess::None < ScopeAccess::Read);
        assert!(ScopeAccess::Read < ScopeAccess::Write);
        assert!(ScopeAccess::Write.satisfies(ScopeAccess::Read));
        assert!(!ScopeAccess::Read.satisfies(ScopeAccess::Write));
        assert_eq!(ScopeAccess::default(), ScopeAccess::None);
    }

    #[test]
    fn scope_access_serializes_upper_case_and_reads_lower_case() {
        assert_eq!(
            serde_json::to_value(ScopeAccess::Write).unwrap(),
            json!("WRITE")
        );
        for (text, level) in [
            ("\"NONE\"", ScopeAccess::None),
            ("\"none\"", ScopeAccess::None),
            ("\"READ\"", ScopeAccess::Read),
            ("\"read\"", ScopeAccess::Read),
            ("\"WRITE\"", ScopeAccess::Write),
            ("\"write\"", ScopeAccess::Write),
        ] {
            assert_eq!(serde_json::from_str::<ScopeAccess>(text).unwrap(), level);
        }
        assert!(serde_json::from_str::<ScopeAccess>("\"admin\"").is_err());
        assert_eq!("read".parse::<ScopeAccess>(), Ok(ScopeAccess::Read));
        assert_eq!(
            "Read".parse::<ScopeAccess>().unwrap_err().to_string(),
            "unknown scope access `Read`, expected NONE, READ or WRITE"
        );
    }

    #[test]
    fn lookups_answer_from_the_grants() {
        let perms = teacher();
        assert_eq!(
            perms.scope_access("students", "anagraphic"),
            ScopeAccess::Read
        );
        assert_eq!(
            perms.scope_access("students", "sensitive"),
            ScopeAccess::None
        );
        assert_eq!(
            perms.scope_access("teachers", "anagraphic"),
            ScopeAccess::None
        );
        assert!(perms.can_read("students", "attendance"));
        assert!(perms.can_write("students", "attendance"));
        assert!(perms.can_read("students", "anagraphic"));
        assert!(!perms.can_write("students", "anagraphic"));
        assert!(perms.has_any_scope("students", ScopeAccess::Write));
        assert!(!perms.has_any_scope("teachers", ScopeAccess::Read));
        assert!(perms.has_action("students", "export"));
        assert!(!perms.has_action("students", "create"));
        assert!(perms.has_permission("inventory.regions.view"));
        assert!(!perms.has_permission("inventory.regions"));
        assert!(perms.has_module("finance"));
        assert!(!perms.has_module("market"));
        assert_eq!(
            perms.readable_scopes("students").collect::<Vec<_>>(),
            ["anagraphic", "attendance"]
        );
        assert_eq!(
            perms.writable_scopes("students").collect::<Vec<_>>(),
            ["attendance"]
        );
        assert_eq!(perms.readable_scopes("nobody").count(), 0);
    }

    #[test]
    fn granting_a_lower_level_never_lowers_access() {
        let mut perms = CompiledPermissions::deny_all();
        perms
            .grant_scope("students", "family", ScopeAccess::Write)
            .grant_scope("students", "family", ScopeAccess::Read)
            .grant_scope("students", "family", ScopeAccess::None);
        assert_eq!(perms.scope_access("students", "family"), ScopeAccess::Write);
    }

    #[test]
    fn granting_none_stores_nothing() {
        let mut perms = CompiledPermissions::deny_all();
        perms.grant_scope("students", "family", ScopeAccess::None);
        assert!(perms.is_empty());
        assert_eq!(perms, CompiledPermissions::default());
    }

    #[test]
    fn scope_gate_at_none_still_needs_some_access() {
        let perms = teacher();
        assert!(perms.has_any_scope("students", ScopeAccess::None));
        assert!(!perms.has_any_scope("teachers", ScopeAccess::None));
        assert_eq!(
            Requirement::scopes("teachers", ScopeAccess::None).evaluate(&perms),
            Err(Denial::InsufficientScope)
        );
    }

    #[test]
    fn merge_keeps_the_highest_access_and_unions_the_rest() {
        let mut a = CompiledPermissions::deny_all();
        a.grant_scope("students", "anagraphic", ScopeAccess::Write)
            .grant_scope("students", "family", ScopeAccess::Read)
            .grant_action("students", "create")
            .grant_module("basic");
        let mut b = CompiledPermissions::deny_all();
        b.grant_scope("students", "anagraphic", ScopeAccess::Read)
            .grant_scope("students", "family", ScopeAccess::Write)
            .grant_action("students", "delete")
            .grant_permission("finance.expense.view");
        a.merge(&b);
        assert_eq!(a.scope_access("students", "anagraphic"), ScopeAccess::Write);
        assert_eq!(a.scope_access("students", "family"), ScopeAccess::Write);
        assert!(a.has_action("students", "create") && a.has_action("students", "delete"));
        assert!(a.has_module("basic") && a.has_permission("finance.expense.view"));
    }

    #[test]
    fn scopes_requirement_passes_and_fails_with_insufficient_scope() {
        let perms = teacher();
        assert_eq!(
            Requirement::scopes("students", ScopeAccess::Read).evaluate(&perms),
            Ok(())
        );
        assert_eq!(
            Requirement::scopes("students", ScopeAccess::Write).evaluate(&perms),
            Ok(())
        );
        let mut reader = CompiledPermissions::deny_all();
        reader.grant_scope("students", "anagraphic", ScopeAccess::Read);
        assert_eq!(
            Requirement::scopes("students", ScopeAccess::Write).evaluate(&reader),
            Err(Denial::InsufficientScope)
        );
        assert_eq!(
            Requirement::scopes("teachers", ScopeAccess::Read).evaluate(&reader),
            Err(Denial::InsufficientScope)
        );
    }

    #[test]
    fn action_requirement_passes_and_fails_with_action_not_permitted() {
        let perms = teacher();
        assert_eq!(
            Requirement::action("students", "export").evaluate(&perms),
            Ok(())
        );
        assert_eq!(
            Requirement::action("students", "create").evaluate(&perms),
            Err(Denial::ActionNotPermitted)
        );
        assert_eq!(
            Requirement::action("teachers", "export").evaluate(&perms),
            Err(Denial::ActionNotPermitted)
        );
    }

    #[test]
    fn all_of_needs_every_permission() {
        let perms = teacher();
        assert_eq!(
            Requirement::all_of(["inventory.regions.view", "inventory.regions.update"])
                .evaluate(&perms),
            Ok(())
        );
        assert_eq!(
            Requirement::all_of(["inventory.regions.view", "inventory.regions.delete"])
                .evaluate(&perms),
            Err(Denial::PermissionDenied)
        );
    }

    #[test]
    fn any_of_needs_one_permission() {
        let perms = teacher();
        assert_eq!(
            Requirement::any_of(["inventory.regions.delete", "inventory.regions.view"])
                .evaluate(&perms),
            Ok(())
        );
        assert_eq!(
            Requirement::any_of(["inventory.regions.delete", "inventory.racks.view"])
                .evaluate(&perms),
            Err(Denial::PermissionDenied)
        );
    }

    #[test]
    fn empty_permission_rules_deny() {
        let perms = teacher();
        let none: [&str; 0] = [];
        assert_eq!(
            Requirement::all_of(none).evaluate(&perms),
            Err(Denial::PermissionDenied)
        );
        assert_eq!(
            Requirement::any_of(none).evaluate(&perms),
            Err(Denial::PermissionDenied)
        );
    }

    #[test]
    fn module_requirement_passes_and_fails_with_permission_denied() {
        let perms = teacher();
        assert_eq!(Requirement::module("finance").evaluate(&perms), Ok(()));
        assert_eq!(
            Requirement::module("market").evaluate(&perms),
            Err(Denial::PermissionDenied)
        );
    }

    #[test]
    fn entity_comes_from_scopes_and_action_requirements_only() {
        assert_eq!(
            Requirement::scopes("students", ScopeAccess::Read).entity(),
            Some("students")
        );
        assert_eq!(
            Requirement::action("teachers", "create").entity(),
            Some("teachers")
        );
        assert_eq!(Requirement::all_of(["a.b"]).entity(), None);
        assert_eq!(Requirement::module("finance").entity(), None);
    }

    #[test]
    fn denials_carry_their_http_codes() {
        assert_eq!(Denial::InsufficientScope.code(), "INSUFFICIENT_SCOPE");
        assert_eq!(Denial::ActionNotPermitted.code(), "ACTION_NOT_PERMITTED");
        assert_eq!(Denial::PermissionDenied.code(), "PERMISSION_DENIED");
        assert_eq!(
            Denial::ActionNotPermitted.to_string(),
            "action not permitted"
        );
    }

    #[test]
    fn requirements_display_for_audit_logs() {
        assert_eq!(
            Requirement::scopes("students", ScopeAccess::Write).to_string(),
            "scopes students >= WRITE"
        );
        assert_eq!(
            Requirement::action("students", "create").to_string(),
            "action students.create"
        );
        assert_eq!(
            Requirement::any_of(["a.b", "c.d"]).to_string(),
            "any of [a.b, c.d]"
        );
        assert_eq!(Requirement::module("finance").to_string(), "module finance");
    }

    #[test]
    fn frontend_json_follows_the_seed_shape() {
        let mut perms = CompiledPermissions::deny_all();
        perms
            .grant_scope("students", "anagraphic", ScopeAccess::Write)
            .grant_scope("students", "sensitive", ScopeAccess::Write)
            .grant_scope("students", "family", ScopeAccess::None)
            .grant_action("students", "create")
            .grant_action("students", "delete")
            .grant_scope("users", "profile", ScopeAccess::Write);
        assert_eq!(
            perms.to_frontend_json(),
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
    fn frontend_json_adds_flat_permissions_and_modules_when_present() {
        let perms = teacher();
        assert_eq!(
            perms.to_frontend_json(),
            json!({
                "students": {
                    "scopes": { "anagraphic": "READ", "attendance": "WRITE" },
                    "actions": { "export": true }
                },
                "permissions": ["inventory.regions.update", "inventory.regions.view"],
                "modules": ["finance"]
            })
        );
        assert_eq!(
            CompiledPermissions::deny_all().to_frontend_json(),
            json!({})
        );
    }

    #[test]
    fn frontend_json_reads_the_seed_response() {
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
        let perms = CompiledPermissions::from_frontend_json(&doc).unwrap();
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
    fn frontend_json_rejects_what_does_not_fit() {
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
            let err = CompiledPermissions::from_frontend_json(&doc).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    fn access() -> impl Strategy<Value = ScopeAccess> {
        prop_oneof![
            Just(ScopeAccess::None),
            Just(ScopeAccess::Read),
            Just(ScopeAccess::Write)
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["students", "teachers", "a", "b.c", "finance", ""])
            .prop_map(str::to_owned)
    }

    fn grants() -> impl Strategy<Value = CompiledPermissions> {
        (
            prop::collection::vec((name(), name(), access()), 0..8),
            prop::collection::vec((name(), name()), 0..4),
            prop::collection::vec(name(), 0..4),
            prop::collection::vec(name(), 0..4),
        )
            .prop_map(|(scopes, actions, permissions, modules)| {
                let mut perms = CompiledPermissions::deny_all();
                for (entity, scope, level) in scopes {
                    perms.grant_scope(entity, scope, level);
                }
                for (entity, action) in actions {
                    perms.grant_action(entity, action);
                }
                for permission in permissions {
                    perms.grant_permission(permission);
                }
                for module in modules {
                    perms.grant_module(module);
                }
                perms
            })
    }

    fn requirement() -> impl Strategy<Value = Requirement> {
        prop_oneof![
            (name(), access()).prop_map(|(e, l)| Requirement::scopes(e, l)),
            (name(), name()).prop_map(|(e, a)| Requirement::action(e, a)),
            prop::collection::vec(name(), 0..4).prop_map(Requirement::all_of),
            prop::collection::vec(name(), 0..4).prop_map(Requirement::any_of),
            name().prop_map(Requirement::module),
        ]
    }

    proptest! {
        #[test]
        fn deny_all_denies_every_requirement(req in requirement()) {
            let denied = req.evaluate(&CompiledPermissions::deny_all());
            prop_assert_eq!(denied, Err(req.denial()));
        }

        #[test]
        fn write_on_any_scope_implies_read_on_any_scope(perms in grants(), entity in name()) {
            if perms.has_any_scope(&entity, ScopeAccess::Write) {
                prop_assert!(perms.has_any_scope(&entity, ScopeAccess::Read));
            }
            for scope in perms.writable_scopes(&entity) {
                prop_assert!(perms.can_read(&entity, scope));
            }
        }

        #[test]
        fn merging_never_removes_access(a in grants(), b in grants(), req in requirement()) {
            let mut merged = a.clone();
            merged.merge(&b);
            if req.evaluate(&a).is_ok() {
                prop_assert_eq!(req.evaluate(&merged), Ok(()));
            }
        }

        #[test]
        fn frontend_json_round_trips(perms in grants()) {
            let doc = perms.to_frontend_json();
            prop_assert_eq!(CompiledPermissions::from_frontend_json(&doc), Ok(perms));
        }
    }
}
