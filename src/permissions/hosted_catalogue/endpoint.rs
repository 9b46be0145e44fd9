//! Where the catalogue document comes from: the [`CatalogueEndpoint`]
//! trait, so the fetcher's caching and resilience work with any HTTP
//! client (or none: a file, a message bus).

use std::{future::Future, pin::Pin, time::Duration};

use bytes::Bytes;

use crate::jwt::source::FetchError;

/// A boxed future returned by [`CatalogueEndpoint::fetch`].
pub type CatalogueFetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<CatalogueResponse, FetchError>> + Send + 'a>>;

/// Fetches the raw catalogue document from the IAM.
///
/// Implement it to bring your own client; the crate ships
/// [`HttpCatalogueEndpoint`](super::HttpCatalogueEndpoint) (feature
/// `jwks-http`). An endpoint only fetches: parsing, validation, the size
/// cap, freshness, single-flight and stale-if-error live in
/// [`CatalogueFetcher`](super::CatalogueFetcher).
pub trait CatalogueEndpoint: Send + Sync + 'static {
    /// Fetches the current document. `etag` is the entity tag of the
    /// version held, if any: an endpoint that can ask conditionally (HTTP
    /// `If-None-Match`) answers [`CatalogueResponse::NotModified`] when it
    /// is still current; one that cannot simply returns the document.
    fn fetch<'a>(&'a self, etag: Option<&'a str>) -> CatalogueFetchFuture<'a>;
}

/// What the endpoint answered.
#[derive(Debug, Clone)]
pub enum CatalogueResponse {
    /// A document, not yet parsed or validated.
    Modified(CatalogueDocument),
    /// The version held is still current (HTTP 304): it is kept and its
    /// freshness restarts.
    NotModified {
        /// `Cache-Control: max-age` of the answer, if any.
        max_age: Option<Duration>,
    },
}

/// A fetched catalogue document, not yet parsed or validated.
#[derive(Debug, Clone)]
pub struct CatalogueDocument {
    /// The response body.
    pub body: Bytes,
    /// The entity tag (`ETag`), as the IAM sent it, to ask with next time.
    pub etag: Option<String>,
    /// `Cache-Control: max-age`, if the IAM sent one; see
    /// [`max_age`](crate::jwt::source::max_age).
    pub max_age: Option<Duration>,
}
