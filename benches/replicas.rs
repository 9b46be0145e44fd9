//! What each level of a shared permission cache costs a load, measured in
//! one run against a real `redis-server` this binary starts on a free
//! loopback port (and kills at the end):
//!
//! - `replicas/local_hit`: `CachedSource::load` with the shared level on
//!   (`.shared(&replicas)`), answered by this replica's moka cache;
//! - `replicas/redis_hit`: the same load answered by the shared level. The
//!   cache is built with `.max_entries(0)`, which disables moka's map, so
//!   every load misses locally, reads the entry's Redis hash over loopback
//!   (one `HMGET`) and parses the stored permissions document;
//! - `replicas/source_load`: the wrapped source alone, for reference (a
//!   `CatalogueSource` over the students fixture, which memoizes the
//!   compilation per role set: the floor, not a remote IAM).
//!
//! Loads are timed in batches inside a task on the tokio runtime's one
//! worker thread, where a service's handlers and the Redis connection's
//! tasks run, so no figure includes a hop between threads; each load
//! also spends tokio's cooperative budget, so that the batch yields to the
//! subscription (its heartbeat) every 128 loads, as a service's requests
//! would.
//!
//! The inner sources count their loads. After the run one line per cached
//! case checks that the level measured is the one named: the source was
//! asked once (the warm-up) and Redis received one `HMGET` per `redis_hit`
//! load and none per `local_hit` load (`INFO commandstats`); the bench
//! panics otherwise.
//!
//! `cargo bench --all-features --bench replicas`
//!
//! Needs `redis-server` on PATH (`tests/support/install-redis.sh`).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

// A std-only helper written for the tests, shared as is.
#[allow(unreachable_pub)]
#[path = "../tests/common/redis.rs"]
mod redis_server;

use std::{
    cell::Cell,
    hint::black_box,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, Criterion};
use iam_guard::{
    permissions::{cache::CachedSource, source::PermissionFuture},
    replicas::RedisReplicas,
    test_util::principal,
    Catalogue, CatalogueSource, PermissionSource, Principal,
};
use redis_server::RedisServer;
use serde_json::json;
use tokio::runtime::Runtime;

const ISSUER: &str = "https://iam.example.com";

/// Long enough that no entry expires during a run.
const TTL: Duration = Duration::from_secs(3600);

/// A source that counts how often it is asked.
struct Counted<S> {
    inner: S,
    loads: AtomicU64,
}

impl<S> Counted<S> {
    fn new(inner: S) -> Arc<Self> {
        Arc::new(Self {
            inner,
            loads: AtomicU64::new(0),
        })
    }

    fn loads(&self) -> u64 {
        self.loads.load(Ordering::SeqCst)
    }
}

impl<S: PermissionSource> PermissionSource for Counted<S> {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(principal)
    }
}

fn students() -> CatalogueSource {
    CatalogueSource::new(Catalogue::students_fixture())
}

/// A teacher of school-1; each case has its own user, hence its own entry.
fn caller(user: &str) -> Principal {
    principal(
        json!({"iss": ISSUER, "sub": user, "tenantId": "school-1", "roles": ["internal_teacher"]}),
    )
}

/// Times `iters` loads inside a task on a worker of `rt`.
fn on_worker<S>(rt: &Runtime, source: &S, who: &Principal, iters: u64) -> Duration
where
    S: PermissionSource + Clone,
{
    let (source, who) = (source.clone(), who.clone());
    let batch = rt.spawn(async move {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(source.load(&who).await.expect("a load"));
            // A local hit never waits: without this the batch would
            // starve the subscription's heartbeat past its timeout during
            // criterion's warm-up, and the resync would empty the cache.
            tokio::task::consume_budget().await;
        }
        start.elapsed()
    });
    rt.block_on(batch).expect("the timed task")
}

/// `HMGET` calls Redis has served so far.
fn hmget_calls(redis: &RedisServer) -> u64 {
    let stats = redis.cmd(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_hmget:calls="))
        .map_or(0, |rest| {
            rest.split(',').next().unwrap_or("0").parse().unwrap_or(0)
        })
}

/// Checks (and prints) that a cached case was served by the level it is
/// named after: one source load in all (the warm-up), and `per_load`
/// Redis reads for each of its `loads`.
fn check(
    case: &str,
    source: &Counted<CatalogueSource>,
    (loads, hmgets): (u64, u64),
    per_load: u64,
) {
    let source_loads = source.loads();
    println!("check {case}: {loads} loads, {source_loads} source load(s), {hmgets} Redis HMGET(s)");
    assert_eq!(source_loads, 1, "{case}: the source was asked again");
    assert_eq!(hmgets, loads * per_load, "{case}: not the level measured");
}

fn bench(c: &mut Criterion) {
    let redis = RedisServer::start();
    // Worker threads keep the subscription (and its heartbeat) running
    // between samples, when nothing is blocked on the runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let replicas = rt
        .block_on(RedisReplicas::builder(redis.url()).connect())
        .expect("connect to the bench's redis-server");

    let local_source = Counted::new(students());
    let local = CachedSource::builder(local_source.clone())
        .shared(&replicas)
        .ttl(TTL)
        .build();
    let redis_source = Counted::new(students());
    let via_redis = CachedSource::builder(redis_source.clone())
        .shared(&replicas)
        .max_entries(0)
        .ttl(TTL)
        .build();
    let bare = Arc::new(students());
    let (local_caller, redis_caller, bare_caller) = (
        caller("bench-local"),
        caller("bench-redis"),
        caller("bench-bare"),
    );

    // Warm-up: the one source load of each cached case, stored in Redis.
    for (source, who) in [(&local, &local_caller), (&via_redis, &redis_caller)] {
        let perms = rt.block_on(source.load(who)).unwrap();
        assert!(
            perms.can_read("students", "anagraphic"),
            "a teacher's grants"
        );
    }
    let via_bare = rt.block_on(bare.load(&bare_caller)).unwrap();
    assert!(via_bare.can_read("students", "anagraphic"));

    let mut g = c.benchmark_group("replicas");
    let loads = Cell::new(0u64);
    let before = hmget_calls(&redis);
    g.bench_function("local_hit", |b| {
        b.iter_custom(|iters| {
            loads.set(loads.get() + iters);
            on_worker(&rt, &local, &local_caller, iters)
        })
    });
    let local_stats = (loads.replace(0), hmget_calls(&redis) - before);

    let before = hmget_calls(&redis);
    g.bench_function("redis_hit", |b| {
        b.iter_custom(|iters| {
            loads.set(loads.get() + iters);
            on_worker(&rt, &via_redis, &redis_caller, iters)
        })
    });
    let redis_stats = (loads.replace(0), hmget_calls(&redis) - before);

    g.bench_function("source_load", |b| {
        b.iter_custom(|iters| on_worker(&rt, &bare, &bare_caller, iters))
    });
    g.finish();

    check("replicas/local_hit", &local_source, local_stats, 0);
    check("replicas/redis_hit", &redis_source, redis_stats, 1);
    // More than one means the subscription was lost and resynced.
    println!("check: {} sync(s) with Redis", replicas.syncs());
    // The replicas' tasks stop before the server does.
    drop((local, via_redis, replicas));
    drop(rt);
    drop(redis);
}

criterion_group!(benches, bench);
criterion_main!(benches);
