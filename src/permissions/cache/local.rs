//! The per-replica level of a permission cache: moka, keyed by issuer,
//! user and tenant, with single-flight on a miss and invalidations that
//! also cover fetches in flight.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, PoisonError, RwLock,
    },
    time::{Duration, Instant},
};

use moka::{future::Cache, ops::compute::Op, Expiry};

use crate::{
    cache_bound::{alloc_bytes, Bound},
    jwt::verify::unix_now,
    model::CompiledPermissions,
    permissions::source::PermissionError,
    principal::Principal,
};

/// Who a cached permission set belongs to. One issuer's or tenant's entry
/// never answers another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheKey<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) tenant: Option<&'a str>,
    pub(crate) user: &'a str,
}

impl<'a> CacheKey<'a> {
    pub(crate) fn of(principal: &'a Principal) -> Self {
        Self {
            issuer: principal.issuer(),
            tenant: principal.tenant_id(),
            user: principal.user_id(),
        }
    }

    /// The moka key: one string, so that a hit is looked up by reference
    /// and costs one allocation. Each part but the last carries its length,
    /// so no two callers share a key whatever their ids contain.
    fn entry(&self) -> Box<str> {
        let mut key = String::with_capacity(self.issuer.len() + self.user.len() + 32);
        push_part(&mut key, self.issuer);
        self.push_caller(&mut key);
        key.into_boxed_str()
    }

    /// The invalidation marker's key: tenant and user, for every issuer.
    fn marker(&self) -> Box<str> {
        let mut key = String::with_capacity(self.user.len() + 16);
        self.push_caller(&mut key);
        key.into_boxed_str()
    }

    fn push_caller(&self, key: &mut String) {
        match self.tenant {
            Some(tenant) => push_part(key, tenant),
            None => key.push('-'),
        }
        key.push_str(self.user);
    }
}

fn push_part(key: &mut String, part: &str) {
    use std::fmt::Write;
    let _ = write!(key, "{}:", part.len());
    key.push_str(part);
}

/// A cached answer and the invalidation epoch its fetch started in.
pub(crate) struct Cached {
    epoch: u64,
    pub(crate) perms: Arc<CompiledPermissions>,
}

/// Expires an entry at the end of its TTL or at its permissions'
/// `valid_until`, whichever comes first.
struct UntilValid {
    ttl: Duration,
}

impl Expiry<Box<str>, Arc<Cached>> for UntilValid {
    fn expire_after_create(
        &self,
        _key: &Box<str>,
        cached: &Arc<Cached>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = cached
            .perms
            .valid_until()
            .map(|until| Duration::from_secs(until.saturating_sub(unix_now())));
        Some(left.map_or(self.ttl, |left| left.min(self.ttl)))
    }
}

/// Whether `perms` may still be served; the clock is read only for
/// permissions with an end.
fn still_valid(perms: &CompiledPermissions) -> bool {
    perms.valid_until().is_none_or(|until| unix_now() < until)
}

/// Whether an answer came from this level or from the level below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    /// From the cache, or from a fetch another request started.
    Local,
    /// This request ran the fetch.
    Fetched,
}

/// The per-replica cache level.
pub(crate) struct LocalCache {
    cache: Cache<Box<str>, Arc<Cached>>,
    /// Bumped by every invalidation. moka does not stop a `try_get_with`
    /// already running when its key is invalidated, so each fetch records
    /// the epoch it started in, and an answer older than its key's last
    /// invalidation is evicted instead of served from the cache.
    epoch: AtomicU64,
    /// The epoch of the last `invalidate_all`.
    all_invalidated: AtomicU64,
    /// The epoch of each (tenant, user)'s last invalidation, under any
    /// issuer: [`invalidate`](LocalCache::invalidate) may name none.
    invalidated: Cache<Box<str>, u64>,
    /// Every issuer an entry was stored for, so that invalidating a user
    /// reaches their entries under each (a handful of issuers at most).
    issuers: RwLock<Vec<Arc<str>>>,
}

impl LocalCache {
    /// At most `max_entries` entries and `max_bytes` estimated bytes,
    /// whichever binds first.
    pub(crate) fn new(name: &'static str, ttl: Duration, max_entries: u64, max_bytes: u64) -> Self {
        let bound = Bound::new(max_entries, max_bytes);
        Self {
            cache: Cache::builder()
                .name(name)
                .max_capacity(bound.capacity())
                .weigher(bound.weigher::<Box<str>, Arc<Cached>, _>(|key, cached| {
                    // The permissions may be shared with requests in
                    // flight, but the entry is what keeps them alive.
                    alloc_bytes(key.len())
                        + alloc_bytes(std::mem::size_of::<Cached>() + 16)
                        + alloc_bytes(cached.perms.heap_bytes() + 16)
                }))
                .expire_after(UntilValid { ttl })
                .build(),
            epoch: AtomicU64::new(0),
            all_invalidated: AtomicU64::new(0),
            // A marker only matters while an answer fetched before it
            // could still be cached, that is for one TTL.
            invalidated: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(bound.capacity())
                .weigher(bound.weigher::<Box<str>, u64, _>(|key, _| alloc_bytes(key.len())))
                .build(),
            issuers: RwLock::new(Vec::new()),
        }
    }

    /// Entries held (after pending maintenance).
    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// The permissions for `key`, fetched with `fetch` on a miss (once for
    /// every concurrent miss of the key). An answer that an invalidation
    /// overtook is fetched again; one whose validity has ended is never
    /// served from the cache.
    pub(crate) async fn get_with<F, Fut>(
        &self,
        caller: &CacheKey<'_>,
        fetch: F,
    ) -> Result<(Arc<CompiledPermissions>, Served), PermissionError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Arc<CompiledPermissions>, PermissionError>>,
    {
        let key = caller.entry();
        let hit = match self.cache.get(&key).await {
            Some(cached) => (cached, Served::Local),
            None => self.cached(&key, caller, &fetch).await?,
        };
        let (cached, served) = hit;
        if !self.invalidated_since(caller, cached.epoch).await && still_valid(&cached.perms) {
            return Ok((cached.perms.clone(), served));
        }
        // The answer predates an invalidation of this caller (or its
        // validity ended): drop it and ask again. The second answer was
        // fetched after this request arrived, so it is served even if yet
        // another invalidation overtook it; it just is not kept.
        self.evict(&key, &cached).await;
        let (fresh, served) = self.cached(&key, caller, &fetch).await?;
        if self.invalidated_since(caller, fresh.epoch).await || !still_valid(&fresh.perms) {
            self.evict(&key, &fresh).await;
        }
        Ok((fresh.perms.clone(), served))
    }

    async fn cached<F, Fut>(
        &self,
        key: &str,
        caller: &CacheKey<'_>,
        fetch: &F,
    ) -> Result<(Arc<Cached>, Served), PermissionError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Arc<CompiledPermissions>, PermissionError>>,
    {
        let mut fetched = false;
        let cached = self
            .cache
            .try_get_with(Box::from(key), async {
                fetched = true;
                let epoch = self.epoch.load(Ordering::SeqCst);
                let perms = fetch().await?;
                self.remember_issuer(caller.issuer);
                Ok(Arc::new(Cached { epoch, perms }))
            })
            .await
            .map_err(|e: Arc<PermissionError>| (*e).clone())?;
        // A request that waited for another's fetch got a fresh answer
        // too, but fetched nothing: it counts as served locally.
        let served = if fetched {
            Served::Fetched
        } else {
            Served::Local
        };
        Ok((cached, served))
    }

    fn remember_issuer(&self, issuer: &str) {
        let known = self
            .issuers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|i| **i == *issuer);
        if !known {
            let mut issuers = self.issuers.write().unwrap_or_else(PoisonError::into_inner);
            if !issuers.iter().any(|i| **i == *issuer) {
                issuers.push(issuer.into());
            }
        }
    }

    /// Whether `key` was invalidated after a fetch that started in `epoch`.
    pub(crate) async fn invalidated_since(&self, caller: &CacheKey<'_>, epoch: u64) -> bool {
        // The common case costs one atomic load: nothing was invalidated
        // anywhere since the fetch began.
        if self.epoch.load(Ordering::SeqCst) == epoch {
            return false;
        }
        self.all_invalidated.load(Ordering::SeqCst) > epoch
            || self
                .invalidated
                .get(&caller.marker())
                .await
                .is_some_and(|at| at > epoch)
    }

    /// Evicts `stale` if it is still the entry of `key`, leaving a fresher
    /// answer that a concurrent request may have cached alone.
    async fn evict(&self, key: &str, stale: &Arc<Cached>) {
        self.cache
            .entry(Box::from(key))
            .and_compute_with(|current| {
                let op = match current {
                    Some(entry) if Arc::ptr_eq(entry.value(), stale) => Op::Remove,
                    _ => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
    }

    /// Drops the entries of `user` in `tenant` under `issuer` (under every
    /// issuer for `None`), including answers still being fetched.
    pub(crate) async fn invalidate(&self, issuer: Option<&str>, user: &str, tenant: Option<&str>) {
        let caller = CacheKey {
            issuer: "",
            tenant,
            user,
        };
        // Mark first, then drop: an answer whose fetch began before this
        // call is recognised by the mark whenever it reaches the cache,
        // before the drop or after it.
        let at = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.invalidated.insert(caller.marker(), at).await;
        let issuers: Vec<Arc<str>> = match issuer {
            Some(issuer) => vec![issuer.into()],
            None => self
                .issuers
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        };
        for issuer in issuers {
            let key = CacheKey {
                issuer: &issuer,
                ..caller
            };
            self.cache.invalidate(&*key.entry()).await;
        }
    }

    /// Drops every entry, including answers still being fetched.
    pub(crate) fn invalidate_all(&self) {
        let at = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.all_invalidated.fetch_max(at, Ordering::SeqCst);
        self.cache.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::ClaimMapping;
    use serde_json::json;

    fn key<'a>(issuer: &'a str, user: &'a str, tenant: Option<&'a str>) -> CacheKey<'a> {
        CacheKey {
            issuer,
            user,
            tenant,
        }
    }

    fn perms(permission: &str) -> Arc<CompiledPermissions> {
        let mut p = CompiledPermissions::deny_all();
        p.grant_permission(permission);
        Arc::new(p)
    }

    #[tokio::test]
    async fn issuers_and_tenants_never_share_an_entry() {
        let cache = LocalCache::new("test", Duration::from_secs(60), 100, 1 << 20);
        let a = key("https://a", "u", Some("t"));
        let b = key("https://b", "u", Some("t"));
        let c = key("https://a", "u", Some("t2"));
        for (k, p) in [(&a, "a"), (&b, "b"), (&c, "c")] {
            let (got, served) = cache.get_with(k, || async { Ok(perms(p)) }).await.unwrap();
            assert!(got.has_permission(p));
            assert_eq!(served, Served::Fetched);
        }
        let (got, served) = cache
            .get_with(&b, || async { Ok(perms("wrong")) })
            .await
            .unwrap();
        assert!(got.has_permission("b"));
        assert_eq!(served, Served::Local);
    }

    #[tokio::test]
    async fn invalidating_a_user_reaches_every_issuer_and_only_that_tenant() {
        let cache = LocalCache::new("test", Duration::from_secs(60), 100, 1 << 20);
        let keys = [
            key("https://a", "u", Some("t")),
            key("https://b", "u", Some("t")),
            key("https://a", "u", Some("other")),
        ];
        for k in &keys {
            cache
                .get_with(k, || async { Ok(perms("old")) })
                .await
                .unwrap();
        }
        cache.invalidate(None, "u", Some("t")).await;
        let fresh = |k| cache.get_with(k, || async { Ok(perms("new")) });
        assert!(fresh(&keys[0]).await.unwrap().0.has_permission("new"));
        assert!(fresh(&keys[1]).await.unwrap().0.has_permission("new"));
        assert!(fresh(&keys[2]).await.unwrap().0.has_permission("old"));
    }

    #[tokio::test]
    async fn permissions_past_their_validity_are_fetched_again() {
        let cache = LocalCache::new("test", Duration::from_secs(60), 100, 1 << 20);
        let k = key("https://a", "u", None);
        let ended = || {
            let mut p = CompiledPermissions::deny_all();
            p.grant_permission("temporal").expire_at(unix_now());
            Arc::new(p)
        };
        cache.get_with(&k, || async { Ok(ended()) }).await.unwrap();
        let (got, served) = cache
            .get_with(&k, || async { Ok(perms("later")) })
            .await
            .unwrap();
        assert!(got.has_permission("later"));
        assert_eq!(served, Served::Fetched);
    }

    #[test]
    fn the_key_of_a_principal_names_its_issuer() {
        let Ok(identity) = ClaimMapping::default().identity(
            json!({"sub": "u1", "iss": "https://iam", "tenantId": "t1"})
                .as_object()
                .unwrap()
                .clone(),
        ) else {
            panic!("identity")
        };
        let principal = Principal::new(Arc::new(identity), None);
        assert_eq!(
            CacheKey::of(&principal),
            key("https://iam", "u1", Some("t1"))
        );
    }

    #[test]
    fn no_two_callers_share_an_entry_whatever_their_ids_hold() {
        let keys = [
            key("a", "b:c", Some("t")),
            key("a", "c", Some("t1:b")),
            key("a:1", "c", Some("t")),
            key("a", "1:c", None),
            key("a", "-c", None),
            key("a", "c", Some("-")),
            key("", "c", None),
            key("a", "c", Some("")),
        ];
        let entries: std::collections::HashSet<Box<str>> =
            keys.iter().map(CacheKey::entry).collect();
        assert_eq!(entries.len(), keys.len());
    }

    #[tokio::test]
    async fn the_cache_is_bounded_in_bytes_as_well_as_in_entries() {
        // 10,000 entries or 256 KiB; each entry here weighs about 1.4 KiB
        // (a 900-byte permission name): the bytes bind.
        let cache = LocalCache::new("test", Duration::from_secs(60), 10_000, 256 << 10);
        let name = "p".repeat(900);
        for i in 0..1_000 {
            let user = format!("user-{i}");
            let answer = perms(&name);
            cache
                .get_with(&key("iss", &user, None), || {
                    let answer = answer.clone();
                    async move { Ok(answer) }
                })
                .await
                .unwrap();
            cache.cache.run_pending_tasks().await;
        }
        let held = cache.entry_count();
        assert!((1..=190).contains(&held), "{held} entries held");
    }
}
