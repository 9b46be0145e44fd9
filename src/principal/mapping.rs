//! [`ClaimMapping`]: which claims carry the user, tenant, roles, OAuth
//! scopes and flags, and the per-token [`Identity`] built from them.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{
    claims::Claims, confirmation::Confirmation, role::Role, ClaimLookup, ClaimPath, ClaimSet,
};
use crate::permissions::role_sets::TokenCompiled;

/// One claim roles are read from, and the label its roles carry.
#[derive(Debug, Clone)]
struct RoleClaim {
    path: ClaimPath,
    qualifier: Option<Arc<str>>,
}

/// Which claims carry the user id, tenant, roles, OAuth scopes, super-user
/// flag, tenant memberships and XSRF token.
///
/// Defaults: `sub`, `tenantId`, `roles`, OAuth scopes from `scope` and
/// `scp`, `is_super_user`, `organizations`, `xsrf_token`. Every path is a
/// [`ClaimPath`]: a dot path, or a JSON Pointer when it starts with `/`.
///
/// ```
/// use iam_guard::principal::ClaimMapping;
///
/// // Keycloak: realm roles, and the roles of this client only.
/// let mapping = ClaimMapping::default()
///     .roles("realm_access.roles")
///     .qualified_roles("resource_access.students-api.roles", "students-api")
///     .tenant("org_id");
/// # let _ = mapping;
/// ```
///
/// Roles other services own never reach this one: only the configured
/// role claims are read (so another client's `resource_access` section is
/// never looked at), and a `{system, role}` role counts only when its
/// system is the one named with [`system`](Self::system).
#[derive(Debug, Clone)]
pub struct ClaimMapping {
    user_id: ClaimPath,
    tenant: ClaimPath,
    roles: Vec<RoleClaim>,
    system: Option<Arc<str>>,
    oauth_scopes: Vec<ClaimPath>,
    super_user: ClaimPath,
    memberships: ClaimPath,
    xsrf: ClaimPath,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            user_id: ClaimPath::new("sub"),
            tenant: ClaimPath::new("tenantId"),
            roles: vec![RoleClaim {
                path: ClaimPath::new("roles"),
                qualifier: None,
            }],
            system: None,
            oauth_scopes: vec![ClaimPath::new("scope"), ClaimPath::new("scp")],
            super_user: ClaimPath::new("is_super_user"),
            memberships: ClaimPath::new("organizations"),
            xsrf: ClaimPath::new("xsrf_token"),
        }
    }
}

impl ClaimMapping {
    /// The claim holding the user id (default `sub`).
    pub fn user_id(mut self, path: impl Into<ClaimPath>) -> Self {
        self.user_id = path.into();
        self
    }

    /// The claim holding the home tenant (default `tenantId`).
    pub fn tenant(mut self, path: impl Into<ClaimPath>) -> Self {
        self.tenant = path.into();
        self
    }

    /// The one claim holding the roles (default `roles`), replacing every
    /// role claim configured so far: an array of strings or of
    /// `{system, role, department}` objects, or a single string.
    pub fn roles(mut self, path: impl Into<ClaimPath>) -> Self {
        self.roles = vec![RoleClaim {
            path: path.into(),
            qualifier: None,
        }];
        self
    }

    /// One more claim roles are read from, in the same shapes as
    /// [`roles`](Self::roles).
    pub fn also_roles(mut self, path: impl Into<ClaimPath>) -> Self {
        self.roles.push(RoleClaim {
            path: path.into(),
            qualifier: None,
        });
        self
    }

    /// One more role claim whose roles carry `qualifier`
    /// ([`Role::qualifier`]), so a guard can insist on
    /// `"<qualifier>:<role>"`: for instance Keycloak's
    /// `resource_access.<this client>.roles` qualified by the client id.
    pub fn qualified_roles(mut self, path: impl Into<ClaimPath>, qualifier: &str) -> Self {
        self.roles.push(RoleClaim {
            path: path.into(),
            qualifier: Some(qualifier.into()),
        });
        self
    }

    /// No role claims at all.
    pub fn no_roles(mut self) -> Self {
        self.roles.clear();
        self
    }

    /// This service's system: a structured role `{system, role}` counts
    /// only when its `system` is `name`. Without this setting a role that
    /// names a system counts nowhere, since nothing says it is this
    /// service's; roles without a `system` count either way.
    pub fn system(mut self, name: &str) -> Self {
        self.system = Some(name.into());
        self
    }

    /// The claims holding OAuth scopes (default `scope` and `scp`), each a
    /// space-delimited string (RFC 9068, Keycloak, Auth0, Cognito, Entra's
    /// `scp`) or an array of strings (Okta's `scp`). An empty list reads
    /// none.
    pub fn oauth_scopes<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<ClaimPath>,
    {
        self.oauth_scopes = paths.into_iter().map(Into::into).collect();
        self
    }

    /// The boolean claim flagging a super user (default `is_super_user`).
    pub fn super_user(mut self, path: impl Into<ClaimPath>) -> Self {
        self.super_user = path.into();
        self
    }

    /// The claim listing the tenants the caller may act in (default
    /// `organizations`): an array of ids or an object keyed by id.
    pub fn memberships(mut self, path: impl Into<ClaimPath>) -> Self {
        self.memberships = path.into();
        self
    }

    /// The claim holding the XSRF token for cookie sessions (default
    /// `xsrf_token`).
    pub fn xsrf(mut self, path: impl Into<ClaimPath>) -> Self {
        self.xsrf = path.into();
        self
    }

    /// Builds the identity of a verified token.
    ///
    /// # Errors
    ///
    /// A message for the client when the user id claim is missing or not a
    /// string, or the roles or OAuth scope claim has an unusable shape.
    // Used by introspection and the test kit; a verified JWT goes through
    // `identity_of_token`.
    #[cfg_attr(
        not(any(feature = "jwks-http", feature = "test-util", test)),
        allow(dead_code)
    )]
    pub(crate) fn identity(&self, claims: Map<String, Value>) -> Result<Identity, &'static str> {
        self.identity_in(claims, Claims::new)
    }

    /// [`identity`](Self::identity) of a verified `token` whose payload
    /// `claims` was parsed from: the principal's claims are read from the
    /// token again when a handler first asks for them, rather than
    /// written out or kept as a second copy of the text.
    pub(crate) fn identity_of_token(
        &self,
        claims: &ClaimSet<'_>,
        token: Arc<str>,
    ) -> Result<Identity, &'static str> {
        self.identity_in(claims, |_| Claims::from_token(token))
    }

    /// The identity `claims` make; `keep` turns them, once read, into the
    /// principal's claims.
    fn identity_in<C: ClaimLookup>(
        &self,
        claims: C,
        keep: impl FnOnce(C) -> Claims,
    ) -> Result<Identity, &'static str> {
        let user_id = match self.user_id.lookup(&claims) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err("token has no subject"),
        };
        let tenant: Option<Arc<str>> = match self.tenant.lookup(&claims) {
            Some(Value::String(s)) => Some(s.as_str().into()),
            Some(Value::Number(n)) => Some(n.to_string().into()),
            _ => None,
        };
        let mut roles = Vec::new();
        for source in &self.roles {
            self.read_roles(source, &claims, &mut roles)?;
        }
        let mut oauth_scopes: Vec<Box<str>> = Vec::new();
        for path in &self.oauth_scopes {
            read_scopes(path.lookup(&claims), &mut oauth_scopes)?;
        }
        let super_user = matches!(self.super_user.lookup(&claims), Some(Value::Bool(true)));
        let mut memberships: Vec<Arc<str>> = match self.memberships.lookup(&claims) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(Arc::from)
                .collect(),
            Some(Value::Object(orgs)) => orgs.keys().map(|k| Arc::from(k.as_str())).collect(),
            _ => Vec::new(),
        };
        if let Some(t) = &tenant {
            memberships.push(t.clone());
        }
        let memberships = Memberships::new(memberships);
        // The home tenant shares its allocation with its membership.
        let tenant = tenant.map(|t| memberships.get(&t).cloned().unwrap_or(t));
        let xsrf = match self.xsrf.lookup(&claims) {
            Some(Value::String(s)) => Some(Box::from(s.as_str())),
            _ => None,
        };
        let issuer = match claims.claim("iss") {
            Some(Value::String(s)) => Box::from(s.as_str()),
            _ => Box::default(),
        };
        let confirmation = Confirmation::from_claims(&claims)?;
        Ok(Identity {
            user_id,
            issuer,
            tenant,
            roles: roles.into_boxed_slice(),
            oauth_scopes: Scopes::new(oauth_scopes),
            super_user,
            memberships,
            xsrf,
            confirmation,
            claims: keep(claims),
            compiled: TokenCompiled::default(),
        })
    }

    /// Appends the roles of one role claim that count for this service.
    fn read_roles(
        &self,
        source: &RoleClaim,
        claims: &impl ClaimLookup,
        into: &mut Vec<Role>,
    ) -> Result<(), &'static str> {
        const SHAPE: &str = "roles claim has an unsupported shape";
        let qualifier = &source.qualifier;
        match source.path.lookup(claims) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => into.push(Role::new(s.as_str()).qualified(qualifier.clone())),
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(s) => {
                            into.push(Role::new(s.as_str()).qualified(qualifier.clone()));
                        }
                        Value::Object(o) => {
                            let text = |k: &str| o.get(k).and_then(Value::as_str);
                            let name = text("role").ok_or(SHAPE)?;
                            let system = text("system");
                            // A role of another system, or of a system this
                            // service never claimed, is not ours to honour.
                            if system.is_some_and(|s| self.system.as_deref() != Some(s)) {
                                continue;
                            }
                            into.push(Role::structured(
                                name,
                                system,
                                text("department"),
                                qualifier.clone(),
                            ));
                        }
                        _ => return Err(SHAPE),
                    }
                }
            }
            Some(_) => return Err(SHAPE),
        }
        Ok(())
    }
}

/// Appends the OAuth scopes of one claim: a space-delimited string or an
/// array of strings (RFC 6749 §3.3 scope tokens).
fn read_scopes(value: Option<&Value>, into: &mut Vec<Box<str>>) -> Result<(), &'static str> {
    const SHAPE: &str = "scope claim has an unsupported shape";
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => into.extend(s.split_ascii_whitespace().map(Box::from)),
        Some(Value::Array(items)) => {
            for item in items {
                let scope = item.as_str().ok_or(SHAPE)?;
                into.extend(scope.split_ascii_whitespace().map(Box::from));
            }
        }
        Some(_) => return Err(SHAPE),
    }
    Ok(())
}

/// The per-token part of a principal, built once and shared. Compact:
/// the verified-token cache holds one per cached token (see
/// [`heap_bytes`](Identity::heap_bytes)).
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) user_id: String,
    /// The verified `iss` (empty when the claims have none).
    pub(crate) issuer: Box<str>,
    /// Shared with its entry in `memberships`.
    pub(crate) tenant: Option<Arc<str>>,
    pub(crate) roles: Box<[Role]>,
    pub(crate) oauth_scopes: Scopes,
    pub(crate) super_user: bool,
    pub(crate) memberships: Memberships,
    pub(crate) xsrf: Option<Box<str>>,
    /// What the token is bound to (`cnf`): a DPoP key, a certificate.
    pub(crate) confirmation: Confirmation,
    pub(crate) claims: Claims,
    /// The permissions its roles were compiled to, kept with the token.
    pub(crate) compiled: TokenCompiled,
}

impl Identity {
    /// Estimated heap bytes of this identity: its own allocation (it lives
    /// in an `Arc`) and every string, list and claim text it holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        use crate::cache_bound::alloc_bytes;
        let text = |s: &str| alloc_bytes(s.len());
        let arc = |s: &str| alloc_bytes(s.len() + 16);
        let roles: usize = self
            .roles
            .iter()
            .map(|r| text(r.name()) + r.system().map_or(0, text) + r.department().map_or(0, text))
            .sum();
        alloc_bytes(std::mem::size_of::<Self>() + 16)
            + text(&self.user_id)
            + text(&self.issuer)
            + alloc_bytes(self.roles.len() * std::mem::size_of::<Role>())
            + roles
            + text(&self.oauth_scopes.joined)
            + self.memberships.heap_bytes(arc)
            + self.xsrf.as_deref().map_or(0, text)
            + self.confirmation.jkt.as_deref().map_or(0, text)
            + self.claims.heap_bytes()
    }
}

/// The OAuth scopes of a token, sorted and without duplicates, in one
/// allocation: space-separated (a scope token never holds whitespace, RFC
/// 6749 §3.3, and [`read_scopes`] splits on it). A token carries a handful;
/// a boxed string per scope cost a 32-byte chunk each plus the slice.
#[derive(Default)]
pub(crate) struct Scopes {
    joined: Box<str>,
    count: usize,
}

impl Scopes {
    fn new(mut scopes: Vec<Box<str>>) -> Self {
        scopes.sort_unstable();
        scopes.dedup();
        Self {
            joined: scopes.join(" ").into_boxed_str(),
            count: scopes.len(),
        }
    }

    /// The scopes, sorted.
    pub(crate) fn iter(&self) -> ScopeIter<'_> {
        ScopeIter {
            rest: &self.joined,
            left: self.count,
        }
    }

    /// Whether `scope` is one of them (exact match). Sorted, so the scan
    /// stops at the first scope past it.
    pub(crate) fn contains(&self, scope: &str) -> bool {
        for s in self.iter() {
            match s.cmp(scope) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return true,
                std::cmp::Ordering::Greater => return false,
            }
        }
        false
    }

    /// Whether there are none.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl std::fmt::Debug for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The scopes of a [`Scopes`], in order.
#[derive(Debug, Clone)]
pub(crate) struct ScopeIter<'a> {
    rest: &'a str,
    left: usize,
}

impl<'a> Iterator for ScopeIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (scope, rest) = self.rest.split_once(' ').unwrap_or((self.rest, ""));
        self.rest = rest;
        Some(scope)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for ScopeIter<'_> {}

/// The tenants a caller may act in, sorted for a binary search: a token
/// names a handful, so a slice is smaller than a hash set (whose smallest
/// table is a 100-byte allocation) and as fast to search.
#[derive(Debug, Default)]
pub(crate) struct Memberships(Box<[Arc<str>]>);

impl Memberships {
    fn new(mut tenants: Vec<Arc<str>>) -> Self {
        tenants.sort_unstable();
        tenants.dedup();
        Self(tenants.into_boxed_slice())
    }

    /// The caller's membership of `tenant`, if it has one.
    pub(crate) fn get(&self, tenant: &str) -> Option<&Arc<str>> {
        let at = self.0.binary_search_by(|t| (**t).cmp(tenant)).ok()?;
        self.0.get(at)
    }

    /// Whether `tenant` is one of them.
    pub(crate) fn contains(&self, tenant: &str) -> bool {
        self.get(tenant).is_some()
    }

    fn heap_bytes(&self, arc: impl Fn(&str) -> usize) -> usize {
        crate::cache_bound::alloc_bytes(self.0.len() * std::mem::size_of::<Arc<str>>())
            + self.0.iter().map(|t| arc(t)).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn names(id: &Identity) -> Vec<String> {
        id.roles.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn nested_paths_and_structured_roles() {
        let id = ClaimMapping::default()
            .roles("realm_access.roles")
            .system("inv")
            .identity(map(json!({
                "sub": "u1",
                "tenantId": "t1",
                "realm_access": {"roles": ["admin", {"system": "inv", "role": "manager", "department": "north"}]},
            })))
            .unwrap();
        assert_eq!(id.user_id, "u1");
        assert_eq!(id.roles[0], Role::new("admin"));
        assert_eq!(id.roles[1].name(), "manager");
        assert_eq!(id.roles[1].system(), Some("inv"));
        assert_eq!(id.roles[1].department(), Some("north"));
        assert!(id.memberships.contains("t1"));
    }

    #[test]
    fn several_role_claims_each_with_its_qualifier_and_never_another_clients() {
        let claims = json!({
            "sub": "u",
            "realm_access": {"roles": ["offline_access", "teacher"]},
            "resource_access": {
                "students-api": {"roles": ["admin"]},
                "billing-api": {"roles": ["superuser"]},
            },
        });
        let id = ClaimMapping::default()
            .roles("realm_access.roles")
            .qualified_roles("/resource_access/students-api/roles", "students-api")
            .identity(map(claims))
            .unwrap();
        assert_eq!(
            names(&id),
            ["offline_access", "teacher", "students-api:admin"]
        );
    }

    #[test]
    fn roles_of_another_system_or_of_an_unnamed_one_do_not_count() {
        let claims = json!({"sub": "u", "roles": [
            {"system": "inventory", "role": "admin"},
            {"system": "students", "role": "teacher"},
            {"role": "viewer"},
        ]});
        let ours = ClaimMapping::default().system("students");
        assert_eq!(
            names(&ours.identity(map(claims.clone())).unwrap()),
            ["teacher", "viewer"]
        );
        let unnamed = ClaimMapping::default();
        assert_eq!(names(&unnamed.identity(map(claims)).unwrap()), ["viewer"]);
    }

    #[test]
    fn oauth_scopes_from_strings_and_arrays_sorted_and_deduplicated() {
        let id = ClaimMapping::default()
            .identity(map(json!({"sub": "u", "scope": "openid  students:read\tprofile", "scp": ["students:read", "grades:write"]})))
            .unwrap();
        assert_eq!(
            id.oauth_scopes.iter().collect::<Vec<_>>(),
            ["grades:write", "openid", "profile", "students:read"]
        );
        assert_eq!(id.oauth_scopes.iter().len(), 4);
        for scope in ["grades:write", "openid", "profile", "students:read"] {
            assert!(id.oauth_scopes.contains(scope), "{scope}");
        }
        for other in ["", "grades", "openid ", "a", "z", "profile students:read"] {
            assert!(!id.oauth_scopes.contains(other), "{other:?}");
        }
        let m = ClaimMapping::default();
        assert!(m.identity(map(json!({"sub": "u", "scope": 5}))).is_err());
        assert!(m.identity(map(json!({"sub": "u", "scp": [1]}))).is_err());
        let none = ClaimMapping::default().oauth_scopes(Vec::<&str>::new());
        assert!(none
            .identity(map(json!({"sub": "u", "scope": "a b"})))
            .unwrap()
            .oauth_scopes
            .is_empty());
    }

    #[test]
    fn memberships_from_object_keys_or_array() {
        let m = ClaimMapping::default();
        let id = m
            .identity(map(
                json!({"sub": "u", "organizations": {"c1": {"level": "client"}}}),
            ))
            .unwrap();
        assert!(id.memberships.contains("c1"));
        let id = m
            .identity(map(json!({"sub": "u", "organizations": ["a", "b"]})))
            .unwrap();
        assert!(id.memberships.contains("b"));
    }

    #[test]
    fn the_home_tenant_is_a_membership_sharing_its_allocation() {
        let id = ClaimMapping::default()
            .identity(map(json!({
                "sub": "u", "iss": "https://iam", "tenantId": "t2",
                "organizations": ["t3", "t1", "t2", "t1"],
            })))
            .unwrap();
        assert_eq!(&*id.issuer, "https://iam");
        let tenant = id.tenant.as_ref().unwrap();
        assert!(Arc::ptr_eq(tenant, id.memberships.get("t2").unwrap()));
        assert_eq!(id.memberships.0.len(), 3, "sorted, without duplicates");
        assert!(id.memberships.contains("t1") && id.memberships.contains("t3"));
        assert!(!id.memberships.contains("t4") && !id.memberships.contains(""));
        // The estimate counts what was kept: more roles weigh more.
        let more = ClaimMapping::default()
            .identity(map(
                json!({"sub": "u", "iss": "https://iam", "tenantId": "t2",
                "organizations": ["t3", "t1", "t2", "t1"], "roles": ["a", "b", "c"]}),
            ))
            .unwrap();
        assert!(more.heap_bytes() > id.heap_bytes() + 3 * std::mem::size_of::<Role>());
    }

    #[test]
    fn missing_subject_or_bad_roles_are_rejected() {
        let m = ClaimMapping::default();
        assert!(m.identity(map(json!({"roles": []}))).is_err());
        assert!(m.identity(map(json!({"sub": 5}))).is_err());
        assert!(m.identity(map(json!({"sub": "u", "roles": 5}))).is_err());
        assert!(m
            .identity(map(json!({"sub": "u", "roles": [{"system": "x"}]})))
            .is_err());
    }
}
