//! ProtectedResource: requirements by method convention, explicit
//! overrides, routes without a requirement denied (fail closed), the
//! startup report, and 404/405/401 answers with authentication as a route
//! layer.
#![cfg(feature = "test-util")]

mod common;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{http::Method, Router};
use common::*;
use http::StatusCode;
use iam_guard::{
    guard::protected::{ProtectedResource, RouteReport},
    model::{Catalogue, Requirement, ScopeAccess},
    permissions::source::CatalogueSource,
    test_util::TestIam,
    JwtAuthGuardLayer,
};
use serde_json::json;

/// Counts the requests that reach a handler.
#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

impl Hits {
    /// A handler answering `name` and counting its calls.
    fn handler(
        &self,
        name: &'static str,
    ) -> impl Fn() -> std::future::Ready<&'static str> + Clone + Send + Sync + 'static {
        let hits = self.0.clone();
        move || {
            hits.fetch_add(1, Ordering::SeqCst);
            std::future::ready(name)
        }
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn auth(iam: &TestIam) -> JwtAuthGuardLayer {
    JwtAuthGuardLayer::new(iam.verifier())
        .permissions(CatalogueSource::new(Catalogue::students_fixture()))
}

/// The students bundle: convention routes, two overrides, and an OPTIONS
/// route the convention has no requirement for. `denied` counts the calls
/// of the OPTIONS handler, `hits` all others.
fn students(hits: &Hits, denied: &Hits) -> ProtectedResource {
    ProtectedResource::new("students")
        .get("/students", hits.handler("list"))
        .post("/students", hits.handler("create"))
        .get("/students/{id}", hits.handler("one"))
        .patch("/students/{id}", hits.handler("update"))
        .put("/students/{id}", hits.handler("replace"))
        .delete("/students/{id}", hits.handler("remove"))
        // A GET that must not be a mere READ gate.
        .route_with(
            Method::GET,
            "/students/export",
            Requirement::action("students", "delete"),
            hits.handler("export"),
        )
        // A POST that is not a create.
        .route_with(
            Method::POST,
            "/students/{id}/notes",
            Requirement::scopes("students", ScopeAccess::Read),
            hits.handler("note"),
        )
        .route(Method::OPTIONS, "/students", denied.handler("options"))
}

fn app(iam: &TestIam, hits: &Hits, denied: &Hits) -> Router {
    students(hits, denied).authenticate(auth(iam)).into_router()
}

fn token(iam: &TestIam, role: &str) -> String {
    iam.mint(json!({"sub": format!("{role}-1"), "roles": [role]}))
}

#[tokio::test]
async fn read_only_role_reads_and_is_refused_every_write() {
    let iam = TestIam::start().await;
    let (hits, denied) = (Hits::default(), Hits::default());
    let app = app(&iam, &hits, &denied);
    let principal = token(&iam, "principal");

    for (method, uri, body) in [
        ("GET", "/students", "list"),
        ("GET", "/students/7", "one"),
        ("POST", "/students/7/notes", "note"),
    ] {
        let (status, text) = call(&app, to(method, uri, &principal, &[])).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}: {text}");
        assert_eq!(text, body);
    }
    let res = send(&app, to("HEAD", "/students", &principal, &[])).await;
    assert_eq!(res.status(), StatusCode::OK);
    let before = hits.count();

    for (method, uri, code) in [
        ("PATCH", "/students/7", "INSUFFICIENT_SCOPE"),
        ("PUT", "/students/7", "INSUFFICIENT_SCOPE"),
        ("POST", "/students", "ACTION_NOT_PERMITTED"),
        ("DELETE", "/students/7", "ACTION_NOT_PERMITTED"),
        // The override, not the GET convention, decides.
        ("GET", "/students/export", "ACTION_NOT_PERMITTED"),
    ] {
        let res = call_json(&app, to(method, uri, &principal, &[])).await;
        assert_forbidden(&res, code, &format!("principal {method} {uri}"));
    }
    assert_eq!(hits.count(), before, "a refused request reached a handler");
}

#[tokio::test]
async fn convention_follows_the_role_matrix() {
    let iam = TestIam::start().await;
    let (hits, denied) = (Hits::default(), Hits::default());
    let app = app(&iam, &hits, &denied);

    // Admin: every route of the convention and both overrides.
    let admin = token(&iam, "admin");
    for (method, uri) in [
        ("GET", "/students"),
        ("POST", "/students"),
        ("GET", "/students/7"),
        ("PATCH", "/students/7"),
        ("PUT", "/students/7"),
        ("DELETE", "/students/7"),
        ("GET", "/students/export"),
        ("POST", "/students/7/notes"),
    ] {
        let (status, text) = call(&app, to(method, uri, &admin, &[])).await;
        assert_eq!(status, StatusCode::OK, "admin {method} {uri}: {text}");
    }

    // Internal teacher: writes attendance and scoring, so PATCH passes the
    // entity gate; create needs WRITE on anagraphic and sensitive.
    let teacher = token(&iam, "internal_teacher");
    let (status, text) = call(&app, to("PATCH", "/students/7", &teacher, &[])).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let res = call_json(&app, to("POST", "/students", &teacher, &[])).await;
    assert_forbidden(&res, "ACTION_NOT_PERMITTED", "teacher POST");

    // HR is granted create but lacks WRITE on sensitive.
    let hr = token(&iam, "hr_secretary");
    assert_eq!(
        call(&app, to("PUT", "/students/7", &hr, &[])).await.0,
        StatusCode::OK
    );
    let res = call_json(&app, to("DELETE", "/students/7", &hr, &[])).await;
    assert_forbidden(&res, "ACTION_NOT_PERMITTED", "hr DELETE");

    // No role at all: even the READ gate is shut.
    let nobody = iam.mint(json!({"sub": "n-1"}));
    let res = call_json(&app, to("GET", "/students", &nobody, &[])).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "no role GET");
}

#[tokio::test]
async fn a_route_without_a_requirement_is_denied_even_to_an_admin() {
    let iam = TestIam::start().await;
    let (hits, denied) = (Hits::default(), Hits::default());
    let app = app(&iam, &hits, &denied);
    let admin = token(&iam, "admin");
    let root = iam.mint(json!({"sub": "root", "roles": ["admin"], "is_super_user": true}));
    for token in [&admin, &root] {
        let (status, challenge, body) =
            call_json(&app, to("OPTIONS", "/students", token, &[])).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer error=\"insufficient_scope\"")
        );
        assert_eq!(body["code"], "PERMISSION_DENIED");
    }
    assert_eq!(denied.count(), 0, "the undeclared route's handler ran");
    // The other methods of that path are unaffected.
    assert_eq!(
        call(&app, to("GET", "/students", &admin, &[])).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_route_without_a_requirement_stays_denied_with_the_super_user_bypass() {
    let iam = TestIam::start().await;
    let (hits, denied) = (Hits::default(), Hits::default());
    let app = students(&hits, &denied)
        .authenticate(auth(&iam).super_user_bypass(true))
        .into_router();
    let root = iam.mint(json!({"sub": "root", "is_super_user": true}));
    // The bypass opens declared requirements ...
    assert_eq!(
        call(&app, to("DELETE", "/students/7", &root, &[])).await.0,
        StatusCode::OK
    );
    // ... but there is nothing to bypass on a route that declares none.
    let (status, _, _) = call_json(&app, to("OPTIONS", "/students", &root, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(denied.count(), 0);
}

#[tokio::test]
async fn explicit_mode_denies_every_route_without_its_own_requirement() {
    let iam = TestIam::start().await;
    let (hits, denied) = (Hits::default(), Hits::default());
    let bundle = ProtectedResource::explicit("students")
        .get("/students", denied.handler("list"))
        .delete("/students/{id}", denied.handler("remove"))
        .route_with(
            Method::GET,
            "/students/{id}",
            Requirement::scopes("students", ScopeAccess::Read),
            hits.handler("one"),
        )
        .route_with(
            Method::OPTIONS,
            "/students/{id}",
            Requirement::scopes("students", ScopeAccess::Read),
            hits.handler("options"),
        );
    assert!(
        bundle
            .report()
            .iter()
            .filter(|r| r.requirement.is_none())
            .count()
            == 2
    );
    let app = bundle.authenticate(auth(&iam)).into_router();
    let admin = token(&iam, "admin");

    for (method, uri) in [("GET", "/students"), ("DELETE", "/students/7")] {
        let res = call_json(&app, to(method, uri, &admin, &[])).await;
        assert_forbidden(&res, "PERMISSION_DENIED", &format!("{method} {uri}"));
    }
    assert_eq!(denied.count(), 0);
    // A declared requirement makes any method reachable, OPTIONS included.
    for method in ["GET", "OPTIONS"] {
        let (status, text) = call(&app, to(method, "/students/7", &admin, &[])).await;
        assert_eq!(status, StatusCode::OK, "{method}: {text}");
    }
    assert_eq!(hits.count(), 2);
}

#[tokio::test]
async fn report_lists_every_route_with_its_requirement() {
    let (hits, denied) = (Hits::default(), Hits::default());
    let bundle = students(&hits, &denied);
    let line =
        |method: Method, path: &str, requirement: Option<Requirement>, by_convention| RouteReport {
            method,
            path: path.to_owned(),
            requirement,
            by_convention,
        };
    let read = Requirement::scopes("students", ScopeAccess::Read);
    let write = Requirement::scopes("students", ScopeAccess::Write);
    let expected = [
        line(Method::GET, "/students", Some(read.clone()), true),
        line(
            Method::POST,
            "/students",
            Some(Requirement::action("students", "create")),
            true,
        ),
        line(Method::GET, "/students/{id}", Some(read.clone()), true),
        line(Method::PATCH, "/students/{id}", Some(write.clone()), true),
        line(Method::PUT, "/students/{id}", Some(write), true),
        line(
            Method::DELETE,
            "/students/{id}",
            Some(Requirement::action("students", "delete")),
            true,
        ),
        line(
            Method::GET,
            "/students/export",
            Some(Requirement::action("students", "delete")),
            false,
        ),
        line(Method::POST, "/students/{id}/notes", Some(read), false),
    ];
    let report = bundle.report();
    assert_eq!(report.len(), expected.len() + 1);
    assert_eq!(&report[..expected.len()], &expected);
    let options = &report[expected.len()];
    assert_eq!(
        (options.method.clone(), options.path.as_str()),
        (Method::OPTIONS, "/students")
    );
    assert_eq!(options.requirement, None);

    let lines: Vec<String> = report.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines[0],
        "GET     /students -> scopes students >= READ (convention)"
    );
    assert_eq!(
        lines[1],
        "POST    /students -> action students.create (convention)"
    );
    assert_eq!(
        lines[6],
        "GET     /students/export -> action students.delete"
    );
    assert_eq!(
        lines[8],
        "OPTIONS /students -> DENIED (no requirement declared)"
    );
    // Every line names its route, and only the undeclared one is DENIED.
    for (line, route) in lines.iter().zip(report) {
        assert!(line.contains(&route.path), "{line}");
        assert_eq!(
            line.contains("DENIED"),
            route.requirement.is_none(),
            "{line}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_stay_404_and_405_without_a_token() {
    let iam = TestIam::start().await;
    let (hits, denied) = (Hits::default(), Hits::default());
    let app = app(&iam, &hits, &denied);
    let admin = token(&iam, "admin");

    for token in ["", "not-a-jwt", admin.as_str()] {
        let (status, _) = call(&app, to("GET", "/teachers", token, &[])).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "token {token:?}");
        let (status, _) = call(&app, to("PATCH", "/students", token, &[])).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "token {token:?}");
        let (status, _) = call(&app, to("POST", "/students/export", token, &[])).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "token {token:?}");
    }
    assert_eq!(iam.jwks_fetches(), 0, "a 404/405 asked the IAM for keys");
    assert_eq!(hits.count() + denied.count(), 0);
}

#[tokio::test]
async fn a_real_route_without_a_token_is_401() {
    let iam = TestIam::start().await;
    let (hits, denied) = (Hits::default(), Hits::default());
    let app = app(&iam, &hits, &denied);
    for (method, uri) in [
        ("GET", "/students"),
        ("POST", "/students"),
        ("DELETE", "/students/7"),
        ("GET", "/students/export"),
        ("OPTIONS", "/students"),
    ] {
        let (status, challenge, body) = call_json(&app, to(method, uri, "", &[])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{method} {uri}");
        assert_eq!(body["code"], "invalid_token");
    }
    let (status, challenge, _) = call_json(&app, to("GET", "/students", "not-a-jwt", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
    assert_eq!(hits.count() + denied.count(), 0);
}

#[tokio::test]
async fn an_application_wide_auth_layer_works_too() {
    let iam = TestIam::start().await;
    let (hits, denied) = (Hits::default(), Hits::default());
    // No `.authenticate(..)`: the service authenticates everything itself.
    let app = students(&hits, &denied).into_router().layer(auth(&iam));
    let principal = token(&iam, "principal");
    assert_eq!(
        call(&app, to("GET", "/students", &principal, &[])).await.0,
        StatusCode::OK
    );
    let res = call_json(&app, to("PATCH", "/students/7", &principal, &[])).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "principal PATCH");
    // Here the auth layer runs before routing: an unknown path is a 401.
    assert_eq!(
        call(&app, to("GET", "/nope", "", &[])).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn guarded_routes_without_any_auth_layer_fail_closed() {
    let (hits, denied) = (Hits::default(), Hits::default());
    let app = students(&hits, &denied).into_router();
    let (status, _, body) = call_json(&app, to("GET", "/students", "", &[])).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], "INTERNAL");
    let (status, _, _) = call_json(&app, to("OPTIONS", "/students", "", &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(hits.count() + denied.count(), 0);
}

#[test]
#[should_panic(expected = "registered twice")]
fn registering_a_route_twice_panics() {
    let hits = Hits::default();
    let _ = ProtectedResource::<()>::new("students")
        .get("/students", hits.handler("a"))
        .route_with(
            Method::GET,
            "/students",
            Requirement::scopes("students", ScopeAccess::Write),
            hits.handler("b"),
        );
}

#[tokio::test]
async fn settings_may_come_before_or_after_the_routes() {
    async fn show() -> axum::Json<serde_json::Value> {
        axum::Json(json!({
            "id": "s-1", "createdAt": "2026-01-01", "anagraphic": {}, "sensitive": {},
        }))
    }
    async fn update() -> &'static str {
        "updated"
    }
    let iam = TestIam::start().await;
    let settings_first = ProtectedResource::new("students")
        .body_limit(32)
        .always_allowed(["id"])
        .get("/students/{id}", show)
        .patch("/students/{id}", update);
    let settings_last = ProtectedResource::new("students")
        .get("/students/{id}", show)
        .patch("/students/{id}", update)
        .always_allowed(["id"])
        .body_limit(32);
    let admin = token(&iam, "admin");
    for bundle in [settings_first, settings_last] {
        let app = bundle.authenticate(auth(&iam)).into_router();
        let (status, body) = call(&app, to("GET", "/students/s-1", &admin, &[])).await;
        assert_eq!(status, StatusCode::OK);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"id": "s-1", "anagraphic": {}, "sensitive": {}}),
            "createdAt is no longer always allowed"
        );
        let big = format!(r#"{{"anagraphic":{{"n":"{}"}}}}"#, "x".repeat(64));
        let req = http::Request::patch("/students/s-1")
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(big))
            .unwrap();
        let (status, _, body) = call_json(&app, req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    }
}
