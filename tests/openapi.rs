//! The OpenAPI document from the guards' declarations, in-process: the
//! school's (schemes, each protected operation's security and
//! `x-iam-guard`, unprotected routes left alone), and a bundle with a
//! route denied to everyone and OAuth scope routes. Every refusal the
//! guards answer live is one the document lists for that operation, with
//! the body of the configured renderer (JSON, or problem+json).
#![cfg(all(feature = "test-util", feature = "openapi"))]

#[allow(dead_code)]
#[path = "../examples/school/users.rs"]
mod users;

#[allow(dead_code)]
#[path = "../examples/school/app.rs"]
mod app;

#[path = "common/school_openapi.rs"]
mod school_openapi;

use axum::{body::Body, http::Method, http::Request, Router};
use http_body_util::BodyExt;
use iam_guard::{
    model::{Catalogue, PermissionRule, Requirement},
    openapi::{ErrorBody, OAuth2Flow, OpenApiSecurity},
    permissions::source::CatalogueSource,
    test_util::TestIam,
    ErrorRenderer, JwtAuthGuardLayer, OAuthScopeGuard, ProtectedResource,
};
use serde_json::{json, Value};
use tower::ServiceExt;
use utoipa::openapi::{InfoBuilder, OpenApiBuilder};

/// Status and JSON body of `method path` with `token` and `body`.
async fn call(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some((content_type, bytes)) => {
            req = req.header("content-type", content_type);
            Body::from(bytes.to_owned())
        }
        None => Body::empty(),
    };
    let res = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Asserts the document lists `status` for `method path`, and that a
/// refusal's body has the documented error shape.
fn documented(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(
        op["responses"].get(status.to_string()).is_some(),
        "{method} {path} answered {status}, which its operation does not list: {}",
        op["responses"]
    );
    if status >= 400 {
        for key in ["statusCode", "error", "code", "message"] {
            assert!(
                body.get(key).is_some(),
                "{method} {path} {status}: {key} in {body}"
            );
        }
        assert_eq!(body["statusCode"], status);
    }
}

/// Method, URI, documented path, token, body (content type and bytes),
/// expected status.
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<(&'a str, &'a str)>,
    u16,
);

fn school_doc() -> Value {
    serde_json::to_value(app::openapi()).unwrap()
}

#[test]
fn the_school_document_has_the_schemes_security_and_extension_of_each_route() {
    school_openapi::check_school_document(&school_doc());
}

#[test]
fn the_school_document_follows_the_bundle_it_serves() {
    let doc = school_doc();
    let bundle = app::students();
    assert_eq!(bundle.report().len(), 5);
    for line in bundle.report() {
        let op = &doc["paths"][&line.path][line.method.as_str().to_lowercase()];
        let requirement = line
            .requirement
            .as_ref()
            .expect("the school denies no route");
        assert_eq!(
            op["x-iam-guard"]["summary"],
            requirement.to_string(),
            "{} {}",
            line.method,
            line.path
        );
        assert_eq!(op["x-iam-guard"]["convention"], line.by_convention);
    }
}

#[test]
fn the_school_documents_its_permissions_document_with_custom_fields() {
    let doc = school_doc();
    let schema = &doc["paths"]["/permissions"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert_eq!(
        schema,
        &serde_json::to_value(iam_guard::openapi::permissions_document_schema()).unwrap()
    );
    let entity = &schema["additionalProperties"];
    assert_eq!(
        entity["properties"]["customFieldDefinitions"]["items"]["required"],
        json!(["key", "label", "scope", "type", "isRequired", "sortOrder"])
    );
    // Only a token is needed: no requirement, the bearer scheme.
    let op = &doc["paths"]["/permissions"]["get"];
    assert_eq!(op["security"], json!([{"bearerAuth": []}]));
    assert_eq!(op["x-iam-guard"]["requires"], "token");
}

#[tokio::test]
async fn every_refusal_the_school_answers_is_in_its_document() {
    let iam = TestIam::start().await;
    let auth = JwtAuthGuardLayer::new(iam.verifier())
        .permissions(CatalogueSource::new(Catalogue::students_fixture()));
    let school = app::router(auth, app::Store::demo());
    let doc = school_doc();
    let token = |user: &str| iam.mint(users::demo_claims(user).expect("a demo user"));
    let (admin, teacher) = (token("admin"), token("teacher"));
    let json = Some(("application/json", r#"{"attendance":{"absences":1}}"#));

    let cases: Vec<Case<'_>> = vec![
        ("GET", "/students", "/students", None, None, 401),
        (
            "GET",
            "/students/s-1",
            "/students/{id}",
            Some("not-a-token"),
            None,
            401,
        ),
        ("GET", "/permissions", "/permissions", None, None, 401),
        ("POST", "/students", "/students", Some(&teacher), json, 403),
        (
            "DELETE",
            "/students/s-1",
            "/students/{id}",
            Some(&teacher),
            None,
            403,
        ),
        (
            "PATCH",
            "/students/s-1",
            "/students/{id}",
            Some(&teacher),
            Some((
                "application/json",
                r#"{"sensitive":{"disabilityInfo":"x"}}"#,
            )),
            403,
        ),
        (
            "PATCH",
            "/students/s-1",
            "/students/{id}",
            Some(&admin),
            Some(("text/plain", "x")),
            415,
        ),
        (
            "PATCH",
            "/students/s-1",
            "/students/{id}",
            Some(&admin),
            Some(("application/json", "[1]")),
            400,
        ),
        (
            "POST",
            "/students",
            "/students",
            Some(&admin),
            Some(("application/json", r#"{"family":[1]}"#)),
            400,
        ),
        (
            "POST",
            "/students",
            "/students",
            Some(&admin),
            Some(("application/json", r#"{"scoring":{"average":"high"}}"#)),
            400,
        ),
        (
            "GET",
            "/students?limit=many",
            "/students",
            Some(&admin),
            None,
            400,
        ),
        (
            "GET",
            "/students/s-404",
            "/students/{id}",
            Some(&admin),
            None,
            404,
        ),
        (
            "PATCH",
            "/students/s-1",
            "/students/{id}",
            Some(&teacher),
            json,
            200,
        ),
        ("GET", "/students", "/students", Some(&teacher), None, 200),
        (
            "DELETE",
            "/students/s-3",
            "/students/{id}",
            Some(&admin),
            None,
            204,
        ),
        (
            "GET",
            "/permissions",
            "/permissions",
            Some(&teacher),
            None,
            200,
        ),
    ];
    for (method, uri, path, token, body, status) in cases {
        let (got, answer) = call(&school, method, uri, token, body).await;
        assert_eq!(got, status, "{method} {uri}: {answer}");
        documented(&doc, method, path, got, &answer);
    }
    // A body the document's schema refuses leaves no record behind.
    let (_, page) = call(&school, "GET", "/students", Some(&admin), None).await;
    assert_eq!(
        page["meta"]["total"], 2,
        "s-3 deleted, nothing created: {page}"
    );
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let doc = app::openapi();
    let app = app::openapi_route(&doc);
    let (status, served) = call(&app, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(served, serde_json::to_value(&doc).unwrap());
}

async fn ok() -> &'static str {
    "ok"
}

/// A reports bundle in explicit mode: one route denied to everyone, one
/// needing either of two OAuth scopes.
fn reports_bundle() -> ProtectedResource {
    ProtectedResource::explicit("reports")
        .route(Method::GET, "/reports/{id}", ok)
        .route_with(
            Method::GET,
            "/reports",
            Requirement::oauth_scopes(PermissionRule::AnyOf(vec![
                "reports:read".into(),
                "reports:admin".into(),
            ])),
            ok,
        )
}

/// The bundle and, beside it, a route guarded by hand.
fn reports_router() -> Router {
    reports_bundle().into_router().merge(Router::new().route(
        "/reports/export",
        axum::routing::post(ok).route_layer(export_guard()),
    ))
}

fn export_guard() -> iam_guard::guard::require::RequirementGuardLayer {
    OAuthScopeGuard::all_of(["reports:export"])
}

fn reports_doc(bundle: &ProtectedResource) -> Value {
    let doc = OpenApiBuilder::new()
        .info(InfoBuilder::new().title("reports").version("1").build())
        .build();
    let doc = OpenApiSecurity::new()
        .resource(bundle)
        .route(Method::POST, "/reports/export", &export_guard())
        .oauth2_flow(OAuth2Flow::authorization_code(
            "https://iam.example.com/authorize",
            "https://iam.example.com/token",
        ))
        .scope_description("reports:read", "Read reports")
        .secure(doc)
        .unwrap();
    serde_json::to_value(doc).unwrap()
}

#[test]
fn oauth_scope_routes_carry_their_scopes_and_a_denied_route_is_marked() {
    let doc = reports_doc(&reports_bundle());
    let flow = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
    assert_eq!(
        flow["authorizationUrl"],
        "https://iam.example.com/authorize"
    );
    assert_eq!(
        flow["scopes"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["reports:admin", "reports:export", "reports:read"]
    );
    assert_eq!(flow["scopes"]["reports:read"], "Read reports");

    let list = &doc["paths"]["/reports"]["get"];
    assert_eq!(
        list["security"],
        json!([
            {"bearerAuth": ["reports:read"]}, {"bearerAuth": ["reports:admin"]},
            {"oauth2": ["reports:read"]}, {"oauth2": ["reports:admin"]},
        ])
    );
    assert_eq!(list["x-iam-guard"]["requires"], "oauthScopes");
    assert_eq!(
        list["x-iam-guard"]["anyOf"],
        json!(["reports:read", "reports:admin"])
    );
    assert_eq!(list["x-iam-guard"]["refusal"], "INSUFFICIENT_OAUTH_SCOPE");

    let export = &doc["paths"]["/reports/export"]["post"];
    assert_eq!(
        export["security"],
        json!([{"bearerAuth": ["reports:export"]}, {"oauth2": ["reports:export"]}])
    );
    assert!(
        export["x-iam-guard"].get("fields").is_none(),
        "guarded by hand, no field guards"
    );
    assert!(export["responses"].get("500").is_none());

    let denied = &doc["paths"]["/reports/{id}"]["get"];
    assert_eq!(denied["x-iam-guard"]["denied"], true);
    assert_eq!(denied["x-iam-guard"]["requires"], "nothing");
    assert_eq!(denied["x-iam-guard"]["refusal"], "PERMISSION_DENIED");
    assert!(
        denied["responses"].get("default").is_none(),
        "no handler answers it"
    );
    assert_eq!(
        denied["parameters"][0],
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}})
    );
}

#[tokio::test]
async fn the_reports_guards_answer_what_their_document_says() {
    let iam = TestIam::start().await;
    let doc = reports_doc(&reports_bundle());
    let app = reports_router().layer(JwtAuthGuardLayer::new(iam.verifier()));
    let reader = iam.mint(json!({"scope": "reports:read"}));
    let exporter = iam.mint(json!({"scope": "reports:export"}));

    for (method, uri, path, token, status, code) in [
        (
            "GET",
            "/reports/7",
            "/reports/{id}",
            None,
            401,
            "invalid_token",
        ),
        (
            "GET",
            "/reports/7",
            "/reports/{id}",
            Some(&exporter),
            403,
            "PERMISSION_DENIED",
        ),
        (
            "GET",
            "/reports",
            "/reports",
            Some(&exporter),
            403,
            "INSUFFICIENT_OAUTH_SCOPE",
        ),
        (
            "POST",
            "/reports/export",
            "/reports/export",
            Some(&reader),
            403,
            "INSUFFICIENT_OAUTH_SCOPE",
        ),
    ] {
        let (got, body) = call(&app, method, uri, token.map(String::as_str), None).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{method} {uri}"
        );
        documented(&doc, method, path, got, &body);
        // The extension names the code the route refuses with.
        if status == 403 {
            assert_eq!(
                doc["paths"][path][method.to_lowercase()]["x-iam-guard"]["refusal"],
                code
            );
        }
    }
    assert_eq!(
        call(&app, "GET", "/reports", Some(&reader), None).await.0,
        200
    );
    assert_eq!(
        call(&app, "POST", "/reports/export", Some(&exporter), None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn with_the_problem_renderer_the_document_describes_problem_bodies() {
    let iam = TestIam::start().await;
    let doc = OpenApiSecurity::new()
        .resource(&reports_bundle())
        .error_body(ErrorBody::ProblemJson)
        .secure(
            OpenApiBuilder::new()
                .info(InfoBuilder::new().title("reports").version("1").build())
                .build(),
        )
        .unwrap();
    let doc = serde_json::to_value(doc).unwrap();
    let app = reports_bundle().into_router().layer(
        JwtAuthGuardLayer::new(iam.verifier()).error_renderer(ErrorRenderer::problem_json()),
    );

    let res = app
        .oneshot(
            Request::get("/reports")
                .header("authorization", format!("Bearer {}", iam.mint(json!({}))))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();

    let documented = &doc["paths"]["/reports"]["get"]["responses"]["403"]["content"];
    assert_eq!(
        documented,
        &json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/IamGuardProblem"}}})
    );
    let schema = &doc["components"]["schemas"]["IamGuardProblem"];
    assert!(doc["components"]["schemas"].get("IamGuardError").is_none());
    for key in schema["required"].as_array().unwrap() {
        let key = key.as_str().unwrap();
        let kind = schema["properties"][key]["type"].as_str().unwrap();
        let value = &body[key];
        let matches = match kind {
            "string" => value.is_string(),
            "integer" => value.is_u64(),
            other => panic!("unexpected type {other}"),
        };
        assert!(matches, "{key} is a {kind} in {body}");
    }
    assert_eq!(body["code"], "INSUFFICIENT_OAUTH_SCOPE");
}
