//! Who is calling: [`Principal`], the verified [`Claims`] behind it, the
//! [`Role`]s that count for this service, and the [`ClaimMapping`] that
//! says which claim carries what.
//!
//! JwtAuthGuard builds the identity part of a principal once per token (it
//! lives in the verified-token cache), and adds the request's active tenant
//! to it per request, so a principal is two reference counts to clone.

mod claim_set;
mod claims;
mod confirmation;
mod mapping;
mod role;

use std::{fmt, sync::Arc};

use serde::de::DeserializeOwned;

pub(crate) use claim_set::{ClaimLookup, ClaimSet};
pub use claims::{ClaimError, ClaimPath, Claims};
pub(crate) use confirmation::Confirmation;
pub use mapping::ClaimMapping;
pub(crate) use mapping::Identity;
pub use role::Role;

use crate::model::TokenGrants;

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

    /// The verified `iss`: which issuer vouched for this caller. User ids
    /// are only unique per issuer, so a guard trusting several issuers
    /// keys anything per-user by issuer and user id together.
    pub fn issuer(&self) -> &str {
        &self.identity.issuer
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

    /// Where this token keeps the permissions its roles compiled to.
    pub(crate) fn token_compiled(&self) -> &crate::permissions::role_sets::TokenCompiled {
        &self.identity.compiled
    }

    /// Whether the caller has a role that [matches](Role::matches) `spec`:
    /// its name, or `"<qualifier>:<name>"`. A department-limited role
    /// counts here (it holds somewhere); [`RecordAccess`](crate::RecordAccess)
    /// says where.
    pub fn has_role(&self, spec: &str) -> bool {
        self.identity.roles.iter().any(|r| r.matches(spec))
    }

    /// The OAuth scopes the token grants (from `scope` / `scp` by default),
    /// sorted. These are OAuth 2.0 scopes, not the scope groups of an
    /// entity that [`ScopeGuard`](crate::ScopeGuard) checks.
    pub fn oauth_scopes(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.identity.oauth_scopes.iter()
    }

    /// Whether the token grants the OAuth scope `scope` (exact match).
    pub fn has_oauth_scope(&self, scope: &str) -> bool {
        self.identity.oauth_scopes.contains(scope)
    }

    /// Whether the token flags a super user. The flag alone grants nothing:
    /// bypasses are opt-in per guard.
    pub fn is_super_user(&self) -> bool {
        self.identity.super_user
    }

    /// The RFC 7638 thumbprint of the key the token is bound to
    /// (`cnf.jkt`): when set, the guard has checked a DPoP proof of that
    /// key on this request.
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.identity.confirmation.jkt.as_deref()
    }

    /// Whether the token is sender-constrained (bound to a DPoP key or a
    /// client certificate, RFC 9449 / RFC 8705), and so was accepted only
    /// from the party that holds the key or certificate.
    pub fn is_sender_constrained(&self) -> bool {
        self.identity.confirmation.is_bound()
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
            .field("oauth_scopes", &self.identity.oauth_scopes)
            .field("super_user", &self.is_super_user())
            .finish_non_exhaustive()
    }
}

impl TokenGrants for Principal {
    fn has_role(&self, spec: &str) -> bool {
        Principal::has_role(self, spec)
    }

    fn has_oauth_scope(&self, scope: &str) -> bool {
        Principal::has_oauth_scope(self, scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn principal(v: Value) -> Principal {
        let id = ClaimMapping::default()
            .identity(v.as_object().unwrap().clone())
            .unwrap();
        Principal::new(Arc::new(id), None)
    }

    #[test]
    fn typed_claims() {
        let p = principal(json!({"sub": "u", "level": {"n": 3}, "is_super_user": true}));
        assert_eq!(p.claim::<u32>("level.n").unwrap(), 3);
        assert_eq!(p.claim::<u32>("/level/n").unwrap(), 3);
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

    #[test]
    fn oauth_scopes_and_roles_answer_token_requirements() {
        let p = principal(json!({"sub": "u", "scope": "a b", "roles": ["teacher"]}));
        assert!(p.has_oauth_scope("a") && p.has_oauth_scope("b"));
        assert!(!p.has_oauth_scope("c") && !p.has_oauth_scope("a b"));
        assert_eq!(p.oauth_scopes().collect::<Vec<_>>(), ["a", "b"]);
        assert!(TokenGrants::has_role(&p, "teacher"));
        assert!(!TokenGrants::has_role(&p, "admin"));
    }
}
