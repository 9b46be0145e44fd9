//! [`ScopeGuard`]: the entity gate of read and update routes. Passes when
//! the caller has ANY scope of the entity at the required level (WRITE
//! implies READ), else 403 `INSUFFICIENT_SCOPE`.
//!
//! It is deliberately coarse (seed 002 §3.7): which scope groups the caller
//! may actually read or write is enforced by FieldWriteGuard and
//! FieldFilter.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use iam_guard::{guard::scope::ScopeGuardLayer, model::ScopeAccess};
//!
//! async fn list() -> &'static str { "[]" }
//!
//! let app: Router = Router::new().route(
//!     "/students",
//!     get(list).route_layer(ScopeGuardLayer::new("students", ScopeAccess::Read)),
//! );
//! # let _ = app;
//! ```
//!
//! Put [`JwtAuthGuardLayer`](crate::JwtAuthGuardLayer) with a permission
//! source in front of it: without one the guard answers 500, never passes.

use std::sync::Arc;

use super::require::define_requirement_guard;
use crate::model::{Requirement, ScopeAccess};

define_requirement_guard!(
    /// Applies [`ScopeGuard`]. See the [module docs](self).
    ScopeGuardLayer,
    /// Requires access to any scope of an entity. See the [module docs](self).
    ScopeGuard
);

impl ScopeGuardLayer {
    /// Requires `level` (READ or WRITE) on any scope of `entity`.
    pub fn new(entity: &str, level: ScopeAccess) -> Self {
        Self {
            requirement: Arc::new(Requirement::scopes(entity, level)),
        }
    }
}
