//! Several replicas on one real `redis-server`: revocations and
//! invalidations that reach every replica, the shared permission cache,
//! the resync after a lost subscription, outages, temporal expiry, and
//! bad input on the channel. Each "replica" is its own `RedisReplicas`
//! connection with its own caches and guard; separate OS processes are in
//! `tests/example_school_replicas.rs`.
#![cfg(all(feature = "test-util", feature = "redis"))]

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::{
    assert_invalid_token, bearer, call_json,
    redis::RedisServer,
    replicas::{
        documented_key, eventually, guarded, holds, now, shared, status, Grants, CHANNEL, ISSUER,
    },
};
use http::StatusCode;
use iam_guard::{
    permissions::{cache::CachedSource, source::PermissionError},
    replicas::{OutagePolicy, RedisReplicas},
    test_util::{principal, TestIam},
    Catalogue, CatalogueSource, CompiledPermissions, PermissionSource, Principal,
};
use serde_json::{json, Value};

async fn replica(redis: &RedisServer) -> RedisReplicas {
    replica_with(redis, OutagePolicy::default()).await
}

async fn replica_with(redis: &RedisServer, policy: OutagePolicy) -> RedisReplicas {
    RedisReplicas::builder(redis.url())
        .heartbeat(Duration::from_millis(200))
        .timeout(Duration::from_millis(500))
        .outage_policy(policy)
        .connect()
        .await
        .expect("a replica connects to the test redis-server")
}

fn caller(tenant: &str) -> Principal {
    principal(json!({"iss": ISSUER, "sub": "user-1", "tenantId": tenant}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_replica_reaches_the_other_even_for_cached_tokens() {
    let redis = RedisServer::start();
    let iam = TestIam::start().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let (app_a, app_b) = (guarded(&iam, &a), guarded(&iam, &b));
    let t = now();
    let leaked = iam.mint(json!({"jti": "leaked-1", "iat": t - 30}));
    let old = iam.mint(json!({"jti": "old-1", "iat": t - 30}));
    for token in [&leaked, &old] {
        assert_eq!(status(&app_a, token).await, StatusCode::OK);
        assert_eq!(status(&app_b, token).await, StatusCode::OK);
    }

    a.revoke_token("leaked-1", Some(t + 300)).await.unwrap();
    assert_eq!(
        status(&app_a, &leaked).await,
        StatusCode::UNAUTHORIZED,
        "the revoking replica enforces it before revoke returns"
    );
    eventually("replica b refuses the revoked jti", || async {
        status(&app_b, &leaked).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_invalid_token(&app_b, &leaked, "revoked jti on b").await;
    assert_eq!(status(&app_b, &old).await, StatusCode::OK, "another jti");

    // Logout everywhere: every older token dies on both, a newer one works.
    b.revoke_user("user-1", None, t).await.unwrap();
    let newer = iam.mint(json!({"iat": t}));
    eventually("replica a refuses user-1's older tokens", || async {
        status(&app_a, &old).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(status(&app_b, &old).await, StatusCode::UNAUTHORIZED);
    for app in [&app_a, &app_b] {
        assert_eq!(status(app, &newer).await, StatusCode::OK, "issued after");
    }
    let someone_else = iam.mint(json!({"sub": "user-2", "iat": t - 30}));
    assert_eq!(status(&app_a, &someone_else).await, StatusCode::OK);

    // Stored for later replicas, scored by when each may be forgotten.
    let stored = redis.cmd(&["ZRANGE", "iam-guard:revocations", "0", "-1", "WITHSCORES"]);
    let lines: Vec<&str> = stored.lines().collect();
    assert_eq!(lines.len(), 4, "{stored}");
    assert!(
        lines.contains(
            &format!(
                r#"{{"v":1,"type":"revoke_token","jti":"leaked-1","exp":{}}}"#,
                t + 300
            )
            .as_str()
        ),
        "{stored}"
    );
    assert!(lines.contains(&(t + 300).to_string().as_str()), "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_starts_later_enforces_what_was_revoked_before_it() {
    let redis = RedisServer::start();
    let iam = TestIam::start().await;
    let a = replica(&redis).await;
    let t = now();
    a.revoke_user("user-1", None, t).await.unwrap();
    a.revoke_token("other-jti", None).await.unwrap();
    let late = replica(&redis).await;
    assert_eq!(late.revocations().len(), 2, "loaded in full by connect");
    let app = guarded(&iam, &late);
    // No waiting: connect returned with the view loaded.
    assert_invalid_token(&app, &iam.mint(json!({"iat": t - 1})), "older").await;
    assert_invalid_token(
        &app,
        &iam.mint(json!({"sub": "x", "jti": "other-jti"})),
        "jti",
    )
    .await;
    assert_eq!(
        status(&app, &iam.mint(json!({"iat": t}))).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iam_in_any_language_revokes_and_invalidates_with_plain_commands() {
    let redis = RedisServer::start();
    let iam = TestIam::start().await;
    let replicas = replica(&redis).await;
    let app = guarded(&iam, &replicas);
    let token = iam.mint(json!({"jti": "from-python"}));
    assert_eq!(status(&app, &token).await, StatusCode::OK);

    let message = r#"{"v":1,"type":"revoke_token","jti":"from-python"}"#;
    let exp = (now() + 300).to_string();
    assert_eq!(
        redis.cmd(&["ZADD", "iam-guard:revocations", &exp, message]),
        "1"
    );
    assert_eq!(redis.publish(CHANNEL, message), 1, "one subscriber");
    eventually("the published revocation is enforced", || async {
        status(&app, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;

    let grants = Grants::new("before");
    let source = shared(&grants, &replicas);
    let who = caller("school-1");
    assert!(holds(&source, &who, "before").await);
    let key = documented_key(ISSUER, "school-1", "user-1");
    let doc: Value = serde_json::from_str(&redis.cmd(&["HGET", &key, "doc"])).unwrap();
    assert_eq!(doc["v"], 1, "{doc}");
    assert_eq!(
        doc["permissions"]["permissions"],
        json!(["before"]),
        "{doc}"
    );

    grants.set("after");
    assert_eq!(redis.cmd(&["HINCRBY", &key, "ver", "1"]), "1");
    redis.publish(
        CHANNEL,
        r#"{"v":1,"type":"invalidate","issuer":"https://iam.example.com","tenant":"school-1","user":"user-1"}"#,
    );
    eventually(
        "the published invalidation reaches the local cache",
        || async { holds(&source, &who, "after").await },
    )
    .await;
    assert_eq!(grants.loads(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_cache_answers_other_replicas_and_keeps_issuers_and_tenants_apart() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let (grants_a, grants_b) = (Grants::new("p"), Grants::new("p"));
    let (source_a, source_b) = (shared(&grants_a, &a), shared(&grants_b, &b));
    let who = caller("school-1");

    assert!(holds(&source_a, &who, "p").await);
    assert!(holds(&source_a, &who, "p").await);
    assert_eq!(grants_a.loads(), 1, "the second load is local");
    assert!(holds(&source_b, &who, "p").await);
    assert_eq!(grants_b.loads(), 0, "replica b was answered by Redis");

    // Another tenant, another issuer: never the same entry.
    assert!(holds(&source_b, &caller("school-2"), "p").await);
    let other_issuer = principal(
        json!({"iss": "https://other.example.com", "sub": "user-1", "tenantId": "school-1"}),
    );
    assert!(holds(&source_b, &other_issuer, "p").await);
    assert_eq!(grants_b.loads(), 2);

    // Concurrent misses of one caller on one replica: one load.
    let c = replica(&redis).await;
    let grants_c = Grants::slow("p", Duration::from_millis(200));
    let source_c = shared(&grants_c, &c);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (source, who) = (source_c.clone(), caller("school-3"));
            tokio::spawn(async move { source.load(&who).await.map(|p| p.has_permission("p")) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(true));
    }
    assert_eq!(grants_c.loads(), 1, "single-flight per replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_reaches_every_replica_and_the_shared_entry() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let grants = Grants::new("old");
    let (source_a, source_b) = (shared(&grants, &a), shared(&grants, &b));
    let who = caller("school-1");
    assert!(holds(&source_a, &who, "old").await);
    assert!(holds(&source_b, &who, "old").await);
    assert_eq!(grants.loads(), 1);

    grants.set("new");
    a.invalidate(ISSUER, "user-1", Some("school-1"))
        .await
        .unwrap();
    assert!(
        holds(&source_a, &who, "new").await,
        "at once on the invalidating replica"
    );
    eventually("replica b drops its local entry", || async {
        holds(&source_b, &who, "new").await
    })
    .await;
    assert_eq!(grants.loads(), 2, "b read a's fresh shared entry");

    // Everything, on every replica.
    grants.set("newest");
    b.invalidate_all().await.unwrap();
    assert!(holds(&source_b, &who, "newest").await);
    eventually("replica a drops everything", || async {
        holds(&source_a, &who, "newest").await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_never_lets_a_missed_message_through() {
    let redis = RedisServer::start();
    let iam = TestIam::start().await;
    let b = replica(&redis).await;
    let app = guarded(&iam, &b);
    let grants = Grants::new("stale");
    let source = shared(&grants, &b);
    let who = caller("school-1");
    let token = iam.mint(json!({"jti": "missed"}));
    assert_eq!(status(&app, &token).await, StatusCode::OK);
    assert!(holds(&source, &who, "stale").await);
    let syncs = b.syncs();

    // Writes whose messages b never gets: stored, never published.
    grants.set("fresh");
    let exp = (now() + 300).to_string();
    let message = r#"{"v":1,"type":"revoke_token","jti":"missed"}"#;
    redis.cmd(&["ZADD", "iam-guard:revocations", &exp, message]);
    let key = documented_key(ISSUER, "school-1", "user-1");
    redis.cmd(&["HINCRBY", &key, "ver", "1"]);
    assert_eq!(
        status(&app, &token).await,
        StatusCode::OK,
        "nothing announced yet"
    );
    assert!(holds(&source, &who, "stale").await, "nothing announced yet");

    // The server drops b's subscription, as it would on a buffer overflow.
    assert_eq!(redis.kill_pubsub_clients(), 1);
    eventually("b resubscribes and resyncs", || async { b.syncs() > syncs }).await;
    redis.wait_for_subscribers(CHANNEL, 1, Duration::from_secs(10));
    assert_eq!(
        status(&app, &token).await,
        StatusCode::UNAUTHORIZED,
        "loaded by the resync"
    );
    assert!(
        holds(&source, &who, "fresh").await,
        "the local entry older than the resubscription is gone, the shared one too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_the_last_synced_state_serves_for_the_window_then_503() {
    let mut redis = RedisServer::start();
    let iam = TestIam::start().await;
    let window = OutagePolicy::ServeLastSynced(Duration::from_secs(1));
    let a = replica_with(&redis, window).await;
    let app = guarded(&iam, &a);
    let grants = Grants::new("p");
    let source = shared(&grants, &a);
    let t = now();
    let revoked = iam.mint(json!({"jti": "gone", "iat": t - 10}));
    let fine = iam.mint(json!({"jti": "fine", "iat": t - 10}));
    a.revoke_token("gone", Some(t + 300)).await.unwrap();
    assert_eq!(status(&app, &fine).await, StatusCode::OK);

    redis.stop();
    assert!(
        a.revoke_token("during", None).await.is_err(),
        "a write while Redis is down fails, never silently"
    );
    // Until the window ends: the last synced state, revocations included.
    let mut saw_unavailable = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        assert_ne!(
            status(&app, &revoked).await,
            StatusCode::OK,
            "a revoked token, never accepted"
        );
        let (code, _, body) = call_json(&app, bearer(&fine)).await;
        if code == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["code"], "IAM_UNAVAILABLE", "{body}");
            saw_unavailable = true;
            break;
        }
        assert_eq!(code, StatusCode::OK, "inside the window: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_unavailable, "503 once the window is over");
    assert!(!a.is_synced());
    assert!(
        matches!(
            source.load(&caller("school-9")).await,
            Err(PermissionError::Unavailable(_))
        ),
        "permissions are not confirmed either"
    );

    // Restarted empty (persistence is off): the IAM writes what it revoked
    // meanwhile, the replica resyncs and enforces it.
    redis.restart();
    let late = iam.mint(json!({"jti": "revoked-during-outage"}));
    let message = r#"{"v":1,"type":"revoke_token","jti":"revoked-during-outage"}"#;
    let exp = (now() + 300).to_string();
    redis.cmd(&["ZADD", "iam-guard:revocations", &exp, message]);
    redis.publish(CHANNEL, message);
    eventually("the replica resyncs", || async { a.is_synced() }).await;
    eventually(
        "the revocation written during the outage is enforced",
        || async { status(&app, &late).await == StatusCode::UNAUTHORIZED },
    )
    .await;
    assert_eq!(status(&app, &fine).await, StatusCode::OK);
    assert_eq!(
        status(&app, &revoked).await,
        StatusCode::UNAUTHORIZED,
        "kept in memory across the outage, though Redis lost it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_window_a_lost_subscription_is_503_at_once() {
    let mut redis = RedisServer::start();
    let iam = TestIam::start().await;
    let a = replica_with(&redis, OutagePolicy::Unavailable).await;
    let app = guarded(&iam, &a);
    let token = iam.mint(json!({}));
    assert_eq!(status(&app, &token).await, StatusCode::OK);
    redis.stop();
    eventually("the loss is noticed", || async { !a.is_synced() }).await;
    let (code, _, body) = call_json(&app, bearer(&token)).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "IAM_UNAVAILABLE");
    redis.restart();
    eventually("back once resynced", || async {
        status(&app, &token).await == StatusCode::OK
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_from_a_temporal_assignment_are_not_served_past_its_end_at_either_level() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let catalogue = || CatalogueSource::new(Catalogue::students_fixture());
    let source_a = CachedSource::builder(catalogue()).shared(&a).build();
    let source_b = CachedSource::builder(catalogue()).shared(&b).build();
    let ends = now() + 2;
    let who = principal(json!({
        "iss": ISSUER, "sub": "sub-teacher", "tenantId": "school-1",
        "roles": ["admin"],
        "role_assignments": [{"role": "admin", "validUntil": ends}],
    }));
    let admin = |perms: Arc<CompiledPermissions>| perms.can_write("students", "sensitive");
    let first = source_a.load(&who).await.unwrap();
    assert!(admin(first.clone()));
    assert_eq!(first.valid_until(), Some(ends));
    assert!(admin(source_b.load(&who).await.unwrap()));
    assert_eq!(source_b.source_loads(), 0, "b was answered by Redis");
    let key = documented_key(ISSUER, "school-1", "sub-teacher");
    let ttl: u64 = redis.cmd(&["PTTL", &key]).parse().unwrap();
    assert!(
        ttl <= 2_000,
        "the shared entry ends with the assignment: {ttl} ms"
    );

    eventually("the assignment has ended", || async { now() >= ends }).await;
    assert!(
        !admin(source_b.load(&who).await.unwrap()),
        "b's local level"
    );
    assert_eq!(
        source_b.source_loads(),
        1,
        "b recompiled: Redis had nothing valid"
    );
    assert!(
        !admin(source_a.load(&who).await.unwrap()),
        "a's local level"
    );
    assert_eq!(
        source_a.source_loads(),
        1,
        "a read b's new entry, not its own old one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_channel_is_ignored_and_flushes_nothing() {
    let redis = RedisServer::start();
    let iam = TestIam::start().await;
    let b = replica(&redis).await;
    let app = guarded(&iam, &b);
    let grants = Grants::new("p");
    let source = shared(&grants, &b);
    let who = caller("school-1");
    assert!(holds(&source, &who, "p").await);
    let syncs = b.syncs();
    let huge = format!(
        r#"{{"v":1,"type":"revoke_token","jti":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    for garbage in [
        "",
        "not json at all",
        "\u{0}\u{ff}\u{fe}",
        "[]",
        r#"{"v":2,"type":"invalidate_all"}"#,
        r#"{"type":"invalidate_all"}"#,
        r#"{"v":1,"type":"invalidate_all","user":"x"}"#,
        r#"{"v":1,"type":"drop_everything"}"#,
        r#"{"v":1,"type":"invalidate","user":"user-1"}"#,
        r#"{"v":1,"type":"revoke_user","user":"user-1","before":"now"}"#,
        r#"{"v":1,"type":"revoke_token","jti":["a"]}"#,
        huge.as_str(),
    ] {
        redis.publish(CHANNEL, garbage);
    }
    // A good message after the garbage is applied: the replica survived.
    let token = iam.mint(json!({"jti": "after-garbage"}));
    redis.publish(
        CHANNEL,
        r#"{"v":1,"type":"revoke_token","jti":"after-garbage"}"#,
    );
    eventually("the good message is applied", || async {
        status(&app, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(holds(&source, &who, "p").await);
    assert_eq!(grants.loads(), 1, "no garbage flushed the cache");
    assert_eq!(b.syncs(), syncs, "no garbage cost a resync");
    assert_eq!(
        b.revocations().len(),
        1,
        "and none was taken for a revocation"
    );

    // Garbage in the sorted set is skipped on a resync; the rest loads.
    let exp = (now() + 300).to_string();
    redis.cmd(&["ZADD", "iam-guard:revocations", &exp, "not a revocation"]);
    redis.cmd(&[
        "ZADD",
        "iam-guard:revocations",
        &exp,
        r#"{"v":1,"type":"revoke_token","jti":"stored"}"#,
    ]);
    redis.kill_pubsub_clients();
    eventually("resynced", || async { b.syncs() > syncs }).await;
    let stored = iam.mint(json!({"jti": "stored"}));
    assert_eq!(status(&app, &stored).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_subscription_is_pinged_and_stays_up() {
    let redis = RedisServer::start();
    let replicas = replica(&redis).await;
    let syncs = replicas.syncs();
    // Five heartbeats without a message: each ping must be answered
    // without the subscription being taken for lost.
    let before = redis.cmd(&["INFO", "stats"]);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(replicas.syncs(), syncs, "no resync while idle");
    assert!(replicas.is_synced());
    let processed = |info: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    assert!(
        processed(&redis.cmd(&["INFO", "stats"])) >= processed(&before) + 4,
        "the heartbeat pings reached the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_fails_instead_of_hanging() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    redis.stop();
    let started = Instant::now();
    let error = RedisReplicas::builder(url)
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("Redis is unavailable"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(RedisReplicas::builder("http://not-redis")
        .connect()
        .await
        .is_err());
}
