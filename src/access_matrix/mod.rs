//! Who can do what: every role of a catalogue against every route of a
//! service, as a reviewer reads it.
//!
//! An [`AccessMatrix`] is computed from a [`Catalogue`](crate::model::Catalogue) and the routes of a
//! service (the [`report`](crate::ProtectedResource::report) of a protected
//! bundle, plus routes guarded one by one, public or open to any valid
//! token). For every role of the catalogue alone, for each role set given
//! (a caller holding several roles at once) and, on request, for a caller
//! without a token, it holds:
//!
//! - per route and method, [`Outcome::Allowed`] or [`Outcome::Refused`]
//!   with the [`ErrorCode`](crate::ErrorCode) a real request gets
//!   (`INSUFFICIENT_SCOPE`, `ACTION_NOT_PERMITTED`, `PERMISSION_DENIED`,
//!   `ROLE_REQUIRED`, ...);
//! - per entity, the access to each scope group (NONE, READ, WRITE) and
//!   whether each action is effective, only granted (a role grants it but
//!   the scopes it requires are missing), or not granted.
//!
//! Roles are compiled with
//! [`Catalogue::compile_roles`](crate::model::Catalogue::compile_roles), the compilation
//! the catalogue permission source uses, and each requirement is decided
//! by [`Requirement::decide`](crate::model::Requirement::decide), the decision of the route guards; refusals
//! carry the codes the guards answer with. The computation is pure: no
//! I/O, no server. It covers what the route gate decides from roles: a
//! write body that touches groups the caller cannot write is still refused
//! per request (`FORBIDDEN_FIELDS`), and the per-entity table says which
//! groups those are. OAuth scope requirements depend on the token's OAuth
//! scopes, not on roles: they show as refused
//! (`INSUFFICIENT_OAUTH_SCOPE`). A super user with the bypass turned on
//! passes everything and is not a row.
//!
//! Renderings: [`AccessMatrix::to_markdown`] (for a pull request),
//! [`AccessMatrix::to_csv`] (RFC 4180) and [`AccessMatrix::to_html`] (one
//! self-contained page: no network, inline CSS and script, a filter box and
//! sortable columns). Text from the catalogue and the routes is escaped in
//! each format. [`MatrixDiff`] lists the grants a catalogue change adds or
//! removes, per role.
//!
//! # Example
//!
//! ```
//! use http::Method;
//! use iam_guard::{
//!     access_matrix::{AccessMatrix, Outcome, Route, RouteAccess},
//!     model::{Catalogue, Requirement},
//!     ErrorCode, ScopeAccess,
//! };
//!
//! let catalogue = Catalogue::students_fixture();
//! let matrix = AccessMatrix::builder(&catalogue)
//!     .route(Route::new(Method::GET, "/students", Requirement::scopes("students", ScopeAccess::Read)))
//!     .route(Route::new(Method::POST, "/students", Requirement::action("students", "create")))
//!     .route(Route::new(Method::GET, "/health", RouteAccess::Public))
//!     .role_set(["hr_secretary", "parent"])
//!     .build();
//!
//! // HR is granted `create`, but the action needs WRITE on `sensitive`.
//! assert_eq!(matrix.outcome("hr_secretary", &Method::GET, "/students"), Some(Outcome::Allowed));
//! assert_eq!(
//!     matrix.outcome("hr_secretary", &Method::POST, "/students"),
//!     Some(Outcome::Refused(ErrorCode::ActionNotPermitted))
//! );
//! // With the parent's READ on `sensitive` it still lacks WRITE there.
//! assert_eq!(
//!     matrix.outcome("hr_secretary + parent", &Method::POST, "/students"),
//!     Some(Outcome::Refused(ErrorCode::ActionNotPermitted))
//! );
//! assert_eq!(matrix.cells(), 12 * 3);
//!
//! let markdown = matrix.to_markdown();
//! assert!(markdown.contains("| hr\\_secretary | HR / Secretary | ✅ | ❌ ACTION\\_NOT\\_PERMITTED | ✅ |"));
//! ```

mod compute;
mod csv;
mod diff;
mod escape;
mod html;
mod markdown;
mod route;

#[doc(inline)]
pub use compute::{
    AccessMatrix, AccessMatrixBuilder, ActionAccess, EntityAccess, EntityColumns, Outcome, Row,
    Subject,
};
#[doc(inline)]
pub use diff::{Change, Direction, MatrixDiff};
#[doc(inline)]
pub use route::{Route, RouteAccess};
