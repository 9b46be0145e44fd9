//! The cross-request memo of compiled role sets shared by the catalogue
//! sources: a role list compiled once is reused by every caller holding
//! the same list, within the same catalogue.

use std::{
    fmt,
    hash::{Hash, Hasher},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, OnceLock,
    },
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
    /// Tells memos apart in a token's [`TokenCompiled`]: two sources over
    /// different catalogues both use slot `(0, 0)`.
    id: u64,
    cache: moka::sync::Cache<u64, Arc<CompiledRoleSet>>,
}

/// The compilation a token's roles were first given, kept with the token
/// (its identity lives as long as its verified-token cache entry), so that
/// the token's next requests skip the memo: no hashing of its role list,
/// no cache probe, no comparison of the list.
///
/// Set once, for the first memo and catalogue slot that asked; a request
/// under another (a second source, another active tenant, a newer hosted
/// catalogue version) goes to the memo as before, so an entry kept here can
/// never answer for a catalogue it was not compiled against.
#[derive(Default)]
pub(crate) struct TokenCompiled {
    cell: OnceLock<(u64, CatalogueSlot, Arc<CompiledPermissions>)>,
}

impl fmt::Debug for TokenCompiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCompiled")
            .field("kept", &self.cell.get().map(|(_, slot, _)| slot))
            .finish()
    }
}

/// Hands each memo its [`CompiledRoleSets::id`].
static NEXT_MEMO_ID: AtomicU64 = AtomicU64::new(1);

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
            id: NEXT_MEMO_ID.fetch_add(1, Ordering::Relaxed),
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

    /// The permissions of `roles` (the roles of the token `kept` belongs
    /// to) in `slot`, compiled by `compile` on the first request for them.
    pub(crate) fn get_or_compile(
        &self,
        slot: CatalogueSlot,
        roles: &[Role],
        kept: &TokenCompiled,
        compile: impl FnOnce() -> CompiledPermissions,
    ) -> Arc<CompiledPermissions> {
        if let Some(perms) = self.kept(slot, kept) {
            return perms;
        }
        let perms = self.memoized(slot, roles, compile);
        // Only the first memo and slot are kept (see `TokenCompiled`).
        let _ = kept.cell.set((self.id, slot, perms.clone()));
        perms
    }

    /// What this memo compiled for `kept`'s token in `slot` before, if
    /// it did: a token's claims do not change, so neither does what was
    /// compiled from them.
    pub(crate) fn kept(
        &self,
        slot: CatalogueSlot,
        kept: &TokenCompiled,
    ) -> Option<Arc<CompiledPermissions>> {
        let (id, kept_slot, perms) = kept.cell.get()?;
        (*id == self.id && *kept_slot == slot).then(|| {
            metrics::builtin_load(Builtin::Catalogue, CacheLevel::Local);
            perms.clone()
        })
    }

    fn memoized(
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
    use std::cell::Cell;

    use super::*;

    #[test]
    fn a_token_keeps_its_compilation_for_its_memo_and_slot_only() {
        let memo = CompiledRoleSets::new(1_000, 16 << 20);
        let roles = [Role::new("teacher")];
        let kept = TokenCompiled::default();
        let compiles = Cell::new(0);
        let compile = || {
            compiles.set(compiles.get() + 1);
            CompiledPermissions::deny_all()
        };
        let first = memo.get_or_compile((0, 0), &roles, &kept, compile);
        // Emptied memo: the token's second request is answered from what
        // it kept, not compiled again.
        memo.clear();
        let second = memo.get_or_compile((0, 0), &roles, &kept, compile);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(compiles.get(), 1);
        // Another slot (a newer catalogue version, another tenant) and
        // another memo (another source) never get the kept compilation.
        let newer = memo.get_or_compile((1, 0), &roles, &kept, compile);
        assert!(!Arc::ptr_eq(&first, &newer));
        let other_source = CompiledRoleSets::new(1_000, 16 << 20);
        let theirs = other_source.get_or_compile((0, 0), &roles, &kept, compile);
        assert!(!Arc::ptr_eq(&first, &theirs));
        assert_eq!(compiles.get(), 3);
    }

    #[test]
    fn the_memo_is_bounded_in_bytes_as_well_as_in_sets() {
        let roles = |i: usize| vec![Role::new(format!("role-{i}-{}", "x".repeat(200)))];
        // 1,000 sets or 64 KiB: the bytes bind first (each set is some
        // 800 bytes with moka's bookkeeping).
        let memo = CompiledRoleSets::new(1_000, 64 << 10);
        for i in 0..1_000 {
            memo.get_or_compile(
                (0, 0),
                &roles(i),
                &TokenCompiled::default(),
                CompiledPermissions::deny_all,
            );
            memo.cache.run_pending_tasks();
        }
        let held = memo.len();
        assert!((1..=100).contains(&held), "{held} sets held");
        // 10 sets or 64 MiB: the count binds.
        let memo = CompiledRoleSets::new(10, 64 << 20);
        for i in 0..100 {
            memo.get_or_compile(
                (0, 0),
                &roles(i),
                &TokenCompiled::default(),
                CompiledPermissions::deny_all,
            );
        }
        let held = memo.len();
        assert!((1..=10).contains(&held), "{held} sets held");
    }
}
