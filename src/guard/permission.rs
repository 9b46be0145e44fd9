//! [`PermissionGuard`]: flat permission strings (`inventory.regions.delete`,
//! seeds 000/001/003) and modules (`finance`, seed 003). Else 403
//! `PERMISSION_DENIED`.
//!
//! # Example
//!
//! ```
//! use axum::{routing::delete, Router};
//! use iam_guard::guard::permission::PermissionGuardLayer;
//!
//! async fn remove() -> &'static str { "" }
//!
//! let app: Router = Router::new().route(
//!     "/regions/{id}",
//!     delete(remove).route_layer(PermissionGuardLayer::all_of(["inventory.regions.delete"])),
//! );
//! # let _ = app;
//! ```

use std::sync::Arc;

use super::require::define_requirement_guard;
use crate::model::Requirement;

define_requirement_guard!(
    /// Applies [`PermissionGuard`]. See the [module docs](self).
    PermissionGuardLayer,
    /// Requires flat permissions or a module. See the [module docs](self).
    PermissionGuard
);

impl PermissionGuardLayer {
    /// Requires every one of `permissions`.
    pub fn all_of<I, P>(permissions: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        Self::new(Requirement::all_of(permissions))
    }

    /// Requires at least one of `permissions`.
    pub fn any_of<I, P>(permissions: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        Self::new(Requirement::any_of(permissions))
    }

    /// Requires the module `module`.
    pub fn module(module: &str) -> Self {
        Self::new(Requirement::module(module))
    }

    /// Enforces any [`Requirement`] (scopes and actions included).
    pub fn new(requirement: Requirement) -> Self {
        Self {
            requirement: Arc::new(requirement),
        }
    }
}
