//! The pure permission model: access levels, the RBAC catalogue and
//! compilation of a caller's roles.
//!
//! Nothing here knows about tokens, HTTP or clocks. Time is an argument
//! (unix seconds), and the only input parsed is a catalogue or a
//! `GET /permissions` document handed in by the caller.
//!
//! - [`access`]: [`ScopeAccess`] (`None < Read < Write`) and
//!   [`CompiledPermissions`] (what guards look up).
//! - [`requirement`]: [`Requirement`] (what a route demands), evaluated to
//!   `Ok(())` or a [`Denial`].
//! - [`permissions_document`]: the JSON form of [`CompiledPermissions`],
//!   served by `GET /permissions` and read from a remote IAM or a token.
//! - [`catalogue`]: the [`Catalogue`] of entities, scopes, field mappings,
//!   actions with scope requirements, and roles, loaded from JSON; and
//!   [`TenantCatalogues`], the same with per-tenant role sets layered over
//!   the system roles.
//! - [`compile`]: [`Catalogue::compile`] turns [`RoleAssignment`]s into
//!   [`CompiledPermissions`], counting only the assignments active at the
//!   time given.
//! - [`fields`] and [`filtered_json`]: the scope groups of a JSON body,
//!   cut out of its bytes or skipped while a value is serialized.
//!
//! # Example
//!
//! ```
//! use iam_guard::model::{Catalogue, Denial, Requirement, RoleAssignment, ScopeAccess};
//!
//! // The students entity of the bundled school catalogue and its eleven
//! // preset roles.
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
pub mod filtered_json;
mod json_scan;
pub(crate) mod name_set;
pub mod permissions_document;
mod readable_index;
pub mod requirement;

#[doc(inline)]
pub use access::{CompiledPermissions, ParseScopeAccessError, ScopeAccess};
#[doc(inline)]
pub use catalogue::{
    ActionDef, Catalogue, CatalogueError, EntityDef, RoleDef, ScopeDef, TenantCatalogues,
};
#[doc(inline)]
pub use compile::RoleAssignment;
#[doc(inline)]
pub use permissions_document::PermissionsDocumentError;
#[doc(inline)]
pub use requirement::{Denial, PermissionRule, Requirement, TokenGrants};

/// The first ```` ```json ```` block of a module's `//!` docs in `source`,
/// without the prefixes and without trailing `  // ...` annotations: for
/// tests that keep a documented format honest where a doc test cannot
/// (JSON is not Rust).
#[cfg(test)]
pub(crate) fn json_block_of_module_docs(source: &str) -> String {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .skip_while(|line| line.trim() != "```json")
        .skip(1)
        .take_while(|line| line.trim() != "```")
        .map(|line| line.split("  //").next().unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}
