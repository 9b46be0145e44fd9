//! DPoP (RFC 9449) against an independent JOSE implementation: panva's
//! `jose` (Node, pinned in `tests/oidc/package-lock.json`) makes the keys,
//! the RFC 7638 thumbprints and the proofs, through
//! `tests/oidc/dpop-client.mjs`; the guard is served on a real loopback
//! port and called with reqwest.
//!
//! - For every accepted algorithm (ES256, EdDSA, RS256, PS256, ES384): a
//!   token bound to the thumbprint *jose* computed passes with a jose
//!   proof, once; the same proof again, or a jose proof for another method
//!   or URL, is refused `invalid_dpop_proof`.
//! - jose proofs that lie (stale or future `iat`, no `ath`, the hash of
//!   another token, a lower-case method, another scheme, a query, no `jti`,
//!   another key) are refused with the message `tests/dpop.rs` asserts for
//!   the test kit's own proofs, and reach no handler.
//! - The other way round: the test kit's [`DpopKey`] proofs, which
//!   `tests/dpop.rs` relies on, verify under jose, and jose computes the
//!   same thumbprint and `ath`.
//! - A DPoP-bound token issued by a real OpenID Provider (panva's
//!   `oidc-provider`, as in `tests/oidc_interop.rs`) to a client that
//!   proved its key with a jose proof is accepted with a jose proof of that
//!   key, by a guard configured with nothing but the provider's issuer.
//!
//! The suite needs Node ≥ 20.19 and npm, and installs `tests/oidc` from the
//! lockfile on first run. It fails, never skips, when Node or a script
//! cannot start: a skipped interop suite looks exactly like a passing one.
#![cfg(all(feature = "test-util", feature = "jwks-http", feature = "axum"))]

mod common;

use std::{
    io::Write,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use axum::{body::Body, routing::get, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use common::{
    oidc::{provider_dir, NodeScript, Provider},
    Answer,
};
use http::{Request, StatusCode};
use iam_guard::{
    test_util::{access_token_hash, DpopKey, TestIam},
    Algorithm, Dpop, JwksFetcher, JwtAuthGuardLayer, Principal, RequestContext, TokenValidation,
    Verifier,
};
use serde_json::{json, Value};

/// How long one answer of the jose client may take (an RSA key pair is the
/// slowest, far below this).
const ANSWER: Duration = Duration::from_secs(20);

const ALGS: &str = "ES256 ES384 EdDSA Ed25519 PS256 RS256";

/// The jose client (`tests/oidc/dpop-client.mjs`), one per test binary:
/// tests share it, one request at a time. It is never dropped; it exits
/// when the test binary does and its stdin closes.
struct Jose(Mutex<NodeScript>);

/// A key pair jose generated: its name in the client, its public JWK as
/// jose exported it, and the thumbprint jose computed.
#[derive(Debug, Clone)]
struct JoseKey {
    name: String,
    jwk: Value,
    jkt: String,
}

fn jose() -> &'static Jose {
    static JOSE: OnceLock<Jose> = OnceLock::new();
    JOSE.get_or_init(|| {
        let node = NodeScript::start("dpop-client.mjs", &[]);
        let installed: Value = serde_json::from_slice(
            &std::fs::read(provider_dir().join("node_modules/jose/package.json"))
                .expect("jose's package.json"),
        )
        .expect("JSON");
        assert_eq!(node.ready, installed["version"], "the jose that was loaded");
        Jose(Mutex::new(node))
    })
}

impl Jose {
    /// One request, one answer. Blocking; see [`ask`](Self::ask).
    fn call(&self, request: &Value) -> Value {
        // A test that panicked holding the lock left no request half-sent:
        // each answer is read before the lock is released.
        let mut node = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let sent = writeln!(node.stdin, "{request}").and_then(|()| node.stdin.flush());
        if let Err(e) = sent {
            panic!("cannot write to the jose client: {e}\n{}", node.stderr());
        }
        let line = match node.lines.recv_timeout(ANSWER) {
            Ok(line) => line,
            Err(e) => panic!(
                "the jose client did not answer {request}: {e}\n{}",
                node.stderr()
            ),
        };
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the jose client answered {line:?}: {e}"));
        if let Some(error) = answer.get("error") {
            panic!(
                "the jose client failed {request}: {}",
                error.as_str().unwrap_or_default()
            );
        }
        answer
    }

    /// [`call`](Self::call) off the runtime's thread, so the servers on it
    /// keep running.
    async fn ask(&'static self, request: Value) -> Value {
        tokio::task::spawn_blocking(move || self.call(&request))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    async fn generate(&'static self, alg: &'static str) -> JoseKey {
        let answer = self.ask(json!({"op": "generate", "alg": alg})).await;
        let text = |name: &str| answer[name].as_str().expect(name).to_owned();
        JoseKey {
            name: text("key"),
            jkt: text("jkt"),
            jwk: answer["jwk"].clone(),
        }
    }

    /// A proof by `key` for `htm` and `htu`, with `ath` of `token`;
    /// `variant` is merged into the request (`iatOffset`, `omit`, `claims`,
    /// or another `accessToken`).
    async fn proof(
        &'static self,
        key: &JoseKey,
        htm: &str,
        htu: &str,
        token: &str,
        variant: Value,
    ) -> String {
        let mut request = json!({
            "op": "proof",
            "key": key.name,
            "htm": htm,
            "htu": htu,
            "accessToken": token,
        });
        for (k, v) in variant.as_object().expect("a JSON object") {
            request[k] = v.clone();
        }
        let answer = self.ask(request).await;
        answer["proof"].as_str().expect("a proof").to_owned()
    }
}

// ---------------------------------------------------------------------------
// The guard on a real port.
// ---------------------------------------------------------------------------

/// A guarded `/me` (GET and POST) served on a loopback port.
struct Served {
    /// `http://127.0.0.1:<port>`, the guard's DPoP public URL.
    base: String,
    hits: Arc<AtomicUsize>,
    http: reqwest::Client,
}

/// 401 `invalid_dpop_proof` with `message` and the challenge of a
/// resource that accepts Bearer and DPoP.
trait InvalidProof {
    fn assert_invalid_proof(&self, message: &str, context: &str);
}

impl InvalidProof for Answer {
    fn assert_invalid_proof(&self, message: &str, context: &str) {
        let challenge = format!("Bearer, DPoP error=\"invalid_dpop_proof\", algs=\"{ALGS}\"");
        self.assert_401("invalid_dpop_proof", message, &challenge, context);
    }
}

/// Serves `/me` behind `verifier` with DPoP allowed, at its own URL.
async fn serve(verifier: Verifier) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    // Plain http on a port: the public URL names it, since the default
    // (https at the Host header's authority) would not match.
    let dpop = Dpop::allowed()
        .public_url(&base)
        .expect("an absolute http URL");
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let me = move |p: Principal, req: Request<Body>| {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
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
        .route("/me", get(me.clone()).post(me))
        .layer(JwtAuthGuardLayer::new(verifier).dpop(dpop));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client");
    Served { base, hits, http }
}

impl Served {
    /// `{base}/me`: the `htu` of an honest proof.
    fn me(&self) -> String {
        format!("{}/me", self.base)
    }

    /// `method /me` with `authorization` and, when given, a `DPoP` proof.
    async fn send(&self, method: &str, authorization: &str, proof: Option<&str>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut req = self
            .http
            .request(method, self.me())
            .header("authorization", authorization);
        if let Some(proof) = proof {
            req = req.header("dpop", proof);
        }
        let res = req.send().await.expect("the guarded server answers");
        Answer::read(res).await.expect("a body")
    }

    /// `method /me` with `Authorization: DPoP <token>` and `proof`.
    async fn dpop(&self, method: &str, token: &str, proof: &str) -> Answer {
        self.send(method, &format!("DPoP {token}"), Some(proof))
            .await
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The JSON of segment `i` (0: header, 1: claims) of a compact JWT.
fn decode_segment(token: &str, i: usize) -> Value {
    let segment = token.split('.').nth(i).expect("a compact JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("JSON")
}

// ---------------------------------------------------------------------------
// Proofs by jose, tokens by the test IAM.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn jose_proofs_of_every_algorithm_pass_once_and_only_for_their_request() {
    let jose = jose();
    let iam = TestIam::start().await;
    let served = serve(iam.verifier()).await;
    let algs = ["ES256", "EdDSA", "RS256", "PS256", "ES384"];
    for alg in algs {
        let key = jose.generate(alg).await;
        // Bound to the thumbprint jose computed: the guard's own RFC 7638
        // thumbprint of the proof's jwk must come out the same.
        let token = iam.mint(json!({"cnf": {"jkt": key.jkt}}));
        let proof = jose
            .proof(&key, "GET", &served.me(), &token, json!({}))
            .await;
        let header = decode_segment(&proof, 0);
        assert_eq!(
            (&header["alg"], &header["typ"], &header["jwk"]),
            (&json!(alg), &json!("dpop+jwt"), &key.jwk),
            "{alg}"
        );

        let ok = served.dpop("GET", &token, &proof).await;
        assert_eq!(ok.status, StatusCode::OK, "{alg}: {}", ok.body);
        assert_eq!(ok.body, format!("user-1|Some(Dpop)|{}", key.jkt), "{alg}");

        served
            .dpop("GET", &token, &proof)
            .await
            .assert_invalid_proof("the DPoP proof was already used", &format!("{alg}: replay"));

        let for_post = jose
            .proof(&key, "POST", &served.me(), &token, json!({}))
            .await;
        served
            .dpop("GET", &token, &for_post)
            .await
            .assert_invalid_proof(
                "the DPoP proof is for another HTTP method",
                &format!("{alg}: a POST proof on GET"),
            );
        // The same proof is good for the request it was made for.
        let ok = served.dpop("POST", &token, &for_post).await;
        assert_eq!(ok.status, StatusCode::OK, "{alg}: POST: {}", ok.body);

        let elsewhere = format!("{}/admin", served.base);
        let for_admin = jose.proof(&key, "GET", &elsewhere, &token, json!({})).await;
        served
            .dpop("GET", &token, &for_admin)
            .await
            .assert_invalid_proof(
                "the DPoP proof is for another URL",
                &format!("{alg}: a proof for /admin"),
            );
    }
    assert_eq!(served.hits(), 2 * algs.len());
}

#[tokio::test]
async fn jose_proofs_that_lie_are_refused_and_reach_no_handler() {
    let jose = jose();
    let iam = TestIam::start().await;
    let served = serve(iam.verifier()).await;
    let key = jose.generate("ES256").await;
    let other_key = jose.generate("EdDSA").await;
    let token = iam.mint(json!({"cnf": {"jkt": key.jkt}}));
    let unbound = iam.mint(json!({}));
    let me = served.me();
    let https = me.replacen("http://", "https://", 1);

    let cases = [
        (
            "stale iat",
            jose.proof(&key, "GET", &me, &token, json!({"iatOffset": -3600}))
                .await,
            "the DPoP proof is too old or issued in the future",
        ),
        (
            "future iat",
            jose.proof(&key, "GET", &me, &token, json!({"iatOffset": 3600}))
                .await,
            "the DPoP proof is too old or issued in the future",
        ),
        (
            "missing ath",
            jose.proof(&key, "GET", &me, &token, json!({"omit": ["ath"]}))
                .await,
            "the DPoP proof is not for this access token",
        ),
        (
            "ath of another token",
            jose.proof(&key, "GET", &me, &token, json!({"accessToken": unbound}))
                .await,
            "the DPoP proof is not for this access token",
        ),
        (
            "lower-case method",
            jose.proof(&key, "get", &me, &token, json!({})).await,
            "the DPoP proof is for another HTTP method",
        ),
        (
            "https instead of http",
            jose.proof(&key, "GET", &https, &token, json!({})).await,
            "the DPoP proof is for another URL",
        ),
        (
            "a query in htu",
            jose.proof(&key, "GET", &format!("{me}?admin=1"), &token, json!({}))
                .await,
            "the DPoP proof is for another URL",
        ),
        (
            "missing jti",
            jose.proof(&key, "GET", &me, &token, json!({"omit": ["jti"]}))
                .await,
            "the DPoP proof's claims are not valid: jti is missing",
        ),
        (
            "iat as a string",
            jose.proof(&key, "GET", &me, &token, json!({"claims": {"iat": "now"}}))
                .await,
            "the DPoP proof's claims are not valid: iat is not a NumericDate",
        ),
        (
            "a proof of another key",
            jose.proof(&other_key, "GET", &me, &token, json!({})).await,
            "the DPoP proof's key is not the key the access token is bound to",
        ),
    ];
    for (name, proof, message) in &cases {
        served
            .dpop("GET", &token, proof)
            .await
            .assert_invalid_proof(message, name);
    }

    // The token without its proof, as a bearer token: invalid_token.
    let bearer = served.send("GET", &format!("Bearer {token}"), None).await;
    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED, "{}", bearer.body);
    assert_eq!(bearer.json()["code"], "invalid_token");
    assert_eq!(
        bearer.json()["message"],
        "a DPoP-bound access token must be sent with the DPoP scheme"
    );
    assert_eq!(
        bearer.challenge.as_deref(),
        Some(format!("Bearer error=\"invalid_token\", DPoP algs=\"{ALGS}\"").as_str())
    );
    assert_eq!(served.hits(), 0, "a refused proof reached the handler");

    // The honest client is still served.
    let proof = jose.proof(&key, "GET", &me, &token, json!({})).await;
    let ok = served.dpop("GET", &token, &proof).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(served.hits(), 1);
}

#[tokio::test]
async fn the_test_kits_proofs_verify_under_jose_with_the_same_thumbprint() {
    let jose = jose();
    let token = "an.access.token";
    let url = "https://api.test/me";
    for key in [
        DpopKey::es256(),
        DpopKey::es384(),
        DpopKey::ed25519(),
        DpopKey::ps256(),
        DpopKey::rs256(),
    ] {
        let proof = key.proof("GET", url, token);
        let answer = jose
            .ask(json!({
                "op": "verify",
                "proof": proof,
                "jwk": key.public_jwk(),
                "accessToken": token,
            }))
            .await;
        let alg = key.alg();
        assert_eq!(answer["header"]["alg"], alg, "{alg}");
        assert_eq!(answer["header"]["typ"], "dpop+jwt", "{alg}");
        assert_eq!(answer["header"]["jwk"], key.public_jwk(), "{alg}");
        assert_eq!(answer["payload"]["htm"], "GET", "{alg}");
        assert_eq!(answer["payload"]["htu"], url, "{alg}");
        assert_eq!(answer["jkt"], key.thumbprint(), "{alg}: RFC 7638");
        assert_eq!(answer["ath"], access_token_hash(token), "{alg}: ath");
        assert_eq!(answer["payload"]["ath"], answer["ath"], "{alg}");
    }
}

// ---------------------------------------------------------------------------
// A DPoP-bound token from a real OpenID Provider.
// ---------------------------------------------------------------------------

/// The client and resource of `tests/oidc/provider.mjs` (the ES256 one of
/// `tests/oidc_interop.rs`).
const CLIENT_ID: &str = "iam-guard-interop";
const CLIENT_SECRET: &str = "interop-secret-that-is-only-for-loopback-tests";
const RESOURCE: &str = "urn:iam-guard:es256";
const SCOPE: &str = "es256:read";

/// `oidc-provider` on a port the OS picks; its issuer URL.
fn start_provider() -> (Provider, String) {
    let provider = Provider::start();
    let issuer = provider.issuer.clone();
    (provider, issuer)
}

#[tokio::test]
async fn a_dpop_bound_token_from_oidc_provider_passes_with_a_jose_proof_of_its_key() {
    let jose = jose();
    let (provider, issuer) = start_provider();
    // oidc-provider accepts ES256 and EdDSA proofs by default.
    for alg in ["ES256", "EdDSA"] {
        let key = jose.generate(alg).await;
        let answer = jose
            .ask(json!({
                "op": "token",
                "key": key.name,
                "tokenEndpoint": format!("{issuer}/token"),
                "clientId": CLIENT_ID,
                "clientSecret": CLIENT_SECRET,
                "resource": RESOURCE,
                "scope": SCOPE,
            }))
            .await;
        assert_eq!(answer["status"], 200, "{answer}\n{}", provider.stderr());
        let body = &answer["body"];
        assert_eq!(body["token_type"], "DPoP", "{body}");
        let token = body["access_token"].as_str().expect("an access token");
        // What the tests below assume: an RFC 9068 JWT bound to the key.
        assert_eq!(decode_segment(token, 0)["typ"], "at+jwt");
        let claims = decode_segment(token, 1);
        assert_eq!(claims["cnf"], json!({"jkt": key.jkt}), "{claims}");
        assert_eq!(claims["aud"], RESOURCE, "{claims}");

        // A guard built from the issuer alone: discovery finds the JWKS.
        let verifier = Verifier::new(
            JwksFetcher::discover(&issuer).expect("an http issuer"),
            TokenValidation::new(&issuer)
                .audience([RESOURCE])
                .algorithms([Algorithm::ES256])
                .access_token_profile(),
        );
        let served = serve(verifier).await;
        let proof = jose
            .proof(&key, "GET", &served.me(), token, json!({}))
            .await;
        let ok = served.dpop("GET", token, &proof).await;
        assert_eq!(ok.status, StatusCode::OK, "{alg}: {}", ok.body);
        assert_eq!(ok.body, format!("{CLIENT_ID}|Some(Dpop)|{}", key.jkt));

        served
            .dpop("GET", token, &proof)
            .await
            .assert_invalid_proof("the DPoP proof was already used", alg);
        let thief = jose.generate(alg).await;
        let stolen = jose
            .proof(&thief, "GET", &served.me(), token, json!({}))
            .await;
        served
            .dpop("GET", token, &stolen)
            .await
            .assert_invalid_proof(
                "the DPoP proof's key is not the key the access token is bound to",
                alg,
            );
        let bearer = served.send("GET", &format!("Bearer {token}"), None).await;
        assert_eq!(bearer.status, StatusCode::UNAUTHORIZED, "{alg}");
        assert_eq!(bearer.json()["code"], "invalid_token", "{alg}");
        assert_eq!(served.hits(), 1, "{alg}");
    }
}
