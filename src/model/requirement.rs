//! What a route demands of the caller, and why a caller falls short.
//!
//! A [`Requirement`] is declared once per route and evaluated per request;
//! a failure is a [`Denial`], which the HTTP layer turns into a 403 with
//! the denial's code. Most requirements are evaluated against the caller's
//! [`CompiledPermissions`]; the requirements on roles and OAuth scopes are
//! answered by the token alone, through [`TokenGrants`], so they need no
//! permission source.

use std::fmt;

use super::access::{CompiledPermissions, ScopeAccess};

/// What a route demands of the caller.
///
/// Evaluated by [`Requirement::evaluate`] against the caller's
/// [`CompiledPermissions`]; each variant fails with its own [`Denial`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Requirement {
    /// ANY scope of `entity` at `level` or above (the gate of
    /// `ScopeGuard`); fails with [`Denial::InsufficientScope`].
    Scopes {
        /// The entity, such as `students`.
        entity: String,
        /// The lowest acceptable level; NONE counts as READ.
        level: ScopeAccess,
    },
    /// The effective action `entity.action` (the gate of `ActionGuard`);
    /// fails with [`Denial::ActionNotPermitted`].
    Action {
        /// The entity, such as `students`.
        entity: String,
        /// The action, such as `create`.
        action: String,
    },
    /// Flat permission strings; fails with [`Denial::PermissionDenied`].
    Permissions(PermissionRule),
    /// A module such as `finance`; fails with [`Denial::PermissionDenied`].
    Module(String),
    /// OAuth 2.0 scopes the token must grant (`students:read`), not to be
    /// confused with the scope groups of [`Requirement::Scopes`]; fails
    /// with [`Denial::InsufficientOAuthScope`].
    OAuthScopes(PermissionRule),
    /// Roles the token must grant, each a name or `"<qualifier>:<name>"`;
    /// fails with [`Denial::RoleRequired`].
    Roles(PermissionRule),
}

/// What the token itself grants: roles and OAuth scopes. Implemented by
/// [`Principal`](crate::Principal); the model only asks.
pub trait TokenGrants {
    /// Whether a role matching `spec` (a name or `"<qualifier>:<name>"`)
    /// is granted.
    fn has_role(&self, spec: &str) -> bool;
    /// Whether the OAuth scope `scope` is granted.
    fn has_oauth_scope(&self, scope: &str) -> bool;
}

/// How a [`Requirement::Permissions`] combines its strings.
///
/// An empty list denies under either rule: a requirement that names nothing
/// is a wiring mistake, and failing closed makes it visible.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PermissionRule {
    /// Every permission must be granted.
    AllOf(Vec<String>),
    /// At least one permission must be granted.
    AnyOf(Vec<String>),
}

impl Requirement {
    /// ANY scope of `entity` at `level` or above.
    pub fn scopes(entity: impl Into<String>, level: ScopeAccess) -> Self {
        Self::Scopes {
            entity: entity.into(),
            level,
        }
    }

    /// The effective action `entity.action`.
    pub fn action(entity: impl Into<String>, action: impl Into<String>) -> Self {
        Self::Action {
            entity: entity.into(),
            action: action.into(),
        }
    }

    /// Every one of `permissions`.
    pub fn all_of<I, S>(permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Permissions(PermissionRule::AllOf(
            permissions.into_iter().map(Into::into).collect(),
        ))
    }

    /// At least one of `permissions`.
    pub fn any_of<I, S>(permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Permissions(PermissionRule::AnyOf(
            permissions.into_iter().map(Into::into).collect(),
        ))
    }

    /// The module `module`.
    pub fn module(module: impl Into<String>) -> Self {
        Self::Module(module.into())
    }

    /// OAuth scopes combined by `rule`.
    pub fn oauth_scopes(rule: PermissionRule) -> Self {
        Self::OAuthScopes(rule)
    }

    /// Roles combined by `rule`.
    pub fn roles(rule: PermissionRule) -> Self {
        Self::Roles(rule)
    }

    /// Whether the token alone answers this requirement (roles and OAuth
    /// scopes): then no permissions are loaded for it.
    pub fn is_on_token(&self) -> bool {
        matches!(self, Self::OAuthScopes(_) | Self::Roles(_))
    }

    /// The OAuth scopes a client should ask for to meet this requirement,
    /// space-separated as in a `WWW-Authenticate` `scope` attribute
    /// (RFC 6750 §3); `None` for the other requirements.
    pub fn oauth_scope_hint(&self) -> Option<String> {
        match self {
            Self::OAuthScopes(rule) => Some(rule.items().join(" ")),
            _ => None,
        }
    }

    /// Checks a requirement of the token ([`is_on_token`](Self::is_on_token))
    /// against what the token grants.
    ///
    /// # Errors
    ///
    /// The requirement's [`Denial`] when the token falls short, and for
    /// every requirement that needs permissions: those are evaluated with
    /// [`evaluate`](Self::evaluate), never passed here by mistake.
    pub fn evaluate_token(&self, token: &impl TokenGrants) -> Result<(), Denial> {
        let allowed = match self {
            Self::OAuthScopes(rule) => rule.holds(|s| token.has_oauth_scope(s)),
            Self::Roles(rule) => rule.holds(|r| token.has_role(r)),
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(self.denial())
        }
    }

    /// The decision of a route guard: a requirement of the token
    /// ([`is_on_token`](Self::is_on_token)) is answered by `token` with
    /// [`evaluate_token`](Self::evaluate_token), every other one by `perms`
    /// with [`evaluate`](Self::evaluate). The guard makes the same split,
    /// but lazily, so that a requirement of the token loads no permissions;
    /// the access matrix calls this with both at hand.
    ///
    /// # Errors
    ///
    /// The requirement's [`Denial`] when the caller falls short.
    pub fn decide(
        &self,
        token: &impl TokenGrants,
        perms: &CompiledPermissions,
    ) -> Result<(), Denial> {
        if self.is_on_token() {
            self.evaluate_token(token)
        } else {
            self.evaluate(perms)
        }
    }

    /// The entity the requirement is about, for the field guards.
    ///
    /// `Some` for [`Requirement::Scopes`] and [`Requirement::Action`] (the
    /// field guards derive the entity from either), `None` for flat
    /// permissions and modules.
    pub fn entity(&self) -> Option<&str> {
        match self {
            Self::Scopes { entity, .. } | Self::Action { entity, .. } => Some(entity),
            Self::Permissions(_) | Self::Module(_) | Self::OAuthScopes(_) | Self::Roles(_) => None,
        }
    }

    /// Checks the requirement against `perms` with lookups only.
    ///
    /// # Errors
    ///
    /// Returns the [`Denial`] the variant maps to when `perms` falls short.
    /// Requirements of the token ([`is_on_token`](Self::is_on_token)) are
    /// not answered by permissions and always deny here: evaluate them with
    /// [`evaluate_token`](Self::evaluate_token).
    pub fn evaluate(&self, perms: &CompiledPermissions) -> Result<(), Denial> {
        let allowed = match self {
            Self::Scopes { entity, level } => perms.has_any_scope(entity, *level),
            Self::Action { entity, action } => perms.has_action(entity, action),
            Self::Permissions(rule) => rule.holds(|p| perms.has_permission(p)),
            Self::Module(module) => perms.has_module(module),
            Self::OAuthScopes(_) | Self::Roles(_) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(self.denial())
        }
    }

    /// The denial this requirement produces when it is not met.
    pub fn denial(&self) -> Denial {
        match self {
            Self::Scopes { .. } => Denial::InsufficientScope,
            Self::Action { .. } => Denial::ActionNotPermitted,
            Self::Permissions(_) | Self::Module(_) => Denial::PermissionDenied,
            Self::OAuthScopes(_) => Denial::InsufficientOAuthScope,
            Self::Roles(_) => Denial::RoleRequired,
        }
    }
}

impl PermissionRule {
    /// The names the rule combines.
    pub fn items(&self) -> &[String] {
        match self {
            Self::AllOf(items) | Self::AnyOf(items) => items,
        }
    }

    /// Whether `granted` holds for the rule; an empty list never holds.
    pub fn holds(&self, granted: impl Fn(&str) -> bool) -> bool {
        match self {
            Self::AllOf(required) => !required.is_empty() && required.iter().all(|p| granted(p)),
            Self::AnyOf(required) => required.iter().any(|p| granted(p)),
        }
    }
}

impl fmt::Display for PermissionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AllOf(required) => write!(f, "all of [{}]", required.join(", ")),
            Self::AnyOf(required) => write!(f, "any of [{}]", required.join(", ")),
        }
    }
}

impl fmt::Display for Requirement {
    /// A compact form for audit logs, such as `scopes students >= WRITE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scopes { entity, level } => write!(f, "scopes {entity} >= {level}"),
            Self::Action { entity, action } => write!(f, "action {entity}.{action}"),
            Self::Permissions(rule) => write!(f, "{rule}"),
            Self::Module(module) => write!(f, "module {module}"),
            Self::OAuthScopes(rule) => write!(f, "oauth scopes {rule}"),
            Self::Roles(rule) => write!(f, "roles {rule}"),
        }
    }
}

/// Why [`Requirement::evaluate`] refused; each maps to one 403 code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// No scope of the entity at the required level: `INSUFFICIENT_SCOPE`.
    #[error("insufficient scope")]
    InsufficientScope,
    /// The action is not effective: `ACTION_NOT_PERMITTED`.
    #[error("action not permitted")]
    ActionNotPermitted,
    /// A flat permission or module is missing: `PERMISSION_DENIED`.
    #[error("permission denied")]
    PermissionDenied,
    /// The token lacks an OAuth scope the route needs:
    /// `INSUFFICIENT_OAUTH_SCOPE`.
    #[error("insufficient OAuth scope")]
    InsufficientOAuthScope,
    /// The token lacks a role the route needs: `ROLE_REQUIRED`.
    #[error("role required")]
    RoleRequired,
}

impl Denial {
    /// The error code the HTTP layer sends with its 403.
    pub const fn code(self) -> &'static str {
        match self {
            Self::InsufficientScope => "INSUFFICIENT_SCOPE",
            Self::ActionNotPermitted => "ACTION_NOT_PERMITTED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::InsufficientOAuthScope => "INSUFFICIENT_OAUTH_SCOPE",
            Self::RoleRequired => "ROLE_REQUIRED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::access::tests::{access, grants, name, teacher};
    use proptest::prelude::*;

    #[test]
    fn scopes_requirement_passes_and_fails_with_insufficient_scope() {
        let perms = teacher();
        assert_eq!(
            Requirement::scopes("students", ScopeAccess::Read).evaluate(&perms),
            Ok(())
        );
        assert_eq!(
            Requirement::scopes("students", ScopeAccess::Write).evaluate(&perms),
            Ok(())
        );
        let mut reader = CompiledPermissions::deny_all();
        reader.grant_scope("students", "anagraphic", ScopeAccess::Read);
        assert_eq!(
            Requirement::scopes("students", ScopeAccess::Write).evaluate(&reader),
            Err(Denial::InsufficientScope)
        );
        assert_eq!(
            Requirement::scopes("teachers", ScopeAccess::Read).evaluate(&reader),
            Err(Denial::InsufficientScope)
        );
    }

    #[test]
    fn action_requirement_passes_and_fails_with_action_not_permitted() {
        let perms = teacher();
        assert_eq!(
            Requirement::action("students", "export").evaluate(&perms),
            Ok(())
        );
        assert_eq!(
            Requirement::action("students", "create").evaluate(&perms),
            Err(Denial::ActionNotPermitted)
        );
        assert_eq!(
            Requirement::action("teachers", "export").evaluate(&perms),
            Err(Denial::ActionNotPermitted)
        );
    }

    #[test]
    fn all_of_needs_every_permission() {
        let perms = teacher();
        assert_eq!(
            Requirement::all_of(["inventory.regions.view", "inventory.regions.update"])
                .evaluate(&perms),
            Ok(())
        );
        assert_eq!(
            Requirement::all_of(["inventory.regions.view", "inventory.regions.delete"])
                .evaluate(&perms),
            Err(Denial::PermissionDenied)
        );
    }

    #[test]
    fn any_of_needs_one_permission() {
        let perms = teacher();
        assert_eq!(
            Requirement::any_of(["inventory.regions.delete", "inventory.regions.view"])
                .evaluate(&perms),
            Ok(())
        );
        assert_eq!(
            Requirement::any_of(["inventory.regions.delete", "inventory.racks.view"])
                .evaluate(&perms),
            Err(Denial::PermissionDenied)
        );
    }

    #[test]
    fn empty_permission_rules_deny() {
        let perms = teacher();
        let none: [&str; 0] = [];
        assert_eq!(
            Requirement::all_of(none).evaluate(&perms),
            Err(Denial::PermissionDenied)
        );
        assert_eq!(
            Requirement::any_of(none).evaluate(&perms),
            Err(Denial::PermissionDenied)
        );
    }

    #[test]
    fn module_requirement_passes_and_fails_with_permission_denied() {
        let perms = teacher();
        assert_eq!(Requirement::module("finance").evaluate(&perms), Ok(()));
        assert_eq!(
            Requirement::module("market").evaluate(&perms),
            Err(Denial::PermissionDenied)
        );
    }

    #[test]
    fn entity_comes_from_scopes_and_action_requirements_only() {
        assert_eq!(
            Requirement::scopes("students", ScopeAccess::Read).entity(),
            Some("students")
        );
        assert_eq!(
            Requirement::action("teachers", "create").entity(),
            Some("teachers")
        );
        assert_eq!(Requirement::all_of(["a.b"]).entity(), None);
        assert_eq!(Requirement::module("finance").entity(), None);
    }

    #[test]
    fn denials_carry_their_http_codes() {
        assert_eq!(Denial::InsufficientScope.code(), "INSUFFICIENT_SCOPE");
        assert_eq!(Denial::ActionNotPermitted.code(), "ACTION_NOT_PERMITTED");
        assert_eq!(Denial::PermissionDenied.code(), "PERMISSION_DENIED");
        assert_eq!(
            Denial::ActionNotPermitted.to_string(),
            "action not permitted"
        );
    }

    struct Token(&'static [&'static str], &'static [&'static str]);

    impl TokenGrants for Token {
        fn has_role(&self, spec: &str) -> bool {
            self.0.contains(&spec)
        }
        fn has_oauth_scope(&self, scope: &str) -> bool {
            self.1.contains(&scope)
        }
    }

    #[test]
    fn token_requirements_are_answered_by_the_token_only() {
        let token = Token(&["teacher"], &["students:read"]);
        let read = Requirement::oauth_scopes(PermissionRule::AllOf(vec!["students:read".into()]));
        let write = Requirement::oauth_scopes(PermissionRule::AnyOf(vec![
            "students:write".into(),
            "admin".into(),
        ]));
        let teacher = Requirement::roles(PermissionRule::AnyOf(vec!["teacher".into()]));
        let both = Requirement::roles(PermissionRule::AllOf(vec![
            "teacher".into(),
            "admin".into(),
        ]));
        assert!(read.is_on_token() && teacher.is_on_token());
        assert!(!Requirement::module("x").is_on_token());
        assert_eq!(read.evaluate_token(&token), Ok(()));
        assert_eq!(
            write.evaluate_token(&token),
            Err(Denial::InsufficientOAuthScope)
        );
        assert_eq!(teacher.evaluate_token(&token), Ok(()));
        assert_eq!(both.evaluate_token(&token), Err(Denial::RoleRequired));
        // Never answered by permissions, and never answering for them.
        assert_eq!(
            read.evaluate(&teacher_perms()),
            Err(Denial::InsufficientOAuthScope)
        );
        assert_eq!(
            Requirement::module("finance").evaluate_token(&token),
            Err(Denial::PermissionDenied)
        );
        assert_eq!(
            write.oauth_scope_hint().as_deref(),
            Some("students:write admin")
        );
        assert_eq!(teacher.oauth_scope_hint(), None);
        assert_eq!(
            write.to_string(),
            "oauth scopes any of [students:write, admin]"
        );
        assert_eq!(both.to_string(), "roles all of [teacher, admin]");
        assert_eq!(
            Denial::InsufficientOAuthScope.code(),
            "INSUFFICIENT_OAUTH_SCOPE"
        );
        assert_eq!(Denial::RoleRequired.code(), "ROLE_REQUIRED");
    }

    #[test]
    fn decide_asks_the_token_or_the_permissions_by_requirement() {
        let token = Token(&["teacher"], &[]);
        let perms = teacher();
        let role = Requirement::roles(PermissionRule::AnyOf(vec!["teacher".into()]));
        assert_eq!(
            role.decide(&token, &CompiledPermissions::deny_all()),
            Ok(())
        );
        assert_eq!(
            role.decide(&Token(&[], &[]), &perms),
            Err(Denial::RoleRequired)
        );
        let read = Requirement::scopes("students", ScopeAccess::Read);
        assert_eq!(read.decide(&Token(&[], &[]), &perms), Ok(()));
        assert_eq!(
            read.decide(&token, &CompiledPermissions::deny_all()),
            Err(Denial::InsufficientScope)
        );
    }

    fn teacher_perms() -> CompiledPermissions {
        teacher()
    }

    #[test]
    fn requirements_display_for_audit_logs() {
        assert_eq!(
            Requirement::scopes("students", ScopeAccess::Write).to_string(),
            "scopes students >= WRITE"
        );
        assert_eq!(
            Requirement::action("students", "create").to_string(),
            "action students.create"
        );
        assert_eq!(
            Requirement::any_of(["a.b", "c.d"]).to_string(),
            "any of [a.b, c.d]"
        );
        assert_eq!(Requirement::module("finance").to_string(), "module finance");
    }

    fn requirement() -> impl Strategy<Value = Requirement> {
        prop_oneof![
            (name(), access()).prop_map(|(e, l)| Requirement::scopes(e, l)),
            (name(), name()).prop_map(|(e, a)| Requirement::action(e, a)),
            prop::collection::vec(name(), 0..4).prop_map(Requirement::all_of),
            prop::collection::vec(name(), 0..4).prop_map(Requirement::any_of),
            name().prop_map(Requirement::module),
        ]
    }

    proptest! {
        #[test]
        fn deny_all_denies_every_requirement(req in requirement()) {
            let denied = req.evaluate(&CompiledPermissions::deny_all());
            prop_assert_eq!(denied, Err(req.denial()));
        }


        #[test]
        fn merging_never_removes_access(a in grants(), b in grants(), req in requirement()) {
            let mut merged = a.clone();
            merged.merge(&b);
            if req.evaluate(&a).is_ok() {
                prop_assert_eq!(req.evaluate(&merged), Ok(()));
            }
        }
    }
}
