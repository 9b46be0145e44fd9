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

#[tokio::test]
async fn builders_copy_on_write_and_never_panic_on_a_shared_layer() {
    use iam_guard::{ClaimsSource, ErrorRenderer, FieldFilterLayer, FieldWriteGuardLayer};
    let iam = TestIam::start().await;
    let token = iam.mint(json!({"sub": "alice"}));
    let base = JwtAuthGuardLayer::new(iam.verifier());
    // The layer is in use (its configuration shared with a router's
    // services) and cloned, then configured further: no panic, and the
    // router in use keeps the configuration it was built with.
    let in_use = app(base.clone());
    let changed = base
        .clone()
        .audience(["another-api"])
        .cookie("session")
        .xsrf(false)
        .max_token_len(4096)
        .tenant_header(http::HeaderName::from_static("x-org"))
        .error_renderer(ErrorRenderer::problem_json())
        .permissions(ClaimsSource::new())
        .super_user_bypass(true)
        .drain_limit(0)
        .optional();
    assert_eq!(call(&in_use, bearer(&token)).await.0, StatusCode::OK);
    assert_eq!(call(&app(base), bearer(&token)).await.0, StatusCode::OK);
    let changed = app(changed);
    let res = send(&changed, bearer(&token)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the new audience");
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "the new renderer"
    );
    // The field guards build the same way.
    let write = FieldWriteGuardLayer::new();
    let _ = (write.clone().limit(1).entity("a"), write.limit(2));
    let filter = FieldFilterLayer::new();
    let _ = (
        filter.clone().limit(1).entity("a"),
        filter.always_allowed(["id"]),
    );
}

#[tokio::test]
async fn issuer_alone_configures_discovery_and_the_iss_check() {
    let iam = TestIam::start().await;
    let layer = JwtAuthGuardLayer::issuer(iam.issuer())
        .unwrap()
        .audience([iam_guard::test_util::TEST_AUDIENCE]);
    let app = app(layer.clone());
    let token = iam.mint(json!({"sub": "alice", "tenantId": "t-1"}));
    assert_eq!(
        call(&app, bearer(&token)).await,
        (StatusCode::OK, "alice|t-1".to_owned())
    );
    assert_eq!(iam.discovery_fetches(), 1, "keys found through discovery");
    // RS256 only by default; other algorithms are a builder call away.
    let ec = iam.add_key(iam_guard::test_util::TestKey::ec_p256("ec-1"));
    let es256 = iam.mint_with(&ec, json!({}));
    assert_eq!(call(&app, bearer(&es256)).await.0, StatusCode::UNAUTHORIZED);
    let both =
        common::app(layer.algorithms([iam_guard::Algorithm::RS256, iam_guard::Algorithm::ES256]));
    assert_eq!(call(&both, bearer(&es256)).await.0, StatusCode::OK);
    // A token naming another issuer is refused, even signed by a known key.
    let (status, _, body) = call_json(
        &app,
        bearer(&iam.mint(json!({"iss": "https://other.example.com"}))),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "the token's issuer is not accepted");
    assert!(JwtAuthGuardLayer::issuer("not a url").is_err());
}
