//! Claim value checks (`claim_equals`, `client_id_instead_of_audience`):
//! a token is admitted only when the constrained claims hold an allowed
//! value, and a refusal names the claim, never the token's value.
#![cfg(feature = "test-util")]

mod common;

use axum::Router;
use common::*;
use http::StatusCode;
use iam_guard::{test_util::TestIam, JwtAuthGuardLayer, TokenValidation, Verifier};
use serde_json::json;

/// The test IAM's verifier (which requires its test audience), changed
/// through the guard's builder methods.
fn checked(iam: &TestIam, change: impl FnOnce(JwtAuthGuardLayer) -> JwtAuthGuardLayer) -> Router {
    app(change(JwtAuthGuardLayer::new(iam.verifier())))
}

/// RS256, this issuer, no audience configured.
fn no_audience(iam: &TestIam) -> JwtAuthGuardLayer {
    JwtAuthGuardLayer::new(Verifier::new(
        iam.fetcher(),
        TokenValidation::new(iam.issuer()),
    ))
}

async fn assert_ok(app: &Router, token: &str, context: &str) {
    let (status, body) = call(app, bearer(token)).await;
    assert_eq!(status, StatusCode::OK, "{context}: {body}");
}

/// 401 `invalid_token` naming `claim`; returns the message.
async fn assert_claim_refused(app: &Router, token: &str, claim: &str, context: &str) -> String {
    let message = assert_invalid_token(app, token, context).await;
    assert_eq!(
        message,
        format!("the token's `{claim}` claim is not accepted"),
        "{context}"
    );
    message
}

#[tokio::test]
async fn a_string_claim_equal_to_an_allowed_value_is_admitted() {
    let iam = TestIam::start().await;
    let app = checked(&iam, |l| l.claim_equals("token_use", ["access", "both"]));
    assert_ok(&app, &iam.mint(json!({"token_use": "access"})), "access").await;
    assert_ok(&app, &iam.mint(json!({"token_use": "both"})), "both").await;
}

#[tokio::test]
async fn an_array_claim_holding_an_allowed_value_is_admitted() {
    let iam = TestIam::start().await;
    let app = checked(&iam, |l| l.claim_equals("azp", ["students-web"]));
    let token = iam.mint(json!({"azp": ["other", "students-web"]}));
    assert_ok(&app, &token, "array").await;
    let token = iam.mint(json!({"azp": ["other", 7]}));
    assert_claim_refused(&app, &token, "azp", "array without it").await;
}

#[tokio::test]
async fn a_missing_or_odd_shaped_claim_is_refused() {
    let iam = TestIam::start().await;
    let app = checked(&iam, |l| l.claim_equals("token_use", ["access"]));
    for (what, patch) in [
        ("missing", json!({})),
        ("null", json!({"token_use": null})),
        ("number", json!({"token_use": 1})),
        ("object", json!({"token_use": {"access": true}})),
        ("case", json!({"token_use": "Access"})),
    ] {
        let token = iam.mint(patch);
        assert_claim_refused(&app, &token, "token_use", what).await;
    }
}

#[tokio::test]
async fn a_wrong_value_is_refused_and_audited_by_claim_name_only() {
    let iam = TestIam::start().await;
    let app = checked(&iam, |l| l.claim_equals("token_use", ["access"]));
    let value = "id-token-value-7f3a9c";
    let token = iam.mint(json!({"token_use": value}));
    let (captured, _tracing) = capture();
    let (status, _, body) = call_json(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "invalid_token");
    assert!(!body.to_string().contains(value), "{body}");
    let denies = captured.audit_events("deny");
    assert_eq!(denies.len(), 1, "{denies:?}");
    let event = &denies[0];
    assert_audit_schema(event);
    assert_eq!(event["guard"], "auth");
    assert_eq!(event["code"], "invalid_token");
    assert!(event["reason"].contains("token_use"), "{event:?}");
    assert!(!event["reason"].contains(value), "{event:?}");
    assert!(!captured.all_text().contains(value), "the value was logged");
}

#[tokio::test]
async fn several_checks_must_all_hold() {
    let iam = TestIam::start().await;
    let app = checked(&iam, |l| {
        l.claim_equals("token_use", ["access"])
            .claim_equals("tid", ["tenant-1"])
    });
    let both = iam.mint(json!({"token_use": "access", "tid": "tenant-1"}));
    assert_ok(&app, &both, "both").await;
    let wrong_tid = iam.mint(json!({"token_use": "access", "tid": "tenant-2"}));
    assert_claim_refused(&app, &wrong_tid, "tid", "tid").await;
    let wrong_use = iam.mint(json!({"token_use": "id", "tid": "tenant-1"}));
    assert_claim_refused(&app, &wrong_use, "token_use", "token_use").await;
}

#[tokio::test]
async fn a_nested_claim_path_is_followed() {
    let iam = TestIam::start().await;
    let app = checked(&iam, |l| l.claim_equals("ext.token_use", ["access"]));
    let nested = iam.mint(json!({"ext": {"token_use": "access"}}));
    assert_ok(&app, &nested, "nested").await;
    // A top-level claim that merely looks like the path is not it.
    let flat = iam.mint(json!({"ext.token_use": "access"}));
    assert_claim_refused(&app, &flat, "ext.token_use", "flat").await;
    let wrong = iam.mint(json!({"ext": {"token_use": "id"}}));
    assert_claim_refused(&app, &wrong, "ext.token_use", "wrong").await;
}

#[tokio::test]
async fn the_checks_hold_on_the_token_validation_too() {
    // The same rules set on TokenValidation directly, not through the
    // layer's builder.
    let iam = TestIam::start().await;
    let validation = iam.validation().claim_equals("token_use", ["access"]);
    let app = app(JwtAuthGuardLayer::new(Verifier::new(
        iam.fetcher(),
        validation,
    )));
    assert_ok(&app, &iam.mint(json!({"token_use": "access"})), "ok").await;
    let token = iam.mint(json!({"token_use": "id"}));
    assert_claim_refused(&app, &token, "token_use", "id").await;
}

#[tokio::test]
async fn client_id_instead_of_audience_admits_an_allowed_client_without_aud() {
    let iam = TestIam::start().await;
    let app = app(no_audience(&iam).client_id_instead_of_audience("client_id", ["web-client"]));
    let cognito = iam.mint(json!({"aud": null, "client_id": "web-client", "token_use": "access"}));
    assert_ok(&app, &cognito, "allowed client").await;
    let other = iam.mint(json!({"aud": null, "client_id": "other-client"}));
    assert_claim_refused(&app, &other, "client_id", "other client").await;
    let none = iam.mint(json!({"aud": null}));
    assert_claim_refused(&app, &none, "client_id", "no client_id").await;
}

#[tokio::test]
async fn client_id_with_audiences_configured_still_requires_aud() {
    let iam = TestIam::start().await;
    let app = checked(&iam, |l| {
        l.client_id_instead_of_audience("client_id", ["web-client"])
    });
    let with_aud = iam.mint(json!({"client_id": "web-client"}));
    assert_ok(&app, &with_aud, "aud and client_id").await;
    let without_aud = iam.mint(json!({"aud": null, "client_id": "web-client"}));
    let (status, _, body) = call_json(&app, bearer(&without_aud)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "invalid_token");
    let wrong_client = iam.mint(json!({"client_id": "other-client"}));
    assert_claim_refused(&app, &wrong_client, "client_id", "wrong client").await;
}

#[tokio::test]
async fn without_audience_or_checks_the_default_is_unchanged() {
    let iam = TestIam::start().await;
    // No audience configured: aud is neither required nor checked.
    let open = app(no_audience(&iam));
    assert_ok(&open, &iam.mint(json!({"aud": null})), "no aud").await;
    assert_ok(&open, &iam.mint(json!({"aud": "any-api"})), "any aud").await;
    assert_ok(&open, &iam.mint(json!({"client_id": "x"})), "any client").await;
    // With an audience (the test IAM's verifier): aud is required.
    let strict = app(JwtAuthGuardLayer::new(iam.verifier()));
    assert_ok(&strict, &iam.mint(json!({})), "test audience").await;
    let (status, _, _) = call_json(&strict, bearer(&iam.mint(json!({"aud": null})))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn the_validation_debug_output_shows_the_checks() {
    let validation = TokenValidation::new("https://iam.example.com")
        .claim_equals("token_use", ["access"])
        .client_id_instead_of_audience("client_id", ["web-client"]);
    let debug = format!("{validation:?}");
    for part in ["token_use", "access", "client_id", "web-client"] {
        assert!(debug.contains(part), "{debug}");
    }
}
