//! The cross-request memo of compiled role sets shared by the catalogue
//! sources: a role list compiled once is reused by every caller holding
//! the same list, within the same catalogue.

use std::{
    hash::{Hash, Hasher},
    sync::Arc,
};

use crate::{
    cache_bound::{alloc_bytes, Bound},
    metrics::{self, Builtin, CacheLevel},
    model::CompiledPermissions,
    principal::Role,
};

/// Which catalogue a role list was compiled against: the catalogue
/// version and the tenant's slot in it (see `TenantCatalogues::slot_of`).
/// A fixed catalogue is `(0, 0)`.
pub(crate) type CatalogueSlot = (u64, usize);

/// One memoized compilation: the slot and role list it was made for, kept
/// and compared on a hit so a hash collision can never hand one caller
/// another's permissions, nor one tenant's custom role another tenant's.
struct CompiledRoleSet {
    slot: CatalogueSlot,
    roles: Box<[Box<str>]>,
    perms: Arc<CompiledPermissions>,
}

/// Compiled permissions by (catalogue slot, role list). Cheap to clone;
/// clones share the memo.
#[derive(Clone)]
pub(crate) struct CompiledRoleSets {
    cache: moka::sync::Cache<u64, Arc<CompiledRoleSet>>,
}

/// Default bound of the memo, in distinct role sets.
pub(crate) const DEFAULT_COMPILED_ROLE_SETS: u64 = 1_000;
/// Default bound of the memo, in bytes (16 MiB): a thousand role sets of
/// 16 KiB of compiled permissions each, so a catalogue of large roles is
/// held to fewer sets rather than to more memory.
pub(crate) const DEFAULT_COMPILED_ROLE_SET_BYTES: u64 = 16 << 20;

impl CompiledRoleSet {
    /// Estimated heap bytes: this entry (in an `Arc`), its role names and
    /// the permissions it keeps alive.
    fn heap_bytes(&self) -> usize {
        alloc_bytes(std::mem::size_of::<Self>() + 16)
            + alloc_bytes(self.roles.len() * std::mem::size_of::<Box<str>>())
            + self
                .roles
                .iter()
                .map(|r| alloc_bytes(r.len()))
                .sum::<usize>()
            + alloc_bytes(self.perms.heap_bytes() + 16)
    }
}

impl CompiledRoleSets {
    /// A memo of at most `max_sets` role sets and `max_bytes` estimated
    /// bytes, whichever binds first.
    pub(crate) fn new(max_sets: u64, max_bytes: u64) -> Self {
        let bound = Bound::new(max_sets, max_bytes);
        Self {
            cache: moka::sync::Cache::builder()
                .name("iam_guard.catalogue.compiled")
                .max_capacity(bound.capacity())
                .weigher(bound.weigher(|_: &u64, set: &Arc<CompiledRoleSet>| set.heap_bytes()))
                .build(),
        }
    }

    /// Entries held (after pending maintenance).
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// The permissions of `roles` in `slot`, compiled by `compile` on the
    /// first request for them.
    pub(crate) fn get_or_compile(
        &self,
        slot: CatalogueSlot,
        roles: &[Role],
        compile: impl FnOnce() -> CompiledPermissions,
    ) -> Arc<CompiledPermissions> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        slot.hash(&mut hasher);
        for role in roles {
            role.name().hash(&mut hasher);
        }
        let key = hasher.finish();
        let same = |hit: &CompiledRoleSet| {
            hit.slot == slot
                && hit.roles.len() == roles.len()
                && hit.roles.iter().zip(roles).all(|(a, b)| &**a == b.name())
        };
        if let Some(hit) = self.cache.get(&key) {
            if same(&hit) {
                metrics::builtin_load(Builtin::Catalogue, CacheLevel::Local);
                return hit.perms.clone();
            }
        }
        metrics::builtin_load(Builtin::Catalogue, CacheLevel::Source);
        let perms = Arc::new(compile());
        let entry = CompiledRoleSet {
            slot,
            roles: roles.iter().map(|r| Box::from(r.name())).collect(),
            perms: perms.clone(),
        };
        self.cache.insert(key, Arc::new(entry));
        perms
    }

    /// Forgets every compilation (a new catalogue version is in: entries
    /// of the old one could never be hit again, only take room).
    pub(crate) fn clear(&self) {
        self.cache.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CompiledPermissions;

    #[test]
    fn the_memo_is_bounded_in_bytes_as_well_as_in_sets() {
        let roles = |i: usize| vec![Role::new(format!("role-{i}-{}", "x".repeat(200)))];
        // 1,000 sets or 64 KiB: the bytes bind first (each set is some
        // 800 bytes with moka's bookkeeping).
        let memo = CompiledRoleSets::new(1_000, 64 << 10);
        for i in 0..1_000 {
            memo.get_or_compile((0, 0), &roles(i), CompiledPermissions::deny_all);
            memo.cache.run_pending_tasks();
        }
        let held = memo.len();
        assert!((1..=100).contains(&held), "{held} sets held");
        // 10 sets or 64 MiB: the count binds.
        let memo = CompiledRoleSets::new(10, 64 << 20);
        for i in 0..100 {
            memo.get_or_compile((0, 0), &roles(i), CompiledPermissions::deny_all);
        }
        let held = memo.len();
        assert!((1..=10).contains(&held), "{held} sets held");
    }
}
