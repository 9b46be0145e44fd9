//! The fuzz harnesses, shared by the `cargo fuzz` targets in
//! `fuzz_targets/`. Each function panics when an invariant is broken.
//!
//! - [`fields`]: the pure field-guard core (`filter_document`,
//!   `top_level_keys`, `check_write`) on arbitrary bytes.
//! - [`token`]: arbitrary tokens — raw text, three arbitrary segments, or a
//!   correctly signed token with an arbitrary header or arbitrary claims —
//!   through `JwtAuthGuardLayer` with a fixed in-memory JWKS.
//! - [`jwks`]: an arbitrary JWKS document behind a verifier, with valid
//!   tokens presented to it.

use std::{
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{body::Body, routing::get, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use bytes::Bytes;
use http::{Request, StatusCode};
use iam_guard::{
    jwt::source::{FetchFuture, JwksDocument, JwksSource},
    model::fields::{check_write, filter_document, top_level_keys, SYSTEM_FIELDS},
    test_util::TestKey,
    JwksFetcher, JwtAuthGuardLayer, TokenValidation, Verifier,
};
use serde_json::{json, Value};
use tower::ServiceExt;

// --- fields --------------------------------------------------------------------

fn keep(key: &str) -> bool {
    !key.starts_with('s') && key != "x" && !key.contains('\u{0}')
}

fn can_write(key: &str) -> bool {
    key.len().is_multiple_of(2)
}

/// Entity-level keys of a filtered document must all be kept (pages keep
/// `data` and `meta`).
fn assert_no_leak(out: &Value) {
    let entity = |v: &Value| {
        if let Some(obj) = v.as_object() {
            for k in obj.keys() {
                assert!(keep(k), "filtered output leaks {k:?}");
            }
        }
    };
    match out {
        Value::Object(obj) if obj.contains_key("data") && obj.contains_key("meta") => {
            for (k, v) in obj {
                match k.as_str() {
                    "data" => v.as_array().into_iter().flatten().for_each(entity),
                    "meta" => {}
                    other => assert!(keep(other), "filtered page leaks {other:?}"),
                }
            }
        }
        Value::Object(_) => entity(out),
        Value::Array(items) => items.iter().for_each(entity),
        _ => {}
    }
}

/// Errors of serde_json's `Value` the filter need not reproduce: the
/// recursion limit (the filter copies groups without recursing), lone
/// surrogate escapes inside values (valid JSON grammar, never decoded),
/// and numbers beyond f64 (valid JSON grammar, copied verbatim).
fn tolerated(e: &serde_json::Error) -> bool {
    let e = e.to_string();
    e.contains("recursion limit")
        || e.contains("surrogate")
        || e.contains("unicode code point")
        || e.contains("number out of range")
}

/// The field core on arbitrary bytes.
pub fn fields(data: &[u8]) {
    let parsed = serde_json::from_slice::<Value>(data);
    // JSON grammar in UTF-8: what the filter must accept, exactly.
    // (`IgnoredAny` checks the grammar without decoding strings or numbers,
    // as the filter does; `Value` also refuses lone surrogates and numbers
    // beyond f64, both grammatical.)
    let grammatical = std::str::from_utf8(data).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    let filtered = filter_document(data, keep);
    if let Err(e) = &filtered {
        // Grammatical but refused on purpose: `[[...]]` has no scope groups
        // to find, and a member name with a lone surrogate escape is no
        // real string to compare with a group's name.
        let e = e.to_string();
        assert!(
            !grammatical
                || e.contains("array nested in an array")
                || e.contains("invalid escape in a member name"),
            "filter refused valid JSON: {e}"
        );
    }
    if let Ok(out) = filtered {
        // Fail closed: only valid JSON is ever filtered.
        assert!(grammatical, "filter accepted input that is not JSON");
        assert!(
            std::str::from_utf8(&out).is_ok(),
            "filter output is not UTF-8"
        );
        assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(&out).is_ok(),
            "filter output is not JSON"
        );
        // The leak check needs values; grammatical JSON that `Value` cannot
        // hold (a lone surrogate, a number beyond f64) is checked above only.
        if let Ok(v) = serde_json::from_slice::<Value>(&out) {
            assert_no_leak(&v);
        }
        // Filtering is idempotent, byte for byte: it only cuts, so a
        // second pass over its output has nothing left to cut.
        let again = filter_document(&out, keep).expect("filtered output filters again");
        assert!(again == out, "filtering twice changed the output");
    }
    let keys = top_level_keys(data);
    let checked = check_write(data, can_write);
    match &keys {
        Ok(keys) => {
            let obj = match &parsed {
                Ok(Value::Object(obj)) => obj,
                Ok(other) => panic!("top_level_keys accepted a non-object: {other}"),
                Err(e) => {
                    assert!(tolerated(e), "top_level_keys accepted bad JSON: {e}");
                    return;
                }
            };
            // No duplicates, and exactly the parser's keys.
            assert_eq!(keys.len(), obj.len(), "key count differs from serde_json");
            for k in keys {
                assert!(obj.contains_key(k.as_ref()), "{k:?} is not a key");
            }
            match &checked {
                Ok(()) => {
                    for k in keys {
                        assert!(can_write(k), "{k:?} passed without WRITE");
                        assert!(
                            !SYSTEM_FIELDS.contains(&k.as_ref()),
                            "{k:?} is a system field"
                        );
                    }
                }
                Err(iam_guard::model::fields::WriteError::Forbidden(bad)) => {
                    assert!(!bad.is_empty());
                    for k in bad {
                        assert!(
                            !can_write(k) || SYSTEM_FIELDS.contains(&k.as_str()),
                            "{k:?} was refused but is writable"
                        );
                    }
                }
                Err(e) => panic!("check_write refused keys top_level_keys accepted: {e}"),
            }
        }
        Err(_) => assert!(checked.is_err(), "check_write passed a body without keys"),
    }
}

// --- token -----------------------------------------------------------------------

const ISSUER: &str = "https://iam.fuzz.invalid";
const AUDIENCE: &str = "fuzz-api";

/// A JWKS served from memory.
struct StaticJwks(Bytes);

impl JwksSource for StaticJwks {
    fn fetch(&self) -> FetchFuture<'_> {
        let body = self.0.clone();
        Box::pin(async move {
            Ok(JwksDocument {
                body,
                max_age: None,
            })
        })
    }
}

struct TokenHarness {
    rt: tokio::runtime::Runtime,
    app: Router,
    rsa: TestKey,
    ed: TestKey,
    jwks: Bytes,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "exp": now() + 3600, "iat": now()})
}

fn validation() -> TokenValidation {
    let algs: Vec<iam_guard::Algorithm> = ["RS256", "PS256", "ES256", "ES512", "EdDSA"]
        .iter()
        .map(|a| a.parse().expect("a known algorithm"))
        .collect();
    TokenValidation::new(ISSUER)
        .audience([AUDIENCE])
        .algorithms(algs)
}

fn router(fetcher: JwksFetcher) -> Router {
    let verifier = Verifier::new(fetcher, validation());
    Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(JwtAuthGuardLayer::new(verifier))
}

fn harness() -> &'static TokenHarness {
    static H: OnceLock<TokenHarness> = OnceLock::new();
    H.get_or_init(|| {
        let rsa = TestKey::rsa("rsa-1");
        let ed = TestKey::ed25519("ed-1");
        let ec = TestKey::ec_p256("ec-1");
        let jwks = Bytes::from(json!({"keys": [rsa.jwk(), ed.jwk(), ec.jwk()]}).to_string());
        let fetcher = JwksFetcher::builder().source(StaticJwks(jwks.clone()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        TokenHarness {
            rt,
            app: router(fetcher),
            rsa,
            ed,
            jwks,
        }
    })
}

fn status_of(h: &TokenHarness, app: &Router, token: &str) -> Option<StatusCode> {
    let req = Request::builder()
        .uri("/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .ok()?;
    let res = h.rt.block_on(app.clone().oneshot(req)).expect("infallible");
    Some(res.status())
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// Arbitrary tokens through the guard.
pub fn token(data: &[u8]) {
    let h = harness();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (token, signed_header, signed_claims) = match mode % 4 {
        // The bytes as the token text.
        0 => (String::from_utf8_lossy(rest).into_owned(), None, None),
        // Three arbitrary segments, base64url-encoded.
        1 => {
            let mut parts = rest.splitn(3, |b| *b == 0xff);
            let (a, b, c) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            (format!("{}.{}.{}", b64(a), b64(b), b64(c)), None, None)
        }
        // A correct Ed25519 signature over an arbitrary header.
        2 => {
            let claims = claims().to_string();
            (
                h.ed.sign_raw(rest, claims.as_bytes()),
                Some(rest.to_vec()),
                None,
            )
        }
        // A correct signature (Ed25519) over arbitrary claims.
        _ => (
            h.ed.sign_raw(h.ed.header().to_string().as_bytes(), rest),
            None,
            Some(rest.to_vec()),
        ),
    };
    let Some(status) = status_of(h, &h.app, &token) else {
        return;
    };
    match status.as_u16() {
        401 | 400 => {}
        200 => {
            // Only a legitimate header and legitimate claims pass.
            if let Some(header) = signed_header {
                let header: Value =
                    serde_json::from_slice(&header).expect("accepted header is JSON");
                assert_eq!(header["alg"], "EdDSA", "{header}");
                assert_eq!(header["kid"], "ed-1", "{header}");
                for banned in ["crit", "b64"] {
                    assert!(header.get(banned).is_none(), "{header}");
                }
            } else if let Some(claims) = signed_claims {
                let claims: Value =
                    serde_json::from_slice(&claims).expect("accepted claims are JSON");
                assert_eq!(claims["iss"], ISSUER, "{claims}");
                let exp = claims["exp"].as_u64().expect("numeric exp");
                assert!(exp + 60 > now(), "{claims}");
                let aud_ok = claims["aud"] == AUDIENCE
                    || claims["aud"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|v| v == AUDIENCE));
                assert!(aud_ok, "{claims}");
            } else {
                panic!("an unsigned fuzz token was accepted: {token}");
            }
        }
        other => panic!("unexpected status {other} for {token:?}"),
    }
}

// --- jwks -------------------------------------------------------------------------

/// An arbitrary JWKS document; valid tokens are presented to it.
pub fn jwks(data: &[u8]) {
    let h = harness();
    let fetcher = JwksFetcher::builder().source(StaticJwks(Bytes::copy_from_slice(data)));
    let app = router(fetcher);
    let tokens = [
        h.rsa.sign(&claims()),
        h.ed.sign(&claims()),
        // The attacker's HS256 token under the RSA kid, with the fuzzed
        // document itself as the secret.
        iam_guard::test_util::sign_hs256(data, &json!({"alg": "HS256", "kid": "rsa-1"}), &claims()),
    ];
    for (i, token) in tokens.iter().enumerate() {
        let Some(status) = status_of(h, &app, token) else {
            continue;
        };
        match status.as_u16() {
            401 | 503 => {}
            200 if i < 2 => {
                // Accepted: the document must really publish that key.
                let doc: Value = serde_json::from_slice(data).expect("accepted JWKS is JSON");
                let want = if i == 0 { h.rsa.jwk() } else { h.ed.jwk() };
                let field = if i == 0 { "n" } else { "x" };
                let published = doc["keys"].as_array().is_some_and(|keys| {
                    keys.iter()
                        .any(|k| k["kid"] == want["kid"] && k[field] == want[field])
                });
                assert!(published, "accepted with a key the document does not hold");
            }
            other => panic!("unexpected status {other} for token {i}"),
        }
    }
    let _ = &h.jwks;
}
