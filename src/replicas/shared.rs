//! The shared level of a permission cache: one Redis hash per caller.
//!
//! The hash has two fields. `ver` counts the caller's invalidations
//! (`HINCRBY … ver 1`); `doc` is the entry, version 1 of this JSON:
//!
//! ```json
//! {"v":1,"generation":3,"ver":0,"expiresAt":1800000300000,"permissions":{"students":{"scopes":{"anagraphic":"READ"},"actions":{}}}}
//! ```
//!
//! `generation` and `ver` are those read before the load began,
//! `expiresAt` is unix milliseconds (the TTL or the permissions'
//! `validUntil`, whichever is first) and `permissions` is the permissions
//! document. An entry counts only while its `generation` is the cache's
//! current generation, its `ver` the hash's current `ver`, and it has not
//! expired: an invalidation never has to race a load that was under way,
//! because whatever that load writes is stale on arrival.

use std::{
    future::Future,
    sync::{atomic::AtomicBool, atomic::Ordering, Arc},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RedisReplicas;
use crate::{
    model::CompiledPermissions,
    permissions::{cache::local::CacheKey, source::PermissionError},
};

/// The version of the stored entry this crate writes and reads.
pub const ENTRY_VERSION: u64 = 1;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    v: u64,
    generation: u64,
    ver: u64,
    expires_at: u64,
    permissions: Value,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A cache's handle on the shared level.
#[derive(Debug, Clone)]
pub(crate) struct SharedLevel {
    replicas: RedisReplicas,
    ttl: Duration,
}

impl SharedLevel {
    pub(crate) fn new(replicas: RedisReplicas, ttl: Duration) -> Self {
        Self { replicas, ttl }
    }

    /// Refuses while the replica's view cannot be trusted: invalidations
    /// may have been missed, so nothing cached here may be served.
    pub(crate) fn ensure_trusted(&self) -> Result<(), PermissionError> {
        if self.replicas.inner.trust.is_trusted() {
            Ok(())
        } else {
            Err(PermissionError::Unavailable(
                "this replica is cut off from Redis and cannot confirm cached permissions".into(),
            ))
        }
    }

    /// The shared entry of `key`, or `load`'s answer, stored for the other
    /// replicas. Redis being unreachable makes it a miss that is not
    /// stored, never an error: the source is the truth, Redis a cache.
    pub(crate) async fn get_or_load<F, Fut>(
        &self,
        key: &CacheKey<'_>,
        load: F,
        hit: &AtomicBool,
    ) -> Result<Arc<CompiledPermissions>, PermissionError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<CompiledPermissions>, PermissionError>>,
    {
        let replicas = &self.replicas;
        let (Some(name), Some(generation)) =
            (replicas.inner.keys.permissions(key), replicas.generation())
        else {
            return load().await;
        };
        let read: Option<(Option<String>, Option<u64>)> = replicas
            .command(redis::cmd("HMGET").arg(&name).arg("doc").arg("ver"))
            .await;
        let Some((doc, ver)) = read else {
            return load().await;
        };
        let ver = ver.unwrap_or(0);
        if let Some(perms) = doc.and_then(|doc| entry(&doc, generation, ver)) {
            hit.store(true, Ordering::Relaxed);
            return Ok(Arc::new(perms));
        }
        let perms = load().await?;
        let now = unix_ms();
        let ttl_end = now.saturating_add(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX));
        let expires_at = perms
            .valid_until()
            .map_or(ttl_end, |until| ttl_end.min(until.saturating_mul(1000)));
        if expires_at > now {
            let stored = Stored {
                v: ENTRY_VERSION,
                generation,
                ver,
                expires_at,
                permissions: perms.to_document(),
            };
            let text = serde_json::to_string(&stored).unwrap_or_default();
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("HSET")
                .arg(&name)
                .arg("doc")
                .arg(text)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&name)
                .arg(expires_at - now)
                .ignore();
            let _: Option<()> = replicas.pipeline(&pipe).await;
        }
        Ok(perms)
    }
}

/// The permissions of a stored entry that still counts.
fn entry(doc: &str, generation: u64, ver: u64) -> Option<CompiledPermissions> {
    let stored: Stored = serde_json::from_str(doc)
        .map_err(|e| {
            tracing::warn!(target: "iam_guard::replicas", error = %e, "ignoring an unreadable shared permission entry");
        })
        .ok()?;
    if stored.v != ENTRY_VERSION
        || stored.generation != generation
        || stored.ver != ver
        || stored.expires_at <= unix_ms()
    {
        return None;
    }
    let perms = CompiledPermissions::from_document(&stored.permissions)
        .map_err(|e| {
            tracing::warn!(target: "iam_guard::replicas", error = %e, "ignoring an unreadable shared permission entry");
        })
        .ok()?;
    perms
        .is_valid_at(crate::jwt::verify::unix_now())
        .then_some(perms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(generation: u64, ver: u64, expires_at: u64) -> String {
        serde_json::to_string(&Stored {
            v: ENTRY_VERSION,
            generation,
            ver,
            expires_at,
            permissions: serde_json::json!({"permissions": ["a.b"]}),
        })
        .unwrap()
    }

    #[test]
    fn an_entry_counts_only_for_its_generation_version_and_lifetime() {
        let later = unix_ms() + 60_000;
        assert!(entry(&stored(3, 1, later), 3, 1)
            .unwrap()
            .has_permission("a.b"));
        assert!(
            entry(&stored(3, 1, later), 4, 1).is_none(),
            "invalidated all"
        );
        assert!(entry(&stored(3, 1, later), 3, 2).is_none(), "invalidated");
        assert!(
            entry(&stored(3, 1, unix_ms() - 1), 3, 1).is_none(),
            "expired"
        );
        assert!(entry("not json", 3, 1).is_none());
        assert!(entry(
            r#"{"v":2,"generation":3,"ver":1,"expiresAt":1,"permissions":{}}"#,
            3,
            1
        )
        .is_none());
    }

    #[test]
    fn the_documented_entry_reads() {
        let doc = r#"{"v":1,"generation":3,"ver":0,"expiresAt":99999999999999,"permissions":{"students":{"scopes":{"anagraphic":"READ"},"actions":{}}}}"#;
        let perms = entry(doc, 3, 0).unwrap();
        assert!(perms.can_read("students", "anagraphic"));
    }
}
