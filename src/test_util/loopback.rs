//! The loopback IAM: JWKS and OIDC discovery on an ephemeral port, with
//! fault modes, fetch counters and key rotation.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    body::Body,
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::{net::TcpSocket, task::JoinHandle};

use super::{catalogue, dev_iam, merge, TestKey, TEST_AUDIENCE};
use crate::{
    jwt::{jwks::JwksFetcher, verify::TokenValidation},
    Verifier,
};

/// How the test IAM answers JWKS requests ([`TestIam::set_mode`]), or
/// catalogue requests ([`TestIam::set_catalogue_mode`]).
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

/// The state every endpoint of one test IAM shares.
pub(super) struct Shared {
    pub(super) issuer: String,
    /// Published keys; the first one signs.
    pub(super) keys: Mutex<Vec<Arc<TestKey>>>,
    extra_jwks: Mutex<Vec<Value>>,
    mode: Mutex<IamMode>,
    cache_control: Mutex<Option<String>>,
    discovery_issuer: Mutex<Option<String>>,
    jwks_hits: AtomicUsize,
    discovery_hits: AtomicUsize,
    pub(super) dev: dev_iam::DevState,
    pub(super) catalogue: catalogue::CatalogueState,
}

/// A test IAM on loopback. See the [module docs](crate::test_util).
pub struct TestIam {
    addr: SocketAddr,
    pub(super) shared: Arc<Shared>,
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
            dev: dev_iam::DevState::default(),
            catalogue: catalogue::CatalogueState::default(),
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
            .merge(dev_iam::routes())
            .merge(catalogue::routes())
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
            .retain(|k| k.kid() != kid);
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
    /// every asymmetric algorithm allowed.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.fetcher(), self.validation())
    }

    /// The validation [`verifier`](Self::verifier) uses.
    pub fn validation(&self) -> TokenValidation {
        use crate::Algorithm;
        let algs = Algorithm::ALL.into_iter().filter(|alg| !alg.is_hmac());
        TokenValidation::new(self.issuer())
            .audience([TEST_AUDIENCE])
            .algorithms(algs)
    }
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
