//! The guards, and what they share: the request context and the one deny
//! path.
//!
//! | module | what |
//! |---|---|
//! | [`auth`] | [`JwtAuthGuard`](auth::JwtAuthGuard): authenticates, plants the request context |
//! | [`require`] | [`RequirementGuard`](require::RequirementGuard) and its names [`ScopeGuard`](require::ScopeGuard), [`ActionGuard`](require::ActionGuard), [`PermissionGuard`](require::PermissionGuard) |
//! | [`field_write`] | [`FieldWriteGuard`](field_write::FieldWriteGuard): write bodies touch only writable scope groups |
//! | [`field_filter`] | [`FieldFilter`](field_filter::FieldFilter): responses carry only readable scope groups |
//! | [`protected`] | [`ProtectedResource`](protected::ProtectedResource): every route of an entity at once (axum) |
//! | [`context`] | [`RequestContext`](context::RequestContext): what travels with an admitted request |
//! | `deny` | the one function every refusal goes through: render, audit, count |

pub mod auth;
pub(crate) mod body;
pub mod context;
pub(crate) mod deny;
pub mod field_filter;
pub mod field_write;
pub mod future;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod protected;
pub mod require;
