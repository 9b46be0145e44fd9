//! The DPoP replay cache shared by replicas on a real `redis-server`: a
//! proof used on one replica is refused on every other, the key it leaves
//! in Redis expires with the proof's window, and while Redis cannot
//! answer a DPoP request is a 503, never a guess.
#![cfg(all(feature = "redis", feature = "test-util"))]

mod common;

use std::time::Duration;

use axum::{body::Body, routing::get, Router};
use common::{call_json, redis::RedisServer};
use http::{Request, StatusCode};
use iam_guard::{
    replicas::RedisReplicas,
    test_util::{DpopKey, TestIam},
    Dpop, JwtAuthGuardLayer, Principal,
};

const URL: &str = "https://api.test/me";

async fn replica(redis: &RedisServer) -> RedisReplicas {
    RedisReplicas::builder(redis.url())
        .heartbeat(Duration::from_millis(200))
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect("a replica connects to the test redis-server")
}

/// `/me` behind a DPoP guard whose replay cache is `replicas`'.
fn guarded(iam: &TestIam, replicas: &RedisReplicas) -> Router {
    let dpop = Dpop::allowed().replay_cache(replicas.dpop_replay_cache());
    Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { p.user_id().to_owned() }),
        )
        .layer(JwtAuthGuardLayer::new(iam.verifier()).dpop(dpop))
}

fn dpop_get(token: &str, proof: &str) -> Request<Body> {
    Request::builder()
        .uri("/me")
        .header("host", "api.test")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(Body::empty())
        .unwrap()
}

async fn code(app: &Router, token: &str, proof: &str) -> (StatusCode, String) {
    let (status, _, body) = call_json(app, dpop_get(token, proof)).await;
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_proof_used_on_one_replica_is_refused_on_the_other() {
    let redis = RedisServer::start();
    let iam = TestIam::start().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let (app_a, app_b) = (guarded(&iam, &a), guarded(&iam, &b));
    let key = DpopKey::es256();
    let token = iam.mint(key.cnf());
    // Both replicas know the token (the second request on each uses its
    // verified-token cache), so only the replay cache tells them apart.
    for app in [&app_a, &app_b] {
        let fresh = key.proof("GET", URL, &token);
        assert_eq!(code(app, &token, &fresh).await.0, StatusCode::OK);
    }
    let proof = key.proof("GET", URL, &token);
    assert_eq!(code(&app_a, &token, &proof).await.0, StatusCode::OK);
    assert_eq!(
        code(&app_b, &token, &proof).await,
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof".to_owned())
    );
    assert_eq!(
        code(&app_a, &token, &proof).await,
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof".to_owned())
    );
    // One key per proof, under the documented prefix, gone when the
    // proof's window (60 s + 10 s leeway) closes.
    let keys = redis.cmd(&["KEYS", "iam-guard:dpop:*"]);
    assert_eq!(keys.lines().count(), 3, "{keys}");
    let first = keys.lines().next().unwrap().to_owned();
    assert_eq!(first.len(), "iam-guard:dpop:".len() + 64, "{first}");
    let ttl: u64 = redis.cmd(&["TTL", &first]).parse().unwrap();
    assert!((60..=72).contains(&ttl), "TTL {ttl}");
}

#[tokio::test]
async fn while_redis_cannot_answer_a_dpop_request_is_503_and_then_served_again() {
    let mut redis = RedisServer::start();
    let iam = TestIam::start().await;
    let replicas = replica(&redis).await;
    let app = guarded(&iam, &replicas);
    let key = DpopKey::ed25519();
    let token = iam.mint(key.cnf());
    assert_eq!(
        code(&app, &token, &key.proof("GET", URL, &token)).await.0,
        StatusCode::OK
    );
    redis.stop();
    let (status, _, body) = call_json(&app, dpop_get(&token, &key.proof("GET", URL, &token))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "IAM_UNAVAILABLE");
    assert_eq!(body["message"], "the DPoP replay cache cannot be reached");
    // A plain bearer token does not need the replay cache.
    let plain = iam.mint(serde_json::json!({}));
    let req = Request::builder()
        .uri("/me")
        .header("authorization", format!("Bearer {plain}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call_json(&app, req).await.0, StatusCode::OK);
    redis.restart();
    common::replicas::eventually("DPoP requests are served again", || {
        let proof = key.proof("GET", URL, &token);
        let app = app.clone();
        let token = token.clone();
        async move { code(&app, &token, &proof).await.0 == StatusCode::OK }
    })
    .await;
}
