//! RFC 8725 token validation through JwtAuthGuard: the algorithm
//! allow-list, key/algorithm agreement, registered claims, header members
//! that are never honoured, and hostile input that must be a clean 401.
#![cfg(feature = "test-util")]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{
    rand::SystemRandom,
    rsa::{KeyPair, KeySize},
    signature::{KeyPair as _, RSA_PKCS1_SHA256},
};
use axum::Router;
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD},
    Engine as _,
};
use common::*;
use http::StatusCode;
use iam_guard::{
    test_util::{merge, sign_hs256, TestIam, TestKey, TEST_AUDIENCE},
    Algorithm, JwtAuthGuardLayer, TokenValidation, Verifier,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// RS256 only (the crate default) for [`TEST_AUDIENCE`].
fn rs256_only(iam: &TestIam) -> TokenValidation {
    TokenValidation::new(iam.issuer()).audience([TEST_AUDIENCE])
}

fn guarded(iam: &TestIam, validation: TokenValidation) -> Router {
    app(JwtAuthGuardLayer::new(Verifier::new(
        iam.fetcher(),
        validation,
    )))
}

async fn assert_accepted(app: &Router, token: &str) {
    let (status, body) = call(app, bearer(token)).await;
    assert_eq!(status, StatusCode::OK, "expected acceptance, got {body}");
}

/// 401 `invalid_token` with exactly `message`, and no trace of the token
/// (whole or any segment) in the body.
async fn assert_rejected(app: &Router, token: &str, message: &str) {
    let (status, challenge, body) = call_json(app, bearer(token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
    assert_eq!(body["code"], "invalid_token");
    assert_eq!(body["message"], message, "{body}");
    assert_no_token_in(&body.to_string(), token);
}

fn assert_no_token_in(text: &str, token: &str) {
    assert!(!text.contains(token), "the token leaked: {text}");
    for segment in token.split('.').filter(|s| s.len() >= 16) {
        assert!(!text.contains(segment), "a token segment leaked: {text}");
    }
}

const ALGORITHM_REJECTED: &str = "the token's algorithm is not accepted";
const KEY_MISMATCH: &str = "the token's algorithm does not match its key";
const BAD_SIGNATURE: &str = "the token's signature is invalid";
const MALFORMED: &str = "the access token is malformed";
const UNKNOWN_KEY: &str = "the token's signing key is unknown";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An RS256 key that signs any signing input as given, for encodings
/// [`TestKey`] never produces (padding, the standard alphabet).
struct RawSigner {
    kid: &'static str,
    pair: KeyPair,
}

impl RawSigner {
    fn new(kid: &'static str) -> Self {
        Self {
            kid,
            pair: KeyPair::generate(KeySize::Rsa2048).expect("rsa keygen"),
        }
    }

    fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        })
    }

    fn header(&self) -> String {
        json!({"alg": "RS256", "kid": self.kid}).to_string()
    }

    fn signature(&self, signing_input: &str) -> Vec<u8> {
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .expect("rsa sign");
        sig
    }

    /// `header.payload.signature` with the signature over exactly
    /// `header.payload` as given.
    fn sign(&self, header: &str, payload: &str) -> String {
        let input = format!("{header}.{payload}");
        format!("{input}.{}", b64(self.signature(&input)))
    }
}

/// `token` with its payload replaced by `claims`, signature kept.
fn with_payload(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], b64(claims.to_string()), parts[2])
}

/// `token` with its header replaced by `header`, signature kept.
fn with_header(token: &str, header: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", b64(header.to_string()), parts[1], parts[2])
}

// --- Algorithms -----------------------------------------------------------

#[tokio::test]
async fn default_allow_list_is_rs256_only() {
    let iam = TestIam::start().await;
    let ec = iam.add_key(TestKey::ec_p256("ec-1"));
    let ed = iam.add_key(TestKey::ed25519("ed-1"));
    let pss = iam.add_key(TestKey::rsa_pss("pss-1"));
    let app = guarded(&iam, rs256_only(&iam));
    for key in [&ec, &ed, &pss] {
        let token = iam.mint_with(key, json!({}));
        assert_rejected(&app, &token, ALGORITHM_REJECTED).await;
    }
    // The algorithm is refused before any key is looked up.
    assert_eq!(iam.jwks_fetches(), 0);
    assert_accepted(&app, &iam.mint(json!({}))).await;
}

#[tokio::test]
async fn listed_algorithms_are_accepted_and_the_list_replaces_the_default() {
    let iam = TestIam::start().await;
    let cases = [
        (iam.add_key(TestKey::ec_p256("ec-1")), Algorithm::ES256),
        (iam.add_key(TestKey::rsa_pss("pss-1")), Algorithm::PS256),
        (iam.add_key(TestKey::ed25519("ed-1")), Algorithm::EdDSA),
        (iam.add_key(TestKey::ec_p384("ec384-1")), Algorithm::ES384),
        (iam.add_key(TestKey::ec_p521("ec521-1")), Algorithm::ES512),
    ];
    let rs256 = iam.mint(json!({}));
    for (key, alg) in &cases {
        let only = guarded(&iam, rs256_only(&iam).algorithms([*alg]));
        assert_accepted(&only, &iam.mint_with(key, json!({}))).await;
        // Listing ES256 alone means RS256 is no longer accepted.
        assert_rejected(&only, &rs256, ALGORITHM_REJECTED).await;
    }
    let all = guarded(
        &iam,
        rs256_only(&iam).algorithms([
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::PS256,
            Algorithm::EdDSA,
            Algorithm::ES384,
            Algorithm::ES512,
        ]),
    );
    assert_accepted(&all, &rs256).await;
    for (key, _) in &cases {
        assert_accepted(&all, &iam.mint_with(key, json!({}))).await;
    }
}

#[tokio::test]
async fn none_algorithm_in_any_case_is_rejected() {
    let iam = TestIam::start().await;
    // Even with every supported algorithm allowed.
    let app = guarded(&iam, iam.validation());
    let valid = iam.mint(json!({"sub": "admin"}));
    let parts: Vec<&str> = valid.split('.').collect();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(json!({"alg": alg, "kid": "rsa-1", "typ": "JWT"}).to_string());
        let unsigned = format!("{header}.{}.", parts[1]);
        let sig_kept = format!("{header}.{}.{}", parts[1], parts[2]);
        assert_rejected(&app, &unsigned, ALGORITHM_REJECTED).await;
        assert_rejected(&app, &sig_kept, ALGORITHM_REJECTED).await;
    }
    assert_eq!(iam.jwks_fetches(), 0);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    let iam = TestIam::start().await;
    let key = iam.key();
    let claims = iam.default_claims();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": key.kid()});
    let jwk = key.jwk();
    let n = URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("an RSA JWK has n"))
        .expect("n is base64url");
    let secrets = [key.public_key_bytes(), jwk.to_string().into_bytes(), n];
    // HS256 cannot even be listed: the builder drops HMAC algorithms.
    let with_hs = rs256_only(&iam).algorithms([Algorithm::RS256, Algorithm::HS256]);
    for app in [guarded(&iam, rs256_only(&iam)), guarded(&iam, with_hs)] {
        for secret in &secrets {
            let forged = sign_hs256(secret, &header, &claims);
            assert_rejected(&app, &forged, ALGORITHM_REJECTED).await;
        }
    }
}

// --- Key / algorithm agreement ---------------------------------------------

#[tokio::test]
async fn token_alg_must_match_the_key_type() {
    let iam = TestIam::start().await;
    let rsa = iam.key();
    let ec = iam.add_key(TestKey::ec_p256("ec-1"));
    let app = guarded(&iam, iam.validation());
    // RS256 header naming the EC key, signed by the RSA key.
    let token = rsa.sign_with_header(
        &json!({"alg": "RS256", "kid": ec.kid()}),
        &iam.default_claims(),
    );
    assert_rejected(&app, &token, KEY_MISMATCH).await;
    // ES256 header naming the RSA key, signed by the EC key.
    let token = ec.sign_with_header(
        &json!({"alg": "ES256", "kid": rsa.kid()}),
        &iam.default_claims(),
    );
    assert_rejected(&app, &token, KEY_MISMATCH).await;
}

#[tokio::test]
async fn key_pinned_to_rs256_refuses_a_valid_ps256_signature() {
    let iam = TestIam::start().await;
    // One RSA key published twice: pinned to RS256, and without `alg`.
    let pss = TestKey::rsa_pss("unpublished");
    let mut pinned = pss.jwk();
    pinned["kid"] = json!("pinned");
    pinned["alg"] = json!("RS256");
    let mut free = pss.jwk();
    free["kid"] = json!("free");
    free.as_object_mut()
        .expect("a JWK is an object")
        .remove("alg");
    iam.add_raw_jwk(pinned);
    iam.add_raw_jwk(free);
    let app = guarded(
        &iam,
        rs256_only(&iam).algorithms([Algorithm::RS256, Algorithm::PS256]),
    );
    let claims = iam.default_claims();
    let to_pinned = pss.sign_with_header(&json!({"alg": "PS256", "kid": "pinned"}), &claims);
    assert_rejected(&app, &to_pinned, KEY_MISMATCH).await;
    // The same signature material verifies when the key does not pin alg.
    let to_free = pss.sign_with_header(&json!({"alg": "PS256", "kid": "free"}), &claims);
    assert_accepted(&app, &to_free).await;
}

// --- Registered claims ------------------------------------------------------

#[tokio::test]
async fn issuer_must_match_exactly() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let issuer = iam.issuer().to_owned();
    for iss in [
        json!("https://evil.example.com"),
        json!(format!("{issuer}/")),
        json!(issuer.to_uppercase()),
        json!(format!(" {issuer}")),
        json!([issuer, "https://evil.example.com"]),
        json!([issuer]),
    ] {
        let token = iam.mint(json!({"iss": iss}));
        assert_rejected(&app, &token, "the token's issuer is not accepted").await;
    }
    let token = iam.mint(json!({"iss": null}));
    assert_rejected(
        &app,
        &token,
        "the token's claims are invalid: iss is missing or not valid",
    )
    .await;
    assert_accepted(&app, &iam.mint(json!({"iss": issuer}))).await;
}

#[tokio::test]
async fn audience_is_any_of_the_configured_list() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation().audience(["api-a", "api-b"]));
    for aud in [json!("api-a"), json!("api-b"), json!(["other", "api-b"])] {
        assert_accepted(&app, &iam.mint(json!({"aud": aud}))).await;
    }
    for aud in [
        json!("other"),
        json!(["other", "another"]),
        json!("API-A"),
        json!([]),
    ] {
        let token = iam.mint(json!({"aud": aud}));
        assert_rejected(&app, &token, "the token's audience is not accepted").await;
    }
    let token = iam.mint(json!({"aud": null}));
    assert_rejected(
        &app,
        &token,
        "the token's claims are invalid: aud is missing or not valid",
    )
    .await;
}

#[tokio::test]
async fn exp_is_required_numeric_and_honours_the_leeway() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let t = now();
    let token = iam.mint(json!({"exp": null}));
    assert_rejected(
        &app,
        &token,
        "the token's claims are invalid: exp is missing or not valid",
    )
    .await;
    let token = iam.mint(json!({"exp": (t + 300).to_string()}));
    assert_rejected(
        &app,
        &token,
        "the token's claims are invalid: exp is missing or not valid",
    )
    .await;
    let token = iam.mint(json!({"exp": t - 300}));
    assert_rejected(&app, &token, "the token has expired").await;
    // 10 s past exp is inside the default 60 s leeway.
    assert_accepted(&app, &iam.mint(json!({"exp": t - 10}))).await;
    // ... and outside a zero leeway.
    let strict = guarded(&iam, iam.validation().leeway(Duration::ZERO));
    let token = iam.mint(json!({"exp": t - 10}));
    assert_rejected(&strict, &token, "the token has expired").await;
}

#[tokio::test]
async fn nbf_in_the_future_honours_the_leeway() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let t = now();
    let token = iam.mint(json!({"nbf": t + 300}));
    assert_rejected(&app, &token, "the token is not valid yet").await;
    assert_accepted(&app, &iam.mint(json!({"nbf": t + 10}))).await;
    let token = iam.mint(json!({"nbf": "soon"}));
    assert_rejected(
        &app,
        &token,
        "the token's claims are invalid: nbf has the wrong type",
    )
    .await;
}

#[tokio::test]
async fn access_token_profile_requires_typ_at_jwt() {
    let iam = TestIam::start().await;
    let key = iam.key();
    let claims = iam.default_claims();
    let signed = |typ: Option<&str>| {
        let mut header = json!({"alg": "RS256", "kid": key.kid()});
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        key.sign_with_header(&header, &claims)
    };
    let profile = guarded(&iam, iam.validation().access_token_profile());
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT"] {
        assert_accepted(&profile, &signed(Some(typ))).await;
    }
    for typ in [Some("JWT"), None, Some("at+jwt "), Some("jwt")] {
        let token = signed(typ);
        assert_rejected(
            &profile,
            &token,
            "the token header is not accepted: typ must be at+jwt",
        )
        .await;
    }
    // Without the profile, an ID-token-style `typ: JWT` is fine.
    let plain = guarded(&iam, iam.validation());
    assert_accepted(&plain, &signed(Some("JWT"))).await;
    assert_accepted(&plain, &signed(None)).await;
}

#[tokio::test]
async fn required_claims_must_be_present_and_not_null() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation().required_claims(["tenantId"]));
    for patch in [json!({}), json!({"tenantId": null})] {
        let token = iam.mint(patch);
        assert_rejected(
            &app,
            &token,
            "the token's claims are invalid: tenantId is required",
        )
        .await;
    }
    assert_accepted(&app, &iam.mint(json!({"tenantId": "t-1"}))).await;
}

// --- Header members -----------------------------------------------------------

#[tokio::test]
async fn unsupported_header_members_are_rejected() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let key = iam.key();
    let claims = iam.default_claims();
    let header = |extra: Value| merge(key.header(), extra);
    let cases = [
        (
            json!({"crit": ["exp"], "exp": 1}),
            "the token header is not accepted: crit names an unsupported extension",
        ),
        (
            json!({"crit": ["b64"], "b64": false}),
            "the token header is not accepted: crit names an unsupported extension",
        ),
        (
            json!({"b64": false}),
            "the token header is not accepted: unencoded payloads are not accepted",
        ),
        (
            json!({"cty": "JWT"}),
            "the token header is not accepted: nested tokens are not accepted",
        ),
        (
            json!({"cty": "jwt"}),
            "the token header is not accepted: nested tokens are not accepted",
        ),
    ];
    for (extra, message) in cases {
        let token = key.sign_with_header(&header(extra), &claims);
        assert_rejected(&app, &token, message).await;
    }
    // The same key and claims under the plain header pass.
    assert_accepted(&app, &key.sign_with_header(&key.header(), &claims)).await;
}

#[tokio::test]
async fn token_without_kid_is_rejected_even_with_a_single_key() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let token = iam.key().sign_with_header(
        &json!({"alg": "RS256", "typ": "JWT"}),
        &iam.default_claims(),
    );
    assert_rejected(&app, &token, "the token header is not accepted: no kid").await;
    assert_eq!(iam.jwks_fetches(), 0, "no key lookup without a kid");
}

#[tokio::test]
async fn duplicate_header_members_are_rejected() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let key = iam.key();
    let claims = iam.default_claims().to_string();
    for raw in [
        r#"{"alg":"RS256","alg":"none","kid":"rsa-1"}"#,
        r#"{"alg":"none","alg":"RS256","kid":"rsa-1"}"#,
        r#"{"alg":"RS256","alg":"RS256","kid":"rsa-1"}"#,
        r#"{"alg":"RS256","kid":"rsa-1","kid":"rsa-1"}"#,
    ] {
        let token = key.sign_raw(raw.as_bytes(), claims.as_bytes());
        assert_rejected(&app, &token, MALFORMED).await;
    }
}

/// A loopback listener nobody should ever connect to.
async fn trap() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}/keys", listener.local_addr().expect("an address"));
    (listener, url)
}

async fn assert_never_contacted(listener: &TcpListener) {
    let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(
        accepted.is_err(),
        "the verifier connected to a URL from the token header"
    );
}

#[tokio::test]
async fn jku_and_x5u_are_never_followed() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let attacker = TestKey::rsa("attacker-1");
    let claims = merge(iam.default_claims(), json!({"sub": "admin"}));
    for member in ["jku", "x5u"] {
        let (listener, url) = trap().await;
        // The attacker's own key and kid: only their URL could vouch for it.
        let token = attacker.sign_with_header(
            &json!({"alg": "RS256", "kid": attacker.kid(), member: url}),
            &claims,
        );
        assert_rejected(&app, &token, UNKNOWN_KEY).await;
        // The attacker's key under the IAM's kid.
        let token = attacker.sign_with_header(
            &json!({"alg": "RS256", "kid": "rsa-1", member: url}),
            &claims,
        );
        assert_rejected(&app, &token, BAD_SIGNATURE).await;
        // An IAM-signed token with the member is judged by the JWKS alone.
        let token = iam.key().sign_with_header(
            &json!({"alg": "RS256", "kid": "rsa-1", member: url}),
            &claims,
        );
        assert_accepted(&app, &token).await;
        assert_never_contacted(&listener).await;
    }
}

#[tokio::test]
async fn embedded_jwk_header_is_never_trusted() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let attacker = TestKey::rsa("attacker-1");
    let claims = merge(iam.default_claims(), json!({"sub": "admin"}));
    let token = attacker.sign_with_header(
        &json!({"alg": "RS256", "kid": attacker.kid(), "jwk": attacker.jwk()}),
        &claims,
    );
    assert_rejected(&app, &token, UNKNOWN_KEY).await;
    let token = attacker.sign_with_header(
        &json!({"alg": "RS256", "kid": "rsa-1", "jwk": attacker.jwk()}),
        &claims,
    );
    assert_rejected(&app, &token, BAD_SIGNATURE).await;
}

// --- Tampering ----------------------------------------------------------------

#[tokio::test]
async fn signature_bit_flip_is_rejected() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let token = iam.mint(json!({}));
    let parts: Vec<&str> = token.split('.').collect();
    let mut sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .expect("base64url signature");
    for bit in [0, 7, 1000, sig.len() * 8 - 1] {
        sig[bit / 8] ^= 1 << (bit % 8);
        let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
        assert_rejected(&app, &flipped, BAD_SIGNATURE).await;
        sig[bit / 8] ^= 1 << (bit % 8);
    }
    // Truncated and emptied signatures.
    let truncated = format!("{}.{}.{}", parts[0], parts[1], b64(&sig[..sig.len() - 1]));
    assert_rejected(&app, &truncated, BAD_SIGNATURE).await;
    let empty = format!("{}.{}.", parts[0], parts[1]);
    assert_rejected(&app, &empty, BAD_SIGNATURE).await;
    assert_accepted(&app, &token).await;
}

#[tokio::test]
async fn tampered_payload_or_header_with_signature_kept_is_rejected() {
    let iam = TestIam::start().await;
    let other = iam.add_key(TestKey::rsa("rsa-2"));
    let app = guarded(&iam, iam.validation());
    let token = iam.mint(json!({"sub": "student-1", "roles": ["student"]}));
    // Verified once, so it sits in the verified-token cache: a tampered
    // copy must not be served from it.
    assert_accepted(&app, &token).await;
    let claims = merge(
        iam.default_claims(),
        json!({"sub": "student-1", "roles": ["admin"]}),
    );
    assert_rejected(&app, &with_payload(&token, &claims), BAD_SIGNATURE).await;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": other.kid()});
    assert_rejected(&app, &with_header(&token, &header), BAD_SIGNATURE).await;
}

// --- Hostile input ------------------------------------------------------------

#[tokio::test]
async fn malformed_structure_is_a_clean_401() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let token = iam.mint(json!({}));
    let parts: Vec<&str> = token.split('.').collect();
    let cases = [
        "abc!.def$.ghi*".to_owned(),
        "....".to_owned(),
        "..".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        // A five-part JWE.
        format!(
            "{}.{}.{}.{}.{}",
            b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"rsa-1"}"#),
            b64([7u8; 256]),
            b64([1u8; 12]),
            b64(b"ciphertext"),
            b64([2u8; 16]),
        ),
        format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64("[\"RS256\"]"), parts[1], parts[2]),
        format!("{}.{}.{}", b64(""), parts[1], parts[2]),
    ];
    for bad in &cases {
        assert_rejected(&app, bad, MALFORMED).await;
    }
    // A header that is a JSON array, correctly signed: serde would read
    // it as a struct by position.
    let key = iam.key();
    let claims = iam.default_claims().to_string();
    for raw in [
        r#"["RS256","rsa-1"]"#,
        r#"[null,"RS256",null,null,null,"rsa-1"]"#,
    ] {
        let token = key.sign_raw(raw.as_bytes(), claims.as_bytes());
        assert_rejected(&app, &token, MALFORMED).await;
    }
}

#[tokio::test]
async fn non_canonical_base64_is_rejected_even_when_correctly_signed() {
    let iam = TestIam::start().await;
    let signer = RawSigner::new("raw-1");
    iam.add_raw_jwk(signer.jwk());
    let app = guarded(&iam, iam.validation());
    // "???" encodes to "Pz8_" in base64url and "Pz8/" in standard base64:
    // a run of them guarantees both alphabets differ in the payload.
    let claims = merge(iam.default_claims(), json!({"probe": "??????~~~~~~"})).to_string();
    let header = signer.header();
    // Control: canonical encoding of the same content is accepted.
    assert_accepted(&app, &signer.sign(&b64(&header), &b64(&claims))).await;

    let std_payload = STANDARD.encode(&claims).trim_end_matches('=').to_owned();
    assert!(std_payload.contains('/') || std_payload.contains('+'));
    let padded = |s: &str| format!("{s}=");
    let cases = [
        // Padding on the header, on the payload.
        signer.sign(&URL_SAFE.encode(&header), &b64(&claims)),
        signer.sign(&padded(&b64(&header)), &b64(&claims)),
        signer.sign(&b64(&header), &URL_SAFE.encode(&claims)),
        signer.sign(&b64(&header), &padded(&b64(&claims))),
        // The standard alphabet in the payload.
        signer.sign(&b64(&header), &std_payload),
        // Whitespace inside a segment.
        signer.sign(&b64(&header), &format!(" {}", b64(&claims))),
    ];
    for bad in &cases {
        assert_rejected(&app, bad, MALFORMED).await;
    }
    // The signature segment itself: padded, or in the standard alphabet.
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let sig = signer.signature(&input);
    // 256 bytes always need "==" padding.
    let padded_sig = format!("{input}.{}", URL_SAFE.encode(&sig));
    assert!(padded_sig.ends_with("=="));
    assert_rejected(&app, &padded_sig, MALFORMED).await;
    assert_rejected(&app, &format!("{input}.{}=", b64(&sig)), MALFORMED).await;
    // A random signature has '-' or '_' in base64url but for a 2e-5 chance;
    // then both alphabets agree and there is nothing to test.
    let std_sig = STANDARD.encode(&sig).trim_end_matches('=').to_owned();
    if std_sig.contains(['+', '/']) {
        assert_rejected(&app, &format!("{input}.{std_sig}"), MALFORMED).await;
    }
}

#[tokio::test]
async fn claims_that_are_not_a_json_object_are_rejected() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let key = iam.key();
    let header = key.header().to_string();
    for claims in ["not json", "[]", "\"a string\"", "42", "null", "{\"sub\":"] {
        let token = key.sign_raw(header.as_bytes(), claims.as_bytes());
        assert_rejected(&app, &token, MALFORMED).await;
    }
}

#[tokio::test]
async fn claims_of_the_wrong_type_are_rejected() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let cases = [
        (
            json!({"sub": 42}),
            "the token's claims are invalid: token has no subject",
        ),
        (
            json!({"sub": ""}),
            "the token's claims are invalid: token has no subject",
        ),
        (
            json!({"sub": null}),
            "the token's claims are invalid: token has no subject",
        ),
        (
            json!({"exp": {"at": 1}}),
            "the token's claims are invalid: exp is missing or not valid",
        ),
        (
            json!({"exp": -5}),
            "the token's claims are invalid: exp is missing or not valid",
        ),
        (
            json!({"exp": true}),
            "the token's claims are invalid: exp is missing or not valid",
        ),
        (
            json!({"iss": 42}),
            "the token's claims are invalid: iss is missing or not valid",
        ),
        (
            json!({"aud": 42}),
            "the token's claims are invalid: aud is missing or not valid",
        ),
        (
            json!({"roles": 42}),
            "the token's claims are invalid: roles claim has an unsupported shape",
        ),
        (
            json!({"roles": [{"system": "inv"}]}),
            "the token's claims are invalid: roles claim has an unsupported shape",
        ),
    ];
    for (patch, message) in cases {
        let token = iam.mint(patch);
        assert_rejected(&app, &token, message).await;
    }
}

#[tokio::test]
async fn deeply_nested_json_is_rejected_without_overflowing_the_stack() {
    let iam = TestIam::start().await;
    // Raise the size limit so the parser, not the length check, meets it.
    let app = app(JwtAuthGuardLayer::new(iam.verifier()).max_token_len(256 * 1024));
    let key = iam.key();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    // In the claims, signed by the IAM's own key.
    let mut claims = iam.default_claims().to_string();
    claims.pop();
    let claims = format!("{claims},\"deep\":{deep}}}");
    let token = key.sign_raw(key.header().to_string().as_bytes(), claims.as_bytes());
    assert_rejected(&app, &token, MALFORMED).await;
    // In the header.
    let header = format!(r#"{{"alg":"RS256","kid":"rsa-1","deep":{deep}}}"#);
    let token = key.sign_raw(
        header.as_bytes(),
        iam.default_claims().to_string().as_bytes(),
    );
    assert_rejected(&app, &token, MALFORMED).await;
}

#[tokio::test]
async fn huge_header_under_the_size_limit_is_a_clean_401() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    let attacker = TestKey::rsa("attacker-1");
    let claims = iam.default_claims();
    // ~5 KiB of header members, forged under the IAM's kid.
    let mut header = json!({"alg": "RS256", "kid": "rsa-1"});
    for i in 0..100 {
        header[format!("x{i}")] = json!("y".repeat(40));
    }
    let token = attacker.sign_with_header(&header, &claims);
    assert!(
        token.len() < 8 * 1024 && token.len() > 5 * 1024,
        "{}",
        token.len()
    );
    assert_rejected(&app, &token, BAD_SIGNATURE).await;
    // A ~5 KiB kid is refused before any lookup, so it can neither reach
    // the IAM nor fill the negative kid cache; 256 bytes is the limit.
    let token =
        attacker.sign_with_header(&json!({"alg": "RS256", "kid": "k".repeat(5000)}), &claims);
    assert!(token.len() < 8 * 1024, "{}", token.len());
    let fetches = iam.jwks_fetches();
    assert_rejected(
        &app,
        &token,
        "the token header is not accepted: kid is empty or too long",
    )
    .await;
    assert_eq!(iam.jwks_fetches(), fetches);
    let token =
        attacker.sign_with_header(&json!({"alg": "RS256", "kid": "k".repeat(256)}), &claims);
    assert_rejected(&app, &token, UNKNOWN_KEY).await;
    let token = attacker.sign_with_header(&json!({"alg": "RS256", "kid": ""}), &claims);
    assert_rejected(
        &app,
        &token,
        "the token header is not accepted: kid is empty or too long",
    )
    .await;
}

#[tokio::test]
async fn claims_larger_than_the_stack_buffer_verify_like_small_ones() {
    let iam = TestIam::start().await;
    let app = guarded(&iam, iam.validation());
    // About 4 KiB of claims: decoded on the heap, not on the stack.
    let big = iam.mint(json!({
        "sub": "u-big", "tenantId": "t-1", "pad": "p".repeat(4000),
    }));
    assert!(
        big.len() > 5 * 1024 && big.len() < 8 * 1024,
        "{}",
        big.len()
    );
    let (status, body) = call(&app, bearer(&big)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "u-big|t-1");
    // Expired and large: the registered claims are read the same way.
    let expired = iam.mint(json!({"exp": now() - 3600, "pad": "p".repeat(4000)}));
    assert_rejected(&app, &expired, "the token has expired").await;
    // A repeated claim counts once, the last one.
    let claims = r#"{"iss":"ISS","aud":"AUD","exp":EXP,"sub":"first","sub":"last"}"#
        .replace("ISS", iam.issuer())
        .replace("AUD", iam_guard::test_util::TEST_AUDIENCE)
        .replace("EXP", &(now() + 300).to_string());
    let header = json!({"alg": "RS256", "kid": iam.key().kid(), "typ": "JWT"}).to_string();
    let token = iam.key().sign_raw(header.as_bytes(), claims.as_bytes());
    let (status, body) = call(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "last|-");
}

#[tokio::test]
async fn a_numeric_date_with_a_fraction_is_compared_as_a_number() {
    let iam = TestIam::start().await;
    let strict = guarded(&iam, iam.validation().leeway(Duration::ZERO));
    let t = now() as f64;
    // RFC 7519 §2: a NumericDate may carry a fraction.
    assert_accepted(&strict, &iam.mint(json!({"exp": t + 300.5}))).await;
    assert_accepted(&strict, &iam.mint(json!({"exp": 1.0e11 + 0.25}))).await;
    assert_rejected(
        &strict,
        &iam.mint(json!({"exp": t - 100.5})),
        "the token has expired",
    )
    .await;
    // Half a second ago is expired too: the fraction is not rounded up
    // into a grace second.
    assert_rejected(
        &strict,
        &iam.mint(json!({"exp": t - 0.5})),
        "the token has expired",
    )
    .await;
    // A fractional nbf in the past is fine; a negative exp never is.
    assert_accepted(
        &strict,
        &iam.mint(json!({"nbf": t - 30.75, "exp": t + 60.0})),
    )
    .await;
    assert_rejected(
        &strict,
        &iam.mint(json!({"exp": -5.5})),
        "the token's claims are invalid: exp is missing or not valid",
    )
    .await;
}

#[tokio::test]
async fn a_token_with_a_fractional_exp_is_cached_no_later_than_its_exp() {
    let iam = TestIam::start().await;
    let verifier = Verifier::new(iam.fetcher(), iam.validation().leeway(Duration::ZERO));
    let app = app(JwtAuthGuardLayer::new(verifier.clone()));
    // Cached while whole seconds remain before `exp`: 2.5 s leaves the two
    // requests below more than a second even if the clock ticks over
    // between minting and verifying (1.5 s made this flaky under load).
    let exp = now() as f64 + 2.5;
    let token = iam.mint(json!({"exp": exp}));
    assert_accepted(&app, &token).await;
    assert_accepted(&app, &token).await;
    assert_eq!(
        verifier.signature_checks(),
        1,
        "the second came from the cache"
    );
    // Once exp has passed, the cached verification is worth nothing.
    let wait = exp - now() as f64 + 0.6;
    tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0))).await;
    assert_rejected(&app, &token, "the token has expired").await;
}
