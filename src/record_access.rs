//! [`RecordAccess`]: which records a caller may see, for the service's own
//! queries. The crate never touches the database; it tells the service how
//! to narrow its `WHERE` clause.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use http::Extensions;
use serde_json::Value;

use crate::{
    guard::context::RequestContext,
    model::{name_set::NameSet, CompiledPermissions},
    permissions::source::PermissionSource,
    principal::{ClaimPath, Principal},
};

/// How far a caller's record access reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Every record of the tenant.
    Full,
    /// Only records owned by (or linked to) this user id.
    Owner(String),
    /// Records of these organizations, by level (`client`, `department`,
    /// `team`, …) → ids (from the `organizations` claim).
    Organizations(BTreeMap<String, Vec<String>>),
    /// Only records of these departments, where the caller's
    /// department-limited roles hold (sorted); what each allows is in
    /// [`RecordAccess::departments`].
    Departments(Vec<String>),
}

/// What a caller may do in one department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentAccess {
    /// The roles limited to this department.
    pub roles: Vec<String>,
    /// What holds here (roles that hold everywhere plus this department's),
    /// when the permission source knows departments
    /// ([`CatalogueSource`](crate::CatalogueSource) does); `None` otherwise.
    pub permissions: Option<Arc<CompiledPermissions>>,
}

/// The record-level context of a request: filter every query by `tenant`,
/// then by `access`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordAccess {
    /// The active tenant, if any.
    pub tenant: Option<String>,
    /// The caller's user id.
    pub user: String,
    /// The caller's role names.
    pub roles: Vec<String>,
    /// How far the caller's access reaches.
    pub access: Access,
    /// Per department where a department-limited role holds: those roles
    /// and what they allow there. Empty when no role is limited.
    pub departments: BTreeMap<String, DepartmentAccess>,
}

/// Decides a caller's [`Access`]. Rules, first match wins:
///
/// 1. a super user, when the auth layer enables the bypass → `Full`;
/// 2. a role listed in [`full_access_roles`](Self::full_access_roles) that
///    is not limited to a department → `Full`;
/// 3. any department-limited role (`{"role", "department"}`) →
///    `Departments`: the caller's records are those of its departments,
///    and [`RecordAccess::departments`] says what each allows;
/// 4. a non-empty `organizations` claim (`{id: {level}}`) → `Organizations`;
/// 5. otherwise → `Owner(user)`: the narrowest answer is the default.
///
/// Give it to the auth layer with
/// [`JwtAuthGuardLayer::record_access`](crate::JwtAuthGuardLayer::record_access),
/// set once where the layer is built. A policy in a request's extensions
/// (`axum::Extension(policy)` on a route) takes precedence for that
/// request. Without either the default policy applies, which grants
/// `Full` to no role.
///
/// Cheap to clone (two reference counts).
#[derive(Debug, Clone)]
pub struct RecordAccessPolicy {
    full_roles: Arc<NameSet>,
    organizations_claim: ClaimPath,
}

impl Default for RecordAccessPolicy {
    fn default() -> Self {
        Self {
            full_roles: Arc::default(),
            organizations_claim: ClaimPath::new("organizations"),
        }
    }
}

/// The policy of a request that names none, built once.
fn default_policy() -> &'static RecordAccessPolicy {
    static DEFAULT: OnceLock<RecordAccessPolicy> = OnceLock::new();
    DEFAULT.get_or_init(RecordAccessPolicy::default)
}

impl RecordAccessPolicy {
    /// The default policy (see the type docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Roles that see every record of the tenant (e.g. `admin`,
    /// `secretary`, `accountant`).
    pub fn full_access_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let roles: Vec<String> = roles.into_iter().map(Into::into).collect();
        self.full_roles = Arc::new(NameSet::of(roles.iter().map(String::as_str)));
        self
    }

    /// The claim listing organizations (default `organizations`).
    pub fn organizations_claim(mut self, path: impl Into<ClaimPath>) -> Self {
        self.organizations_claim = path.into();
        self
    }

    /// The record access of `principal`; `bypass` is whether the super-user
    /// bypass applies. Department permissions are left `None`; see
    /// [`resolve_with`](Self::resolve_with).
    pub fn resolve(&self, principal: &Principal, bypass: bool) -> RecordAccess {
        self.resolve_with(principal, bypass, None)
    }

    /// [`resolve`](Self::resolve), with each department's permissions
    /// compiled by `source`.
    pub fn resolve_with(
        &self,
        principal: &Principal,
        bypass: bool,
        source: Option<&dyn PermissionSource>,
    ) -> RecordAccess {
        let roles: Vec<String> = principal
            .roles()
            .iter()
            .map(|r| r.name().to_owned())
            .collect();
        let mut departments: BTreeMap<String, DepartmentAccess> = BTreeMap::new();
        for role in principal.roles() {
            if let Some(d) = role.department() {
                departments
                    .entry(d.to_owned())
                    .or_insert_with(|| DepartmentAccess {
                        roles: Vec::new(),
                        permissions: source.and_then(|s| s.in_department(principal, d)),
                    })
                    .roles
                    .push(role.name().to_owned());
            }
        }
        let full = principal
            .roles()
            .iter()
            .any(|r| !r.is_department_limited() && self.full_roles.contains(r.name()));
        let access = if bypass || full {
            Access::Full
        } else if !departments.is_empty() {
            Access::Departments(departments.keys().cloned().collect())
        } else {
            match self.organizations_claim.get(principal.claims().as_map()) {
                Some(Value::Object(orgs)) if !orgs.is_empty() => {
                    let mut by_level: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for (id, org) in orgs {
                        let level = org
                            .get("level")
                            .and_then(Value::as_str)
                            .unwrap_or("organization");
                        by_level
                            .entry(level.to_owned())
                            .or_default()
                            .push(id.clone());
                    }
                    Access::Organizations(by_level)
                }
                _ => Access::Owner(principal.user_id().to_owned()),
            }
        };
        RecordAccess {
            tenant: principal.tenant_id().map(str::to_owned),
            user: principal.user_id().to_owned(),
            roles,
            access,
            departments,
        }
    }
}

impl RecordAccess {
    /// The record access of a request that JwtAuthGuard admitted, using
    /// the `RecordAccessPolicy` in its extensions, else the auth layer's
    /// ([`JwtAuthGuardLayer::record_access`](crate::JwtAuthGuardLayer::record_access)),
    /// else the default. `None` when no caller is present.
    pub fn from_extensions(extensions: &Extensions) -> Option<Self> {
        let context = RequestContext::from_extensions(extensions)?;
        let principal = context.principal()?;
        // The bypass is the auth layer's setting, whether or not it also
        // has a permission source.
        let bypass = context.bypasses();
        let layer = context.policy();
        let policy = extensions
            .get::<RecordAccessPolicy>()
            .or(layer.record_access.as_ref())
            .unwrap_or_else(|| default_policy());
        Some(policy.resolve_with(principal, bypass, layer.source.as_deref()))
    }

    /// The departments where `allows` holds for what the caller may do
    /// there, for a query's `WHERE department IN (…)`: say, where it may
    /// create a region. A department whose permissions are unknown is
    /// left out.
    ///
    /// ```
    /// # use iam_guard::RecordAccess;
    /// # fn query(access: &RecordAccess) {
    /// let writable = access.departments_where(|p| p.has_permission("inventory.regions.create"));
    /// # let _ = writable; }
    /// ```
    pub fn departments_where(&self, allows: impl Fn(&CompiledPermissions) -> bool) -> Vec<&str> {
        self.departments
            .iter()
            .filter(|(_, d)| d.permissions.as_deref().is_some_and(&allows))
            .map(|(name, _)| name.as_str())
            .collect()
    }
}
