//! What the token itself grants: OAuth scopes (`scope` / `scp`, string or
//! array) guarded per route, IdP roles guarded without a catalogue, OAuth
//! scopes as flat permissions, and a union of permission sources that is
//! still loaded once per request and fails closed.
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
    model::CompiledPermissions,
    permissions::source::{PermissionError, PermissionFuture, PermissionSource},
    test_util::TestIam,
    Catalogue, CatalogueSource, ClaimMapping, ClaimsSource, JwtAuthGuardLayer, OAuthScopeGuard,
    OAuthScopesSource, PermissionGuard, Permissions, Principal, RoleGuard, ScopeGuard, UnionSource,
};
use serde_json::json;

async fn ok() -> &'static str {
    "ok"
}

/// A source that counts its calls and grants one flat permission, either
/// without waiting or only through `load`, or fails.
#[derive(Clone)]
struct Counting {
    grant: &'static str,
    calls: Arc<AtomicUsize>,
    waits: bool,
    fails: bool,
}

impl Counting {
    fn new(grant: &'static str, waits: bool, fails: bool) -> Self {
        Self {
            grant,
            calls: Arc::default(),
            waits,
            fails,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn answer(&self) -> Result<Arc<CompiledPermissions>, PermissionError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fails {
            return Err(PermissionError::Unavailable("the test IAM is down".into()));
        }
        let mut perms = CompiledPermissions::deny_all();
        perms.grant_permission(self.grant);
        Ok(Arc::new(perms))
    }
}

impl PermissionSource for Counting {
    fn load<'a>(&'a self, _: &'a Principal) -> PermissionFuture<'a> {
        let answer = self.answer();
        Box::pin(async move {
            tokio::task::yield_now().await;
            answer
        })
    }

    fn load_now(&self, _: &Principal) -> Option<Result<Arc<CompiledPermissions>, PermissionError>> {
        (!self.waits).then(|| self.answer())
    }

    fn answers_without_waiting(&self) -> bool {
        !self.waits
    }
}

fn scoped(auth: JwtAuthGuardLayer) -> Router {
    Router::new()
        .route(
            "/grades",
            get(ok).route_layer(OAuthScopeGuard::all_of(["grades:read", "students:read"])),
        )
        .route(
            "/either",
            get(ok).route_layer(OAuthScopeGuard::any_of(["grades:write", "grades:read"])),
        )
        .route("/admin", get(ok).route_layer(RoleGuard::any_of(["admin"])))
        .route(
            "/client-admin",
            get(ok).route_layer(RoleGuard::any_of(["students-api:admin"])),
        )
        .route(
            "/teacher-and-tutor",
            get(ok).route_layer(RoleGuard::all_of(["teacher", "tutor"])),
        )
        .layer(auth)
}

#[tokio::test]
async fn oauth_scopes_from_a_string_or_an_array_pass_without_any_permission_source() {
    let iam = TestIam::start().await;
    // No permission source: these guards must not need one.
    let app = scoped(JwtAuthGuardLayer::new(iam.verifier()));
    for token in [
        iam.mint(json!({"scope": "openid grades:read students:read"})),
        iam.mint(json!({"scp": ["grades:read", "students:read"]})),
        iam.mint(json!({"scope": "grades:read", "scp": "students:read"})),
    ] {
        assert_eq!(
            call(&app, to("GET", "/grades", &token, &[])).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, to("GET", "/either", &token, &[])).await.0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_missing_oauth_scope_is_403_with_its_own_code_and_the_scopes_to_ask_for() {
    let iam = TestIam::start().await;
    let app = scoped(JwtAuthGuardLayer::new(iam.verifier()));
    // `grades:read` alone, a scope with that name as a role, and a scope
    // group key as an OAuth scope all fall short.
    for token in [
        iam.mint(json!({"scope": "grades:read"})),
        iam.mint(json!({"scope": "grades:readstudents:read"})),
        iam.mint(json!({"roles": ["grades:read", "students:read"]})),
    ] {
        let (status, challenge, body) = call_json(&app, to("GET", "/grades", &token, &[])).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["code"], "INSUFFICIENT_OAUTH_SCOPE");
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer error="insufficient_scope", scope="grades:read students:read""#)
        );
    }
    let (status, challenge, _) = call_json(
        &app,
        to("GET", "/either", &iam.mint(json!({"scope": "x"})), &[]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer error="insufficient_scope", scope="grades:write grades:read""#)
    );
}

#[tokio::test]
async fn a_scope_claim_of_another_shape_is_an_invalid_token() {
    let iam = TestIam::start().await;
    let app = scoped(JwtAuthGuardLayer::new(iam.verifier()));
    for scope in [
        json!(5),
        json!({"grades:read": true}),
        json!(["grades:read", 1]),
    ] {
        let token = iam.mint(json!({"scope": scope}));
        let (status, _, body) = call_json(&app, to("GET", "/grades", &token, &[])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{scope}");
        assert_eq!(body["code"], "invalid_token");
    }
}

#[tokio::test]
async fn role_guards_read_the_mapped_roles_qualified_ones_included() {
    let iam = TestIam::start().await;
    let mapping = ClaimMapping::default()
        .roles("realm_access.roles")
        .qualified_roles("resource_access.students-api.roles", "students-api");
    let app = scoped(JwtAuthGuardLayer::new(iam.verifier()).claims(mapping));
    let realm_admin = iam.mint(json!({"realm_access": {"roles": ["admin"]}}));
    let client_admin = iam.mint(json!({"resource_access": {"students-api": {"roles": ["admin"]}}}));
    let other_client = iam.mint(json!({"resource_access": {"billing-api": {"roles": ["admin"]}}}));
    let both = iam.mint(json!({"realm_access": {"roles": ["teacher", "tutor"]}}));
    let get = |t: &str, p: &str| to("GET", p, t, &[]);
    let status =
        |res: (StatusCode, Option<String>, serde_json::Value)| (res.0, res.2["code"].clone());

    assert_eq!(
        call(&app, get(&realm_admin, "/admin")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, get(&client_admin, "/admin")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, get(&client_admin, "/client-admin")).await.0,
        StatusCode::OK
    );
    // A realm role of the same name is not this client's role.
    assert_eq!(
        status(call_json(&app, get(&realm_admin, "/client-admin")).await),
        (StatusCode::FORBIDDEN, json!("ROLE_REQUIRED"))
    );
    // Another client's admin role grants nothing here.
    for path in ["/admin", "/client-admin"] {
        assert_eq!(
            status(call_json(&app, get(&other_client, path)).await),
            (StatusCode::FORBIDDEN, json!("ROLE_REQUIRED")),
            "{path}"
        );
    }
    assert_eq!(
        call(&app, get(&both, "/teacher-and-tutor")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status(call_json(&app, get(&realm_admin, "/teacher-and-tutor")).await),
        (StatusCode::FORBIDDEN, json!("ROLE_REQUIRED"))
    );
}

#[tokio::test]
async fn token_guards_load_no_permissions_and_bypass_like_the_others() {
    let iam = TestIam::start().await;
    let source = Counting::new("x", false, false);
    let app = scoped(
        JwtAuthGuardLayer::new(iam.verifier())
            .permissions(source.clone())
            .super_user_bypass(true),
    );
    let scoped_token = iam.mint(json!({"scope": "grades:read students:read", "roles": ["admin"]}));
    assert_eq!(
        call(&app, to("GET", "/grades", &scoped_token, &[])).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, to("GET", "/admin", &scoped_token, &[])).await.0,
        StatusCode::OK
    );
    assert_eq!(source.calls(), 0, "a token guard never loads permissions");
    let super_user = iam.mint(json!({"is_super_user": true}));
    assert_eq!(
        call(&app, to("GET", "/admin", &super_user, &[])).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, to("GET", "/grades", &super_user, &[])).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn anonymous_callers_are_401_at_a_token_guard() {
    let iam = TestIam::start().await;
    let app = scoped(JwtAuthGuardLayer::new(iam.verifier()).optional());
    let (status, challenge, body) = call_json(&app, to("GET", "/admin", "", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(body["code"], "invalid_token");
}

#[tokio::test]
async fn oauth_scopes_as_flat_permissions_in_a_permission_guard() {
    let iam = TestIam::start().await;
    let app = Router::new()
        .route(
            "/grades",
            get(ok).route_layer(PermissionGuard::all_of(["grades:read"])),
        )
        .layer(JwtAuthGuardLayer::new(iam.verifier()).permissions(OAuthScopesSource::new()));
    let yes = iam.mint(json!({"scope": "openid grades:read"}));
    let no = iam.mint(json!({"scope": "openid", "permissions": ["grades:read"]}));
    assert_eq!(
        call(&app, to("GET", "/grades", &yes, &[])).await.0,
        StatusCode::OK
    );
    let (status, _, body) = call_json(&app, to("GET", "/grades", &no, &[])).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("PERMISSION_DENIED"))
    );
}

async fn granted(perms: Permissions) -> String {
    let mut list: Vec<&str> = perms.permissions().iter().map(String::as_str).collect();
    list.sort_unstable();
    list.join(",")
}

/// Three guards and an extractor on one route: one load of the union, one
/// call of each part.
fn union_app(auth: JwtAuthGuardLayer) -> Router {
    Router::new()
        .route(
            "/all",
            get(granted)
                .route_layer(PermissionGuard::all_of(["from-a"]))
                .route_layer(PermissionGuard::any_of(["from-b", "from-c"]))
                .route_layer(ScopeGuard::read("students")),
        )
        .layer(auth)
}

#[tokio::test]
async fn a_union_grants_what_any_part_grants_loading_each_part_once_per_request() {
    let iam = TestIam::start().await;
    let catalogue = CatalogueSource::new(Catalogue::students_fixture());
    for waits in [false, true] {
        let a = Counting::new("from-a", false, false);
        let b = Counting::new("from-b", waits, false);
        let source = UnionSource::new()
            .with(catalogue.clone())
            .with(a.clone())
            .with(b.clone())
            .optional(ClaimsSource::new())
            .optional(OAuthScopesSource::new());
        let app = union_app(JwtAuthGuardLayer::new(iam.verifier()).permissions(source));
        let token = iam.mint(json!({
            "roles": ["internal_teacher"],
            "permissions": ["from-token"],
            "scope": "from-scope",
        }));
        let (status, body) = call(&app, to("GET", "/all", &token, &[])).await;
        assert_eq!(status, StatusCode::OK, "waits={waits}: {body}");
        assert_eq!(body, "from-a,from-b,from-scope,from-token", "waits={waits}");
        assert_eq!(
            (a.calls(), b.calls()),
            (1, 1),
            "waits={waits}: each part once"
        );
        let (status, _) = call(&app, to("GET", "/all", &token, &[])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (a.calls(), b.calls()),
            (2, 2),
            "waits={waits}: once per request"
        );
    }
}

#[tokio::test]
async fn a_failing_required_part_is_503_and_an_optional_one_grants_nothing() {
    let iam = TestIam::start().await;
    let token = iam.mint(json!({"roles": ["internal_teacher"], "permissions": ["from-b"]}));
    let catalogue = || CatalogueSource::new(Catalogue::students_fixture());
    for waits in [false, true] {
        let down = Counting::new("from-a", waits, true);
        let required = UnionSource::new()
            .with(catalogue())
            .with(ClaimsSource::new())
            .with(down.clone());
        let app = union_app(JwtAuthGuardLayer::new(iam.verifier()).permissions(required));
        let (status, _, body) = call_json(&app, to("GET", "/all", &token, &[])).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "waits={waits}");
        assert_eq!(body["code"], "IAM_UNAVAILABLE");
        assert_eq!(down.calls(), 1);

        // Optional: the rest still decides, and what the failed part would
        // have granted (`from-a`) is missing.
        let optional = UnionSource::new()
            .with(catalogue())
            .with(ClaimsSource::new())
            .optional(down.clone());
        let app = union_app(JwtAuthGuardLayer::new(iam.verifier()).permissions(optional));
        let (status, _, body) = call_json(&app, to("GET", "/all", &token, &[])).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "waits={waits}");
        assert_eq!(body["code"], "PERMISSION_DENIED");
    }
    // An empty union grants nothing.
    let app = union_app(JwtAuthGuardLayer::new(iam.verifier()).permissions(UnionSource::new()));
    let (status, _, body) = call_json(&app, to("GET", "/all", &token, &[])).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("INSUFFICIENT_SCOPE"))
    );
}
