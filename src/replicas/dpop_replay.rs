//! [`RedisReplayCache`]: the DPoP replay cache every replica shares, so a
//! proof used on one replica is refused on all of them.
//!
//! Each proof is one key, `SET <prefix>dpop:<proof id> 1 NX EX <seconds
//! until its window closes>`: the first replica to set it admits the
//! request, every later one finds it set and refuses. A replica also
//! remembers what it admitted itself, so a replay to the same replica is
//! refused without a round trip. When Redis cannot answer, the request is
//! refused with 503: without the shared view, a replay to another replica
//! could not be told from a first use.

use crate::{
    jwt::dpop::{DpopReplayCache, LocalReplayCache, ProofId, ReplayAnswer, ReplayCacheError},
    revocation::unix_now,
};

use super::RedisReplicas;

/// The DPoP replay cache on Redis, from
/// [`RedisReplicas::dpop_replay_cache`]. See the [module docs](self).
#[derive(Debug)]
pub struct RedisReplayCache {
    replicas: RedisReplicas,
    local: LocalReplayCache,
}

impl RedisReplayCache {
    pub(super) fn new(replicas: RedisReplicas) -> Self {
        Self {
            replicas,
            local: LocalReplayCache::default(),
        }
    }
}

impl DpopReplayCache for RedisReplayCache {
    fn first_use(&self, id: ProofId, until: u64) -> ReplayAnswer {
        let now = unix_now();
        match self.local.first_use_at(id, until, now) {
            Ok(true) => {}
            answer => return ReplayAnswer::Ready(answer),
        }
        let replicas = self.replicas.clone();
        // Relative, so that the replica's clock and Redis's need not agree.
        let seconds = until.saturating_sub(now).max(1);
        ReplayAnswer::Pending(Box::pin(async move {
            let key = replicas.inner.keys.dpop_proof(id.as_bytes());
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(1).arg("NX").arg("EX").arg(seconds);
            match replicas.try_command::<Option<String>>(&set).await {
                Ok(Some(_)) => Ok(true),
                Ok(None) => Ok(false),
                Err(e) => Err(ReplayCacheError(e.to_string())),
            }
        }))
    }
}
