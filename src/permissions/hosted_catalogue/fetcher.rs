//! [`CatalogueFetcher`]: the IAM's catalogue, validated before it is used,
//! kept fresh off the request path and usable through an IAM outage.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
    time::Duration,
};

use super::{
    endpoint::{CatalogueDocument, CatalogueEndpoint, CatalogueResponse},
    version::{CatalogueFetchError, CatalogueVersion},
};
use crate::{
    freshness::{Freshness, Windows},
    jwt::source::FetchError,
    metrics::{self, CatalogueFetchResult},
    model::TenantCatalogues,
};

/// Default freshness of a catalogue when the IAM sends no
/// `Cache-Control: max-age`.
pub const DEFAULT_CATALOGUE_TTL: Duration = Duration::from_secs(5 * 60);
/// Default window in which a catalogue outlives a failing IAM, counted from
/// the end of its freshness.
pub const DEFAULT_CATALOGUE_STALE_IF_ERROR: Duration = Duration::from_secs(24 * 60 * 60);
/// Default pause after a failed or refused fetch before the next attempt.
pub const DEFAULT_CATALOGUE_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Default cap on a catalogue document.
pub const DEFAULT_MAX_CATALOGUE_BYTES: usize = 4 * 1024 * 1024;

/// Builds a [`CatalogueFetcher`]. See the [module docs](super) for the
/// defaults.
#[derive(Clone)]
pub struct CatalogueFetcherBuilder {
    windows: Windows,
    max_bytes: usize,
    #[cfg(feature = "jwks-http")]
    timeout: Duration,
    #[cfg(feature = "jwks-http")]
    service_token: Option<String>,
}

impl fmt::Debug for CatalogueFetcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("CatalogueFetcherBuilder");
        let w = &self.windows;
        d.field("ttl", &w.ttl)
            .field("ttl_bounds", &(w.min_ttl, w.max_ttl))
            .field("stale_if_error", &w.stale_if_error)
            .field("retry_after_failure", &w.retry_after_failure)
            .field("max_document_bytes", &self.max_bytes);
        #[cfg(feature = "jwks-http")]
        d.field("http_timeout", &self.timeout).field(
            "service_token",
            &self.service_token.as_ref().map(|_| "<redacted>"),
        );
        d.finish()
    }
}

impl Default for CatalogueFetcherBuilder {
    fn default() -> Self {
        Self {
            windows: Windows::new(
                DEFAULT_CATALOGUE_TTL,
                DEFAULT_CATALOGUE_STALE_IF_ERROR,
                DEFAULT_CATALOGUE_RETRY_AFTER_FAILURE,
            ),
            max_bytes: DEFAULT_MAX_CATALOGUE_BYTES,
            #[cfg(feature = "jwks-http")]
            timeout: crate::jwt::http::DEFAULT_HTTP_TIMEOUT,
            #[cfg(feature = "jwks-http")]
            service_token: None,
        }
    }
}

impl CatalogueFetcherBuilder {
    /// Freshness when the IAM sends no `max-age` (default 5 min).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.windows.ttl = ttl;
        self
    }

    /// Bounds applied to the freshness, the IAM's `max-age` or the default
    /// (default 10 s to 24 h).
    pub fn ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.windows.bound_ttl(min, max);
        self
    }

    /// How long a catalogue keeps serving once it is stale (its freshness
    /// is over) while no new version can be had (default 24 h).
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.windows.stale_if_error = window;
        self
    }

    /// Pause after a failed or refused fetch before another is tried
    /// (default 1 s), so an outage costs the IAM one call per pause however
    /// busy the service is.
    pub fn retry_after_failure(mut self, pause: Duration) -> Self {
        self.windows.retry_after_failure = pause;
        self
    }

    /// Cap on the catalogue document (default 4 MiB). A larger document is
    /// refused, whatever the endpoint.
    pub fn max_document_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// HTTP timeout of catalogue fetches (default 5 s).
    #[cfg(feature = "jwks-http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The service's own credential, sent as `Authorization: Bearer` with
    /// each catalogue fetch (no credential by default).
    #[cfg(feature = "jwks-http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
    pub fn service_token(mut self, token: impl Into<String>) -> Self {
        self.service_token = Some(token.into());
        self
    }

    /// A fetcher reading the catalogue from `url` over HTTP(S).
    ///
    /// Nothing is fetched yet, so a service can start while the IAM is
    /// down; call [`CatalogueFetcher::warm_up`] to fetch now.
    ///
    /// # Errors
    ///
    /// When `url` is not an absolute http(s) URL or the HTTP client cannot
    /// be built.
    #[cfg(feature = "jwks-http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
    pub fn url(self, url: &str) -> Result<CatalogueFetcher, FetchError> {
        let endpoint = super::http::HttpCatalogueEndpoint::new(
            url,
            self.timeout,
            self.max_bytes,
            self.service_token.clone(),
        )?;
        Ok(self.endpoint(endpoint))
    }

    /// A fetcher over a [`CatalogueEndpoint`] of your own.
    pub fn endpoint(self, endpoint: impl CatalogueEndpoint) -> CatalogueFetcher {
        CatalogueFetcher {
            inner: Arc::new(Inner {
                endpoint: Box::new(endpoint),
                current: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(()),
                freshness: Freshness::unfetched(),
                generation: AtomicU64::new(0),
                last_error: Mutex::new(None),
                fetches: AtomicU64::new(0),
                config: self,
            }),
        }
    }
}

/// The IAM's catalogue, fetched, validated and kept fresh. Cheap to clone;
/// clones share the catalogue.
///
/// See the [module docs](super) for behaviour and an example.
#[derive(Clone)]
pub struct CatalogueFetcher {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Box<dyn CatalogueEndpoint>,
    /// The last version installed. Replaced only by a document that
    /// validated; whether it may serve is decided by `freshness`.
    current: RwLock<Option<Arc<CatalogueVersion>>>,
    /// Held for the duration of a fetch: concurrent cold-start loads wait
    /// here and then read its outcome instead of fetching again. Requests
    /// served by a usable version never touch it.
    refresh: tokio::sync::Mutex<()>,
    /// Whether the current version is fresh, may still serve (stale within
    /// the stale-if-error window), or is due for a refresh.
    freshness: Freshness,
    /// Bumped when a fetch attempt finishes, successful or not.
    generation: AtomicU64,
    last_error: Mutex<Option<CatalogueFetchError>>,
    fetches: AtomicU64,
    config: CatalogueFetcherBuilder,
}

impl fmt::Debug for CatalogueFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current();
        f.debug_struct("CatalogueFetcher")
            .field("version", &current.as_ref().map(|v| v.number()))
            .field("etag", &current.as_ref().and_then(|v| v.etag()))
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

impl CatalogueFetcher {
    /// A builder with the defaults of the [module docs](super).
    pub fn builder() -> CatalogueFetcherBuilder {
        CatalogueFetcherBuilder::default()
    }

    /// A fetcher with default settings reading the catalogue from `url`.
    ///
    /// # Errors
    ///
    /// See [`CatalogueFetcherBuilder::url`].
    #[cfg(feature = "jwks-http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
    pub fn url(url: &str) -> Result<Self, FetchError> {
        Self::builder().url(url)
    }

    /// Fetches the catalogue now, so the first request does not wait for
    /// it. If a fetch completes while this one waits for its turn, its
    /// outcome is returned instead of fetching again.
    ///
    /// # Errors
    ///
    /// The fetch error, or why the document was refused. A version held
    /// before keeps serving, and the fetcher retries on its own.
    pub async fn warm_up(&self) -> Result<Arc<CatalogueVersion>, CatalogueFetchError> {
        let seen = self.inner.generation.load(Ordering::Acquire);
        let _guard = self.inner.refresh.lock().await;
        if self.inner.generation.load(Ordering::Acquire) != seen {
            let last = self.inner.last_error.lock().expect("lock poisoned").clone();
            return match (last, self.current()) {
                (None, Some(version)) => Ok(version),
                (last, _) => Err(last.unwrap_or(CatalogueFetchError::NotFetched)),
            };
        }
        self.fetch_locked().await
    }

    /// Fetches the catalogue now, after any fetch under way: for a service
    /// the IAM notifies when the catalogue changes. Each call asks the IAM
    /// once (conditionally, with the ETag held), so do not call it per
    /// request.
    ///
    /// # Errors
    ///
    /// As [`warm_up`](Self::warm_up).
    pub async fn refresh(&self) -> Result<Arc<CatalogueVersion>, CatalogueFetchError> {
        let _guard = self.inner.refresh.lock().await;
        self.fetch_locked().await
    }

    /// The catalogue to use now: the version held while it is usable (no
    /// I/O), else a fetch. Concurrent callers on a cold start share one
    /// fetch, and after a failure no fetch is tried until the retry pause
    /// has passed.
    ///
    /// # Errors
    ///
    /// When no usable version is held and none can be fetched: the last
    /// fetch error, or [`CatalogueFetchError::NotFetched`].
    pub async fn load(&self) -> Result<Arc<CatalogueVersion>, CatalogueFetchError> {
        if let Some(version) = self.load_now() {
            return Ok(version);
        }
        let inner = &self.inner;
        // Read before judging the pause: a fetch that completes after this
        // point is then seen below as "finished while we waited" and its
        // outcome used, instead of a second fetch.
        let seen = inner.generation.load(Ordering::Acquire);
        if inner.freshness.retry_paused(&inner.config.windows) {
            return Err(self.unavailable());
        }
        let guard = inner.refresh.lock().await;
        if self.usable().is_none() && inner.generation.load(Ordering::Acquire) == seen {
            // Errors are logged by the fetch and answered below.
            let _ = self.fetch_locked().await;
        }
        drop(guard);
        self.usable().ok_or_else(|| self.unavailable())
    }

    /// The version held if it is usable (fresh, or stale within the
    /// stale-if-error window), without waiting. Starts a background
    /// refresh when the version is due for one.
    pub fn load_now(&self) -> Option<Arc<CatalogueVersion>> {
        let freshness = &self.inner.freshness;
        let now = freshness.now_ms();
        if !freshness.usable_at(now) {
            return None;
        }
        if freshness.stale_at(now) {
            metrics::catalogue_stale_served();
        }
        self.refresh_if_due(now);
        // Usable at `now`, checked above: one clock read per request.
        self.held()
    }

    /// The version held if it is usable, without side effects.
    pub fn current(&self) -> Option<Arc<CatalogueVersion>> {
        self.usable()
    }

    /// How many fetches have been attempted (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    fn usable(&self) -> Option<Arc<CatalogueVersion>> {
        if !self.inner.freshness.usable() {
            return None;
        }
        self.held()
    }

    /// The version installed last, usable or not.
    fn held(&self) -> Option<Arc<CatalogueVersion>> {
        self.inner.current.read().expect("lock poisoned").clone()
    }

    fn unavailable(&self) -> CatalogueFetchError {
        self.inner
            .last_error
            .lock()
            .expect("lock poisoned")
            .clone()
            .unwrap_or(CatalogueFetchError::NotFetched)
    }

    /// One fetch; the caller holds `refresh`.
    async fn fetch_locked(&self) -> Result<Arc<CatalogueVersion>, CatalogueFetchError> {
        let inner = &self.inner;
        inner.fetches.fetch_add(1, Ordering::Relaxed);
        // The version installed last, usable or not: if the IAM confirms
        // it is current (304), it serves again.
        let held = self.held();
        let etag = held.as_ref().and_then(|v| v.etag.clone());
        let answer = inner.endpoint.fetch(etag.as_deref()).await;
        let result = match answer {
            Ok(CatalogueResponse::NotModified { max_age }) => match &held {
                Some(version) if etag.is_some() => {
                    metrics::catalogue_fetch(CatalogueFetchResult::NotModified);
                    self.mark_fresh(max_age);
                    Ok(version.clone())
                }
                _ => Err(CatalogueFetchError::UnexpectedNotModified),
            },
            Ok(CatalogueResponse::Modified(doc)) => self.accept(doc, held.as_deref()),
            Err(e) => Err(CatalogueFetchError::Fetch(e)),
        };
        match &result {
            Ok(_) => *inner.last_error.lock().expect("lock poisoned") = None,
            Err(e) => self.record_failure(e, held.as_deref()),
        }
        inner.generation.fetch_add(1, Ordering::AcqRel);
        result
    }

    /// Validates `doc` and installs it, unless it is the version held.
    fn accept(
        &self,
        doc: CatalogueDocument,
        held: Option<&CatalogueVersion>,
    ) -> Result<Arc<CatalogueVersion>, CatalogueFetchError> {
        let max = self.inner.config.max_bytes;
        // The HTTP endpoint stops reading at the cap already; this holds
        // the cap for every endpoint.
        if doc.body.len() > max {
            return Err(FetchError::TooLarge(max).into());
        }
        let (number, catalogues) = match held {
            // The same document again (an IAM without ETags): the same
            // version, so what was compiled from it stays valid.
            Some(old) if old.body == doc.body => {
                metrics::catalogue_fetch(CatalogueFetchResult::NotModified);
                (old.number, old.catalogues.clone())
            }
            _ => {
                let catalogues = TenantCatalogues::from_slice(&doc.body)
                    .map_err(|e| CatalogueFetchError::Invalid(Arc::new(e)))?;
                let number = held.map_or(1, |old| old.number + 1);
                metrics::catalogue_fetch(CatalogueFetchResult::Installed);
                tracing::info!(
                    target: "iam_guard::catalogue",
                    number,
                    version = catalogues.version().unwrap_or("-"),
                    etag = doc.etag.as_deref().unwrap_or("-"),
                    tenants = catalogues.tenants().len(),
                    "installed a new catalogue version"
                );
                (number, catalogues)
            }
        };
        let version = Arc::new(CatalogueVersion {
            number,
            etag: doc.etag,
            catalogues,
            body: doc.body,
        });
        // The version first, then the stamps that make it usable: a reader
        // that sees the new stamps also sees the new version.
        *self.inner.current.write().expect("lock poisoned") = Some(version.clone());
        self.mark_fresh(doc.max_age);
        Ok(version)
    }

    /// Restarts the freshness of the current version.
    fn mark_fresh(&self, max_age: Option<Duration>) {
        let inner = &self.inner;
        inner.freshness.renew(&inner.config.windows, max_age);
    }

    fn record_failure(&self, error: &CatalogueFetchError, held: Option<&CatalogueVersion>) {
        let inner = &self.inner;
        let kept = match held {
            Some(version) if self.usable().is_some() => format!("version {}", version.number),
            _ => "none".to_owned(),
        };
        if error.is_refusal() {
            metrics::catalogue_fetch(CatalogueFetchResult::Refused);
            tracing::warn!(
                target: "iam_guard::catalogue",
                error = %error,
                serving = %kept,
                "refused the catalogue the IAM sent; it replaces nothing"
            );
        } else {
            metrics::catalogue_fetch(CatalogueFetchResult::Error);
            tracing::warn!(
                target: "iam_guard::catalogue",
                error = %error,
                serving = %kept,
                "catalogue fetch failed"
            );
        }
        inner.freshness.failed(&inner.config.windows);
        *inner.last_error.lock().expect("lock poisoned") = Some(error.clone());
    }

    /// Starts a background refresh when the version is due at `now` and
    /// none is running. Costs an atomic load when nothing is due.
    fn refresh_if_due(&self, now: u64) {
        let Some(runtime) = self.inner.freshness.claim_refresh(now) else {
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let seen = this.inner.generation.load(Ordering::Acquire);
            {
                let _guard = this.inner.refresh.lock().await;
                // A fetch that finished while we waited did our work.
                if this.inner.generation.load(Ordering::Acquire) == seen {
                    // Errors are logged by the fetch and retried after the
                    // pause; the version in hand keeps serving meanwhile.
                    let _ = this.fetch_locked().await;
                }
            }
            this.inner.freshness.refresh_finished();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::hosted_catalogue::endpoint::CatalogueFetchFuture;
    use bytes::Bytes;
    use std::sync::atomic::AtomicUsize;

    /// An endpoint answering from a script, counting calls and recording
    /// the ETags it was asked with.
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<Vec<Result<CatalogueResponse, FetchError>>>,
        asked_with: Mutex<Vec<Option<String>>>,
        calls: AtomicUsize,
    }

    impl CatalogueEndpoint for Arc<Scripted> {
        fn fetch<'a>(&'a self, etag: Option<&'a str>) -> CatalogueFetchFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.asked_with
                .lock()
                .unwrap()
                .push(etag.map(str::to_owned));
            let next = self.answers.lock().unwrap().remove(0);
            Box::pin(async move { next })
        }
    }

    fn doc(body: &str, etag: Option<&str>) -> Result<CatalogueResponse, FetchError> {
        Ok(CatalogueResponse::Modified(CatalogueDocument {
            body: Bytes::copy_from_slice(body.as_bytes()),
            etag: etag.map(str::to_owned),
            max_age: None,
        }))
    }

    const ONE: &str = r#"{"roles": [{"id": "a", "name": "A"}]}"#;
    const TWO: &str = r#"{"roles": [{"id": "b", "name": "B"}]}"#;

    fn fetcher(
        answers: Vec<Result<CatalogueResponse, FetchError>>,
    ) -> (CatalogueFetcher, Arc<Scripted>) {
        let endpoint = Arc::new(Scripted {
            answers: Mutex::new(answers),
            ..Scripted::default()
        });
        let fetcher = CatalogueFetcher::builder()
            .ttl(Duration::from_secs(3600))
            .retry_after_failure(Duration::ZERO)
            .endpoint(endpoint.clone());
        (fetcher, endpoint)
    }

    #[tokio::test]
    async fn versions_are_numbered_by_content_and_asked_for_with_their_etag() {
        let (fetcher, endpoint) = fetcher(vec![
            doc(ONE, Some("\"e1\"")),
            Ok(CatalogueResponse::NotModified { max_age: None }),
            doc(ONE, Some("\"e2\"")),
            doc(TWO, None),
        ]);
        assert!(fetcher.current().is_none());
        let first = fetcher.warm_up().await.unwrap();
        assert_eq!((first.number(), first.etag()), (1, Some("\"e1\"")));
        let same = fetcher.refresh().await.unwrap();
        assert!(Arc::ptr_eq(&first, &same), "a 304 keeps the version");
        let again = fetcher.refresh().await.unwrap();
        assert_eq!((again.number(), again.etag()), (1, Some("\"e2\"")));
        let second = fetcher.refresh().await.unwrap();
        assert_eq!((second.number(), second.etag()), (2, None));
        assert!(second.catalogues().system().role("b").is_some());
        assert_eq!(
            *endpoint.asked_with.lock().unwrap(),
            [
                None,
                Some("\"e1\"".to_owned()),
                Some("\"e1\"".to_owned()),
                Some("\"e2\"".to_owned())
            ]
        );
        assert_eq!(fetcher.fetch_count(), 4);
    }

    #[tokio::test]
    async fn an_unconditional_304_is_refused() {
        let (fetcher, _) = fetcher(vec![Ok(CatalogueResponse::NotModified { max_age: None })]);
        assert!(matches!(
            fetcher.warm_up().await,
            Err(CatalogueFetchError::UnexpectedNotModified)
        ));
        assert!(fetcher.current().is_none());
    }

    #[tokio::test]
    async fn the_size_cap_holds_for_any_endpoint() {
        let endpoint = Arc::new(Scripted {
            answers: Mutex::new(vec![doc(ONE, None)]),
            ..Scripted::default()
        });
        let fetcher = CatalogueFetcher::builder()
            .max_document_bytes(ONE.len() - 1)
            .endpoint(endpoint);
        assert!(matches!(
            fetcher.warm_up().await,
            Err(CatalogueFetchError::Fetch(FetchError::TooLarge(_)))
        ));
        assert!(fetcher.current().is_none());
    }

    #[tokio::test]
    async fn a_cold_failure_is_answered_from_the_pause_without_fetching() {
        let endpoint = Arc::new(Scripted {
            answers: Mutex::new(vec![Err(FetchError::Connect("refused".into()))]),
            ..Scripted::default()
        });
        let fetcher = CatalogueFetcher::builder()
            .retry_after_failure(Duration::from_secs(3600))
            .endpoint(endpoint.clone());
        let first = fetcher.load().await.unwrap_err();
        assert_eq!(first.to_string(), "the IAM could not be reached: refused");
        for _ in 0..10 {
            assert_eq!(
                fetcher.load().await.unwrap_err().to_string(),
                first.to_string()
            );
        }
        assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
        assert!(fetcher.load_now().is_none());
    }

    #[test]
    fn the_builder_debug_redacts_the_service_token() {
        let builder = CatalogueFetcher::builder();
        #[cfg(feature = "jwks-http")]
        let builder = builder.service_token("s3cret-credential");
        let text = format!("{builder:?}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
