//! JwtAuthGuard end to end: tokens from a loopback test IAM through an
//! axum router.
#![cfg(feature = "test-util")]

mod common;

use common::*;
use http::StatusCode;
use iam_guard::{test_util::TestIam, JwtAuthGuardLayer};
use serde_json::json;

#[tokio::test]
async fn valid_token_reaches_the_handler_with_its_principal() {
    let iam = TestIam::start().await;
    let app = app(JwtAuthGuardLayer::new(iam.verifier()));
    let token = iam.mint(json!({"sub": "alice", "tenantId": "school-1"}));
    let (status, body) = call(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "alice|school-1");
}

#[tokio::test]
async fn missing_token_is_401_without_error_attribute() {
    let iam = TestIam::start().await;
    let app = app(JwtAuthGuardLayer::new(iam.verifier()));
    let (status, challenge, body) = call_json(&app, request("GET", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(body["code"], "invalid_token");
    assert_eq!(body["statusCode"], 401);
    // No token, no reason to ask the IAM anything.
    assert_eq!(iam.jwks_fetches(), 0);
}

#[tokio::test]
async fn optional_auth_still_needs_a_token_on_guarded_routes() {
    use axum::routing::get;
    use iam_guard::{permissions::source::ClaimsSource, Principal, ScopeGuard};
    let iam = TestIam::start().await;
    let layer = JwtAuthGuardLayer::new(iam.verifier())
        .optional()
        .permissions(ClaimsSource::new());
    let app = axum::Router::new()
        .route(
            "/guarded",
            get(|| async { "secret" }).route_layer(ScopeGuard::read("students")),
        )
        .route(
            "/needs-principal",
            get(|p: Principal| async move { p.user_id().to_owned() }),
        )
        .route(
            "/open",
            get(|p: Option<Principal>| async move { format!("{}", p.is_some()) }),
        )
        .layer(layer);
    for path in ["/guarded", "/needs-principal"] {
        let req = http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let (status, challenge, body) = call_json(&app, req).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{path}: a missing token, not a wiring bug"
        );
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        assert_eq!(body["code"], "invalid_token");
    }
    let req = http::Request::get("/open")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(call(&app, req).await, (StatusCode::OK, "false".to_owned()));
}
