//! The development IAM behind `examples/dev_iam.rs` and the school
//! example: `POST /token` for demo users or arbitrary claims, and
//! `POST /rotate`, checked against a real `JwtAuthGuard`.
#![cfg(feature = "test-util")]

mod common;

use common::*;
use http::StatusCode;
use iam_guard::{test_util::TestIam, JwtAuthGuardLayer};
use serde_json::{json, Value};

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

#[tokio::test]
async fn token_endpoint_mints_for_demo_users_and_arbitrary_claims() {
    let iam = TestIam::start().await;
    iam.add_user(
        "teacher",
        json!({"sub": "u-teacher", "tenantId": "school-1"}),
    );
    let app = app(JwtAuthGuardLayer::new(iam.verifier()));

    let (status, body) = post(&iam, "/token", r#"{"user":"teacher"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        call(&app, bearer(token)).await,
        (StatusCode::OK, "u-teacher|school-1".into())
    );

    let (status, body) = post(&iam, "/token", r#"{"claims":{"sub":"someone"}}"#).await;
    assert_eq!(status, 200);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        call(&app, bearer(token)).await,
        (StatusCode::OK, "someone|-".into())
    );

    let (status, body) = post(&iam, "/token", r#"{"user":"nobody"}"#).await;
    assert_eq!(status, 404);
    assert_eq!(body["known_users"], json!(["teacher"]));
    assert_eq!(post(&iam, "/token", "not json").await.0, 400);
}

#[tokio::test]
async fn rotate_publishes_a_new_signing_key_and_keeps_the_old_one() {
    let iam = TestIam::start().await;
    iam.add_user("admin", json!({"sub": "u-admin"}));
    let app = app(JwtAuthGuardLayer::new(iam.verifier()));
    let (_, before) = post(&iam, "/token", r#"{"user":"admin"}"#).await;
    let old = before["access_token"].as_str().unwrap().to_owned();
    assert_eq!(call(&app, bearer(&old)).await.0, StatusCode::OK);

    let (status, rotated) = post(&iam, "/rotate", r#"{"alg":"ES256"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(rotated["alg"], "ES256");
    let kid = rotated["kid"].as_str().unwrap().to_owned();
    let kids: Vec<String> = iam.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kids.contains(&kid) && kids.contains(&"rsa-1".to_owned()),
        "{kids:?}"
    );

    // New tokens are signed by the new key; the verifier must allow ES256.
    let (_, after) = post(&iam, "/token", r#"{"user":"admin"}"#).await;
    let new = after["access_token"].as_str().unwrap();
    assert_eq!(
        call(&app, bearer(new)).await.0,
        StatusCode::OK,
        "accepted on its first request"
    );
    assert_eq!(
        call(&app, bearer(&old)).await.0,
        StatusCode::OK,
        "the old key stays published"
    );
    assert_eq!(post(&iam, "/rotate", r#"{"alg":"HS256"}"#).await.0, 400);
}
