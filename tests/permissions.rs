//! Where permissions come from and what they open, through requests:
//! multi-role union, temporal role assignments, action scope requirements,
//! flat permissions and modules from claims (seed 004 webservices and
//! organizations), the super-user bypass and its audit, the `Permissions`
//! and `RecordAccess` extractors, and the permissions endpoint.
#![cfg(feature = "test-util")]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{routing::get, Extension, Json, Router};
use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use iam_guard::{
    extract::{permissions_endpoint, Permissions},
    model::Catalogue,
    permissions::source::{CatalogueSource, ClaimsSource},
    record_access::{Access, RecordAccess, RecordAccessPolicy},
    test_util::TestIam,
    ActionGuard, JwtAuthGuardLayer, PermissionGuard, ScopeGuard,
};
use serde_json::{json, Value};
use tower::ServiceExt;

const DAY: u64 = 86_400;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A small catalogue for what the preset roles cannot show: two roles that
/// only together meet an action's requirements, and a role granted
/// `create` without the WRITE access `create` requires.
const SMALL_CATALOGUE: &str = r#"{
  "entities": [{
    "key": "students",
    "scopes": [
      { "key": "anagraphic", "fields": ["firstName"] },
      { "key": "sensitive", "fields": ["disabilityInfo"] },
      { "key": "scoring", "fields": ["grades"] }
    ],
    "actions": [
      { "key": "create", "requires": { "anagraphic": "WRITE", "sensitive": "WRITE" } },
      { "key": "view_file", "requires": { "anagraphic": "READ", "sensitive": "READ" } }
    ]
  }],
  "roles": [
    { "id": "teacher", "name": "Teacher",
      "scopes": { "students": { "anagraphic": "READ", "scoring": "WRITE" } },
      "actions": ["students.view_file"] },
    { "id": "nurse", "name": "Nurse",
      "scopes": { "students": { "sensitive": "READ" } },
      "actions": ["students.view_file"] },
    { "id": "clerk", "name": "Clerk",
      "scopes": { "students": { "anagraphic": "WRITE", "sensitive": "READ" } },
      "actions": ["students.create"] },
    { "id": "medic", "name": "Medic",
      "scopes": { "students": { "sensitive": "WRITE" } } },
    { "id": "registrar", "name": "Registrar",
      "scopes": { "students": { "anagraphic": "WRITE", "sensitive": "WRITE" } },
      "actions": ["students.create"] }
  ]
}"#;

async fn ok() -> &'static str {
    "ok"
}

/// `{scope: level}` of `students`, as a handler sees them.
async fn student_scopes(perms: Permissions) -> Json<Value> {
    Json(json!(perms.scopes().get("students")))
}

/// Routes over the `students` entity, behind `auth`.
fn students_app(auth: JwtAuthGuardLayer) -> Router {
    Router::new()
        .route(
            "/students",
            get(student_scopes).route_layer(ScopeGuard::read("students")),
        )
        .route(
            "/students/edit",
            get(ok).route_layer(ScopeGuard::write("students")),
        )
        .route(
            "/students/create",
            get(ok).route_layer(ActionGuard::new("students", "create")),
        )
        .route(
            "/students/file",
            get(ok).route_layer(ActionGuard::new("students", "view_file")),
        )
        .route("/permissions", get(permissions_endpoint))
        .layer(auth)
}

fn small_catalogue_app(iam: &TestIam) -> Router {
    let catalogue = Catalogue::from_json(SMALL_CATALOGUE).expect("the small catalogue is valid");
    students_app(
        JwtAuthGuardLayer::new(iam.verifier()).permissions(CatalogueSource::new(catalogue)),
    )
}

fn fixture_app(iam: &TestIam) -> Router {
    students_app(
        JwtAuthGuardLayer::new(iam.verifier())
            .permissions(CatalogueSource::new(Catalogue::students_fixture())),
    )
}

async fn get_json(app: &Router, uri: &str, token: &str) -> (StatusCode, Option<String>, Value) {
    call_json(app, to("GET", uri, token, &[])).await
}

// ---------------------------------------------------------------- union

#[tokio::test]
async fn teacher_plus_nurse_gets_both_scopes_and_the_joint_action() {
    let iam = TestIam::start().await;
    let app = small_catalogue_app(&iam);
    let teacher = iam.mint(json!({"sub": "t-1", "roles": ["teacher"]}));
    let nurse = iam.mint(json!({"sub": "n-1", "roles": ["nurse"]}));
    let both = iam.mint(json!({"sub": "tn-1", "roles": ["teacher", "nurse"]}));

    let (status, _, body) = get_json(&app, "/students", &teacher).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"anagraphic": "READ", "scoring": "WRITE"}));
    let (status, _, body) = get_json(&app, "/students", &nurse).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"sensitive": "READ"}));
    let (status, _, body) = get_json(&app, "/students", &both).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"anagraphic": "READ", "sensitive": "READ", "scoring": "WRITE"})
    );

    // `view_file` needs READ on anagraphic AND sensitive: neither role alone
    // has both, the union does.
    for (token, who) in [(&teacher, "teacher"), (&nurse, "nurse")] {
        let res = get_json(&app, "/students/file", token).await;
        assert_forbidden(&res, "ACTION_NOT_PERMITTED", who);
    }
    let (status, _, body) = get_json(&app, "/students/file", &both).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The write gate opens for the union because the teacher writes scoring;
    // the nurse alone reads only.
    assert_eq!(
        get_json(&app, "/students/edit", &both).await.0,
        StatusCode::OK
    );
    let res = get_json(&app, "/students/edit", &nurse).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "nurse edit");
}

#[tokio::test]
async fn union_keeps_the_highest_level_per_scope() {
    let iam = TestIam::start().await;
    let app = small_catalogue_app(&iam);
    // clerk: anagraphic WRITE, sensitive READ; nurse: sensitive READ;
    // medic: sensitive WRITE.
    let token = iam.mint(json!({"sub": "u-1", "roles": ["nurse", "clerk", "medic"]}));
    let (status, _, body) = get_json(&app, "/students", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"anagraphic": "WRITE", "sensitive": "WRITE"}));
}

// ---------------------------------------------------- action requirements

#[tokio::test]
async fn granted_action_without_the_required_writes_is_not_permitted() {
    let iam = TestIam::start().await;
    let app = small_catalogue_app(&iam);
    // clerk is granted create but only READs sensitive.
    let clerk = iam.mint(json!({"sub": "c-1", "roles": ["clerk"]}));
    let res = get_json(&app, "/students/create", &clerk).await;
    assert_forbidden(&res, "ACTION_NOT_PERMITTED", "clerk");
    // ... though the clerk does pass the WRITE entity gate.
    assert_eq!(
        get_json(&app, "/students/edit", &clerk).await.0,
        StatusCode::OK
    );

    // medic holds the WRITE access but no grant of create.
    let medic = iam.mint(json!({"sub": "m-1", "roles": ["medic"]}));
    let res = get_json(&app, "/students/create", &medic).await;
    assert_forbidden(&res, "ACTION_NOT_PERMITTED", "medic");

    // Granted and required access met: by one role, or across two.
    for roles in [json!(["registrar"]), json!(["clerk", "medic"])] {
        let token = iam.mint(json!({"sub": "r-1", "roles": roles}));
        let (status, _, body) = get_json(&app, "/students/create", &token).await;
        assert_eq!(status, StatusCode::OK, "{roles}: {body}");
    }
}

#[tokio::test]
async fn preset_hr_secretary_cannot_create_without_write_on_sensitive() {
    let iam = TestIam::start().await;
    let app = fixture_app(&iam);
    let hr = iam.mint(json!({"sub": "hr-1", "roles": ["hr_secretary"]}));
    let res = get_json(&app, "/students/create", &hr).await;
    assert_forbidden(&res, "ACTION_NOT_PERMITTED", "hr_secretary");
    let admin = iam.mint(json!({"sub": "a-1", "roles": ["admin"]}));
    assert_eq!(
        get_json(&app, "/students/create", &admin).await.0,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------- temporal

fn substitute(assignments: Value) -> Value {
    json!({"sub": "sub-1", "tenantId": "school-1", "role_assignments": assignments})
}

#[tokio::test]
async fn expired_substitute_role_grants_nothing_and_a_current_one_does() {
    let iam = TestIam::start().await;
    let app = fixture_app(&iam);
    let now = now();

    let expired = iam.mint(substitute(json!([{
        "role": "internal_teacher",
        "validFrom": now - 90 * DAY,
        "validUntil": now - DAY,
    }])));
    for uri in ["/students", "/students/edit"] {
        let res = get_json(&app, uri, &expired).await;
        assert_forbidden(&res, "INSUFFICIENT_SCOPE", &format!("expired {uri}"));
    }

    let current = iam.mint(substitute(json!([{
        "role": "internal_teacher",
        "validFrom": now - DAY,
        "validUntil": now + 90 * DAY,
    }])));
    let (status, _, body) = get_json(&app, "/students", &current).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["attendance"], "WRITE");
    assert_eq!(
        get_json(&app, "/students/edit", &current).await.0,
        StatusCode::OK
    );

    let not_yet = iam.mint(substitute(json!([{
        "role": "internal_teacher",
        "validFrom": now + DAY,
    }])));
    let res = get_json(&app, "/students", &not_yet).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "not yet valid");
}

#[tokio::test]
async fn only_the_active_assignments_of_a_mix_count() {
    let iam = TestIam::start().await;
    let app = fixture_app(&iam);
    let now = now();
    let token = iam.mint(substitute(json!([
        {"role": "external_staff"},
        {"role": "admin", "validFrom": now - 30 * DAY, "validUntil": now - 1},
    ])));
    let (status, _, body) = get_json(&app, "/students", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"anagraphic": "READ"}));
    let res = get_json(&app, "/students/create", &token).await;
    assert_forbidden(&res, "ACTION_NOT_PERMITTED", "expired admin");
}

#[tokio::test]
async fn role_assignments_claim_takes_precedence_over_the_roles_claim() {
    let iam = TestIam::start().await;
    let app = fixture_app(&iam);
    let now = now();
    // The IAM states the admin role expired; the plain `roles` list does
    // not revive it.
    let mut claims = substitute(json!([
        {"role": "admin", "validUntil": now - DAY},
    ]));
    claims["roles"] = json!(["admin"]);
    let token = iam.mint(claims);
    let res = get_json(&app, "/students", &token).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "expired admin in roles too");
}

#[tokio::test]
async fn unreadable_or_snake_case_bounds_never_make_an_assignment_permanent() {
    let iam = TestIam::start().await;
    let app = fixture_app(&iam);
    let now = now();
    // A bound the source cannot read must not be dropped, leaving an
    // open-ended (permanent) admin behind: the assignment is ignored.
    for assignment in [
        json!({"role": "admin", "validUntil": "2020-01-01T00:00:00Z"}),
        json!({"role": "admin", "validUntil": -1}),
        json!({"role": "admin", "validUntil": 1.5}),
        json!({"role": "admin", "validFrom": "2020-01-01", "validUntil": now + DAY}),
        json!({"role": "admin", "validUntil": null, "validFrom": {"at": 0}}),
        json!({"role": ["admin"]}),
        json!("admin"),
    ] {
        let token = iam.mint(substitute(json!([assignment])));
        let res = get_json(&app, "/students", &token).await;
        assert_forbidden(&res, "INSUFFICIENT_SCOPE", &assignment.to_string());
    }
    // The model accepts `valid_from`/`valid_until` too: an expired window in
    // that spelling is expired, not absent.
    let token = iam.mint(substitute(json!([
        {"role": "admin", "valid_from": now - 30 * DAY, "valid_until": now - DAY},
    ])));
    let res = get_json(&app, "/students", &token).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "snake_case expired");
    let token = iam.mint(substitute(json!([
        {"role": "internal_staff", "valid_from": now - DAY, "valid_until": now + DAY},
    ])));
    assert_eq!(get_json(&app, "/students", &token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_role_assignments_claim_of_the_wrong_shape_grants_nothing() {
    let iam = TestIam::start().await;
    let app = fixture_app(&iam);
    // The token has the claim, so it is the list of assignments; one that
    // is not a list holds none, rather than falling back to `roles`.
    for assignments in [json!({"role": "admin"}), json!("admin"), json!(1)] {
        let mut claims = substitute(assignments.clone());
        claims["roles"] = json!(["admin"]);
        let token = iam.mint(claims);
        let res = get_json(&app, "/students", &token).await;
        assert_forbidden(&res, "INSUFFICIENT_SCOPE", &assignments.to_string());
    }
    // An empty list is no assignment at all.
    let mut claims = substitute(json!([]));
    claims["roles"] = json!(["admin"]);
    let res = get_json(&app, "/students", &iam.mint(claims)).await;
    assert_forbidden(&res, "INSUFFICIENT_SCOPE", "empty list");
}

// ------------------------------------------------ flat permissions, modules

fn permission_app(auth: JwtAuthGuardLayer) -> Router {
    Router::new()
        .route(
            "/regions/all",
            get(ok).route_layer(PermissionGuard::all_of([
                "inventory.regions.view",
                "inventory.regions.update",
            ])),
        )
        .route(
            "/regions/any",
            get(ok).route_layer(PermissionGuard::any_of([
                "inventory.regions.delete",
                "inventory.regions.view",
            ])),
        )
        .route(
            "/finance",
            get(ok).route_layer(PermissionGuard::module("finance")),
        )
        .route(
            "/users",
            get(ok).route_layer(PermissionGuard::all_of(["list_users"])),
        )
        .route(
            "/me/email",
            get(ok).route_layer(PermissionGuard::all_of(["update_user_email"])),
        )
        .route(
            "/ghost",
            get(ok).route_layer(PermissionGuard::all_of(["ghost"])),
        )
        .route(
            "/billing",
            get(ok).route_layer(PermissionGuard::all_of(["manage_billing"])),
        )
        .route(
            "/reports",
            get(ok).route_layer(PermissionGuard::all_of(["view_reports"])),
        )
        .layer(auth)
}

/// Asserts the status of each `(uri, allowed)`; denials are
/// `PERMISSION_DENIED`.
async fn expect(app: &Router, token: &str, headers: &[(&str, &str)], cases: &[(&str, bool)]) {
    for (uri, allowed) in cases {
        let res = call_json(app, to("GET", uri, token, headers)).await;
        if *allowed {
            assert_eq!(res.0, StatusCode::OK, "{uri}: {}", res.2);
        } else {
            assert_forbidden(&res, "PERMISSION_DENIED", uri);
        }
    }
}

#[tokio::test]
async fn flat_permissions_all_of_any_of_and_modules() {
    let iam = TestIam::start().await;
    let app =
        permission_app(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()));

    let full = iam.mint(json!({
        "permissions": ["inventory.regions.view", "inventory.regions.update"],
        "modules": ["finance"],
    }));
    expect(
        &app,
        &full,
        &[],
        &[
            ("/regions/all", true),
            ("/regions/any", true),
            ("/finance", true),
        ],
    )
    .await;

    let viewer = iam.mint(json!({"permissions": ["inventory.regions.view"], "modules": ["basic"]}));
    expect(
        &app,
        &viewer,
        &[],
        &[
            ("/regions/all", false),
            ("/regions/any", true),
            ("/finance", false),
        ],
    )
    .await;

    let deleter = iam.mint(json!({"permissions": ["inventory.regions.delete"]}));
    expect(
        &app,
        &deleter,
        &[],
        &[("/regions/all", false), ("/regions/any", true)],
    )
    .await;

    // Exact matches only: no prefixes, no wildcards, no case folding; and a
    // module is not a permission.
    let near = iam.mint(json!({
        "permissions": ["inventory.regions", "inventory.*", "INVENTORY.REGIONS.VIEW", "finance"],
        "modules": ["inventory.regions.view", "Finance"],
    }));
    expect(
        &app,
        &near,
        &[],
        &[
            ("/regions/all", false),
            ("/regions/any", false),
            ("/finance", false),
        ],
    )
    .await;

    // Claims of the wrong shape grant nothing.
    let odd = iam.mint(json!({
        "permissions": "inventory.regions.view",
        "modules": {"finance": true},
    }));
    expect(
        &app,
        &odd,
        &[],
        &[("/regions/any", false), ("/finance", false)],
    )
    .await;
}

#[tokio::test]
async fn seed_004_webservices_claim_grants_full_and_owner_services() {
    let iam = TestIam::start().await;
    let app =
        permission_app(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()));
    let token = iam.mint(json!({
        "sub": "user-uuid",
        "is_super_user": false,
        "webservices": {
            "logout": "full",
            "list_users": "full",
            "update_user_email": "owner",
            "ghost": "partial",
        },
    }));
    expect(
        &app,
        &token,
        &[],
        &[
            ("/users", true),
            ("/me/email", true),
            ("/ghost", false),
            ("/billing", false),
        ],
    )
    .await;
}

fn organizations() -> Value {
    json!({
        "client-uuid-1": {
            "level": "client",
            "webservices": ["manage_billing", "list_projects", "create_invoice"],
        },
        "client-uuid-2": {
            "level": "client",
            "webservices": ["list_projects", "view_reports"],
        },
    })
}

#[tokio::test]
async fn seed_004_organization_services_follow_the_active_tenant() {
    let iam = TestIam::start().await;
    let app = permission_app(
        JwtAuthGuardLayer::new(iam.verifier())
            .tenant_header(http::HeaderName::from_static("x-org"))
            .permissions(ClaimsSource::new()),
    );
    let token = iam.mint(json!({"sub": "alice", "organizations": organizations()}));

    let one = [("x-org", "client-uuid-1")];
    expect(
        &app,
        &token,
        &one,
        &[("/billing", true), ("/reports", false)],
    )
    .await;
    let two = [("x-org", "client-uuid-2")];
    expect(
        &app,
        &token,
        &two,
        &[("/billing", false), ("/reports", true)],
    )
    .await;

    let (status, _, body) = call_json(&app, to("GET", "/billing", &token, &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "TENANT_REQUIRED");
    let res = call_json(
        &app,
        to("GET", "/billing", &token, &[("x-org", "client-uuid-3")]),
    )
    .await;
    assert_forbidden(&res, "TENANT_NOT_PERMITTED", "foreign tenant");
}

#[tokio::test]
async fn without_a_tenant_header_the_token_tenant_selects_the_organization() {
    let iam = TestIam::start().await;
    let app =
        permission_app(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()));
    let token = iam.mint(json!({"organizations": organizations(), "tenantId": "client-uuid-2"}));
    expect(
        &app,
        &token,
        &[],
        &[("/billing", false), ("/reports", true)],
    )
    .await;
    // No tenant at all: no organization's services.
    let token = iam.mint(json!({"organizations": organizations()}));
    expect(
        &app,
        &token,
        &[],
        &[("/billing", false), ("/reports", false)],
    )
    .await;
}

// --------------------------------------------------------- super user

fn bypass_app(iam: &TestIam, bypass: Option<bool>) -> Router {
    let mut auth = JwtAuthGuardLayer::new(iam.verifier())
        .permissions(CatalogueSource::new(Catalogue::students_fixture()));
    if let Some(on) = bypass {
        auth = auth.super_user_bypass(on);
    }
    Router::new()
        .route(
            "/students",
            get(ok).route_layer(ScopeGuard::write("students")),
        )
        .route(
            "/students/create",
            get(ok).route_layer(ActionGuard::new("students", "create")),
        )
        .route(
            "/finance",
            get(ok).route_layer(PermissionGuard::module("finance")),
        )
        .route(
            "/stacked",
            get(ok)
                .route_layer(ActionGuard::new("students", "delete"))
                .route_layer(ScopeGuard::read("students")),
        )
        .route("/records", get(record_access))
        .layer(auth)
}

#[tokio::test]
async fn super_user_flag_opens_nothing_by_default() {
    let iam = TestIam::start().await;
    let (captured, _guard) = capture();
    let token = iam.mint(json!({"sub": "root", "is_super_user": true}));
    for app in [bypass_app(&iam, None), bypass_app(&iam, Some(false))] {
        let res = get_json(&app, "/students", &token).await;
        assert_forbidden(&res, "INSUFFICIENT_SCOPE", "scope");
        let res = get_json(&app, "/students/create", &token).await;
        assert_forbidden(&res, "ACTION_NOT_PERMITTED", "action");
        let res = get_json(&app, "/finance", &token).await;
        assert_forbidden(&res, "PERMISSION_DENIED", "module");
        let (_, _, body) = get_json(&app, "/records", &token).await;
        assert_eq!(body["access"], json!({"owner": "root"}));
    }
    assert!(captured.audit_events("bypass").is_empty());
    // The denials themselves are audited, each with the requirement that
    // failed.
    let denies = captured.audit_events("deny");
    assert_eq!(denies.len(), 6, "{}", captured.all_text());
    let requirements: Vec<&str> = denies.iter().map(|f| f["requirement"].as_str()).collect();
    assert!(
        requirements.contains(&"action students.create"),
        "{requirements:?}"
    );
}

#[tokio::test]
async fn super_user_bypass_when_enabled_passes_every_guard_and_audits_each_use() {
    let iam = TestIam::start().await;
    let app = bypass_app(&iam, Some(true));
    let (captured, _guard) = capture();
    let token = iam.mint(json!({"sub": "root", "tenantId": "school-1", "is_super_user": true}));
    for uri in ["/students", "/students/create", "/finance", "/stacked"] {
        let (status, _, body) = get_json(&app, uri, &token).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
    let events = captured.audit_events("bypass");
    // One event per guard passed: /stacked has two.
    assert_eq!(events.len(), 5, "{}", captured.all_text());
    for fields in &events {
        assert_eq!(fields["user"], "root");
        assert_eq!(fields["tenant"], "school-1");
        assert!(fields.contains_key("requirement"), "{fields:?}");
    }
    let routes: Vec<&str> = events.iter().map(|f| f["route"].as_str()).collect();
    assert_eq!(
        routes,
        [
            "/students",
            "/students/create",
            "/finance",
            "/stacked",
            "/stacked"
        ]
    );
    assert!(captured.audit_events("deny").is_empty());
    // The token never lands in the audit trail.
    assert!(!captured.all_text().contains(&token));
    let signature = token.rsplit('.').next().unwrap();
    assert!(!captured.all_text().contains(signature));

    // RecordAccess follows the bypass.
    let (_, _, body) = get_json(&app, "/records", &token).await;
    assert_eq!(body["access"], "full");
}

#[tokio::test]
async fn super_user_bypass_needs_a_true_flag_in_the_token() {
    let iam = TestIam::start().await;
    let app = bypass_app(&iam, Some(true));
    let (captured, _guard) = capture();
    for flag in [json!(false), json!("true"), json!(1), json!(null)] {
        let token = iam.mint(json!({"sub": "mallory", "is_super_user": flag}));
        let res = get_json(&app, "/students", &token).await;
        assert_forbidden(&res, "INSUFFICIENT_SCOPE", &flag.to_string());
    }
    assert!(captured.audit_events("bypass").is_empty());
}

// ---------------------------------------------------------- extractors

/// The record access a handler gets, as JSON for assertions.
async fn record_access(access: RecordAccess) -> Json<Value> {
    Json(record_json(&access))
}

fn record_json(access: &RecordAccess) -> Value {
    let reach = match &access.access {
        Access::Full => json!("full"),
        Access::Owner(user) => json!({"owner": user}),
        Access::Organizations(by_level) => json!({"organizations": by_level}),
        other => panic!("unexpected access {other:?}"),
    };
    json!({
        "tenant": access.tenant,
        "user": access.user,
        "roles": access.roles,
        "access": reach,
    })
}

fn records_app(iam: &TestIam, policy: Option<RecordAccessPolicy>) -> Router {
    let app = Router::new().route("/records", get(record_access));
    let app = match policy {
        Some(policy) => app.layer(Extension(policy)),
        None => app,
    };
    app.layer(JwtAuthGuardLayer::new(iam.verifier()))
}

#[tokio::test]
async fn record_access_full_owner_and_organizations() {
    let iam = TestIam::start().await;
    let app = records_app(
        &iam,
        Some(RecordAccessPolicy::new().full_access_roles(["admin"])),
    );

    let admin =
        iam.mint(json!({"sub": "a-1", "tenantId": "school-1", "roles": ["teacher", "admin"]}));
    let (status, _, body) = get_json(&app, "/records", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"tenant": "school-1", "user": "a-1", "roles": ["teacher", "admin"], "access": "full"})
    );

    let teacher = iam.mint(json!({"sub": "t-1", "tenantId": "school-1", "roles": ["teacher"]}));
    let (_, _, body) = get_json(&app, "/records", &teacher).await;
    assert_eq!(body["access"], json!({"owner": "t-1"}));

    let member = iam.mint(json!({
        "sub": "bob",
        // A structured role without a system: one that names a system
        // counts only where the service names that system.
        "roles": [{"role": "manager"}],
        "organizations": {
            "client-a": {"level": "client", "webservices": ["list_projects"]},
            "client-b": {"level": "client", "webservices": ["list_projects"]},
            "dept-1": {"level": "department", "webservices": []},
        },
    }));
    let (_, _, body) = get_json(&app, "/records", &member).await;
    assert_eq!(
        body,
        json!({
            "tenant": null,
            "user": "bob",
            "roles": ["manager"],
            "access": {"organizations": {
                "client": ["client-a", "client-b"],
                "department": ["dept-1"],
            }},
        })
    );
}

#[tokio::test]
async fn record_access_defaults_to_owner_for_every_role() {
    let iam = TestIam::start().await;
    let app = records_app(&iam, None);
    let admin = iam.mint(json!({"sub": "a-1", "roles": ["admin"]}));
    let (status, _, body) = get_json(&app, "/records", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["access"], json!({"owner": "a-1"}));
    // An empty organizations claim is no organization scope.
    let token = iam.mint(json!({"sub": "u-2", "organizations": {}}));
    let (_, _, body) = get_json(&app, "/records", &token).await;
    assert_eq!(body["access"], json!({"owner": "u-2"}));
}

#[tokio::test]
async fn record_access_policy_set_on_the_auth_layer_and_overridden_per_route() {
    let iam = TestIam::start().await;
    let auth = JwtAuthGuardLayer::new(iam.verifier())
        .record_access(RecordAccessPolicy::new().full_access_roles(["secretary"]));
    let app = Router::new()
        .route("/records", get(record_access))
        .route(
            "/narrow",
            // A route's own policy wins over the layer's.
            get(record_access).layer(Extension(
                RecordAccessPolicy::new().full_access_roles(["principal"]),
            )),
        )
        .layer(auth);
    let secretary = iam.mint(json!({"sub": "s-1", "roles": ["secretary"]}));
    let principal = iam.mint(json!({"sub": "p-1", "roles": ["principal"]}));
    let (status, _, body) = get_json(&app, "/records", &secretary).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["access"], "full");
    let (_, _, body) = get_json(&app, "/records", &principal).await;
    assert_eq!(body["access"], json!({"owner": "p-1"}));
    let (_, _, body) = get_json(&app, "/narrow", &secretary).await;
    assert_eq!(body["access"], json!({"owner": "s-1"}));
    let (_, _, body) = get_json(&app, "/narrow", &principal).await;
    assert_eq!(body["access"], "full");
}

#[tokio::test]
async fn record_access_carries_the_active_tenant() {
    let iam = TestIam::start().await;
    let app = Router::new().route("/records", get(record_access)).layer(
        JwtAuthGuardLayer::new(iam.verifier())
            .tenant_header(http::HeaderName::from_static("x-org")),
    );
    let token = iam.mint(json!({
        "sub": "alice",
        "tenantId": "home",
        "organizations": ["home", "branch"],
    }));
    let (status, _, body) =
        call_json(&app, to("GET", "/records", &token, &[("x-org", "branch")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tenant"], "branch");
}

#[tokio::test]
async fn record_access_without_axum_from_request_extensions() {
    let iam = TestIam::start().await;
    let policy = RecordAccessPolicy::new().full_access_roles(["principal"]);
    let service = tower::Layer::layer(
        &JwtAuthGuardLayer::new(iam.verifier()),
        tower::service_fn(|req: Request<http_body_util::Empty<Bytes>>| async move {
            let access = RecordAccess::from_extensions(req.extensions());
            let body = serde_json::to_vec(&access.as_ref().map(record_json)).unwrap();
            Ok::<_, std::convert::Infallible>(Response::new(Bytes::from(body)))
        }),
    );
    let send = |token: String, with_policy: bool| {
        let service = service.clone();
        let policy = policy.clone();
        async move {
            let mut req = Request::builder()
                .uri("/records")
                .header("authorization", format!("Bearer {token}"))
                .body(http_body_util::Empty::new())
                .unwrap();
            if with_policy {
                req.extensions_mut().insert(policy);
            }
            let res = service.oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            serde_json::from_slice::<Value>(res.body()).unwrap()
        }
    };
    let principal = iam.mint(json!({"sub": "p-1", "tenantId": "s-1", "roles": ["principal"]}));
    let body = send(principal.clone(), true).await;
    assert_eq!(body["access"], "full");
    assert_eq!(body["tenant"], "s-1");
    let body = send(principal, false).await;
    assert_eq!(body["access"], json!({"owner": "p-1"}));

    // Without JwtAuthGuard in front there is nothing to resolve.
    let bare = Request::builder().body(()).unwrap();
    assert_eq!(RecordAccess::from_extensions(bare.extensions()), None);
}

#[tokio::test]
async fn record_access_extractor_without_the_auth_layer_is_a_500() {
    let app = Router::new().route("/records", get(record_access));
    let (status, challenge, body) = call_json(&app, to("GET", "/records", "", &[])).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(challenge, None);
    assert_eq!(body["code"], "INTERNAL");
}

#[tokio::test]
async fn permissions_extractor_needs_a_permission_source() {
    let iam = TestIam::start().await;
    // Authenticated, but no `.permissions(..)`: a wiring bug, never a pass.
    let app = Router::new()
        .route("/students", get(student_scopes))
        .route(
            "/guarded",
            get(ok).route_layer(ScopeGuard::read("students")),
        )
        .layer(JwtAuthGuardLayer::new(iam.verifier()));
    let token = iam.mint(json!({"roles": ["admin"]}));
    for uri in ["/students", "/guarded"] {
        let (status, _, body) = get_json(&app, uri, &token).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert_eq!(body["code"], "INTERNAL", "{uri}");
    }
}

#[tokio::test]
async fn permissions_unavailable_is_503_and_audited_from_guards_and_extractors() {
    let iam = TestIam::start().await;
    let app = students_app(JwtAuthGuardLayer::new(iam.verifier()).permissions(Down));
    let (captured, _guard) = capture();
    let token = iam.mint(json!({"sub": "u-1", "tenantId": "school-1", "roles": ["admin"]}));
    for uri in ["/students/create", "/permissions"] {
        let res = send(&app, to("GET", uri, &token, &[])).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(res.headers()["retry-after"], "5", "{uri}");
        let body: Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["code"], "IAM_UNAVAILABLE", "{uri}");
        // The source's internal error stays in the logs.
        assert!(!body.to_string().contains("refused"), "{body}");
    }
    let denies = captured.audit_events("deny");
    let routes: Vec<&str> = denies.iter().map(|f| f["route"].as_str()).collect();
    assert_eq!(
        routes,
        ["/students/create", "/permissions"],
        "{}",
        captured.all_text()
    );
    for fields in &denies {
        assert_eq!(fields["code"], "IAM_UNAVAILABLE");
        assert_eq!(fields["user"], "u-1");
        assert_eq!(fields["tenant"], "school-1");
    }
    // The guard names its requirement; the extractor has none.
    assert_eq!(denies[0]["requirement"], "action students.create");
    assert_eq!(denies[1]["requirement"], "-");
}

// -------------------------------------------------- permissions endpoint

#[tokio::test]
async fn permissions_endpoint_shape_for_a_teacher() {
    let iam = TestIam::start().await;
    let app = fixture_app(&iam);
    let token = iam.mint(json!({"sub": "t-1", "roles": ["internal_teacher"]}));
    let res = send(&app, to("GET", "/permissions", &token, &[])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "private, no-store");
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    // Seed 002 §4: NONE scopes omitted, only effective actions.
    assert_eq!(
        body,
        json!({
            "students": {
                "scopes": {
                    "anagraphic": "READ",
                    "attendance": "WRITE",
                    "scoring": "WRITE",
                    "family": "READ",
                    "enrollment": "READ",
                },
                "actions": {},
            }
        })
    );
}

#[tokio::test]
async fn permissions_endpoint_lists_only_effective_actions() {
    let iam = TestIam::start().await;
    let app = fixture_app(&iam);
    let admin = iam.mint(json!({"sub": "a-1", "roles": ["admin"]}));
    let (status, _, body) = get_json(&app, "/permissions", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["students"]["actions"],
        json!({"create": true, "delete": true})
    );
    assert_eq!(body["students"]["scopes"].as_object().unwrap().len(), 8);
    // HR and admissions are granted create, but do not meet its
    // requirements: not advertised.
    for role in ["hr_secretary", "admissions_officer"] {
        let token = iam.mint(json!({"sub": "x", "roles": [role]}));
        let (_, _, body) = get_json(&app, "/permissions", &token).await;
        assert_eq!(body["students"]["actions"], json!({}), "{role}");
    }
    // Nothing granted: an empty document, not an error.
    let nobody = iam.mint(json!({"sub": "n-1", "roles": []}));
    let (status, _, body) = get_json(&app, "/permissions", &nobody).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({}));
}

#[tokio::test]
async fn permissions_endpoint_includes_flat_permissions_and_modules_from_claims() {
    let iam = TestIam::start().await;
    let app = Router::new()
        .route("/permissions", get(permissions_endpoint))
        .layer(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()));
    let token = iam.mint(json!({
        "entities": {"students": {"scopes": {"anagraphic": "WRITE", "family": "NONE"}, "actions": {"create": false}}},
        "permissions": ["inventory.regions.view"],
        "modules": ["finance"],
    }));
    let (status, _, body) = get_json(&app, "/permissions", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "students": {"scopes": {"anagraphic": "WRITE"}, "actions": {}},
            "permissions": ["inventory.regions.view"],
            "modules": ["finance"],
        })
    );
}

#[tokio::test]
async fn the_bypass_gives_a_super_user_full_record_access_without_a_permission_source() {
    let iam = TestIam::start().await;
    // Only authentication and record access: the bypass is the auth
    // layer's setting, not the permission source's.
    let app = Router::new()
        .route("/records", get(record_access))
        .layer(JwtAuthGuardLayer::new(iam.verifier()).super_user_bypass(true));
    let root = iam.mint(json!({"sub": "root", "tenantId": "school-1", "is_super_user": true}));
    let (status, _, body) = get_json(&app, "/records", &root).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["access"], "full");
    // Without the flag, or without the opt-in, the narrowest answer.
    let user = iam.mint(json!({"sub": "u-1", "tenantId": "school-1"}));
    let (_, _, body) = get_json(&app, "/records", &user).await;
    assert_eq!(body["access"], json!({"owner": "u-1"}));
    let off = Router::new()
        .route("/records", get(record_access))
        .layer(JwtAuthGuardLayer::new(iam.verifier()));
    let (_, _, body) = get_json(&off, "/records", &root).await;
    assert_eq!(body["access"], json!({"owner": "root"}));
}
