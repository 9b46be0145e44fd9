//! One deny path: every refusal anywhere in the crate is rendered with the
//! renderer configured on the auth layer, emits exactly one audit event
//! with one field set (carrying the matched route template, never the raw
//! path), and is counted once in `iam_guard_decisions_total`.
//!
//! The sweep configures `application/problem+json` and walks every deny
//! site: each token failure class, the 400s, each 403 code (OAuth scope and
//! role guards included), 413, 415, the
//! FieldFilter 500, both 503s, the undeclared route, and the extractors.

mod common;

use axum::{
    body::Body,
    extract::Query,
    http::{header, HeaderName, Method, Request, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, patch, post},
    Json, Router,
};
use common::{assert_audit_schema, capture, counters, decision, Down};
use http_body_util::BodyExt;
use iam_guard::{
    guard::protected::ProtectedResource,
    permissions_endpoint,
    test_util::{sign_hs256, TestIam},
    ActionGuard, ClaimsSource, ErrorRenderer, FieldFilterLayer, FieldWriteGuardLayer,
    JwtAuthGuardLayer, OAuthScopeGuard, PermissionGuard, Principal, RoleGuard, ScopeGuard,
};
use serde_json::{json, Value};
use tower::ServiceExt;

#[derive(serde::Deserialize)]
struct Shape {
    broken: Option<u8>,
}

async fn student(Query(shape): Query<Shape>) -> Response {
    if shape.broken.is_some() {
        // Claims to be JSON and is not: the filter cannot filter it.
        return ([(header::CONTENT_TYPE, "application/json")], "{\"id\": ").into_response();
    }
    Json(json!({"id": "s-1", "anagraphic": {"firstName": "Ada"}, "sensitive": {}})).into_response()
}

async fn ok() -> &'static str {
    "ok"
}

fn students(auth: JwtAuthGuardLayer) -> Router {
    let courses = ProtectedResource::explicit("courses")
        .get("/courses/{id}", ok)
        .into_router();
    Router::new()
        .route(
            "/students/{id}",
            get(student)
                .route_layer(FieldFilterLayer::new())
                .route_layer(ScopeGuard::read("students"))
                .merge(
                    patch(ok)
                        .route_layer(FieldWriteGuardLayer::new().limit(64))
                        .route_layer(ScopeGuard::write("students")),
                ),
        )
        .route(
            "/students",
            post(ok).route_layer(ActionGuard::new("students", "create")),
        )
        .route(
            "/finance/{year}",
            get(ok).route_layer(PermissionGuard::module("finance")),
        )
        .route(
            "/grades/{year}",
            get(ok).route_layer(OAuthScopeGuard::all_of(["grades:read"])),
        )
        .route(
            "/admin/{year}",
            get(ok).route_layer(RoleGuard::any_of(["admin"])),
        )
        .route("/permissions", get(permissions_endpoint))
        .merge(courses)
        .layer(auth)
}

fn auth(verifier: iam_guard::Verifier) -> JwtAuthGuardLayer {
    JwtAuthGuardLayer::new(verifier)
        .cookie("session")
        .tenant_header(HeaderName::from_static("x-org"))
        .error_renderer(ErrorRenderer::problem_json())
}

/// A deny site: the request, and what it must answer.
struct Site {
    what: &'static str,
    req: Request<Body>,
    status: StatusCode,
    code: &'static str,
    guard: &'static str,
    route: &'static str,
}

struct Req {
    method: Method,
    uri: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, String)>,
}

impl Req {
    fn new(method: Method, uri: &'static str) -> Self {
        Self {
            method,
            uri,
            headers: vec![("x-org", "school-1".into())],
            body: None,
        }
    }

    fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self
    }

    fn json(mut self, body: impl Into<String>) -> Self {
        self.body = Some(("application/json", body.into()));
        self
    }

    fn typed(mut self, content_type: &'static str, body: impl Into<String>) -> Self {
        self.body = Some((content_type, body.into()));
        self
    }

    fn build(self) -> Request<Body> {
        let mut req = Request::builder().method(self.method).uri(self.uri);
        for (k, v) in self.headers {
            req = req.header(k, v);
        }
        let body = match self.body {
            Some((content_type, body)) => {
                req = req.header(header::CONTENT_TYPE, content_type);
                Body::from(body)
            }
            None => Body::empty(),
        };
        req.body(body).unwrap()
    }
}

fn sites(iam: &TestIam) -> Vec<Site> {
    let reader = iam.mint(json!({
        "tenantId": "school-1",
        "entities": {"students": {"scopes": {"anagraphic": "WRITE"}, "actions": {}}},
        "xsrf_token": "x-1",
    }));
    let nobody = iam.mint(json!({"tenantId": "school-1"}));
    let key = iam.key();
    let claims = iam.default_claims();
    let with = |patch: Value| iam.mint(patch);
    let expired = with(json!({"tenantId": "school-1", "exp": 1_000_000_000}));
    let wrong_issuer = with(json!({"iss": "https://evil.example.com"}));
    let wrong_audience = with(json!({"aud": "another-api"}));
    let unknown_kid = key.sign_with_header(&json!({"alg": "RS256", "kid": "nope"}), &claims);
    let hmac = sign_hs256(b"secret", &json!({"alg": "HS256", "kid": "rsa-1"}), &claims);
    let mut bad_signature = reader.clone();
    let last = bad_signature.pop().unwrap();
    bad_signature.push(if last == 'A' { 'B' } else { 'A' });
    let huge = "a".repeat(9 * 1024);
    let get = |uri| Req::new(Method::GET, uri);
    let site = |what, req: Req, status, code, guard, route| Site {
        what,
        req: req.build(),
        status,
        code,
        guard,
        route,
    };
    use StatusCode as S;
    let student = "/students/{id}";
    vec![
        // Every class of token failure.
        site(
            "no token",
            get("/students/s-1"),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        site(
            "malformed",
            get("/students/s-1").bearer("abc"),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        site(
            "expired",
            get("/students/s-1").bearer(&expired),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        site(
            "bad signature",
            get("/students/s-1").bearer(&bad_signature),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        site(
            "unknown kid",
            get("/students/s-1").bearer(&unknown_kid),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        site(
            "wrong issuer",
            get("/students/s-1").bearer(&wrong_issuer),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        site(
            "wrong audience",
            get("/students/s-1").bearer(&wrong_audience),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        site(
            "hmac",
            get("/students/s-1").bearer(&hmac),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        site(
            "too large",
            get("/students/s-1").bearer(&huge),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        site(
            "empty bearer",
            get("/students/s-1").header("authorization", "Bearer "),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        site(
            "basic scheme",
            get("/students/s-1").header("authorization", "Basic dTpw"),
            S::UNAUTHORIZED,
            "invalid_token",
            "auth",
            student,
        ),
        // The 400s.
        site(
            "two tokens",
            get("/students/s-1")
                .bearer(&reader)
                .header("cookie", format!("session={reader}")),
            S::BAD_REQUEST,
            "invalid_request",
            "auth",
            student,
        ),
        site(
            "no tenant",
            get("/students/s-1").bearer(&reader).without("x-org"),
            S::BAD_REQUEST,
            "TENANT_REQUIRED",
            "auth",
            student,
        ),
        site(
            "empty tenant",
            get("/students/s-1")
                .bearer(&reader)
                .without("x-org")
                .header("x-org", ""),
            S::BAD_REQUEST,
            "TENANT_REQUIRED",
            "auth",
            student,
        ),
        site(
            "two tenants",
            get("/students/s-1")
                .bearer(&reader)
                .header("x-org", "school-1"),
            S::BAD_REQUEST,
            "invalid_request",
            "auth",
            student,
        ),
        site(
            "not an object",
            Req::new(Method::PATCH, "/students/s-1")
                .bearer(&reader)
                .json("[]"),
            S::BAD_REQUEST,
            "INVALID_BODY",
            "field_write",
            student,
        ),
        // Each 403 code.
        site(
            "other tenant",
            get("/students/s-1")
                .bearer(&reader)
                .without("x-org")
                .header("x-org", "school-2"),
            S::FORBIDDEN,
            "TENANT_NOT_PERMITTED",
            "auth",
            student,
        ),
        site(
            "xsrf",
            Req::new(Method::PATCH, "/students/s-1")
                .header("cookie", format!("session={reader}"))
                .json("{}"),
            S::FORBIDDEN,
            "XSRF_MISMATCH",
            "auth",
            student,
        ),
        site(
            "scope",
            get("/students/s-1").bearer(&nobody),
            S::FORBIDDEN,
            "INSUFFICIENT_SCOPE",
            "requirement",
            student,
        ),
        site(
            "action",
            Req::new(Method::POST, "/students")
                .bearer(&reader)
                .json("{}"),
            S::FORBIDDEN,
            "ACTION_NOT_PERMITTED",
            "requirement",
            "/students",
        ),
        site(
            "module",
            get("/finance/2026").bearer(&reader),
            S::FORBIDDEN,
            "PERMISSION_DENIED",
            "requirement",
            "/finance/{year}",
        ),
        site(
            "oauth scope",
            get("/grades/2026").bearer(&reader),
            S::FORBIDDEN,
            "INSUFFICIENT_OAUTH_SCOPE",
            "requirement",
            "/grades/{year}",
        ),
        site(
            "role",
            get("/admin/2026").bearer(&reader),
            S::FORBIDDEN,
            "ROLE_REQUIRED",
            "requirement",
            "/admin/{year}",
        ),
        site(
            "forbidden field",
            Req::new(Method::PATCH, "/students/s-1")
                .bearer(&reader)
                .json(r#"{"sensitive":{}}"#),
            S::FORBIDDEN,
            "FORBIDDEN_FIELDS",
            "field_write",
            student,
        ),
        site(
            "undeclared",
            get("/courses/c-1").bearer(&reader),
            S::FORBIDDEN,
            "PERMISSION_DENIED",
            "undeclared",
            "/courses/{id}",
        ),
        // 413, 415, and the filter's 500.
        site(
            "too large body",
            Req::new(Method::PATCH, "/students/s-1")
                .bearer(&reader)
                .json(format!(r#"{{"anagraphic":"{}"}}"#, "x".repeat(100))),
            S::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "field_write",
            student,
        ),
        site(
            "not json",
            Req::new(Method::PATCH, "/students/s-1")
                .bearer(&reader)
                .typed("text/plain", "hi"),
            S::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "field_write",
            student,
        ),
        site(
            "unfilterable",
            get("/students/s-1?broken=1").bearer(&reader),
            S::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "field_filter",
            student,
        ),
    ]
}

/// Sends `site` and asserts the one deny path: problem+json, one audit
/// event of the one schema with the route template, one count.
async fn assert_one_deny(app: &Router, site: Site) {
    let Site {
        what,
        req,
        status,
        code,
        guard,
        route,
    } = site;
    let (captured, _tracing) = capture();
    let (counted, _metrics) = counters();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), status, "{what}");
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json",
        "{what}"
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], code, "{what}: {body}");
    assert_eq!(body["status"], status.as_u16(), "{what}: {body}");

    let audit = captured.audit();
    assert_eq!(audit.len(), 1, "{what}: one audit event: {audit:?}");
    let event = &audit[0];
    assert_audit_schema(event);
    assert_eq!(event["outcome"], "deny", "{what}");
    assert_eq!(event["guard"], guard, "{what}: {event:?}");
    assert_eq!(event["code"], code, "{what}");
    assert_eq!(event["status"], status.as_str(), "{what}");
    assert_eq!(event["route"], route, "{what}: the template, not the path");
    assert!(
        !captured.all_text().contains("s-1") && !captured.all_text().contains("2026"),
        "{what}: no raw path in the audit trail: {audit:?}"
    );

    let decisions = counted.take_named("iam_guard_decisions_total");
    let denies: Vec<_> = decisions
        .iter()
        .filter(|(k, _)| k.contains("outcome=deny"))
        .collect();
    assert_eq!(
        denies,
        [(&decision(guard, "deny", code), &1)],
        "{what}: counted once"
    );
}

#[tokio::test]
async fn every_deny_site_answers_problem_json_audits_once_and_counts_once() {
    let iam = TestIam::start().await;
    let app = students(auth(iam.verifier()).permissions(ClaimsSource::new()));
    for site in sites(&iam) {
        assert_one_deny(&app, site).await;
    }
}

#[tokio::test]
async fn the_503s_and_the_extractors_take_the_same_path() {
    let iam = TestIam::start().await;
    let token = iam.mint(json!({"tenantId": "school-1"}));
    let down = students(auth(iam.verifier()).permissions(Down));
    let req = |uri| Req::new(Method::GET, uri);
    for site in [
        Site {
            what: "permissions down, guard",
            req: req("/students/s-1").bearer(&token).build(),
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "IAM_UNAVAILABLE",
            guard: "requirement",
            route: "/students/{id}",
        },
        Site {
            what: "permissions down, extractor",
            req: req("/permissions").bearer(&token).build(),
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "IAM_UNAVAILABLE",
            guard: "extractor",
            route: "/permissions",
        },
    ] {
        assert_one_deny(&down, site).await;
    }

    // Keys that cannot be had: the IAM is gone before anything was cached.
    let gone = TestIam::start().await;
    let token = gone.mint(json!({"tenantId": "school-1"}));
    let app = students(auth(gone.verifier()).permissions(ClaimsSource::new()));
    gone.stop();
    let site = Site {
        what: "keys unavailable",
        req: req("/students/s-1").bearer(&token).build(),
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "IAM_UNAVAILABLE",
        guard: "auth",
        route: "/students/{id}",
    };
    assert_one_deny(&app, site).await;

    // An optional auth layer lets an anonymous request through; the guard
    // and the extractor behind it still need a caller.
    let optional = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { p.user_id().to_owned() }),
        )
        .route(
            "/students/{id}",
            get(ok).route_layer(ScopeGuard::read("students")),
        )
        .layer(
            JwtAuthGuardLayer::new(iam.verifier())
                .optional()
                .permissions(ClaimsSource::new())
                .error_renderer(ErrorRenderer::problem_json()),
        );
    for (what, uri, guard, route) in [
        (
            "anonymous, guard",
            "/students/s-1",
            "requirement",
            "/students/{id}",
        ),
        ("anonymous, extractor", "/me", "extractor", "/me"),
    ] {
        let site = Site {
            what,
            req: req(uri).build(),
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_token",
            guard,
            route,
        };
        assert_one_deny(&optional, site).await;
    }
}

#[tokio::test]
async fn a_wiring_bug_names_the_missing_layer_in_the_default_format_and_is_audited() {
    // No auth layer at all: nothing was configured, so the default JSON.
    let app = Router::new().route(
        "/students/{id}",
        get(ok).route_layer(ScopeGuard::read("students")),
    );
    let (captured, _tracing) = capture();
    let (counted, _metrics) = counters();
    let res = app
        .oneshot(Request::get("/students/s-1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["code"], "INTERNAL");
    assert!(
        body["message"].as_str().unwrap().contains("JwtAuthGuard"),
        "{body}"
    );
    let audit = captured.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_audit_schema(&audit[0]);
    assert_eq!(audit[0]["route"], "/students/{id}");
    assert_eq!(audit[0]["requirement"], "scopes students >= READ");
    let wiring: Vec<_> = captured
        .events()
        .into_iter()
        .filter(|e| e.target == "iam_guard::wiring")
        .collect();
    assert_eq!(wiring.len(), 1, "the operator is told what to add");
    assert_eq!(
        counted.take_named("iam_guard_decisions_total"),
        [(decision("requirement", "deny", "INTERNAL"), 1)].into()
    );
}

#[tokio::test]
async fn admitted_requests_are_counted_and_never_audited() {
    let iam = TestIam::start().await;
    let app = students(auth(iam.verifier()).permissions(ClaimsSource::new()));
    let token = iam.mint(json!({
        "tenantId": "school-1",
        "entities": {"students": {"scopes": {"anagraphic": "READ"}, "actions": {}}},
    }));
    let (captured, _tracing) = capture();
    let (counted, _metrics) = counters();
    for _ in 0..3 {
        let res = app
            .clone()
            .oneshot(
                Req::new(Method::GET, "/students/s-1")
                    .bearer(&token)
                    .build(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert!(captured.audit().is_empty(), "{:?}", captured.audit());
    let decisions = counted.take_named("iam_guard_decisions_total");
    assert_eq!(
        decisions,
        [
            (decision("auth", "allow", ""), 3),
            (decision("requirement", "allow", ""), 3),
        ]
        .into()
    );
}
