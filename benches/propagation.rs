//! How long a revocation and an invalidation take to reach another replica
//! in another OS process, through a real `redis-server`.
//!
//! The parent starts `redis-server` on a free loopback port, a `TestIam`
//! (loopback JWKS) and its own `RedisReplicas`, then runs this binary again
//! as the other replica (`IAM_GUARD_PROPAGATION_ROLE=replica`, with the
//! Redis URL and the issuer in the environment). The child connects its
//! own `RedisReplicas` and serves on a free loopback port:
//!
//! - `GET /me` behind `JwtAuthGuardLayer::new(verifier)
//!   .revocations(replicas.revocations())`, the verifier discovering the
//!   parent's JWKS like `TestIam::verifier` does;
//! - `GET /perm`, unguarded: the one permission of a fixed caller, loaded
//!   through a shared `CachedSource` over a source that grants `v<n>` on
//!   its n-th load, so a fresh load shows as a new value.
//!
//! Each of the N iterations (`PROPAGATION_N`, default 500) measures, from
//! just before the parent's call to just after the child's first changed
//! answer:
//!
//! - revocation: a token with a fresh `jti` is accepted (200, and cached
//!   by the child's guard), then `revoke_token(jti, exp)` on the parent,
//!   and the child is polled until it answers 401;
//! - invalidation: `/perm` is read, then `invalidate(issuer, user,
//!   tenant)` on the parent, and `/perm` is polled until its value changes
//!   (the child dropped its local entry, found the Redis entry stale and
//!   asked its source).
//!
//! Polls go back to back over one keep-alive HTTP/1.1 connection, so a
//! figure is late by at most one poll round trip (also printed: the median
//! of plain GETs). The figures include the parent's own Redis round trip
//! (`ZADD`+`PUBLISH`, or `HINCRBY`+`EXPIRE`+`PUBLISH`), printed on its own
//! as "its call": when the first poll already sees the change (about one
//! poll per propagation), the message arrived before the call returned.
//!
//! `cargo bench --all-features --bench propagation`
//! (`PROPAGATION_N=2000 cargo bench --all-features --bench propagation`)
//!
//! Needs `redis-server` on PATH (`tests/support/install-redis.sh`). The
//! child and the server are killed on exit, panics included; the child
//! also exits when the parent's end of its stdin closes.

// A std-only helper written for the tests, shared as is.
#[allow(unreachable_pub)]
#[path = "../tests/common/redis.rs"]
mod redis_server;

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use axum::{extract::State, routing::get, Router};
use iam_guard::{
    permissions::{cache::CachedSource, source::PermissionFuture},
    replicas::{unix_now, RedisReplicas},
    test_util::{principal, TestIam, TEST_AUDIENCE},
    Algorithm, CompiledPermissions, JwksFetcher, JwtAuthGuardLayer, PermissionSource, Principal,
    TokenValidation, Verifier,
};
use redis_server::RedisServer;
use serde_json::json;

const ROLE_ENV: &str = "IAM_GUARD_PROPAGATION_ROLE";
const REDIS_ENV: &str = "IAM_GUARD_PROPAGATION_REDIS_URL";
const ISSUER_ENV: &str = "IAM_GUARD_PROPAGATION_ISSUER";

/// The caller whose permissions `/perm` shows and the parent invalidates.
const PERM_ISSUER: &str = "https://iam.example.com";
const PERM_USER: &str = "user-perm";
const PERM_TENANT: &str = "school-1";

/// A propagation that takes longer than this fails the run.
const GIVE_UP: Duration = Duration::from_secs(10);

/// Plain GETs timed for the poll round trip.
const RTT_SAMPLES: usize = 1000;

fn main() {
    if std::env::var(ROLE_ENV).as_deref() == Ok("replica") {
        replica();
    } else {
        parent();
    }
}

// --- the child replica -------------------------------------------------

/// Grants `v<n>` on its n-th load.
#[derive(Default)]
struct Fresh {
    loads: AtomicU64,
}

impl PermissionSource for Fresh {
    fn load<'a>(&'a self, _principal: &'a Principal) -> PermissionFuture<'a> {
        let n = self.loads.fetch_add(1, Ordering::SeqCst) + 1;
        let mut perms = CompiledPermissions::deny_all();
        perms.grant_permission(format!("v{n}"));
        Box::pin(std::future::ready(Ok(Arc::new(perms))))
    }
}

async fn me(p: Principal) -> String {
    p.user_id().to_owned()
}

async fn perm(State((source, who)): State<(CachedSource<Fresh>, Principal)>) -> String {
    let perms = source.load(&who).await.expect("the shared cache answers");
    perms
        .permissions()
        .iter()
        .next()
        .cloned()
        .unwrap_or_default()
}

fn replica() {
    let url = std::env::var(REDIS_ENV).expect("the Redis URL");
    let issuer = std::env::var(ISSUER_ENV).expect("the issuer");
    // Exit with the parent: it holds the other end of stdin.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let replicas = RedisReplicas::builder(url)
            .connect()
            .await
            .expect("the replica connects to Redis");
        // What `TestIam::verifier` builds, from the issuer alone.
        let fetcher = JwksFetcher::builder()
            .retry_after_failure(Duration::from_millis(50))
            .discover(&issuer)
            .expect("a valid issuer URL");
        let validation = TokenValidation::new(&issuer)
            .audience([TEST_AUDIENCE])
            .algorithms([Algorithm::RS256]);
        let verifier = Verifier::new(fetcher, validation);
        let source = CachedSource::builder(Fresh::default())
            .shared(&replicas)
            .build();
        let who = principal(json!({"iss": PERM_ISSUER, "sub": PERM_USER, "tenantId": PERM_TENANT}));
        let app = Router::new()
            .route("/me", get(me))
            .layer(JwtAuthGuardLayer::new(verifier).revocations(replicas.revocations()))
            .route("/perm", get(perm))
            .with_state((source, who));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{port}").unwrap();
        out.flush().unwrap();
        drop(out);
        axum::serve(listener, app).await.expect("serve");
    });
}

// --- the parent --------------------------------------------------------

/// The child replica, killed on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One keep-alive connection to the child (the pool keeps at most one
/// idle connection, and requests go one at a time).
struct Poller {
    client: reqwest::Client,
    base: String,
}

impl Poller {
    async fn me(&self, token: &str) -> u16 {
        let res = self
            .client
            .get(format!("{}/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /me");
        let status = res.status().as_u16();
        // Read the body to the end, so that the connection is reused.
        res.bytes().await.expect("the /me body");
        status
    }

    async fn perm(&self) -> String {
        let res = self
            .client
            .get(format!("{}/perm", self.base))
            .send()
            .await
            .expect("GET /perm");
        assert_eq!(res.status().as_u16(), 200, "GET /perm");
        res.text().await.expect("the /perm body")
    }
}

/// The nearest-rank percentile of sorted `samples`, in ms.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    ms(sorted[rank - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn row(name: &str, samples: &mut [Duration]) {
    samples.sort();
    println!(
        "{name:<14}{:>9.3}{:>9.3}{:>9.3}{:>9.3}",
        percentile(samples, 0.50),
        percentile(samples, 0.90),
        percentile(samples, 0.99),
        ms(*samples.last().expect("samples")),
    );
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    ms(samples[samples.len() / 2])
}

fn parent() {
    let n: usize = std::env::var("PROPAGATION_N")
        .ok()
        .map_or(500, |v| v.parse().expect("PROPAGATION_N is a count"));
    assert!(n > 0, "PROPAGATION_N must be at least 1");
    let redis = RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let iam = TestIam::start().await;
        let replicas = RedisReplicas::builder(redis.url())
            .connect()
            .await
            .expect("the parent connects to Redis");
        let mut child = ChildGuard(
            Command::new(std::env::current_exe().expect("this binary's path"))
                .env(ROLE_ENV, "replica")
                .env(REDIS_ENV, redis.url())
                .env(ISSUER_ENV, iam.issuer())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start the child replica"),
        );
        let stdout = child.0.stdout.take().expect("the child's stdout");
        // Blocking: off the runtime, which serves the JWKS meanwhile.
        let port = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout)
                .read_line(&mut line)
                .expect("the child's port");
            line.trim()
                .parse::<u16>()
                .unwrap_or_else(|_| panic!("the child replica did not start (it printed {line:?})"))
        })
        .await
        .unwrap();
        let poller = Poller {
            client: reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(1)
                .build()
                .expect("an HTTP client"),
            base: format!("http://127.0.0.1:{port}"),
        };

        // Warm up: the child fetches the JWKS, caches a token and /perm.
        let warm = iam.mint(json!({"sub": "user-rtt"}));
        assert_eq!(poller.me(&warm).await, 200, "the child accepts our tokens");
        let first = poller.perm().await;
        assert_eq!(first, "v1");
        let mut rtt_me = Vec::with_capacity(RTT_SAMPLES);
        let mut rtt_perm = Vec::with_capacity(RTT_SAMPLES);
        for _ in 0..RTT_SAMPLES {
            let t0 = Instant::now();
            assert_eq!(poller.me(&warm).await, 200);
            rtt_me.push(t0.elapsed());
            let t0 = Instant::now();
            assert_eq!(poller.perm().await, first, "nothing invalidated yet");
            rtt_perm.push(t0.elapsed());
        }

        let mut revocation = Vec::with_capacity(n);
        let mut invalidation = Vec::with_capacity(n);
        // How long the parent's own call took, part of each figure.
        let mut revoke_calls = Vec::with_capacity(n);
        let mut invalidate_calls = Vec::with_capacity(n);
        let mut polls = 0u64;
        for i in 0..n {
            let jti = format!("propagation-{i}");
            let exp = unix_now() + 600;
            let token = iam.mint(json!({"sub": "user-rev", "jti": jti, "exp": exp}));
            assert_eq!(poller.me(&token).await, 200, "before the revocation");
            let t0 = Instant::now();
            replicas
                .revoke_token(&jti, Some(exp))
                .await
                .expect("revoke");
            revoke_calls.push(t0.elapsed());
            loop {
                polls += 1;
                match poller.me(&token).await {
                    401 => break,
                    200 => assert!(t0.elapsed() < GIVE_UP, "revocation {i} never arrived"),
                    other => panic!("GET /me answered {other}"),
                }
            }
            revocation.push(t0.elapsed());

            let before = poller.perm().await;
            let t0 = Instant::now();
            replicas
                .invalidate(PERM_ISSUER, PERM_USER, Some(PERM_TENANT))
                .await
                .expect("invalidate");
            invalidate_calls.push(t0.elapsed());
            loop {
                polls += 1;
                if poller.perm().await != before {
                    break;
                }
                assert!(t0.elapsed() < GIVE_UP, "invalidation {i} never arrived");
            }
            invalidation.push(t0.elapsed());
        }

        println!("propagation to a replica in another process (N = {n}), ms:");
        println!("{:<14}{:>9}{:>9}{:>9}{:>9}", "", "p50", "p90", "p99", "max");
        row("revocation", &mut revocation);
        row("  its call", &mut revoke_calls);
        row("invalidation", &mut invalidation);
        row("  its call", &mut invalidate_calls);
        println!(
            "poll round trip (median of {RTT_SAMPLES} GETs): /me {:.3} ms, /perm {:.3} ms; \
             {:.1} polls per propagation",
            median(rtt_me),
            median(rtt_perm),
            polls as f64 / (2 * n) as f64,
        );
        drop(child);
        drop(replicas);
    });
    drop(rt);
    drop(redis);
}
