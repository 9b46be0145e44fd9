//! Who is calling: [`Principal`], the verified [`Claims`] behind it, and the
//! [`ClaimMapping`] that says which claim carries what.
//!
//! JwtAuthGuard builds the identity part of a principal once per token (it
//! lives in the verified-token cache), and adds the request's active tenant
//! to it per request, so a principal is two reference counts to clone.

use std::{collections::HashSet, fmt, sync::Arc};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The verified claims of a token, with typed access to custom claims.
#[derive(Clone, PartialEq)]
pub struct Claims(Arc<Map<String, Value>>);

impl Claims {
    pub(crate) fn new(map: Map<String, Value>) -> Self {
        Self(Arc::new(map))
    }

    /// The raw claim at `path`: a top-level name (`"sub"`) or a dot path
    /// into nested objects (`"realm_access.roles"`).
    pub fn get(&self, path: &str) -> Option<&Value> {
        ClaimPath::new(path).lookup(&self.0)
    }

    /// The claim at `path` deserialized as `T`.
    ///
    /// # Errors
    ///
    /// [`ClaimError::Missing`] when the claim is absent or `null`,
    /// [`ClaimError::Type`] when it does not deserialize as `T`.
    pub fn claim<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClaimError> {
        let value = self
            .get(path)
            .filter(|v| !v.is_null())
            .ok_or_else(|| ClaimError::Missing(path.to_owned()))?;
        T::deserialize(value).map_err(|e| ClaimError::Type(path.to_owned(), e.to_string()))
    }

    /// All claims as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl fmt::Debug for Claims {
    // Claims are not secrets, but a `Debug` of the whole map is noise in
    // logs; names are enough to tell what a token carried.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Reading a typed claim failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The claim is absent or `null`.
    #[error("claim `{0}` is missing")]
    Missing(String),
    /// The claim has another type.
    #[error("claim `{0}` has the wrong type: {1}")]
    Type(String, String),
}

/// A claim name or a dot path into nested claim objects.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimPath(Arc<[Box<str>]>);

impl ClaimPath {
    /// Parses `"roles"` or `"realm_access.roles"`.
    pub fn new(path: &str) -> Self {
        Self(path.split('.').map(Box::from).collect())
    }

    pub(crate) fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.0.split_first()?;
        let mut value = claims.get(&**first)?;
        for segment in rest {
            value = value.as_object()?.get(&**segment)?;
        }
        Some(value)
    }
}

impl fmt::Debug for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.join("."))
    }
}

impl From<&str> for ClaimPath {
    fn from(path: &str) -> Self {
        Self::new(path)
    }
}

/// Which claims carry the user id, tenant, roles, super-user flag,
/// tenant memberships and XSRF token.
///
/// Defaults: `sub`, `tenantId`, `roles`, `is_super_user`, `organizations`,
/// `xsrf_token`.
///
/// ```
/// use iam_guard::principal::ClaimMapping;
///
/// // Keycloak puts realm roles under `realm_access.roles`.
/// let mapping = ClaimMapping::default().roles("realm_access.roles").tenant("org_id");
/// # let _ = mapping;
/// ```
#[derive(Debug, Clone)]
pub struct ClaimMapping {
    user_id: ClaimPath,
    tenant: ClaimPath,
    roles: ClaimPath,
    super_user: ClaimPath,
    memberships: ClaimPath,
    xsrf: ClaimPath,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            user_id: ClaimPath::new("sub"),
            tenant: ClaimPath::new("tenantId"),
            roles: ClaimPath::new("roles"),
            super_user: ClaimPath::new("is_super_user"),
            memberships: ClaimPath::new("organizations"),
            xsrf: ClaimPath::new("xsrf_token"),
        }
    }
}

impl ClaimMapping {
    /// The claim holding the user id (default `sub`).
    pub fn user_id(mut self, path: &str) -> Self {
        self.user_id = ClaimPath::new(path);
        self
    }

    /// The claim holding the home tenant (default `tenantId`).
    pub fn tenant(mut self, path: &str) -> Self {
        self.tenant = ClaimPath::new(path);
        self
    }

    /// The claim holding the roles (default `roles`): an array of strings
    /// or of `{system, role, department}` objects, or a single string.
    pub fn roles(mut self, path: &str) -> Self {
        self.roles = ClaimPath::new(path);
        self
    }

    /// The boolean claim flagging a super user (default `is_super_user`).
    pub fn super_user(mut self, path: &str) -> Self {
        self.super_user = ClaimPath::new(path);
        self
    }

    /// The claim listing the tenants the caller may act in (default
    /// `organizations`): an array of ids or an object keyed by id.
    pub fn memberships(mut self, path: &str) -> Self {
        self.memberships = ClaimPath::new(path);
        self
    }

    /// The claim holding the XSRF token for cookie sessions (default
    /// `xsrf_token`).
    pub fn xsrf(mut self, path: &str) -> Self {
        self.xsrf = ClaimPath::new(path);
        self
    }

    /// Builds the identity of a verified token.
    ///
    /// # Errors
    ///
    /// A message for the client when the user id claim is missing or not a
    /// string, or the roles claim has an unusable shape.
    pub(crate) fn identity(&self, claims: Map<String, Value>) -> Result<Identity, &'static str> {
        let user_id = match self.user_id.lookup(&claims) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err("token has no subject"),
        };
        let tenant = match self.tenant.lookup(&claims) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let roles = match self.roles.lookup(&claims) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![Role::Name(s.clone())],
            Some(Value::Array(items)) => items
                .iter()
                .map(Role::from_claim)
                .collect::<Option<Vec<_>>>()
                .ok_or("roles claim has an unsupported shape")?,
            Some(_) => return Err("roles claim has an unsupported shape"),
        };
        let super_user = matches!(self.super_user.lookup(&claims), Some(Value::Bool(true)));
        let mut memberships: HashSet<Arc<str>> = match self.memberships.lookup(&claims) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(Arc::from)
                .collect(),
            Some(Value::Object(orgs)) => orgs.keys().map(|k| Arc::from(k.as_str())).collect(),
            _ => HashSet::new(),
        };
        if let Some(t) = &tenant {
            memberships.insert(Arc::from(t.as_str()));
        }
        let xsrf = match self.xsrf.lookup(&claims) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        Ok(Identity {
            user_id,
            tenant,
            roles,
            super_user,
            memberships,
            xsrf,
            claims: Claims::new(claims),
        })
    }
}

/// A role as the token carries it: a plain name, or the structured
/// `{system, role, department}` form some in-house IAMs issue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// `"teacher"`.
    Name(String),
    /// `{"system": "inventory", "role": "manager", "department": "north"}`.
    Structured {
        /// The system the role belongs to, if any.
        system: Option<String>,
        /// The role name.
        role: String,
        /// The department the role is limited to, if any.
        department: Option<String>,
    },
}

impl Role {
    /// The role name, whichever form the token used.
    pub fn name(&self) -> &str {
        match self {
            Self::Name(n) => n,
            Self::Structured { role, .. } => role,
        }
    }

    fn from_claim(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::Name(s.clone())),
            Value::Object(o) => {
                let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
                Some(Self::Structured {
                    system: text("system"),
                    role: text("role")?,
                    department: text("department"),
                })
            }
            _ => None,
        }
    }
}

/// The per-token part of a principal, built once and shared.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) user_id: String,
    pub(crate) tenant: Option<String>,
    pub(crate) roles: Vec<Role>,
    pub(crate) super_user: bool,
    pub(crate) memberships: HashSet<Arc<str>>,
    pub(crate) xsrf: Option<String>,
    pub(crate) claims: Claims,
}

/// The authenticated caller, part of the request context that
/// [`JwtAuthGuard`](crate::guard::auth::JwtAuthGuard) plants.
///
/// With the `axum` feature it is an extractor (`Principal` and
/// `Option<Principal>`); without axum read it with
/// [`Principal::from_extensions`]`(req.extensions())`.
#[derive(Clone)]
pub struct Principal {
    identity: Arc<Identity>,
    active_tenant: Option<Arc<str>>,
}

impl Principal {
    pub(crate) fn new(identity: Arc<Identity>, active_tenant: Option<Arc<str>>) -> Self {
        Self {
            identity,
            active_tenant,
        }
    }

    /// The user id (`sub` by default).
    pub fn user_id(&self) -> &str {
        &self.identity.user_id
    }

    /// The active tenant: the `x-org`-style header when the guard is
    /// configured with one (already checked against the caller's
    /// memberships), else the token's tenant claim.
    pub fn tenant_id(&self) -> Option<&str> {
        self.active_tenant
            .as_deref()
            .or(self.identity.tenant.as_deref())
    }

    /// The roles, in token order.
    pub fn roles(&self) -> &[Role] {
        &self.identity.roles
    }

    /// Whether the caller has a role named `name`.
    pub fn has_role(&self, name: &str) -> bool {
        self.identity.roles.iter().any(|r| r.name() == name)
    }

    /// Whether the token flags a super user. The flag alone grants nothing:
    /// bypasses are opt-in per guard.
    pub fn is_super_user(&self) -> bool {
        self.identity.super_user
    }

    /// Whether `tenant` is one of the caller's memberships (or home tenant).
    pub fn is_member_of(&self, tenant: &str) -> bool {
        self.identity.memberships.contains(tenant)
    }

    /// All verified claims.
    pub fn claims(&self) -> &Claims {
        &self.identity.claims
    }

    /// A custom claim deserialized as `T`; see [`Claims::claim`].
    ///
    /// # Errors
    ///
    /// See [`Claims::claim`].
    pub fn claim<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClaimError> {
        self.identity.claims.claim(path)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("user_id", &self.user_id())
            .field("tenant_id", &self.tenant_id())
            .field("roles", &self.roles())
            .field("super_user", &self.is_super_user())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn nested_paths_and_structured_roles() {
        let id = ClaimMapping::default()
            .roles("realm_access.roles")
            .identity(map(json!({
                "sub": "u1",
                "tenantId": "t1",
                "realm_access": {"roles": ["admin", {"system": "inv", "role": "manager", "department": "north"}]},
            })))
            .unwrap();
        assert_eq!(id.user_id, "u1");
        assert_eq!(id.roles[0], Role::Name("admin".into()));
        assert_eq!(
            id.roles[1],
            Role::Structured {
                system: Some("inv".into()),
                role: "manager".into(),
                department: Some("north".into())
            }
        );
        assert!(id.memberships.contains("t1"));
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
    fn missing_subject_or_bad_roles_are_rejected() {
        let m = ClaimMapping::default();
        assert!(m.identity(map(json!({"roles": []}))).is_err());
        assert!(m.identity(map(json!({"sub": 5}))).is_err());
        assert!(m.identity(map(json!({"sub": "u", "roles": 5}))).is_err());
        assert!(m
            .identity(map(json!({"sub": "u", "roles": [{"system": "x"}]})))
            .is_err());
    }

    #[test]
    fn typed_claims() {
        let id = ClaimMapping::default()
            .identity(map(
                json!({"sub": "u", "level": {"n": 3}, "is_super_user": true}),
            ))
            .unwrap();
        let p = Principal::new(Arc::new(id), None);
        assert_eq!(p.claim::<u32>("level.n").unwrap(), 3);
        assert!(matches!(
            p.claim::<String>("level.n"),
            Err(ClaimError::Type(..))
        ));
        assert!(matches!(
            p.claim::<u32>("nope"),
            Err(ClaimError::Missing(_))
        ));
        assert!(p.is_super_user());
    }
}
