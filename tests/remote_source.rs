//! RemoteSource against a loopback IAM serving the permissions document at
//! `GET /permissions`: the cache by (user, tenant), explicit and TTL
//! invalidation, single-flight, and outages with and without a cached
//! answer.
#![cfg(feature = "test-util")]

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    extract::State,
    http::{HeaderMap, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use common::*;
use http::StatusCode;
use iam_guard::{
    extract::Permissions, permissions::remote::RemoteSource, test_util::TestIam, JwtAuthGuardLayer,
    ScopeGuard,
};
use serde_json::{json, Value};
use tokio::{net::TcpSocket, sync::oneshot, task::JoinHandle};

/// How the mock IAM answers.
#[derive(Clone, Debug)]
enum Mode {
    Healthy,
    Status(u16),
    Garbage,
    /// Healthy, after a pause, so concurrent misses overlap.
    Slow(Duration),
    /// The document as it is when the request arrives, sent once the test
    /// opens the gate: a fetch held in flight.
    Gated,
}

/// The query string and `Authorization` header of a request.
type Seen = (String, Option<String>);

#[derive(Clone)]
struct Shared {
    hits: Arc<AtomicUsize>,
    mode: Arc<Mutex<Mode>>,
    /// The document served per user id.
    docs: Arc<Mutex<Vec<(String, Value)>>>,
    /// (query, authorization header) of every request.
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Holds [`Mode::Gated`] answers until permits are added.
    gate: Arc<tokio::sync::Semaphore>,
}

/// A loopback IAM serving `GET /api/v1/permissions`; it can be taken down
/// (port closed) and brought back on the same port.
struct MockIam {
    addr: SocketAddr,
    shared: Shared,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

async fn permissions(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let query = uri.query().unwrap_or_default().to_owned();
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    shared.seen.lock().unwrap().push((query.clone(), auth));
    let user = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("userId="))
        .unwrap_or_default();
    let doc = shared
        .docs
        .lock()
        .unwrap()
        .iter()
        .find(|(u, _)| u == user)
        .map_or_else(|| json!({}), |(_, doc)| doc.clone());
    let mode = shared.mode.lock().unwrap().clone();
    match mode {
        Mode::Healthy => {}
        Mode::Status(code) => return StatusCode::from_u16(code).unwrap().into_response(),
        Mode::Garbage => return (StatusCode::OK, "{\"students\": [oops").into_response(),
        Mode::Slow(pause) => tokio::time::sleep(pause).await,
        Mode::Gated => shared.gate.acquire().await.unwrap().forget(),
    }
    Json(doc).into_response()
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

impl MockIam {
    async fn start() -> Self {
        let shared = Shared {
            hits: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Healthy)),
            docs: Arc::default(),
            seen: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        };
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut iam = Self {
            addr,
            shared,
            server: None,
        };
        iam.serve(listener);
        iam
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/api/v1/permissions", get(permissions))
            .with_state(self.shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        self.server = Some((tx, handle));
    }

    /// Closes the port and every open connection: requests are refused.
    async fn down(&mut self) {
        if let Some((tx, handle)) = self.server.take() {
            let _ = tx.send(());
            handle.await.unwrap();
        }
    }

    /// Serves again on the same port.
    async fn up(&mut self) {
        self.down().await;
        let mut tries = 0;
        let listener = loop {
            match bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) if tries < 200 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn url(&self) -> String {
        format!("http://{}/api/v1/permissions", self.addr)
    }

    fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    fn serve_doc(&self, user: &str, doc: Value) {
        let mut docs = self.shared.docs.lock().unwrap();
        docs.retain(|(u, _)| u != user);
        docs.push((user.to_owned(), doc));
    }

    /// Lets every held and future [`Mode::Gated`] answer go.
    fn open_gate(&self) {
        self.shared
            .gate
            .add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }

    /// Waits until `n` requests have arrived.
    async fn wait_for_hits(&self, n: usize) {
        for _ in 0..2_000 {
            if self.hits() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the IAM saw {} requests, expected {n}", self.hits());
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

/// Seed 002 §4's example answer, for an admin.
fn admin_doc() -> Value {
    json!({
        "students": {
            "scopes": { "anagraphic": "WRITE", "sensitive": "WRITE" },
            "actions": { "create": true, "delete": true }
        },
        "teachers": {
            "scopes": { "anagraphic": "WRITE" },
            "actions": { "create": true, "delete": true }
        },
        "users": {
            "scopes": { "profile": "WRITE" },
            "actions": {}
        }
    })
}

fn reader_doc() -> Value {
    json!({"students": {"scopes": {"anagraphic": "READ", "others": "NONE"}, "actions": {"create": false}}})
}

async fn echo(perms: Permissions) -> Json<Value> {
    Json(perms.to_document())
}

/// `GET /students` (READ any) and `GET /students/edit` (WRITE any) behind
/// the remote source; both answer the permissions they were given.
fn app(auth: &TestIam, source: &RemoteSource) -> Router {
    Router::new()
        .route(
            "/students",
            get(echo).route_layer(ScopeGuard::read("students")),
        )
        .route(
            "/students/edit",
            get(echo).route_layer(ScopeGuard::write("students")),
        )
        .layer(JwtAuthGuardLayer::new(auth.verifier()).permissions(source.clone()))
}

fn source(iam: &MockIam) -> RemoteSource {
    RemoteSource::builder(iam.url())
        .service_token("svc-credential")
        .build()
        .expect("a valid URL")
}

fn user_token(auth: &TestIam, user: &str, tenant: &str) -> String {
    auth.mint(json!({"sub": user, "tenantId": tenant}))
}

async fn students(app: &Router, token: &str) -> (StatusCode, Option<String>, Value) {
    call_json(app, to("GET", "/students", token, &[])).await
}

#[tokio::test]
async fn a_cache_hit_makes_no_call() {
    let (counted, _metrics) = counters();
    let auth = TestIam::start().await;
    let iam = MockIam::start().await;
    iam.serve_doc("admin-1", admin_doc());
    let source = source(&iam);
    let app = app(&auth, &source);
    let token = user_token(&auth, "admin-1", "school-1");

    let (status, _, body) = students(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, admin_doc());
    assert_eq!(iam.hits(), 1);
    for _ in 0..5 {
        let (status, _, body) = students(&app, &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, admin_doc());
    }
    assert_eq!(
        call(&app, to("GET", "/students/edit", &token, &[])).await.0,
        StatusCode::OK
    );
    assert_eq!(iam.hits(), 1);
    assert_eq!(source.fetch_count(), 1);
    // One load per request, the first from the IAM and the rest from this
    // replica's cache.
    assert_eq!(
        counted.take_named("iam_guard_permission_loads_total"),
        [
            (
                "iam_guard_permission_loads_total{level=local,source=remote}".to_owned(),
                6
            ),
            (
                "iam_guard_permission_loads_total{level=source,source=remote}".to_owned(),
                1
            ),
        ]
        .into()
    );

    // The IAM was asked about this user in this tenant with the service's
    // own credential; the caller's token never leaves the service.
    let seen = iam.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "userId=admin-1&tenantId=school-1");
    assert_eq!(seen[0].1.as_deref(), Some("Bearer svc-credential"));
    assert!(!format!("{seen:?}").contains(&token));
}

#[tokio::test]
async fn the_cache_is_keyed_by_user_and_tenant() {
    let auth = TestIam::start().await;
    let iam = MockIam::start().await;
    iam.serve_doc("admin-1", admin_doc());
    iam.serve_doc("reader-1", reader_doc());
    let source = source(&iam);
    let app = app(&auth, &source);

    let admin = user_token(&auth, "admin-1", "school-1");
    let reader = user_token(&auth, "reader-1", "school-1");
    let admin_elsewhere = user_token(&auth, "admin-1", "school-2");
    let no_tenant = auth.mint(json!({"sub": "admin-1"}));

    assert_eq!(students(&app, &admin).await.2, admin_doc());
    let (status, _, body) = students(&app, &reader).await;
    assert_eq!(status, StatusCode::OK);
    // NONE and false are dropped on the way in.
    assert_eq!(
        body,
        json!({"students": {"scopes": {"anagraphic": "READ"}, "actions": {}}})
    );
    let res = call_json(&app, to("GET", "/students/edit", &reader, &[])).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "reader edit");
    assert_eq!(iam.hits(), 2);

    assert_eq!(students(&app, &admin_elsewhere).await.0, StatusCode::OK);
    assert_eq!(students(&app, &no_tenant).await.0, StatusCode::OK);
    assert_eq!(iam.hits(), 4);
    let queries: Vec<String> = iam.seen().into_iter().map(|(q, _)| q).collect();
    assert_eq!(
        queries,
        [
            "userId=admin-1&tenantId=school-1",
            "userId=reader-1&tenantId=school-1",
            "userId=admin-1&tenantId=school-2",
            "userId=admin-1",
        ]
    );

    // All four are cached now.
    for token in [&admin, &reader, &admin_elsewhere, &no_tenant] {
        students(&app, token).await;
    }
    assert_eq!(iam.hits(), 4);
}

#[tokio::test]
async fn invalidate_forces_one_call_for_that_user_only() {
    let auth = TestIam::start().await;
    let iam = MockIam::start().await;
    iam.serve_doc("u-1", reader_doc());
    iam.serve_doc("u-2", reader_doc());
    let source = source(&iam);
    let app = app(&auth, &source);
    let one = user_token(&auth, "u-1", "school-1");
    let two = user_token(&auth, "u-2", "school-1");

    students(&app, &one).await;
    students(&app, &two).await;
    assert_eq!(iam.hits(), 2);

    // An admin promotes u-1: the cache still answers the old permissions ...
    iam.serve_doc("u-1", admin_doc());
    let res = call_json(&app, to("GET", "/students/edit", &one, &[])).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "stale");
    assert_eq!(iam.hits(), 2);

    // ... until the service is told.
    source.invalidate("u-1", Some("school-1")).await;
    let (status, _, body) = call_json(&app, to("GET", "/students/edit", &one, &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, admin_doc());
    assert_eq!(iam.hits(), 3);
    students(&app, &one).await;
    students(&app, &two).await;
    assert_eq!(iam.hits(), 3);

    // Another tenant's entry, or another user, is a different key.
    source.invalidate("u-1", Some("school-2")).await;
    source.invalidate("u-1", None).await;
    source.invalidate("u-3", Some("school-1")).await;
    students(&app, &one).await;
    students(&app, &two).await;
    assert_eq!(iam.hits(), 3);
}

#[tokio::test]
async fn an_invalidation_during_a_fetch_is_not_lost() {
    let auth = TestIam::start().await;
    let iam = MockIam::start().await;
    iam.serve_doc("u-1", reader_doc());
    iam.set_mode(Mode::Gated);
    let source = source(&iam);
    let app = app(&auth, &source);
    let token = user_token(&auth, "u-1", "school-1");
    // Verify the token first, so only the permission fetch is held.
    let _ = call(&app, to("GET", "/nowhere", &token, &[])).await;

    // A request is fetching the old permissions ...
    let in_flight = tokio::spawn({
        let (app, token) = (app.clone(), token.clone());
        async move { call(&app, to("GET", "/students", &token, &[])).await }
    });
    iam.wait_for_hits(1).await;
    // ... when an admin promotes the user and tells the service.
    iam.serve_doc("u-1", admin_doc());
    source.invalidate("u-1", Some("school-1")).await;
    iam.set_mode(Mode::Healthy);
    iam.open_gate();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");

    // The answer fetched before the invalidation must not stay cached.
    let (status, _, body) = call_json(&app, to("GET", "/students/edit", &token, &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, admin_doc());
    // And the fresh answer is cached as usual.
    let hits = iam.hits();
    students(&app, &token).await;
    assert_eq!(iam.hits(), hits);
}

#[tokio::test]
async fn invalidate_all_during_a_fetch_is_not_lost() {
    let auth = TestIam::start().await;
    let iam = MockIam::start().await;
    iam.serve_doc("u-1", admin_doc());
    iam.set_mode(Mode::Gated);
    let source = source(&iam);
    let app = app(&auth, &source);
    let token = user_token(&auth, "u-1", "school-1");
    let _ = call(&app, to("GET", "/nowhere", &token, &[])).await;

    let in_flight = tokio::spawn({
        let (app, token) = (app.clone(), token.clone());
        async move { call(&app, to("GET", "/students", &token, &[])).await }
    });
    iam.wait_for_hits(1).await;
    // The user is demoted: a revocation must take effect.
    iam.serve_doc("u-1", reader_doc());
    source.invalidate_all();
    iam.set_mode(Mode::Healthy);
    iam.open_gate();
    assert_eq!(in_flight.await.unwrap().0, StatusCode::OK);

    let res = call_json(&app, to("GET", "/students/edit", &token, &[])).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "demoted");
}

#[tokio::test]
async fn ttl_expiry_forces_one_call() {
    let auth = TestIam::start().await;
    let iam = MockIam::start().await;
    iam.serve_doc("u-1", reader_doc());
    let source = RemoteSource::builder(iam.url())
        .ttl(Duration::from_secs(1))
        .build()
        .unwrap();
    let app = app(&auth, &source);
    let token = user_token(&auth, "u-1", "school-1");

    assert_eq!(students(&app, &token).await.0, StatusCode::OK);
    assert_eq!(iam.hits(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(students(&app, &token).await.0, StatusCode::OK);
    assert_eq!(iam.hits(), 2);
    // Without a service token no Authorization header is sent at all.
    assert!(iam.seen().iter().all(|(_, auth)| auth.is_none()));
}

#[tokio::test]
async fn invalidate_all_forces_a_call_per_caller() {
    let auth = TestIam::start().await;
    let iam = MockIam::start().await;
    let source = source(&iam);
    let app = app(&auth, &source);
    let tokens: Vec<String> = (0..3)
        .map(|i| {
            iam.serve_doc(&format!("u-{i}"), reader_doc());
            user_token(&auth, &format!("u-{i}"), "school-1")
        })
        .collect();
    for token in &tokens {
        students(&app, token).await;
    }
    assert_eq!(iam.hits(), 3);
    source.invalidate_all();
    for token in &tokens {
        assert_eq!(students(&app, token).await.0, StatusCode::OK);
    }
    assert_eq!(iam.hits(), 6);
    for token in &tokens {
        students(&app, token).await;
    }
    assert_eq!(iam.hits(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_of_one_caller_make_one_call() {
    let auth = TestIam::start().await;
    let iam = MockIam::start().await;
    iam.serve_doc("u-1", reader_doc());
    // The answer takes a while, so the misses pile up behind the first.
    iam.set_mode(Mode::Slow(Duration::from_millis(200)));
    let source = source(&iam);
    let app = app(&auth, &source);
    let token = user_token(&auth, "u-1", "school-1");
    // Verify the token once first, so the JWKS fetch is not part of the race.
    let _ = call(&app, to("GET", "/nowhere", &token, &[])).await;

    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            let token = token.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                call(&app, to("GET", "/students", &token, &[])).await
            })
        })
        .collect();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(iam.hits(), 1);
    assert_eq!(source.fetch_count(), 1);
}

#[tokio::test]
async fn an_outage_with_nothing_cached_is_503_and_is_not_cached() {
    let auth = TestIam::start().await;
    let mut iam = MockIam::start().await;
    iam.serve_doc("u-1", reader_doc());
    let source = source(&iam);
    let app = app(&auth, &source);
    let token = user_token(&auth, "u-1", "school-1");

    for mode in [Mode::Status(500), Mode::Status(404), Mode::Garbage] {
        iam.set_mode(mode.clone());
        let res = send(&app, to("GET", "/students", &token, &[])).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{mode:?}");
        assert_eq!(res.headers()["retry-after"], "5");
        assert!(res.headers().get("www-authenticate").is_none());
        let (status, _, body) = call_json(&app, to("GET", "/students", &token, &[])).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "IAM_UNAVAILABLE");
    }
    // Failures are not cached: every request asked again.
    assert_eq!(iam.hits(), 6);

    iam.down().await;
    let (status, _, body) = call_json(&app, to("GET", "/students", &token, &[])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "IAM_UNAVAILABLE");
    assert_eq!(iam.hits(), 6);

    iam.up().await;
    iam.set_mode(Mode::Healthy);
    let (status, _, body) = call_json(&app, to("GET", "/students", &token, &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(iam.hits(), 7);
}

#[tokio::test]
async fn an_outage_with_a_cached_answer_still_serves_it() {
    let auth = TestIam::start().await;
    let mut iam = MockIam::start().await;
    iam.serve_doc("u-1", admin_doc());
    let source = source(&iam);
    let app = app(&auth, &source);
    let token = user_token(&auth, "u-1", "school-1");

    assert_eq!(students(&app, &token).await.0, StatusCode::OK);
    assert_eq!(iam.hits(), 1);

    iam.set_mode(Mode::Status(500));
    let (status, _, body) = students(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, admin_doc());

    iam.down().await;
    let (status, _, body) = call_json(&app, to("GET", "/students/edit", &token, &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(iam.hits(), 1);

    // A caller with nothing cached is still refused while the IAM is down.
    let other = user_token(&auth, "u-2", "school-1");
    let (status, _, body) = students(&app, &other).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "IAM_UNAVAILABLE");
}

#[tokio::test]
async fn the_builder_refuses_what_is_not_an_http_url() {
    for url in [
        "ftp://iam.example.com/permissions",
        "not a url",
        "/api/v1/permissions",
        "",
    ] {
        assert!(RemoteSource::builder(url).build().is_err(), "{url}");
    }
    assert!(
        RemoteSource::builder("https://iam.example.com/api/v1/permissions")
            .build()
            .is_ok()
    );
}
