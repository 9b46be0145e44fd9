//! A test IAM: key generation, token minting, and JWKS + OIDC discovery
//! served on an ephemeral loopback port. **For tests only: it mints tokens
//! for anyone who asks.**
//!
//! Service teams use it to test their own routers end to end; the crate's
//! own tests use it for every JWKS behaviour (outages, slow answers,
//! garbage, rotation), counting the fetches it serves.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use iam_guard::test_util::TestIam;
//! use serde_json::json;
//!
//! let iam = TestIam::start().await;
//! let token = iam.mint(json!({"sub": "teacher-1", "roles": ["teacher"]}));
//! let verifier = iam.verifier();
//! # let _ = (token, verifier);
//! # }
//! ```

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    hmac,
    rand::SystemRandom,
    rsa::KeySize,
    signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _},
};
use axum::{
    body::Body,
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::{net::TcpSocket, task::JoinHandle};

use crate::{
    jwt::{jwks::JwksFetcher, verify::TokenValidation},
    Verifier,
};

/// The audience [`TestIam::mint`] puts in tokens by default.
pub const TEST_AUDIENCE: &str = "test-api";

enum Pair {
    Rsa(aws_lc_rs::rsa::KeyPair, &'static dyn signature::RsaEncoding),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key with its public JWK.
pub struct TestKey {
    kid: String,
    alg: &'static str,
    pair: Pair,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// A fresh RSA-2048 key for RS256.
    ///
    /// # Panics
    ///
    /// When the platform cannot generate keys.
    pub fn rsa(kid: &str) -> Self {
        Self::rsa_with(kid, "RS256", &signature::RSA_PKCS1_SHA256)
    }

    /// A fresh RSA-2048 key for PS256.
    ///
    /// # Panics
    ///
    /// When the platform cannot generate keys.
    pub fn rsa_pss(kid: &str) -> Self {
        Self::rsa_with(kid, "PS256", &signature::RSA_PSS_SHA256)
    }

    fn rsa_with(kid: &str, alg: &'static str, enc: &'static dyn signature::RsaEncoding) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).expect("rsa keygen");
        Self {
            kid: kid.into(),
            alg,
            pair: Pair::Rsa(pair, enc),
        }
    }

    /// A fresh P-256 key for ES256.
    ///
    /// # Panics
    ///
    /// When the platform cannot generate keys.
    pub fn ec_p256(kid: &str) -> Self {
        let pair =
            EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec keygen");
        Self {
            kid: kid.into(),
            alg: "ES256",
            pair: Pair::Ec(pair),
        }
    }

    /// A fresh Ed25519 key for EdDSA.
    ///
    /// # Panics
    ///
    /// When the platform cannot generate keys.
    pub fn ed25519(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().expect("ed25519 keygen");
        Self {
            kid: kid.into(),
            alg: "EdDSA",
            pair: Pair::Ed(pair),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm this key signs with.
    pub fn alg(&self) -> &'static str {
        self.alg
    }

    /// The public key as a JWK (with `kid`, `alg` and `use: sig`).
    pub fn jwk(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match &self.pair {
            Pair::Rsa(pair, _) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::Ec(pair) => {
                // Uncompressed SEC1 point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Pair::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg);
        jwk["use"] = json!("sig");
        jwk
    }

    /// The public key bytes as the key type stores them (PKCS#1 DER for
    /// RSA, the SEC1 point for EC, the raw 32 bytes for Ed25519): material
    /// for algorithm-confusion tests.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(pair, _) => pair.public_key().as_ref().to_vec(),
            Pair::Ec(pair) => pair.public_key().as_ref().to_vec(),
            Pair::Ed(pair) => pair.public_key().as_ref().to_vec(),
        }
    }

    /// The default header for this key: `{"alg", "typ": "JWT", "kid"}`.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg, "typ": "JWT", "kid": self.kid})
    }

    /// Signs `claims` under this key's default header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&self.header(), claims)
    }

    /// Signs `claims` under any `header` (which is not checked: attack
    /// tests need headers that lie).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// Signs raw header and claims bytes, for headers that are not valid
    /// JSON objects or have duplicate members.
    ///
    /// # Panics
    ///
    /// When signing fails, which aws-lc only does on invalid keys.
    pub fn sign_raw(&self, header: &[u8], claims: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = match &self.pair {
            Pair::Rsa(pair, enc) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(*enc, &SystemRandom::new(), input.as_bytes(), &mut sig)
                    .expect("rsa sign");
                sig
            }
            Pair::Ec(pair) => pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("ec sign")
                .as_ref()
                .to_vec(),
            Pair::Ed(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// Signs `header` and `claims` with HMAC-SHA256 under `secret`: forged
/// tokens for algorithm-confusion tests.
pub fn sign_hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// How the test IAM answers JWKS requests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IamMode {
    /// The JWKS, as published.
    Healthy,
    /// This status with an empty body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// The JWKS after this delay.
    Slow(Duration),
    /// 200 with a body of this many bytes.
    Huge(usize),
    /// The JWKS, as published, streamed in small chunks without a
    /// `Content-Length`: the client learns the size only by reading.
    Chunked,
}

struct Shared {
    issuer: String,
    keys: Mutex<Vec<Arc<TestKey>>>,
    extra_jwks: Mutex<Vec<Value>>,
    mode: Mutex<IamMode>,
    cache_control: Mutex<Option<String>>,
    discovery_issuer: Mutex<Option<String>>,
    jwks_hits: AtomicUsize,
    discovery_hits: AtomicUsize,
    /// Named demo users for `POST /token`: name → claims.
    users: Mutex<std::collections::HashMap<String, Value>>,
    rotations: AtomicUsize,
}

/// A test IAM on loopback. See the [module docs](self).
pub struct TestIam {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for TestIam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIam")
            .field("issuer", &self.shared.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for TestIam {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TestIam {
    /// Starts a test IAM publishing one RS256 key, `rsa-1`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        Self::start_with(vec![TestKey::rsa("rsa-1")]).await
    }

    /// Starts a test IAM publishing `keys` (the first signs [`mint`](Self::mint)).
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub async fn start_with(keys: Vec<TestKey>) -> Self {
        Self::start_at(([127, 0, 0, 1], 0).into(), keys)
            .await
            .expect("bind a loopback port")
    }

    /// Starts a test IAM on `addr` (port 0 for an ephemeral one),
    /// publishing `keys`.
    ///
    /// # Errors
    ///
    /// When `addr` cannot be bound.
    pub async fn start_at(addr: SocketAddr, keys: Vec<TestKey>) -> std::io::Result<Self> {
        let listener = bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            keys: Mutex::new(keys.into_iter().map(Arc::new).collect()),
            extra_jwks: Mutex::new(Vec::new()),
            mode: Mutex::new(IamMode::Healthy),
            cache_control: Mutex::new(None),
            discovery_issuer: Mutex::new(None),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
            users: Mutex::new(std::collections::HashMap::new()),
            rotations: AtomicUsize::new(0),
        });
        let iam = Self {
            addr,
            shared,
            server: Mutex::new(None),
        };
        iam.serve(listener);
        Ok(iam)
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", axum::routing::post(token))
            .route("/rotate", axum::routing::post(rotate))
            .with_state(self.shared.clone());
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.server.lock().expect("lock") = Some(handle);
    }

    /// Stops answering: the port is closed, so fetches are refused.
    pub fn stop(&self) {
        if let Some(handle) = self.server.lock().expect("lock").take() {
            handle.abort();
        }
    }

    /// Starts answering again on the same port after [`stop`](Self::stop).
    ///
    /// # Panics
    ///
    /// When the port cannot be bound again.
    pub async fn restart(&self) {
        self.stop();
        // The aborted task releases the listener when it is next polled.
        let mut tries = 0;
        let listener = loop {
            match bind(self.addr) {
                Ok(l) => break l,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// The issuer URL (`http://127.0.0.1:PORT`), which is also the
    /// discovery base.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.shared.issuer)
    }

    /// Sets how JWKS requests are answered.
    pub fn set_mode(&self, mode: IamMode) {
        *self.shared.mode.lock().expect("lock") = mode;
    }

    /// Sets the `Cache-Control` header of JWKS answers (none by default).
    pub fn set_cache_control(&self, value: Option<&str>) {
        *self.shared.cache_control.lock().expect("lock") = value.map(str::to_owned);
    }

    /// Makes the discovery document claim `issuer` instead of this IAM's
    /// own issuer (`None` restores it): a discovery endpoint handing out
    /// another issuer's metadata, which clients must refuse.
    pub fn set_discovery_issuer(&self, issuer: Option<&str>) {
        *self.shared.discovery_issuer.lock().expect("lock") = issuer.map(str::to_owned);
    }

    /// The JWKS document as currently published (what
    /// [`IamMode::Healthy`] serves), e.g. to size a response cap.
    pub fn jwks(&self) -> Value {
        self.shared.jwks()
    }

    /// Publishes `key` too.
    pub fn add_key(&self, key: TestKey) -> Arc<TestKey> {
        let key = Arc::new(key);
        self.shared.keys.lock().expect("lock").push(key.clone());
        key
    }

    /// Stops publishing the key `kid`.
    pub fn remove_key(&self, kid: &str) {
        self.shared
            .keys
            .lock()
            .expect("lock")
            .retain(|k| k.kid != kid);
    }

    /// Publishes `key` and withdraws every other key: a rotation.
    pub fn rotate_to(&self, key: TestKey) -> Arc<TestKey> {
        let key = Arc::new(key);
        *self.shared.keys.lock().expect("lock") = vec![key.clone()];
        key
    }

    /// Appends raw JWK values to the published set (malformed or
    /// unsupported keys, for robustness tests).
    pub fn add_raw_jwk(&self, jwk: Value) {
        self.shared.extra_jwks.lock().expect("lock").push(jwk);
    }

    /// The first published key, which [`mint`](Self::mint) signs with.
    ///
    /// # Panics
    ///
    /// When no key is published.
    pub fn key(&self) -> Arc<TestKey> {
        self.shared
            .keys
            .lock()
            .expect("lock")
            .first()
            .cloned()
            .expect("a published key")
    }

    /// JWKS requests served so far (whatever the mode).
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }

    /// Discovery requests served so far.
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_hits.load(Ordering::SeqCst)
    }

    /// Default claims: this issuer, `sub: user-1`, [`TEST_AUDIENCE`],
    /// issued now, expiring in 5 minutes.
    pub fn default_claims(&self) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        json!({
            "iss": self.shared.issuer,
            "sub": "user-1",
            "aud": TEST_AUDIENCE,
            "iat": now,
            "exp": now + 300,
        })
    }

    /// A token signed by the first key: the default claims with `patch`
    /// merged over them (a `null` in `patch` removes that claim).
    pub fn mint(&self, patch: Value) -> String {
        self.mint_with(&self.key(), patch)
    }

    /// Like [`mint`](Self::mint), signed by `key`.
    pub fn mint_with(&self, key: &TestKey, patch: Value) -> String {
        key.sign(&merge(self.default_claims(), patch))
    }

    /// A fetcher for this IAM through discovery, with short retry pauses
    /// suited to tests.
    ///
    /// # Panics
    ///
    /// Never for a running test IAM (its issuer is a valid URL).
    pub fn fetcher(&self) -> JwksFetcher {
        JwksFetcher::builder()
            .retry_after_failure(Duration::from_millis(50))
            .discover(self.issuer())
            .expect("a valid issuer URL")
    }

    /// A verifier accepting this IAM's tokens for [`TEST_AUDIENCE`], with
    /// the algorithms of the published keys allowed.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.fetcher(), self.validation())
    }

    /// The validation [`verifier`](Self::verifier) uses.
    pub fn validation(&self) -> TokenValidation {
        use jsonwebtoken::Algorithm;
        let algs: Vec<Algorithm> = ["RS256", "PS256", "ES256", "EdDSA"]
            .iter()
            .map(|a| a.parse().expect("a known algorithm"))
            .collect();
        TokenValidation::new(self.issuer())
            .audience([TEST_AUDIENCE])
            .algorithms(algs)
    }

    /// Registers a named demo user for `POST /token`: `claims` are merged
    /// over the default claims when a token is minted for `name`.
    pub fn add_user(&self, name: &str, claims: Value) {
        self.shared
            .users
            .lock()
            .expect("lock")
            .insert(name.to_owned(), claims);
    }

    /// Rotates to a fresh key of `alg` (`RS256`, `PS256`, `ES256` or
    /// `EdDSA`): it signs from now on, and the previous keys stay
    /// published so tokens already issued keep verifying.
    ///
    /// # Panics
    ///
    /// When `alg` is not one of those.
    pub fn rotate(&self, alg: &str) -> Arc<TestKey> {
        self.shared.rotate(alg).expect("a supported algorithm")
    }
}

impl Shared {
    fn rotate(&self, alg: &str) -> Option<Arc<TestKey>> {
        let n = self.rotations.fetch_add(1, Ordering::SeqCst) + 2;
        let kid = format!("{}-{n}", alg.to_ascii_lowercase());
        let key = Arc::new(match alg {
            "RS256" => TestKey::rsa(&kid),
            "PS256" => TestKey::rsa_pss(&kid),
            "ES256" => TestKey::ec_p256(&kid),
            "EdDSA" => TestKey::ed25519(&kid),
            _ => return None,
        });
        self.keys.lock().expect("lock").insert(0, key.clone());
        Some(key)
    }

    fn mint_for(&self, patch: Value, ttl: u64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let base = json!({
            "iss": self.issuer,
            "sub": "user-1",
            "aud": TEST_AUDIENCE,
            "iat": now,
            "exp": now + ttl,
        });
        let key = self
            .keys
            .lock()
            .expect("lock")
            .first()
            .cloned()
            .expect("a published key");
        key.sign(&merge(base, patch))
    }
}

/// Lifetime of tokens minted by `POST /token`.
const DEV_TOKEN_TTL: u64 = 3600;

/// `POST /token` with `{"user": "<name>"}` (a user registered with
/// [`TestIam::add_user`]) or `{"claims": {...}}`: an access token, shaped
/// like an OAuth token response. Development only.
async fn token(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let claims = match (request.get("user").and_then(Value::as_str), request.get("claims")) {
        (Some(user), _) => {
            // Look up and release the lock before answering: the 404 lists
            // the known users, which locks again.
            let found = shared.users.lock().expect("lock").get(user).cloned();
            match found {
                Some(claims) => claims,
                None => {
                    let mut known: Vec<String> =
                        shared.users.lock().expect("lock").keys().cloned().collect();
                    known.sort();
                    return (
                        StatusCode::NOT_FOUND,
                        Json(json!({"error": "unknown_user", "known_users": known})),
                    )
                        .into_response();
                }
            }
        }
        (None, Some(claims @ Value::Object(_))) => claims.clone(),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "error_description": "send {\"user\": name} or {\"claims\": {...}}"})),
            )
                .into_response()
        }
    };
    let token = shared.mint_for(claims, DEV_TOKEN_TTL);
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": DEV_TOKEN_TTL}))
        .into_response()
}

/// `POST /rotate` with an optional `{"alg": "ES256"}`: publish a new
/// signing key (previous keys stay published). Development only.
async fn rotate(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let alg = request
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or("RS256");
    match shared.rotate(alg) {
        Some(key) => Json(json!({"kid": key.kid(), "alg": key.alg()})).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "alg must be RS256, PS256, ES256 or EdDSA"})),
        )
            .into_response(),
    }
}

/// A [`Principal`](crate::Principal) built straight from `claims` with the
/// default claim mapping, as if a token carrying them had been verified:
/// for unit tests of handlers, permission sources and policies.
///
/// # Panics
///
/// When `claims` has no string `sub` or an unusable `roles` claim.
pub fn principal(claims: Value) -> crate::Principal {
    let Value::Object(map) = claims else {
        panic!("claims must be a JSON object")
    };
    let identity = crate::ClaimMapping::default()
        .identity(map)
        .unwrap_or_else(|e| panic!("unusable claims: {e}"));
    crate::Principal::new(Arc::new(identity), None)
}

/// Merges `patch` into `base` at the top level; `null` removes a claim.
pub fn merge(mut base: Value, patch: Value) -> Value {
    if let (Some(base), Value::Object(patch)) = (base.as_object_mut(), patch) {
        for (k, v) in patch {
            if v.is_null() {
                base.remove(&k);
            } else {
                base.insert(k, v);
            }
        }
    }
    base
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Shared {
    fn jwks(&self) -> Value {
        let mut keys: Vec<Value> = self
            .keys
            .lock()
            .expect("lock")
            .iter()
            .map(|k| k.jwk())
            .collect();
        keys.extend(self.extra_jwks.lock().expect("lock").iter().cloned());
        json!({ "keys": keys })
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let issuer = shared
        .discovery_issuer
        .lock()
        .expect("lock")
        .clone()
        .unwrap_or_else(|| shared.issuer.clone());
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/jwks", shared.issuer),
        "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let mode = shared.mode.lock().expect("lock").clone();
    match mode {
        IamMode::Healthy => {}
        IamMode::Status(code) => {
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()
        }
        IamMode::Garbage => return (StatusCode::OK, "{\"keys\": [oops").into_response(),
        IamMode::Slow(delay) => tokio::time::sleep(delay).await,
        IamMode::Huge(len) => return (StatusCode::OK, " ".repeat(len)).into_response(),
        IamMode::Chunked => {}
    }
    let doc = shared.jwks();
    let mut res = if mode == IamMode::Chunked {
        let body = doc.to_string().into_bytes();
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(4096)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut res = Body::from_stream(futures_util::stream::iter(chunks)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        res
    } else {
        Json(doc).into_response()
    };
    if let Some(cc) = shared.cache_control.lock().expect("lock").as_deref() {
        if let Ok(v) = cc.parse() {
            res.headers_mut().insert(header::CACHE_CONTROL, v);
        }
    }
    res
}

/// Claims as a map, for callers building them field by field.
pub fn claims(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Map<_, _>>(),
    )
}
