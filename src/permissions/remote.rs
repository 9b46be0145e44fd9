//! [`RemoteSource`]: the IAM's `GET /permissions` (seed 002 §4), cached
//! across requests by (user, tenant).
//!
//! A miss asks the IAM once however many requests of that caller arrive at
//! the same time (moka's single-flight); a hit does no I/O. Failures are
//! never cached: with nothing cached, a caller whose permissions cannot be
//! fetched gets 503 `IAM_UNAVAILABLE`.
//!
//! The request is `GET <url>?userId=<sub>&tenantId=<tenant>` with the
//! service's own credential, if configured, as a bearer token: the
//! caller's token is never forwarded. The answer is seed 002 §4's
//! entity-grouped document, optionally with top-level `permissions` and
//! `modules` arrays.
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
//! source.invalidate("user-1", Some("school-1"));
//! # Ok(()) }
//! ```

use std::{fmt, sync::Arc, time::Duration};

use bytes::BytesMut;
use moka::future::Cache;

use super::source::{PermissionError, PermissionFuture, PermissionSource};
use crate::{model::CompiledPermissions, principal::Principal};

/// Default lifetime of a cached permission set (seed 002 §8).
pub const DEFAULT_PERMISSIONS_TTL: Duration = Duration::from_secs(5 * 60);
/// Default bound of the permission cache.
pub const DEFAULT_PERMISSIONS_ENTRIES: u64 = 10_000;

type Key = (Box<str>, Option<Box<str>>);

/// Builds a [`RemoteSource`].
#[derive(Debug, Clone)]
pub struct RemoteSourceBuilder {
    url: String,
    ttl: Duration,
    max_entries: u64,
    timeout: Duration,
    max_bytes: usize,
    service_token: Option<String>,
}

impl RemoteSourceBuilder {
    /// How long a permission set is reused (default 5 min).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Bound of the cache in entries (default 10,000).
    pub fn max_entries(mut self, max: u64) -> Self {
        self.max_entries = max;
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
            .ok_or_else(|| PermissionError::Invalid(format!("{:?} is not an http(s) URL", self.url)))?;
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PermissionError::Unavailable(e.to_string()))?;
        let cache = Cache::builder()
            .name("iam_guard.permissions")
            .time_to_live(self.ttl)
            .max_capacity(self.max_entries)
            .build();
        Ok(RemoteSource {
            inner: Arc::new(Inner {
                url,
                client,
                cache,
                service_token: self.service_token,
                max_bytes: self.max_bytes,
                fetches: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }
}

/// The IAM's permissions endpoint, cached. Cheap to clone; clones share
/// the cache. See the [module docs](self).
#[derive(Clone)]
pub struct RemoteSource {
    inner: Arc<Inner>,
}

struct Inner {
    url: reqwest::Url,
    client: reqwest::Client,
    cache: Cache<Key, Arc<CompiledPermissions>>,
    service_token: Option<String>,
    max_bytes: usize,
    fetches: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for RemoteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSource")
            .field("url", &self.inner.url.as_str())
            .field("cached", &self.inner.cache.entry_count())
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
            timeout: Duration::from_secs(5),
            max_bytes: 1024 * 1024,
            service_token: None,
        }
    }

    /// Drops the cached permissions of `user` in `tenant`: the next request
    /// asks the IAM.
    pub async fn invalidate(&self, user: &str, tenant: Option<&str>) {
        let key: Key = (user.into(), tenant.map(Into::into));
        self.inner.cache.invalidate(&key).await;
    }

    /// Drops every cached permission set.
    pub fn invalidate_all(&self) {
        self.inner.cache.invalidate_all();
    }

    /// Requests made to the IAM so far (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn fetch(&self, user: &str, tenant: Option<&str>) -> Result<CompiledPermissions, PermissionError> {
        let inner = &self.inner;
        inner.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut url = inner.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("userId", user);
            if let Some(t) = tenant {
                q.append_pair("tenantId", t);
            }
        }
        let mut req = inner.client.get(url).header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &inner.service_token {
            req = req.bearer_auth(token);
        }
        let unavailable = |e: reqwest::Error| PermissionError::Unavailable(e.to_string());
        let mut res = req.send().await.map_err(unavailable)?;
        if !res.status().is_success() {
            return Err(PermissionError::Unavailable(format!("the IAM answered {}", res.status())));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = res.chunk().await.map_err(unavailable)? {
            if body.len() + chunk.len() > inner.max_bytes {
                return Err(PermissionError::Invalid("the permission document is too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| PermissionError::Invalid(e.to_string()))?;
        CompiledPermissions::from_frontend_json(&doc).map_err(|e| PermissionError::Invalid(e.to_string()))
    }
}

impl PermissionSource for RemoteSource {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        Box::pin(async move {
            let user = principal.user_id();
            let tenant = principal.tenant_id();
            let key: Key = (user.into(), tenant.map(Into::into));
            self.inner
                .cache
                .try_get_with(key, async {
                    self.fetch(user, tenant).await.map(Arc::new)
                })
                .await
                .map_err(|e| (*e).clone())
        })
    }
}
