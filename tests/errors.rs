//! How JwtAuthGuard denies: the JSON error body, `WWW-Authenticate`, the
//! problem+json and custom renderers, and the audit event every deny emits
//! (which never carries the token).
#![cfg(feature = "test-util")]

mod common;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use axum::{body::Body, routing::get, Router};
use bytes::Bytes;
use common::*;
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use iam_guard::{
    test_util::{IamMode, TestIam},
    ErrorRenderer, JwtAuthGuardLayer,
};
use serde_json::{json, Value};

/// Status, headers and raw body.
async fn raw(app: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let res = send(app, req).await;
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("a body").to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn guard(iam: &TestIam) -> JwtAuthGuardLayer {
    JwtAuthGuardLayer::new(iam.verifier())
        .cookie("access_token")
        .tenant_header(http::HeaderName::from_static("x-org"))
}

/// Header pairs with owned values (tokens are built at run time).
type Headers = Vec<(&'static str, String)>;

fn with_headers(pairs: &[(&str, String)]) -> Request<Body> {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    request("GET", &pairs)
}

fn auth(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn org(tenant: &str) -> (&'static str, String) {
    ("x-org", tenant.to_owned())
}

/// One request per deny this guard can produce, with its expected status
/// and code.
fn denials(iam: &TestIam) -> Vec<(&'static str, Request<Body>, StatusCode, &'static str)> {
    let good = iam.mint(json!({"sub": "u-1", "tenantId": "t-1", "xsrf_token": "x"}));
    let expired = iam.mint(json!({"sub": "u-1", "exp": 1_000_000_000}));
    vec![
        (
            "no token",
            request("GET", &[]),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "expired token",
            with_headers(&[auth(&expired), org("t-1")]),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "two tokens",
            with_headers(&[auth(&good), ("cookie", format!("access_token={good}"))]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "no tenant header",
            with_headers(&[auth(&good)]),
            StatusCode::BAD_REQUEST,
            "TENANT_REQUIRED",
        ),
        (
            "foreign tenant",
            with_headers(&[auth(&good), org("t-2")]),
            StatusCode::FORBIDDEN,
            "TENANT_NOT_PERMITTED",
        ),
        (
            "cookie post without xsrf",
            {
                let cookie = format!("access_token={good}");
                request("POST", &[("cookie", &cookie), ("x-org", "t-1")])
            },
            StatusCode::FORBIDDEN,
            "XSRF_MISMATCH",
        ),
    ]
}

#[tokio::test]
async fn json_body_is_exactly_status_error_code_message() {
    let iam = TestIam::start().await;
    let app = app(guard(&iam));
    for (what, req, status, code) in denials(&iam) {
        let (got, headers, body) = raw(&app, req).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{what}");
        let body: Value = serde_json::from_str(&body).expect("a JSON body");
        let keys: BTreeSet<&str> = body
            .as_object()
            .expect("a JSON object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["statusCode", "error", "code", "message"]),
            "{what}"
        );
        assert_eq!(body["statusCode"], status.as_u16(), "{what}");
        assert_eq!(
            body["error"],
            status.canonical_reason().expect("a known status"),
            "{what}"
        );
        assert_eq!(body["code"], code, "{what}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: a message"
        );
    }
}

#[tokio::test]
async fn iam_unavailable_is_503_with_the_same_body_shape() {
    let iam = TestIam::start().await;
    iam.set_mode(IamMode::Status(500));
    let app = app(guard(&iam));
    let token = iam.mint(json!({"tenantId": "t-1"}));
    let (status, headers, body) = raw(&app, with_headers(&[auth(&token), org("t-1")])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(
        body,
        json!({
            "statusCode": 503,
            "error": "Service Unavailable",
            "code": "IAM_UNAVAILABLE",
            "message": "the IAM's signing keys cannot be obtained",
        })
    );
    // Not the client's fault: no challenge, but a hint when to retry.
    assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn challenge_has_no_error_only_when_no_token_was_sent() {
    let iam = TestIam::start().await;
    let app = app(guard(&iam));
    let (status, challenge, _) = call_json(&app, request("GET", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    // An unrelated cookie is still "no token".
    let (_, challenge, _) = call_json(&app, request("GET", &[("cookie", "theme=dark")])).await;
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    // Anything that was sent as a token and failed names the error.
    let expired = iam.mint(json!({"exp": 1_000_000_000}));
    let sent = [
        vec![auth(&expired)],
        vec![auth("garbage")],
        vec![("authorization", "Bearer ".to_owned())],
        vec![("authorization", "Basic dXNlcjpwYXNz".to_owned())],
        vec![("cookie", "access_token=garbage".to_owned())],
        vec![("cookie", "access_token=".to_owned())],
    ];
    for headers in sent {
        let (status, challenge, body) = call_json(&app, with_headers(&headers)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer error=\"invalid_token\""),
            "{headers:?}: {body}"
        );
    }
}

#[tokio::test]
async fn forbidden_says_insufficient_scope_and_bad_requests_carry_no_challenge() {
    let iam = TestIam::start().await;
    let app = app(guard(&iam));
    for (what, req, status, _) in denials(&iam) {
        let (_, challenge, _) = call_json(&app, req).await;
        let expected = match status {
            // An XSRF failure is not about the token's scope (RFC 6750 §3.1).
            StatusCode::FORBIDDEN if what == "cookie post without xsrf" => None,
            StatusCode::FORBIDDEN => Some("Bearer error=\"insufficient_scope\""),
            StatusCode::BAD_REQUEST => None,
            StatusCode::UNAUTHORIZED if what == "no token" => Some("Bearer"),
            _ => Some("Bearer error=\"invalid_token\""),
        };
        assert_eq!(challenge.as_deref(), expected, "{what}");
    }
}

#[tokio::test]
async fn problem_json_renderer_through_the_layer() {
    let iam = TestIam::start().await;
    let app = app(guard(&iam).error_renderer(ErrorRenderer::problem_json()));
    let token = iam.mint(json!({"tenantId": "t-1"}));
    let cases = [
        (request("GET", &[]), 401, "invalid_token", Some("Bearer")),
        (
            with_headers(&[auth(&token), org("t-2")]),
            403,
            "TENANT_NOT_PERMITTED",
            Some("Bearer error=\"insufficient_scope\""),
        ),
        (with_headers(&[auth(&token)]), 400, "TENANT_REQUIRED", None),
    ];
    for (req, status, code, challenge) in cases {
        let (got, headers, body) = raw(&app, req).await;
        assert_eq!(got.as_u16(), status, "{body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(
            headers
                .get(header::WWW_AUTHENTICATE)
                .map(|v| v.to_str().expect("ASCII")),
            challenge
        );
        let body: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["status"], status);
        assert_eq!(
            body["title"],
            got.canonical_reason().expect("a known status")
        );
        assert_eq!(body["code"], code);
        assert!(body["detail"].is_string());
        assert!(
            body.get("statusCode").is_none(),
            "not the JSON renderer's shape"
        );
    }
}

#[tokio::test]
async fn custom_renderer_is_used_for_every_deny() {
    let iam = TestIam::start().await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let renderer = ErrorRenderer::custom(move |rejection| {
        seen.lock().expect("lock").push(rejection.code().as_str());
        let mut res = Response::new(Bytes::from(format!("denied: {}", rejection.code())));
        *res.status_mut() = rejection.status();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            "text/plain".parse().expect("a header value"),
        );
        res
    });
    let app = app(guard(&iam).error_renderer(renderer));
    let mut expected = Vec::new();
    for (what, req, status, code) in denials(&iam) {
        let (got, headers, body) = raw(&app, req).await;
        assert_eq!(got, status, "{what}");
        assert_eq!(body, format!("denied: {code}"), "{what}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain");
        // The challenge is still added for 401 and the scope 403s.
        assert_eq!(
            headers.contains_key(header::WWW_AUTHENTICATE),
            status != StatusCode::BAD_REQUEST && what != "cookie post without xsrf",
            "{what}"
        );
        expected.push(code);
    }
    assert_eq!(*calls.lock().expect("lock"), expected);
}

#[tokio::test]
async fn custom_renderer_may_set_its_own_challenge() {
    let iam = TestIam::start().await;
    let renderer = ErrorRenderer::custom(|rejection| {
        let mut res = Response::new(Bytes::new());
        *res.status_mut() = rejection.status();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"school\"".parse().expect("a header value"),
        );
        res
    });
    let app = app(guard(&iam).error_renderer(renderer));
    let (status, headers, _) = raw(&app, request("GET", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenges: Vec<_> = headers.get_all(header::WWW_AUTHENTICATE).iter().collect();
    assert_eq!(challenges, ["Bearer realm=\"school\""]);
}

// --- Audit events -------------------------------------------------------------

fn assert_token_absent(events: &[Recorded], token: &str) {
    for event in events {
        for (name, value) in &event.fields {
            assert!(
                !value.contains(token),
                "field {name} of a {} event carries the token",
                event.target
            );
            for segment in token.split('.').filter(|s| s.len() >= 16) {
                assert!(
                    !value.contains(segment),
                    "field {name} of a {} event carries part of the token",
                    event.target
                );
            }
        }
    }
}

#[tokio::test]
async fn every_deny_is_one_audit_event_with_route_and_reason() {
    let (capture, _guard) = capture();
    let iam = TestIam::start().await;
    let app = app(guard(&iam));
    for (what, req, status, code) in denials(&iam) {
        capture.clear();
        let (got, _, body) = call_json(&app, req).await;
        assert_eq!(got, status, "{what}");
        let audit = capture.audit();
        assert_eq!(
            audit.len(),
            1,
            "{what}: one audit event per deny: {audit:?}"
        );
        let event = &audit[0];
        assert_audit_schema(event);
        assert_eq!(event["outcome"], "deny", "{what}");
        assert_eq!(event["guard"], "auth", "{what}");
        assert_eq!(event["code"], code, "{what}");
        assert_eq!(event["status"], status.as_u16().to_string(), "{what}");
        assert_eq!(event["route"], "/me", "{what}");
        assert_eq!(
            event["reason"],
            body["message"].as_str().expect("a message"),
            "{what}"
        );
        assert!(event.contains_key("method"), "{what}");
        assert!(event.contains_key("tenant"), "{what}");
    }
    // An admitted request is not a deny.
    capture.clear();
    let token = iam.mint(json!({"tenantId": "t-1"}));
    let (status, _) = call(&app, with_headers(&[auth(&token), org("t-1")])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(capture.audit().is_empty(), "{:?}", capture.audit());
    // Keys that cannot be fetched deny too.
    let down = TestIam::start().await;
    down.set_mode(IamMode::Status(500));
    let token = down.mint(json!({"tenantId": "t-1"}));
    let down_app = common::app(guard(&down));
    let (status, _, _) = call_json(&down_app, with_headers(&[auth(&token), org("t-1")])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let audit = capture.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["code"], "IAM_UNAVAILABLE");
    assert_eq!(audit[0]["route"], "/me");
}

#[tokio::test]
async fn audit_names_the_user_once_the_token_is_verified() {
    let (capture, _guard) = capture();
    let iam = TestIam::start().await;
    let app = app(guard(&iam));
    let token = iam.mint(json!({"sub": "mallory", "tenantId": "t-1"}));
    // Denied after verification: the user is known.
    let (status, _, _) = call_json(&app, with_headers(&[auth(&token), org("t-9")])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Denied before: it is not.
    let forged = iam.mint(json!({"sub": "mallory", "iss": "https://evil.example.com"}));
    let (status, _, _) = call_json(&app, with_headers(&[auth(&forged), org("t-1")])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let audit = capture.audit();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["user"], "mallory");
    assert_eq!(audit[0]["method"], "GET");
    assert_eq!(audit[1]["user"], "-", "an unverified claim is not a user");
    assert_eq!(audit[1]["reason"], "the token's issuer is not accepted");
}

#[tokio::test]
async fn neither_audit_events_nor_bodies_ever_carry_the_token() {
    let (capture, _guard) = capture();
    let iam = TestIam::start().await;
    let app = app(guard(&iam).max_token_len(4096));
    let valid = iam.mint(json!({"sub": "u-1", "tenantId": "t-1", "xsrf_token": "x"}));
    let expired = iam.mint(json!({"exp": 1_000_000_000}));
    let forged = {
        let mut t = valid.clone();
        t.push('A');
        t
    };
    let too_large = iam.mint(json!({"pad": "p".repeat(5000)}));
    let none = {
        let parts: Vec<&str> = valid.split('.').collect();
        let header = base64_url(&json!({"alg": "none", "kid": "rsa-1"}).to_string());
        format!("{header}.{}.", parts[1])
    };
    let cookie = |t: &str| ("cookie", format!("access_token={t}"));
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("expired", vec![auth(&expired), org("t-1")], &expired),
        ("forged", vec![auth(&forged), org("t-1")], &forged),
        ("too large", vec![auth(&too_large), org("t-1")], &too_large),
        ("alg none", vec![auth(&none), org("t-1")], &none),
        ("two tokens", vec![auth(&valid), cookie(&valid)], &valid),
        ("foreign tenant", vec![auth(&valid), org("t-2")], &valid),
        ("no tenant", vec![auth(&valid)], &valid),
        (
            "cookie, expired",
            vec![cookie(&expired), org("t-1")],
            &expired,
        ),
    ];
    for (what, headers, token) in cases {
        let (status, _, body) = raw(&app, with_headers(&headers)).await;
        assert!(status.is_client_error(), "{what}: {status}");
        assert!(!body.contains(token), "{what}: the body carries the token");
    }
    // XSRF deny on an unsafe method, and a token put in the query string.
    let c = format!("access_token={valid}");
    let req = request(
        "DELETE",
        &[("cookie", &c), ("x-org", "t-1"), ("x-xsrf-token", "y")],
    );
    let (status, _, _) = raw(&app, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let req = Request::builder()
        .uri(format!("/me?access_token={valid}"))
        .body(Body::empty())
        .expect("a request");
    let (status, _, _) = raw(&app, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let events = capture.events();
    assert_eq!(
        capture.audit().len(),
        10,
        "one audit event per deny: {events:?}"
    );
    for token in [&valid, &expired, &forged, &too_large, &none] {
        assert_token_absent(&events, token);
    }
    // The route is the path alone, without the query that held the token.
    assert_eq!(capture.audit().last().expect("an event")["route"], "/me");
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn wiring_error_is_audited_without_the_token() {
    let (capture, _guard) = capture();
    let app = Router::new().route("/me", get(whoami));
    let token =
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEiLCJwYWQiOiJ4eHh4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    let (status, _, body) = call_json(&app, bearer(token)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], "INTERNAL");
    let events = capture.events();
    assert!(
        events.iter().any(|e| e.target == "iam_guard::audit"),
        "the missing guard is reported: {events:?}"
    );
    assert_token_absent(&events, token);
}
