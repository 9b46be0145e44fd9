//! Where JwtAuthGuard finds the token: bearer scheme, named cookie, two
//! tokens, the size limit, the XSRF rule for cookie sessions, optional mode.
#![cfg(feature = "test-util")]

mod common;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{routing::get, Router};
use common::*;
use http::StatusCode;
use iam_guard::{test_util::TestIam, JwtAuthGuardLayer, Principal};
use serde_json::json;

/// `/me` on every method, counting the requests that reach the handler.
fn counting_app(layer: JwtAuthGuardLayer) -> (Router, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let handler = move |p: Principal| {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            format!("{}|{}", p.user_id(), p.tenant_id().unwrap_or("-"))
        }
    };
    let app = Router::new()
        .route(
            "/me",
            get(handler.clone())
                .post(handler.clone())
                .put(handler.clone())
                .patch(handler.clone())
                .delete(handler),
        )
        .layer(layer);
    (app, hits)
}

fn cookie(token: &str) -> String {
    format!("theme=dark; access_token={token}; lang=it")
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let iam = TestIam::start().await;
    let app = app(JwtAuthGuardLayer::new(iam.verifier()));
    let token = iam.mint(json!({"sub": "alice"}));
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {token}");
        let (status, body) = call(&app, request("GET", &[("authorization", &auth)])).await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
        assert_eq!(body, "alice|-");
    }
}

#[tokio::test]
async fn other_authorization_schemes_are_invalid_tokens() {
    let iam = TestIam::start().await;
    let app = app(JwtAuthGuardLayer::new(iam.verifier()));
    let token = iam.mint(json!({}));
    for auth in [
        format!("Token {token}"),
        format!("Basic {token}"),
        token.clone(),
    ] {
        let (status, challenge, body) =
            call_json(&app, request("GET", &[("authorization", &auth)])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
        assert_eq!(body["message"], "the authorization scheme must be Bearer");
    }
}

#[tokio::test]
async fn named_cookie_carries_the_token() {
    let iam = TestIam::start().await;
    let app = app(JwtAuthGuardLayer::new(iam.verifier()).cookie("access_token"));
    let token = iam.mint(json!({"sub": "carol", "tenantId": "t-1"}));
    let (status, body) = call(&app, request("GET", &[("cookie", &cookie(&token))])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "carol|t-1");
    // A quoted cookie value is the same token.
    let quoted = format!("access_token=\"{token}\"");
    let (status, body) = call(&app, request("GET", &[("cookie", &quoted)])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Bearer still works next to the cookie option.
    let (status, _) = call(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn cookie_is_ignored_unless_configured_and_other_cookies_are_not_tokens() {
    let iam = TestIam::start().await;
    let token = iam.mint(json!({}));
    // Not configured: the cookie is not a token, so no token was sent.
    let plain = app(JwtAuthGuardLayer::new(iam.verifier()));
    let (status, challenge, body) =
        call_json(&plain, request("GET", &[("cookie", &cookie(&token))])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(body["message"], "no access token was sent");
    // Configured: a cookie of another name is not ours.
    let with_cookie = app(JwtAuthGuardLayer::new(iam.verifier()).cookie("access_token"));
    let other = format!("session={token}; access_token_old={token}");
    let (status, challenge, _) =
        call_json(&with_cookie, request("GET", &[("cookie", &other)])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
}

#[tokio::test]
async fn no_bearer_reads_only_the_cookie() {
    let iam = TestIam::start().await;
    let app = app(JwtAuthGuardLayer::new(iam.verifier())
        .cookie("access_token")
        .no_bearer());
    let token = iam.mint(json!({}));
    let (status, challenge, _) = call_json(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    // The ignored Authorization header does not count as a second token.
    let auth = format!("Bearer {token}");
    let req = request(
        "GET",
        &[("authorization", &auth), ("cookie", &cookie(&token))],
    );
    let (status, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn two_tokens_in_one_request_are_a_bad_request() {
    let iam = TestIam::start().await;
    let (app, hits) = counting_app(JwtAuthGuardLayer::new(iam.verifier()).cookie("access_token"));
    // The same valid token twice: picking either would succeed, so the 400
    // is about ambiguity, not about one of the tokens being bad.
    let token = iam.mint(json!({}));
    let auth = format!("Bearer {token}");
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "two authorization headers",
            vec![
                ("authorization", auth.clone()),
                ("authorization", auth.clone()),
            ],
        ),
        (
            "bearer and cookie",
            vec![("authorization", auth.clone()), ("cookie", cookie(&token))],
        ),
        (
            "cookie twice in one header",
            vec![(
                "cookie",
                format!("access_token={token}; access_token={token}"),
            )],
        ),
        (
            "cookie in two headers",
            vec![("cookie", cookie(&token)), ("cookie", cookie(&token))],
        ),
    ];
    for (name, headers) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, challenge, body) = call_json(&app, request("GET", &headers)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(body["code"], "invalid_request", "{name}");
        assert_eq!(
            body["message"], "more than one access token was sent",
            "{name}"
        );
        assert_eq!(challenge, None, "{name}: a 400 is not an auth challenge");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no request reached the handler"
    );
    assert_eq!(iam.jwks_fetches(), 0, "no token was verified");
}

#[tokio::test]
async fn token_over_the_default_limit_is_rejected_before_parsing() {
    let iam = TestIam::start().await;
    let app = app(JwtAuthGuardLayer::new(iam.verifier()));
    // 9 KiB that is not even base64: parsing it would say "malformed".
    let junk = "!".repeat(9 * 1024);
    let (status, challenge, body) = call_json(&app, bearer(&junk)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
    assert_eq!(body["code"], "invalid_token");
    assert_eq!(body["message"], "the access token is too large");
    // A well-formed token with a kid the IAM does not know, padded past
    // 8 KiB: verifying it would ask the IAM for keys.
    let big = iam.key().sign_with_header(
        &json!({"alg": "RS256", "kid": "unknown-kid"}),
        &json!({"sub": "x", "pad": "a".repeat(9 * 1024)}),
    );
    let (status, _, body) = call_json(&app, bearer(&big)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "the access token is too large");
    assert_eq!(
        iam.jwks_fetches(),
        0,
        "an oversized token never reaches the verifier"
    );
    // The same junk under a raised limit is parsed, and is malformed.
    let raised = app_with_limit(&iam, 16 * 1024);
    let (status, _, body) = call_json(&raised, bearer(&junk)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "the access token is malformed");
}

fn app_with_limit(iam: &TestIam, max: usize) -> Router {
    app(JwtAuthGuardLayer::new(iam.verifier()).max_token_len(max))
}

#[tokio::test]
async fn configured_limit_applies_to_valid_tokens_and_cookies() {
    let iam = TestIam::start().await;
    let token = iam.mint(json!({}));
    let tight = app(JwtAuthGuardLayer::new(iam.verifier())
        .cookie("access_token")
        .max_token_len(token.len() - 1));
    let (status, _, body) = call_json(&tight, bearer(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "the access token is too large");
    let (status, _, body) = call_json(&tight, request("GET", &[("cookie", &cookie(&token))])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "the access token is too large");
    assert_eq!(iam.jwks_fetches(), 0);
    // Exactly at the limit is fine.
    let exact = app_with_limit(&iam, token.len());
    let (status, body) = call(&exact, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn cookie_tokens_on_unsafe_methods_need_the_xsrf_header() {
    let iam = TestIam::start().await;
    let (app, hits) = counting_app(JwtAuthGuardLayer::new(iam.verifier()).cookie("access_token"));
    let token = iam.mint(json!({"sub": "dave", "xsrf_token": "s3cret-xsrf"}));
    let cookie = cookie(&token);
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let before = hits.load(Ordering::SeqCst);
        for (what, xsrf) in [
            ("missing", None),
            ("different", Some("s3cret-xsrF")),
            ("prefix", Some("s3cret")),
            ("empty", Some("")),
        ] {
            let mut headers = vec![("cookie", cookie.as_str())];
            headers.extend(xsrf.map(|v| ("x-xsrf-token", v)));
            let (status, _, body) = call_json(&app, request(method, &headers)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {what}");
            assert_eq!(body["code"], "XSRF_MISMATCH", "{method} {what}");
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            before,
            "{method}: denied before the handler"
        );
        let req = request(
            method,
            &[("cookie", &cookie), ("x-xsrf-token", "s3cret-xsrf")],
        );
        let (status, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::OK, "{method}: {body}");
        assert_eq!(body, "dave|-");
    }
}

#[tokio::test]
async fn safe_methods_and_bearer_tokens_need_no_xsrf_header() {
    let iam = TestIam::start().await;
    let (app, _) = counting_app(JwtAuthGuardLayer::new(iam.verifier()).cookie("access_token"));
    let token = iam.mint(json!({"xsrf_token": "s3cret-xsrf"}));
    let (status, body) = call(&app, request("GET", &[("cookie", &cookie(&token))])).await;
    assert_eq!(status, StatusCode::OK, "GET with a cookie: {body}");
    // A browser never attaches a bearer token on its own: no CSRF risk.
    let auth = format!("Bearer {token}");
    for method in ["POST", "DELETE"] {
        let (status, body) = call(&app, request(method, &[("authorization", &auth)])).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{method} with a bearer token: {body}"
        );
    }
}

#[tokio::test]
async fn cookie_token_without_xsrf_claim_never_passes_unsafe_methods() {
    let iam = TestIam::start().await;
    let (app, _) = counting_app(JwtAuthGuardLayer::new(iam.verifier()).cookie("access_token"));
    for (what, claims) in [
        ("no claim", json!({})),
        ("empty claim", json!({"xsrf_token": ""})),
        ("non-string claim", json!({"xsrf_token": 1234})),
    ] {
        let token = iam.mint(claims);
        for xsrf in ["", "1234", "undefined"] {
            let req = request(
                "POST",
                &[("cookie", &cookie(&token)), ("x-xsrf-token", xsrf)],
            );
            let (status, _, body) = call_json(&app, req).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{what}, header {xsrf:?}");
            assert_eq!(body["code"], "XSRF_MISMATCH");
        }
    }
}

#[tokio::test]
async fn xsrf_check_can_be_turned_off() {
    let iam = TestIam::start().await;
    let (app, _) = counting_app(
        JwtAuthGuardLayer::new(iam.verifier())
            .cookie("access_token")
            .xsrf(false),
    );
    let token = iam.mint(json!({"xsrf_token": "s3cret-xsrf"}));
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let (status, body) = call(&app, request(method, &[("cookie", &cookie(&token))])).await;
        assert_eq!(status, StatusCode::OK, "{method}: {body}");
    }
}

/// `token` with one character of its signature changed.
fn flip_signature_char(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let at = bytes.len() - 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("base64url is ASCII")
}

async fn maybe_me(p: Option<Principal>) -> String {
    match p {
        Some(p) => format!("user:{}", p.user_id()),
        None => "anonymous".to_owned(),
    }
}

#[tokio::test]
async fn optional_mode_lets_tokenless_requests_through_but_not_bad_tokens() {
    let iam = TestIam::start().await;
    let app = Router::new()
        .route("/me", get(maybe_me))
        .layer(JwtAuthGuardLayer::new(iam.verifier()).optional());
    let (status, body) = call(&app, request("GET", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "anonymous");
    let token = iam.mint(json!({"sub": "erin"}));
    let (status, body) = call(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "user:erin");
    // A token that is sent must be valid: no silent downgrade to anonymous.
    let expired = iam.mint(json!({"exp": 1_000_000_000}));
    let forged = flip_signature_char(&token);
    for bad in [expired.as_str(), forged.as_str(), "not-a-jwt"] {
        let (status, challenge, body) = call_json(&app, bearer(bad)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
        assert_eq!(body["code"], "invalid_token");
    }
}

#[tokio::test]
async fn without_optional_a_tokenless_request_never_reaches_the_handler() {
    let iam = TestIam::start().await;
    let app = Router::new()
        .route("/me", get(maybe_me))
        .layer(JwtAuthGuardLayer::new(iam.verifier()));
    let (status, challenge, body) = call_json(&app, request("GET", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(body["code"], "invalid_token");
}

#[tokio::test]
async fn optional_mode_treats_another_authorization_scheme_as_no_token() {
    let iam = TestIam::start().await;
    let app = Router::new()
        .route("/me", get(maybe_me))
        .layer(JwtAuthGuardLayer::new(iam.verifier()).optional());
    // Basic (say, for a proxy or another realm) is not a bearer token:
    // to an optional guard the request is anonymous, not a bad token.
    for value in [
        "Basic dXNlcjpwYXNz",
        "Negotiate abc",
        "Digest username=\"u\"",
    ] {
        let (status, body) = call(&app, request("GET", &[("authorization", value)])).await;
        assert_eq!(status, StatusCode::OK, "{value}");
        assert_eq!(body, "anonymous", "{value}");
    }
    // A Bearer that is malformed is still refused.
    let (status, _) = call(&app, request("GET", &[("authorization", "Bearer")])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // And without optional, another scheme is still a 401.
    let strict = Router::new()
        .route("/me", get(maybe_me))
        .layer(JwtAuthGuardLayer::new(iam.verifier()));
    let (status, _, body) = call_json(
        &strict,
        request("GET", &[("authorization", "Basic dXNlcjpwYXNz")]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "the authorization scheme must be Bearer");
}

/// `GET /me` with an `Authorization` value of any bytes a header can hold.
fn raw_authorization(value: &[u8]) -> http::Request<axum::body::Body> {
    http::Request::builder()
        .uri("/me")
        .header(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_bytes(value).expect("a header can carry obs-text"),
        )
        .body(axum::body::Body::empty())
        .unwrap()
}

#[tokio::test]
async fn an_authorization_header_that_is_not_text_is_a_bad_request_even_beside_a_cached_token() {
    let iam = TestIam::start().await;
    let verifier = iam.verifier();
    let (strict, hits) = counting_app(JwtAuthGuardLayer::new(verifier.clone()));
    let optional = Router::new()
        .route("/me", get(maybe_me))
        .layer(JwtAuthGuardLayer::new(verifier.clone()).optional());
    let token = iam.mint(json!({"sub": "alice"}));
    // Verified once, so cached: a repeat is found by its bytes.
    let (status, _) = call(&strict, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&strict, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verifier.signature_checks(), 1, "the repeat was a cache hit");

    let sent = format!("Bearer {token}").into_bytes();
    let mut last_byte_latin1 = sent.clone();
    *last_byte_latin1.last_mut().unwrap() = 0xE9;
    let mut utf8_appended = sent.clone();
    utf8_appended.extend_from_slice("\u{e9}".as_bytes());
    let mut latin1_scheme = b"B\xe9arer ".to_vec();
    latin1_scheme.extend_from_slice(token.as_bytes());
    let cases = [
        ("the cached token's last byte not ASCII", last_byte_latin1),
        ("a UTF-8 letter after the cached token", utf8_appended),
        ("the scheme not ASCII", latin1_scheme),
        ("a token that is not ASCII", b"Bearer caf\xc3\xa9".to_vec()),
    ];
    for (name, value) in &cases {
        for (mode, app) in [("strict", &strict), ("optional", &optional)] {
            let (status, challenge, body) = call_json(app, raw_authorization(value)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{mode}, {name}: {body}");
            assert_eq!(body["code"], "invalid_request", "{mode}, {name}");
            assert_eq!(
                body["message"], "authorization header is not visible ASCII",
                "{mode}, {name}"
            );
            assert_eq!(challenge, None, "{mode}, {name}");
        }
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2, "only the two good requests");
    assert_eq!(
        verifier.signature_checks(),
        1,
        "nothing that is not text was verified"
    );
    assert_eq!(iam.jwks_fetches(), 1, "and no key was fetched for it");
}
