//! Where a caller's permissions come from: the [`PermissionSource`] trait
//! and the two sources that need no I/O, [`ClaimsSource`] (permissions
//! embedded in the token) and [`CatalogueSource`] (roles in the token
//! compiled against an RBAC catalogue). The IAM's `GET /permissions` is
//! [`RemoteSource`](super::remote::RemoteSource).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Deserialize;
use serde_json::Value;

use super::role_sets::{
    CompiledRoleSets, DEFAULT_COMPILED_ROLE_SETS, DEFAULT_COMPILED_ROLE_SET_BYTES,
};
use crate::{
    metrics::{self, Builtin, CacheLevel},
    model::{Catalogue, CompiledPermissions, RoleAssignment},
    principal::{ClaimPath, Principal},
};

/// A boxed future returned by [`PermissionSource::load`].
pub type PermissionFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<CompiledPermissions>, PermissionError>> + Send + 'a>>;

/// Loads the compiled permissions of a caller.
///
/// Called at most once per request, by the first guard or extractor that
/// needs permissions, and not at all when none does; a source that does
/// I/O should also cache across requests, as
/// [`RemoteSource`](super::remote::RemoteSource) does. To appear in the
/// [`PERMISSION_LOADS`](crate::metrics::PERMISSION_LOADS) counter, call
/// [`metrics::permission_load`] from
/// `load`.
pub trait PermissionSource: Send + Sync + 'static {
    /// The permissions of `principal` in its active tenant.
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a>;

    /// The same answer as [`load`](Self::load) when it is at hand without
    /// waiting (a pure computation, a warm cache), else `None`.
    ///
    /// A guard that gets `Some` decides on the spot instead of boxing a
    /// future around the rest of the request. The default is `None`: a
    /// source only has to implement `load`.
    fn load_now(
        &self,
        principal: &Principal,
    ) -> Option<Result<Arc<CompiledPermissions>, PermissionError>> {
        let _ = principal;
        None
    }

    /// Whether [`load_now`](Self::load_now) always answers: a pure
    /// computation over the token. Default `false`; a
    /// [`UnionSource`](super::union::UnionSource) answers without waiting
    /// only when all its parts do.
    fn answers_without_waiting(&self) -> bool {
        false
    }

    /// The permissions `principal` holds in `department`: what its roles
    /// that hold everywhere grant, plus what its roles limited to that
    /// department grant. `None` when the source knows nothing of
    /// departments (the default); [`CatalogueSource`] knows.
    ///
    /// Read through [`RecordAccess`](crate::RecordAccess), which lists the
    /// departments a caller's limited roles reach.
    fn in_department(
        &self,
        principal: &Principal,
        department: &str,
    ) -> Option<Arc<CompiledPermissions>> {
        let _ = (principal, department);
        None
    }
}

impl<T: PermissionSource + ?Sized> PermissionSource for Arc<T> {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        (**self).load(principal)
    }

    fn load_now(
        &self,
        principal: &Principal,
    ) -> Option<Result<Arc<CompiledPermissions>, PermissionError>> {
        (**self).load_now(principal)
    }

    fn in_department(
        &self,
        principal: &Principal,
        department: &str,
    ) -> Option<Arc<CompiledPermissions>> {
        (**self).in_department(principal, department)
    }

    fn answers_without_waiting(&self) -> bool {
        (**self).answers_without_waiting()
    }
}

/// Loading permissions failed. The guards answer it with 503
/// `IAM_UNAVAILABLE`: a service that cannot learn what a caller may do must
/// not guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PermissionError {
    /// The IAM could not be asked.
    #[error("permissions are unavailable: {0}")]
    Unavailable(String),
    /// The IAM answered something that is not a permission document.
    #[error("the permission document is invalid: {0}")]
    Invalid(String),
}

/// Permissions embedded in the token (stateless: the IAM signs what the
/// caller may do into the access token).
///
/// Reads, each when present (claim names configurable):
///
/// | claim | shape | becomes |
/// |---|---|---|
/// | `entities` | the permissions document: `{entity: {scopes: {scope: "READ"\|"WRITE"}, actions: {action: true}}}` | scopes and actions |
/// | `permissions` | `["inventory.regions.view", ...]` | flat permissions |
/// | `modules` | `["finance", ...]` | modules |
/// | `webservices` | `{name: "full"\|"owner"}` | flat permission `name` |
/// | `organizations` | `{org: {level, webservices: [name]}}` | flat permissions of the active tenant's organization |
///
/// A claim with another shape grants nothing from that claim (fail
/// closed), and is logged.
#[derive(Debug, Clone)]
pub struct ClaimsSource {
    entities: ClaimPath,
    permissions: ClaimPath,
    modules: ClaimPath,
    webservices: ClaimPath,
    organizations: ClaimPath,
}

impl Default for ClaimsSource {
    fn default() -> Self {
        Self {
            entities: ClaimPath::new("entities"),
            permissions: ClaimPath::new("permissions"),
            modules: ClaimPath::new("modules"),
            webservices: ClaimPath::new("webservices"),
            organizations: ClaimPath::new("organizations"),
        }
    }
}

impl ClaimsSource {
    /// The default claim names of the table above.
    pub fn new() -> Self {
        Self::default()
    }

    /// The claim holding entity-grouped scopes and actions.
    pub fn entities_claim(mut self, path: impl Into<ClaimPath>) -> Self {
        self.entities = path.into();
        self
    }

    /// The claim holding flat permission strings.
    pub fn permissions_claim(mut self, path: impl Into<ClaimPath>) -> Self {
        self.permissions = path.into();
        self
    }

    /// The claim holding module names.
    pub fn modules_claim(mut self, path: impl Into<ClaimPath>) -> Self {
        self.modules = path.into();
        self
    }

    /// Compiles the permissions a token carries.
    pub fn compile(&self, principal: &Principal) -> CompiledPermissions {
        let claims = principal.claims().as_map();
        let mut perms = match self.entities.lookup(claims) {
            Some(doc) => CompiledPermissions::from_document(doc).unwrap_or_else(|e| {
                tracing::warn!(target: "iam_guard::permissions", error = %e, "ignoring malformed entities claim");
                CompiledPermissions::default()
            }),
            None => CompiledPermissions::default(),
        };
        for p in strings(self.permissions.lookup(claims)) {
            perms.grant_permission(p);
        }
        for m in strings(self.modules.lookup(claims)) {
            perms.grant_module(m);
        }
        if let Some(Value::Object(services)) = self.webservices.lookup(claims) {
            for (name, access) in services {
                if matches!(access.as_str(), Some("full" | "owner")) {
                    perms.grant_permission(name.as_str());
                }
            }
        }
        if let (Some(Value::Object(orgs)), Some(tenant)) =
            (self.organizations.lookup(claims), principal.tenant_id())
        {
            if let Some(org) = orgs.get(tenant) {
                for p in strings(org.get("webservices")) {
                    perms.grant_permission(p);
                }
            }
        }
        perms
    }
}

fn strings(value: Option<&Value>) -> impl Iterator<Item = &str> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

impl PermissionSource for ClaimsSource {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        let perms = self
            .load_now(principal)
            .expect("claims are compiled without waiting");
        Box::pin(std::future::ready(perms))
    }

    fn load_now(
        &self,
        principal: &Principal,
    ) -> Option<Result<Arc<CompiledPermissions>, PermissionError>> {
        metrics::builtin_load(Builtin::Claims, CacheLevel::Source);
        Some(Ok(Arc::new(self.compile(principal))))
    }

    fn answers_without_waiting(&self) -> bool {
        true
    }
}

/// Roles in the token compiled against an RBAC [`Catalogue`].
///
/// Role assignments come from the `role_assignments` claim when the token
/// has one (`[{"role", "validFrom", "validUntil"}]`, unix seconds, for
/// temporal roles; `valid_from`/`valid_until` are accepted too), else from
/// the principal's roles, open-ended.
///
/// The claim is read fail-closed: an entry that does not fit (a bound that
/// is not unix seconds, a missing role) is dropped whole, and a claim that
/// is not a list holds no assignment. Neither falls back to the `roles`
/// claim, which may still list the very role the IAM has expired.
///
/// Role sets without time bounds are compiled once and reused across
/// requests (the catalogue never changes under a source); temporal
/// assignments depend on the clock and are compiled per request.
///
/// A role limited to a department (`{"role": "inventory_admin",
/// "department": "dc-1"}`) counts for the route guards (the caller may act
/// somewhere), and [`in_department`](PermissionSource::in_department)
/// compiles what holds in each department, which
/// [`RecordAccess`](crate::RecordAccess) hands the handler so its queries
/// stay within the departments a role reaches.
#[derive(Clone)]
pub struct CatalogueSource {
    catalogue: Arc<Catalogue>,
    assignments: ClaimPath,
    compiled: CompiledRoleSets,
}

impl fmt::Debug for CatalogueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogueSource").finish_non_exhaustive()
    }
}

impl CatalogueSource {
    /// Compiles against `catalogue`.
    pub fn new(catalogue: impl Into<Arc<Catalogue>>) -> Self {
        Self {
            catalogue: catalogue.into(),
            assignments: ClaimPath::new("role_assignments"),
            compiled: CompiledRoleSets::new(
                DEFAULT_COMPILED_ROLE_SETS,
                DEFAULT_COMPILED_ROLE_SET_BYTES,
            ),
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

    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Compiles the permissions of `principal` at unix time `now`.
    pub fn compile_at(&self, principal: &Principal, now: u64) -> CompiledPermissions {
        self.catalogue.compile(&self.assignments_of(principal), now)
    }

    fn assignments_of(&self, principal: &Principal) -> Vec<RoleAssignment> {
        assignments_of(&self.assignments, principal)
    }
}

/// The caller's role assignments: the `claim` when the token has it, else
/// its roles, open-ended.
pub(crate) fn assignments_of(claim: &ClaimPath, principal: &Principal) -> Vec<RoleAssignment> {
    match claim.lookup(principal.claims().as_map()) {
        None | Some(Value::Null) => principal
            .roles()
            .iter()
            .map(|r| RoleAssignment::new(r.name()))
            .collect::<Vec<_>>(),
        Some(Value::Array(items)) => items.iter().filter_map(assignment).collect(),
        // The token has the claim, so the IAM meant it to be the list of
        // assignments: falling back to `roles` could revive an expired
        // one.
        Some(_) => {
            tracing::warn!(
                target: "iam_guard::permissions",
                user = principal.user_id(),
                "ignoring a role assignments claim that is not a list"
            );
            Vec::new()
        }
    }
}

/// The assignments of `principal` that count in `department`.
///
/// A role the `roles` claim does not list (a temporal assignment only) is
/// not limited; one it lists counts where it is held.
pub(crate) fn assignments_in_department(
    claim: &ClaimPath,
    principal: &Principal,
    department: &str,
) -> Vec<RoleAssignment> {
    let counts = |name: &str| {
        let mut held = principal
            .roles()
            .iter()
            .filter(|r| r.name() == name)
            .peekable();
        held.peek().is_none() || held.any(|r| r.department().is_none_or(|d| d == department))
    };
    assignments_of(claim, principal)
        .into_iter()
        .filter(|a| counts(&a.role))
        .collect()
}

/// One assignment, read by the model's own serde rules so every spelling it
/// accepts is honoured. An entry that does not fit is dropped whole:
/// dropping only an unreadable `validUntil` would leave an expired
/// assignment open-ended, that is permanent.
fn assignment(value: &Value) -> Option<RoleAssignment> {
    RoleAssignment::deserialize(value)
        .map_err(|e| {
            tracing::warn!(
                target: "iam_guard::permissions",
                error = %e,
                "ignoring a malformed role assignment"
            );
        })
        .ok()
}

impl CatalogueSource {
    /// The permissions of plain (open-ended) roles, compiled once per
    /// distinct role list.
    fn compile_roles_memoized(&self, principal: &Principal) -> Arc<CompiledPermissions> {
        let roles = principal.roles();
        self.compiled
            .get_or_compile((0, 0), roles, principal.token_compiled(), || {
                self.catalogue.compile_roles(roles.iter().map(|r| r.name()))
            })
    }
}

impl PermissionSource for CatalogueSource {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        Box::pin(std::future::ready(Ok(self.permissions_of(principal))))
    }

    fn load_now(
        &self,
        principal: &Principal,
    ) -> Option<Result<Arc<CompiledPermissions>, PermissionError>> {
        Some(Ok(self.permissions_of(principal)))
    }

    fn answers_without_waiting(&self) -> bool {
        true
    }

    fn in_department(
        &self,
        principal: &Principal,
        department: &str,
    ) -> Option<Arc<CompiledPermissions>> {
        let here = assignments_in_department(&self.assignments, principal, department);
        Some(Arc::new(self.catalogue.compile(&here, unix_now())))
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl CatalogueSource {
    fn permissions_of(&self, principal: &Principal) -> Arc<CompiledPermissions> {
        if self
            .assignments
            .lookup(principal.claims().as_map())
            .is_none()
        {
            self.compile_roles_memoized(principal)
        } else {
            metrics::builtin_load(Builtin::Catalogue, CacheLevel::Source);
            Arc::new(self.compile_at(principal, unix_now()))
        }
    }
}

#[cfg(test)]
mod catalogue_memo_tests {
    use super::*;
    use crate::principal::ClaimMapping;
    use serde_json::json;

    fn caller(claims: Value) -> Principal {
        let Value::Object(map) = claims else {
            unreachable!("an object literal")
        };
        Principal::new(
            Arc::new(ClaimMapping::default().identity(map).unwrap()),
            None,
        )
    }

    async fn load(source: &CatalogueSource, claims: Value) -> Arc<CompiledPermissions> {
        source.load(&caller(claims)).await.unwrap()
    }

    #[tokio::test]
    async fn a_role_set_is_compiled_once_and_reused() {
        let source = CatalogueSource::new(Catalogue::students_fixture());
        let a = load(&source, json!({"sub": "a", "roles": ["internal_teacher"]})).await;
        let b = load(&source, json!({"sub": "b", "roles": ["internal_teacher"]})).await;
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second caller reuses the compilation"
        );
        let admin = load(&source, json!({"sub": "c", "roles": ["admin"]})).await;
        assert!(!Arc::ptr_eq(&a, &admin));
        assert!(admin.can_write("students", "sensitive"));
        assert!(!a.can_read("students", "sensitive"));
        let both = load(
            &source,
            json!({"sub": "d", "roles": ["internal_teacher", "admin"]}),
        )
        .await;
        assert!(both.can_write("students", "sensitive"));
    }

    #[tokio::test]
    async fn temporal_assignments_are_never_served_from_the_memo() {
        let source = CatalogueSource::new(Catalogue::students_fixture());
        let plain = load(&source, json!({"sub": "a", "roles": ["admin"]})).await;
        assert!(plain.can_write("students", "sensitive"));
        // Same role name, but the assignment has ended: nothing granted.
        let expired = load(
            &source,
            json!({"sub": "b", "roles": ["admin"],
                   "role_assignments": [{"role": "admin", "validUntil": 1_000}]}),
        )
        .await;
        assert!(!expired.can_read("students", "anagraphic"));
    }
}
