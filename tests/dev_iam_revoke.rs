//! The development IAM's `POST /revoke` and `POST /invalidate`: each body
//! shape applied where the IAM sends revocations (one process's view with
//! `revoke_into`, every replica with `publish_to`), checked through a real
//! guard; every malformed body refused with 400 and nothing applied; 503
//! when there is nowhere to send, or Redis is down.
#![cfg(feature = "test-util")]

mod common;

use std::{
    future::Future,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{app, bearer, call};
use http::StatusCode;
use iam_guard::{revocation::Revocations, test_util::TestIam, JwtAuthGuardLayer};
use serde_json::{json, Value};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post(iam: &TestIam, path: &str, body: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}{path}", iam.issuer()))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let bytes = res.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Polls `check` until it holds, for at most 5 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bodies neither endpoint may apply, with what the refusal must say.
const BAD_REVOKE_BODIES: &[(&str, &str)] = &[
    ("", "not JSON"),
    ("{\"user\":", "not JSON"),
    ("\"user-1\"", "JSON object"),
    ("{}", "send"),
    (r#"{"tenant":"school-1"}"#, "send"),
    (r#"{"user":1}"#, "invalid type"),
    (r#"{"user":"user-1","before":"soon"}"#, "invalid type"),
    (r#"{"user":"user-1","before":-1}"#, "invalid value"),
    (r#"{"user":"user-1","everywhere":true}"#, "unknown field"),
    (r#"{"type":"revoke_user","user":"user-1"}"#, "unknown field"),
    (r#"{"user":""}"#, "must not be empty"),
    (r#"{"jti":"j","user":"user-1"}"#, "only \"jti\""),
    (r#"{"jti":"j","exp":"tomorrow"}"#, "invalid type"),
    (r#"{"user":"user-1","exp":1900000000}"#, "\"exp\" goes with"),
    (
        r#"{"user":"user-1","version":2,"tenant":"t"}"#,
        "token version",
    ),
    (r#"{"user":"user-1","version":-2}"#, "invalid value"),
];

const BAD_INVALIDATE_BODIES: &[(&str, &str)] = &[
    ("", "not JSON"),
    ("[]", "JSON object"),
    ("{}", "send"),
    (r#"{"tenant":"school-1"}"#, "send"),
    (r#"{"user":["user-1"]}"#, "invalid type"),
    (r#"{"all":"yes"}"#, "invalid type"),
    (r#"{"all":false}"#, "must be true"),
    (r#"{"all":true,"user":"user-1"}"#, "takes no"),
    (r#"{"user":"user-1","jti":"j"}"#, "unknown field"),
];

async fn assert_refused(iam: &TestIam, path: &str, bodies: &[(&str, &str)]) {
    for (body, reason) in bodies {
        let (status, answer) = post(iam, path, body).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{path} {body}");
        let why = answer["error_description"].as_str().unwrap_or_default();
        assert!(why.contains(reason), "{path} {body}: {why}");
    }
}

#[tokio::test]
async fn revoke_applies_each_body_shape_to_the_view_the_guard_enforces() {
    let iam = TestIam::start().await;
    let revocations = Revocations::builder().token_version_claim("ver").build();
    iam.revoke_into(revocations.clone());
    let app = app(JwtAuthGuardLayer::new(iam.verifier()).revocations(revocations.clone()));
    let status = |token: String| {
        let app = app.clone();
        async move { call(&app, bearer(&token)).await.0 }
    };

    // A token by jti: that token only.
    let exp = now() + 300;
    let revoked = iam.mint(json!({"sub": "user-1", "jti": "jti-1", "exp": exp}));
    let kept = iam.mint(json!({"sub": "user-1", "jti": "jti-2"}));
    assert_eq!(status(revoked.clone()).await, StatusCode::OK);
    let (code, answer) = post(
        &iam,
        "/revoke",
        &format!(r#"{{"jti":"jti-1","exp":{exp}}}"#),
    )
    .await;
    assert_eq!(
        (code, answer),
        (
            200,
            json!({"type": "revoke_token", "jti": "jti-1", "exp": exp})
        )
    );
    assert_eq!(status(revoked).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(kept).await, StatusCode::OK);

    // A user: every token issued until now, `before` defaulting to the
    // second after the request.
    let old = iam.mint(json!({"sub": "user-2"}));
    assert_eq!(status(old.clone()).await, StatusCode::OK);
    let asked = now();
    let (code, answer) = post(&iam, "/revoke", r#"{"user":"user-2"}"#).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["type"], "revoke_user");
    assert_eq!(answer["user"], "user-2");
    assert_eq!(answer.get("tenant"), None);
    let before = answer["before"].as_u64().expect("a before");
    assert!(
        (asked + 1..=now() + 1).contains(&before),
        "{before} vs {asked}"
    );
    assert_eq!(status(old).await, StatusCode::UNAUTHORIZED);
    let newer = iam.mint(json!({"sub": "user-2", "iat": before, "exp": before + 300}));
    assert_eq!(status(newer).await, StatusCode::OK);

    // A user in one tenant, with an explicit `before`.
    let (code, answer) = post(
        &iam,
        "/revoke",
        &format!(
            r#"{{"user":"user-3","tenant":"school-1","before":{}}}"#,
            now() + 60
        ),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["tenant"], "school-1");
    let in_tenant = iam.mint(json!({"sub": "user-3", "tenantId": "school-1"}));
    let elsewhere = iam.mint(json!({"sub": "user-3", "tenantId": "school-2"}));
    assert_eq!(status(in_tenant).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(elsewhere).await, StatusCode::OK);

    // A token version.
    let (code, answer) = post(&iam, "/revoke", r#"{"user":"user-4","version":2}"#).await;
    assert_eq!(
        (code, answer),
        (
            200,
            json!({"type": "token_version", "user": "user-4", "version": 2})
        )
    );
    let v1 = iam.mint(json!({"sub": "user-4", "ver": 1}));
    let v2 = iam.mint(json!({"sub": "user-4", "ver": 2}));
    assert_eq!(status(v1).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(v2).await, StatusCode::OK);
    assert_eq!(revocations.len(), 4);
}

#[tokio::test]
async fn a_malformed_body_is_400_and_applies_nothing() {
    let iam = TestIam::start().await;
    let revocations = Revocations::new();
    iam.revoke_into(revocations.clone());
    assert_refused(&iam, "/revoke", BAD_REVOKE_BODIES).await;
    assert_refused(&iam, "/invalidate", BAD_INVALIDATE_BODIES).await;
    assert!(revocations.is_empty(), "{revocations:?}");
    // Even with nowhere to send it, a malformed body is the caller's
    // mistake first.
    let nowhere = TestIam::start().await;
    assert_refused(&nowhere, "/revoke", BAD_REVOKE_BODIES).await;
    assert_refused(&nowhere, "/invalidate", BAD_INVALIDATE_BODIES).await;
}

#[tokio::test]
async fn with_nowhere_to_send_a_good_body_is_503() {
    let iam = TestIam::start().await;
    let (code, answer) = post(&iam, "/revoke", r#"{"user":"user-1"}"#).await;
    assert_eq!(code, 503, "{answer}");
    assert_eq!(answer["error"], "temporarily_unavailable");
    assert_eq!(post(&iam, "/invalidate", r#"{"all":true}"#).await.0, 503);

    // One process has no replicas to invalidate on.
    iam.revoke_into(Revocations::new());
    let (code, answer) = post(&iam, "/invalidate", r#"{"user":"user-1"}"#).await;
    assert_eq!(code, 503, "{answer}");
    let why = answer["error_description"].as_str().unwrap_or_default();
    assert!(why.contains("no replicas configured"), "{why}");
    assert_eq!(post(&iam, "/revoke", r#"{"user":"user-1"}"#).await.0, 200);
}

#[cfg(feature = "redis")]
mod through_redis {
    use iam_guard::{
        replicas::RedisReplicas, test_util::principal, PermissionSource, RemoteSource,
    };

    use super::*;
    use crate::common::redis::RedisServer;

    async fn replica(redis: &RedisServer) -> RedisReplicas {
        RedisReplicas::builder(redis.url())
            .heartbeat(Duration::from_millis(200))
            .timeout(Duration::from_millis(500))
            .connect()
            .await
            .expect("a replica connects to the test redis-server")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publish_to_reaches_another_replica_and_fails_loudly_without_redis() {
        let mut redis = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .unwrap();
        let iam = TestIam::start().await;
        iam.publish_to(replica(&redis).await);
        // Another replica: its view, and the IAM's permissions through
        // its shared cache.
        let other = replica(&redis).await;
        iam.add_user(
            "teacher",
            json!({"sub": "user-1", "tenantId": "school-1", "roles": ["teacher"]}),
        );
        let source = RemoteSource::builder(iam.permissions_url())
            .shared(&other)
            .build()
            .unwrap();
        let caller = principal(json!({
            "iss": iam.issuer(), "sub": "user-1", "tenantId": "school-1", "roles": ["teacher"],
        }));

        assert_refused(&iam, "/revoke", BAD_REVOKE_BODIES).await;
        assert_refused(&iam, "/invalidate", BAD_INVALIDATE_BODIES).await;
        assert_eq!(
            redis.cmd(&["ZCARD", "iam-guard:revocations"]),
            "0",
            "a refused body stores nothing"
        );

        let (code, answer) = post(&iam, "/revoke", r#"{"jti":"jti-1"}"#).await;
        assert_eq!(
            (code, answer),
            (200, json!({"type": "revoke_token", "jti": "jti-1"}))
        );
        assert!(redis
            .cmd(&["ZRANGE", "iam-guard:revocations", "0", "-1"])
            .contains(r#""jti":"jti-1""#));
        let view = other.revocations();
        eventually("the other replica applies the revocation", || {
            let view = view.clone();
            async move { view.len() == 1 }
        })
        .await;

        // An invalidation of the caller (under this IAM's issuer) drops
        // the other replica's cached permissions.
        source.load(&caller).await.unwrap();
        source.load(&caller).await.unwrap();
        assert_eq!(iam.permissions_fetches(), 1);
        let (code, answer) = post(
            &iam,
            "/invalidate",
            r#"{"user":"user-1","tenant":"school-1"}"#,
        )
        .await;
        assert_eq!(code, 200, "{answer}");
        assert_eq!(
            answer,
            json!({"type": "invalidate", "issuer": iam.issuer(), "tenant": "school-1", "user": "user-1"})
        );
        eventually("the other replica drops the caller", || {
            let (source, caller) = (source.clone(), caller.clone());
            let iam = &iam;
            async move {
                source.load(&caller).await.unwrap();
                iam.permissions_fetches() == 2
            }
        })
        .await;
        let (code, answer) = post(&iam, "/invalidate", r#"{"all":true}"#).await;
        assert_eq!((code, answer), (200, json!({"type": "invalidate_all"})));
        eventually("the other replica drops everything", || {
            let (source, caller) = (source.clone(), caller.clone());
            let iam = &iam;
            async move {
                source.load(&caller).await.unwrap();
                iam.permissions_fetches() == 3
            }
        })
        .await;

        // Redis down: refused, never silently dropped.
        tokio::task::spawn_blocking(move || {
            redis.stop();
            redis
        })
        .await
        .unwrap();
        let (code, answer) = post(&iam, "/revoke", r#"{"user":"user-2"}"#).await;
        assert_eq!(code, 503, "{answer}");
        assert_eq!(answer["error"], "temporarily_unavailable");
        assert_eq!(post(&iam, "/invalidate", r#"{"all":true}"#).await.0, 503);
        assert_eq!(view.len(), 1, "the failed revocation reached no replica");
    }
}
