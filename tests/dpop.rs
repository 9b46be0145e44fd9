//! DPoP (RFC 9449) at the guard: honest proofs of every accepted algorithm
//! pass, on the fresh-token and the cached-token path; every attack of the
//! corpus below is refused with the code and challenge RFC 9449 §7.1
//! prescribes, and never reaches the handler; bound tokens are never
//! accepted without their proof; server nonces; the challenges of a
//! resource that accepts Bearer and DPoP, or DPoP alone.
//!
//! Proofs here come from the test kit's [`DpopKey`]; `tests/dpop_interop.rs`
//! checks proofs made by an independent JOSE implementation.
#![cfg(feature = "test-util")]

mod common;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{body::Body, routing::get, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use common::{call_json, send};
use http::{Request, StatusCode};
use iam_guard::{
    test_util::{access_token_hash, sign_hs256, DpopKey, TestIam},
    AuthScheme, Dpop, DpopNonces, JwtAuthGuardLayer, Principal, RequestContext, RoleGuard,
};
use serde_json::{json, Value};

const HOST: &str = "api.test";
const URL: &str = "https://api.test/me";
const ALGS: &str = "ES256 ES384 EdDSA Ed25519 PS256 RS256";

/// `/me` (GET, POST) and `/admin` (GET, needs role admin) behind `auth`,
/// counting what reaches a handler.
fn app(auth: JwtAuthGuardLayer) -> (Router, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let me = move |p: Principal, req: Request<Body>| {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            let scheme = RequestContext::from_extensions(req.extensions())
                .and_then(RequestContext::auth_scheme);
            format!(
                "{}|{:?}|{}",
                p.user_id(),
                scheme,
                p.dpop_thumbprint().unwrap_or("-")
            )
        }
    };
    let router = Router::new()
        .route("/me", get(me.clone()).post(me.clone()))
        .route("/admin", get(me).route_layer(RoleGuard::any_of(["admin"])))
        .layer(auth);
    (router, hits)
}

/// A request to `path` on [`HOST`] with `authorization` and each proof in
/// its own `DPoP` header.
fn request(method: &str, path: &str, authorization: &str, proofs: &[&str]) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", HOST)
        .header("authorization", authorization);
    for proof in proofs {
        req = req.header("dpop", *proof);
    }
    req.body(Body::empty()).unwrap()
}

fn dpop_get(token: &str, proof: &str) -> Request<Body> {
    request("GET", "/me", &format!("DPoP {token}"), &[proof])
}

async fn guarded(dpop: Dpop) -> (TestIam, Router, Arc<AtomicUsize>) {
    let iam = TestIam::start().await;
    let (router, hits) = app(JwtAuthGuardLayer::new(iam.verifier()).dpop(dpop));
    (iam, router, hits)
}

/// Status, challenge, body code and message.
async fn refusal(router: &Router, req: Request<Body>) -> (StatusCode, String, String, String) {
    let (status, challenge, body) = call_json(router, req).await;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        status,
        challenge.unwrap_or_default(),
        text(&body["code"]),
        text(&body["message"]),
    )
}

#[tokio::test]
async fn honest_proofs_of_every_accepted_algorithm_pass() {
    let (iam, router, hits) = guarded(Dpop::allowed()).await;
    for key in [
        DpopKey::es256(),
        DpopKey::es384(),
        DpopKey::ed25519(),
        DpopKey::ps256(),
        DpopKey::rs256(),
    ] {
        let token = iam.mint(key.cnf());
        let (status, _, body) =
            call_json(&router, dpop_get(&token, &key.proof("GET", URL, &token))).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", key.alg());
        let res = common::call(&router, dpop_get(&token, &key.proof("GET", URL, &token))).await;
        assert_eq!(res.0, StatusCode::OK, "{}", key.alg());
        assert_eq!(
            res.1,
            format!("user-1|Some(Dpop)|{}", key.thumbprint()),
            "{}",
            key.alg()
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn a_cached_token_still_needs_a_fresh_proof_on_every_request() {
    let (iam, router, hits) = guarded(Dpop::allowed()).await;
    let key = DpopKey::es256();
    let token = iam.mint(key.cnf());
    // The first request fetches the JWKS (the guard's awaiting path), the
    // next ones find the token verified (the synchronous path).
    for _ in 0..3 {
        let res = send(&router, dpop_get(&token, &key.proof("GET", URL, &token))).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(
        iam.verifier().signature_checks(),
        0,
        "the layer's verifier is its own"
    );
    let proof = key.proof("GET", URL, &token);
    assert_eq!(
        send(&router, dpop_get(&token, &proof)).await.status(),
        StatusCode::OK
    );
    let (status, challenge, code, message) = refusal(&router, dpop_get(&token, &proof)).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof")
    );
    assert_eq!(message, "the DPoP proof was already used");
    assert_eq!(
        challenge,
        format!("Bearer, DPoP error=\"invalid_dpop_proof\", algs=\"{ALGS}\"")
    );
    // A proof of the right key with no token cached yet is checked on the
    // awaiting path too.
    let fresh = iam.mint(key.cnf());
    let (status, _, code, _) = refusal(&router, dpop_get(&fresh, &proof)).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof")
    );
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

/// One attack: what it sends, and the message it must be refused with.
struct Attack {
    name: &'static str,
    req: Request<Body>,
    code: &'static str,
    message: &'static str,
}

#[tokio::test]
async fn the_attack_corpus_is_refused_with_the_right_error_and_reaches_no_handler() {
    let (iam, router, hits) = guarded(Dpop::allowed()).await;
    let key = DpopKey::es256();
    let other_key = DpopKey::ed25519();
    let token = iam.mint(key.cnf());
    let unbound = iam.mint(json!({}));
    // Warm the verified-token cache so that both paths see attacks.
    assert_eq!(
        send(&router, dpop_get(&token, &key.proof("GET", URL, &token)))
            .await
            .status(),
        StatusCode::OK
    );
    let honest = |claims_patch: Value| {
        let mut claims = key.claims("GET", URL, &token);
        for (k, v) in claims_patch.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        key.sign(&key.header(), &claims)
    };
    let with_header = |header_patch: Value| {
        let mut header = key.header();
        for (k, v) in header_patch.as_object().unwrap() {
            header[k] = v.clone();
        }
        key.sign(&header, &key.claims("GET", URL, &token))
    };
    let replayed = key.proof("GET", URL, &token);
    assert_eq!(
        send(&router, dpop_get(&token, &replayed)).await.status(),
        StatusCode::OK
    );
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk()})),
        b64(&key.claims("GET", URL, &token))
    );
    let hmac = sign_hs256(
        b"a-secret-only-the-attacker-knows",
        &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
        &key.claims("GET", URL, &token),
    );
    let mut private_jwk = key.public_jwk();
    private_jwk["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let mut tampered = key.proof("GET", URL, &token);
    tampered.push('A');
    let now = iam_guard::revocation::unix_now();

    let attacks = vec![
        Attack {
            name: "replayed proof",
            req: dpop_get(&token, &replayed),
            code: "invalid_dpop_proof",
            message: "the DPoP proof was already used",
        },
        Attack {
            name: "proof for another method",
            req: dpop_get(&token, &key.proof("POST", URL, &token)),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is for another HTTP method",
        },
        Attack {
            name: "lower-case method",
            req: dpop_get(&token, &key.proof("get", URL, &token)),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is for another HTTP method",
        },
        Attack {
            name: "proof for another path",
            req: dpop_get(&token, &key.proof("GET", "https://api.test/admin", &token)),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is for another URL",
        },
        Attack {
            name: "proof for another host",
            req: dpop_get(&token, &key.proof("GET", "https://evil.test/me", &token)),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is for another URL",
        },
        Attack {
            name: "proof over plain http",
            req: dpop_get(&token, &key.proof("GET", "http://api.test/me", &token)),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is for another URL",
        },
        Attack {
            name: "proof naming a query string",
            req: dpop_get(
                &token,
                &key.proof("GET", "https://api.test/me?admin=1", &token),
            ),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is for another URL",
        },
        Attack {
            name: "proof naming a fragment",
            req: dpop_get(&token, &key.proof("GET", "https://api.test/me#x", &token)),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is for another URL",
        },
        Attack {
            name: "stale iat",
            req: dpop_get(&token, &honest(json!({"iat": now - 3600}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is too old or issued in the future",
        },
        Attack {
            name: "future iat",
            req: dpop_get(&token, &honest(json!({"iat": now + 3600}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is too old or issued in the future",
        },
        Attack {
            name: "iat as a string",
            req: dpop_get(&token, &honest(json!({"iat": now.to_string()}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's claims are not valid: iat is not a NumericDate",
        },
        Attack {
            name: "missing ath",
            req: dpop_get(&token, &honest(json!({"ath": null}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is not for this access token",
        },
        Attack {
            name: "ath of another token",
            req: dpop_get(&token, &honest(json!({"ath": access_token_hash(&unbound)}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is not for this access token",
        },
        Attack {
            name: "missing jti",
            req: dpop_get(&token, &honest(json!({"jti": null}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's claims are not valid: jti is missing",
        },
        Attack {
            name: "missing htu",
            req: dpop_get(&token, &honest(json!({"htu": null}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's claims are not valid: htu is missing",
        },
        Attack {
            name: "proof key is not the token's cnf.jkt",
            req: dpop_get(&token, &other_key.proof("GET", URL, &token)),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's key is not the key the access token is bound to",
        },
        Attack {
            name: "alg none",
            req: dpop_get(&token, &unsigned),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's alg is not accepted",
        },
        Attack {
            name: "HS256 proof",
            req: dpop_get(&token, &hmac),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's alg is not accepted",
        },
        Attack {
            name: "alg of another family than the jwk",
            req: dpop_get(&token, &with_header(json!({"alg": "EdDSA"}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's jwk is not valid: the jwk's kty does not match alg",
        },
        Attack {
            name: "private key in the jwk",
            req: dpop_get(&token, &with_header(json!({"jwk": private_jwk}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's jwk holds a private key",
        },
        Attack {
            name: "jwk of another key",
            req: dpop_get(&token, &with_header(json!({"jwk": other_key.public_jwk()}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's jwk is not valid: the jwk's kty does not match alg",
        },
        Attack {
            name: "no jwk",
            req: dpop_get(
                &token,
                &key.sign(
                    &json!({"typ": "dpop+jwt", "alg": "ES256"}),
                    &key.claims("GET", URL, &token),
                ),
            ),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's jwk is not valid: the header has no jwk",
        },
        Attack {
            name: "typ JWT",
            req: dpop_get(&token, &with_header(json!({"typ": "JWT"}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's typ must be dpop+jwt",
        },
        Attack {
            name: "no typ",
            req: dpop_get(
                &token,
                &key.sign(
                    &json!({"alg": "ES256", "jwk": key.public_jwk()}),
                    &key.claims("GET", URL, &token),
                ),
            ),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's typ must be dpop+jwt",
        },
        Attack {
            name: "crit",
            req: dpop_get(&token, &with_header(json!({"crit": ["exp"]}))),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's header is not accepted: crit names an unsupported extension",
        },
        Attack {
            name: "tampered signature",
            req: dpop_get(&token, &tampered),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's signature is not valid",
        },
        Attack {
            name: "signature of other claims",
            req: dpop_get(&token, &{
                let p = key.proof("GET", URL, &token);
                let q = key.proof("GET", URL, &token);
                let (a, _) = p.rsplit_once('.').unwrap();
                let (_, s) = q.rsplit_once('.').unwrap();
                format!("{a}.{s}")
            }),
            code: "invalid_dpop_proof",
            message: "the DPoP proof's signature is not valid",
        },
        Attack {
            name: "garbage proof",
            req: dpop_get(&token, "not-a-jwt"),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is not a well-formed JWT",
        },
        Attack {
            name: "oversized proof",
            req: dpop_get(
                &token,
                &format!("{}.{}.{}", "e".repeat(5000), "e".repeat(5000), "e"),
            ),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is not a well-formed JWT",
        },
        Attack {
            name: "two DPoP headers",
            req: request(
                "GET",
                "/me",
                &format!("DPoP {token}"),
                &[
                    &key.proof("GET", URL, &token),
                    &key.proof("GET", URL, &token),
                ],
            ),
            code: "invalid_dpop_proof",
            message: "more than one DPoP proof was sent",
        },
        Attack {
            name: "no DPoP header",
            req: request("GET", "/me", &format!("DPoP {token}"), &[]),
            code: "invalid_dpop_proof",
            message: "the DPoP proof is missing",
        },
        Attack {
            name: "DPoP-bound token sent as Bearer",
            req: request("GET", "/me", &format!("Bearer {token}"), &[]),
            code: "invalid_token",
            message: "a DPoP-bound access token must be sent with the DPoP scheme",
        },
        Attack {
            name: "DPoP-bound token as Bearer, proof attached",
            req: request(
                "GET",
                "/me",
                &format!("Bearer {token}"),
                &[&key.proof("GET", URL, &token)],
            ),
            code: "invalid_token",
            message: "a DPoP-bound access token must be sent with the DPoP scheme",
        },
        Attack {
            name: "Bearer token sent with the DPoP scheme",
            req: dpop_get(&unbound, &key.proof("GET", URL, &unbound)),
            code: "invalid_token",
            message: "the access token is not DPoP-bound",
        },
    ];
    let before = hits.load(Ordering::SeqCst);
    for attack in attacks {
        let (status, challenge, code, message) = refusal(&router, attack.req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", attack.name);
        assert_eq!(code, attack.code, "{}: {message}", attack.name);
        assert_eq!(message, attack.message, "{}", attack.name);
        let expected = if attack.code == "invalid_dpop_proof" {
            format!("Bearer, DPoP error=\"invalid_dpop_proof\", algs=\"{ALGS}\"")
        } else if attack.name.starts_with("Bearer token") {
            format!("Bearer, DPoP error=\"invalid_token\", algs=\"{ALGS}\"")
        } else {
            format!("Bearer error=\"invalid_token\", DPoP algs=\"{ALGS}\"")
        };
        assert_eq!(challenge, expected, "{}", attack.name);
        assert!(!message.contains(&token), "{}", attack.name);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before,
        "an attack reached a handler"
    );
    // The honest client is still served.
    assert_eq!(
        send(&router, dpop_get(&token, &key.proof("GET", URL, &token)))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_url_is_compared_normalized_and_the_public_url_wins_over_host() {
    let iam = TestIam::start().await;
    let dpop = Dpop::allowed()
        .public_url("http://127.0.0.1:8080/api/")
        .unwrap();
    let (router, _) = app(JwtAuthGuardLayer::new(iam.verifier()).dpop(dpop));
    let key = DpopKey::ed25519();
    let token = iam.mint(key.cnf());
    for htu in [
        "http://127.0.0.1:8080/api/me",
        "HTTP://127.0.0.1:8080/api/me",
        "http://127.0.0.1:8080/api/./me",
        "http://127.0.0.1:8080/api/%6De",
    ] {
        // The request's own query string is no part of htu.
        let req = request(
            "GET",
            "/me?page=2",
            &format!("DPoP {token}"),
            &[&key.proof("GET", htu, &token)],
        );
        let (status, _, body) = call_json(&router, req).await;
        assert_eq!(status, StatusCode::OK, "{htu}: {body}");
    }
    // The Host header does not matter once the public URL is set.
    let (status, _, code, _) =
        refusal(&router, dpop_get(&token, &key.proof("GET", URL, &token))).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof")
    );
    assert!(Dpop::allowed().public_url("https://api.test/?q=1").is_err());
    assert!(Dpop::allowed().public_url("api.test").is_err());
}

#[tokio::test]
async fn challenges_name_both_schemes_and_the_error_goes_where_it_belongs() {
    let (iam, router, _) = guarded(Dpop::allowed()).await;
    let key = DpopKey::es256();
    let bound = iam.mint(key.cnf());
    let plain = iam.mint(json!({}));
    let no_token = Request::builder()
        .uri("/me")
        .header("host", HOST)
        .body(Body::empty())
        .unwrap();
    let (status, challenge, _, _) = refusal(&router, no_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge, format!("Bearer, DPoP algs=\"{ALGS}\""));
    // A plain bearer token still works where DPoP is only allowed.
    let res = common::call(
        &router,
        request("GET", "/me", &format!("Bearer {plain}"), &[]),
    )
    .await;
    assert_eq!(res, (StatusCode::OK, "user-1|Some(Bearer)|-".to_owned()));
    // 403 behind the auth layer: insufficient_scope on the scheme used.
    let admin = |token: &str, proof: Option<String>| match proof {
        Some(p) => request("GET", "/admin", &format!("DPoP {token}"), &[&p]),
        None => request("GET", "/admin", &format!("Bearer {token}"), &[]),
    };
    let proof = key.proof("GET", "https://api.test/admin", &bound);
    let (status, challenge, code, _) = refusal(&router, admin(&bound, Some(proof))).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "ROLE_REQUIRED")
    );
    assert_eq!(
        challenge,
        format!("Bearer, DPoP error=\"insufficient_scope\", algs=\"{ALGS}\"")
    );
    let (status, challenge, _, _) = refusal(&router, admin(&plain, None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge,
        format!("Bearer error=\"insufficient_scope\", DPoP algs=\"{ALGS}\"")
    );
}

#[tokio::test]
async fn required_dpop_refuses_bearer_tokens_and_names_only_dpop() {
    let iam = TestIam::start().await;
    let dpop = Dpop::required().algorithms([iam_guard::jwt::dpop::DpopAlgorithm::Es256]);
    let (router, hits) = app(JwtAuthGuardLayer::new(iam.verifier())
        .cookie("access_token")
        .dpop(dpop));
    let plain = iam.mint(json!({}));
    for req in [
        request("GET", "/me", &format!("Bearer {plain}"), &[]),
        Request::builder()
            .uri("/me")
            .header("host", HOST)
            .header("cookie", format!("access_token={plain}"))
            .body(Body::empty())
            .unwrap(),
    ] {
        let (status, challenge, code, message) = refusal(&router, req).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
        assert_eq!(
            message,
            "this resource accepts DPoP-bound access tokens only"
        );
        assert_eq!(challenge, "DPoP error=\"invalid_token\", algs=\"ES256\"");
    }
    let no_token = Request::builder()
        .uri("/me")
        .header("host", HOST)
        .body(Body::empty())
        .unwrap();
    assert_eq!(refusal(&router, no_token).await.1, "DPoP algs=\"ES256\"");
    // Only the listed algorithm.
    let ed = DpopKey::ed25519();
    let token = iam.mint(ed.cnf());
    let (_, _, code, message) =
        refusal(&router, dpop_get(&token, &ed.proof("GET", URL, &token))).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("invalid_dpop_proof", "the DPoP proof's alg is not accepted")
    );
    let es = DpopKey::es256();
    let token = iam.mint(es.cnf());
    assert_eq!(
        send(&router, dpop_get(&token, &es.proof("GET", URL, &token)))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_dpop_a_bound_token_is_never_accepted_and_the_scheme_is_not_read() {
    let iam = TestIam::start().await;
    let (router, hits) = app(JwtAuthGuardLayer::new(iam.verifier()));
    let key = DpopKey::es256();
    let token = iam.mint(key.cnf());
    let (status, challenge, code, message) = refusal(
        &router,
        request("GET", "/me", &format!("Bearer {token}"), &[]),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    assert_eq!(
        message,
        "a DPoP-bound access token must be sent with the DPoP scheme"
    );
    assert_eq!(challenge, "Bearer error=\"invalid_token\"");
    let (status, _, code, message) =
        refusal(&router, dpop_get(&token, &key.proof("GET", URL, &token))).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    assert_eq!(message, "the authorization scheme must be Bearer");
    // A token bound to something this guard cannot check is refused too.
    let odd = iam.mint(json!({"cnf": {"jwk": key.public_jwk()}}));
    let (status, _, _, message) = refusal(
        &router,
        request("GET", "/me", &format!("Bearer {odd}"), &[]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("confirmation method"), "{message}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn server_nonces_are_asked_for_and_then_accepted() {
    let nonces = DpopNonces::shared(&[9; 32]);
    let (iam, router, hits) = guarded(Dpop::allowed().nonces(nonces.clone())).await;
    let key = DpopKey::es256();
    let token = iam.mint(key.cnf());
    // Without a nonce: 401 use_dpop_nonce, and one to retry with.
    let res = send(&router, dpop_get(&token, &key.proof("GET", URL, &token))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        format!("Bearer, DPoP error=\"use_dpop_nonce\", algs=\"{ALGS}\"").as_str()
    );
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let body: Value = serde_json::from_slice(
        &http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes(),
    )
    .unwrap();
    assert_eq!(body["code"], "use_dpop_nonce");
    let retry = key.proof_with_nonce("GET", URL, &token, &nonce);
    assert_eq!(
        send(&router, dpop_get(&token, &retry)).await.status(),
        StatusCode::OK
    );
    // A nonce from another server, or made up, is asked again.
    let foreign = DpopNonces::shared(&[1; 32]);
    let theirs = {
        // Made by a server with another secret: refused like any other.
        let (other, _) =
            app(JwtAuthGuardLayer::new(iam.verifier()).dpop(Dpop::allowed().nonces(foreign)));
        let res = send(&other, dpop_get(&token, &key.proof("GET", URL, &token))).await;
        res.headers()["dpop-nonce"].to_str().unwrap().to_owned()
    };
    for bad in [theirs.as_str(), "made-up"] {
        let res = send(
            &router,
            dpop_get(&token, &key.proof_with_nonce("GET", URL, &token, bad)),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(res.headers().contains_key("dpop-nonce"));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let _ = AuthScheme::Dpop;
}

#[tokio::test]
async fn the_resource_metadata_says_how_to_send_dpop_and_every_challenge_names_it() {
    let iam = TestIam::start().await;
    let auth = JwtAuthGuardLayer::new(iam.verifier()).dpop(Dpop::required());
    let metadata = auth
        .protected_resource_metadata("https://api.test")
        .tls_client_certificate_bound_access_tokens(true)
        .build()
        .unwrap();
    let document: Value = serde_json::from_str(metadata.json()).unwrap();
    assert_eq!(
        document["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "Ed25519", "PS256", "RS256"])
    );
    assert_eq!(document["dpop_bound_access_tokens_required"], true);
    assert_eq!(document["tls_client_certificate_bound_access_tokens"], true);
    let (router, _) = app(auth.resource_metadata_url(metadata.metadata_url()));
    let no_token = Request::builder()
        .uri("/me")
        .header("host", HOST)
        .body(Body::empty())
        .unwrap();
    let url = metadata.metadata_url();
    assert_eq!(
        refusal(&router, no_token).await.1,
        format!(
            "DPoP resource_metadata=\"{}\", algs=\"{ALGS}\"",
            url.as_str()
        )
    );
    // Without DPoP the document says nothing about it.
    let plain = JwtAuthGuardLayer::new(iam.verifier())
        .protected_resource_metadata("https://api.test")
        .build()
        .unwrap();
    let document: Value = serde_json::from_str(plain.json()).unwrap();
    assert!(document.get("dpop_signing_alg_values_supported").is_none());
    assert!(document.get("dpop_bound_access_tokens_required").is_none());
}

#[tokio::test]
async fn the_development_iam_mints_dpop_bound_tokens_on_request() {
    let iam = TestIam::start().await;
    let (router, _) = app(JwtAuthGuardLayer::new(iam.verifier()).dpop(Dpop::allowed()));
    let key = DpopKey::ed25519();
    let client = reqwest::Client::new();
    let ask = |body: Value| {
        client
            .post(format!("{}/token", iam.issuer()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let res = ask(json!({"claims": {"sub": "u-dpop"}, "jkt": key.thumbprint()}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let res = common::call(&router, dpop_get(token, &key.proof("GET", URL, token))).await;
    assert_eq!(
        res,
        (
            StatusCode::OK,
            format!("u-dpop|Some(Dpop)|{}", key.thumbprint())
        )
    );
    let (status, _, code, _) = refusal(
        &router,
        request("GET", "/me", &format!("Bearer {token}"), &[]),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    for bad in [
        json!("short"),
        json!(7),
        json!(format!("{}=", key.thumbprint())),
    ] {
        let res = ask(json!({"claims": {"sub": "u"}, "jkt": bad}))
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
    }
}
