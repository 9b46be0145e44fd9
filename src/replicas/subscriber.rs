//! The subscription: subscribe, load the view in full, apply messages as
//! they come, and start over whenever the subscription is lost.

use std::{
    sync::{atomic::Ordering, Weak},
    time::Duration,
};

use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::{message::Message, Inner, RedisReplicas, UNKNOWN_GENERATION};
use crate::{jwt::verify::unix_now, revocation::Revocation};

/// The first pause before resubscribing; doubled up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Why a session ended.
enum Lost {
    /// The handle was dropped: stop.
    Dropped,
    /// Redis went away or misbehaved: start over.
    Subscription(String),
}

fn upgrade(weak: &Weak<Inner>) -> Result<RedisReplicas, Lost> {
    weak.upgrade()
        .map(|inner| RedisReplicas { inner })
        .ok_or(Lost::Dropped)
}

/// Subscribes through `nodes` (one server, or a cluster's nodes: the next
/// one after each loss).
pub(super) async fn run(weak: Weak<Inner>, nodes: Vec<redis::Client>, synced: oneshot::Sender<()>) {
    let mut synced = Some(synced);
    let mut pause = FIRST_PAUSE;
    for client in nodes.iter().cycle() {
        let mut did_sync = false;
        match session(&weak, client, &mut synced, &mut did_sync).await {
            Lost::Dropped => return,
            Lost::Subscription(why) => {
                let Ok(replicas) = upgrade(&weak) else { return };
                let inner = &*replicas.inner;
                inner.trust.cut_off(inner.outage.grace());
                crate::metrics::replica_subscription_lost();
                tracing::warn!(target: "iam_guard::replicas", reason = %why, "lost the Redis subscription; resubscribing");
            }
        }
        // A session that got as far as a sync starts the backoff afresh.
        if did_sync {
            pause = FIRST_PAUSE;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// One subscription, from connecting to its loss.
async fn session(
    weak: &Weak<Inner>,
    client: &redis::Client,
    synced: &mut Option<oneshot::Sender<()>>,
    did_sync: &mut bool,
) -> Lost {
    let (channel, timeout, heartbeat) = match upgrade(weak) {
        Ok(r) => (
            r.inner.keys.channel.clone(),
            r.inner.timeout,
            r.inner.heartbeat,
        ),
        Err(lost) => return lost,
    };
    let lost = |what: &str, e: &dyn std::fmt::Display| Lost::Subscription(format!("{what}: {e}"));
    let mut pubsub = match tokio::time::timeout(timeout, client.get_async_pubsub()).await {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(e)) => return lost("connecting", &e),
        Err(_) => return Lost::Subscription("connecting timed out".into()),
    };
    if let Err(e) = pubsub.subscribe(&channel).await {
        return lost("subscribing", &e);
    }
    let (mut sink, mut stream) = pubsub.split();
    // Subscribed before loading: whatever is written from here on arrives
    // as a message, whatever was written before is in the load.
    {
        let replicas = match upgrade(weak) {
            Ok(r) => r,
            Err(lost) => return lost,
        };
        if let Err(why) = resync(&replicas).await {
            return Lost::Subscription(why);
        }
        *did_sync = true;
        if let Some(synced) = synced.take() {
            let _ = synced.send(());
        }
    }
    loop {
        match tokio::time::timeout(heartbeat, stream.next()).await {
            Ok(Some(message)) => {
                let replicas = match upgrade(weak) {
                    Ok(r) => r,
                    Err(lost) => return lost,
                };
                handle(&replicas, message.get_payload_bytes()).await;
            }
            Ok(None) => return Lost::Subscription("the connection closed".into()),
            Err(_) => {
                if weak.strong_count() == 0 {
                    return Lost::Dropped;
                }
                // Silent for a heartbeat: make sure the connection is alive.
                match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return lost("ping", &e),
                    Err(_) => return Lost::Subscription("ping timed out".into()),
                }
            }
        }
    }
}

/// Loads the view in full: every revocation, the generation, and empty
/// local permission caches. Then the view is trusted.
async fn resync(replicas: &RedisReplicas) -> Result<(), String> {
    let inner = &*replicas.inner;
    let now = unix_now();
    // Forget what has ended (any replica may), then read the rest. One
    // key per round trip: in a cluster the two keys live on different
    // nodes.
    let mut pipe = redis::pipe();
    pipe.cmd("ZREMRANGEBYSCORE")
        .arg(&inner.keys.revocations)
        .arg("-inf")
        .arg(now)
        .ignore()
        .cmd("ZRANGE")
        .arg(&inner.keys.revocations)
        .arg(now + 1)
        .arg("+inf")
        .arg("BYSCORE")
        .arg("WITHSCORES");
    let (stored,): (Vec<(Vec<u8>, f64)>,) = replicas
        .try_pipeline(&pipe)
        .await
        .map_err(|e| format!("loading the revocations: {e}"))?;
    let (generation,): (Option<u64>,) = replicas
        .try_pipeline(redis::pipe().cmd("GET").arg(&inner.keys.generation))
        .await
        .map_err(|e| format!("reading the generation: {e}"))?;
    let mut revocations: Vec<(Revocation, u64)> = Vec::with_capacity(stored.len());
    for (text, kept_until) in &stored {
        match Message::parse(text) {
            Ok(Message::Revoke(revocation)) => {
                revocations.push((revocation, kept_until.max(0.0) as u64));
            }
            Ok(_) => ignored("a stored revocation", "not a revocation"),
            Err(why) => ignored("a stored revocation", &why),
        }
    }
    inner
        .revocations
        .apply_kept_until(revocations.iter().map(|(r, k)| (r, *k)), now);
    inner
        .generation
        .store(generation.unwrap_or(0), Ordering::SeqCst);
    // Whatever this replica cached may predate a message it missed.
    replicas.invalidate_all_locally();
    inner.resyncs.fetch_add(1, Ordering::Relaxed);
    inner.trust.synced();
    tracing::info!(target: "iam_guard::replicas", revocations = revocations.len(), "synced with Redis");
    Ok(())
}

fn ignored(what: &str, why: &str) {
    crate::metrics::replica_message(false);
    tracing::warn!(target: "iam_guard::replicas", reason = %why, "ignoring {what}");
}

/// Applies one message from the channel.
async fn handle(replicas: &RedisReplicas, payload: &[u8]) {
    let message = match Message::parse(payload) {
        Ok(message) => message,
        Err(why) => return ignored("a message", &why),
    };
    crate::metrics::replica_message(true);
    let inner = &*replicas.inner;
    match message {
        Message::Revoke(revocation) => inner.revocations.apply(&revocation),
        Message::Invalidate(who) => {
            replicas
                .invalidate_locally(Some(&who.issuer), &who.user, who.tenant.as_deref())
                .await;
        }
        Message::InvalidateAll => {
            let generation: Option<Option<u64>> = replicas
                .command(redis::cmd("GET").arg(&inner.keys.generation))
                .await;
            match generation {
                Some(generation) => {
                    inner
                        .generation
                        .fetch_max(generation.unwrap_or(0), Ordering::SeqCst);
                }
                // Not knowing the generation, skip the shared level until
                // the next sync rather than read entries it invalidated.
                None => inner.generation.store(UNKNOWN_GENERATION, Ordering::SeqCst),
            }
            replicas.invalidate_all_locally();
        }
    }
}
