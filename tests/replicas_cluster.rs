//! Several replicas on one real Redis Cluster (`tests/common/redis_cluster.rs`:
//! three masters on loopback, joined by `redis-cli --cluster create`):
//! revocations and invalidations that reach every replica whichever node
//! they are published on, a shared permission cache whose entries spread
//! over the nodes, and a subscription that is cut, or whose node dies,
//! coming back through the cluster. Each "replica" is its own
//! `RedisReplicas::cluster` connection with its own caches and guard; the
//! single-server suite is `tests/replicas.rs`.
#![cfg(all(feature = "test-util", feature = "redis"))]

mod common;

use std::time::{Duration, Instant};

use common::{
    assert_invalid_token,
    redis_cluster::RedisCluster,
    replicas::{
        documented_key, eventually, eventually_within, guarded, holds, now, shared, status, Grants,
        CHANNEL, ISSUER, REVOCATIONS,
    },
};
use http::StatusCode;
use iam_guard::{
    replicas::RedisReplicas,
    test_util::{principal, TestIam},
    Principal,
};
use serde_json::{json, Value};

const GENERATION: &str = "iam-guard:permissions:generation";

/// A replica connected through every node of `cluster`.
async fn replica(cluster: &RedisCluster) -> RedisReplicas {
    RedisReplicas::cluster(cluster.urls())
        .heartbeat(Duration::from_millis(200))
        .timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "a replica connects to the test cluster: {e}\n{}",
                cluster.report()
            )
        })
}

/// Connects a replica and returns it with the node its subscription went
/// to: the one whose count of subscribed clients grew.
async fn replica_on_node(cluster: &RedisCluster) -> (RedisReplicas, usize) {
    let before = cluster.pubsub_clients();
    let replicas = replica(cluster).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = cluster.pubsub_clients();
        if let Some(node) = (0..after.len()).find(|&i| after[i] > before[i]) {
            return (replicas, node);
        }
        assert!(
            Instant::now() < deadline,
            "no node gained the replica's subscription: {before:?} -> {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn caller(user: &str, tenant: &str) -> Principal {
    principal(json!({"iss": ISSUER, "sub": user, "tenantId": tenant}))
}

/// The shared entry of `key` as stored, read on the node owning it.
fn stored_doc(cluster: &RedisCluster, key: &str) -> Value {
    let doc = cluster.cmd_on_owner(key, &["HGET", key, "doc"]);
    serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{key}: {e}: {doc:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_replica_reaches_the_other_through_the_cluster() {
    let cluster = RedisCluster::start(3);
    let iam = TestIam::start().await;
    let (a, b) = (replica(&cluster).await, replica(&cluster).await);
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

    // Logout everywhere, from the other replica.
    b.revoke_user("user-1", None, t).await.unwrap();
    eventually("replica a refuses user-1's older tokens", || async {
        status(&app_a, &old).await == StatusCode::UNAUTHORIZED
    })
    .await;
    let newer = iam.mint(json!({"iat": t}));
    for app in [&app_a, &app_b] {
        assert_eq!(status(app, &newer).await, StatusCode::OK, "issued after");
    }

    // Both stored in the one sorted set, on the one master owning it.
    let owner = cluster.owner_of(REVOCATIONS);
    let holders: Vec<usize> = cluster
        .keys_by_node(REVOCATIONS)
        .iter()
        .enumerate()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(holders, [owner], "{}", cluster.report());
    let stored = cluster.cmd(owner, &["ZRANGE", REVOCATIONS, "0", "-1"]);
    assert_eq!(stored.lines().count(), 2, "{stored}");
    assert!(stored.contains(r#""jti":"leaked-1""#), "{stored}");

    // A revocation an IAM publishes on a node neither replica subscribes
    // to still reaches both: classic pub/sub crosses the cluster bus.
    let subscribed = cluster.pubsub_clients();
    let quiet = (0..cluster.len())
        .find(|&i| subscribed[i] == 0)
        .unwrap_or((owner + 1) % cluster.len());
    let message = r#"{"v":1,"type":"revoke_token","jti":"from-elsewhere"}"#;
    let exp = (t + 300).to_string();
    assert_eq!(
        cluster.cmd_on_owner(REVOCATIONS, &["ZADD", REVOCATIONS, &exp, message]),
        "1"
    );
    cluster.publish(quiet, CHANNEL, message);
    let elsewhere = iam.mint(json!({"sub": "user-2", "jti": "from-elsewhere"}));
    for (name, app) in [("a", &app_a), ("b", &app_b)] {
        eventually(
            &format!("replica {name} gets a message published on node {quiet} ({subscribed:?})"),
            || async { status(app, &elsewhere).await == StatusCode::UNAUTHORIZED },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_cache_spreads_callers_over_the_nodes_and_answers_the_other_replica() {
    let cluster = RedisCluster::start(3);
    let (a, b) = (replica(&cluster).await, replica(&cluster).await);
    let (grants_a, grants_b) = (Grants::new("p"), Grants::new("p"));
    let (source_a, source_b) = (shared(&grants_a, &a), shared(&grants_b, &b));
    let users: Vec<String> = (0..20).map(|i| format!("user-{i}")).collect();

    for user in &users {
        assert!(holds(&source_a, &caller(user, "school-1"), "p").await);
    }
    assert_eq!(grants_a.loads(), 20);
    for user in &users {
        assert!(holds(&source_b, &caller(user, "school-1"), "p").await);
    }
    assert_eq!(
        grants_b.loads(),
        0,
        "replica b was answered by the cluster for every caller"
    );

    // Each entry is on the master owning its slot, and they are spread.
    let by_node: Vec<Vec<String>> = cluster
        .keys_by_node("iam-guard:permissions:*")
        .into_iter()
        .map(|keys| keys.into_iter().filter(|k| k != GENERATION).collect())
        .collect();
    let counts: Vec<usize> = by_node.iter().map(Vec::len).collect();
    assert_eq!(counts.iter().sum::<usize>(), 20, "{by_node:?}");
    assert!(
        counts.iter().filter(|&&n| n > 0).count() > 1,
        "the entries are spread over the nodes: {counts:?}"
    );
    for user in &users {
        let key = documented_key(ISSUER, "school-1", user);
        let owner = cluster.owner_of(&key);
        assert!(by_node[owner].contains(&key), "{key} on node {owner}");
        let doc = stored_doc(&cluster, &key);
        assert_eq!(doc["permissions"]["permissions"], json!(["p"]), "{doc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_reaches_the_other_replica_and_the_shared_entry_on_its_node() {
    let cluster = RedisCluster::start(3);
    let (a, b) = (replica(&cluster).await, replica(&cluster).await);
    let grants = Grants::new("old");
    let (source_a, source_b) = (shared(&grants, &a), shared(&grants, &b));
    let who = caller("user-1", "school-1");
    assert!(holds(&source_a, &who, "old").await);
    assert!(holds(&source_b, &who, "old").await);
    assert_eq!(grants.loads(), 1, "b read a's shared entry");
    let key = documented_key(ISSUER, "school-1", "user-1");

    grants.set("new");
    a.invalidate(ISSUER, "user-1", Some("school-1"))
        .await
        .unwrap();
    assert_eq!(
        cluster.cmd_on_owner(&key, &["HGET", &key, "ver"]),
        "1",
        "the entry's counter moved on its node"
    );
    assert!(
        holds(&source_a, &who, "new").await,
        "at once on the invalidating replica"
    );
    eventually("replica b drops its local entry", || async {
        holds(&source_b, &who, "new").await
    })
    .await;
    assert_eq!(grants.loads(), 2, "b read a's fresh shared entry");
    let doc = stored_doc(&cluster, &key);
    assert_eq!(doc["ver"], 1, "{doc}");
    assert_eq!(doc["permissions"]["permissions"], json!(["new"]), "{doc}");

    // Everything, on every replica: the generation on its own node.
    grants.set("newest");
    b.invalidate_all().await.unwrap();
    assert_eq!(cluster.cmd_on_owner(GENERATION, &["GET", GENERATION]), "1");
    assert!(holds(&source_b, &who, "newest").await);
    eventually("replica a drops everything", || async {
        holds(&source_a, &who, "newest").await
    })
    .await;
    assert_eq!(grants.loads(), 3, "a read b's entry of the new generation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_cut_on_its_node_comes_back_and_loads_what_it_missed() {
    let cluster = RedisCluster::start(3);
    let iam = TestIam::start().await;
    let (a, _) = replica_on_node(&cluster).await;
    let (b, node) = replica_on_node(&cluster).await;
    let app = guarded(&iam, &b);
    let grants = Grants::new("stale");
    let source = shared(&grants, &b);
    let who = caller("user-1", "school-1");
    let token = iam.mint(json!({"jti": "missed"}));
    assert_eq!(status(&app, &token).await, StatusCode::OK);
    assert!(holds(&source, &who, "stale").await);
    let syncs = b.syncs();

    // Writes whose messages b never gets: stored on the owning nodes,
    // never published.
    grants.set("fresh");
    let exp = (now() + 300).to_string();
    let message = r#"{"v":1,"type":"revoke_token","jti":"missed"}"#;
    assert_eq!(
        cluster.cmd_on_owner(REVOCATIONS, &["ZADD", REVOCATIONS, &exp, message]),
        "1"
    );
    let key = documented_key(ISSUER, "school-1", "user-1");
    assert_eq!(
        cluster.cmd_on_owner(&key, &["HINCRBY", &key, "ver", "1"]),
        "1"
    );
    assert_eq!(
        status(&app, &token).await,
        StatusCode::OK,
        "nothing announced yet"
    );
    assert!(holds(&source, &who, "stale").await, "nothing announced yet");

    // b's node drops its subscription (a's too when it is there).
    assert!(cluster.node(node).kill_pubsub_clients() >= 1);
    eventually("b resubscribes and resyncs", || async { b.syncs() > syncs }).await;
    cluster.wait_for_subscribers(CHANNEL, 2, Duration::from_secs(10));
    assert_eq!(
        status(&app, &token).await,
        StatusCode::UNAUTHORIZED,
        "loaded by the resync"
    );
    assert!(
        holds(&source, &who, "fresh").await,
        "the local entry older than the resubscription is gone, the shared one too"
    );

    // And the new subscription gets what the other replica publishes.
    let later = iam.mint(json!({"jti": "later"}));
    assert_eq!(status(&app, &later).await, StatusCode::OK);
    a.revoke_token("later", None).await.unwrap();
    eventually("b gets a revocation after resubscribing", || async {
        status(&app, &later).await == StatusCode::UNAUTHORIZED
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_node_dies_resubscribes_through_another_and_still_gets_revocations() {
    // Without replicas a dead master leaves its slots unowned and the
    // whole cluster answers CLUSTERDOWN: each master has a replica here,
    // promoted after the node timeout.
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    let iam = TestIam::start().await;
    let (a, _) = replica_on_node(&cluster).await;
    let (b, node) = replica_on_node(&cluster).await;
    let app_b = guarded(&iam, &b);
    let t = now();
    let token = iam.mint(json!({"jti": "after-the-failover", "iat": t - 10}));
    assert_eq!(status(&app_b, &token).await, StatusCode::OK);
    let syncs = b.syncs();

    cluster.stop(node);
    eventually_within(
        "the cluster is ok again without the dead node",
        Duration::from_secs(30),
        || async { cluster.is_ok() && cluster.masters().len() == 3 },
    )
    .await;
    eventually_within(
        "b resubscribes through another node and resyncs",
        Duration::from_secs(30),
        || async { b.syncs() > syncs && b.is_synced() },
    )
    .await;
    // Both subscriptions are back, on live nodes.
    cluster.wait_for_subscribers(CHANNEL, 2, Duration::from_secs(10));

    // Published through a's cluster connection, which may still be
    // following the failover: retried until the cluster takes it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match a.revoke_token("after-the-failover", Some(t + 300)).await {
            Ok(()) => break,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "a cannot revoke after the failover: {e}\n{}",
                    cluster.report()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    eventually("b enforces a's revocation", || async {
        status(&app_b, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    let stored = cluster.cmd_on_owner(REVOCATIONS, &["ZRANGE", REVOCATIONS, "0", "-1"]);
    assert!(stored.contains("after-the-failover"), "{stored}");
}
