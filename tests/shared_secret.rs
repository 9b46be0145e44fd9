//! Shared-secret (HMAC) signatures: accepted only with an explicitly
//! configured secret of exactly the token's algorithm, never mixed up with
//! the JWKS, and held to every other check.
#![cfg(feature = "test-util")]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use common::*;
use http::StatusCode;
use iam_guard::{
    jwt::secret::SecretError,
    test_util::{TestIam, TEST_AUDIENCE},
    Algorithm, JwtAuthGuardLayer, SharedSecret, TokenValidation, Verifier,
};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

const ISSUER: &str = "https://auth.school.internal";
/// 40 bytes: long enough for HS256, not for HS384 or HS512.
const SECRET: &[u8] = b"in-house-iam-hs256-secret-0123456789abcd";
/// 64 bytes, for HS384 and HS512.
const LONG_SECRET: &[u8] = b"in-house-iam-hs512-secret-0123456789abcdefghijklmnopqrstuvwxyz01";

const ALGORITHM_REJECTED: &str = "the token's algorithm is not accepted";
const BAD_SIGNATURE: &str = "the token's signature is invalid";
const UNKNOWN_KEY: &str = "the token's signing key is unknown";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Valid claims from `issuer` for [`TEST_AUDIENCE`].
fn claims_from(issuer: &str) -> Value {
    json!({
        "iss": issuer,
        "sub": "hs-user",
        "aud": TEST_AUDIENCE,
        "iat": now(),
        "exp": now() + 300,
    })
}

fn claims() -> Value {
    claims_from(ISSUER)
}

/// A token signed with HMAC `alg` under `secret`, by jsonwebtoken: a
/// second implementation, so the tokens are not ours checked by ours.
fn hs(alg: Algorithm, secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let alg: jsonwebtoken::Algorithm = alg.as_str().parse().expect("jsonwebtoken has it");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("hmac signs")
}

fn hs256(kid: Option<&str>) -> String {
    hs(Algorithm::HS256, SECRET, kid, &claims())
}

fn secret() -> SharedSecret {
    SharedSecret::new(Algorithm::HS256, SECRET).expect("40 bytes is enough for HS256")
}

/// `JwtAuthGuardLayer::shared_secret` for [`ISSUER`], requiring
/// [`TEST_AUDIENCE`].
fn secret_app(secret: SharedSecret) -> Router {
    app(JwtAuthGuardLayer::shared_secret(ISSUER, secret).audience([TEST_AUDIENCE]))
}

/// 401 `invalid_token` with the RFC 6750 challenge and exactly `message`.
async fn assert_rejected(app: &Router, token: &str, message: &str, context: &str) {
    assert_eq!(
        assert_invalid_token(app, token, context).await,
        message,
        "{context}"
    );
}

#[tokio::test]
async fn hs256_signed_with_the_configured_secret_is_accepted() {
    let layer = JwtAuthGuardLayer::shared_secret(ISSUER, secret()).audience([TEST_AUDIENCE]);
    let verifier = layer.verifier().clone();
    let app = app(layer);
    let token = hs256(None);
    let (status, body) = call(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "hs-user|-");
    // The verified-token cache serves HMAC tokens like any other.
    let (status, _) = call(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verifier.signature_checks(), 1);
}

#[tokio::test]
async fn hs256_signed_with_another_secret_is_rejected() {
    let app = secret_app(secret());
    let other = b"another-secret-of-the-same-length-0123456";
    let forged = hs(Algorithm::HS256, other, None, &claims());
    assert_rejected(&app, &forged, BAD_SIGNATURE, "other secret").await;
    // One byte off is as wrong as any other secret.
    let mut near = SECRET.to_vec();
    near[0] ^= 1;
    let forged = hs(Algorithm::HS256, &near, None, &claims());
    assert_rejected(&app, &forged, BAD_SIGNATURE, "one bit off").await;
}

#[tokio::test]
async fn a_secret_verifies_its_own_algorithm_only() {
    // HS256 configured: HS384 and HS512 are not accepted, even with the
    // same secret bytes.
    let app = secret_app(secret());
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token = hs(alg, LONG_SECRET, None, &claims());
        assert_rejected(&app, &token, ALGORITHM_REJECTED, &format!("{alg:?}")).await;
        let token = hs(alg, SECRET, None, &claims());
        assert_rejected(&app, &token, ALGORITHM_REJECTED, &format!("{alg:?}")).await;
    }
    // And the other way round: an HS512 secret does not accept HS256.
    let hs512 = SharedSecret::new(Algorithm::HS512, LONG_SECRET).unwrap();
    let app = secret_app(hs512);
    let token = hs(Algorithm::HS256, LONG_SECRET, None, &claims());
    assert_rejected(&app, &token, ALGORITHM_REJECTED, "HS256 on HS512").await;
    let token = hs(Algorithm::HS512, LONG_SECRET, None, &claims());
    let (status, body) = call(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_secret_with_a_kid_refuses_other_kids_and_accepts_none() {
    let app = secret_app(secret().kid("hs-2024"));
    let (status, body) = call(&app, bearer(&hs256(Some("hs-2024")))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&app, bearer(&hs256(None))).await;
    assert_eq!(status, StatusCode::OK, "no kid: {body}");
    assert_rejected(&app, &hs256(Some("hs-2023")), UNKNOWN_KEY, "wrong kid").await;
    assert_rejected(&app, &hs256(Some("HS-2024")), UNKNOWN_KEY, "kid case").await;
}

#[tokio::test]
async fn a_secret_without_kid_accepts_tokens_with_and_without_one() {
    let app = secret_app(secret());
    for kid in [None, Some("whatever-the-iam-sends")] {
        let (status, body) = call(&app, bearer(&hs256(kid))).await;
        assert_eq!(status, StatusCode::OK, "{kid:?}: {body}");
    }
}

#[test]
fn a_secret_shorter_than_the_hash_output_is_refused_at_configuration() {
    for (alg, min) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        for len in [0, 1, min - 1] {
            let err = SharedSecret::new(alg, vec![b'x'; len]).unwrap_err();
            assert_eq!(err, SecretError::TooShort { alg, min, len });
            let message = err.to_string();
            assert!(
                message.contains(&format!("at least {min} bytes")),
                "{message}"
            );
            assert!(message.contains(&format!("{alg:?}")), "{message}");
        }
        assert!(SharedSecret::new(alg, vec![b'x'; min]).is_ok());
    }
}

#[test]
fn an_asymmetric_algorithm_is_not_a_shared_secret() {
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        assert_eq!(
            SharedSecret::new(alg, LONG_SECRET).unwrap_err(),
            SecretError::NotHmac
        );
    }
}

#[tokio::test]
async fn an_rs256_token_against_a_secret_only_verifier_is_401_and_fetches_nothing() {
    let iam = TestIam::start().await;
    let layer = JwtAuthGuardLayer::shared_secret(iam.issuer(), secret()).audience([TEST_AUDIENCE]);
    let verifier = layer.verifier().clone();
    let app = app(layer);
    let token = iam.mint(json!({}));
    for _ in 0..3 {
        assert_rejected(&app, &token, UNKNOWN_KEY, "RS256 on secret only").await;
    }
    assert_eq!(iam.jwks_fetches(), 0);
    assert_eq!(iam.discovery_fetches(), 0);
    assert_eq!(verifier.jwks().fetch_count(), 0);
    assert_eq!(verifier.signature_checks(), 0);
    // Warming up a verifier without a JWKS has nothing to do.
    verifier.jwks().warm_up().await.unwrap();
    assert_eq!(verifier.jwks().fetch_count(), 0);
}

#[tokio::test]
async fn a_verifier_with_a_jwks_and_a_secret_accepts_both_kinds() {
    let iam = TestIam::start().await;
    let verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .shared_secret(secret())
        .build();
    let app = app(JwtAuthGuardLayer::new(verifier));
    let rs256 = iam.mint(json!({"sub": "from-the-iam"}));
    let (status, body) = call(&app, bearer(&rs256)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "from-the-iam|-");
    let hs = hs(Algorithm::HS256, SECRET, None, &claims_from(iam.issuer()));
    let (status, body) = call(&app, bearer(&hs)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "hs-user|-");
}

#[tokio::test]
async fn builder_methods_keep_the_secret() {
    // Each builder method rebuilds the verifier (`with_rules`); the
    // secret must survive all of them.
    let app = app(JwtAuthGuardLayer::shared_secret(ISSUER, secret())
        .audience([TEST_AUDIENCE])
        .leeway(std::time::Duration::from_secs(5))
        .claims(iam_guard::ClaimMapping::default()));
    let (status, body) = call(&app, bearer(&hs256(None))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[test]
fn debug_output_never_contains_the_secret() {
    let secret = secret().kid("hs-2024");
    let layer = JwtAuthGuardLayer::shared_secret(ISSUER, secret.clone());
    let text = std::str::from_utf8(SECRET).unwrap();
    let bytes = format!("{:?}", SECRET);
    let bytes = bytes.trim_start_matches('[').trim_end_matches(']');
    for debug in [
        format!("{secret:?}"),
        format!("{layer:?}"),
        format!("{:?}", layer.verifier()),
    ] {
        assert!(debug.contains("HS256"), "{debug}");
        assert!(!debug.contains(text), "{debug}");
        assert!(!debug.contains(&text[..16]), "{debug}");
        assert!(!debug.contains(bytes), "{debug}");
    }
}

#[tokio::test]
async fn an_expired_hs_token_is_rejected() {
    let app = secret_app(secret());
    let expired = json!({
        "iss": ISSUER,
        "sub": "hs-user",
        "aud": TEST_AUDIENCE,
        "exp": now() - 3600,
    });
    let token = hs(Algorithm::HS256, SECRET, None, &expired);
    assert_rejected(&app, &token, "the token has expired", "expired").await;
}

#[tokio::test]
async fn an_hs_token_from_another_issuer_is_rejected() {
    let app = secret_app(secret());
    let token = hs(
        Algorithm::HS256,
        SECRET,
        None,
        &claims_from("https://elsewhere.example"),
    );
    assert_rejected(&app, &token, "the token's issuer is not accepted", "iss").await;
}

#[tokio::test]
async fn an_hs_token_for_another_audience_is_rejected() {
    let app = secret_app(secret());
    let mut claims = claims();
    claims["aud"] = json!("another-api");
    let token = hs(Algorithm::HS256, SECRET, None, &claims);
    assert_rejected(&app, &token, "the token's audience is not accepted", "aud").await;
}

#[tokio::test]
async fn header_rules_apply_to_hs_tokens() {
    let app = secret_app(secret());
    for (what, header, message) in [
        (
            "crit",
            json!({"alg": "HS256", "crit": ["exp"], "exp": 1}),
            "the token header is not accepted: crit names an unsupported extension",
        ),
        (
            "nested",
            json!({"alg": "HS256", "cty": "JWT"}),
            "the token header is not accepted: nested tokens are not accepted",
        ),
        (
            "empty kid",
            json!({"alg": "HS256", "kid": ""}),
            "the token header is not accepted: kid is empty or too long",
        ),
    ] {
        let token = iam_guard::test_util::sign_hs256(SECRET, &header, &claims());
        assert_rejected(&app, &token, message, what).await;
    }
    // The at+jwt profile holds for HS tokens too.
    let app = app_with_profile();
    let (status, _) = call(&app, bearer(&hs256(None))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let token = iam_guard::test_util::sign_hs256(
        SECRET,
        &json!({"alg": "HS256", "typ": "at+jwt"}),
        &claims(),
    );
    let (status, body) = call(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn app_with_profile() -> Router {
    app(JwtAuthGuardLayer::new(Verifier::with_shared_secret(
        secret(),
        TokenValidation::new(ISSUER)
            .audience([TEST_AUDIENCE])
            .access_token_profile(),
    )))
}

#[tokio::test]
async fn claim_value_checks_apply_to_hs_tokens() {
    let app = app(JwtAuthGuardLayer::shared_secret(ISSUER, secret())
        .audience([TEST_AUDIENCE])
        .claim_equals("token_use", ["access"]));
    let mut access = claims();
    access["token_use"] = json!("access");
    let (status, body) = call(&app, bearer(&hs(Algorithm::HS256, SECRET, None, &access))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_rejected(
        &app,
        &hs256(None),
        "the token's `token_use` claim is not accepted",
        "no token_use",
    )
    .await;
}
