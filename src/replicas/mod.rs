//! Several replicas, one truth: a permission cache the replicas share,
//! invalidations that reach every replica, and revocations every replica
//! enforces — on Redis or a Redis-compatible server such as Valkey.
//!
//! [`RedisReplicas`] is one replica's connection. It keeps the replica's
//! [`Revocations`] current (loaded in full before
//! [`connect`](RedisReplicasBuilder::connect) returns, then kept current
//! by a subscription), gives permission caches a shared level
//! ([`RemoteSourceBuilder::shared`](crate::permissions::remote::RemoteSourceBuilder::shared),
//! [`CachedSourceBuilder::shared`](crate::permissions::cache::CachedSourceBuilder::shared)),
//! and publishes invalidations and revocations. Requests never wait on
//! Redis for a decision that is cached: revocations are checked against
//! the local view, and only a miss of this replica's permission cache
//! reads the shared entry.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use iam_guard::{replicas::RedisReplicas, JwtAuthGuardLayer, RemoteSource};
//!
//! let replicas = RedisReplicas::builder("redis://127.0.0.1:6379/").connect().await?;
//! let permissions = RemoteSource::builder("https://iam.example.com/api/v1/permissions")
//!     .shared(&replicas)
//!     .build()?;
//! let auth = JwtAuthGuardLayer::issuer("https://iam.example.com")?
//!     .permissions(permissions)
//!     .revocations(replicas.revocations());
//! // An admin changed user-1's roles in school-1: every replica drops them.
//! replicas.invalidate("https://iam.example.com", "user-1", Some("school-1")).await?;
//! // Logout everywhere: every token of user-1 issued until now.
//! replicas.revoke_user("user-1", None, iam_guard::replicas::unix_now() + 1).await?;
//! # let _ = auth; Ok(()) }
//! ```
//!
//! # What is kept in Redis
//!
//! Every name starts with the prefix (default `iam-guard:`).
//!
//! | key | type | holds |
//! |---|---|---|
//! | `iam-guard:events` | pub/sub channel | one message ([`message`]) per invalidation or revocation |
//! | `iam-guard:revocations` | sorted set | each revocation message, scored by the unix second it may be forgotten |
//! | `iam-guard:permissions:generation` | string (integer) | the shared cache's generation; `INCR` invalidates every entry |
//! | `iam-guard:permissions:<sha256>` | hash `{doc, ver}` | one caller's entry ([`shared`]); `HINCRBY … ver 1` invalidates it |
//!
//! `<sha256>` is the lower-case hex SHA-256 of `issuer`, `tenant` (empty
//! when none) and `user` joined by line feeds.
//!
//! # Writing from any language
//!
//! An IAM invalidates or revokes with plain Redis commands; the crate's
//! [`invalidate`](RedisReplicas::invalidate) and
//! [`revoke`](RedisReplicas::revoke) do exactly this:
//!
//! ```text
//! # user-1's roles in school-1 changed
//! KEY="iam-guard:permissions:$(printf '%s\n%s\n%s' https://iam.example.com school-1 user-1 | sha256sum | cut -c1-64)"
//! redis-cli HINCRBY "$KEY" ver 1
//! redis-cli PUBLISH iam-guard:events '{"v":1,"type":"invalidate","issuer":"https://iam.example.com","tenant":"school-1","user":"user-1"}'
//!
//! # log user-1 out everywhere: store the revocation, then announce it
//! MSG='{"v":1,"type":"revoke_user","user":"user-1","before":1800000000}'
//! redis-cli ZADD iam-guard:revocations 1800086400 "$MSG"   # before + the longest token lifetime
//! redis-cli PUBLISH iam-guard:events "$MSG"
//! ```
//!
//! # When the subscription is lost
//!
//! Redis pub/sub delivers a message only to connected subscribers, so a
//! replica that loses its subscription (Redis restarts, the connection is
//! killed, a network partition; idle connections are pinged every
//! [heartbeat](RedisReplicasBuilder::heartbeat)) may miss messages. It
//! therefore resubscribes, then reloads every revocation from the sorted
//! set, rereads the generation and empties its local permission caches,
//! loads under way included, before it trusts its view again. Nothing it
//! served from memory before the loss survives the resubscription.
//!
//! While it is cut off, the [`OutagePolicy`] decides: serve from the last
//! synced state for a window (default 30 s), then answer 503
//! `IAM_UNAVAILABLE` to every request whose decision needs the view; or
//! 503 at once. Writes ([`revoke`](RedisReplicas::revoke), …) fail with
//! [`ReplicasError`] while Redis is unreachable, never silently.
//!
//! # Cluster
//!
//! [`RedisReplicas::cluster`] takes the nodes of a Redis (or Valkey)
//! Cluster: commands go through the redis crate's cluster client, which
//! follows the slot map, and the subscription connects to one node,
//! moving on to the next one in the list whenever it is lost — a message
//! published on any node reaches subscribers on every node. Every
//! command and transaction touches a single key, so no key needs a hash
//! tag and callers' entries spread over the cluster.

pub mod dpop_replay;
mod keys;
pub mod message;
pub mod shared;
mod subscriber;

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError, Weak,
    },
    time::Duration,
};

use redis::{aio::ConnectionManager, FromRedisValue};
use tokio::task::AbortHandle;

pub(crate) use self::shared::SharedLevel;
pub use self::{dpop_replay::RedisReplayCache, keys::DEFAULT_PREFIX};
use self::{
    keys::Keys,
    message::{Invalidation, Message},
};
use crate::{
    permissions::cache::local::LocalCache,
    principal::ClaimPath,
    revocation::{trust::Trust, Revocation, Revocations, DEFAULT_MAX_TOKEN_LIFETIME},
};

pub use crate::revocation::unix_now;

/// What a replica does while it is cut off from Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutagePolicy {
    /// Keep deciding from the last synced state for this long, then answer
    /// 503 `IAM_UNAVAILABLE` until the view is synced again.
    ServeLastSynced(Duration),
    /// Answer 503 `IAM_UNAVAILABLE` as soon as the subscription is lost.
    Unavailable,
}

impl OutagePolicy {
    fn grace(self) -> Duration {
        match self {
            Self::ServeLastSynced(window) => window,
            Self::Unavailable => Duration::ZERO,
        }
    }
}

impl Default for OutagePolicy {
    /// Serve the last synced state for 30 s.
    fn default() -> Self {
        Self::ServeLastSynced(Duration::from_secs(30))
    }
}

/// Talking to Redis failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicasError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// Redis could not be reached or answered with an error.
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
}

/// Where Redis is.
#[derive(Debug, Clone)]
enum Target {
    Single(String),
    Cluster(Vec<String>),
}

/// Builds a [`RedisReplicas`].
#[derive(Debug, Clone)]
pub struct RedisReplicasBuilder {
    target: Target,
    prefix: String,
    outage: OutagePolicy,
    heartbeat: Duration,
    timeout: Duration,
    max_token_lifetime: Duration,
    version_claim: Option<ClaimPath>,
}

impl RedisReplicasBuilder {
    /// The prefix of every key and of the channel (default `iam-guard:`).
    /// Services that must not see each other's data use different
    /// prefixes.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// What to do while cut off from Redis (default: serve the last synced
    /// state for 30 s).
    pub fn outage_policy(mut self, policy: OutagePolicy) -> Self {
        self.outage = policy;
        self
    }

    /// How long the subscription may stay silent before it is pinged; an
    /// unanswered ping counts as a lost subscription (default 1 s).
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// Timeout of every Redis command and connection attempt (default
    /// 1 s). A request that misses the local cache waits at most this long
    /// for the shared level before asking the source.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest token lifetime revocations are kept for (see
    /// [`RevocationsBuilder::max_token_lifetime`](crate::revocation::RevocationsBuilder::max_token_lifetime)).
    pub fn max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_token_lifetime = lifetime;
        self
    }

    /// The token-version claim (see
    /// [`RevocationsBuilder::token_version_claim`](crate::revocation::RevocationsBuilder::token_version_claim)).
    pub fn token_version_claim(mut self, claim: impl Into<ClaimPath>) -> Self {
        self.version_claim = Some(claim.into());
        self
    }

    /// Connects, subscribes and loads every revocation; returns once the
    /// view is synced, so a service that awaits it before listening never
    /// serves a request unsynced. The subscription then runs on the tokio
    /// runtime until the last clone of the handle is dropped.
    ///
    /// # Errors
    ///
    /// When the URL is invalid, or Redis cannot be reached or the first
    /// sync does not finish within the timeout (times three).
    pub async fn connect(self) -> Result<RedisReplicas, ReplicasError> {
        let invalid = |e: redis::RedisError| ReplicasError::InvalidUrl(e.to_string());
        let (commands, subscribers) = match &self.target {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(invalid)?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(self.timeout);
                let manager = timed(
                    self.timeout,
                    client.get_connection_manager_with_config(config),
                )
                .await?;
                (Commands::Single(manager), vec![client])
            }
            Target::Cluster(nodes) => {
                let subscribers = nodes
                    .iter()
                    .map(|node| redis::Client::open(node.as_str()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(invalid)?;
                if subscribers.is_empty() {
                    return Err(ReplicasError::InvalidUrl(
                        "a cluster needs at least one node".into(),
                    ));
                }
                let client = redis::cluster::ClusterClient::builder(nodes.clone())
                    .connection_timeout(self.timeout)
                    .response_timeout(self.timeout)
                    .build()
                    .map_err(invalid)?;
                let connection = timed(self.timeout, client.get_async_connection()).await?;
                (Commands::Cluster(connection), subscribers)
            }
        };
        let mut revocations = Revocations::builder().max_token_lifetime(self.max_token_lifetime);
        if let Some(claim) = self.version_claim {
            revocations = revocations.token_version_claim(claim);
        }
        let revocations = revocations.build_with(Trust::not_synced());
        let inner = Arc::new(Inner {
            keys: Keys::new(&self.prefix),
            commands,
            trust: revocations.trust().clone(),
            revocations,
            outage: self.outage,
            heartbeat: self.heartbeat,
            timeout: self.timeout,
            generation: AtomicU64::new(UNKNOWN_GENERATION),
            locals: Mutex::new(Vec::new()),
            resyncs: AtomicU64::new(0),
            task: Mutex::new(None),
        });
        let (synced, first_sync) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(subscriber::run(Arc::downgrade(&inner), subscribers, synced));
        *inner.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        let replicas = RedisReplicas { inner };
        match tokio::time::timeout(self.timeout * 3, first_sync).await {
            Ok(Ok(())) => Ok(replicas),
            Ok(Err(_)) | Err(_) => Err(ReplicasError::Unavailable(
                "the first sync with Redis did not finish".into(),
            )),
        }
    }
}

/// `future`, bounded by `timeout`.
async fn timed<T>(
    timeout: Duration,
    future: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, ReplicasError> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| ReplicasError::Unavailable("connecting timed out".into()))?
        .map_err(unavailable)
}

/// The connection commands go through.
#[derive(Clone)]
enum Commands {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Commands {
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        match self.clone() {
            Self::Single(mut c) => cmd.query_async(&mut c).await,
            Self::Cluster(mut c) => cmd.query_async(&mut c).await,
        }
    }

    async fn pipeline<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> redis::RedisResult<T> {
        match self.clone() {
            Self::Single(mut c) => pipe.query_async(&mut c).await,
            Self::Cluster(mut c) => pipe.query_async(&mut c).await,
        }
    }
}

/// The generation while it is not known (before a sync, or when rereading
/// it failed): the shared level is skipped.
const UNKNOWN_GENERATION: u64 = u64::MAX;

/// One replica's connection to the others through Redis. Cheap to clone;
/// clones share the connection, the subscription and the view. See the
/// [module docs](self).
#[derive(Clone)]
pub struct RedisReplicas {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Keys,
    commands: Commands,
    revocations: Revocations,
    trust: Arc<Trust>,
    outage: OutagePolicy,
    heartbeat: Duration,
    timeout: Duration,
    generation: AtomicU64,
    /// The permission caches of this replica that invalidations reach.
    locals: Mutex<Vec<Weak<LocalCache>>>,
    resyncs: AtomicU64,
    task: Mutex<Option<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl fmt::Debug for RedisReplicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplicas")
            .field("channel", &self.inner.keys.channel)
            .field("synced", &self.is_synced())
            .field("outage", &self.inner.outage)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> ReplicasError {
    ReplicasError::Unavailable(e.to_string())
}

impl RedisReplicas {
    /// A builder connecting to `url` (`redis://[user:password@]host:port/db`;
    /// `rediss://` is not enabled in this build).
    pub fn builder(url: impl Into<String>) -> RedisReplicasBuilder {
        Self::builder_for(Target::Single(url.into()))
    }

    /// A builder connecting to a Redis Cluster through any of `nodes`
    /// (`redis://host:port` each); see the [module docs](self#cluster).
    pub fn cluster<I, S>(nodes: I) -> RedisReplicasBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::builder_for(Target::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    fn builder_for(target: Target) -> RedisReplicasBuilder {
        RedisReplicasBuilder {
            target,
            prefix: DEFAULT_PREFIX.to_owned(),
            outage: OutagePolicy::default(),
            heartbeat: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
            version_claim: None,
        }
    }

    /// The DPoP replay cache shared by every replica on this Redis, for
    /// [`Dpop::replay_cache`](crate::jwt::dpop::Dpop::replay_cache): a
    /// proof used once on any replica is refused on all of them. See
    /// [`RedisReplayCache`].
    pub fn dpop_replay_cache(&self) -> RedisReplayCache {
        RedisReplayCache::new(self.clone())
    }

    /// This replica's view of what is revoked, kept current from Redis:
    /// give it to
    /// [`JwtAuthGuardLayer::revocations`](crate::JwtAuthGuardLayer::revocations).
    pub fn revocations(&self) -> Revocations {
        self.inner.revocations.clone()
    }

    /// Whether the view is synced and decisions may rely on it (also
    /// within the outage window). Fit for a readiness probe.
    pub fn is_synced(&self) -> bool {
        self.inner.trust.is_trusted()
    }

    /// How many times the view was loaded in full (the first sync and every
    /// resubscription).
    pub fn syncs(&self) -> u64 {
        self.inner.resyncs.load(Ordering::Relaxed)
    }

    /// Stores `revocation`, then announces it to every replica; this
    /// replica enforces it before the call returns.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached: the caller must retry. If it failed
    /// after storing, replicas pick the revocation up at their next sync;
    /// applying it twice changes nothing.
    pub async fn revoke(&self, revocation: &Revocation) -> Result<(), ReplicasError> {
        let inner = &*self.inner;
        let kept_until = revocation.kept_until(unix_now(), inner.revocations.max_token_lifetime());
        let text = Message::Revoke(revocation.clone()).to_json();
        let mut store = redis::pipe();
        store
            .cmd("ZADD")
            .arg(&inner.keys.revocations)
            .arg(kept_until)
            .arg(&text)
            .ignore();
        self.store_then_announce(Some(&store), &text).await?;
        inner.revocations.apply(revocation);
        Ok(())
    }

    /// Runs `store` (commands on one key: in a cluster, a pipeline must
    /// stay on one node), then publishes `message`, in the order the
    /// module docs give an IAM: a replica that misses the message finds
    /// the state at its next sync.
    async fn store_then_announce(
        &self,
        store: Option<&redis::Pipeline>,
        message: &str,
    ) -> Result<(), ReplicasError> {
        if let Some(store) = store {
            self.try_pipeline::<()>(store).await?;
        }
        self.try_command::<u64>(
            redis::cmd("PUBLISH")
                .arg(&self.inner.keys.channel)
                .arg(message),
        )
        .await?;
        Ok(())
    }

    /// Revokes the token whose `jti` is `jti` (see [`revoke`](Self::revoke)).
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke).
    pub async fn revoke_token(&self, jti: &str, exp: Option<u64>) -> Result<(), ReplicasError> {
        self.revoke(&Revocation::Token {
            jti: jti.to_owned(),
            exp,
        })
        .await
    }

    /// Revokes every token of `user` issued before `before` (unix seconds),
    /// in `tenant` or in every tenant (see [`revoke`](Self::revoke)).
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke).
    pub async fn revoke_user(
        &self,
        user: &str,
        tenant: Option<&str>,
        before: u64,
    ) -> Result<(), ReplicasError> {
        self.revoke(&Revocation::User {
            user: user.to_owned(),
            tenant: tenant.map(str::to_owned),
            before,
        })
        .await
    }

    /// Sets the current token version of `user` (see
    /// [`revoke`](Self::revoke)).
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke).
    pub async fn set_token_version(&self, user: &str, version: u64) -> Result<(), ReplicasError> {
        self.revoke(&Revocation::TokenVersion {
            user: user.to_owned(),
            version,
        })
        .await
    }

    /// Invalidates the cached permissions of `user` in `tenant` under
    /// `issuer`, in Redis and on every replica; this replica's caches drop
    /// them before the call returns.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached: nothing was invalidated anywhere else.
    pub async fn invalidate(
        &self,
        issuer: &str,
        user: &str,
        tenant: Option<&str>,
    ) -> Result<(), ReplicasError> {
        let inner = &*self.inner;
        let text = Message::Invalidate(Invalidation {
            issuer: issuer.to_owned(),
            tenant: tenant.map(str::to_owned),
            user: user.to_owned(),
        })
        .to_json();
        // A caller without a shared entry (an id with a line feed) has
        // only local ones.
        let store = inner.keys.permissions_of(issuer, tenant, user).map(|name| {
            let mut store = redis::pipe();
            store
                .atomic()
                .cmd("HINCRBY")
                .arg(&name)
                .arg("ver")
                .arg(1)
                .ignore()
                // The counter must outlive any entry written before it
                // moved.
                .cmd("EXPIRE")
                .arg(&name)
                .arg(MARKER_SECONDS)
                .ignore();
            store
        });
        self.store_then_announce(store.as_ref(), &text).await?;
        self.invalidate_locally(Some(issuer), user, tenant).await;
        Ok(())
    }

    /// Invalidates every cached permission set, in Redis and on every
    /// replica (after a catalogue change, say).
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached: nothing was invalidated anywhere else.
    pub async fn invalidate_all(&self) -> Result<(), ReplicasError> {
        let inner = &*self.inner;
        let generation: u64 = self
            .try_command(redis::cmd("INCR").arg(&inner.keys.generation))
            .await?;
        inner.generation.fetch_max(generation, Ordering::SeqCst);
        self.invalidate_all_locally();
        self.store_then_announce(None, &Message::InvalidateAll.to_json())
            .await
    }

    pub(crate) fn register(&self, local: &Arc<LocalCache>) {
        self.inner
            .locals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(local));
    }

    fn locals(&self) -> Vec<Arc<LocalCache>> {
        let mut locals = self
            .inner
            .locals
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        locals.retain(|l| l.strong_count() > 0);
        locals.iter().filter_map(Weak::upgrade).collect()
    }

    async fn invalidate_locally(&self, issuer: Option<&str>, user: &str, tenant: Option<&str>) {
        for local in self.locals() {
            local.invalidate(issuer, user, tenant).await;
        }
    }

    fn invalidate_all_locally(&self) {
        for local in self.locals() {
            local.invalidate_all();
        }
    }

    /// The shared cache's generation, `None` while it is not known.
    pub(crate) fn generation(&self) -> Option<u64> {
        match self.inner.generation.load(Ordering::SeqCst) {
            UNKNOWN_GENERATION => None,
            generation => Some(generation),
        }
    }

    /// Runs one command; `None` (logged) when Redis fails or times out.
    pub(crate) async fn command<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        match tokio::time::timeout(self.inner.timeout, self.inner.commands.query::<T>(cmd)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                tracing::debug!(target: "iam_guard::replicas", error = %e, "a Redis command failed");
                None
            }
            Err(_) => {
                tracing::debug!(target: "iam_guard::replicas", "a Redis command timed out");
                None
            }
        }
    }

    /// Runs a pipeline; `None` (logged) when Redis fails or times out.
    pub(crate) async fn pipeline<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Option<T> {
        self.try_pipeline(pipe)
            .await
            .map_err(|e| {
                tracing::debug!(target: "iam_guard::replicas", error = %e, "a Redis pipeline failed");
            })
            .ok()
    }

    async fn try_command<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, ReplicasError> {
        tokio::time::timeout(self.inner.timeout, self.inner.commands.query::<T>(cmd))
            .await
            .map_err(|_| ReplicasError::Unavailable("Redis did not answer in time".into()))?
            .map_err(unavailable)
    }

    async fn try_pipeline<T: FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, ReplicasError> {
        tokio::time::timeout(self.inner.timeout, self.inner.commands.pipeline::<T>(pipe))
            .await
            .map_err(|_| ReplicasError::Unavailable("Redis did not answer in time".into()))?
            .map_err(unavailable)
    }
}

/// How long an invalidation counter is kept (one day): longer than any
/// sensible permission TTL, so that no entry written before the counter
/// moved can outlive it.
const MARKER_SECONDS: u64 = 24 * 60 * 60;
