//! The attack corpus (issue 7): forgeries and hostile inputs that
//! `tests/verification.rs` and `tests/token_extraction.rs` do not already
//! cover. Every case must be a clean 401 `invalid_token` — never a 2xx,
//! never a 500, never a panic.
//!
//! Already covered elsewhere (not repeated here): `alg: none` in any case,
//! HS256 with the PKCS#1 DER / JWK text / modulus of the RSA key, RS256
//! header on an EC key and vice versa, PSS/EC/Ed keys on the default
//! RS256-only list, token without `kid`, `exp` past/missing/string,
//! `cty: JWT`, a five-part JWE with an RSA-OAEP header, `jku`/`x5u`/`jwk`
//! headers, bit flips of the signature, 9 KiB junk over the size limit.
#![cfg(feature = "test-util")]

mod common;

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{
        EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING,
    },
};
use axum::{body::Body, Router};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use common::*;
use http::{Request, StatusCode};
use iam_guard::{
    test_util::{merge, sign_hs256, TestIam, TestKey, TEST_AUDIENCE},
    Algorithm, JwtAuthGuardLayer, SharedSecret, TokenValidation, Verifier,
};
use serde_json::{json, Value};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn guarded(iam: &TestIam, validation: TokenValidation) -> Router {
    app(JwtAuthGuardLayer::new(Verifier::new(
        iam.fetcher(),
        validation,
    )))
}

/// Every accepted algorithm (RS256, PS256, ES256, EdDSA).
fn all_algs(iam: &TestIam) -> Router {
    guarded(iam, iam.validation())
}

/// A random 48-byte HS256 secret: no encoding of any public key.
fn random_secret() -> Vec<u8> {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut secret = vec![0; 48];
    SystemRandom::new()
        .fill(&mut secret)
        .expect("system randomness");
    secret
}

/// The JWKS of `iam` and, beside it, an HS256 `secret`.
fn with_secret(iam: &TestIam, validation: TokenValidation, secret: SharedSecret) -> Router {
    app(JwtAuthGuardLayer::new(
        Verifier::builder(iam.fetcher(), validation)
            .shared_secret(secret)
            .build(),
    ))
}

fn hs256_secret(bytes: &[u8]) -> SharedSecret {
    SharedSecret::new(Algorithm::HS256, bytes).expect("48 bytes is enough for HS256")
}

async fn assert_accepted(app: &Router, token: &str) {
    let (status, body) = call(app, bearer(token)).await;
    assert_eq!(status, StatusCode::OK, "expected acceptance, got {body}");
}

/// 401, `invalid_token`, the RFC 6750 challenge; returns the message.
async fn assert_401(app: &Router, token: &str, context: &str) -> String {
    assert_invalid_token(app, token, context).await
}

async fn assert_rejected(app: &Router, token: &str, message: &str, context: &str) {
    assert_eq!(assert_401(app, token, context).await, message, "{context}");
}

const ALGORITHM_REJECTED: &str = "the token's algorithm is not accepted";
const BAD_SIGNATURE: &str = "the token's signature is invalid";
const UNKNOWN_KEY: &str = "the token's signing key is unknown";
const TOO_LARGE: &str = "the access token is too large";

// --- DER / PEM builders ------------------------------------------------------

fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![len as u8]
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// SubjectPublicKeyInfo for an RSA PKCS#1 public key.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    // 1.2.840.113549.1.1.1 rsaEncryption, NULL parameters.
    let oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    let mut alg = oid.to_vec();
    alg.extend([0x05, 0x00]);
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut body = der(0x30, &alg);
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// SubjectPublicKeyInfo for a P-256 SEC1 point.
fn ec_spki(point: &[u8]) -> Vec<u8> {
    // id-ecPublicKey, prime256v1.
    let mut alg = vec![0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    alg.extend([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    let mut bits = vec![0u8];
    bits.extend_from_slice(point);
    let mut body = der(0x30, &alg);
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// SubjectPublicKeyInfo for an Ed25519 key.
fn ed_spki(raw: &[u8]) -> Vec<u8> {
    let alg = [0x06, 0x03, 0x2b, 0x65, 0x70];
    let mut bits = vec![0u8];
    bits.extend_from_slice(raw);
    let mut body = der(0x30, &alg);
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// PEM with 64-column lines, `LF` line ends, optionally no final newline.
fn pem(label: &str, der: &[u8], trailing_newline: bool) -> Vec<u8> {
    let b = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----"));
    if trailing_newline {
        out.push('\n');
    }
    out.into_bytes()
}

/// Every encoding of `key`'s public key a confused verifier might use as
/// an HMAC secret.
fn public_key_encodings(key: &TestKey) -> Vec<(String, Vec<u8>)> {
    let raw = key.public_key_bytes();
    let jwk = key.jwk();
    let mut out = vec![
        ("raw bytes".to_owned(), raw.clone()),
        ("JWK text".to_owned(), jwk.to_string().into_bytes()),
        (
            "JWK pretty".to_owned(),
            serde_json::to_vec_pretty(&jwk).expect("json"),
        ),
    ];
    let spki = match key.alg() {
        "RS256" | "PS256" => {
            for nl in [true, false] {
                out.push((
                    format!("RSA PUBLIC KEY pem (newline: {nl})"),
                    pem("RSA PUBLIC KEY", &raw, nl),
                ));
            }
            rsa_spki(&raw)
        }
        "ES256" => ec_spki(&raw),
        _ => ed_spki(&raw),
    };
    for nl in [true, false] {
        out.push((
            format!("PUBLIC KEY pem (newline: {nl})"),
            pem("PUBLIC KEY", &spki, nl),
        ));
        // Windows line ends, as some key stores write them.
        let crlf = String::from_utf8(pem("PUBLIC KEY", &spki, nl))
            .expect("ascii")
            .replace('\n', "\r\n");
        out.push((format!("PUBLIC KEY pem CRLF (newline: {nl})"), crlf.into()));
    }
    out.push(("SPKI DER".to_owned(), spki));
    out
}

// --- Algorithm confusion -----------------------------------------------------

#[tokio::test]
async fn hs256_signed_with_any_encoding_of_any_public_key_is_rejected() {
    let iam = TestIam::start().await;
    let rsa = iam.key();
    let pss = iam.add_key(TestKey::rsa_pss("pss-1"));
    let ec = iam.add_key(TestKey::ec_p256("ec-1"));
    let ed = iam.add_key(TestKey::ed25519("ed-1"));
    // Trying to list HMAC is silently ignored: the list stays as given.
    let with_hs = iam.validation().algorithms([
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
    ]);
    // With an HS256 secret configured beside the JWKS, HS256 is on the
    // allow-list, so the forgery meets the secret and fails its signature;
    // it still never meets a public key.
    let configured = random_secret();
    let apps = [
        (all_algs(&iam), ALGORITHM_REJECTED),
        (guarded(&iam, with_hs.clone()), ALGORITHM_REJECTED),
        (
            with_secret(&iam, iam.validation(), hs256_secret(&configured)),
            BAD_SIGNATURE,
        ),
        (
            with_secret(&iam, with_hs, hs256_secret(&configured)),
            BAD_SIGNATURE,
        ),
    ];
    let claims = merge(iam.default_claims(), json!({"sub": "admin"}));
    let mut cases = 0;
    for key in [&rsa, &pss, &ec, &ed] {
        for (what, secret) in public_key_encodings(key) {
            assert_ne!(secret, configured, "{what}");
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": key.kid()});
            let forged = sign_hs256(&secret, &header, &claims);
            for (app, message) in &apps {
                let ctx = format!("{} {what}", key.kid());
                assert_rejected(app, &forged, message, &ctx).await;
                cases += 1;
            }
        }
    }
    assert!(cases >= 80, "{cases}");
    // The algorithm is refused, or the secret consulted, before any JWKS
    // key lookup.
    assert_eq!(iam.jwks_fetches(), 0);
}

#[tokio::test]
async fn hs256_with_a_blank_or_trivial_secret_is_rejected() {
    let iam = TestIam::start().await;
    let plain = all_algs(&iam);
    let mixed = with_secret(&iam, iam.validation(), hs256_secret(&random_secret()));
    let claims = iam.default_claims();
    for secret in [&b""[..], b" ", b"\0", b"secret", b"null"] {
        for alg in ["HS256", "hs256", "HS384", "HS512"] {
            for kid in [Some("rsa-1"), None] {
                let mut header = json!({"alg": alg, "typ": "JWT"});
                if let Some(kid) = kid {
                    header["kid"] = json!(kid);
                }
                let forged = sign_hs256(secret, &header, &claims);
                let ctx = format!("{alg} {secret:?} {kid:?}");
                assert_rejected(&plain, &forged, ALGORITHM_REJECTED, &ctx).await;
                // Only exactly "HS256" has a secret; it fails its check.
                let message = if alg == "HS256" {
                    BAD_SIGNATURE
                } else {
                    ALGORITHM_REJECTED
                };
                assert_rejected(&mixed, &forged, message, &format!("mixed {ctx}")).await;
            }
        }
    }
    assert_eq!(iam.jwks_fetches(), 0);
}

#[tokio::test]
async fn an_hs256_token_naming_a_jwks_kid_is_verified_with_the_secret_only() {
    let iam = TestIam::start().await;
    let configured = random_secret();
    let unbound = with_secret(&iam, iam.validation(), hs256_secret(&configured));
    let bound = with_secret(
        &iam,
        iam.validation(),
        hs256_secret(&configured).kid("hs-1"),
    );
    let claims = merge(iam.default_claims(), json!({"sub": "hs-user"}));
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"});
    let token = sign_hs256(&configured, &header, &claims);
    // The kid of the IAM's RSA key does not send the token to the JWKS.
    assert_accepted(&unbound, &token).await;
    assert_eq!(
        iam.jwks_fetches(),
        0,
        "an HMAC token never reaches the JWKS"
    );
    assert_rejected(&bound, &token, UNKNOWN_KEY, "kid bound to hs-1").await;
    let right_kid = json!({"alg": "HS256", "typ": "JWT", "kid": "hs-1"});
    assert_accepted(&bound, &sign_hs256(&configured, &right_kid, &claims)).await;
    assert_eq!(iam.jwks_fetches(), 0);

    // An RS256 token is never checked against the secret: tagged with the
    // secret, under the RSA key's kid or the secret's, it fails.
    for kid in ["rsa-1", "hs-1"] {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        let forged = sign_hs256(&configured, &header, &claims);
        let message = if kid == "rsa-1" {
            BAD_SIGNATURE
        } else {
            UNKNOWN_KEY
        };
        for app in [&unbound, &bound] {
            assert_rejected(app, &forged, message, &format!("RS256 {kid}")).await;
        }
    }
    // And a genuine RS256 token still passes beside the secret.
    assert_accepted(&bound, &iam.mint(json!({}))).await;
}

#[tokio::test]
async fn ps256_header_on_an_rs256_only_list_is_rejected_even_for_an_unpinned_rsa_key() {
    let iam = TestIam::start().await;
    // The PSS key published without `alg`, so only the allow-list stands
    // between a PS256 token and acceptance.
    let pss = TestKey::rsa_pss("unused");
    let mut free = pss.jwk();
    free["kid"] = json!("free");
    free.as_object_mut().expect("object").remove("alg");
    iam.add_raw_jwk(free);
    let claims = iam.default_claims();
    let token = pss.sign_with_header(&json!({"alg": "PS256", "kid": "free"}), &claims);
    let rs256_only = guarded(
        &iam,
        TokenValidation::new(iam.issuer()).audience([TEST_AUDIENCE]),
    );
    assert_rejected(&rs256_only, &token, ALGORITHM_REJECTED, "PS256 free").await;
    // PS256 header under the IAM's RS256 kid, PSS-signed by the attacker.
    let forged = pss.sign_with_header(&json!({"alg": "PS256", "kid": "rsa-1"}), &claims);
    assert_rejected(&rs256_only, &forged, ALGORITHM_REJECTED, "PS256 rsa-1").await;
    assert_eq!(iam.jwks_fetches(), 0);
    // Control: with PS256 listed, the unpinned key verifies it.
    let with_ps = guarded(
        &iam,
        iam.validation()
            .algorithms([Algorithm::RS256, Algorithm::PS256]),
    );
    assert_accepted(&with_ps, &token).await;
}

// --- ECDSA -------------------------------------------------------------------

/// The order of the P-256 group.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn with_signature(token: &str, sig: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').expect("three segments");
    format!("{input}.{}", b64(sig))
}

#[tokio::test]
async fn ecdsa_psychic_signatures_are_rejected() {
    let iam = TestIam::start().await;
    let ec = iam.add_key(TestKey::ec_p256("ec-1"));
    let app = all_algs(&iam);
    let token = iam.mint_with(&ec, json!({"sub": "admin"}));
    assert_accepted(&app, &token).await;
    let mut n_n = P256_N.to_vec();
    n_n.extend(P256_N);
    let mut one_one = [0u8; 64];
    one_one[31] = 1;
    one_one[63] = 1;
    let mut zero_n = vec![0u8; 32];
    zero_n.extend(P256_N);
    let cases: [(&str, Vec<u8>); 6] = [
        ("r = s = 0", vec![0; 64]),
        ("r = s = n", n_n),
        ("r = 0, s = n", zero_n),
        ("r = s = 1", one_one.to_vec()),
        ("r = s = 0xff..", vec![0xff; 64]),
        ("empty", Vec::new()),
    ];
    for (what, sig) in &cases {
        // A fresh payload each time, so no verified-token cache is involved.
        let forged = with_signature(&iam.mint_with(&ec, json!({"sub": "admin"})), sig);
        assert_rejected(&app, &forged, BAD_SIGNATURE, what).await;
    }
    // Short and long fixed signatures, too.
    for len in [1, 32, 63, 65, 128] {
        let forged = with_signature(&token, &vec![0u8; len]);
        assert_rejected(&app, &forged, BAD_SIGNATURE, &format!("{len} zero bytes")).await;
    }
}

/// An ES256 key whose signatures we control in both encodings.
struct DualEc {
    fixed: EcdsaKeyPair,
    asn1: EcdsaKeyPair,
}

impl DualEc {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("keygen");
        Self {
            fixed: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .expect("pkcs8"),
            asn1: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
                .expect("pkcs8"),
        }
    }

    fn jwk(&self, kid: &str) -> Value {
        let point = self.fixed.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
               "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    fn sign(&self, pair: &EcdsaKeyPair, kid: &str, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(json!({"alg": "ES256", "typ": "JWT", "kid": kid}).to_string()),
            b64(claims.to_string())
        );
        let sig = pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("sign");
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

#[tokio::test]
async fn der_encoded_es256_signature_is_rejected() {
    let iam = TestIam::start().await;
    let key = DualEc::new();
    iam.add_raw_jwk(key.jwk("ec-dual"));
    let app = all_algs(&iam);
    let claims = iam.default_claims();
    // Control: the JOSE form (r || s, 64 bytes) verifies.
    assert_accepted(&app, &key.sign(&key.fixed, "ec-dual", &claims)).await;
    for i in 0..8 {
        // A valid ECDSA signature over the same input, DER-encoded
        // (RFC 7518 §3.4 requires the fixed form).
        let claims = merge(iam.default_claims(), json!({"n": i}));
        let token = key.sign(&key.asn1, "ec-dual", &claims);
        let sig = URL_SAFE_NO_PAD
            .decode(token.rsplit_once('.').expect("3 parts").1)
            .expect("b64");
        assert_eq!(sig[0], 0x30, "a DER SEQUENCE");
        assert_rejected(&app, &token, BAD_SIGNATURE, &format!("DER #{i}")).await;
    }
}

// --- EdDSA -------------------------------------------------------------------

/// The order L of the Ed25519 group, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// `a + b` over 32-byte little-endian integers (no overflow past 2^256 for
/// S < L, L < 2^253).
fn add_le(a: &[u8], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    out
}

#[tokio::test]
async fn eddsa_non_canonical_s_is_rejected() {
    let iam = TestIam::start().await;
    let ed = iam.add_key(TestKey::ed25519("ed-1"));
    let app = all_algs(&iam);
    for i in 0..8 {
        let token = iam.mint_with(&ed, json!({"n": i}));
        let (input, sig) = token.rsplit_once('.').expect("3 parts");
        let sig = URL_SAFE_NO_PAD.decode(sig).expect("b64");
        // S + L is the same scalar mod L: a malleable verifier accepts it.
        let mut malleated = sig[..32].to_vec();
        malleated.extend(add_le(&sig[32..], &ED25519_L));
        let forged = format!("{input}.{}", b64(&malleated));
        assert_rejected(&app, &forged, BAD_SIGNATURE, &format!("S + L #{i}")).await;
        // Control: the original signature.
        assert_accepted(&app, &token).await;
    }
    // A signature of all zeros (R = identity-ish, S = 0) and all 0xff.
    let token = iam.mint_with(&ed, json!({}));
    for sig in [[0u8; 64], [0xff; 64]] {
        let forged = with_signature(&token, &sig);
        assert_rejected(&app, &forged, BAD_SIGNATURE, "fixed ed sig").await;
    }
}

// --- kid ---------------------------------------------------------------------

#[tokio::test]
async fn hostile_and_unknown_kids_are_rejected_with_one_refetch_at_most() {
    let iam = TestIam::start().await;
    let app = all_algs(&iam);
    // Warm the key cache with a valid token.
    assert_accepted(&app, &iam.mint(json!({}))).await;
    let warm = iam.jwks_fetches();
    let attacker = TestKey::rsa("attacker-1");
    let claims = merge(
        iam.default_claims(),
        json!({"sub": "admin", "roles": ["admin"]}),
    );
    let kids = [
        "attacker-1",
        "../../etc/passwd",
        "../../../../../../dev/null",
        "/etc/passwd",
        "' OR 1=1 --",
        "rsa-1' OR '1'='1",
        "rsa-1\"; DROP TABLE keys; --",
        "%2e%2e%2fetc%2fpasswd",
        "rsa-1\u{0}",
        "rsa-1\n",
        "RSA-1",
        " rsa-1",
        "rsa-1 ",
        "rsa-\u{0441}1", // Cyrillic es
        "*",
        "$where",
        "{\"$ne\":null}",
    ];
    for kid in kids {
        let token = attacker.sign_with_header(&json!({"alg": "RS256", "kid": kid}), &claims);
        assert_rejected(&app, &token, UNKNOWN_KEY, kid).await;
        // Twice: the second answer comes from the negative cache.
        assert_rejected(&app, &token, UNKNOWN_KEY, kid).await;
    }
    // Non-string kids are malformed headers.
    for kid in [
        json!(1),
        json!(["rsa-1"]),
        json!({"kid": "rsa-1"}),
        json!(true),
    ] {
        let token = attacker.sign_with_header(&json!({"alg": "RS256", "kid": kid}), &claims);
        assert_401(&app, &token, &kid.to_string()).await;
    }
    let extra = iam.jwks_fetches() - warm;
    assert!(
        extra <= 1,
        "{extra} JWKS fetches for a kid spray (one forced refetch allowed)"
    );
    // The IAM's own tokens still pass.
    assert_accepted(&app, &iam.mint(json!({}))).await;
}

// --- Nested and encrypted tokens ---------------------------------------------

#[tokio::test]
async fn nested_and_encrypted_tokens_are_rejected() {
    let iam = TestIam::start().await;
    let app = all_algs(&iam);
    let key = iam.key();
    let attacker = TestKey::rsa("attacker-1");
    let inner_admin = attacker.sign(&merge(iam.default_claims(), json!({"sub": "admin"})));
    let inner_valid = iam.mint(json!({"sub": "admin"}));
    for inner in [&inner_admin, &inner_valid] {
        // The payload is a JWT (a JSON string, or the bare compact text),
        // signed by the IAM's key, with and without `cty`.
        for cty in [Some("JWT"), Some("application/jwt"), None] {
            let mut header = key.header();
            if let Some(cty) = cty {
                header["cty"] = json!(cty);
            }
            for payload in [json!(inner).to_string(), inner.to_string()] {
                let token = key.sign_raw(header.to_string().as_bytes(), payload.as_bytes());
                assert_401(&app, &token, &format!("nested {cty:?}")).await;
            }
        }
    }
    // Five-part JWEs with direct and key-wrapping algorithms, an empty
    // encrypted key, and the IAM's kid.
    for header in [
        json!({"alg": "dir", "enc": "A128GCM", "kid": "rsa-1"}),
        json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "rsa-1", "cty": "JWT"}),
        json!({"alg": "RS256", "enc": "A256GCM", "kid": "rsa-1"}),
    ] {
        let jwe = format!(
            "{}..{}.{}.{}",
            b64(header.to_string()),
            b64([1u8; 12]),
            b64(inner_valid.as_bytes()),
            b64([2u8; 16]),
        );
        assert_rejected(&app, &jwe, "the access token is malformed", "JWE").await;
    }
    // A valid token with an extra fourth segment or a trailing dot.
    for bad in [format!("{inner_valid}."), format!("{inner_valid}.e30")] {
        assert_rejected(&app, &bad, "the access token is malformed", "4 parts").await;
    }
}

// --- Size --------------------------------------------------------------------

#[tokio::test]
async fn a_64_kib_header_is_rejected_by_size_before_parsing() {
    let iam = TestIam::start().await;
    let app = all_algs(&iam);
    let (capture, _guard) = capture();
    let claims = iam.default_claims();
    // Signed by the IAM itself, under an unknown kid: parsing would fetch.
    let header = json!({"alg": "RS256", "kid": "unknown", "pad": "h".repeat(64 * 1024)});
    let token = iam.key().sign_with_header(&header, &claims);
    assert!(token.len() > 64 * 1024);
    assert_rejected(&app, &token, TOO_LARGE, "64 KiB header").await;
    // A header of 64 KiB of nested JSON and duplicate members.
    let mut raw = String::from(r#"{"alg":"RS256","kid":"rsa-1""#);
    while raw.len() < 64 * 1024 {
        raw.push_str(r#","alg":"none""#);
    }
    raw.push('}');
    let token = iam
        .key()
        .sign_raw(raw.as_bytes(), claims.to_string().as_bytes());
    assert_rejected(&app, &token, TOO_LARGE, "64 KiB duplicate members").await;
    // 64 KiB of junk that is not even base64.
    let junk = format!("{}.e30.x", "%".repeat(64 * 1024));
    assert_rejected(&app, &junk, TOO_LARGE, "64 KiB junk").await;
    assert_eq!(iam.jwks_fetches(), 0, "nothing was parsed or looked up");
    // No event carries the token or a sizeable piece of it.
    for event in capture.events() {
        for value in event.fields.values() {
            assert!(value.len() < 4096, "a huge field was logged");
        }
    }
}

// --- Property: mutations of a valid token --------------------------------------

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";

/// One mutation of `token`; always a string a header can carry.
fn mutate(token: &str, rng: &mut Rng) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let choice = rng.below(6);
    // Segment-wise mutations need three segments.
    let choice = if parts.len() != 3 && matches!(choice, 0 | 1 | 4) {
        2
    } else {
        choice
    };
    match choice {
        // Bit flip inside a decoded segment, re-encoded.
        0 | 1 => {
            let seg = rng.below(3);
            let Ok(mut bytes) = URL_SAFE_NO_PAD.decode(parts[seg]) else {
                return format!("{token}x");
            };
            if bytes.is_empty() {
                return format!("{token}x");
            }
            let bit = rng.below(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            let mut parts: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
            parts[seg] = b64(bytes);
            parts.join(".")
        }
        // Replace one character of the text.
        2 => {
            let mut bytes = token.as_bytes().to_vec();
            let at = rng.below(bytes.len());
            let mut c = ALPHABET[rng.below(ALPHABET.len())];
            if c == bytes[at] {
                c = if c == b'A' { b'B' } else { b'A' };
            }
            bytes[at] = c;
            String::from_utf8(bytes).expect("ascii")
        }
        // Truncate anywhere (but keep something).
        3 => token[..1 + rng.below(token.len() - 1)].to_owned(),
        // Drop a segment's tail, keeping the dots.
        4 => {
            let seg = rng.below(3);
            let mut parts: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
            let keep = rng.below(parts[seg].len().max(1));
            parts[seg].truncate(keep);
            parts.join(".")
        }
        // Insert a character.
        _ => {
            let mut s = token.to_owned();
            let at = rng.below(s.len() + 1);
            s.insert(at, char::from(ALPHABET[rng.below(ALPHABET.len())]));
            s
        }
    }
}

#[tokio::test]
async fn random_mutations_of_a_valid_token_are_never_accepted() {
    let iam = TestIam::start().await;
    let ec = iam.add_key(TestKey::ec_p256("ec-1"));
    let ed = iam.add_key(TestKey::ed25519("ed-1"));
    let app = all_algs(&iam);
    let tokens = [
        iam.mint(json!({"sub": "admin"})),
        iam.mint_with(&ec, json!({"sub": "admin"})),
        iam.mint_with(&ed, json!({"sub": "admin"})),
    ];
    for token in &tokens {
        // Accepted, so the verified-token cache holds the original.
        assert_accepted(&app, token).await;
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tried = 0;
    for i in 0..3000 {
        let token = &tokens[i % tokens.len()];
        let mut forged = mutate(token, &mut rng);
        if rng.below(4) == 0 {
            forged = mutate(&forged, &mut rng);
        }
        if forged == *token || forged.trim() == token.as_str() {
            // A no-op mutation (e.g. a space added at either end, which
            // the header parser trims), not a forgery.
            continue;
        }
        let req = Request::builder()
            .uri("/me")
            .header("authorization", format!("Bearer {forged}"))
            .body(Body::empty())
            .expect("a header-safe value");
        let (status, challenge, body) = call_json(&app, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{forged}: {body}");
        assert_eq!(body["code"], "invalid_token", "{forged}: {body}");
        assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
        tried += 1;
    }
    assert!(tried > 2900, "{tried}");
    // The kid spray inside the mutations cost at most a handful of fetches.
    assert!(iam.jwks_fetches() <= 3, "{} fetches", iam.jwks_fetches());
    for token in &tokens {
        assert_accepted(&app, token).await;
    }
}
