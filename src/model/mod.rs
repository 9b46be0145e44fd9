//! The pure permission model: access levels, the RBAC catalogue and
//! compilation of a caller's roles.
//!
//! Nothing here knows about tokens, HTTP or clocks. Time is an argument
//! (unix seconds), and the only input parsed is a catalogue or a
//! `GET /permissions` document handed in by the caller.
//!
//! - [`access`]: [`ScopeAccess`] (`None < Read < Write`),
//!   [`CompiledPermissions`] (what guards look up) and [`Requirement`] (what
//!   a route demands), evaluated to `Ok(())` or a [`Denial`].
//! - [`catalogue`]: the [`Catalogue`] of entities, scopes, field mappings,
//!   actions with scope requirements, and roles, loaded from JSON.
//! - [`compile`]: [`Catalogue::compile`] turns [`RoleAssignment`]s into
//!   [`CompiledPermissions`] (seed 002 §3.6 and §3.8).
//!
//! # Example
//!
//! ```
//! use iam_guard::model::{Catalogue, Denial, Requirement, RoleAssignment, ScopeAccess};
//!
//! // Seed 002's students entity and its eleven preset roles.
//! let catalogue = Catalogue::students_fixture();
//!
//! let now = 1_772_323_200; // 2026-03-01, passed in rather than read
//! let perms = catalogue.compile(
//!     &[
//!         RoleAssignment::new("internal_teacher"),
//!         // A substitute assignment that ended yesterday adds nothing.
//!         RoleAssignment::new("admin").valid_until(now - 86_400),
//!     ],
//!     now,
//! );
//!
//! assert_eq!(perms.scope_access("students", "attendance"), ScopeAccess::Write);
//! assert!(!perms.can_read("students", "sensitive"));
//!
//! // GET and PATCH gates: ANY scope at the level.
//! assert!(Requirement::scopes("students", ScopeAccess::Write).evaluate(&perms).is_ok());
//! // POST gate: `create` needs WRITE on anagraphic AND sensitive.
//! assert_eq!(
//!     Requirement::action("students", "create").evaluate(&perms),
//!     Err(Denial::ActionNotPermitted)
//! );
//! ```

pub mod access;
pub mod catalogue;
pub mod compile;
pub mod custom_fields;
pub mod fields;
mod json_scan;

#[doc(inline)]
pub use access::{
    CompiledPermissions, Denial, FrontendJsonError, ParseScopeAccessError, PermissionRule,
    Requirement, ScopeAccess,
};
#[doc(inline)]
pub use catalogue::{ActionDef, Catalogue, CatalogueError, EntityDef, RoleDef, ScopeDef};
#[doc(inline)]
pub use compile::RoleAssignment;
