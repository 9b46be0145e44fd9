//! [`JwksFetcher`]: the IAM's signing keys, cached in moka by `kid`, kept
//! fresh off the request path and usable through an IAM outage.
//!
//! What it guarantees, and why:
//!
//! - **Known kid → no I/O.** A key lookup is a moka read; the request path
//!   never waits on the IAM unless the kid is new or nothing is cached.
//! - **Unknown kid → one refetch, then a cooldown.** A token with a new kid
//!   (the IAM rotated) triggers one fetch; concurrent requests wait for that
//!   same fetch (single-flight). After it, unknown kids are answered from a
//!   negative cache until the cooldown (default 30 s) has passed, so a
//!   client spraying random kids cannot turn into traffic to the IAM.
//! - **TTL from `Cache-Control`.** A document is fresh for its `max-age`
//!   (default 10 min, clamped to `[min_ttl, max_ttl]`); from 80 % of that a
//!   background task refreshes it, so no request waits for the refresh.
//! - **Stale-if-error.** If refreshing fails, the keys already held keep
//!   verifying for a bounded window (default 24 h) that starts when they go
//!   stale, that is when their TTL ends: a window shorter than the TTL
//!   never drops fresh keys. A failed fetch is never cached: the next
//!   attempt fetches again.
//! - **Fail closed on a cold start.** With no keys and no IAM, verification
//!   fails with [`KeyError::Unavailable`] (503), never a guess.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use iam_guard::jwt::jwks::JwksFetcher;
//!
//! let jwks = JwksFetcher::builder()
//!     .cooldown(Duration::from_secs(30))
//!     .discover("https://iam.example.com/realms/school")?;
//! // Optional: fetch now so the first request does not wait.
//! jwks.warm_up().await?;
//! # Ok(()) }
//! ```

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use moka::sync::Cache;

mod builder;

pub use builder::{
    JwksFetcherBuilder, DEFAULT_MAX_KEYS, DEFAULT_MAX_KEY_BYTES, DEFAULT_MAX_NEGATIVE_BYTES,
    DEFAULT_MAX_NEGATIVE_ENTRIES,
};

use super::{
    keys::{parse_jwks, VerifyingKey},
    source::{FetchError, JwksSource},
};
use crate::{freshness::Freshness, metrics};

/// Default freshness when the IAM sends no `Cache-Control: max-age`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);
/// Default time between unknown-kid refetches.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// Default window in which cached keys outlive a failing IAM.
pub const DEFAULT_STALE_IF_ERROR: Duration = Duration::from_secs(24 * 60 * 60);
/// Default pause after a failed fetch before the next attempt.
pub const DEFAULT_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Looking up a verification key failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The JWKS (as fetched now or within the cooldown) has no such kid.
    #[error("no key with this kid is published by the IAM")]
    UnknownKid,
    /// No keys are held and the IAM cannot be reached.
    #[error("signing keys are unavailable: {0}")]
    Unavailable(FetchError),
}

/// The IAM's signing keys, cached and kept fresh. Cheap to clone.
///
/// See the [module docs](self) for behaviour and an example.
#[derive(Clone)]
pub struct JwksFetcher {
    inner: Arc<Inner>,
}

/// The source of [`JwksFetcher::no_keys`]. The fetcher never calls it; if
/// it did, an empty set still verifies nothing.
struct NoKeys;

impl JwksSource for NoKeys {
    fn fetch(&self) -> super::source::FetchFuture<'_> {
        Box::pin(async {
            Ok(super::source::JwksDocument {
                body: bytes::Bytes::from_static(br#"{"keys":[]}"#),
                max_age: None,
            })
        })
    }
}

struct Inner {
    source: Box<dyn JwksSource>,
    /// A fixed empty key set ([`JwksFetcher::no_keys`]): never fetched.
    no_keys: bool,
    keys: Cache<Arc<str>, Arc<VerifyingKey>>,
    unknown: Cache<Box<str>, ()>,
    /// The keys of the last good document, to find the ones the next one
    /// drops or changes. Held here and not looked up in `keys`: moka may
    /// already have expired a key (stale window over), and a key that is
    /// not revoked keeps its tokens in the verified-token cache.
    published: Mutex<HashMap<Arc<str>, Arc<VerifyingKey>>>,
    /// Held for the duration of a fetch: concurrent refetches wait here
    /// and then read its outcome instead of fetching again. Requests whose
    /// kid is cached never touch it.
    refresh: tokio::sync::Mutex<()>,
    /// Whether the last good document's keys are fresh, may still verify
    /// (stale within the stale-if-error window), or are due for a refresh;
    /// its clock stamps `last_forced` too.
    freshness: Freshness,
    /// Bumped when a fetch attempt finishes, successful or not.
    generation: AtomicU64,
    /// When an unknown kid last forced a fetch (the cooldown's start).
    last_forced: AtomicU64,
    last_error: Mutex<Option<FetchError>>,
    in_flight: AtomicBool,
    fetches: AtomicU64,
    config: JwksFetcherBuilder,
}

impl fmt::Debug for JwksFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksFetcher")
            .field("keys", &self.inner.keys.entry_count())
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

impl JwksFetcher {
    /// A builder with the defaults of the [module docs](self).
    pub fn builder() -> JwksFetcherBuilder {
        JwksFetcherBuilder::default()
    }

    /// A fetcher with default settings that finds the JWKS through OIDC
    /// discovery of `issuer`.
    ///
    /// # Errors
    ///
    /// See [`JwksFetcherBuilder::discover`].
    #[cfg(feature = "jwks-http")]
    pub fn discover(issuer: &str) -> Result<Self, FetchError> {
        Self::builder().discover(issuer)
    }

    /// A fetcher with default settings reading `jwks_uri`.
    ///
    /// # Errors
    ///
    /// See [`JwksFetcherBuilder::jwks_uri`].
    #[cfg(feature = "jwks-http")]
    pub fn jwks_uri(jwks_uri: &str) -> Result<Self, FetchError> {
        Self::builder().jwks_uri(jwks_uri)
    }

    /// A fetcher over a fixed empty key set, for a verifier that trusts
    /// only shared secrets: every kid is unknown (a 401, never a 503) and
    /// nothing is ever fetched.
    pub(crate) fn no_keys() -> Self {
        Self::builder().build(Box::new(NoKeys), true)
    }

    /// Whether this is the fixed empty key set of [`no_keys`](Self::no_keys).
    pub(crate) fn has_no_keys(&self) -> bool {
        self.inner.no_keys
    }

    /// Fetches the JWKS now, so the first request does not wait for it.
    /// A verifier built without a JWKS has nothing to fetch and returns
    /// `Ok` at once.
    ///
    /// # Errors
    ///
    /// The fetch error, when the IAM cannot be reached or answers garbage.
    /// The fetcher stays usable and retries on demand.
    pub async fn warm_up(&self) -> Result<(), FetchError> {
        if self.inner.no_keys {
            return Ok(());
        }
        let seen = self.inner.generation.load(Ordering::Acquire);
        self.fetch_once(seen).await
    }

    /// How many fetches have been attempted (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The kids of the keys currently usable.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self
            .inner
            .keys
            .iter()
            .map(|(kid, _)| kid.to_string())
            .collect();
        kids.sort();
        kids
    }

    /// Whether the cooldown since an unknown kid last forced a fetch is over.
    fn cooled_down(&self) -> bool {
        let inner = &self.inner;
        inner
            .freshness
            .since(&inner.last_forced, inner.config.cooldown)
    }

    /// Whether keys that are fresh, or stale within the stale-if-error
    /// window, are held.
    pub(crate) fn holds_keys(&self) -> bool {
        self.inner.freshness.usable()
    }

    /// [`holds_keys`](Self::holds_keys) for a verification about to use
    /// them: one clock read, which also counts a stale key served and
    /// starts a background refresh when the document is due for one.
    pub(crate) fn keys_usable(&self) -> bool {
        let freshness = &self.inner.freshness;
        let now = freshness.now_ms();
        if !freshness.usable_at(now) {
            return false;
        }
        if freshness.stale_at(now) {
            metrics::jwks_stale_key_served();
        }
        self.refresh_if_due(now);
        true
    }

    /// The cached key for `kid`, without I/O, if keys are usable.
    pub(crate) fn cached(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let key = self.inner.keys.get(kid)?;
        self.keys_usable().then_some(key)
    }

    /// The held key for `kid`, without side effects.
    fn held(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.inner.keys.get(kid).filter(|_| self.holds_keys())
    }

    /// The key for `kid`, fetching the JWKS when the kid is new.
    pub(crate) async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, KeyError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let inner = &self.inner;
        if inner.no_keys {
            return Err(KeyError::UnknownKid);
        }
        // Read before judging `cold`: a fetch that completes after this
        // point is then seen below as "finished while we waited" and its
        // outcome used, instead of a second fetch on a stale `cold`.
        let seen = inner.generation.load(Ordering::Acquire);
        let cold = !self.holds_keys();
        if !cold {
            if inner.unknown.contains_key(kid) {
                metrics::jwks_cooldown_refusal();
                return Err(KeyError::UnknownKid);
            }
            if !self.cooled_down() && !inner.in_flight.load(Ordering::Acquire) {
                // The fetch that started this cooldown may have finished
                // since the lookup above, bringing this very kid: look
                // again before calling it unknown.
                if let Some(key) = self.held(kid) {
                    return Ok(key);
                }
                inner.unknown.insert(kid.into(), ());
                metrics::jwks_cooldown_refusal();
                return Err(KeyError::UnknownKid);
            }
        } else if inner.freshness.retry_paused(&inner.config.windows) {
            return Err(self.unavailable());
        }
        let _guard = inner.refresh.lock().await;
        if let Some(key) = self.held(kid) {
            return Ok(key);
        }
        let fetched = if inner.generation.load(Ordering::Acquire) != seen {
            // A fetch finished while we waited: its outcome is ours.
            self.holds_keys()
        } else if !cold && !self.cooled_down() {
            true
        } else {
            if !cold {
                // In flight before the cooldown starts: a request that sees
                // the new cooldown must also see the fetch, and wait for it
                // instead of answering its kid from the negative cache.
                inner.in_flight.store(true, Ordering::Release);
                inner
                    .last_forced
                    .store(inner.freshness.now_ms(), Ordering::Release);
                metrics::jwks_unknown_kid_refetch();
            }
            self.fetch_locked().await.is_ok()
        };
        drop(_guard);
        if !fetched && !self.holds_keys() {
            return Err(self.unavailable());
        }
        match self.held(kid) {
            Some(key) => Ok(key),
            None => {
                inner.unknown.insert(kid.into(), ());
                Err(KeyError::UnknownKid)
            }
        }
    }

    fn unavailable(&self) -> KeyError {
        let last = self.inner.last_error.lock().expect("lock poisoned").clone();
        KeyError::Unavailable(
            last.unwrap_or_else(|| FetchError::Connect("no keys fetched yet".into())),
        )
    }

    /// Fetches unless another fetch completed since `seen`.
    async fn fetch_once(&self, seen: u64) -> Result<(), FetchError> {
        let _guard = self.inner.refresh.lock().await;
        if self.inner.generation.load(Ordering::Acquire) != seen && self.holds_keys() {
            return Ok(());
        }
        self.fetch_locked().await
    }

    /// One fetch; the caller holds `refresh`.
    async fn fetch_locked(&self) -> Result<(), FetchError> {
        let inner = &self.inner;
        inner.in_flight.store(true, Ordering::Release);
        inner.fetches.fetch_add(1, Ordering::Relaxed);
        let outcome = match inner.source.fetch().await {
            Ok(doc) => parse_jwks(&doc.body)
                .map_err(FetchError::Invalid)
                .map(|parsed| (parsed, doc.max_age)),
            Err(e) => Err(e),
        };
        metrics::jwks_fetch(outcome.is_ok());
        let result = match outcome {
            Ok((parsed, max_age)) => {
                for skipped in &parsed.skipped {
                    tracing::debug!(
                        target: "iam_guard::jwks",
                        kid = skipped.kid.as_deref().unwrap_or("-"),
                        reason = skipped.reason,
                        "skipped a JWK"
                    );
                }
                self.install(parsed.keys, max_age);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(target: "iam_guard::jwks", error = %e, "JWKS fetch failed");
                inner.freshness.failed(&inner.config.windows);
                *inner.last_error.lock().expect("lock poisoned") = Some(e.clone());
                Err(e)
            }
        };
        inner.generation.fetch_add(1, Ordering::AcqRel);
        inner.in_flight.store(false, Ordering::Release);
        result
    }

    fn install(&self, keys: HashMap<Arc<str>, VerifyingKey>, max_age: Option<Duration>) {
        let inner = &self.inner;
        let mut published = inner.published.lock().expect("lock poisoned");
        let mut next = HashMap::with_capacity(keys.len());
        for (kid, key) in keys {
            let key = match published.remove(&kid) {
                // Same material: keep the old entry (and so the tokens
                // verified with it) and only restart its stale window.
                Some(old) if old.fingerprint == key.fingerprint => old,
                Some(old) => {
                    old.revoke();
                    Arc::new(key)
                }
                None => Arc::new(key),
            };
            inner.keys.insert(kid.clone(), key.clone());
            next.insert(kid, key);
        }
        // What is left has left the JWKS.
        for (gone, old) in published.drain() {
            inner.keys.invalidate(&gone);
            old.revoke();
        }
        *published = next;
        drop(published);
        // New keys may carry kids that were unknown a moment ago.
        inner.unknown.invalidate_all();
        inner.freshness.renew(&inner.config.windows, max_age);
        *inner.last_error.lock().expect("lock poisoned") = None;
    }

    /// Starts a background refresh when the document is due at `now` and
    /// none is running. Costs an atomic load when nothing is due.
    fn refresh_if_due(&self, now: u64) {
        let Some(runtime) = self.inner.freshness.claim_refresh(now) else {
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let seen = this.inner.generation.load(Ordering::Acquire);
            // Errors are logged by the fetch and retried after the pause;
            // the keys in hand keep serving meanwhile.
            let _ = this.fetch_once(seen).await;
            this.inner.freshness.refresh_finished();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_empty_key_set_knows_no_kid_and_never_fetches() {
        let jwks = JwksFetcher::no_keys();
        assert!(jwks.has_no_keys());
        assert_eq!(jwks.key("rsa-1").await.unwrap_err(), KeyError::UnknownKid);
        // Again, past any cooldown logic: still unknown, still no fetch.
        assert_eq!(jwks.key("rsa-1").await.unwrap_err(), KeyError::UnknownKid);
        assert!(jwks.cached("rsa-1").is_none());
        jwks.warm_up().await.unwrap();
        assert_eq!(jwks.fetch_count(), 0);
        assert!(jwks.kids().is_empty());
    }
}
