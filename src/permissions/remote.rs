//! [`RemoteSource`]: the IAM's `GET /permissions`, cached across requests
//! by (user, tenant).
//!
//! A miss asks the IAM once however many requests of that caller arrive at
//! the same time (moka's single-flight); a hit does no I/O. Failures are
//! never cached: with nothing cached, a caller whose permissions cannot be
//! fetched gets 503 `IAM_UNAVAILABLE`.
//!
//! [`invalidate`](RemoteSource::invalidate) and
//! [`invalidate_all`](RemoteSource::invalidate_all) also cover fetches in
//! flight: an answer the IAM gave before the invalidation is never cached
//! past it, so a revoked role stops working at the next request rather than
//! at the end of the TTL.
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
use moka::{future::Cache, ops::compute::Op};

use super::source::{PermissionError, PermissionFuture, PermissionSource};
use crate::{
    metrics::{self, Builtin, CacheLevel},
    model::CompiledPermissions,
    principal::Principal,
};

/// Default lifetime of a cached permission set.
pub const DEFAULT_PERMISSIONS_TTL: Duration = Duration::from_secs(5 * 60);
/// Default bound of the permission cache.
pub const DEFAULT_PERMISSIONS_ENTRIES: u64 = 10_000;

type Key = (Box<str>, Option<Box<str>>);

/// A cached answer and the invalidation epoch its fetch started in.
struct Cached {
    epoch: u64,
    perms: Arc<CompiledPermissions>,
}

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
            .ok_or_else(|| {
                PermissionError::Invalid(format!("{:?} is not an http(s) URL", self.url))
            })?;
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
        // A marker only matters while an answer fetched before it could
        // still be cached, that is for one TTL.
        let invalidated = Cache::builder()
            .name("iam_guard.permissions.invalidated")
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
                fetches: AtomicU64::new(0),
                epoch: AtomicU64::new(0),
                all_invalidated: AtomicU64::new(0),
                invalidated,
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
    cache: Cache<Key, Arc<Cached>>,
    service_token: Option<String>,
    max_bytes: usize,
    fetches: AtomicU64,
    /// Bumped by every invalidation. moka does not stop a `try_get_with`
    /// already running when its key is invalidated, so each fetch records
    /// the epoch it started in, and an answer older than its key's last
    /// invalidation is evicted instead of served from the cache.
    epoch: AtomicU64,
    /// The epoch of the last `invalidate_all`.
    all_invalidated: AtomicU64,
    /// The epoch of each key's last `invalidate`.
    invalidated: Cache<Key, u64>,
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
    /// asks the IAM, even if a fetch for that caller was already under way.
    pub async fn invalidate(&self, user: &str, tenant: Option<&str>) {
        let key: Key = (user.into(), tenant.map(Into::into));
        // Mark first, then drop: an answer whose fetch began before this
        // call is recognised by the mark whenever it reaches the cache,
        // before the drop or after it.
        let at = self.inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.invalidated.insert(key.clone(), at).await;
        self.inner.cache.invalidate(&key).await;
    }

    /// Drops every cached permission set, including answers still being
    /// fetched.
    pub fn invalidate_all(&self) {
        let at = self.inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.all_invalidated.fetch_max(at, Ordering::SeqCst);
        self.inner.cache.invalidate_all();
    }

    /// Requests made to the IAM so far (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The cached answer for `key`, fetching it on a miss (once for every
    /// concurrent miss of the key).
    async fn cached(
        &self,
        key: &Key,
        user: &str,
        tenant: Option<&str>,
    ) -> Result<Arc<Cached>, PermissionError> {
        let mut fetched = false;
        let cached = self
            .inner
            .cache
            .try_get_with(key.clone(), async {
                fetched = true;
                let epoch = self.inner.epoch.load(Ordering::SeqCst);
                let perms = self.fetch(user, tenant).await?;
                Ok(Arc::new(Cached {
                    epoch,
                    perms: Arc::new(perms),
                }))
            })
            .await
            .map_err(|e: Arc<PermissionError>| (*e).clone())?;
        // A request that waited for another's fetch got a fresh answer too,
        // but asked the IAM nothing: it counts as served locally.
        let level = if fetched {
            CacheLevel::Source
        } else {
            CacheLevel::Local
        };
        metrics::builtin_load(Builtin::Remote, level);
        Ok(cached)
    }

    /// Whether `key` was invalidated after a fetch that started in `epoch`.
    async fn invalidated_since(&self, key: &Key, epoch: u64) -> bool {
        // The common case costs one atomic load: nothing was invalidated
        // anywhere since the fetch began.
        if self.inner.epoch.load(Ordering::SeqCst) == epoch {
            return false;
        }
        self.inner.all_invalidated.load(Ordering::SeqCst) > epoch
            || self
                .inner
                .invalidated
                .get(key)
                .await
                .is_some_and(|at| at > epoch)
    }

    /// Evicts `stale` if it is still the entry of `key`, leaving a fresher
    /// answer that a concurrent request may have cached alone.
    async fn evict(&self, key: &Key, stale: &Arc<Cached>) {
        self.inner
            .cache
            .entry(key.clone())
            .and_compute_with(|current| {
                let op = match current {
                    Some(entry) if Arc::ptr_eq(entry.value(), stale) => Op::Remove,
                    _ => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
    }

    async fn fetch(
        &self,
        user: &str,
        tenant: Option<&str>,
    ) -> Result<CompiledPermissions, PermissionError> {
        let inner = &self.inner;
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
            .map_err(|e| PermissionError::Invalid(e.to_string()))
    }
}

impl PermissionSource for RemoteSource {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        Box::pin(async move {
            let user = principal.user_id();
            let tenant = principal.tenant_id();
            let key: Key = (user.into(), tenant.map(Into::into));
            let cached = self.cached(&key, user, tenant).await?;
            if !self.invalidated_since(&key, cached.epoch).await {
                return Ok(cached.perms.clone());
            }
            // The answer predates an invalidation of this caller: drop it
            // and ask again. The second answer was fetched after this
            // request arrived, so it is served even if yet another
            // invalidation overtook it; it just is not kept.
            self.evict(&key, &cached).await;
            let fresh = self.cached(&key, user, tenant).await?;
            if self.invalidated_since(&key, fresh.epoch).await {
                self.evict(&key, &fresh).await;
            }
            Ok(fresh.perms.clone())
        })
    }
}
