//! Opaque access tokens at the guard: introspected at the IAM (RFC 7662)
//! beside locally verified JWTs, with the answer cached (a hit makes no
//! call), mapped to the same principal, refused once the IAM says the
//! token is inactive (after the cache bound), a 503 and never a guess when
//! the IAM cannot answer with nothing cached, and bound like a JWT when the
//! answer carries `cnf`. The IAM is the test kit's development IAM, which
//! issues opaque tokens and answers `POST /introspect`.
//!
//! `tests/introspection.rs` tests the introspector itself, against the test
//! kit's endpoint and a real oidc-provider.
#![cfg(feature = "test-util")]

mod common;

use std::time::Duration;

use axum::{body::Body, routing::get, Router};
use common::call_json;
use http::{Request, StatusCode};
use iam_guard::{
    jwt::introspection::Introspector,
    revocation::{unix_now, Revocations},
    test_util::{DpopKey, TestIam, DEV_CLIENT_ID, DEV_CLIENT_SECRET},
    Dpop, JwtAuthGuardLayer, Principal, RoleGuard,
};
use serde_json::{json, Value};

const URL: &str = "https://api.test/me";

fn introspector(iam: &TestIam, max_ttl: Duration) -> Introspector {
    Introspector::builder(&iam.introspection_url(), iam.issuer())
        .client_secret_basic(DEV_CLIENT_ID, DEV_CLIENT_SECRET)
        .max_ttl(max_ttl)
        .build()
        .expect("a valid endpoint")
}

/// `/me` (anyone) and `/admin` (role admin) behind `auth`.
fn app(auth: JwtAuthGuardLayer) -> Router {
    let me = |p: Principal| async move {
        let roles: Vec<String> = p.roles().iter().map(ToString::to_string).collect();
        format!(
            "{}|{}|{}",
            p.user_id(),
            p.tenant_id().unwrap_or("-"),
            roles.join(",")
        )
    };
    Router::new()
        .route("/me", get(me))
        .route("/admin", get(me).route_layer(RoleGuard::any_of(["admin"])))
        .layer(auth)
}

fn bearer(path: &str, token: &str) -> Request<Body> {
    Request::builder()
        .uri(path)
        .header("host", "api.test")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

async fn answer(router: &Router, req: Request<Body>) -> (StatusCode, Value, String) {
    let res = common::send(router, req).await;
    let status = res.status();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    let json =
        serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
    (status, json, retry)
}

#[tokio::test]
async fn opaque_tokens_are_introspected_once_and_jwts_verified_locally_beside_them() {
    let iam = TestIam::start().await;
    let introspector = introspector(&iam, Duration::from_secs(300));
    let router = app(JwtAuthGuardLayer::new(iam.verifier()).introspection(introspector.clone()));
    let opaque =
        iam.mint_opaque(json!({"sub": "u-opaque", "tenantId": "school-1", "roles": ["admin"]}));
    assert!(!opaque.contains('.'));
    for _ in 0..3 {
        let (status, body, _) = answer(&router, bearer("/admin", &opaque)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!("u-opaque|school-1|admin"));
    }
    assert_eq!(introspector.calls(), 1, "a cached answer makes no call");
    // A JWT of the same IAM never reaches the introspection endpoint.
    let jwt = iam.mint(json!({"sub": "u-jwt"}));
    let (status, body, _) = answer(&router, bearer("/me", &jwt)).await;
    assert_eq!((status, body), (StatusCode::OK, json!("u-jwt|-|")));
    assert_eq!(introspector.calls(), 1);
    // Roles from the answer are the roles guards check.
    let teacher = iam.mint_opaque(json!({"sub": "u-t", "roles": ["teacher"]}));
    let (status, body, _) = answer(&router, bearer("/admin", &teacher)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("ROLE_REQUIRED"))
    );
    // Unknown opaque tokens are inactive: 401, asked once per inactive TTL.
    for _ in 0..2 {
        let (status, body, _) = answer(&router, bearer("/me", "not-a-token-the-iam-issued")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "invalid_token");
        assert_eq!(body["message"], "the token is not active");
    }
    assert_eq!(introspector.calls(), 3);
}

#[tokio::test]
async fn a_token_deactivated_at_the_iam_is_refused_once_its_cache_bound_passes() {
    let iam = TestIam::start().await;
    let introspector = introspector(&iam, Duration::from_millis(300));
    let router = app(JwtAuthGuardLayer::new(iam.verifier()).introspection(introspector.clone()));
    let opaque = iam.mint_opaque(json!({"sub": "u-1"}));
    assert_eq!(
        answer(&router, bearer("/me", &opaque)).await.0,
        StatusCode::OK
    );
    iam.deactivate_opaque(&opaque);
    // Within the bound the answer is the cached one; past it, the IAM's.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body, _) = answer(&router, bearer("/me", &opaque)).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["message"], "the token is not active");
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            std::time::Instant::now() < deadline,
            "the revocation never showed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_iam_that_cannot_answer_is_503_with_nothing_cached_and_never_a_guess() {
    let iam = TestIam::start().await;
    let introspector = introspector(&iam, Duration::from_secs(300));
    let router = app(JwtAuthGuardLayer::new(iam.verifier()).introspection(introspector));
    let known = iam.mint_opaque(json!({"sub": "u-known"}));
    let unknown = iam.mint_opaque(json!({"sub": "u-new"}));
    assert_eq!(
        answer(&router, bearer("/me", &known)).await.0,
        StatusCode::OK
    );
    iam.stop();
    let (status, body, retry) = answer(&router, bearer("/me", &unknown)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "IAM_UNAVAILABLE");
    assert_eq!(retry, "5");
    // What was cached before the outage still answers, until its bound.
    assert_eq!(
        answer(&router, bearer("/me", &known)).await.0,
        StatusCode::OK
    );
    // Wrong credentials are the service's problem, not the caller's: 503.
    iam.restart().await;
    let wrong = Introspector::builder(&iam.introspection_url(), iam.issuer())
        .client_secret_basic(DEV_CLIENT_ID, "not-the-secret")
        .build()
        .unwrap();
    let router = app(JwtAuthGuardLayer::new(iam.verifier()).introspection(wrong));
    assert_eq!(
        answer(&router, bearer("/me", &unknown)).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_dpop_bound_opaque_token_needs_its_proof_and_revocations_apply() {
    let iam = TestIam::start().await;
    let revocations = Revocations::new();
    let auth = JwtAuthGuardLayer::new(iam.verifier())
        .introspection(introspector(&iam, Duration::from_secs(300)))
        .dpop(Dpop::allowed())
        .revocations(revocations.clone());
    let router = app(auth);
    let key = DpopKey::es256();
    let mut claims = key.cnf();
    claims["sub"] = json!("u-bound");
    let opaque = iam.mint_opaque(claims);
    let (status, body, _) = answer(&router, bearer("/me", &opaque)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["message"],
        "a DPoP-bound access token must be sent with the DPoP scheme"
    );
    let with_proof = |proof: String| {
        Request::builder()
            .uri("/me")
            .header("host", "api.test")
            .header("authorization", format!("DPoP {opaque}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap()
    };
    let (status, body, _) = answer(&router, with_proof(key.proof("GET", URL, &opaque))).await;
    assert_eq!((status, body), (StatusCode::OK, json!("u-bound|-|")));
    // A revocation of the user covers their opaque tokens too.
    revocations.revoke_user("u-bound", None, unix_now() + 1);
    let (status, _, body) = call_json(&router, with_proof(key.proof("GET", URL, &opaque))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "the token has been revoked");
}

#[tokio::test]
async fn introspect_only_sends_every_token_to_the_iam() {
    let iam = TestIam::start().await;
    let introspector = introspector(&iam, Duration::from_secs(300));
    let router = app(JwtAuthGuardLayer::introspect_only(introspector.clone()));
    let opaque = iam.mint_opaque(json!({"sub": "u-1"}));
    assert_eq!(
        answer(&router, bearer("/me", &opaque)).await.0,
        StatusCode::OK
    );
    // A JWT is introspected too, and this IAM knows it as no opaque token.
    let jwt = iam.mint(json!({}));
    let (status, body, _) = answer(&router, bearer("/me", &jwt)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "the token is not active");
    assert_eq!(introspector.calls(), 2);
}

#[tokio::test]
async fn the_development_iam_issues_opaque_tokens_on_request() {
    let iam = TestIam::start().await;
    let router = app(JwtAuthGuardLayer::new(iam.verifier())
        .introspection(introspector(&iam, Duration::from_secs(60))));
    let res = reqwest::Client::new()
        .post(format!("{}/token", iam.issuer()))
        .header("content-type", "application/json")
        .body(json!({"claims": {"sub": "u-dev"}, "format": "opaque"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "{token}");
    assert_eq!(
        answer(&router, bearer("/me", token)).await.1,
        json!("u-dev|-|")
    );
    // Its introspection endpoint wants this service's credentials.
    let res = reqwest::Client::new()
        .post(iam.introspection_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
