//! Revocation in one process, through the guard: a token by `jti`, a
//! user's tokens issued before an instant (in one tenant or all), a token
//! version, and the lifetime bound that lets revocations be forgotten.
//! Cached tokens are checked as strictly as fresh ones.
#![cfg(feature = "test-util")]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use http::StatusCode;
use iam_guard::{revocation::Revocations, test_util::TestIam, JwtAuthGuardLayer};
use serde_json::json;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn guarded(iam: &TestIam, revocations: &Revocations) -> (axum::Router, iam_guard::Verifier) {
    let layer = JwtAuthGuardLayer::new(iam.verifier()).revocations(revocations.clone());
    let verifier = layer.verifier().clone();
    (app(layer), verifier)
}

async fn assert_ok(app: &axum::Router, token: &str, context: &str) {
    let (status, body) = call(app, bearer(token)).await;
    assert_eq!(status, StatusCode::OK, "{context}: {body}");
}

async fn assert_revoked(app: &axum::Router, token: &str, context: &str) {
    let message = assert_invalid_token(app, token, context).await;
    assert_eq!(message, "the token has been revoked", "{context}");
}

#[tokio::test]
async fn a_revoked_jti_is_refused_even_from_the_token_cache() {
    let iam = TestIam::start().await;
    let revocations = Revocations::new();
    let (app, verifier) = guarded(&iam, &revocations);
    let token = iam.mint(json!({"jti": "jti-1"}));
    let other = iam.mint(json!({"jti": "jti-2"}));
    assert_ok(&app, &token, "before").await;
    assert_ok(&app, &other, "before").await;
    assert_eq!(verifier.signature_checks(), 2);
    assert_eq!(verifier.cached_tokens(), 2);

    revocations.revoke_token("jti-1", Some(now() + 300));
    assert_revoked(&app, &token, "cached and revoked").await;
    assert_revoked(&app, &token, "and again").await;
    assert_ok(&app, &other, "another jti").await;
    assert_eq!(
        verifier.signature_checks(),
        2,
        "the cached verification was used: revocation is not a re-verification"
    );
    // A fresh guard that never saw the token refuses it too.
    let (fresh, _) = guarded(&iam, &revocations);
    assert_revoked(&fresh, &token, "fresh").await;
}

#[tokio::test]
async fn revoking_a_user_refuses_older_tokens_and_leaves_newer_ones() {
    let iam = TestIam::start().await;
    let revocations = Revocations::new();
    let (app, _) = guarded(&iam, &revocations);
    let t = now();
    let old = iam.mint(json!({"iat": t - 60}));
    let older_no_iat = iam.mint(json!({"iat": null}));
    let newer = iam.mint(json!({"iat": t}));
    let someone_else = iam.mint(json!({"sub": "user-2", "iat": t - 60}));
    for token in [&old, &older_no_iat, &newer, &someone_else] {
        assert_ok(&app, token, "before").await;
    }

    revocations.revoke_user("user-1", None, t);
    assert_revoked(&app, &old, "issued before").await;
    assert_revoked(&app, &older_no_iat, "no iat cannot prove it is newer").await;
    assert_ok(&app, &newer, "issued at the instant: not before it").await;
    assert_ok(&app, &someone_else, "another user").await;
}

#[tokio::test]
async fn a_tenant_revocation_refuses_the_user_in_that_tenant_only() {
    let iam = TestIam::start().await;
    let revocations = Revocations::new();
    let app = app(JwtAuthGuardLayer::new(iam.verifier())
        .tenant_header(http::HeaderName::from_static("x-org"))
        .revocations(revocations.clone()));
    let token = iam.mint(json!({"iat": now() - 60, "organizations": ["school-1", "school-2"]}));
    let in_org = |org: &str| {
        let auth = format!("Bearer {token}");
        request("GET", &[("authorization", &auth), ("x-org", org)])
    };
    for org in ["school-1", "school-2"] {
        let (status, body) = call(&app, in_org(org)).await;
        assert_eq!(status, StatusCode::OK, "{org}: {body}");
    }

    revocations.revoke_user("user-1", Some("school-2"), now());
    let (status, body) = call(&app, in_org("school-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = call_json(&app, in_org("school-2")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["message"], "the token has been revoked");
    // The same cached token, the other tenant again: still fine.
    let (status, body) = call(&app, in_org("school-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_token_version_below_the_users_is_refused() {
    let iam = TestIam::start().await;
    let revocations = Revocations::builder().token_version_claim("ver").build();
    let (app, _) = guarded(&iam, &revocations);
    let v1 = iam.mint(json!({"ver": 1}));
    let v2 = iam.mint(json!({"ver": 2}));
    let unversioned = iam.mint(json!({}));
    for token in [&v1, &v2, &unversioned] {
        assert_ok(&app, token, "no version set yet").await;
    }

    revocations.set_token_version("user-1", 2);
    assert_revoked(&app, &v1, "below").await;
    assert_revoked(&app, &unversioned, "no claim counts as 0").await;
    assert_ok(&app, &v2, "at the version").await;
    // Versions only rise: a late, lower one changes nothing.
    revocations.set_token_version("user-1", 1);
    assert_revoked(&app, &v1, "still below").await;
}

#[tokio::test]
async fn with_revocations_on_a_token_must_not_outlive_them() {
    let iam = TestIam::start().await;
    let revocations = Revocations::builder()
        .max_token_lifetime(Duration::from_secs(3600))
        .build();
    let (app, _) = guarded(&iam, &revocations);
    let t = now();
    let long = iam.mint(json!({"iat": t, "exp": t + 7200}));
    let message = assert_invalid_token(&app, &long, "two hours").await;
    assert_eq!(message, "the token lives longer than revocations are kept");
    let long_no_iat = iam.mint(json!({"iat": null, "exp": t + 7200}));
    assert_invalid_token(&app, &long_no_iat, "two hours from now").await;
    assert_ok(
        &app,
        &iam.mint(json!({"iat": t, "exp": t + 3600})),
        "one hour",
    )
    .await;
    assert_ok(
        &app,
        &iam.mint(json!({"iat": null, "exp": t + 600})),
        "no iat",
    )
    .await;

    // Without revocations the same token is fine: nothing changes for a
    // guard that does not ask for them.
    let plain = app_without_revocations(&iam);
    assert_ok(&plain, &long, "no revocations").await;
}

fn app_without_revocations(iam: &TestIam) -> axum::Router {
    app(JwtAuthGuardLayer::new(iam.verifier()))
}

#[tokio::test]
async fn a_revocation_that_has_ended_is_forgotten() {
    let revocations = Revocations::new();
    revocations.revoke_token("gone", Some(now() - 1));
    revocations.revoke_token("kept", Some(now() + 60));
    revocations.revoke_user("user-1", None, now() - 2 * 86_400);
    assert_eq!(revocations.len(), 1, "only the live jti is kept");
    assert!(revocations.is_trusted(), "one process is always in sync");
}
