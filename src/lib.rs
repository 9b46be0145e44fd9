//! Composable Tower layers that let a resource service trust an external
//! IAM server without calling it per request.
//!
//! [`JwtAuthGuardLayer`] verifies the caller's JWT against the IAM's JWKS
//! (fetched and cached by [`JwksFetcher`]) and puts the caller's
//! [`Principal`] in the request extensions.
//!
//! ```
//! use axum::{routing::get, Router};
//! use iam_guard::{JwksFetcher, JwtAuthGuardLayer, Principal, TokenValidation, Verifier};
//!
//! async fn whoami(p: Principal) -> String {
//!     format!("{} in {:?}", p.user_id(), p.tenant_id())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = "https://iam.example.com";
//! let verifier = Verifier::new(
//!     JwksFetcher::discover(issuer)?,
//!     TokenValidation::new(issuer).audience(["students-api"]),
//! );
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .layer(JwtAuthGuardLayer::new(verifier));
//! # let _ = app; Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `jwks-http` | yes | fetching JWKS and OIDC discovery with reqwest + rustls |
//! | `axum` | yes | `Principal` / `Option<Principal>` extractors |
//! | `test-util` | no | [`test_util::TestIam`]: keys, token minting, a loopback IAM (tests only) |
//! | `full` | no | all of the above |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod macros;

pub mod guard;
pub mod jwt;
pub mod model;
pub mod permissions;
pub mod principal;
pub mod record_access;
pub mod rejection;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

#[doc(inline)]
pub use guard::auth::{JwtAuthGuard, JwtAuthGuardLayer};
#[doc(inline)]
pub use guard::field_filter::{FieldFilter, FieldFilterLayer};
#[doc(inline)]
pub use guard::field_write::{FieldWriteGuard, FieldWriteGuardLayer};
#[doc(inline)]
pub use jwt::{
    jwks::JwksFetcher,
    verify::{TokenValidation, Verifier},
};
#[doc(inline)]
pub use principal::{ClaimMapping, Principal, Role};
#[doc(inline)]
pub use rejection::{ErrorCode, ErrorRenderer, Rejection};

// The README's Rust examples are compiled (and run) as doc tests so they
// cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
