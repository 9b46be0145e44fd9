//! The cross-request memo of compiled role sets shared by the catalogue
//! sources: a role list compiled once is reused by every caller holding
//! the same list, within the same catalogue.

use std::{
    hash::{Hash, Hasher},
    sync::Arc,
};

use crate::{
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

/// Distinct role sets whose compiled permissions are kept.
const COMPILED_ROLE_SETS: u64 = 1_000;

impl CompiledRoleSets {
    pub(crate) fn new() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .name("iam_guard.catalogue.compiled")
                .max_capacity(COMPILED_ROLE_SETS)
                .build(),
        }
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
