//! The access matrix against the service it describes: every cell of the
//! school's matrix is the answer a real request through the school's
//! router gets (the same catalogue, guards and routes, in-process), for
//! every role alone, for callers with several roles and for a request
//! without a token; a bundle with every
//! kind of requirement agrees too. Then the diff of a catalogue change and
//! the escaping of hostile catalogue text.
#![cfg(feature = "test-util")]

mod common;

#[allow(dead_code)]
#[path = "../examples/school/users.rs"]
mod users;

#[allow(dead_code)]
#[path = "../examples/school/app.rs"]
mod app;

#[allow(dead_code)]
#[path = "../examples/school/catalogue.rs"]
mod catalogue;

#[allow(dead_code)]
#[path = "../examples/school/access_matrix.rs"]
mod school_matrix;

use axum::{http::Method, routing::get, Router};
use common::*;
use http::StatusCode;
use iam_guard::{
    access_matrix::{AccessMatrix, Change, Direction, MatrixDiff, Outcome, Route, RouteAccess},
    guard::protected::ProtectedResource,
    model::{Catalogue, PermissionRule, Requirement, TenantCatalogues},
    permissions::hosted_catalogue::{CatalogueFetcher, HostedCatalogueSource},
    test_util::TestIam,
    CatalogueSource, ErrorCode, JwtAuthGuardLayer, ScopeAccess,
};
use serde_json::{json, Value};

/// What one request got: its status and JSON `code`.
#[derive(Debug, Clone)]
struct Observed {
    row: String,
    route: String,
    status: StatusCode,
    code: Option<String>,
}

/// Every cell of `matrix` whose observation disagrees with it: an allowed
/// cell must be a 2xx from the handler, a refused one the code's status
/// and the code itself.
fn disagreements(matrix: &AccessMatrix, observed: &[Observed]) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut seen = 0;
    for row in matrix.rows() {
        for (route, expected) in matrix.routes().iter().zip(row.outcomes()) {
            let label = row.label();
            let Some(seen_here) = observed
                .iter()
                .find(|o| o.row == label && o.route == route.to_string())
            else {
                wrong.push(format!("{label} {route}: never requested"));
                continue;
            };
            seen += 1;
            let agrees = match expected {
                Outcome::Allowed => seen_here.status.is_success(),
                Outcome::Refused(code) => {
                    seen_here.status == code.status()
                        && seen_here.code.as_deref() == Some(code.as_str())
                }
            };
            if !agrees {
                wrong.push(format!(
                    "{label} {route}: matrix says {expected}, the router answered {} {:?}",
                    seen_here.status, seen_here.code
                ));
            }
        }
    }
    if seen != observed.len() {
        wrong.push(format!("{} requests for {seen} cells", observed.len()));
    }
    wrong
}

fn token_for(iam: &TestIam, roles: &[String]) -> String {
    // The demo data links `u-parent` to a child and `u-student` to a
    // record, so every role reaches a record it may see.
    iam.mint(json!({"sub": format!("u-{}", roles[0]), "tenantId": users::TENANT, "roles": roles}))
}

/// Sends every route of `matrix` for every row through `app()` (a fresh
/// router per row, so a DELETE leaves the next row its records): the
/// `{id}` is the first record the row's caller may list, and write bodies
/// are `{}`.
async fn observe(iam: &TestIam, matrix: &AccessMatrix, app: impl Fn() -> Router) -> Vec<Observed> {
    let mut observed = Vec::new();
    for row in matrix.rows() {
        let app = app();
        let token = match row.subject().roles() {
            [] => String::new(),
            roles => token_for(iam, roles),
        };
        let (_, _, list) = call_json(&app, to("GET", "/students", &token, &[])).await;
        let id = list["data"][0]["id"].as_str().unwrap_or("s-1").to_owned();
        for route in matrix.routes() {
            let uri = route.path().replace("{id}", &id);
            let (status, _, body) =
                call_json(&app, to(route.method().as_str(), &uri, &token, &[])).await;
            observed.push(Observed {
                row: row.label(),
                route: route.to_string(),
                status,
                code: body.get("code").and_then(Value::as_str).map(str::to_owned),
            });
        }
    }
    observed
}

/// The school's whole router as `main.rs` assembles it: the students
/// bundle, `/permissions` and `/health`, the RFC 9728 document,
/// `/metrics` and `/openapi.json`.
fn school_router(auth: JwtAuthGuardLayer) -> Router {
    let metadata = auth
        .protected_resource_metadata("http://127.0.0.1:3000")
        .build()
        .unwrap();
    let auth = auth.resource_metadata_url(metadata.metadata_url());
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    app::router(auth, app::Store::demo())
        .merge(metadata.router())
        .merge(app::metrics_route(metrics))
        .merge(app::openapi_route(&app::openapi()))
}

fn school_catalogues() -> TenantCatalogues {
    TenantCatalogues::from_json(&catalogue::school_catalogue().to_string()).unwrap()
}

/// A wrong cell must fail the comparison: flip one allowed and one
/// refused cell of `matrix` and count the disagreements.
fn assert_a_wrong_cell_is_caught(matrix: &AccessMatrix, observed: &[Observed]) {
    let allowed = observed.iter().position(|o| o.status.is_success()).unwrap();
    let refused = observed
        .iter()
        .position(|o| o.status == StatusCode::FORBIDDEN)
        .unwrap();
    let mut lying = observed.to_vec();
    lying[allowed].status = StatusCode::FORBIDDEN;
    lying[allowed].code = Some("INSUFFICIENT_SCOPE".into());
    // The right status with another code is still wrong.
    lying[refused].code = Some("PERMISSION_DENIED_NOT".into());
    let wrong = disagreements(matrix, &lying);
    assert_eq!(wrong.len(), 2, "{wrong:#?}");
}

#[tokio::test]
async fn every_cell_of_the_presets_matrix_is_what_the_router_answers() {
    let iam = TestIam::start().await;
    let catalogues = school_catalogues();
    // Two callers with several roles, compiled as one.
    let sets = [
        vec!["hr_secretary".to_owned(), "parent".to_owned()],
        vec!["external_staff".to_owned(), "accountant".to_owned()],
    ];
    let matrix = school_matrix::matrix(&catalogues, None, &sets);
    // The presets: the system roles, which every tenant has.
    let fixture = std::sync::Arc::new(Catalogue::students_fixture());
    assert_eq!(matrix.rows().len(), fixture.roles().len() + sets.len() + 1);
    let auth = || {
        JwtAuthGuardLayer::new(iam.verifier()).permissions(CatalogueSource::new(fixture.clone()))
    };
    let observed = observe(&iam, &matrix, || school_router(auth())).await;
    assert_eq!(observed.len(), matrix.cells());
    assert_eq!(matrix.cells(), 14 * school_matrix::routes().len());
    // The staff member who is also the accountant writes (financial).
    assert_eq!(
        matrix.outcome(
            "external_staff + accountant",
            &Method::PATCH,
            "/students/{id}"
        ),
        Some(Outcome::Allowed)
    );
    let wrong = disagreements(&matrix, &observed);
    assert!(wrong.is_empty(), "{wrong:#?}");

    // The matrix is not trivially right: it holds each kind of answer.
    let codes: std::collections::HashSet<_> = matrix
        .rows()
        .iter()
        .flat_map(|r| r.outcomes())
        .filter_map(|o| o.code())
        .collect();
    assert_eq!(
        codes,
        [
            ErrorCode::InvalidToken,
            ErrorCode::InsufficientScope,
            ErrorCode::ActionNotPermitted
        ]
        .into()
    );
    assert!(matrix.allowed_cells() > 0 && matrix.refused_cells() > 0);
    assert_a_wrong_cell_is_caught(&matrix, &observed);
}

#[tokio::test]
async fn the_tenant_matrix_is_what_the_service_answers_with_the_catalogue_from_the_iam() {
    // As `cargo run --example school` starts it: the layered catalogue
    // served by the IAM, each caller compiled against its tenant's roles.
    let iam = TestIam::start().await;
    iam.set_catalogue(catalogue::school_catalogue());
    let fetcher = CatalogueFetcher::builder()
        .ttl(std::time::Duration::from_secs(3600))
        .url(&iam.catalogue_url())
        .unwrap();
    fetcher.warm_up().await.unwrap();
    let catalogues = school_catalogues();
    let matrix = school_matrix::matrix(&catalogues, Some(users::TENANT), &[]);
    let support = matrix
        .row(catalogue::CUSTOM_ROLE)
        .expect("the school's own role");
    assert_eq!(
        support.name(),
        Some("Support teacher (from Internal teacher)")
    );
    let auth = || {
        JwtAuthGuardLayer::new(iam.verifier())
            .permissions(HostedCatalogueSource::new(fetcher.clone()))
    };
    let observed = observe(&iam, &matrix, || school_router(auth())).await;
    let wrong = disagreements(&matrix, &observed);
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(observed.len(), 13 * school_matrix::routes().len());
    assert_a_wrong_cell_is_caught(&matrix, &observed);
}

/// The fixture with a flat permission for the principal and a module for
/// the accountant, so that those requirements split the roles too.
fn catalogue_with_permissions() -> Catalogue {
    let mut doc: Value =
        serde_json::from_str(include_str!("../fixtures/students_catalogue.json")).unwrap();
    for role in doc["roles"].as_array_mut().unwrap() {
        match role["id"].as_str().unwrap() {
            "principal" => role["permissions"] = json!(["reports.view"]),
            "accountant" => role["modules"] = json!(["finance"]),
            _ => {}
        }
    }
    Catalogue::from_json(&doc.to_string()).unwrap()
}

async fn ok() -> &'static str {
    "ok"
}

#[tokio::test]
async fn every_kind_of_requirement_agrees_with_its_guard() {
    let iam = TestIam::start().await;
    let catalogue = std::sync::Arc::new(catalogue_with_permissions());
    let bundle = || {
        ProtectedResource::explicit("students")
            .route_with(
                Method::GET,
                "/students",
                Requirement::scopes("students", ScopeAccess::Read),
                ok,
            )
            .route_with(
                Method::POST,
                "/students",
                Requirement::action("students", "create"),
                ok,
            )
            .route_with(
                Method::GET,
                "/reports",
                Requirement::all_of(["reports.view"]),
                ok,
            )
            .route_with(Method::GET, "/finance", Requirement::module("finance"), ok)
            .route_with(
                Method::GET,
                "/staff-room",
                Requirement::roles(PermissionRule::AnyOf(vec![
                    "internal_teacher".into(),
                    "external_teacher".into(),
                ])),
                ok,
            )
            // Explicit mode without a requirement: denied to everyone.
            .route(Method::PUT, "/students", ok)
    };
    let matrix = AccessMatrix::builder(&catalogue)
        .routes(bundle().report())
        .route(Route::new(Method::GET, "/health", RouteAccess::Public))
        .anonymous()
        .build();
    let app = || {
        let guarded = bundle().into_router().layer(
            JwtAuthGuardLayer::new(iam.verifier())
                .permissions(CatalogueSource::new(catalogue.clone())),
        );
        Router::new().route("/health", get(ok)).merge(guarded)
    };
    let observed = observe(&iam, &matrix, app).await;
    let wrong = disagreements(&matrix, &observed);
    assert!(wrong.is_empty(), "{wrong:#?}");
    let get = |row: &str, method: Method, path: &str| matrix.outcome(row, &method, path).unwrap();
    assert_eq!(get("principal", Method::GET, "/reports"), Outcome::Allowed);
    assert_eq!(get("accountant", Method::GET, "/finance"), Outcome::Allowed);
    assert_eq!(
        get("accountant", Method::GET, "/reports"),
        Outcome::Refused(ErrorCode::PermissionDenied)
    );
    assert_eq!(
        get("external_teacher", Method::GET, "/staff-room"),
        Outcome::Allowed
    );
    assert_eq!(
        get("admin", Method::GET, "/staff-room"),
        Outcome::Refused(ErrorCode::RoleRequired)
    );
    assert_eq!(
        get("admin", Method::PUT, "/students"),
        Outcome::Refused(ErrorCode::PermissionDenied)
    );
    assert_a_wrong_cell_is_caught(&matrix, &observed);
}

// --- diff -----------------------------------------------------------------

fn fixture_doc() -> Value {
    serde_json::from_str(include_str!("../fixtures/students_catalogue.json")).unwrap()
}

fn role_mut<'a>(doc: &'a mut Value, id: &str) -> &'a mut Value {
    doc["roles"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["id"] == id)
        .unwrap()
}

fn school_matrix_of(doc: &Value) -> AccessMatrix {
    let catalogues = TenantCatalogues::from_json(&doc.to_string()).unwrap();
    school_matrix::matrix(&catalogues, None, &[])
}

#[test]
fn identical_catalogues_change_nothing() {
    let a = school_matrix_of(&fixture_doc());
    let b = school_matrix_of(&fixture_doc());
    let diff = MatrixDiff::between(&a, &b);
    assert!(diff.is_empty(), "{:#?}", diff.changes());
    assert_eq!(
        diff.to_markdown(),
        "# Access changes\n\nNo access changes: every role can do exactly what it could.\n"
    );
    assert_eq!(diff.to_csv(), "role,direction,what,before,after\r\n");
}

#[test]
fn a_catalogue_change_lists_exactly_the_grants_gained_and_lost() {
    let before = fixture_doc();
    let mut after = fixture_doc();
    // The external teacher loses WRITE on its only writable group...
    role_mut(&mut after, "external_teacher")["scopes"]["students"]["scoring"] = json!("READ");
    // ...a new action, granted to HR, which meets its requirement...
    after["entities"][0]["actions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "archive", "requires": {"anagraphic": "WRITE"}}));
    role_mut(&mut after, "hr_secretary")["actions"]
        .as_array_mut()
        .unwrap()
        .push(json!("students.archive"));
    // ...HR gets delete's missing WRITE on sensitive, so create and delete
    // become effective and nothing else moves...
    role_mut(&mut after, "hr_secretary")["scopes"]["students"]["sensitive"] = json!("WRITE");
    // ...one role goes, one comes.
    after["roles"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["id"] != "external_staff");
    after["roles"].as_array_mut().unwrap().push(json!({
        "id": "nurse", "name": "Nurse", "scopes": {"students": {"sensitive": "WRITE"}}
    }));

    let diff = MatrixDiff::between(&school_matrix_of(&before), &school_matrix_of(&after));
    let lines: Vec<String> = diff.changes().iter().map(Change::to_string).collect();
    // External staff are refused the three write routes; the nurse, who
    // writes, only create and delete.
    let routes = school_matrix::routes().len();
    assert_eq!(
        lines,
        [
            "gained: hr_secretary: POST /students: refused ACTION_NOT_PERMITTED -> allowed",
            "gained: hr_secretary: DELETE /students/{id}: refused ACTION_NOT_PERMITTED -> allowed",
            "gained: hr_secretary: students.sensitive: READ -> WRITE",
            "gained: hr_secretary: action students.create: granted, not effective -> effective",
            "gained: hr_secretary: action students.delete: granted, not effective -> effective",
            "gained: hr_secretary: action students.archive: none -> effective",
            "lost: external_teacher: PATCH /students/{id}: allowed -> refused INSUFFICIENT_SCOPE",
            "lost: external_teacher: students.scoring: WRITE -> READ",
            &format!(
                "lost: external_staff: role removed: {} of {routes} routes allowed -> absent",
                routes - 3
            ),
            &format!(
                "gained: nurse: role added: absent -> {} of {routes} routes allowed",
                routes - 2
            ),
        ]
    );
    assert_eq!(diff.count(Direction::Gained), 7);
    assert_eq!(diff.count(Direction::Lost), 3);

    let markdown = diff.to_markdown();
    assert!(markdown.starts_with("# Access changes\n\n10 changes: 7 gained, 3 lost, 0 changed.\n"));
    assert!(markdown.contains(
        "| external\\_teacher | ➖ lost | PATCH /students/{id} | ✅ | ❌ INSUFFICIENT\\_SCOPE |"
    ), "{markdown}");
    assert!(markdown.contains("| external\\_teacher | ➖ lost | students.scoring | R/W | R |"));
    let csv = diff.to_csv();
    assert_eq!(csv.lines().count(), 11);
    assert!(csv.contains(
        "external_teacher,lost,PATCH /students/{id},allowed,refused INSUFFICIENT_SCOPE\r\n"
    ));

    // And back: every gain is a loss.
    let back = MatrixDiff::between(&school_matrix_of(&after), &school_matrix_of(&before));
    assert_eq!(back.count(Direction::Gained), 3);
    assert_eq!(back.count(Direction::Lost), 7);
}

#[test]
fn a_grant_that_stays_ineffective_is_a_change_not_a_gain() {
    let before = fixture_doc();
    let mut after = fixture_doc();
    role_mut(&mut after, "principal")["actions"] = json!(["students.create"]);
    let diff = MatrixDiff::between(&school_matrix_of(&before), &school_matrix_of(&after));
    let lines: Vec<String> = diff.changes().iter().map(Change::to_string).collect();
    assert_eq!(
        lines,
        ["changed: principal: action students.create: none -> granted, not effective"]
    );
}

// --- escaping ---------------------------------------------------------------

const HOSTILE_ID: &str = "<b>|x,\"q\"";
const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)> | a, \"b\"";
const FORMULA_NAME: &str = "=HYPERLINK(\"http://evil.example\",\"x\")";

fn hostile_catalogue() -> Catalogue {
    let mut doc = fixture_doc();
    let roles = doc["roles"].as_array_mut().unwrap();
    roles.push(json!({
        "id": HOSTILE_ID, "name": HOSTILE_NAME,
        "scopes": {"students": {"anagraphic": "WRITE"}}
    }));
    roles.push(json!({"id": "formula", "name": FORMULA_NAME}));
    Catalogue::from_json(&doc.to_string()).unwrap()
}

fn hostile_matrix() -> AccessMatrix {
    AccessMatrix::builder(&hostile_catalogue())
        .routes(school_matrix::routes())
        .build()
}

/// The pipes of a Markdown table row that separate cells (not `\|`).
fn cell_separators(line: &str) -> usize {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\'))
        .count()
}

#[test]
fn hostile_role_text_stays_text_in_markdown() {
    let markdown = hostile_matrix().to_markdown();
    assert!(!markdown.contains('<'), "{markdown}");
    let admin = markdown
        .lines()
        .find(|l| l.starts_with("| admin | Admin |"))
        .unwrap();
    let hostile = markdown
        .lines()
        .find(|l| l.contains("&lt;img src=x onerror=alert(1)>"))
        .expect("the name, spelled as entities");
    // Same number of cells as any other row.
    assert_eq!(cell_separators(hostile), cell_separators(admin));
    assert!(
        hostile.starts_with("| &lt;b>\\|x,\"q\" | &lt;img src=x onerror=alert(1)> \\| a, \"b\" |"),
        "{hostile}"
    );
}

#[test]
fn hostile_role_text_stays_text_in_html() {
    let html = hostile_matrix().to_html();
    assert!(!html.contains("<img"), "an injected element");
    assert!(!html.contains("<b>|"), "an injected element");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; | a, &quot;b&quot;"));
    assert!(html.contains("data-label=\"&lt;b&gt;|x,&quot;q&quot;\""));
    // Only the page's own script and style, allowed by hash.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("script-src 'sha256-"));
    for external in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(external), "{external}");
    }
}

/// RFC 4180 records, for checking what a spreadsheet would read.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CRLF line ends");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "a last record without CRLF"
    );
    records
}

#[test]
fn hostile_role_text_stays_one_field_in_csv() {
    let matrix = hostile_matrix();
    let records = parse_csv(&matrix.to_csv());
    assert_eq!(records.len(), 1 + matrix.cells());
    assert_eq!(
        records[0],
        [
            "role",
            "name",
            "method",
            "path",
            "requirement",
            "outcome",
            "status",
            "code"
        ]
    );
    assert!(records.iter().all(|r| r.len() == 8));
    let hostile: Vec<_> = records.iter().filter(|r| r[0] == HOSTILE_ID).collect();
    assert_eq!(hostile.len(), matrix.routes().len());
    assert!(hostile.iter().all(|r| r[1] == HOSTILE_NAME));
    // PATCH needs WRITE on any group: its anagraphic WRITE passes.
    assert!(hostile
        .iter()
        .any(|r| r[2] == "PATCH" && r[5] == "allowed" && r[6].is_empty()));
    let formula: Vec<_> = records.iter().filter(|r| r[0] == "formula").collect();
    assert!(formula.iter().all(|r| r[1] == format!("'{FORMULA_NAME}")));
    assert!(formula.iter().any(|r| r[2] == "GET"
        && r[5] == "refused"
        && r[6] == "403"
        && r[7] == "INSUFFICIENT_SCOPE"));
}

/// The school lists its routes outside the bundle by hand twice: for this
/// matrix (`access_matrix.rs`) and for its OpenAPI document (`app.rs`).
/// They must name the same routes, so that one added to either and
/// forgotten in the other shows here rather than silently missing.
#[test]
fn the_matrix_lists_every_operation_of_the_schools_openapi_document() {
    let doc = serde_json::to_value(app::openapi()).unwrap();
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|k| {
                    ["get", "put", "post", "delete", "patch", "head", "options"]
                        .contains(&k.as_str())
                })
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut listed: Vec<(String, String)> = school_matrix::routes()
        .iter()
        .map(|r| (r.method().as_str().to_owned(), r.path().to_owned()))
        .collect();
    listed.sort();
    assert_eq!(listed, documented);
}
