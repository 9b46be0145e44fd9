//! Access levels and compiled permissions.
//!
//! [`CompiledPermissions`] is what every guard reads: the union of a caller's
//! active roles, already reduced to lookups. A route declares a
//! [`Requirement`] and [`Requirement::evaluate`] answers it with map lookups
//! only, so the per-request cost does not grow with the catalogue. The
//! JSON form of compiled permissions, served to frontends and read from a
//! remote IAM or a token, is the
//! [permissions document](super::permissions_document).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use super::readable_index::{ReadableGroups, ReadableIndex};

use serde::{Deserialize, Serialize};

// These types were declared here before they got files of their own; the
// re-exports keep their `model::access` paths working.
pub use super::permissions_document::PermissionsDocumentError;
pub use super::requirement::{Denial, PermissionRule, Requirement};

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
/// [`CompiledPermissions::from_document`] (the format is described in
/// [`permissions_document`](super::permissions_document)), or grant entries
/// one by one (for permissions carried in token claims).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledPermissions {
    scopes: BTreeMap<String, BTreeMap<String, ScopeAccess>>,
    /// The names of `scopes` again, indexed, for the keep rule of filtered
    /// responses; kept in step by every method that grants a scope.
    readable: ReadableIndex,
    actions: BTreeMap<String, BTreeSet<String>>,
    permissions: BTreeSet<String>,
    modules: BTreeSet<String>,
    /// The first second (unix) at which these permissions are no longer
    /// what the caller holds; `None` while nothing scheduled changes them.
    valid_until: Option<u64>,
}

impl CompiledPermissions {
    /// Permissions that deny every requirement.
    pub const fn deny_all() -> Self {
        Self {
            scopes: BTreeMap::new(),
            readable: ReadableIndex::new(),
            actions: BTreeMap::new(),
            permissions: BTreeSet::new(),
            modules: BTreeSet::new(),
            valid_until: None,
        }
    }

    /// The first second (unix time) at which these permissions stop being
    /// the caller's: the earliest end of a temporal role assignment they
    /// were compiled from, or the earliest start of one not yet active.
    /// `None` when no scheduled change is known. Caches never keep
    /// permissions past this instant.
    pub fn valid_until(&self) -> Option<u64> {
        self.valid_until
    }

    /// Estimated heap bytes, for the caches that weigh what they hold: a
    /// B-tree element costs its key and value about one and a half times
    /// over (nodes run between half and fully occupied), plus each name's
    /// own allocation.
    pub(crate) fn heap_bytes(&self) -> usize {
        use crate::cache_bound::alloc_bytes;
        use std::mem::size_of;
        fn slot<K, V>() -> usize {
            (size_of::<K>() + size_of::<V>()) * 3 / 2
        }
        let name = |s: &String| alloc_bytes(s.len());
        let scopes: usize = self
            .scopes
            .iter()
            .map(|(entity, groups)| {
                slot::<String, BTreeMap<String, ScopeAccess>>()
                    + name(entity)
                    + groups
                        .keys()
                        .map(|g| slot::<String, ScopeAccess>() + name(g))
                        .sum::<usize>()
            })
            .sum();
        let actions: usize = self
            .actions
            .iter()
            .map(|(entity, actions)| {
                slot::<String, BTreeSet<String>>()
                    + name(entity)
                    + actions
                        .iter()
                        .map(|a| slot::<String, ()>() + name(a))
                        .sum::<usize>()
            })
            .sum();
        let sets: usize = self
            .permissions
            .iter()
            .chain(&self.modules)
            .map(|p| slot::<String, ()>() + name(p))
            .sum();
        size_of::<Self>() + scopes + self.readable.heap_bytes() + actions + sets
    }

    /// The groups of `entity` the caller can read, indexed: what the keep
    /// rule of a filtered response asks once per top-level key.
    pub(crate) fn readable_groups(&self, entity: &str) -> Option<&ReadableGroups> {
        self.readable.groups(entity)
    }

    /// Ends the validity at `unix_seconds` (or earlier, if an earlier end is
    /// already set): the earliest end wins.
    pub fn expire_at(&mut self, unix_seconds: u64) -> &mut Self {
        self.valid_until = Some(
            self.valid_until
                .map_or(unix_seconds, |v| v.min(unix_seconds)),
        );
        self
    }

    /// Whether these permissions are still valid at `now` (unix seconds).
    pub fn is_valid_at(&self, now: u64) -> bool {
        self.valid_until.is_none_or(|until| now < until)
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
        let (entity, scope) = (entity.into(), scope.into());
        self.readable.insert(&entity, &scope);
        let slot = self
            .scopes
            .entry(entity)
            .or_default()
            .entry(scope)
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
                self.readable.insert(entity, scope);
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
        if let Some(until) = other.valid_until {
            self.expire_at(until);
        }
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
    /// This is the coarse entity gate of [`Requirement::Scopes`] (and so of
    /// `ScopeGuard`). A `level` of [`ScopeAccess::None`] is treated as
    /// [`ScopeAccess::Read`]: a gate must never open for a caller who holds
    /// nothing on the entity.
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
}

impl Default for CompiledPermissions {
    /// The same as [`CompiledPermissions::deny_all`].
    fn default() -> Self {
        Self::deny_all()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    pub(crate) fn teacher() -> CompiledPermissions {
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

    pub(crate) fn access() -> impl Strategy<Value = ScopeAccess> {
        prop_oneof![
            Just(ScopeAccess::None),
            Just(ScopeAccess::Read),
            Just(ScopeAccess::Write)
        ]
    }

    pub(crate) fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["students", "teachers", "a", "b.c", "finance", ""])
            .prop_map(str::to_owned)
    }

    pub(crate) fn grants() -> impl Strategy<Value = CompiledPermissions> {
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

    proptest! {
        #[test]
        fn write_on_any_scope_implies_read_on_any_scope(perms in grants(), entity in name()) {
            if perms.has_any_scope(&entity, ScopeAccess::Write) {
                prop_assert!(perms.has_any_scope(&entity, ScopeAccess::Read));
            }
            for scope in perms.writable_scopes(&entity) {
                prop_assert!(perms.can_read(&entity, scope));
            }
        }

        /// The index the keep rule asks holds the ordered map's names,
        /// however the permissions were granted and merged.
        #[test]
        fn the_readable_index_agrees_with_can_read(
            a in grants(),
            b in grants(),
            entity in name(),
            scope in name(),
        ) {
            let mut merged = a.clone();
            merged.merge(&b);
            for perms in [&a, &b, &merged] {
                for (entity, scopes) in perms.scopes() {
                    let groups = perms.readable_groups(entity);
                    for scope in scopes.keys() {
                        prop_assert!(groups.is_some_and(|g| g.contains(scope)));
                    }
                }
                let indexed = perms
                    .readable_groups(&entity)
                    .is_some_and(|g| g.contains(&scope));
                prop_assert_eq!(indexed, perms.can_read(&entity, &scope));
            }
        }
    }
}
