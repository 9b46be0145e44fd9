//! [`HostedCatalogueSource`]: the caller's roles compiled against the
//! catalogue of its tenant, in the version the IAM serves now.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use super::{fetcher::CatalogueFetcher, version::CatalogueVersion};
use crate::{
    metrics::{self, Builtin, CacheLevel},
    model::CompiledPermissions,
    permissions::{
        role_sets::{
            CompiledRoleSets, DEFAULT_COMPILED_ROLE_SETS, DEFAULT_COMPILED_ROLE_SET_BYTES,
        },
        source::{
            assignments_in_department, assignments_of, unix_now, PermissionError, PermissionFuture,
            PermissionSource,
        },
    },
    principal::{ClaimPath, Principal},
};

/// Roles in the token compiled against the catalogue the IAM serves,
/// layered per tenant.
///
/// What [`CatalogueSource`](crate::CatalogueSource) does for a fixed
/// catalogue, over a [`CatalogueFetcher`]: the caller's tenant
/// ([`Principal::tenant_id`]: the active-tenant header when the auth layer
/// has one, else the token's tenant claim) picks the catalogue, so a
/// school's custom roles count in that school only; a caller of a tenant
/// without custom roles, or of none, gets the system roles.
///
/// - **Warm**: permissions are answered without waiting
///   ([`load_now`](PermissionSource::load_now)), and role sets without time
///   bounds are compiled once per catalogue version and tenant.
/// - **A new version**: compilations of the old one are never served
///   again. The memo is keyed by version and tenant, and forgotten when a
///   new version is in.
/// - **Cold** (nothing fetched yet): the first request waits for the one
///   fetch that all concurrent requests share; if the IAM cannot give a
///   valid catalogue, the guards answer 503 `IAM_UNAVAILABLE`.
///
/// Temporal assignments (the `role_assignments` claim) and
/// department-limited roles work as with `CatalogueSource`.
///
/// See the [module docs](super) for an example.
#[derive(Clone)]
pub struct HostedCatalogueSource {
    fetcher: CatalogueFetcher,
    assignments: ClaimPath,
    compiled: CompiledRoleSets,
    /// The newest version the memo has seen.
    memo_version: Arc<AtomicU64>,
}

impl fmt::Debug for HostedCatalogueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostedCatalogueSource")
            .field("fetcher", &self.fetcher)
            .finish_non_exhaustive()
    }
}

impl HostedCatalogueSource {
    /// Compiles against the catalogue `fetcher` serves.
    pub fn new(fetcher: CatalogueFetcher) -> Self {
        Self {
            fetcher,
            assignments: ClaimPath::new("role_assignments"),
            compiled: CompiledRoleSets::new(
                DEFAULT_COMPILED_ROLE_SETS,
                DEFAULT_COMPILED_ROLE_SET_BYTES,
            ),
            memo_version: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The claim holding temporal role assignments (default
    /// `role_assignments`).
    pub fn assignments_claim(mut self, path: impl Into<ClaimPath>) -> Self {
        self.assignments = path.into();
        self
    }

    /// Bounds of the memo of compiled role sets: at most `max_sets`
    /// distinct role lists (default 1,000) and `max_bytes` estimated bytes
    /// of compiled permissions (default 16 MiB), whichever is reached
    /// first. Starts an empty memo.
    pub fn compiled_role_sets(mut self, max_sets: u64, max_bytes: u64) -> Self {
        self.compiled = CompiledRoleSets::new(max_sets, max_bytes);
        self
    }

    /// The fetcher, for [`warm_up`](CatalogueFetcher::warm_up), the
    /// version in force and its counters.
    pub fn fetcher(&self) -> &CatalogueFetcher {
        &self.fetcher
    }

    fn permissions_in(
        &self,
        version: &CatalogueVersion,
        principal: &Principal,
    ) -> Arc<CompiledPermissions> {
        let (slot, catalogue) = version.catalogues().slot_of(principal.tenant_id());
        // Compiled for this token's roles before: so it carries no
        // assignments (its claims do not change), and the claims need not
        // be read again.
        if let Some(perms) = self
            .compiled
            .kept((version.number(), slot), principal.token_compiled())
        {
            return perms;
        }
        if self
            .assignments
            .lookup(principal.claims().as_map())
            .is_some()
        {
            metrics::builtin_load(Builtin::Catalogue, CacheLevel::Source);
            let assignments = assignments_of(&self.assignments, principal);
            return Arc::new(catalogue.compile(&assignments, unix_now()));
        }
        self.forget_versions_before(version.number());
        let roles = principal.roles();
        self.compiled.get_or_compile(
            (version.number(), slot),
            roles,
            principal.token_compiled(),
            || catalogue.compile_roles(roles.iter().map(|r| r.name())),
        )
    }

    /// Empties the memo when `number` is newer than what it holds. The key
    /// carries the version already, so this only frees the room old
    /// entries take.
    fn forget_versions_before(&self, number: u64) {
        let seen = self.memo_version.load(Ordering::Acquire);
        if seen < number
            && self
                .memo_version
                .compare_exchange(seen, number, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.compiled.clear();
        }
    }
}

impl PermissionSource for HostedCatalogueSource {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        Box::pin(async move {
            let version = self
                .fetcher
                .load()
                .await
                .map_err(|e| PermissionError::Unavailable(e.to_string()))?;
            Ok(self.permissions_in(&version, principal))
        })
    }

    fn load_now(
        &self,
        principal: &Principal,
    ) -> Option<Result<Arc<CompiledPermissions>, PermissionError>> {
        let version = self.fetcher.load_now()?;
        Some(Ok(self.permissions_in(&version, principal)))
    }

    fn in_department(
        &self,
        principal: &Principal,
        department: &str,
    ) -> Option<Arc<CompiledPermissions>> {
        // Without a usable catalogue nothing is known of any department;
        // the route guards have answered 503 before a handler asks.
        let version = self.fetcher.load_now()?;
        let catalogue = version.catalogues().for_tenant(principal.tenant_id());
        let here = assignments_in_department(&self.assignments, principal, department);
        Some(Arc::new(catalogue.compile(&here, unix_now())))
    }
}
