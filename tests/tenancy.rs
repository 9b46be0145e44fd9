//! Who the caller is and in which tenant they act: `Principal` fields,
//! configurable claim names, the `x-org` active-tenant header, and the
//! extractors without the guard.
#![cfg(feature = "test-util")]

mod common;

use axum::{routing::get, Json, Router};
use common::*;
use http::StatusCode;
use iam_guard::{
    principal::ClaimError, test_util::TestIam, ClaimMapping, JwtAuthGuardLayer, Principal, Role,
    Verifier,
};
use serde::Deserialize;
use serde_json::{json, Value};

fn role_json(role: &Role) -> Value {
    if role.system().is_none() && role.department().is_none() {
        return json!(role.name());
    }
    json!({"system": role.system(), "role": role.name(), "department": role.department()})
}

/// Everything a handler can read from the principal, as JSON.
async fn describe(p: Principal) -> Json<Value> {
    Json(json!({
        "user": p.user_id(),
        "tenant": p.tenant_id(),
        "roles": p.roles().iter().map(role_json).collect::<Vec<_>>(),
        "super": p.is_super_user(),
    }))
}

fn describe_app(layer: JwtAuthGuardLayer) -> Router {
    Router::new().route("/me", get(describe)).layer(layer)
}

async fn described(app: &Router, token: &str) -> Value {
    let (status, body) = call(app, bearer(token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).expect("a JSON description")
}

#[tokio::test]
async fn principal_carries_user_tenant_roles_and_super_user_flag() {
    let iam = TestIam::start().await;
    let app = describe_app(
        JwtAuthGuardLayer::new(iam.verifier()).claims(ClaimMapping::default().system("inventory")),
    );
    let token = iam.mint(json!({
        "sub": "teacher-7",
        "tenantId": "school-1",
        "roles": [
            "teacher",
            {"system": "inventory", "role": "manager", "department": "north"},
            {"role": "viewer"},
        ],
        "is_super_user": true,
    }));
    assert_eq!(
        described(&app, &token).await,
        json!({
            "user": "teacher-7",
            "tenant": "school-1",
            "roles": [
                "teacher",
                {"system": "inventory", "role": "manager", "department": "north"},
                "viewer",
            ],
            "super": true,
        })
    );
}

#[tokio::test]
async fn roles_of_another_system_never_reach_the_service() {
    let iam = TestIam::start().await;
    let token = iam.mint(json!({"roles": [
        {"system": "inventory", "role": "admin"},
        {"system": "students", "role": "teacher", "department": "north"},
        "viewer",
    ]}));
    let students = describe_app(
        JwtAuthGuardLayer::new(iam.verifier()).claims(ClaimMapping::default().system("students")),
    );
    assert_eq!(
        described(&students, &token).await["roles"],
        json!([{"system": "students", "role": "teacher", "department": "north"}, "viewer"])
    );
    // A service that names no system honours no system's roles.
    let unnamed = describe_app(JwtAuthGuardLayer::new(iam.verifier()));
    assert_eq!(
        described(&unnamed, &token).await["roles"],
        json!(["viewer"])
    );
}

#[tokio::test]
async fn roles_may_be_a_single_string_or_absent_and_tenant_a_number() {
    let iam = TestIam::start().await;
    let app = describe_app(JwtAuthGuardLayer::new(iam.verifier()));
    let token = iam.mint(json!({"roles": "auditor", "tenantId": 42}));
    let d = described(&app, &token).await;
    assert_eq!(d["roles"], json!(["auditor"]));
    assert_eq!(d["tenant"], "42");
    let d = described(&app, &iam.mint(json!({}))).await;
    assert_eq!(d["roles"], json!([]));
    assert_eq!(d["tenant"], Value::Null);
}

#[tokio::test]
async fn super_user_flag_is_only_a_boolean_true() {
    let iam = TestIam::start().await;
    let app = describe_app(JwtAuthGuardLayer::new(iam.verifier()));
    for flag in [json!("true"), json!(1), json!(false), json!(["yes"])] {
        let d = described(&app, &iam.mint(json!({"is_super_user": flag}))).await;
        assert_eq!(d["super"], false, "{flag}");
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct Profile {
    grade: String,
    subjects: Vec<String>,
}

async fn typed_claims(p: Principal) -> Json<Value> {
    let profile: Profile = p.claim("profile").expect("a profile claim");
    let level: u32 = p.claim("profile.level").expect("a nested level");
    let missing = p.claim::<String>("nope").unwrap_err();
    let null = p.claim::<String>("nothing").unwrap_err();
    let wrong = p.claim::<u32>("profile.grade").unwrap_err();
    Json(json!({
        "grade": profile.grade,
        "subjects": profile.subjects,
        "level": level,
        "missing": matches!(missing, ClaimError::Missing(ref path) if path == "nope"),
        "null": matches!(null, ClaimError::Missing(_)),
        "wrong": matches!(wrong, ClaimError::Type(ref path, _) if path == "profile.grade"),
        "raw": p.claims().get("profile.subjects").cloned(),
        "has_teacher": p.has_role("teacher"),
        "has_admin": p.has_role("admin"),
    }))
}

#[tokio::test]
async fn custom_claims_are_readable_typed_by_path() {
    let iam = TestIam::start().await;
    let app = Router::new().route("/me", get(typed_claims)).layer(
        JwtAuthGuardLayer::new(iam.verifier()).claims(ClaimMapping::default().system("school")),
    );
    let token = iam.mint(json!({
        "roles": [{"system": "school", "role": "teacher"}],
        "profile": {"grade": "5B", "subjects": ["math", "art"], "level": 3},
        "nothing": null,
    }));
    let d = described(&app, &token).await;
    assert_eq!(
        d,
        json!({
            "grade": "5B",
            "subjects": ["math", "art"],
            "level": 3,
            "missing": true,
            "null": true,
            "wrong": true,
            "raw": ["math", "art"],
            "has_teacher": true,
            "has_admin": false,
        })
    );
}

#[tokio::test]
async fn claim_names_are_configurable_with_nested_paths() {
    let iam = TestIam::start().await;
    let mapping = ClaimMapping::default()
        .user_id("preferred_username")
        .tenant("org.id")
        .roles("realm_access.roles")
        .system("erp")
        .super_user("flags.super");
    let verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .claims(mapping)
        .build();
    let keycloak = describe_app(JwtAuthGuardLayer::new(verifier));
    let defaults = describe_app(JwtAuthGuardLayer::new(iam.verifier()));
    let token = iam.mint(json!({
        "sub": "0b5c-uuid",
        "preferred_username": "frank",
        "tenantId": "top-level-tenant",
        "org": {"id": "school-9"},
        "roles": ["top-level-role"],
        "realm_access": {"roles": ["admin", {"role": "auditor", "system": "erp"}]},
        "is_super_user": false,
        "flags": {"super": true},
    }));
    assert_eq!(
        described(&keycloak, &token).await,
        json!({
            "user": "frank",
            "tenant": "school-9",
            "roles": ["admin", {"system": "erp", "role": "auditor", "department": null}],
            "super": true,
        })
    );
    // The default mapping reads the top-level claims of the same token.
    assert_eq!(
        described(&defaults, &token).await,
        json!({
            "user": "0b5c-uuid",
            "tenant": "top-level-tenant",
            "roles": ["top-level-role"],
            "super": false,
        })
    );
    // A path through a non-object is simply absent; a missing mapped
    // user id is an invalid token.
    let token = iam.mint(json!({
        "preferred_username": "frank",
        "realm_access": "not-an-object",
    }));
    assert_eq!(described(&keycloak, &token).await["roles"], json!([]));
    let token = iam.mint(json!({"sub": "0b5c-uuid"}));
    let (status, _, body) = call_json(&keycloak, bearer(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["message"],
        "the token's claims are invalid: token has no subject"
    );
}

// --- Active tenant header --------------------------------------------------

fn tenant_app(iam: &TestIam) -> Router {
    app(JwtAuthGuardLayer::new(iam.verifier())
        .tenant_header(http::HeaderName::from_static("x-org")))
}

fn with_org(token: &str, org: &str) -> http::Request<axum::body::Body> {
    let auth = format!("Bearer {token}");
    request("GET", &[("authorization", &auth), ("x-org", org)])
}

#[tokio::test]
async fn missing_tenant_header_is_tenant_required() {
    let iam = TestIam::start().await;
    let app = tenant_app(&iam);
    let token = iam.mint(json!({"tenantId": "school-1"}));
    let (status, challenge, body) = call_json(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "TENANT_REQUIRED");
    assert_eq!(body["message"], "the x-org header is required");
    assert_eq!(challenge, None);
    // Authentication comes first: no token is a 401, not a 400.
    let (status, _, body) = call_json(&app, request("GET", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_token");
}

#[tokio::test]
async fn tenant_outside_the_memberships_is_not_permitted() {
    let iam = TestIam::start().await;
    let app = tenant_app(&iam);
    let token = iam.mint(json!({
        "tenantId": "school-1",
        "organizations": {"client-1": {"level": "client"}},
    }));
    // Another tenant, a different case, a value of the organizations object,
    // a prefix.
    for org in ["school-2", "School-1", "client", "client-"] {
        let (status, challenge, body) = call_json(&app, with_org(&token, org)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{org:?}");
        assert_eq!(body["code"], "TENANT_NOT_PERMITTED", "{org:?}");
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer error=\"insufficient_scope\"")
        );
    }
}

#[tokio::test]
async fn a_member_acts_in_the_header_tenant() {
    let iam = TestIam::start().await;
    let app = tenant_app(&iam);
    let as_object = iam.mint(json!({
        "sub": "u1",
        "tenantId": "home",
        "organizations": {"client-1": {"level": "client"}, "branch-2": {"level": "branch"}},
    }));
    let as_array = iam.mint(json!({"sub": "u1", "tenantId": "home", "organizations": ["a", "b"]}));
    let cases = [
        (&as_object, "client-1"),
        (&as_object, "branch-2"),
        (&as_object, "home"),
        (&as_array, "b"),
        (&as_array, "home"),
    ];
    for (token, org) in cases {
        let (status, body) = call(&app, with_org(token, org)).await;
        assert_eq!(status, StatusCode::OK, "{org}: {body}");
        assert_eq!(body, format!("u1|{org}"));
    }
    // Only string entries of an array are memberships.
    let numeric = iam.mint(json!({"organizations": [7]}));
    let (status, _, _) = call_json(&app, with_org(&numeric, "7")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn tenant_is_checked_per_request_even_for_a_cached_token() {
    let iam = TestIam::start().await;
    let app = tenant_app(&iam);
    let token = iam.mint(json!({"sub": "u1", "organizations": ["a"]}));
    let (status, body) = call(&app, with_org(&token, "a")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "u1|a");
    // Same token, now answered from the verified-token cache.
    let (status, _, body) = call_json(&app, with_org(&token, "b")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "TENANT_NOT_PERMITTED");
}

#[tokio::test]
async fn memberships_claim_name_is_configurable() {
    let iam = TestIam::start().await;
    let verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .claims(ClaimMapping::default().memberships("access.orgs"))
        .build();
    let app =
        app(JwtAuthGuardLayer::new(verifier).tenant_header(http::HeaderName::from_static("x-org")));
    let token = iam.mint(json!({"sub": "u1", "access": {"orgs": ["x"]}, "organizations": ["y"]}));
    let (status, body) = call(&app, with_org(&token, "x")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = call_json(&app, with_org(&token, "y")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn tenant_header_is_ignored_unless_configured() {
    let iam = TestIam::start().await;
    let app = app(JwtAuthGuardLayer::new(iam.verifier()));
    let token = iam.mint(json!({"sub": "u1", "tenantId": "home"}));
    // An unchecked header must never become the caller's tenant.
    let (status, body) = call(&app, with_org(&token, "someone-else")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "u1|home");
}

#[tokio::test]
async fn two_tenant_headers_are_a_bad_request() {
    let iam = TestIam::start().await;
    let app = tenant_app(&iam);
    let token = iam.mint(json!({"organizations": ["a", "b"]}));
    let auth = format!("Bearer {token}");
    for (first, second) in [("a", "b"), ("a", "a"), ("evil", "a")] {
        let req = request(
            "GET",
            &[
                ("authorization", &auth),
                ("x-org", first),
                ("x-org", second),
            ],
        );
        let (status, _, body) = call_json(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{first}, {second}");
        assert_eq!(body["code"], "invalid_request");
    }
}

// --- Extractors without the guard -------------------------------------------

async fn maybe(p: Option<Principal>) -> String {
    format!("{:?}", p.map(|p| p.user_id().to_owned()))
}

#[tokio::test]
async fn principal_extractor_without_the_guard_is_a_wiring_error() {
    let app = Router::new()
        .route("/me", get(whoami))
        .route("/maybe", get(maybe));
    let (status, challenge, body) = call_json(&app, request("GET", &[])).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], "INTERNAL");
    assert_eq!(body["statusCode"], 500);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("JwtAuthGuardLayer"),
        "the message says how to fix it: {body}"
    );
    assert_eq!(challenge, None, "not an authentication problem");
    // Even a request with a token: nothing verified it.
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    let (status, _) = call(&app, bearer(token)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    let req = http::Request::builder()
        .uri("/maybe")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .expect("a request");
    let (status, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "None");
}

#[tokio::test]
async fn an_empty_tenant_header_is_tenant_required_like_a_missing_one() {
    let iam = TestIam::start().await;
    let app = tenant_app(&iam);
    let token = iam.mint(json!({"tenantId": "school-1"}));
    for org in ["", " ", "\t"] {
        let (status, challenge, body) = call_json(&app, with_org(&token, org)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{org:?}");
        assert_eq!(body["code"], "TENANT_REQUIRED", "{org:?}");
        assert_eq!(challenge, None, "{org:?}");
    }
}
