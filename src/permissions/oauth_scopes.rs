//! [`OAuthScopesSource`]: the token's OAuth scopes as flat permissions, for
//! teams that would rather guard `students:read` with
//! [`PermissionGuard`](crate::PermissionGuard) (or merge it with other
//! grants in a [`UnionSource`](super::union::UnionSource)) than with
//! [`OAuthScopeGuard`](crate::OAuthScopeGuard).

use std::sync::Arc;

use super::source::{PermissionError, PermissionFuture, PermissionSource};
use crate::{model::CompiledPermissions, principal::Principal};

/// Grants each OAuth scope of the token as the flat permission of the same
/// name (see [`Principal::oauth_scopes`]). Pure: nothing is fetched.
///
/// ```
/// use iam_guard::{permissions::oauth_scopes::OAuthScopesSource, test_util, PermissionSource};
/// use serde_json::json;
///
/// let caller = test_util::principal(json!({"sub": "svc", "scope": "students:read grades:read"}));
/// let perms = OAuthScopesSource::new().load_now(&caller).unwrap().unwrap();
/// assert!(perms.has_permission("students:read"));
/// assert!(!perms.has_permission("students:write"));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OAuthScopesSource;

impl OAuthScopesSource {
    /// The source.
    pub fn new() -> Self {
        Self
    }

    /// The permissions the scopes of `principal` grant.
    pub fn compile(&self, principal: &Principal) -> CompiledPermissions {
        let mut perms = CompiledPermissions::deny_all();
        for scope in principal.oauth_scopes() {
            perms.grant_permission(scope);
        }
        perms
    }
}

impl PermissionSource for OAuthScopesSource {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        Box::pin(std::future::ready(Ok(Arc::new(self.compile(principal)))))
    }

    fn load_now(
        &self,
        principal: &Principal,
    ) -> Option<Result<Arc<CompiledPermissions>, PermissionError>> {
        Some(Ok(Arc::new(self.compile(principal))))
    }

    fn answers_without_waiting(&self) -> bool {
        true
    }
}
