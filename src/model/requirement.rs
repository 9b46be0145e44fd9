//! What a route demands of the caller, and why a caller falls short.
//!
//! A [`Requirement`] is declared once per route and evaluated per request
//! against the caller's [`CompiledPermissions`]; a failure is a [`Denial`],
//! which the HTTP layer turns into a 403 with the denial's code.

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

    /// The entity the requirement is about, for the field guards.
    ///
    /// `Some` for [`Requirement::Scopes`] and [`Requirement::Action`] (the
    /// field guards derive the entity from either), `None` for flat
    /// permissions and modules.
    pub fn entity(&self) -> Option<&str> {
        match self {
            Self::Scopes { entity, .. } | Self::Action { entity, .. } => Some(entity),
            Self::Permissions(_) | Self::Module(_) => None,
        }
    }

    /// Checks the requirement against `perms` with lookups only.
    ///
    /// # Errors
    ///
    /// Returns the [`Denial`] the variant maps to when `perms` falls short.
    pub fn evaluate(&self, perms: &CompiledPermissions) -> Result<(), Denial> {
        let allowed = match self {
            Self::Scopes { entity, level } => perms.has_any_scope(entity, *level),
            Self::Action { entity, action } => perms.has_action(entity, action),
            Self::Permissions(PermissionRule::AllOf(required)) => {
                !required.is_empty() && required.iter().all(|p| perms.has_permission(p))
            }
            Self::Permissions(PermissionRule::AnyOf(required)) => {
                required.iter().any(|p| perms.has_permission(p))
            }
            Self::Module(module) => perms.has_module(module),
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
        }
    }
}

impl fmt::Display for Requirement {
    /// A compact form for audit logs, such as `scopes students >= WRITE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scopes { entity, level } => write!(f, "scopes {entity} >= {level}"),
            Self::Action { entity, action } => write!(f, "action {entity}.{action}"),
            Self::Permissions(PermissionRule::AllOf(required)) => {
                write!(f, "all of [{}]", required.join(", "))
            }
            Self::Permissions(PermissionRule::AnyOf(required)) => {
                write!(f, "any of [{}]", required.join(", "))
            }
            Self::Module(module) => write!(f, "module {module}"),
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
}

impl Denial {
    /// The error code the HTTP layer sends with its 403.
    pub const fn code(self) -> &'static str {
        match self {
            Self::InsufficientScope => "INSUFFICIENT_SCOPE",
            Self::ActionNotPermitted => "ACTION_NOT_PERMITTED",
            Self::PermissionDenied => "PERMISSION_DENIED",
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
