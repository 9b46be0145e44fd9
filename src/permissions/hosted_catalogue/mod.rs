//! A catalogue that lives at the IAM: fetched, validated and refreshed
//! like the JWKS, with per-tenant role sets (each school's custom roles).
//!
//! The document is the layered format of
//! [`model::catalogue::tenants`](crate::model::catalogue::tenants): system
//! entities, scopes, actions and preset roles, plus a `tenants` map of
//! each tenant's own roles. A plain catalogue (no `tenants`) works as is.
//!
//! - [`CatalogueFetcher`] fetches it from a URL (or any
//!   [`CatalogueEndpoint`]) and decides which version is in force.
//! - [`HostedCatalogueSource`] is the [`PermissionSource`] over it: the
//!   caller's roles compiled against its tenant's catalogue.
//!
//! What the fetcher guarantees, and why:
//!
//! - **Warm → no I/O.** A request reads the version in force; none waits
//!   for a refresh. From 80 % of the freshness a background task asks the
//!   IAM again, conditionally (`If-None-Match` with the ETag held): a 304
//!   keeps the version and restarts its freshness, so an unchanged
//!   catalogue is neither downloaded nor recompiled.
//! - **Freshness from `Cache-Control`.** `max-age` when the IAM sends it,
//!   else 5 min, clamped to 10 s … 24 h.
//! - **Validated before it replaces anything.** A new document is parsed
//!   and validated as a whole (every tenant's roles against the system
//!   entities and scopes) before it is installed. A malformed, invalid or
//!   oversized one (default cap 4 MiB) replaces nothing: it is logged
//!   (`tracing` target `iam_guard::catalogue`, level WARN, with the
//!   problem named) and the version in force keeps serving.
//! - **Stale-if-error.** While the IAM is down or keeps sending a refused
//!   document, the version in force keeps serving for a bounded window
//!   (default 24 h) that starts when its freshness ends; past it, requests
//!   get 503 until a valid catalogue arrives.
//! - **Fail closed on a cold start.** With nothing fetched yet and no IAM,
//!   loads fail with [`PermissionError::Unavailable`](crate::permissions::source::PermissionError::Unavailable),
//!   which the guards answer 503 `IAM_UNAVAILABLE`: never a guess.
//! - **One fetch per pause.** Concurrent requests on a cold start share one
//!   fetch; after a failure no fetch is tried until the retry pause
//!   (default 1 s) has passed, however many requests arrive, so an outage
//!   costs the IAM one call per pause.
//! - **Nothing compiled from an old version is served once a new one is
//!   in.** Compiled role sets are memoized per version and per tenant.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let iam = iam_guard::test_util::TestIam::start().await;
//! # let catalogue_url = iam.catalogue_url();
//! use std::time::Duration;
//! use iam_guard::{
//!     permissions::hosted_catalogue::{CatalogueFetcher, HostedCatalogueSource},
//!     JwtAuthGuardLayer,
//! };
//!
//! let catalogue = CatalogueFetcher::builder()
//!     .ttl(Duration::from_secs(60))
//!     .url(&catalogue_url)?; // e.g. https://iam.example.com/api/v1/catalogue
//! // Optional: fetch now so the first request does not wait.
//! let version = catalogue.warm_up().await?;
//! println!("catalogue version {} (ETag {:?})", version.number(), version.etag());
//!
//! let auth = JwtAuthGuardLayer::new(iam.verifier())
//!     .permissions(HostedCatalogueSource::new(catalogue));
//! # let _ = auth; Ok(()) }
//! ```
//!
//! [`PermissionSource`]: crate::permissions::source::PermissionSource

mod endpoint;
mod fetcher;
#[cfg(feature = "jwks-http")]
mod http;
mod source;
mod version;

pub use endpoint::{CatalogueDocument, CatalogueEndpoint, CatalogueFetchFuture, CatalogueResponse};
pub use fetcher::{
    CatalogueFetcher, CatalogueFetcherBuilder, DEFAULT_CATALOGUE_RETRY_AFTER_FAILURE,
    DEFAULT_CATALOGUE_STALE_IF_ERROR, DEFAULT_CATALOGUE_TTL, DEFAULT_MAX_CATALOGUE_BYTES,
};
#[cfg(feature = "jwks-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
pub use http::HttpCatalogueEndpoint;
pub use source::HostedCatalogueSource;
pub use version::{CatalogueFetchError, CatalogueVersion};
