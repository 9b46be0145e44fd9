//! ReadView end to end: handlers that serialize their responses already
//! filtered send the bytes FieldFilter would have sent, the filter does not
//! scan them again, and it still scans (and cuts) anything it cannot vouch
//! for.
#![cfg(feature = "test-util")]

mod common;

use axum::{
    body::{Body, Bytes},
    http::{header, Method, Request, StatusCode},
    middleware::map_response,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use common::{counters, send, Counters, Down};
use http_body_util::BodyExt;
use iam_guard::{
    guard::protected::ProtectedResource,
    metrics::{FIELDS_REMOVED, FILTERED_RESPONSES},
    model::{Requirement, ScopeAccess},
    permissions::source::ClaimsSource,
    test_util::TestIam,
    FieldFilterLayer, JwtAuthGuardLayer, PermissionGuard, ReadView, ScopeGuard,
};
use serde::Serialize;
use serde_json::{json, Value};

/// A typed student, as a handler holding its data would have it.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Student {
    id: String,
    anagraphic: Value,
    sensitive: Value,
    financial: Value,
    created_at: &'static str,
    updated_at: &'static str,
}

fn student(id: u32) -> Student {
    Student {
        id: format!("s-{id}"),
        anagraphic: json!({"firstName": "Marco", "customFields": {"nickname": "Marc"}}),
        sensitive: json!({"disabilityInfo": "ADHD", "customFields": {"blood_type": "O+"}}),
        financial: json!({"iban": "IT60X0542811101000000123456"}),
        created_at: "2026-03-01T10:00:00Z",
        updated_at: "2026-03-02T10:00:00Z",
    }
}

#[derive(Serialize)]
struct Meta {
    total: usize,
    page: usize,
}

async fn typed_one(view: ReadView) -> Response {
    view.json(&student(1))
}

async fn typed_list(view: ReadView) -> Response {
    view.json(&[student(1), student(2)])
}

async fn typed_page(view: ReadView) -> Response {
    view.page(&[student(1), student(2)], &Meta { total: 2, page: 1 })
}

async fn scanned_one() -> Json<Student> {
    Json(student(1))
}

async fn scanned_list() -> Json<Vec<Student>> {
    Json(vec![student(1), student(2)])
}

#[derive(Serialize)]
struct Page {
    data: Vec<Student>,
    meta: Meta,
}

async fn scanned_page() -> Json<Page> {
    Json(Page {
        data: vec![student(1), student(2)],
        meta: Meta { total: 2, page: 1 },
    })
}

/// Which members the handler was told it may write (as text: a JSON
/// answer would itself be filtered).
async fn what_can_i_read(view: ReadView) -> String {
    format!(
        "{} anagraphic={} sensitive={} id={}",
        view.entity(),
        view.can_read("anagraphic"),
        view.can_read("sensitive"),
        view.can_read("id"),
    )
}

/// An array in an array: the typed filter cannot place its groups.
async fn unfilterable(view: ReadView) -> Response {
    view.json(&[[student(1)]])
}

fn auth(iam: &TestIam) -> JwtAuthGuardLayer {
    JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new())
}

/// The same documents served typed and scanned, through the bundle.
fn students(iam: &TestIam) -> Router {
    let read = Requirement::scopes("students", ScopeAccess::Read);
    ProtectedResource::new("students")
        .get("/typed/{id}", typed_one)
        .get("/typed", typed_list)
        .get("/typed-page", typed_page)
        .get("/scanned/{id}", scanned_one)
        .get("/scanned", scanned_list)
        .get("/scanned-page", scanned_page)
        .route_with(Method::GET, "/can-read", read.clone(), what_can_i_read)
        .route_with(Method::GET, "/unfilterable", read, unfilterable)
        .into_router()
        .layer(auth(iam))
}

fn token(iam: &TestIam, scopes: Value) -> String {
    iam.mint(json!({ "entities": { "students": { "scopes": scopes, "actions": {} } } }))
}

fn get_req(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
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

/// The filtered-response counts since the last look (which clears every
/// counter).
fn passes(counted: &Counters) -> std::collections::BTreeMap<String, u64> {
    counted.take_named(FILTERED_RESPONSES)
}

type Counts = Vec<(String, u64)>;

/// Both counts at one look: responses by pass, groups removed by entity.
fn filtered(counted: &Counters) -> (Counts, Counts) {
    let all = counted.take();
    let named = |name: &str| {
        all.iter()
            .filter(|(k, _)| k.split('{').next() == Some(name))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    (named(FILTERED_RESPONSES), named(FIELDS_REMOVED))
}

fn removed(n: u64) -> Counts {
    vec![(format!("{FIELDS_REMOVED}{{entity=students}}"), n)]
}

fn pass(how: &str, n: u64) -> std::collections::BTreeMap<String, u64> {
    [(format!("{FILTERED_RESPONSES}{{pass={how}}}"), n)]
        .into_iter()
        .collect()
}

#[tokio::test]
async fn typed_responses_are_the_bytes_the_filter_sends_for_the_whole_value() {
    let iam = TestIam::start().await;
    let app = students(&iam);
    let callers = [
        token(
            &iam,
            json!({"anagraphic": "READ", "sensitive": "READ", "financial": "READ"}),
        ),
        token(&iam, json!({"anagraphic": "WRITE", "financial": "NONE"})),
        token(&iam, json!({"sensitive": "READ"})),
        // Reads nothing of students but passes the READ gate on another group.
        token(&iam, json!({"attendance": "READ"})),
    ];
    for caller in &callers {
        for (typed, scanned) in [
            ("/typed/s-1", "/scanned/s-1"),
            ("/typed", "/scanned"),
            ("/typed-page", "/scanned-page"),
        ] {
            let t = answer(&app, get_req(typed, caller)).await;
            let s = answer(&app, get_req(scanned, caller)).await;
            assert_eq!(t.status, StatusCode::OK, "{typed}: {}", t.text());
            assert_eq!(s.status, StatusCode::OK);
            assert_eq!(t.text(), s.text(), "{typed} and {scanned}");
            assert_eq!(
                t.headers[header::CONTENT_LENGTH],
                t.body.len().to_string().as_str()
            );
            assert_eq!(t.headers[header::CONTENT_TYPE], "application/json");
        }
    }
    // The partial reader's view, spelled out.
    let one = answer(&app, get_req("/typed/s-1", &callers[1]))
        .await
        .json();
    assert_eq!(
        one,
        json!({
            "id": "s-1",
            "anagraphic": {"firstName": "Marco", "customFields": {"nickname": "Marc"}},
            "createdAt": "2026-03-01T10:00:00Z",
            "updatedAt": "2026-03-02T10:00:00Z",
        })
    );
    let page = answer(&app, get_req("/typed-page", &callers[3]))
        .await
        .json();
    assert_eq!(
        page,
        json!({
            "data": [
                {"id": "s-1", "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-02T10:00:00Z"},
                {"id": "s-2", "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-02T10:00:00Z"},
            ],
            "meta": {"total": 2, "page": 1},
        })
    );
}

#[tokio::test]
async fn the_filter_does_not_scan_what_a_read_view_wrote() {
    let (counted, _guard) = counters();
    let iam = TestIam::start().await;
    let app = students(&iam);
    let caller = token(&iam, json!({"anagraphic": "READ"}));

    let typed = answer(&app, get_req("/typed/s-1", &caller)).await;
    assert_eq!(typed.status, StatusCode::OK);
    // The groups left out are counted as if the filter had cut them.
    assert_eq!(
        filtered(&counted),
        (pass("serialized", 1).into_iter().collect(), removed(2))
    );

    answer(&app, get_req("/scanned/s-1", &caller)).await;
    assert_eq!(passes(&counted), pass("scanned", 1));
    answer(&app, get_req("/typed-page", &caller)).await;
    assert_eq!(passes(&counted), pass("serialized", 1));
}

/// Puts a group back into whatever body the handler produced.
async fn smuggle(res: Response) -> Response {
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
    doc["sensitive"] = json!({"disabilityInfo": "smuggled"});
    Response::from_parts(parts, Body::from(serde_json::to_vec(&doc).unwrap()))
}

/// The same bytes, copied into a new buffer.
async fn copy(res: Response) -> Response {
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, Body::from(bytes.to_vec()))
}

#[tokio::test]
async fn a_body_changed_after_the_view_wrote_it_is_scanned_and_cut() {
    let (counted, _guard) = counters();
    let iam = TestIam::start().await;
    let caller = token(&iam, json!({"anagraphic": "READ"}));
    for (name, app) in [
        (
            "smuggled",
            Router::new().route(
                "/students/{id}",
                get(typed_one)
                    .layer(map_response(smuggle))
                    .route_layer(FieldFilterLayer::new())
                    .route_layer(ScopeGuard::read("students")),
            ),
        ),
        (
            "copied",
            Router::new().route(
                "/students/{id}",
                get(typed_one)
                    .layer(map_response(copy))
                    .route_layer(FieldFilterLayer::new())
                    .route_layer(ScopeGuard::read("students")),
            ),
        ),
    ] {
        let app = app.layer(auth(&iam));
        let a = answer(&app, get_req("/students/s-1", &caller)).await;
        assert_eq!(a.status, StatusCode::OK, "{name}");
        assert!(!a.text().contains("sensitive"), "{name}: {}", a.text());
        assert!(!a.text().contains("smuggled"), "{name}: {}", a.text());
        assert_eq!(
            a.json()["anagraphic"]["firstName"],
            "Marco",
            "{name}: the readable group stays"
        );
        // The stamp did not cover this buffer: the filter read it.
        assert_eq!(passes(&counted), pass("scanned", 1), "{name}");
    }
}

#[tokio::test]
async fn an_outer_filter_with_another_configuration_judges_for_itself() {
    let (counted, _guard) = counters();
    let iam = TestIam::start().await;
    let app = Router::new()
        .route(
            "/students/{id}",
            get(typed_one)
                .route_layer(FieldFilterLayer::new())
                .route_layer(ScopeGuard::read("students")),
        )
        // Keeps only `id` of the system fields.
        .layer(FieldFilterLayer::new().always_allowed(["id"]))
        .layer(auth(&iam));
    let caller = token(&iam, json!({"anagraphic": "READ"}));
    let a = answer(&app, get_req("/students/s-1", &caller)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"id": "s-1", "anagraphic": {"firstName": "Marco", "customFields": {"nickname": "Marc"}}})
    );
    let mut expected = pass("serialized", 1);
    expected.extend(pass("scanned", 1));
    assert_eq!(passes(&counted), expected);
}

#[tokio::test]
async fn without_a_filter_on_the_route_the_view_filters_by_the_defaults() {
    let (counted, _guard) = counters();
    let iam = TestIam::start().await;
    let app = Router::new()
        .route(
            "/students/{id}",
            get(typed_one).route_layer(ScopeGuard::read("students")),
        )
        .layer(auth(&iam));
    let caller = token(&iam, json!({"financial": "READ"}));
    let a = answer(&app, get_req("/students/s-1", &caller)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({
            "id": "s-1",
            "financial": {"iban": "IT60X0542811101000000123456"},
            "createdAt": "2026-03-01T10:00:00Z",
            "updatedAt": "2026-03-02T10:00:00Z",
        })
    );
    assert_eq!(
        filtered(&counted),
        (pass("serialized", 1).into_iter().collect(), removed(2))
    );
}

#[tokio::test]
async fn the_view_tells_the_handler_what_it_may_read() {
    let iam = TestIam::start().await;
    let app = students(&iam);
    let caller = token(&iam, json!({"anagraphic": "WRITE", "sensitive": "NONE"}));
    let a = answer(&app, get_req("/can-read", &caller)).await;
    assert_eq!(a.text(), "students anagraphic=true sensitive=false id=true");
}

#[tokio::test]
async fn a_value_that_cannot_be_filtered_is_500_and_never_sent() {
    let (capture, _guard) = common::capture();
    let iam = TestIam::start().await;
    let app = students(&iam);
    let caller = token(&iam, json!({"anagraphic": "READ"}));
    let a = answer(&app, get_req("/unfilterable", &caller)).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.json()["code"], "INTERNAL");
    assert!(!a.text().contains("Marco"), "{}", a.text());
    let audit = capture.audit();
    let event = audit
        .iter()
        .find(|e| e.get("guard").map(String::as_str) == Some("field_filter"))
        .unwrap_or_else(|| panic!("no field_filter audit event: {audit:?}"));
    common::assert_audit_schema(event);
    assert!(
        event["reason"].contains("array directly in an array"),
        "{event:?}"
    );
}

#[tokio::test]
async fn a_route_without_an_entity_or_an_auth_layer_is_a_wiring_500() {
    let iam = TestIam::start().await;
    let caller = iam.mint(json!({"permissions": ["students.read"]}));

    // A permission requirement names no entity.
    let app = Router::new()
        .route(
            "/students/{id}",
            get(typed_one).route_layer(PermissionGuard::all_of(["students.read"])),
        )
        .layer(auth(&iam));
    let a = answer(&app, get_req("/students/s-1", &caller)).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", a.text());
    assert!(!a.text().contains("Marco"));

    // The filter's entity fills the gap.
    let app = Router::new()
        .route(
            "/students/{id}",
            get(typed_one)
                .route_layer(FieldFilterLayer::new().entity("students"))
                .route_layer(PermissionGuard::all_of(["students.read"])),
        )
        .layer(auth(&iam));
    let a = answer(&app, get_req("/students/s-1", &caller)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(
        a.json(),
        json!({"id": "s-1", "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-02T10:00:00Z"})
    );

    // No auth layer at all.
    let app = Router::new().route("/students/{id}", get(typed_one));
    let a = answer(&app, get_req("/students/s-1", &caller)).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.json()["code"], "INTERNAL");
    assert!(!a.text().contains("Marco"));
}

#[tokio::test]
async fn permissions_that_cannot_be_loaded_are_503() {
    let iam = TestIam::start().await;
    // No requirement guard ran: the view is the first to ask.
    let app = Router::new()
        .route("/students/{id}", get(typed_one))
        .layer(FieldFilterLayer::new().entity("students"))
        .layer(JwtAuthGuardLayer::new(iam.verifier()).permissions(Down));
    let a = answer(&app, get_req("/students/s-1", &iam.mint(json!({})))).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["code"], "IAM_UNAVAILABLE");
    assert!(!a.text().contains("Marco"));
}

#[tokio::test]
async fn a_super_user_under_the_bypass_gets_the_whole_value_audited_once() {
    let (capture, _guard) = common::capture();
    let iam = TestIam::start().await;
    let app = ProtectedResource::new("students")
        .get("/students/{id}", typed_one)
        .into_router()
        .layer(auth(&iam).super_user_bypass(true));
    let t = iam.mint(json!({ "is_super_user": true }));
    let a = answer(&app, get_req("/students/s-1", &t)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, serde_json::to_vec(&student(1)).unwrap());
    let bypasses = capture
        .audit()
        .into_iter()
        .filter(|e| {
            e.get("guard").map(String::as_str) == Some("field_filter")
                && e.get("outcome").map(String::as_str) == Some("bypass")
        })
        .count();
    assert_eq!(bypasses, 1);
}

#[tokio::test]
async fn head_advertises_the_typed_length_and_sends_no_body() {
    let iam = TestIam::start().await;
    let app = students(&iam);
    let caller = token(&iam, json!({"anagraphic": "READ"}));
    let get = answer(&app, get_req("/typed/s-1", &caller)).await;
    let head = Request::head("/typed/s-1")
        .header("authorization", format!("Bearer {caller}"))
        .body(Body::empty())
        .unwrap();
    let head = answer(&app, head).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(
        head.headers[header::CONTENT_LENGTH],
        get.body.len().to_string().as_str()
    );
}

#[tokio::test]
async fn a_typed_response_keeps_the_status_and_headers_the_handler_set() {
    async fn created(view: ReadView) -> Response {
        (
            StatusCode::CREATED,
            [(header::LOCATION, "/students/s-1")],
            view.json(&student(1)),
        )
            .into_response()
    }
    let iam = TestIam::start().await;
    let app = ProtectedResource::new("students")
        .get("/students/{id}", created)
        .into_router()
        .layer(auth(&iam));
    let caller = token(&iam, json!({"anagraphic": "READ"}));
    let a = answer(&app, get_req("/students/s-1", &caller)).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.headers[header::LOCATION], "/students/s-1");
    assert!(!a.text().contains("sensitive"));
}

#[tokio::test]
async fn a_router_wide_filter_outside_the_auth_layer_vouches_too() {
    let (counted, _guard) = counters();
    let iam = TestIam::start().await;
    let app = Router::new()
        .route(
            "/students/{id}",
            get(typed_one).route_layer(ScopeGuard::read("students")),
        )
        .layer(auth(&iam))
        .layer(FieldFilterLayer::new());
    let caller = token(&iam, json!({"anagraphic": "READ"}));
    let a = answer(&app, get_req("/students/s-1", &caller)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.text().contains("sensitive"), "{}", a.text());
    assert_eq!(passes(&counted), pass("serialized", 1));
}

#[tokio::test]
async fn the_view_filters_by_the_filter_nearest_the_handler() {
    let iam = TestIam::start().await;
    let caller = token(&iam, json!({"anagraphic": "READ"}));
    // No requirement on the route: the entity is the filter's own, so the
    // handler can tell which filter's configuration it was given.
    let entity = |view: ReadView| async move { view.entity().to_owned() };
    let route = || get(entity).route_layer(FieldFilterLayer::new().entity("teachers"));
    let cases = [
        (
            "both filters inside the auth layer",
            Router::new()
                .route("/x", route())
                .layer(FieldFilterLayer::new().entity("students"))
                .layer(auth(&iam)),
        ),
        (
            "the outer filter outside the auth layer",
            Router::new()
                .route("/x", route())
                .layer(auth(&iam))
                .layer(FieldFilterLayer::new().entity("students")),
        ),
    ];
    for (name, app) in cases {
        let a = answer(&app, get_req("/x", &caller)).await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.text());
        assert_eq!(a.text(), "teachers", "{name}");
    }
}
