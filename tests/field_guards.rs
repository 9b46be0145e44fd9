//! FieldWriteGuard and FieldFilter end to end: seed 002's worked example
//! and the edges of both layers, through axum routers.
#![cfg(feature = "test-util")]

mod common;

use std::{
    io,
    sync::{Arc, Mutex},
};

use axum::{
    body::{Body, Bytes},
    extract::Extension,
    http::{header, Method, Request, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, patch},
    Json, Router,
};
use common::{assert_audit_schema, send, Down};
use http_body_util::BodyExt;
use iam_guard::{
    guard::protected::ProtectedResource,
    model::{Requirement, ScopeAccess},
    permissions::source::ClaimsSource,
    test_util::TestIam,
    FieldFilterLayer, FieldWriteGuardLayer, JwtAuthGuardLayer, ScopeGuard,
};
use serde_json::{json, Value};

/// What the write handlers received, byte for byte.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Bytes>>>);

impl Received {
    fn all(&self) -> Vec<Bytes> {
        self.0.lock().unwrap().clone()
    }
}

fn student(id: u32) -> Value {
    json!({
        "id": format!("s-{id}"),
        "anagraphic": {
            "firstName": "Marco",
            "lastName": "Rossi",
            "customFields": { "nickname": "Marc" }
        },
        "sensitive": {
            "disabilityInfo": null,
            "customFields": { "blood_type": "O+" }
        },
        "others": { "customFields": { "notes": "Transfer student" } },
        "createdAt": "2026-03-01T10:00:00Z",
        "updatedAt": "2026-03-02T10:00:00Z"
    })
}

async fn show() -> Json<Value> {
    Json(student(1))
}

async fn list() -> Json<Value> {
    Json(json!([student(1), student(2)]))
}

async fn page() -> Json<Value> {
    Json(json!({ "data": [student(1), student(2)], "meta": { "total": 2, "page": 1 } }))
}

async fn update(Extension(received): Extension<Received>, body: Bytes) -> Json<Value> {
    received.0.lock().unwrap().push(body);
    Json(student(1))
}

async fn archive(Extension(received): Extension<Received>, body: Bytes) -> StatusCode {
    received.0.lock().unwrap().push(body);
    StatusCode::NO_CONTENT
}

/// The handler's own 404, which mentions a group the caller cannot read.
async fn missing() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not found", "sensitive": { "hint": "x" } })),
    )
        .into_response()
}

async fn export() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain")],
        r#"{"sensitive":{"disabilityInfo":"ADHD"}}"#,
    )
        .into_response()
}

async fn gzipped() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_ENCODING, "gzip"),
        ],
        r#"{"id":"s-1","sensitive":{"disabilityInfo":"ADHD"}}"#,
    )
        .into_response()
}

async fn broken() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"id":"s-1","sensitive":{"disabilityInfo":"ADHD"}"#,
    )
        .into_response()
}

/// Declares the unfiltered length, as a handler that sets it itself would.
async fn with_length() -> Response {
    let body = serde_json::to_vec(&student(1)).unwrap();
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_LENGTH, body.len().to_string()),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
        ],
        body,
    )
        .into_response()
}

fn auth(iam: &TestIam) -> JwtAuthGuardLayer {
    JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new())
}

/// The students API through the ProtectedResource bundle.
fn students(iam: &TestIam, received: &Received) -> Router {
    let write = Requirement::scopes("students", ScopeAccess::Write);
    let read = Requirement::scopes("students", ScopeAccess::Read);
    ProtectedResource::new("students")
        .get("/students", list)
        .get("/students/page", page)
        .get("/students/{id}", show)
        .patch("/students/{id}", update)
        .put("/students/{id}", update)
        .route_with(Method::POST, "/students/{id}/archive", write, archive)
        .route_with(Method::GET, "/students/{id}/missing", read.clone(), missing)
        .route_with(Method::GET, "/students/{id}/export", read.clone(), export)
        .route_with(Method::GET, "/students/{id}/gz", read.clone(), gzipped)
        .route_with(Method::GET, "/students/{id}/broken", read.clone(), broken)
        .route_with(Method::GET, "/students/{id}/sized", read, with_length)
        .into_router()
        .layer(Extension(received.clone()))
        .layer(auth(iam))
}

/// A token with `scopes` on students (seed 002 §4 shape).
fn token(iam: &TestIam, scopes: Value) -> String {
    iam.mint(json!({
        "tenantId": "school-1",
        "entities": { "students": { "scopes": scopes, "actions": {} } }
    }))
}

/// Seed 002 §3.7's user: anagraphic WRITE, sensitive NONE.
fn worked_example(iam: &TestIam) -> String {
    token(iam, json!({ "anagraphic": "WRITE" }))
}

fn req(method: Method, uri: &str, token: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
}

fn json_write(method: Method, uri: &str, token: &str, body: &'static str) -> Request<Body> {
    req(method, uri, token)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn get_req(uri: &str, token: &str) -> Request<Body> {
    req(Method::GET, uri, token).body(Body::empty()).unwrap()
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn content_length(&self) -> Option<usize> {
        self.headers
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }
}

async fn answer(app: &Router, req: Request<Body>) -> Answer {
    let res = send(app, req).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

// --- seed 002's worked example ---------------------------------------------

#[tokio::test]
async fn worked_example_patch_of_a_writable_group_reaches_the_handler_byte_for_byte() {
    let iam = TestIam::start().await;
    let received = Received::default();
    let app = students(&iam, &received);
    // Odd spacing and key order: the handler must see exactly this.
    let body = "{ \"anagraphic\" :{\"firstName\":\"Mario\",  \"x\":[1,2.50]} }\n";
    let a = answer(
        &app,
        json_write(Method::PATCH, "/students/s-1", &worked_example(&iam), body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(received.all(), [Bytes::from_static(body.as_bytes())]);
}

#[tokio::test]
async fn worked_example_patch_of_sensitive_is_403_without_naming_it() {
    let iam = TestIam::start().await;
    let received = Received::default();
    let app = students(&iam, &received);
    let a = answer(
        &app,
        json_write(
            Method::PATCH,
            "/students/s-1",
            &worked_example(&iam),
            r#"{"sensitive":{"disabilityInfo":"ADHD"}}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.json()["code"], "FORBIDDEN_FIELDS");
    assert!(!a.text().contains("sensitive"), "{}", a.text());
    assert_eq!(
        a.headers[header::WWW_AUTHENTICATE],
        "Bearer error=\"insufficient_scope\""
    );
    assert!(received.all().is_empty(), "the handler must not run");
}

#[tokio::test]
async fn worked_example_get_strips_sensitive() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let a = answer(&app, get_req("/students/s-1", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::OK);
    let body = a.json();
    assert_eq!(keys(&body), ["anagraphic", "createdAt", "id", "updatedAt"]);
    assert_eq!(body["anagraphic"], student(1)["anagraphic"]);
    assert_eq!(a.content_length(), Some(a.body.len()));
}

// --- reads -----------------------------------------------------------------

#[tokio::test]
async fn custom_fields_are_filtered_with_their_group() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let t = token(&iam, json!({ "anagraphic": "READ", "others": "READ" }));
    let a = answer(&app, get_req("/students/s-1", &t)).await;
    let body = a.json();
    assert_eq!(
        body["anagraphic"]["customFields"],
        json!({ "nickname": "Marc" })
    );
    assert_eq!(
        body["others"]["customFields"],
        json!({ "notes": "Transfer student" })
    );
    assert!(body.get("sensitive").is_none());
    assert!(!a.text().contains("blood_type"), "{}", a.text());

    // The nurse sees the other side.
    let t = token(&iam, json!({ "sensitive": "READ" }));
    let body = answer(&app, get_req("/students/s-1", &t)).await.json();
    assert_eq!(keys(&body), ["createdAt", "id", "sensitive", "updatedAt"]);
    assert_eq!(body["sensitive"]["customFields"]["blood_type"], "O+");
}

#[tokio::test]
async fn arrays_are_filtered_element_by_element() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let a = answer(&app, get_req("/students", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::OK);
    let body = a.json();
    let items = body.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(keys(item), ["anagraphic", "createdAt", "id", "updatedAt"]);
    }
    assert_eq!(items[1]["id"], "s-2");
}

#[tokio::test]
async fn pages_keep_meta_and_filter_data() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let a = answer(&app, get_req("/students/page", &worked_example(&iam))).await;
    let body = a.json();
    assert_eq!(keys(&body), ["data", "meta"]);
    assert_eq!(body["meta"], json!({ "total": 2, "page": 1 }));
    for item in body["data"].as_array().unwrap() {
        assert_eq!(keys(item), ["anagraphic", "createdAt", "id", "updatedAt"]);
    }
    assert_eq!(a.content_length(), Some(a.body.len()));
}

#[tokio::test]
async fn head_advertises_the_filtered_length_and_sends_no_body() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let t = worked_example(&iam);
    let get = answer(&app, get_req("/students/s-1", &t)).await;
    let head = answer(
        &app,
        req(Method::HEAD, "/students/s-1", &t)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.content_length(), Some(get.body.len()));
    let unfiltered = serde_json::to_vec(&student(1)).unwrap().len();
    assert_ne!(head.content_length(), Some(unfiltered));
}

#[tokio::test]
async fn content_length_is_replaced_with_the_filtered_one() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let a = answer(&app, get_req("/students/s-1/sized", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_length(), Some(a.body.len()));
    assert!(a.headers.get(header::ACCEPT_RANGES).is_none());
    assert!(a.json().get("sensitive").is_none());
}

#[tokio::test]
async fn non_2xx_responses_pass_through_untouched() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let a = answer(
        &app,
        get_req("/students/s-1/missing", &worked_example(&iam)),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(
        a.json(),
        json!({ "error": "not found", "sensitive": { "hint": "x" } })
    );
}

#[tokio::test]
async fn non_json_responses_pass_through_untouched() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let a = answer(&app, get_req("/students/s-1/export", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.text(), r#"{"sensitive":{"disabilityInfo":"ADHD"}}"#);
}

#[tokio::test]
async fn content_encoded_json_on_a_filtered_route_is_500() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let a = answer(&app, get_req("/students/s-1/gz", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.json()["code"], "INTERNAL");
    assert!(!a.text().contains("ADHD"));
    assert!(a.headers.get(header::CONTENT_ENCODING).is_none());
}

#[tokio::test]
async fn unparseable_json_from_the_handler_is_500() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let a = answer(&app, get_req("/students/s-1/broken", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.json()["code"], "INTERNAL");
    assert!(!a.text().contains("ADHD"));
}

#[tokio::test]
async fn responses_over_the_buffer_limit_are_500() {
    let iam = TestIam::start().await;
    let app = ProtectedResource::new("students")
        .field_filter(FieldFilterLayer::new().limit(64))
        .get("/students/{id}", show)
        .into_router()
        .layer(auth(&iam));
    let a = answer(&app, get_req("/students/s-1", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!a.text().contains("Marco"));
}

#[tokio::test]
async fn always_allowed_keys_are_configurable_on_the_bundle() {
    let iam = TestIam::start().await;
    let app = ProtectedResource::new("students")
        .always_allowed(["id"])
        .get("/students/{id}", show)
        .into_router()
        .layer(auth(&iam));
    let body = answer(&app, get_req("/students/s-1", &worked_example(&iam)))
        .await
        .json();
    assert_eq!(keys(&body), ["anagraphic", "id"]);
}

#[tokio::test]
async fn filter_outside_the_route_reads_the_requirement_from_the_response() {
    let iam = TestIam::start().await;
    let app = Router::new()
        .route(
            "/students/{id}",
            get(show).route_layer(ScopeGuard::read("students")),
        )
        .route(
            "/health",
            get(|| async { Json(json!({ "sensitive": "ok" })) }),
        )
        .layer(FieldFilterLayer::new())
        .layer(auth(&iam));
    let t = worked_example(&iam);
    let body = answer(&app, get_req("/students/s-1", &t)).await.json();
    assert_eq!(keys(&body), ["anagraphic", "createdAt", "id", "updatedAt"]);
    // A route without an entity requirement is not an entity route.
    let health = answer(&app, get_req("/health", &t)).await;
    assert_eq!(health.json(), json!({ "sensitive": "ok" }));
}

#[tokio::test]
async fn unloadable_permissions_are_503_not_an_unfiltered_body() {
    let iam = TestIam::start().await;
    // No requirement guard: the filter is the first to ask for permissions.
    let app = Router::new()
        .route("/students/{id}", get(show))
        .layer(FieldFilterLayer::new().entity("students"))
        .layer(JwtAuthGuardLayer::new(iam.verifier()).permissions(Down));
    let a = answer(&app, get_req("/students/s-1", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["code"], "IAM_UNAVAILABLE");
    assert!(!a.text().contains("Marco"));
}

#[tokio::test]
async fn filter_without_permissions_on_the_request_is_500() {
    let iam = TestIam::start().await;
    // Authenticated, but no permission source: nothing to filter against.
    let app = Router::new()
        .route("/students/{id}", get(show))
        .layer(FieldFilterLayer::new().entity("students"))
        .layer(JwtAuthGuardLayer::new(iam.verifier()));
    let a = answer(&app, get_req("/students/s-1", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!a.text().contains("Marco"));
}

// --- writes ----------------------------------------------------------------

#[tokio::test]
async fn system_fields_are_always_rejected() {
    let iam = TestIam::start().await;
    let received = Received::default();
    let app = students(&iam, &received);
    // Even a caller who can write a scope named like a system field.
    let t = token(
        &iam,
        json!({ "anagraphic": "WRITE", "id": "WRITE", "tenantId": "WRITE" }),
    );
    for body in [
        r#"{"id":"s-9","anagraphic":{}}"#,
        r#"{"createdAt":"2020-01-01"}"#,
        r#"{"updatedAt":"2020-01-01"}"#,
        r#"{"tenantId":"other-school","anagraphic":{"firstName":"M"}}"#,
    ] {
        let a = answer(&app, json_write(Method::PATCH, "/students/s-1", &t, body)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(a.json()["code"], "FORBIDDEN_FIELDS");
    }
    assert!(received.all().is_empty());
}

#[tokio::test]
async fn keys_that_are_not_writable_groups_are_rejected() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let t = token(&iam, json!({ "anagraphic": "WRITE", "sensitive": "READ" }));
    for body in [
        // Flat fields are not scope groups.
        r#"{"firstName":"Mario"}"#,
        // READ is not WRITE.
        r#"{"anagraphic":{},"sensitive":{"disabilityInfo":"ADHD"}}"#,
        // An escaped key is the same key.
        r#"{"sens\u0069tive":{"disabilityInfo":"ADHD"}}"#,
        // customFields belong inside a group.
        r#"{"customFields":{"nickname":"M"}}"#,
    ] {
        let a = answer(&app, json_write(Method::PUT, "/students/s-1", &t, body)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{body}");
    }
}

#[tokio::test]
async fn custom_fields_inside_a_writable_group_pass() {
    let iam = TestIam::start().await;
    let received = Received::default();
    let app = students(&iam, &received);
    let body = r#"{"anagraphic":{"customFields":{"nickname":"Gigi"}}}"#;
    let a = answer(
        &app,
        json_write(Method::PATCH, "/students/s-1", &worked_example(&iam), body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(received.all(), [Bytes::from_static(body.as_bytes())]);
}

#[tokio::test]
async fn custom_field_errors_are_400_naming_the_field() {
    use iam_guard::model::custom_fields::{
        CustomFieldDef, CustomFieldDefinitions, CustomFieldError, FieldType, WriteMode,
    };

    async fn create(Json(body): Json<Value>) -> Result<StatusCode, CustomFieldError> {
        let defs = CustomFieldDefinitions::new([
            CustomFieldDef::new("nickname", "anagraphic", FieldType::Text),
            CustomFieldDef::new("blood_type", "sensitive", FieldType::Select)
                .options(["A+", "O+"])
                .required(),
        ]);
        defs.validate_body(&body, WriteMode::Create)?;
        Ok(StatusCode::CREATED)
    }

    let iam = TestIam::start().await;
    let app = ProtectedResource::new("students")
        .post("/students", create)
        .into_router()
        .layer(auth(&iam));
    let t = iam.mint(json!({
        "entities": { "students": {
            "scopes": { "anagraphic": "WRITE", "sensitive": "WRITE" },
            "actions": { "create": true }
        } }
    }));
    let ok = r#"{"anagraphic":{"customFields":{"nickname":"Gigi"}},"sensitive":{"customFields":{"blood_type":"O+"}}}"#;
    let a = answer(&app, json_write(Method::POST, "/students", &t, ok)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());

    let bad = r#"{"anagraphic":{"customFields":{"nickname":"Gigi"}},"sensitive":{"customFields":{"blood_type":"Z"}}}"#;
    let a = answer(&app, json_write(Method::POST, "/students", &t, bad)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["code"], "INVALID_BODY");
    assert!(a.json()["message"]
        .as_str()
        .unwrap()
        .contains("sensitive.blood_type"));

    let missing = r#"{"anagraphic":{"customFields":{"nickname":"Gigi"}}}"#;
    let a = answer(&app, json_write(Method::POST, "/students", &t, missing)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["message"].as_str().unwrap().contains("blood_type"));
}

#[tokio::test]
async fn non_json_write_bodies_are_415() {
    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let t = worked_example(&iam);
    let cases = [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ];
    for content_type in cases {
        let mut r = req(Method::PATCH, "/students/s-1", &t);
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        let a = answer(&app, r.body(Body::from(r#"{"anagraphic":{}}"#)).unwrap()).await;
        assert_eq!(
            a.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(a.json()["code"], "UNSUPPORTED_MEDIA_TYPE");
    }
    // A compressed body cannot be checked either.
    let r = req(Method::PATCH, "/students/s-1", &t)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(Body::from(r#"{"anagraphic":{}}"#))
        .unwrap();
    assert_eq!(
        answer(&app, r).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // JSON with parameters and +json types are JSON.
    for ct in [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ] {
        let r = req(Method::PATCH, "/students/s-1", &t)
            .header("content-type", ct)
            .body(Body::from(r#"{"anagraphic":{}}"#))
            .unwrap();
        assert_eq!(answer(&app, r).await.status, StatusCode::OK, "{ct}");
    }
}

#[tokio::test]
async fn a_write_without_body_or_content_type_passes() {
    let iam = TestIam::start().await;
    let received = Received::default();
    let app = students(&iam, &received);
    let r = req(Method::POST, "/students/s-1/archive", &worked_example(&iam))
        .header("content-length", "0")
        .body(Body::empty())
        .unwrap();
    assert_eq!(answer(&app, r).await.status, StatusCode::NO_CONTENT);
    assert_eq!(received.all(), [Bytes::new()]);
}

fn big_body() -> String {
    let filler = "x".repeat(1024 * 1024 + 1);
    format!(r#"{{"anagraphic":{{"notes":"{filler}"}}}}"#)
}

#[tokio::test]
async fn oversized_body_with_content_length_is_413() {
    let iam = TestIam::start().await;
    let received = Received::default();
    let app = students(&iam, &received);
    let body = big_body();
    let r = req(Method::PATCH, "/students/s-1", &worked_example(&iam))
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string())
        .body(Body::from(body))
        .unwrap();
    let a = answer(&app, r).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.json()["code"], "PAYLOAD_TOO_LARGE");
    assert!(received.all().is_empty());
}

#[tokio::test]
async fn oversized_streamed_body_is_413() {
    let iam = TestIam::start().await;
    let received = Received::default();
    let app = students(&iam, &received);
    let chunks: Vec<Result<Bytes, io::Error>> = big_body()
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let r = req(Method::PATCH, "/students/s-1", &worked_example(&iam))
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let a = answer(&app, r).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(received.all().is_empty());
}

#[tokio::test]
async fn body_limit_is_configurable_on_the_bundle() {
    let iam = TestIam::start().await;
    let app = ProtectedResource::new("students")
        .body_limit(16)
        .patch("/students/{id}", update)
        .into_router()
        .layer(Extension(Received::default()))
        .layer(auth(&iam));
    let t = worked_example(&iam);
    let small = json_write(Method::PATCH, "/students/s-1", &t, r#"{"anagraphic":{}}"#);
    assert_eq!(
        answer(&app, small).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let tiny = json_write(Method::PATCH, "/students/s-1", &t, "{}");
    assert_eq!(answer(&app, tiny).await.status, StatusCode::OK);
}

#[tokio::test]
async fn other_methods_are_not_read() {
    let iam = TestIam::start().await;
    // A GET with a body the write guard would refuse: it is not a write.
    let app = Router::new()
        .route(
            "/students/{id}",
            get(|body: Bytes| async move { body })
                .route_layer(FieldWriteGuardLayer::new())
                .route_layer(ScopeGuard::read("students")),
        )
        .layer(auth(&iam));
    let r = req(Method::GET, "/students/s-1", &worked_example(&iam))
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"sensitive":1}"#))
        .unwrap();
    let a = answer(&app, r).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.text(), r#"{"sensitive":1}"#);
}

#[tokio::test]
async fn write_guard_without_a_requirement_guard_is_500() {
    let iam = TestIam::start().await;
    let received = Received::default();
    let app = Router::new()
        .route(
            "/students/{id}",
            patch(update).route_layer(FieldWriteGuardLayer::new()),
        )
        .layer(Extension(received.clone()))
        .layer(auth(&iam));
    let a = answer(
        &app,
        json_write(
            Method::PATCH,
            "/students/s-1",
            &worked_example(&iam),
            r#"{"anagraphic":{}}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(received.all().is_empty());
}

#[tokio::test]
async fn flat_permission_routes_use_the_bundle_entity() {
    let iam = TestIam::start().await;
    let received = Received::default();
    let app = ProtectedResource::new("students")
        .route_with(
            Method::POST,
            "/students/import",
            Requirement::all_of(["students.import"]),
            update,
        )
        .into_router()
        .layer(Extension(received.clone()))
        .layer(auth(&iam));
    let t = iam.mint(json!({
        "permissions": ["students.import"],
        "entities": { "students": { "scopes": { "anagraphic": "WRITE" }, "actions": {} } }
    }));
    let ok = json_write(Method::POST, "/students/import", &t, r#"{"anagraphic":{}}"#);
    let a = answer(&app, ok).await;
    assert_eq!(a.status, StatusCode::OK);
    // The response is filtered for students too.
    assert_eq!(
        keys(&a.json()),
        ["anagraphic", "createdAt", "id", "updatedAt"]
    );
    let denied = json_write(Method::POST, "/students/import", &t, r#"{"sensitive":{}}"#);
    assert_eq!(answer(&app, denied).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn super_user_bypass_passes_writes_and_reads_when_enabled() {
    let iam = TestIam::start().await;
    let received = Received::default();
    let app = ProtectedResource::new("students")
        .get("/students/{id}", show)
        .patch("/students/{id}", update)
        .into_router()
        .layer(Extension(received.clone()))
        .layer(auth(&iam).super_user_bypass(true));
    let t = iam.mint(json!({ "is_super_user": true }));
    let w = json_write(
        Method::PATCH,
        "/students/s-1",
        &t,
        r#"{"sensitive":{"disabilityInfo":"x"}}"#,
    );
    assert_eq!(answer(&app, w).await.status, StatusCode::OK);
    let body = answer(&app, get_req("/students/s-1", &t)).await.json();
    assert_eq!(body, student(1));

    // Without the opt-in the flag means nothing.
    let app = students(&iam, &Received::default());
    let t = iam.mint(json!({
        "is_super_user": true,
        "entities": { "students": { "scopes": { "anagraphic": "WRITE" }, "actions": {} } }
    }));
    let w = json_write(Method::PATCH, "/students/s-1", &t, r#"{"sensitive":{}}"#);
    assert_eq!(answer(&app, w).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn forbidden_keys_are_logged_with_who_and_where() {
    let (capture, _guard) = common::capture();

    let iam = TestIam::start().await;
    let app = students(&iam, &Received::default());
    let a = answer(
        &app,
        json_write(
            Method::PATCH,
            "/students/s-1",
            &worked_example(&iam),
            r#"{"anagraphic":{},"sensitive":{},"financial":{}}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(!a.text().contains("financial"));

    let audit = capture.audit();
    let event = audit
        .iter()
        .find(|e| e.get("code").is_some_and(|c| c == "FORBIDDEN_FIELDS"))
        .unwrap_or_else(|| panic!("no audit event in {audit:?}"));
    assert_audit_schema(event);
    for (field, value) in [
        ("keys", "financial,sensitive"),
        ("guard", "field_write"),
        ("requirement", "scopes students >= WRITE"),
        ("user", "user-1"),
        ("tenant", "school-1"),
        ("route", "/students/{id}"),
    ] {
        assert_eq!(
            event.get(field).map(String::as_str),
            Some(value),
            "{field} in {event:?}"
        );
    }
}

#[tokio::test]
async fn a_filtered_response_drops_the_validator_of_the_unfiltered_one() {
    async fn tagged() -> Response {
        let mut res = Json(student(1)).into_response();
        res.headers_mut()
            .insert(header::ETAG, "\"full-document\"".parse().unwrap());
        res
    }
    let iam = TestIam::start().await;
    let app = ProtectedResource::new("students")
        .get("/students/{id}", tagged)
        .into_router()
        .layer(auth(&iam));
    let a = answer(&app, get_req("/students/s-1", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.json().get("sensitive").is_none());
    assert!(
        a.headers.get(header::ETAG).is_none(),
        "a stale ETag survived filtering"
    );
}

// --- bodies in several frames ----------------------------------------------

/// `student(1)` as a stream of `chunk`-byte frames (a handler streaming
/// its JSON), with `fail` as an error frame after the first chunk.
fn streamed(chunk: usize, fail: bool) -> Response {
    let text = serde_json::to_vec(&student(1)).unwrap();
    let mut frames: Vec<Result<Bytes, io::Error>> = text
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    if fail {
        frames.insert(1, Err(io::Error::other("the handler's stream broke")));
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::stream::iter(frames)),
    )
        .into_response()
}

fn streaming_app(iam: &TestIam, filter: FieldFilterLayer, chunk: usize, fail: bool) -> Router {
    ProtectedResource::new("students")
        .field_filter(filter)
        .get(
            "/students/{id}",
            get(move || async move { streamed(chunk, fail) }),
        )
        .into_router()
        .layer(auth(iam))
}

#[tokio::test]
async fn streamed_responses_are_filtered_like_one_buffer() {
    let iam = TestIam::start().await;
    let t = worked_example(&iam);
    let whole = answer(
        &students(&iam, &Received::default()),
        get_req("/students/s-1", &t),
    )
    .await;
    // Frames of 1, 7 and 64 bytes: cuts across keys, strings and escapes.
    for chunk in [1, 7, 64] {
        let app = streaming_app(&iam, FieldFilterLayer::new(), chunk, false);
        let a = answer(&app, get_req("/students/s-1", &t)).await;
        assert_eq!(a.status, StatusCode::OK, "{chunk}");
        assert_eq!(a.body, whole.body, "{chunk}");
        assert_eq!(a.content_length(), Some(a.body.len()), "{chunk}");
    }
}

#[tokio::test]
async fn streamed_responses_over_the_buffer_limit_are_500() {
    let iam = TestIam::start().await;
    // No Content-Length to refuse up front: the limit counts the frames.
    let app = streaming_app(&iam, FieldFilterLayer::new().limit(64), 16, false);
    let a = answer(&app, get_req("/students/s-1", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.json()["code"], "INTERNAL");
    assert!(!a.text().contains("Marco"));
    // Exactly at the limit is filtered.
    let len = serde_json::to_vec(&student(1)).unwrap().len();
    let app = streaming_app(&iam, FieldFilterLayer::new().limit(len), 16, false);
    let a = answer(&app, get_req("/students/s-1", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn a_body_stream_error_is_500_not_half_a_body() {
    let iam = TestIam::start().await;
    let app = streaming_app(&iam, FieldFilterLayer::new(), 16, true);
    let a = answer(&app, get_req("/students/s-1", &worked_example(&iam))).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.json()["code"], "INTERNAL");
    assert!(!a.text().contains("s-1"));
}

#[tokio::test]
async fn the_request_context_rides_on_the_response_only_for_a_filter_outside_the_auth_layer() {
    let iam = TestIam::start().await;
    let token = worked_example(&iam);
    // What a layer outside everything sees on the response.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let observe = |seen: Arc<Mutex<Vec<bool>>>| {
        axum::middleware::map_response(move |res: axum::response::Response| {
            let seen = seen.clone();
            async move {
                let carried =
                    iam_guard::RequestContext::from_extensions(res.extensions()).is_some();
                seen.lock().unwrap().push(carried);
                res
            }
        })
    };
    let route = || get(show).route_layer(ScopeGuard::read("students"));
    // A filter inside the auth layer (or none): nothing outside asks.
    let inside = Router::new()
        .route(
            "/students/{id}",
            route().route_layer(FieldFilterLayer::new()),
        )
        .layer(auth(&iam))
        .layer(observe(seen.clone()));
    let a = answer(&inside, get_req("/students/s-1", &token)).await;
    assert_eq!(a.status, StatusCode::OK);
    // A filter outside the auth layer asks for it, and gets it.
    let outside = Router::new()
        .route("/students/{id}", route())
        .layer(auth(&iam))
        .layer(FieldFilterLayer::new())
        .layer(observe(seen.clone()));
    let a = answer(&outside, get_req("/students/s-1", &token)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.text().contains("sensitive"), "{}", a.text());
    assert_eq!(*seen.lock().unwrap(), [false, true]);
}
