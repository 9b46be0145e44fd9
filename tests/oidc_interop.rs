//! Interop with a real OpenID Provider: panva's `oidc-provider` (Node,
//! pinned in `tests/oidc/package-lock.json`) issues client-credentials
//! access tokens as RFC 9068 JWTs for three resources — RS256, ES256 and
//! EdDSA — and the guard, configured with nothing but the provider's issuer
//! URL, must accept them, reject them for the wrong audience or algorithm,
//! and follow the provider through a key rotation.
//!
//! Every token here comes from the provider's `/token` endpoint; none is
//! minted by us. The suite needs Node ≥ 20.19 and npm, and installs the
//! provider from the lockfile on first run. It fails — never skips — when
//! the provider cannot be installed or started: a skipped interop suite
//! looks exactly like a passing one.
#![cfg(all(feature = "jwks-http", feature = "axum"))]

mod common;

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{mpsc, Arc, Mutex, OnceLock},
    thread,
    time::Duration,
};

use axum::{routing::get, Router};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use common::*;
use http::StatusCode;
use iam_guard::{Algorithm, JwksFetcher, JwtAuthGuardLayer, Principal, TokenValidation, Verifier};
use serde_json::Value;

/// How long the provider may take to print READY. Node starts in well under
/// a second; the margin is for loaded CI machines.
const STARTUP: Duration = Duration::from_secs(20);

const CLIENT_ID: &str = "iam-guard-interop";
const CLIENT_SECRET: &str = "interop-secret-that-is-only-for-loopback-tests";

/// The provider's resource servers (see `tests/oidc/provider.mjs`): each is
/// its own audience and signs with its own algorithm.
#[derive(Debug, Clone, Copy)]
struct Resource {
    audience: &'static str,
    scope: &'static str,
    alg: Algorithm,
    alg_name: &'static str,
}

const RS256: Resource = Resource {
    audience: "urn:iam-guard:rs256",
    scope: "rs256:read",
    alg: Algorithm::RS256,
    alg_name: "RS256",
};
const ES256: Resource = Resource {
    audience: "urn:iam-guard:es256",
    scope: "es256:read",
    alg: Algorithm::ES256,
    alg_name: "ES256",
};
const EDDSA: Resource = Resource {
    audience: "urn:iam-guard:eddsa",
    scope: "eddsa:read",
    alg: Algorithm::EdDSA,
    alg_name: "EdDSA",
};
const ALL: [Resource; 3] = [RS256, ES256, EDDSA];

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Installs `oidc-provider` from the lockfile unless it is there already
/// (`.ci/run` installs it up front), once per test binary, so that a plain
/// `cargo test --all-features` works on a fresh checkout.
fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = INSTALLED.get_or_init(|| {
        let dir = provider_dir();
        if dir
            .join("node_modules/oidc-provider/package.json")
            .is_file()
        {
            return Ok(());
        }
        let output = Command::new("npm")
            .arg("ci")
            .arg("--prefix")
            .arg(&dir)
            .args(["--no-audit", "--no-fund"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run npm (Node >= 20.19 and npm are required): {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "npm ci --prefix {} failed ({}):\n{}{}",
                dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("the OIDC interop suite cannot install oidc-provider: {e}");
    }
}

/// A running `oidc-provider`, killed on drop.
struct Provider {
    child: Child,
    /// Held so the provider's stdin stays open: it exits when this closes,
    /// which also covers a test binary that dies without dropping us.
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
    issuer: String,
    port: u16,
    /// The kids the provider signs with, as it announced them.
    kids: Vec<String>,
    http: reqwest::Client,
}

impl Provider {
    /// Starts the provider on a port the OS picks.
    fn start() -> Self {
        Self::start_on(0, "1")
    }

    /// Starts the provider on `port` (0: any) with a fresh key set whose
    /// kids carry `generation`.
    fn start_on(port: u16, generation: &str) -> Self {
        ensure_installed();
        let script = provider_dir().join("provider.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(port.to_string())
            .arg(generation)
            .current_dir(provider_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run node (Node >= 20.19 is required for the OIDC interop suite): {e}"
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");

        // Both pipes are drained for the provider's whole life, so it never
        // blocks on a full pipe; stderr is kept for failure messages.
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err_pipe.read(&mut buf) {
                sink.lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        let out_pipe = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(out_pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("READY ") {
                    let _ = ready_tx.send(rest.to_owned());
                }
            }
        });

        let ready = match ready_rx.recv_timeout(STARTUP) {
            Ok(ready) => ready,
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().ok();
                // Let the stderr reader take what the provider left.
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "oidc-provider did not become ready ({e}; exit status {status:?}).\nstderr:\n{}",
                    stderr.lock().expect("lock")
                );
            }
        };
        let mut fields = ready.split(' ');
        let issuer = fields.next().expect("READY names the issuer").to_owned();
        let kids = fields
            .next()
            .expect("READY names the kids")
            .split(',')
            .map(str::to_owned)
            .collect();
        let port = issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the issuer has a port");
        let http = reqwest::Client::builder()
            // The provider is restarted on the same port: a pooled
            // connection to the old process must not be reused.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("reqwest client");
        Self {
            child,
            _stdin: stdin,
            stderr,
            issuer,
            port,
            kids,
            http,
        }
    }

    /// Stops this provider and starts another on the same issuer URL with
    /// a new key set: what a key rotation looks like from outside.
    fn restart_with_new_keys(self, generation: &str) -> Self {
        let port = self.port;
        drop(self);
        Self::start_on(port, generation)
    }

    /// A client-credentials access token for `resource`, straight from the
    /// provider's token endpoint.
    async fn token(&self, resource: Resource) -> String {
        let credentials = STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        let body = format!(
            "grant_type=client_credentials&resource={}&scope={}",
            form_encode(resource.audience),
            form_encode(resource.scope)
        );
        let res = self
            .http
            .post(format!("{}/token", self.issuer))
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /token failed: {e}\n{}", self.stderr()));
        let status = res.status();
        let text = res.text().await.expect("token response body");
        assert!(
            status.is_success(),
            "/token answered {status}: {text}\n{}",
            self.stderr()
        );
        let json: Value = serde_json::from_str(&text).expect("token response is JSON");
        assert_eq!(json["token_type"], "Bearer", "{json}");
        assert_eq!(json["scope"], resource.scope, "{json}");
        let token = json["access_token"]
            .as_str()
            .expect("an access_token")
            .to_owned();
        // What the provider sends must be what the tests below assume: an
        // RFC 9068 JWT signed with the resource's algorithm.
        let header = decode_segment(&token, 0);
        assert_eq!(header["typ"], "at+jwt", "{header}");
        assert_eq!(header["alg"], resource.alg_name, "{header}");
        token
    }

    fn stderr(&self) -> String {
        format!("provider stderr:\n{}", self.stderr.lock().expect("lock"))
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a form value (everything but unreserved characters).
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The JSON of segment `i` (0: header, 1: claims) of a compact JWT.
fn decode_segment(token: &str, i: usize) -> Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let segment = token.split('.').nth(i).expect("a compact JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("JSON")
}

/// What the handler saw: the principal's user id and the token claims a
/// client-credentials caller is identified by.
async fn who(p: Principal) -> String {
    let claim = |name: &str| p.claim::<String>(name).unwrap_or_else(|_| "-".into());
    format!(
        "{}|{}|{}|{}",
        p.user_id(),
        claim("client_id"),
        claim("aud"),
        claim("scope")
    )
}

/// A guard built the way a service would against this provider: the
/// issuer URL (discovery finds the JWKS), the audiences and algorithms it
/// accepts, and the RFC 9068 profile the provider's tokens follow.
fn verifier(issuer: &str, audiences: &[Resource], algorithms: &[Algorithm]) -> Verifier {
    let jwks = JwksFetcher::discover(issuer).expect("the issuer is an http URL");
    Verifier::new(
        jwks,
        TokenValidation::new(issuer)
            .audience(audiences.iter().map(|r| r.audience))
            .algorithms(algorithms.iter().copied())
            .access_token_profile(),
    )
}

fn guarded(verifier: &Verifier) -> Router {
    Router::new()
        .route("/me", get(who))
        .layer(JwtAuthGuardLayer::new(verifier.clone()))
}

async fn assert_accepted(app: &Router, token: &str, resource: Resource) {
    let (status, body) = call(app, bearer(token)).await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", resource.alg_name);
    assert_eq!(
        body,
        format!(
            "{CLIENT_ID}|{CLIENT_ID}|{}|{}",
            resource.audience, resource.scope
        ),
        "{}",
        resource.alg_name
    );
}

async fn assert_rejected(app: &Router, token: &str, message: &str, context: &str) {
    let (status, challenge, body) = call_json(app, bearer(token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}: {body}");
    assert_eq!(body["code"], "invalid_token", "{context}: {body}");
    assert_eq!(body["message"], message, "{context}: {body}");
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.contains("invalid_token")),
        "{context}: challenge {challenge:?}"
    );
}

/// A real token for `resource` through a guard that accepts exactly that
/// resource's audience and algorithm.
async fn accepts(resource: Resource) {
    let provider = Provider::start();
    let verifier = verifier(&provider.issuer, &[resource], &[resource.alg]);
    let app = guarded(&verifier);
    let token = provider.token(resource).await;
    let claims = decode_segment(&token, 1);
    assert_eq!(claims["iss"], provider.issuer.as_str(), "{claims}");
    assert_eq!(claims["sub"], CLIENT_ID, "{claims}");
    assert_accepted(&app, &token, resource).await;
    // Again, now from the verified-token cache.
    assert_accepted(&app, &token, resource).await;
    assert_eq!(verifier.signature_checks(), 1);
}

#[tokio::test]
async fn rs256_access_token_from_the_provider_is_accepted() {
    accepts(RS256).await;
}

#[tokio::test]
async fn es256_access_token_from_the_provider_is_accepted() {
    accepts(ES256).await;
}

#[tokio::test]
async fn eddsa_access_token_from_the_provider_is_accepted() {
    accepts(EDDSA).await;
}

#[tokio::test]
async fn discovery_of_the_issuer_is_the_only_configuration() {
    let provider = Provider::start();
    let verifier = verifier(&provider.issuer, &ALL, &ALL.map(|r| r.alg));
    assert_eq!(verifier.jwks().fetch_count(), 0, "discovery is lazy");
    verifier
        .jwks()
        .warm_up()
        .await
        .unwrap_or_else(|e| panic!("discovery + JWKS fetch failed: {e}\n{}", provider.stderr()));
    assert_eq!(verifier.jwks().fetch_count(), 1);
    let mut published = provider.kids.clone();
    published.sort();
    assert_eq!(verifier.jwks().kids(), published);

    let app = guarded(&verifier);
    for resource in ALL {
        let token = provider.token(resource).await;
        assert_accepted(&app, &token, resource).await;
    }
    // Every kid was known from the warm-up: no request went to the IAM.
    assert_eq!(verifier.jwks().fetch_count(), 1);
}

#[tokio::test]
async fn a_token_for_another_resource_is_rejected() {
    let provider = Provider::start();
    let every_alg = ALL.map(|r| r.alg);
    // Only the audience is wrong: the algorithm is on the allow-list.
    let es256_only = guarded(&verifier(&provider.issuer, &[ES256], &every_alg));
    for resource in [RS256, EDDSA] {
        let token = provider.token(resource).await;
        assert_rejected(
            &es256_only,
            &token,
            "the token's audience is not accepted",
            resource.audience,
        )
        .await;
    }
    let token = provider.token(ES256).await;
    assert_accepted(&es256_only, &token, ES256).await;
}

#[tokio::test]
async fn a_token_signed_with_an_algorithm_off_the_allow_list_is_rejected() {
    let provider = Provider::start();
    // Every audience is accepted: only the algorithm is wrong.
    let rs256_only = guarded(&verifier(&provider.issuer, &ALL, &[Algorithm::RS256]));
    for resource in [ES256, EDDSA] {
        let token = provider.token(resource).await;
        assert_rejected(
            &rs256_only,
            &token,
            "the token's algorithm is not accepted",
            resource.alg_name,
        )
        .await;
    }
    let token = provider.token(RS256).await;
    assert_accepted(&rs256_only, &token, RS256).await;
}

#[tokio::test]
async fn the_guard_follows_the_providers_key_rotation() {
    let provider = Provider::start_on(0, "1");
    let verifier = verifier(&provider.issuer, &ALL, &ALL.map(|r| r.alg));
    let app = guarded(&verifier);
    let mut before = Vec::new();
    for resource in ALL {
        let token = provider.token(resource).await;
        assert_accepted(&app, &token, resource).await;
        before.push((resource, token));
    }
    let old_kids = verifier.jwks().kids();
    assert_eq!(verifier.jwks().fetch_count(), 1);

    // Same issuer URL, new key set: the provider has rotated every key.
    let provider = provider.restart_with_new_keys("2");
    let mut new_kids = provider.kids.clone();
    new_kids.sort();
    assert!(
        new_kids.iter().all(|k| !old_kids.contains(k)),
        "{new_kids:?} vs {old_kids:?}"
    );

    // The same guard instance, untouched: the first token with a new kid
    // makes it refetch the JWKS, which brings all three new keys.
    for resource in ALL {
        let token = provider.token(resource).await;
        let kid = decode_segment(&token, 0)["kid"].clone();
        assert!(
            new_kids.iter().any(|k| *k == kid),
            "{kid} not in {new_kids:?}"
        );
        assert_accepted(&app, &token, resource).await;
    }
    assert_eq!(verifier.jwks().fetch_count(), 2);
    assert_eq!(verifier.jwks().kids(), new_kids);

    // The old keys left the JWKS, and their tokens leave with them — even
    // the ones the verified-token cache still held from before.
    for (resource, token) in &before {
        assert_rejected(
            &app,
            token,
            "the token's signing key is unknown",
            resource.alg_name,
        )
        .await;
    }
    // Within the refetch cooldown, unknown kids cost the provider nothing.
    assert_eq!(verifier.jwks().fetch_count(), 2);
}
