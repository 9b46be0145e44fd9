//! The introspection cache: moka, keyed by the SHA-256 of the token, each
//! entry kept no longer than its answer allows; single-flight on a miss.

use std::{
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use aws_lc_rs::digest::{digest, SHA256};
use moka::{future::Cache, Expiry};

use super::IntrospectionError;
use crate::jwt::verify::VerifiedToken;

/// The SHA-256 of a token. The token itself is never kept: a heap dump or
/// a debug print of the cache holds nothing a caller could replay.
pub(super) type Key = [u8; 32];

pub(super) fn key(token: &str) -> Key {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    key
}

/// A remembered answer: an admitted token, or a verdict against one.
#[derive(Debug)]
pub(super) struct Entry {
    outcome: Result<Arc<VerifiedToken>, IntrospectionError>,
    /// How long it is kept (moka's per-entry expiry, and ours below).
    ttl: Duration,
    stored: Instant,
    /// Whether the answer carried an `exp`, which `outcome`'s token then
    /// holds: past it the token is inactive without asking.
    has_exp: bool,
}

/// What a cached entry is worth now.
#[derive(Debug)]
pub(super) enum Served {
    /// The remembered outcome (`Inactive` once the answer's `exp` passed).
    Answer(Result<Arc<VerifiedToken>, IntrospectionError>),
    /// Past its TTL: the IAM must be asked again.
    Stale,
}

impl Entry {
    pub(super) fn active(verified: VerifiedToken, ttl: Duration, has_exp: bool) -> Self {
        Self {
            outcome: Ok(Arc::new(verified)),
            ttl,
            stored: Instant::now(),
            has_exp,
        }
    }

    pub(super) fn refused(error: IntrospectionError, ttl: Duration) -> Self {
        Self {
            outcome: Err(error),
            ttl,
            stored: Instant::now(),
            has_exp: false,
        }
    }

    /// Estimated heap bytes: the entry (in an `Arc`) and the admitted
    /// token's identity. A refusal holds no allocation of its own (its
    /// variants carry static text; `Unavailable` is never cached).
    fn heap_bytes(&self) -> usize {
        crate::cache_bound::alloc_bytes(std::mem::size_of::<Self>() + 16)
            + self.outcome.as_ref().map_or(0, |v| v.heap_bytes())
    }

    /// The outcome, as judged when the answer came.
    pub(super) fn outcome(&self) -> Result<Arc<VerifiedToken>, IntrospectionError> {
        self.outcome.clone()
    }

    /// The outcome at `now_unix` (seconds) and `now`. moka expires the
    /// entry by then too; checking the clocks here keeps "never past
    /// `exp`" independent of its housekeeping.
    pub(super) fn serve(&self, now_unix: u64, now: Instant) -> Served {
        match &self.outcome {
            Ok(verified) if self.has_exp && verified.exp <= now_unix => {
                Served::Answer(Err(IntrospectionError::Inactive))
            }
            _ if now.saturating_duration_since(self.stored) >= self.ttl => Served::Stale,
            outcome => Served::Answer(outcome.clone()),
        }
    }
}

/// How long an active answer is kept: until its `exp` (rounded down, as
/// the token's `exp` is), never longer than `max_ttl`.
pub(super) fn active_ttl(exp: Option<f64>, now: f64, max_ttl: Duration) -> Duration {
    match exp {
        // try_from: an `exp` a thousand years ahead is not a Duration,
        // and is bounded by `max_ttl` anyway.
        Some(exp) => Duration::try_from_secs_f64((exp.floor() - now).max(0.0))
            .map_or(max_ttl, |left| left.min(max_ttl)),
        None => max_ttl,
    }
}

/// Expires each entry after its own TTL.
struct ForItsTtl;

impl Expiry<Key, Arc<Entry>> for ForItsTtl {
    fn expire_after_create(
        &self,
        _key: &Key,
        entry: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// One introspector's answers.
pub(super) struct AnswerCache {
    cache: Cache<Key, Arc<Entry>>,
}

impl AnswerCache {
    /// At most `max_entries` answers and `max_bytes` estimated bytes,
    /// whichever binds first.
    pub(super) fn new(max_entries: u64, max_bytes: u64) -> Self {
        let bound = crate::cache_bound::Bound::new(max_entries, max_bytes);
        Self {
            cache: Cache::builder()
                .name("iam_guard.introspection")
                .max_capacity(bound.capacity())
                .weigher(bound.weigher(|_: &Key, entry: &Arc<Entry>| entry.heap_bytes()))
                .expire_after(ForItsTtl)
                .build(),
        }
    }

    /// The entry of `key`, without waiting: moka's future cache has no
    /// synchronous read, so its lookup is polled once. A lookup that would
    /// wait (another task holds its housekeeping) is a miss here, and the
    /// async path awaits it. moka's futures are cancellation safe, so
    /// dropping the pending one loses nothing.
    pub(super) fn peek(&self, key: &Key) -> Option<Arc<Entry>> {
        let mut lookup = pin!(self.cache.get(key));
        match lookup
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(hit) => hit,
            Poll::Pending => None,
        }
    }

    /// The entry of `key`, asked for with `ask` on a miss: once however
    /// many requests miss at the same time, which all get its outcome. An
    /// `Err` (the IAM could not be asked) is not cached. The flag says
    /// whether this call ran `ask`.
    pub(super) async fn get_or_ask<F>(
        &self,
        key: Key,
        ask: F,
    ) -> Result<(Arc<Entry>, bool), IntrospectionError>
    where
        F: Future<Output = Result<Entry, IntrospectionError>>,
    {
        let mut asked = false;
        let entry = self
            .cache
            // Every call site uses IntrospectionError: moka coalesces
            // waiters per key and error type.
            .try_get_with(key, async {
                asked = true;
                ask.await.map(Arc::new)
            })
            .await
            .map_err(|e: Arc<IntrospectionError>| (*e).clone())?;
        Ok((entry, asked))
    }

    pub(super) async fn invalidate(&self, key: &Key) {
        self.cache.invalidate(key).await;
    }

    /// Entries held (after pending maintenance).
    pub(super) async fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::ClaimMapping;

    const MAX: Duration = Duration::from_secs(300);

    fn verified(exp: u64) -> VerifiedToken {
        let claims = serde_json::json!({"sub": "u"});
        let identity = ClaimMapping::default()
            .identity(claims.as_object().cloned().unwrap_or_default())
            .expect("an identity");
        VerifiedToken::introspected(identity, exp)
    }

    #[test]
    fn the_key_is_the_sha256_of_the_token() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            key("abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "the FIPS test vector"
        );
        assert_ne!(key("token-a"), key("token-b"));
    }

    #[test]
    fn an_active_answer_lives_until_its_exp_and_never_past_the_bound() {
        let now = 1_800_000_000.25;
        assert_eq!(
            active_ttl(Some(1_800_000_010.0), now, MAX),
            Duration::from_secs_f64(9.75)
        );
        // Rounded down like the token's exp, so never served past it.
        assert_eq!(
            active_ttl(Some(1_800_000_010.9), now, MAX),
            Duration::from_secs_f64(9.75)
        );
        assert_eq!(active_ttl(Some(1_800_003_600.0), now, MAX), MAX);
        assert_eq!(active_ttl(Some(1e300), now, MAX), MAX);
        assert_eq!(active_ttl(Some(now), now, MAX), Duration::ZERO);
        assert_eq!(active_ttl(None, now, MAX), MAX);
    }

    #[test]
    fn the_expiry_is_the_entrys_own_ttl() {
        let entry = Arc::new(Entry::refused(
            IntrospectionError::Inactive,
            Duration::from_secs(10),
        ));
        assert_eq!(
            ForItsTtl.expire_after_create(&key("t"), &entry, Instant::now()),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn an_entry_is_never_served_past_exp_or_its_ttl() {
        let minute = Duration::from_secs(60);
        let entry = Entry::active(verified(1_000), minute, true);
        let (stored, later) = (entry.stored, entry.stored + minute);
        assert!(matches!(entry.serve(999, stored), Served::Answer(Ok(_))));
        assert!(matches!(
            entry.serve(1_000, stored),
            Served::Answer(Err(IntrospectionError::Inactive))
        ));
        assert!(matches!(entry.serve(999, later), Served::Stale));
        // Without an exp in the answer, the bound's end means "ask again",
        // not "inactive".
        let unbounded = Entry::active(verified(1_000), minute, false);
        let (stored, later) = (unbounded.stored, unbounded.stored + minute);
        assert!(matches!(
            unbounded.serve(5_000, stored),
            Served::Answer(Ok(_))
        ));
        assert!(matches!(unbounded.serve(5_000, later), Served::Stale));
        let refused = Entry::refused(IntrospectionError::Inactive, Duration::from_secs(1));
        assert!(matches!(
            refused.serve(0, refused.stored),
            Served::Answer(Err(IntrospectionError::Inactive))
        ));
        assert!(matches!(
            refused.serve(0, refused.stored + Duration::from_secs(1)),
            Served::Stale
        ));
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_answers_are() {
        let cache = AnswerCache::new(10, 1 << 20);
        let k = key("t");
        let down = cache
            .get_or_ask(k, async {
                Err(IntrospectionError::Unavailable(
                    crate::jwt::source::FetchError::Status(503),
                ))
            })
            .await;
        assert!(down.is_err());
        assert!(cache.peek(&k).is_none());
        let (_, asked) = cache
            .get_or_ask(k, async {
                Ok(Entry::refused(
                    IntrospectionError::Inactive,
                    Duration::from_secs(60),
                ))
            })
            .await
            .expect("an entry");
        assert!(asked);
        let (_, asked) = cache
            .get_or_ask(k, async { panic!("a cached key is not asked about again") })
            .await
            .expect("the cached entry");
        assert!(!asked);
        assert!(cache.peek(&k).is_some());
        assert_eq!(cache.entry_count().await, 1);
    }
}
