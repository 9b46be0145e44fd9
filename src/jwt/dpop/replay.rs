//! The DPoP replay cache: a proof's `jti` is accepted once per key within
//! the window in which its `iat` is accepted (RFC 9449 §11.1).
//!
//! [`LocalReplayCache`] keeps what this process has seen, bounded; with
//! several replicas a proof replayed to another replica is only caught by
//! a shared cache: the `redis` feature's
//! [`RedisReplicas::dpop_replay_cache`](crate::replicas::RedisReplicas::dpop_replay_cache),
//! or a [`DpopReplayCache`] of your own.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    fmt,
    future::Future,
    pin::Pin,
    sync::Mutex,
};

use aws_lc_rs::digest;

use crate::revocation::unix_now;

/// The default bound of [`LocalReplayCache`]: 100,000 proofs.
pub const DEFAULT_REPLAY_CACHE_ENTRIES: usize = 100_000;

/// What identifies one proof: SHA-256 of the proof key's thumbprint and
/// the proof's `jti`, so that one client's `jti` never collides with
/// another's, and a hostile `jti` costs 32 bytes to remember.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProofId([u8; 32]);

impl ProofId {
    pub(super) fn new(thumbprint: &str, jti: &str) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(thumbprint.as_bytes());
        ctx.update(&[0]);
        ctx.update(jti.as_bytes());
        let mut id = [0; 32];
        id.copy_from_slice(ctx.finish().as_ref());
        Self(id)
    }

    /// The 32 bytes, for a shared cache's key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ProofId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ProofId({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A replay cache could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the DPoP replay cache cannot answer: {0}")]
pub struct ReplayCacheError(pub String);

/// The answer of [`DpopReplayCache::first_use`], awaited only when the
/// cache must ask another process.
pub type ReplayFuture = Pin<Box<dyn Future<Output = Result<bool, ReplayCacheError>> + Send>>;

/// What [`DpopReplayCache::first_use`] answers.
pub enum ReplayAnswer {
    /// Known now: `true` the first use, `false` a replay.
    Ready(Result<bool, ReplayCacheError>),
    /// To be awaited (a shared cache's round trip).
    Pending(ReplayFuture),
}

impl fmt::Debug for ReplayAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(answer) => f.debug_tuple("Ready").field(answer).finish(),
            Self::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// Remembers DPoP proofs until their window closes.
pub trait DpopReplayCache: Send + Sync + fmt::Debug + 'static {
    /// Records `id` until `until` (Unix seconds) and says whether this is
    /// its first use. An error refuses the request with 503: a cache that
    /// cannot answer must not let a replay through.
    fn first_use(&self, id: ProofId, until: u64) -> ReplayAnswer;
}

/// The in-process replay cache, bounded: when it is full of proofs whose
/// window is still open, new proofs are refused (503) rather than one
/// being forgotten, which would let it be replayed.
#[derive(Debug)]
pub struct LocalReplayCache {
    max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    seen: HashMap<ProofId, u64>,
    /// Earliest expiry first, to sweep what the window has closed on.
    expiries: BinaryHeap<Reverse<(u64, ProofId)>>,
}

impl LocalReplayCache {
    /// A cache holding at most `max_entries` open proofs.
    pub fn new(max_entries: usize) -> Self {
        Self {
            max: max_entries,
            state: Mutex::new(State::default()),
        }
    }

    /// Proofs remembered now.
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.seen.len())
    }

    /// Whether no proof is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`first_use`](DpopReplayCache::first_use) at `now`.
    pub(crate) fn first_use_at(
        &self,
        id: ProofId,
        until: u64,
        now: u64,
    ) -> Result<bool, ReplayCacheError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| ReplayCacheError("poisoned".into()))?;
        let State { seen, expiries } = &mut *state;
        while let Some(Reverse((at, old))) = expiries.peek().copied() {
            if at > now {
                break;
            }
            expiries.pop();
            if seen.get(&old) == Some(&at) {
                seen.remove(&old);
            }
        }
        if seen.contains_key(&id) {
            return Ok(false);
        }
        if seen.len() >= self.max {
            return Err(ReplayCacheError("full".into()));
        }
        seen.insert(id, until);
        expiries.push(Reverse((until, id)));
        Ok(true)
    }
}

impl Default for LocalReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CACHE_ENTRIES)
    }
}

impl DpopReplayCache for LocalReplayCache {
    fn first_use(&self, id: ProofId, until: u64) -> ReplayAnswer {
        ReplayAnswer::Ready(self.first_use_at(id, until, unix_now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_used_once_per_key_until_its_window_closes() {
        let cache = LocalReplayCache::new(10);
        let a = ProofId::new("key-a", "jti-1");
        assert_eq!(cache.first_use_at(a, 100, 50), Ok(true));
        assert_eq!(cache.first_use_at(a, 100, 99), Ok(false));
        // Another key's proof with the same jti is another proof.
        assert_eq!(
            cache.first_use_at(ProofId::new("key-b", "jti-1"), 100, 60),
            Ok(true)
        );
        // After its window, the entry is swept (its proof's iat would now
        // be refused anyway).
        assert_eq!(
            cache.first_use_at(ProofId::new("k", "x"), 200, 100),
            Ok(true)
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let cache = LocalReplayCache::new(2);
        assert_eq!(cache.first_use_at(ProofId::new("k", "1"), 100, 0), Ok(true));
        assert_eq!(cache.first_use_at(ProofId::new("k", "2"), 100, 0), Ok(true));
        assert!(cache.first_use_at(ProofId::new("k", "3"), 100, 0).is_err());
        assert_eq!(
            cache.first_use_at(ProofId::new("k", "1"), 100, 0),
            Ok(false)
        );
        assert_eq!(
            cache.first_use_at(ProofId::new("k", "3"), 300, 100),
            Ok(true)
        );
    }
}
