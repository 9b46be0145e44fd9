//! [`RemoteSource`]: the IAM's `GET /permissions`, cached across requests
//! by (user, tenant).
//!
//! A miss asks the IAM once however many requests of that caller arrive at
//! the same time (moka's single-flight); a hit does no I/O. Failures are
//! never cached: with nothing cached, a caller whose permissions cannot be
//! fetched gets 503 `IAM_UNAVAILABLE`. Entries are keyed by issuer, user
//! and tenant, and never outlive the answer's `validUntil` (see
//! [`permissions_document`](crate::model::permissions_document)). With the
//! `redis` feature, [`shared`](RemoteSourceBuilder::shared) puts a cache
//! the replicas share between this replica's and the IAM.
//!
//! [`invalidate`](RemoteSource::invalidate) and
//! [`invalidate_all`](RemoteSource::invalidate_all) also cover fetches in
//! flight: an answer the IAM gave before the invalidation is never cached
//! past it, so a revoked role stops working at the next request rather than
//! at the end of the TTL.
//!
//! [`invalidate`](RemoteSource::invalidate) reaches this replica; every
//! replica is reached through `RedisReplicas::invalidate`.
//!
//! The request is `GET <url>?userId=<sub>&tenantId=<tenant>` with the
//! service's own credential, if configured, as a bearer token: the
//! caller's token is never forwarded. The answer is the entity-grouped
//! permissions document (`{"students": {"scopes": {...}, "actions":
//! {...}}}`), optionally with top-level `permissions` and `modules` arrays.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use iam_guard::permissions::remote::RemoteSource;
//!
//! let source = RemoteSource::builder("https://iam.example.com/api/v1/permissions")
//!     .ttl(Duration::from_secs(300))
//!     .service_token("s3rvice-credential")
//!     .build()?;
//! // After an admin changes a role:
//! source.invalidate("user-1", Some("school-1")).await;
//! # Ok(()) }
//! ```

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::BytesMut;

pub use super::cache::{
    DEFAULT_PERMISSIONS_BYTES, DEFAULT_PERMISSIONS_ENTRIES, DEFAULT_PERMISSIONS_TTL,
};
use super::{
    cache::CachedSource,
    source::{PermissionError, PermissionFuture, PermissionSource},
};
use crate::{metrics::Builtin, model::CompiledPermissions, principal::Principal};

/// Builds a [`RemoteSource`].
#[derive(Debug, Clone)]
pub struct RemoteSourceBuilder {
    url: String,
    ttl: Duration,
    max_entries: u64,
    max_cache_bytes: u64,
    timeout: Duration,
    max_bytes: usize,
    service_token: Option<String>,
    #[cfg(feature = "redis")]
    replicas: Option<crate::replicas::RedisReplicas>,
}

impl RemoteSourceBuilder {
    /// How long a permission set is reused (default 5 min).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Bound of the cache in entries (default 10,000), beside its bound
    /// in bytes: whichever is reached first binds.
    pub fn max_entries(mut self, max: u64) -> Self {
        self.max_entries = max;
        self
    }

    /// Bound of the cache in bytes (default 64 MiB); see
    /// [`CachedSourceBuilder::max_bytes`](super::cache::CachedSourceBuilder::max_bytes)
    /// for how an entry is weighed.
    pub fn max_cache_bytes(mut self, bytes: u64) -> Self {
        self.max_cache_bytes = bytes;
        self
    }

    /// HTTP timeout (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The service's credential, sent as `Authorization: Bearer`.
    pub fn service_token(mut self, token: impl Into<String>) -> Self {
        self.service_token = Some(token.into());
        self
    }

    /// Shares the cache with every replica connected to the same Redis
    /// (between this replica's cache and the IAM), and lets their
    /// invalidations reach this replica's cache.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn shared(mut self, replicas: &crate::replicas::RedisReplicas) -> Self {
        self.replicas = Some(replicas.clone());
        self
    }

    /// Builds the source.
    ///
    /// # Errors
    ///
    /// When the URL is not an absolute http(s) URL or the HTTP client
    /// cannot be built.
    pub fn build(self) -> Result<RemoteSource, PermissionError> {
        let url = reqwest::Url::parse(&self.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                PermissionError::Invalid(format!("{:?} is not an http(s) URL", self.url))
            })?;
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PermissionError::Unavailable(e.to_string()))?;
        let endpoint = Endpoint {
            url,
            client,
            service_token: self.service_token,
            max_bytes: self.max_bytes,
            fetches: AtomicU64::new(0),
        };
        let cached = CachedSource::builder(endpoint)
            .ttl(self.ttl)
            .max_entries(self.max_entries)
            .max_bytes(self.max_cache_bytes)
            .named("iam_guard.permissions", Builtin::Remote);
        #[cfg(feature = "redis")]
        let cached = match &self.replicas {
            Some(replicas) => cached.shared(replicas),
            None => cached,
        };
        Ok(RemoteSource {
            cached: cached.build(),
        })
    }
}

/// The IAM's permissions endpoint, cached. Cheap to clone; clones share
/// the cache. See the [module docs](self).
#[derive(Clone)]
pub struct RemoteSource {
    cached: CachedSource<Endpoint>,
}

/// The endpoint itself, uncached.
struct Endpoint {
    url: reqwest::Url,
    client: reqwest::Client,
    service_token: Option<String>,
    max_bytes: usize,
    fetches: AtomicU64,
}

impl fmt::Debug for RemoteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSource")
            .field("url", &self.cached.source().url.as_str())
            .field("cache", &self.cached)
            .finish_non_exhaustive()
    }
}

impl RemoteSource {
    /// A builder for the endpoint at `url`.
    pub fn builder(url: impl Into<String>) -> RemoteSourceBuilder {
        RemoteSourceBuilder {
            url: url.into(),
            ttl: DEFAULT_PERMISSIONS_TTL,
            max_entries: DEFAULT_PERMISSIONS_ENTRIES,
            max_cache_bytes: DEFAULT_PERMISSIONS_BYTES,
            timeout: Duration::from_secs(5),
            max_bytes: 1024 * 1024,
            service_token: None,
            #[cfg(feature = "redis")]
            replicas: None,
        }
    }

    /// Drops this replica's cached permissions of `user` in `tenant`
    /// (under every issuer): the next request asks again, even if a fetch
    /// for that caller was already under way.
    pub async fn invalidate(&self, user: &str, tenant: Option<&str>) {
        self.cached.invalidate(user, tenant).await;
    }

    /// Drops every cached permission set, including answers still being
    /// fetched.
    pub fn invalidate_all(&self) {
        self.cached.invalidate_all();
    }

    /// Requests made to the IAM so far (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.cached.source().fetches.load(Ordering::Relaxed)
    }
}

impl Endpoint {
    async fn fetch(
        &self,
        user: &str,
        tenant: Option<&str>,
    ) -> Result<Arc<CompiledPermissions>, PermissionError> {
        let inner = self;
        inner.fetches.fetch_add(1, Ordering::Relaxed);
        let mut url = inner.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("userId", user);
            if let Some(t) = tenant {
                q.append_pair("tenantId", t);
            }
        }
        let mut req = inner
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &inner.service_token {
            req = req.bearer_auth(token);
        }
        let unavailable = |e: reqwest::Error| PermissionError::Unavailable(e.to_string());
        let mut res = req.send().await.map_err(unavailable)?;
        if !res.status().is_success() {
            return Err(PermissionError::Unavailable(format!(
                "the IAM answered {}",
                res.status()
            )));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = res.chunk().await.map_err(unavailable)? {
            if body.len() + chunk.len() > inner.max_bytes {
                return Err(PermissionError::Invalid(
                    "the permission document is too large".into(),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| PermissionError::Invalid(e.to_string()))?;
        CompiledPermissions::from_document(&doc)
            .map(Arc::new)
            .map_err(|e| PermissionError::Invalid(e.to_string()))
    }
}

impl PermissionSource for Endpoint {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        Box::pin(self.fetch(principal.user_id(), principal.tenant_id()))
    }
}

impl PermissionSource for RemoteSource {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        self.cached.load(principal)
    }
}
