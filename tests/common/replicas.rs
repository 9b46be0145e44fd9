//! What the replica suites share (tests/replicas.rs on one server,
//! tests/replicas_cluster.rs on a cluster): a guard with a replica's
//! revocations, a permission source the test changes, polling for
//! propagation, and the documented key of a shared entry.

use std::{
    future::Future,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::Router;
use http::StatusCode;
use iam_guard::{
    permissions::{cache::CachedSource, source::PermissionFuture},
    replicas::RedisReplicas,
    test_util::TestIam,
    CompiledPermissions, JwtAuthGuardLayer, PermissionSource, Principal,
};

use super::{app, bearer, call};

/// The issuer of the callers the permission tests load for.
pub const ISSUER: &str = "https://iam.example.com";
/// The default channel.
pub const CHANNEL: &str = "iam-guard:events";
/// The default revocations sorted set.
pub const REVOCATIONS: &str = "iam-guard:revocations";

/// The current unix second.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Polls `check` until it holds, for at most `within`: propagation is
/// awaited, never timed.
pub async fn eventually_within<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`eventually_within`] 10 s.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(10), check).await;
}

/// `GET /me` behind a guard enforcing `replicas`' revocations.
pub fn guarded(iam: &TestIam, replicas: &RedisReplicas) -> Router {
    app(JwtAuthGuardLayer::new(iam.verifier()).revocations(replicas.revocations()))
}

/// The status of `GET /me` with `token`.
pub async fn status(app: &Router, token: &str) -> StatusCode {
    call(app, bearer(token)).await.0
}

/// A permission source whose answer the test changes, counting its loads.
#[derive(Default)]
pub struct Grants {
    permission: Mutex<String>,
    loads: AtomicUsize,
    /// How long a load takes, so that concurrent misses overlap.
    delay: Duration,
}

impl Grants {
    /// Grants `permission`, at once.
    pub fn new(permission: &str) -> Arc<Self> {
        Self::slow(permission, Duration::ZERO)
    }

    /// Grants `permission`, each load taking `delay`.
    pub fn slow(permission: &str, delay: Duration) -> Arc<Self> {
        let grants = Arc::new(Self {
            delay,
            ..Self::default()
        });
        grants.set(permission);
        grants
    }

    /// Grants `permission` from now on.
    pub fn set(&self, permission: &str) {
        *self.permission.lock().unwrap() = permission.to_owned();
    }

    /// Loads so far.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

impl PermissionSource for Grants {
    fn load<'a>(&'a self, _principal: &'a Principal) -> PermissionFuture<'a> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let mut perms = CompiledPermissions::deny_all();
        perms.grant_permission(self.permission.lock().unwrap().clone());
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Ok(Arc::new(perms))
        })
    }
}

/// `grants` behind a cache shared through `replicas`.
pub fn shared(grants: &Arc<Grants>, replicas: &RedisReplicas) -> CachedSource<Arc<Grants>> {
    CachedSource::builder(grants.clone())
        .shared(replicas)
        .build()
}

/// Whether `source` grants `who` `permission`.
pub async fn holds(source: &impl PermissionSource, who: &Principal, permission: &str) -> bool {
    source.load(who).await.unwrap().has_permission(permission)
}

/// `printf '%s\n%s\n%s' issuer tenant user | sha256sum`, as the README
/// tells an IAM in another language to compute the entry's key.
pub fn documented_key(issuer: &str, tenant: &str, user: &str) -> String {
    let mut printf = Command::new("printf")
        .args(["%s\\n%s\\n%s", issuer, tenant, user])
        .stdout(Stdio::piped())
        .spawn()
        .expect("printf");
    let out = Command::new("sha256sum")
        .stdin(printf.stdout.take().expect("printf's output"))
        .output()
        .expect("sha256sum");
    assert!(printf.wait().expect("printf exits").success());
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("iam-guard:permissions:{}", &hex[..64])
}
