//! Request-scoped memoization (seed 002 §8 Phase 1): the permission source
//! is called at most once per request however many guards and extractors
//! read permissions, not at all when nothing does, and again for the next
//! request.
#![cfg(feature = "test-util")]

mod common;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{routing::get, Router};
use common::*;
use http::StatusCode;
use iam_guard::{
    extract::{permissions_endpoint, Permissions},
    model::{Catalogue, CompiledPermissions},
    permissions::source::{CatalogueSource, PermissionError, PermissionFuture, PermissionSource},
    test_util::TestIam,
    ActionGuard, JwtAuthGuardLayer, PermissionGuard, Principal, ScopeGuard,
};
use serde_json::json;

const CATALOGUE: &str = r#"{
  "entities": [{
    "key": "students",
    "scopes": [{ "key": "anagraphic" }, { "key": "sensitive" }],
    "actions": [{ "key": "create", "requires": { "anagraphic": "WRITE", "sensitive": "WRITE" } }]
  }],
  "roles": [
    { "id": "registrar", "name": "Registrar",
      "scopes": { "students": { "anagraphic": "WRITE", "sensitive": "WRITE" } },
      "actions": ["students.create"],
      "permissions": ["students.import"] },
    { "id": "reader", "name": "Reader",
      "scopes": { "students": { "anagraphic": "READ" } } }
  ]
}"#;

/// A CatalogueSource that counts its loads, or fails every one; with
/// `sync`, it also answers `load_now` (and counts those separately).
#[derive(Clone)]
struct Counting {
    inner: CatalogueSource,
    loads: Arc<AtomicUsize>,
    now_loads: Arc<AtomicUsize>,
    fail: bool,
    sync: bool,
}

impl Counting {
    fn new(fail: bool) -> Self {
        Self {
            inner: CatalogueSource::new(
                Catalogue::from_json(CATALOGUE).expect("a valid catalogue"),
            ),
            loads: Arc::new(AtomicUsize::new(0)),
            now_loads: Arc::new(AtomicUsize::new(0)),
            fail,
            sync: false,
        }
    }

    fn sync() -> Self {
        Self {
            sync: true,
            ..Self::new(false)
        }
    }

    fn now_loads(&self) -> usize {
        self.now_loads.load(Ordering::SeqCst)
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

impl PermissionSource for Counting {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Box::pin(async { Err(PermissionError::Unavailable("test outage".into())) });
        }
        self.inner.load(principal)
    }

    fn load_now(
        &self,
        principal: &Principal,
    ) -> Option<Result<Arc<CompiledPermissions>, PermissionError>> {
        if !self.sync {
            return None;
        }
        self.now_loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load_now(principal)
    }
}

/// What the handler read through the extractor, after every guard read it.
async fn stacked_handler(perms: Permissions, again: Permissions) -> String {
    // Two extractors in one handler share the request's single load.
    assert!(Arc::ptr_eq(&perms.0, &again.0));
    format!("{}", perms.can_write("students", "sensitive"))
}

async fn plain() -> &'static str {
    "plain"
}

async fn extractor_only(perms: Permissions) -> String {
    format!("{}", perms.can_read("students", "anagraphic"))
}

fn app(iam: &TestIam, source: Counting) -> Router {
    Router::new()
        .route(
            "/stacked",
            get(stacked_handler)
                .route_layer(PermissionGuard::all_of(["students.import"]))
                .route_layer(ActionGuard::new("students", "create"))
                .route_layer(ScopeGuard::write("students")),
        )
        .route("/plain", get(plain))
        .route("/extractor", get(extractor_only))
        .route("/permissions", get(permissions_endpoint))
        .layer(JwtAuthGuardLayer::new(iam.verifier()).permissions(source))
}

#[tokio::test]
async fn three_guards_and_two_extractors_load_once_per_request() {
    let iam = TestIam::start().await;
    let source = Counting::new(false);
    let app = app(&iam, source.clone());
    let token = iam.mint(json!({"sub": "r-1", "roles": ["registrar"]}));

    let (status, body) = call(&app, to("GET", "/stacked", &token, &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "true");
    assert_eq!(source.loads(), 1);

    // Memoized per request, not globally: the next request loads again.
    let (status, _) = call(&app, to("GET", "/stacked", &token, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(source.loads(), 2);
}

/// A source that can answer without waiting is asked once, synchronously,
/// by the first guard: no future is built, and the other guards and the
/// extractors share that answer.
#[tokio::test]
async fn a_synchronous_source_is_asked_once_without_a_future() {
    let iam = TestIam::start().await;
    let source = Counting::sync();
    let app = app(&iam, source.clone());
    let registrar = iam.mint(json!({"sub": "r-1", "roles": ["registrar"]}));
    let reader = iam.mint(json!({"sub": "r-2", "roles": ["reader"]}));

    let (status, body) = call(&app, to("GET", "/stacked", &registrar, &[])).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "true"));
    assert_eq!((source.now_loads(), source.loads()), (1, 0));

    // Denied on the spot, from the same single answer.
    let (status, _) = call(&app, to("GET", "/stacked", &reader, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!((source.now_loads(), source.loads()), (2, 0));

    // Nothing reads permissions: nothing is asked.
    call(&app, to("GET", "/plain", &registrar, &[])).await;
    assert_eq!((source.now_loads(), source.loads()), (2, 0));
}

#[tokio::test]
async fn routes_that_read_no_permissions_never_load() {
    let iam = TestIam::start().await;
    let source = Counting::new(false);
    let app = app(&iam, source.clone());
    let token = iam.mint(json!({"sub": "r-1", "roles": ["registrar"]}));
    for _ in 0..3 {
        let (status, body) = call(&app, to("GET", "/plain", &token, &[])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "plain");
    }
    assert_eq!(source.loads(), 0);
    // Unknown paths and rejected tokens load nothing either.
    assert_eq!(
        call(&app, to("GET", "/nope", &token, &[])).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, to("GET", "/stacked", "", &[])).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(source.loads(), 0);
}

#[tokio::test]
async fn an_extractor_alone_loads_once() {
    let iam = TestIam::start().await;
    let source = Counting::new(false);
    let app = app(&iam, source.clone());
    let token = iam.mint(json!({"sub": "d-1", "roles": ["reader"]}));
    for (n, uri) in ["/extractor", "/permissions"].iter().enumerate() {
        let (status, _) = call(&app, to("GET", uri, &token, &[])).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(source.loads(), n + 1, "{uri}");
    }
}

#[tokio::test]
async fn a_denial_stops_at_the_first_guard_after_one_load() {
    let iam = TestIam::start().await;
    let source = Counting::new(false);
    let app = app(&iam, source.clone());
    // READ only: the outer WRITE gate denies, so nothing inside runs.
    let token = iam.mint(json!({"sub": "d-1", "roles": ["reader"]}));
    let res = call_json(&app, to("GET", "/stacked", &token, &[])).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "reader");
    assert_eq!(source.loads(), 1);
}

#[tokio::test]
async fn a_failing_source_is_asked_once_per_request_too() {
    let iam = TestIam::start().await;
    let source = Counting::new(true);
    let app = app(&iam, source.clone());
    let token = iam.mint(json!({"sub": "r-1", "roles": ["registrar"]}));
    for (n, uri) in ["/stacked", "/extractor"].iter().enumerate() {
        let (status, challenge, body) = call_json(&app, to("GET", uri, &token, &[])).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(body["code"], "IAM_UNAVAILABLE", "{uri}");
        assert_eq!(challenge, None, "{uri}");
        assert_eq!(source.loads(), n + 1, "{uri}");
    }
}

#[tokio::test]
async fn concurrent_requests_each_load_their_own() {
    let iam = TestIam::start().await;
    let source = Counting::new(false);
    let app = app(&iam, source.clone());
    let alice = iam.mint(json!({"sub": "alice", "roles": ["registrar"]}));
    let bob = iam.mint(json!({"sub": "bob", "roles": ["reader"]}));
    let (a, b) = tokio::join!(
        call(&app, to("GET", "/stacked", &alice, &[])),
        call(&app, to("GET", "/stacked", &bob, &[])),
    );
    // Neither request sees the other's permissions.
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    assert_eq!(b.0, StatusCode::FORBIDDEN, "{}", b.1);
    assert_eq!(source.loads(), 2);
}

#[tokio::test]
async fn a_bypassing_super_user_loads_nothing_at_the_guards() {
    let iam = TestIam::start().await;
    let source = Counting::new(false);
    let app = Router::new()
        .route(
            "/guarded",
            get(plain)
                .route_layer(ActionGuard::new("students", "create"))
                .route_layer(ScopeGuard::write("students")),
        )
        .layer(
            JwtAuthGuardLayer::new(iam.verifier())
                .permissions(source.clone())
                .super_user_bypass(true),
        );
    let root = iam.mint(json!({"sub": "root", "is_super_user": true}));
    let (status, body) = call(&app, to("GET", "/guarded", &root, &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(source.loads(), 0);
}
