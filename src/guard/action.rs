//! [`ActionGuard`]: the gate of create and delete routes. Passes when the
//! caller's action `<entity>.<action>` is effective — granted by a role AND
//! every scope requirement of the action holds — else 403
//! `ACTION_NOT_PERMITTED`.
//!
//! # Example
//!
//! ```
//! use axum::{routing::post, Router};
//! use iam_guard::guard::action::ActionGuardLayer;
//!
//! async fn create() -> &'static str { "{}" }
//!
//! let app: Router = Router::new().route(
//!     "/students",
//!     post(create).route_layer(ActionGuardLayer::new("students", "create")),
//! );
//! # let _ = app;
//! ```

use std::sync::Arc;

use super::require::define_requirement_guard;
use crate::model::Requirement;

define_requirement_guard!(
    /// Applies [`ActionGuard`]. See the [module docs](self).
    ActionGuardLayer,
    /// Requires an effective action. See the [module docs](self).
    ActionGuard
);

impl ActionGuardLayer {
    /// Requires the effective action `action` on `entity`.
    pub fn new(entity: &str, action: &str) -> Self {
        Self {
            requirement: Arc::new(Requirement::action(entity, action)),
        }
    }
}
