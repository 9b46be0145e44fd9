//! Each IdP preset against tokens shaped exactly like that IdP's
//! documented access tokens: accepted, principal fields mapped, OAuth
//! scope and role guards passing and refusing, and the tokens an IdP issues
//! for someone else (another client, another app client, another tenant, an
//! ID token) refused.
//!
//! The test IAM signs them; only the issuer differs from the real IdP's,
//! set with `Preset::issuer`.
#![cfg(feature = "test-util")]

mod common;

use axum::{routing::get, Json, Router};
use common::*;
use http::StatusCode;
use iam_guard::{
    preset::Preset, test_util::TestIam, Catalogue, CatalogueSource, ClaimsSource,
    JwtAuthGuardLayer, OAuthScopeGuard, PermissionGuard, Principal, RoleGuard, ScopeGuard,
    UnionSource,
};
use serde_json::{json, Value};

async fn describe(p: Principal) -> Json<Value> {
    Json(json!({
        "user": p.user_id(),
        "tenant": p.tenant_id(),
        "roles": p.roles().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "scopes": p.oauth_scopes().collect::<Vec<_>>(),
    }))
}

async fn ok() -> &'static str {
    "ok"
}

/// `/me`, plus one OAuth-scope-guarded and one role-guarded route.
fn app(iam: &TestIam, preset: Preset, scope: &str, role: &str) -> Router {
    let verifier = preset.issuer(iam.issuer()).verifier(iam.fetcher());
    Router::new()
        .route("/me", get(describe))
        .route(
            "/scoped",
            get(ok).route_layer(OAuthScopeGuard::all_of([scope])),
        )
        .route("/role", get(ok).route_layer(RoleGuard::any_of([role])))
        .layer(JwtAuthGuardLayer::new(verifier))
}

/// The token's claims with this IAM's issuer and timestamps; `aud` only
/// when the shape has one.
fn shaped(iam: &TestIam, claims: Value) -> String {
    let mut patch = claims;
    if patch.get("aud").is_none() {
        patch["aud"] = Value::Null;
    }
    iam.mint(patch)
}

async fn me(app: &Router, token: &str) -> Value {
    let (status, body) = call(app, to("GET", "/me", token, &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn status(app: &Router, path: &str, token: &str) -> (StatusCode, Value) {
    let (status, _, body) = call_json(app, to("GET", path, token, &[])).await;
    (status, body["code"].clone())
}

const FORBIDDEN_SCOPE: (StatusCode, &str) = (StatusCode::FORBIDDEN, "INSUFFICIENT_OAUTH_SCOPE");
const FORBIDDEN_ROLE: (StatusCode, &str) = (StatusCode::FORBIDDEN, "ROLE_REQUIRED");
const UNAUTHORIZED: (StatusCode, &str) = (StatusCode::UNAUTHORIZED, "invalid_token");

fn pair(expected: (StatusCode, &str)) -> (StatusCode, Value) {
    (expected.0, json!(expected.1))
}

/// A Keycloak access token for `students-api`, requested by the
/// `school-web` frontend client (audience mapper adds `students-api`).
fn keycloak_claims() -> Value {
    json!({
        "jti": "onrtac:2b8c7a94-2a40-4e1f-9d52-77c6d1f4b0e1",
        "aud": ["students-api", "account"],
        "sub": "f3c1a9de-6a6e-4d0a-9a8d-5f1e0c2b7d11",
        "typ": "Bearer",
        "azp": "school-web",
        "sid": "0d1e4f1b-3f0a-4f8e-8d61-2c9e5a7b6c30",
        "acr": "1",
        "allowed-origins": ["https://school.example"],
        "realm_access": {"roles": ["offline_access", "uma_authorization", "default-roles-school", "teacher"]},
        "resource_access": {
            "students-api": {"roles": ["grades-editor"]},
            "billing-api": {"roles": ["admin"]},
            "account": {"roles": ["manage-account", "view-profile"]},
        },
        "scope": "openid email profile students:read",
        "email_verified": true,
        "organization": ["school-1"],
        "preferred_username": "mrossi",
    })
}

#[tokio::test]
async fn keycloak_realm_and_this_clients_roles_never_another_clients() {
    let iam = TestIam::start().await;
    let preset = || Preset::keycloak("https://sso.example.com/realms/school", "students-api");
    let admin_app = app(&iam, preset(), "students:read", "admin");
    let token = shaped(&iam, keycloak_claims());
    assert_eq!(
        me(&admin_app, &token).await,
        json!({
            "user": "f3c1a9de-6a6e-4d0a-9a8d-5f1e0c2b7d11",
            "tenant": null,
            "roles": ["realm:offline_access", "realm:uma_authorization", "realm:default-roles-school",
                      "realm:teacher", "students-api:grades-editor"],
            "scopes": ["email", "openid", "profile", "students:read"],
        })
    );
    assert_eq!(
        status(&admin_app, "/scoped", &token).await.0,
        StatusCode::OK
    );
    // `admin` is only billing-api's role: nothing here.
    assert_eq!(
        status(&admin_app, "/role", &token).await,
        pair(FORBIDDEN_ROLE)
    );
    let editor_app = app(
        &iam,
        preset(),
        "students:write",
        "students-api:grades-editor",
    );
    assert_eq!(status(&editor_app, "/role", &token).await.0, StatusCode::OK);
    assert_eq!(
        status(&editor_app, "/scoped", &token).await,
        pair(FORBIDDEN_SCOPE)
    );
    let realm_app = app(&iam, preset(), "openid", "realm:teacher");
    assert_eq!(status(&realm_app, "/role", &token).await.0, StatusCode::OK);

    // A token for the account console only is not for this service.
    let mut other = keycloak_claims();
    other["aud"] = json!("account");
    assert_eq!(
        status(&admin_app, "/me", &shaped(&iam, other)).await,
        pair(UNAUTHORIZED)
    );
}

#[tokio::test]
async fn keycloak_another_clients_catalogue_role_grants_no_permissions() {
    let iam = TestIam::start().await;
    let verifier = Preset::keycloak("https://sso.example.com/realms/school", "students-api")
        .issuer(iam.issuer())
        .verifier(iam.fetcher());
    let app = Router::new()
        .route(
            "/students",
            get(ok).route_layer(ScopeGuard::write("students")),
        )
        .layer(
            JwtAuthGuardLayer::new(verifier)
                .permissions(CatalogueSource::new(Catalogue::students_fixture())),
        );
    // `admin` is a role of the students catalogue, granted here only on
    // billing-api.
    let token = shaped(&iam, keycloak_claims());
    assert_eq!(
        status(&app, "/students", &token).await,
        pair((StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE"))
    );
    let mut ours = keycloak_claims();
    ours["resource_access"]["students-api"]["roles"] = json!(["admin"]);
    assert_eq!(
        status(&app, "/students", &shaped(&iam, ours)).await.0,
        StatusCode::OK
    );
}

/// An Auth0 access token for the API `https://api.school.example`, with
/// RBAC permissions and roles and the organization added by an Action.
fn auth0_claims() -> Value {
    json!({
        "https://school.example.com/roles": ["teacher"],
        "https://school.example.com/email": "mrossi@school.example",
        "sub": "auth0|64f1c2d3e4b5a6978899aabb",
        "aud": ["https://api.school.example", "https://school.eu.auth0.com/userinfo"],
        "azp": "Xy12AbCdEfGhIjKlMnOpQrStUvWxYz34",
        "scope": "openid profile read:students",
        "org_id": "org_7Hk2mP9qR4sT1uVw",
        "permissions": ["read:students", "write:grades"],
    })
}

#[tokio::test]
async fn auth0_namespaced_roles_organization_and_rbac_permissions() {
    let iam = TestIam::start().await;
    let preset = || {
        Preset::auth0(
            "school.eu.auth0.com",
            "https://api.school.example",
            "https://school.example.com",
        )
    };
    assert_eq!(preset().issuer_url(), "https://school.eu.auth0.com/");
    let app_ = app(&iam, preset(), "read:students", "teacher");
    let token = shaped(&iam, auth0_claims());
    assert_eq!(
        me(&app_, &token).await,
        json!({
            "user": "auth0|64f1c2d3e4b5a6978899aabb",
            "tenant": "org_7Hk2mP9qR4sT1uVw",
            "roles": ["teacher"],
            "scopes": ["openid", "profile", "read:students"],
        })
    );
    assert_eq!(status(&app_, "/scoped", &token).await.0, StatusCode::OK);
    assert_eq!(status(&app_, "/role", &token).await.0, StatusCode::OK);
    let admin = app(&iam, preset(), "write:students", "admin");
    assert_eq!(
        status(&admin, "/scoped", &token).await,
        pair(FORBIDDEN_SCOPE)
    );
    assert_eq!(status(&admin, "/role", &token).await, pair(FORBIDDEN_ROLE));

    // RBAC permissions through the claims source.
    let verifier = preset().issuer(iam.issuer()).verifier(iam.fetcher());
    let rbac = Router::new()
        .route(
            "/grades",
            get(ok).route_layer(PermissionGuard::all_of(["write:grades"])),
        )
        .route(
            "/students",
            get(ok).route_layer(PermissionGuard::all_of(["write:students"])),
        )
        .layer(JwtAuthGuardLayer::new(verifier).permissions(ClaimsSource::new()));
    assert_eq!(status(&rbac, "/grades", &token).await.0, StatusCode::OK);
    assert_eq!(
        status(&rbac, "/students", &token).await,
        pair((StatusCode::FORBIDDEN, "PERMISSION_DENIED"))
    );

    // A token for another API of the tenant.
    let mut other = auth0_claims();
    other["aud"] = json!("https://api.billing.example");
    assert_eq!(
        status(&app_, "/me", &shaped(&iam, other)).await,
        pair(UNAUTHORIZED)
    );
}

const ENTRA_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const ENTRA_CLIENT: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

/// A Microsoft Entra ID v2.0 access token for this API, delegated
/// (`scp`) with an app role.
fn entra_claims() -> Value {
    json!({
        "aud": ENTRA_CLIENT,
        "nbf": 1_700_000_000,
        "aio": "AXQAi/8UAAAAqxsuB+R4D2rFQqOETO4YdXbLD9kZ8xfXadeAM0Q2NkNT5izfg3uwbWSXhuSSj6UT5hy2D6WqApB5jKA6ZgZ9k/SU27uV9cetXfLOtpNttgk5DcBtk+LLstz/Jg+gYRmv9bUU4XlphTVYP+MTMd8n9PD9L6XeIofPHXT4khyXrLAeqAmk4sGKJBlGzx1d4v9ZLeZxOc2SgGrwZWO79ZRFfQi9dyKM7PkZjTx6kS8SYwDxfOQ8YkiSHt8K3Km3nw==",
        "azp": "e9c5d6a8-1c5b-4e8a-8a5c-2f3b4d5e6f70",
        "azpacr": "0",
        "name": "Maria Rossi",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "preferred_username": "mrossi@school.example",
        "rh": "I",
        "roles": ["Grades.Admin"],
        "scp": "access_as_user Students.Read",
        "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
        "tid": ENTRA_TENANT,
        "uti": "fqiBqXLPj0eQa82S-IYFAA",
        "ver": "2.0",
    })
}

#[tokio::test]
async fn entra_object_id_tenant_scp_and_app_roles_and_only_this_tenant() {
    let iam = TestIam::start().await;
    let preset = || Preset::entra(ENTRA_TENANT, ENTRA_CLIENT);
    assert_eq!(
        preset().issuer_url(),
        format!("https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0")
    );
    let app_ = app(&iam, preset(), "Students.Read", "Grades.Admin");
    let token = shaped(&iam, entra_claims());
    assert_eq!(
        me(&app_, &token).await,
        json!({
            "user": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
            "tenant": ENTRA_TENANT,
            "roles": ["Grades.Admin"],
            "scopes": ["Students.Read", "access_as_user"],
        })
    );
    assert_eq!(status(&app_, "/scoped", &token).await.0, StatusCode::OK);
    assert_eq!(status(&app_, "/role", &token).await.0, StatusCode::OK);
    let writer = app(&iam, preset(), "Students.Write", "Grades.Reader");
    assert_eq!(
        status(&writer, "/scoped", &token).await,
        pair(FORBIDDEN_SCOPE)
    );
    assert_eq!(status(&writer, "/role", &token).await, pair(FORBIDDEN_ROLE));

    // `api://` audiences are this API too; another tenant or another API
    // are not.
    let mut uri = entra_claims();
    uri["aud"] = json!(format!("api://{ENTRA_CLIENT}"));
    assert_eq!(
        status(&app_, "/me", &shaped(&iam, uri)).await.0,
        StatusCode::OK
    );
    let mut tenant = entra_claims();
    tenant["tid"] = json!("00000000-0000-0000-0000-000000000001");
    assert_eq!(
        status(&app_, "/me", &shaped(&iam, tenant)).await,
        pair(UNAUTHORIZED)
    );
    let mut no_tenant = entra_claims();
    no_tenant["tid"] = Value::Null;
    assert_eq!(
        status(&app_, "/me", &shaped(&iam, no_tenant)).await,
        pair(UNAUTHORIZED)
    );
    let mut graph = entra_claims();
    graph["aud"] = json!("00000003-0000-0000-c000-000000000000");
    assert_eq!(
        status(&app_, "/me", &shaped(&iam, graph)).await,
        pair(UNAUTHORIZED)
    );
}

/// An Amazon Cognito user pool access token: no `aud`, a `client_id`.
fn cognito_claims(client_id: &str) -> Value {
    json!({
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "cognito:groups": ["teachers"],
        "version": 2,
        "client_id": client_id,
        "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "event_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "token_use": "access",
        "scope": "students/read openid",
        "auth_time": 1_700_000_000,
        "jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "username": "mrossi",
    })
}

#[tokio::test]
async fn cognito_allowed_app_clients_access_tokens_only() {
    let iam = TestIam::start().await;
    let preset = || {
        Preset::cognito(
            "eu-west-1",
            "eu-west-1_Ab12Cd34E",
            ["1example23456789", "2mobile3456789"],
        )
    };
    assert_eq!(
        preset().issuer_url(),
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12Cd34E"
    );
    let app_ = app(&iam, preset(), "students/read", "teachers");
    for client in ["1example23456789", "2mobile3456789"] {
        let token = shaped(&iam, cognito_claims(client));
        assert_eq!(
            me(&app_, &token).await,
            json!({
                "user": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                "tenant": null,
                "roles": ["teachers"],
                "scopes": ["openid", "students/read"],
            })
        );
        assert_eq!(status(&app_, "/scoped", &token).await.0, StatusCode::OK);
        assert_eq!(status(&app_, "/role", &token).await.0, StatusCode::OK);
    }
    let admin = app(&iam, preset(), "students/write", "admins");
    let token = shaped(&iam, cognito_claims("1example23456789"));
    assert_eq!(
        status(&admin, "/scoped", &token).await,
        pair(FORBIDDEN_SCOPE)
    );
    assert_eq!(status(&admin, "/role", &token).await, pair(FORBIDDEN_ROLE));

    // Another app client of the same pool, no client at all, and the ID
    // token of an allowed client (`token_use: id`, `aud` = the client).
    let other = shaped(&iam, cognito_claims("9someotherapp0000"));
    assert_eq!(status(&app_, "/me", &other).await, pair(UNAUTHORIZED));
    let mut none = cognito_claims("x");
    none["client_id"] = Value::Null;
    assert_eq!(
        status(&app_, "/me", &shaped(&iam, none)).await,
        pair(UNAUTHORIZED)
    );
    let mut id_token = cognito_claims("1example23456789");
    id_token["token_use"] = json!("id");
    id_token["client_id"] = Value::Null;
    id_token["aud"] = json!("1example23456789");
    assert_eq!(
        status(&app_, "/me", &shaped(&iam, id_token)).await,
        pair(UNAUTHORIZED)
    );
    let mut id_token = cognito_claims("1example23456789");
    id_token["token_use"] = json!("id");
    assert_eq!(
        status(&app_, "/me", &shaped(&iam, id_token)).await,
        pair(UNAUTHORIZED)
    );
}

/// An Okta custom authorization server access token: `scp` is an array.
fn okta_claims() -> Value {
    json!({
        "ver": 1,
        "jti": "AT.0mP4JKAZX1iACIT4vbEDF7LpvDVjxypPMf0D7uX39RE",
        "aud": "api://default",
        "cid": "0oa1hx8Kq2FcR3lCZ5d7",
        "uid": "00uid4BxXw6I6TV4m0g3",
        "scp": ["openid", "students:read"],
        "auth_time": 1_700_000_000,
        "sub": "mrossi@school.example",
        "groups": ["Everyone", "Teachers"],
    })
}

#[tokio::test]
async fn okta_scp_array_and_groups() {
    let iam = TestIam::start().await;
    let preset = || Preset::okta("https://school.okta.com/oauth2/default", "api://default");
    let app_ = app(&iam, preset(), "students:read", "Teachers");
    let token = shaped(&iam, okta_claims());
    assert_eq!(
        me(&app_, &token).await,
        json!({
            "user": "mrossi@school.example",
            "tenant": null,
            "roles": ["Everyone", "Teachers"],
            "scopes": ["openid", "students:read"],
        })
    );
    assert_eq!(status(&app_, "/scoped", &token).await.0, StatusCode::OK);
    assert_eq!(status(&app_, "/role", &token).await.0, StatusCode::OK);
    let admin = app(&iam, preset(), "students:write", "Admins");
    assert_eq!(
        status(&admin, "/scoped", &token).await,
        pair(FORBIDDEN_SCOPE)
    );
    assert_eq!(status(&admin, "/role", &token).await, pair(FORBIDDEN_ROLE));
    let mut other = okta_claims();
    other["aud"] = json!("api://billing");
    assert_eq!(
        status(&app_, "/me", &shaped(&iam, other)).await,
        pair(UNAUTHORIZED)
    );
}

/// An in-house IAM's token: `{system, role, department}` roles for
/// several systems.
fn in_house_claims() -> Value {
    json!({
        "sub": "user-123",
        "username": "cj",
        "tenantId": "school-1",
        "departments": ["dc-1", "dc-2"],
        "roles": [
            {"system": "inventory", "role": "inventory_admin", "department": "dc-1"},
            {"system": "inventory", "role": "inventory_viewer", "department": "dc-2"},
            {"system": "monitoring", "role": "admin"},
        ],
    })
}

#[tokio::test]
async fn in_house_roles_of_this_system_only_with_their_departments() {
    let iam = TestIam::start().await;
    let preset = || Preset::in_house("https://iam.internal", "inventory");
    let app_ = app(&iam, preset(), "openid", "inventory_admin");
    let token = shaped(&iam, in_house_claims());
    assert_eq!(
        me(&app_, &token).await,
        json!({
            "user": "user-123",
            "tenant": "school-1",
            "roles": ["inventory_admin@dc-1", "inventory_viewer@dc-2"],
            "scopes": [],
        })
    );
    assert_eq!(status(&app_, "/role", &token).await.0, StatusCode::OK);
    // The monitoring system's admin is not this service's admin.
    let admin = app(&iam, preset(), "openid", "admin");
    assert_eq!(status(&admin, "/role", &token).await, pair(FORBIDDEN_ROLE));
    assert_eq!(
        status(&admin, "/scoped", &token).await,
        pair(FORBIDDEN_SCOPE)
    );
}

#[tokio::test]
async fn presets_compose_with_a_union_of_sources() {
    let iam = TestIam::start().await;
    let verifier = Preset::keycloak("https://sso.example.com/realms/school", "students-api")
        .issuer(iam.issuer())
        .verifier(iam.fetcher());
    let source = UnionSource::new()
        .with(CatalogueSource::new(Catalogue::students_fixture()))
        .with(iam_guard::OAuthScopesSource::new());
    let app = Router::new()
        .route(
            "/students",
            get(ok)
                .route_layer(ScopeGuard::write("students"))
                .route_layer(PermissionGuard::all_of(["students:read"])),
        )
        .layer(JwtAuthGuardLayer::new(verifier).permissions(source));
    let mut claims = keycloak_claims();
    claims["resource_access"]["students-api"]["roles"] = json!(["admin"]);
    assert_eq!(
        status(&app, "/students", &shaped(&iam, claims.clone()))
            .await
            .0,
        StatusCode::OK
    );
    claims["scope"] = json!("openid");
    assert_eq!(
        status(&app, "/students", &shaped(&iam, claims)).await,
        pair((StatusCode::FORBIDDEN, "PERMISSION_DENIED"))
    );
}
