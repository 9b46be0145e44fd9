//! `GET /permissions` with `customFieldDefinitions`: each entity lists the
//! custom fields of the scopes the caller can READ, from the catalogue
//! that declares them or from definitions the service passes in, and
//! nothing about a field in a scope the caller cannot read.
#![cfg(feature = "test-util")]

mod common;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::Router;
use common::*;
use http::StatusCode;
use iam_guard::{
    model::{
        custom_fields::{CustomFieldDef, CustomFieldDefinitions, EntityCustomFields, FieldType},
        Catalogue, CompiledPermissions,
    },
    permissions::source::{CatalogueSource, PermissionFuture, PermissionSource},
    test_util::TestIam,
    JwtAuthGuardLayer, PermissionsEndpoint, Principal,
};
use serde_json::{json, Value};

/// Two entities with custom fields, one in the default `others` scope, and
/// roles that read some scopes, all, or nothing of `students`.
const CATALOGUE: &str = r#"{
  "entities": [{
    "key": "students",
    "scopes": [
      { "key": "anagraphic", "fields": ["firstName"] },
      { "key": "sensitive", "fields": ["disabilityInfo"] },
      { "key": "others" }
    ],
    "customFieldDefinitions": [
      { "key": "nickname", "label": "Nickname", "scope": "anagraphic", "type": "TEXT", "sortOrder": 2 },
      { "key": "shoe_size", "label": "Shoe size", "scope": "anagraphic", "type": "NUMBER", "sortOrder": 1 },
      { "key": "blood_type", "label": "Blood Type", "scope": "sensitive", "type": "SELECT",
        "options": ["A+", "0-"], "isRequired": true },
      { "key": "notes", "label": "Notes", "type": "TEXT" }
    ]
  }, {
    "key": "teachers",
    "scopes": [{ "key": "profile" }, { "key": "payroll" }],
    "customFieldDefinitions": [
      { "key": "parking_spot", "scope": "payroll", "type": "TEXT" }
    ]
  }],
  "roles": [
    { "id": "teacher", "name": "Teacher",
      "scopes": { "students": { "anagraphic": "READ" }, "teachers": { "profile": "WRITE" } } },
    { "id": "nurse", "name": "Nurse",
      "scopes": { "students": { "sensitive": "WRITE", "others": "READ" } } },
    { "id": "admin", "name": "Admin",
      "scopes": { "students": { "anagraphic": "WRITE", "sensitive": "WRITE", "others": "WRITE" },
                  "teachers": { "profile": "WRITE", "payroll": "WRITE" } } },
    { "id": "janitor", "name": "Janitor" }
  ]
}"#;

/// Counts loads, so a request is seen to compile permissions once.
struct Counting {
    inner: CatalogueSource,
    loads: Arc<AtomicUsize>,
}

impl PermissionSource for Counting {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(principal)
    }
}

fn app(iam: &TestIam, endpoint: PermissionsEndpoint) -> (Router, Arc<AtomicUsize>) {
    let catalogue = Catalogue::from_json(CATALOGUE).expect("the test catalogue is valid");
    let loads = Arc::new(AtomicUsize::new(0));
    let source = Counting {
        inner: CatalogueSource::new(catalogue),
        loads: loads.clone(),
    };
    let router = Router::new()
        .route("/permissions", endpoint.into_route())
        .layer(JwtAuthGuardLayer::new(iam.verifier()).permissions(source));
    (router, loads)
}

fn catalogue_endpoint() -> PermissionsEndpoint {
    PermissionsEndpoint::new().catalogue(&Catalogue::from_json(CATALOGUE).unwrap())
}

fn keys(definitions: &Value) -> Vec<&str> {
    definitions
        .as_array()
        .unwrap_or_else(|| panic!("an array: {definitions}"))
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn each_caller_sees_the_definitions_of_the_scopes_it_reads() {
    let iam = TestIam::start().await;
    let (app, loads) = app(&iam, catalogue_endpoint());
    let token = |role: &str| iam.mint(json!({"sub": format!("{role}-1"), "roles": [role]}));

    // The teacher reads anagraphic only: its two fields, in sort order,
    // and nothing of sensitive or others. Of teachers it reads profile,
    // which has no field: the key is there, empty.
    let (status, _, body) = get(&app, &token("teacher")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["students"]["customFieldDefinitions"],
        json!([
            {"key": "shoe_size", "label": "Shoe size", "scope": "anagraphic",
             "type": "NUMBER", "isRequired": false, "sortOrder": 1},
            {"key": "nickname", "label": "Nickname", "scope": "anagraphic",
             "type": "TEXT", "isRequired": false, "sortOrder": 2}
        ])
    );
    assert_eq!(body["teachers"]["customFieldDefinitions"], json!([]));
    assert!(!body.to_string().contains("blood_type"), "{body}");
    assert!(!body.to_string().contains("parking_spot"), "{body}");

    // The nurse reads sensitive and others (the default scope of `notes`).
    let (_, _, body) = get(&app, &token("nurse")).await;
    assert_eq!(
        keys(&body["students"]["customFieldDefinitions"]),
        ["notes", "blood_type"]
    );
    assert_eq!(
        body["students"]["customFieldDefinitions"][1],
        json!({"key": "blood_type", "label": "Blood Type", "scope": "sensitive", "type": "SELECT",
               "options": ["A+", "0-"], "isRequired": true, "sortOrder": 0})
    );
    assert_eq!(
        body["students"]["customFieldDefinitions"][0]["scope"],
        "others"
    );
    assert!(
        body.get("teachers").is_none(),
        "no grant on teachers: {body}"
    );

    // The admin reads everything.
    let (_, _, body) = get(&app, &token("admin")).await;
    assert_eq!(
        keys(&body["students"]["customFieldDefinitions"]),
        ["shoe_size", "nickname", "notes", "blood_type"]
    );
    assert_eq!(
        keys(&body["teachers"]["customFieldDefinitions"]),
        ["parking_spot"]
    );
    // The scopes and actions are those of the plain document.
    assert_eq!(body["students"]["scopes"]["sensitive"], "WRITE");
    assert_eq!(body["students"]["actions"], json!({}));

    // A caller with no grant at all: no entity, so no definition.
    let (status, _, body) = get(&app, &token("janitor")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({}));

    assert_eq!(
        loads.load(Ordering::SeqCst),
        4,
        "one permission load per request"
    );
}

#[tokio::test]
async fn definitions_passed_in_by_the_service_replace_the_catalogue() {
    let iam = TestIam::start().await;
    let fields = EntityCustomFields::new().with(
        "students",
        CustomFieldDefinitions::new([
            CustomFieldDef::new("enrolled_on", "anagraphic", FieldType::Date).label("Enrolled on"),
            CustomFieldDef::new("allergy", "sensitive", FieldType::Boolean).required(),
        ]),
    );
    let endpoint = catalogue_endpoint().custom_fields(fields);
    let (app, _) = app(&iam, endpoint);
    let teacher = iam.mint(json!({"sub": "t-1", "roles": ["teacher"]}));
    let (_, _, body) = get(&app, &teacher).await;
    assert_eq!(
        body["students"]["customFieldDefinitions"],
        json!([{"key": "enrolled_on", "label": "Enrolled on", "scope": "anagraphic",
                "type": "DATE", "isRequired": false, "sortOrder": 0}])
    );
    // Entities the service gave no definitions to list none.
    assert!(body["teachers"].get("customFieldDefinitions").is_none());
}

#[tokio::test]
async fn the_endpoint_answers_get_only_never_caches_and_needs_a_caller() {
    let iam = TestIam::start().await;
    let (app, loads) = app(&iam, catalogue_endpoint());
    let teacher = iam.mint(json!({"sub": "t-1", "roles": ["teacher"]}));

    let res = send(&app, to("GET", "/permissions", &teacher, &[])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "private, no-store");

    let res = send(&app, to("POST", "/permissions", &teacher, &[])).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);

    let (status, challenge, body) = call_json(&app, to("GET", "/permissions", "", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_token");
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "only the admitted GET loaded"
    );
}

#[test]
fn the_document_is_the_plain_one_plus_the_definitions() {
    let catalogue = Catalogue::from_json(CATALOGUE).unwrap();
    let perms: CompiledPermissions = catalogue.compile_roles(["teacher"]);
    let endpoint = PermissionsEndpoint::new().catalogue(&catalogue);
    let mut with = endpoint.document(&perms);
    for entity in ["students", "teachers"] {
        with[entity]
            .as_object_mut()
            .unwrap()
            .remove("customFieldDefinitions")
            .expect("listed");
    }
    assert_eq!(with, perms.to_document());
    // And read back, the definitions are ignored: the same permissions.
    let back = CompiledPermissions::from_document(&endpoint.document(&perms)).unwrap();
    assert_eq!(back, perms);
}

async fn get(app: &Router, token: &str) -> (StatusCode, Option<String>, Value) {
    call_json(app, to("GET", "/permissions", token, &[])).await
}
