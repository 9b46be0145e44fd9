//! [`JwtAuthGuard`]: 401 unless the request carries a valid access token;
//! on success the request carries its [`RequestContext`](crate::RequestContext):
//! the caller's [`Principal`](crate::Principal) and a lazy, request-scoped
//! permission cell.
//!
//! Put it router-wide with `Router::layer`: it authenticates only. What a
//! route requires is checked by the per-route guards inside it, which
//! answer every refusal in the format configured here
//! ([`error_renderer`](JwtAuthGuardLayer::error_renderer)).
//!
//! A repeat request with the same token is answered from the verified-token
//! cache (no parsing, no signature check); a token whose key is cached is
//! verified without awaiting; only a token with a new kid waits for the
//! JWKS fetch.
//!
//! One guard may trust several issuers, each a [`TrustedIssuer`] with its
//! own keys, rules, claim mapping, caches and permission source
//! ([`trust`](JwtAuthGuardLayer::trust)); a token is matched to one by the
//! `iss` it claims before any key is looked up. See [`TrustedIssuer`].
//!
//! Sender-constrained tokens are checked here too: a token bound to a DPoP
//! key (`cnf.jkt`) needs a valid proof of it ([`dpop`](JwtAuthGuardLayer::dpop)),
//! one bound to a client certificate (`cnf["x5t#S256"]`) needs that
//! certificate on the connection ([`ClientCertificate`](crate::ClientCertificate)).
//!
//! A request refused before its body was read has its body drained (up to
//! [`drain_limit`](JwtAuthGuardLayer::drain_limit), 64 KiB by default), so
//! the keep-alive connection serves the client's next request; a longer
//! body is answered with `Connection: close`.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use iam_guard::{JwtAuthGuardLayer, Principal};
//!
//! async fn me(principal: Principal) -> String {
//!     format!("hello {}", principal.user_id())
//! }
//!
//! # fn build() -> Result<Router, Box<dyn std::error::Error>> {
//! let auth = JwtAuthGuardLayer::issuer("https://iam.example.com/realms/school")?
//!     .audience(["students-api"])
//!     .cookie("access_token")
//!     .tenant_header(http::HeaderName::from_static("x-org"));
//! let app = Router::new().route("/me", get(me)).layer(auth);
//! # Ok(app) }
//! # build().unwrap();
//! ```

mod binding;
mod issuers;
mod layer;
mod service;

pub use issuers::TrustedIssuer;
pub use layer::JwtAuthGuardLayer;
pub use service::JwtAuthGuard;

pub use super::future::ResponseFuture;
