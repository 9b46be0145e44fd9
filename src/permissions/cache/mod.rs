//! [`CachedSource`]: any [`PermissionSource`] behind a cache keyed by
//! issuer, tenant and user — one level per replica (moka) and, with the
//! `redis` feature, a level the replicas share.
//!
//! A request looks in this replica's cache first, then (when shared) in
//! Redis, and only then asks the source; every concurrent miss of one
//! caller on one replica waits for a single load. An entry lives for the
//! TTL (default 5 min) or until its permissions stop being valid
//! ([`CompiledPermissions::valid_until`]: a temporal role assignment ends
//! or begins), whichever comes first, at every level.
//! [`RemoteSource`](super::remote::RemoteSource) caches the same way.
//!
//! Invalidate a caller with [`CachedSource::invalidate`] on this replica,
//! or through `RedisReplicas` on every replica at once.
//!
//! The cache answers for a *caller*, so it fits a source whose answer
//! depends on who the caller is — an IAM's `GET /permissions`, LDAP, a
//! database — and changes when that source's data changes (then
//! invalidate). A source computed from the token itself
//! ([`ClaimsSource`](super::source::ClaimsSource),
//! [`CatalogueSource`](super::source::CatalogueSource)) needs no
//! cross-request cache, and must not have one: a new token carrying other
//! roles would be answered with the permissions of the old one until the
//! TTL.
//!
//! ```
//! # async fn run() {
//! use std::{sync::Arc, time::Duration};
//! use iam_guard::{
//!     permissions::{cache::CachedSource, source::{PermissionError, PermissionFuture}},
//!     CompiledPermissions, PermissionSource, Principal,
//! };
//!
//! /// Permissions kept in the service's own directory.
//! struct Directory;
//!
//! impl PermissionSource for Directory {
//!     fn load<'a>(&'a self, who: &'a Principal) -> PermissionFuture<'a> {
//!         Box::pin(async move {
//!             let mut perms = CompiledPermissions::deny_all();
//!             if who.user_id() == "user-1" {
//!                 perms.grant_permission("reports.export");
//!             }
//!             Ok::<_, PermissionError>(Arc::new(perms))
//!         })
//!     }
//! }
//!
//! let source = CachedSource::builder(Directory)
//!     .ttl(Duration::from_secs(120))
//!     .build();
//! // After user-1's grants changed in the directory:
//! source.invalidate("user-1", Some("school-1")).await;
//! # }
//! ```

pub(crate) mod local;

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use self::local::{CacheKey, LocalCache, Served};
use super::source::{PermissionError, PermissionFuture, PermissionSource};
use crate::{
    metrics::{self, Builtin, CacheLevel},
    model::CompiledPermissions,
    principal::Principal,
};

/// Default lifetime of a cached permission set.
pub const DEFAULT_PERMISSIONS_TTL: Duration = Duration::from_secs(5 * 60);
/// Default bound of a permission cache, in entries.
pub const DEFAULT_PERMISSIONS_ENTRIES: u64 = 10_000;
/// Default bound of a permission cache, in bytes (64 MiB): 10,000 callers
/// with up to 6.5 KiB of compiled permissions each (a few dozen scope
/// groups), fewer callers when their permissions are larger.
pub const DEFAULT_PERMISSIONS_BYTES: u64 = 64 << 20;

/// Builds a [`CachedSource`].
pub struct CachedSourceBuilder<S> {
    source: S,
    ttl: Duration,
    max_entries: u64,
    max_bytes: u64,
    name: &'static str,
    label: Builtin,
    #[cfg(feature = "redis")]
    replicas: Option<crate::replicas::RedisReplicas>,
}

impl<S> fmt::Debug for CachedSourceBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedSourceBuilder")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl<S: PermissionSource> CachedSourceBuilder<S> {
    /// How long a permission set is reused (default 5 min), at every level.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Bound of this replica's cache in entries (default
    /// [`DEFAULT_PERMISSIONS_ENTRIES`], 10,000), beside its bound in bytes:
    /// whichever is reached first binds.
    pub fn max_entries(mut self, max: u64) -> Self {
        self.max_entries = max;
        self
    }

    /// Bound of this replica's cache in bytes (default
    /// [`DEFAULT_PERMISSIONS_BYTES`], 64 MiB). An entry weighs its key
    /// (issuer, tenant, user), an estimate of its compiled permissions'
    /// heap (every entity, scope group, action and permission name) and
    /// moka's bookkeeping; at least `bytes / max_entries`, so that the
    /// entry bound holds too.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The moka cache's name and the metrics label of a source of the
    /// crate's own that caches this way.
    #[cfg_attr(not(feature = "jwks-http"), allow(dead_code))]
    pub(crate) fn named(mut self, name: &'static str, label: Builtin) -> Self {
        self.name = name;
        self.label = label;
        self
    }

    /// Shares the cache with every replica connected to the same Redis,
    /// and lets their invalidations reach this replica's level.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn shared(mut self, replicas: &crate::replicas::RedisReplicas) -> Self {
        self.replicas = Some(replicas.clone());
        self
    }

    /// Builds the source.
    pub fn build(self) -> CachedSource<S> {
        let local = Arc::new(LocalCache::new(
            self.name,
            self.ttl,
            self.max_entries,
            self.max_bytes,
        ));
        #[cfg(feature = "redis")]
        let shared = self.replicas.map(|replicas| {
            replicas.register(&local);
            crate::replicas::SharedLevel::new(replicas, self.ttl)
        });
        CachedSource {
            inner: Arc::new(Inner {
                source: self.source,
                local,
                #[cfg(feature = "redis")]
                shared,
                loads: AtomicU64::new(0),
                label: self.label,
            }),
        }
    }
}

/// A permission source behind a cache. Cheap to clone; clones share the
/// cache. See the [module docs](self).
pub struct CachedSource<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for CachedSource<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<S> {
    source: S,
    local: Arc<LocalCache>,
    #[cfg(feature = "redis")]
    shared: Option<crate::replicas::SharedLevel>,
    loads: AtomicU64,
    label: Builtin,
}

impl<S> fmt::Debug for CachedSource<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("CachedSource");
        d.field("cached", &self.inner.local.entry_count());
        #[cfg(feature = "redis")]
        d.field("shared", &self.inner.shared.is_some());
        d.finish_non_exhaustive()
    }
}

impl<S: PermissionSource> CachedSource<S> {
    /// `source` behind this replica's cache with the defaults.
    pub fn new(source: S) -> Self {
        Self::builder(source).build()
    }

    /// A builder for `source` behind a cache.
    pub fn builder(source: S) -> CachedSourceBuilder<S> {
        CachedSourceBuilder {
            source,
            ttl: DEFAULT_PERMISSIONS_TTL,
            max_entries: DEFAULT_PERMISSIONS_ENTRIES,
            max_bytes: DEFAULT_PERMISSIONS_BYTES,
            name: "iam_guard.cached_permissions",
            label: Builtin::Cached,
            #[cfg(feature = "redis")]
            replicas: None,
        }
    }

    /// The wrapped source.
    pub fn source(&self) -> &S {
        &self.inner.source
    }

    /// How many times the wrapped source was asked.
    pub fn source_loads(&self) -> u64 {
        self.inner.loads.load(Ordering::Relaxed)
    }

    /// Drops this replica's cached permissions of `user` in `tenant` (under
    /// every issuer), including loads under way. The shared level and the
    /// other replicas are reached through `RedisReplicas::invalidate`.
    pub async fn invalidate(&self, user: &str, tenant: Option<&str>) {
        self.inner.local.invalidate(None, user, tenant).await;
    }

    /// Drops every permission set this replica caches.
    pub fn invalidate_all(&self) {
        self.inner.local.invalidate_all();
    }

    async fn load_through(
        &self,
        principal: &Principal,
    ) -> Result<Arc<CompiledPermissions>, PermissionError> {
        let inner = &*self.inner;
        #[cfg(feature = "redis")]
        if let Some(shared) = &inner.shared {
            shared.ensure_trusted()?;
        }
        let key = CacheKey::of(principal);
        let shared_hit = std::sync::atomic::AtomicBool::new(false);
        let (perms, served) = inner
            .local
            .get_with(&key, || async {
                #[cfg(feature = "redis")]
                if let Some(shared) = &inner.shared {
                    return shared
                        .get_or_load(
                            &key,
                            || {
                                inner.loads.fetch_add(1, Ordering::Relaxed);
                                inner.source.load(principal)
                            },
                            &shared_hit,
                        )
                        .await;
                }
                inner.loads.fetch_add(1, Ordering::Relaxed);
                inner.source.load(principal).await
            })
            .await?;
        let level = match served {
            Served::Local => CacheLevel::Local,
            Served::Fetched if shared_hit.load(Ordering::Relaxed) => CacheLevel::Shared,
            Served::Fetched => CacheLevel::Source,
        };
        metrics::builtin_load(inner.label, level);
        Ok(perms)
    }
}

impl<S: PermissionSource> PermissionSource for CachedSource<S> {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        Box::pin(self.load_through(principal))
    }

    /// What the wrapped source answers, uncached: what a caller holds in
    /// one department is computed from the token.
    fn in_department(
        &self,
        principal: &Principal,
        department: &str,
    ) -> Option<Arc<CompiledPermissions>> {
        self.inner.source.in_department(principal, department)
    }
}
