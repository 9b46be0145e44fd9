use http::Method;
use serde_json::{json, Value};
use utoipa::openapi::{
    path::{OperationBuilder, PathItem},
    security::SecurityRequirement,
    HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder,
};

use super::*;
use crate::model::{PermissionRule, ScopeAccess};

fn doc_with(paths: &[(&str, HttpMethod)]) -> OpenApi {
    let mut builder = PathsBuilder::new();
    for (path, method) in paths {
        builder = builder.path(
            *path,
            PathItem::new(
                method.clone(),
                OperationBuilder::new().response("200", ResponseBuilder::new().description("ok")),
            ),
        );
    }
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title("t").version("1").build())
        .paths(builder.build())
        .build()
}

fn json_of(doc: &OpenApi) -> Value {
    serde_json::to_value(doc).unwrap()
}

fn read_students() -> Requirement {
    Requirement::scopes("students", ScopeAccess::Read)
}

#[test]
fn the_bearer_scheme_is_always_there_and_oauth2_only_with_a_flow() {
    let doc = OpenApiSecurity::new().secure(doc_with(&[])).unwrap();
    let json = json_of(&doc);
    assert_eq!(
        json["components"]["securitySchemes"]["bearerAuth"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "An access token from the IAM, verified by iam-guard against the IAM's keys"})
    );
    assert!(json["components"]["securitySchemes"]
        .get("oauth2")
        .is_none());
    assert_eq!(
        json["components"]["schemas"]["IamGuardError"]["required"],
        json!(["statusCode", "error", "code", "message"])
    );
    // Never a top-level claim.
    assert!(json.get("security").is_none());
}

#[test]
fn oauth2_lists_every_required_scope_with_its_description() {
    let doc = OpenApiSecurity::new()
        .requirement(
            Method::GET,
            "/reports",
            Requirement::oauth_scopes(PermissionRule::AnyOf(vec![
                "reports:read".into(),
                "reports:admin".into(),
            ])),
        )
        .requirement(
            Method::POST,
            "/reports",
            Requirement::oauth_scopes(PermissionRule::AllOf(vec!["reports:write".into()])),
        )
        .scope_description("reports:read", "Read reports")
        .oauth2_flow(OAuth2Flow::authorization_code(
            "https://iam.example.com/authorize",
            "https://iam.example.com/token",
        ))
        .secure(doc_with(&[("/reports", HttpMethod::Get)]))
        .unwrap();
    let json = json_of(&doc);
    let flow = &json["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
    assert_eq!(
        flow["authorizationUrl"],
        "https://iam.example.com/authorize"
    );
    assert_eq!(flow["tokenUrl"], "https://iam.example.com/token");
    assert_eq!(
        flow["scopes"],
        json!({
            "reports:read": "Read reports",
            "reports:admin": "Required by GET /reports",
            "reports:write": "Required by POST /reports",
        })
    );
    // Any of two scopes: two alternatives per scheme.
    assert_eq!(
        json["paths"]["/reports"]["get"]["security"],
        json!([
            {"bearerAuth": ["reports:read"]}, {"bearerAuth": ["reports:admin"]},
            {"oauth2": ["reports:read"]}, {"oauth2": ["reports:admin"]},
        ])
    );
    assert_eq!(
        json["paths"]["/reports"]["post"]["security"],
        json!([{"bearerAuth": ["reports:write"]}, {"oauth2": ["reports:write"]}])
    );
}

#[test]
fn an_undeclared_operation_is_left_unprotected() {
    let doc = OpenApiSecurity::new()
        .requirement(Method::GET, "/students", read_students())
        .secure(doc_with(&[
            ("/students", HttpMethod::Get),
            ("/health", HttpMethod::Get),
        ]))
        .unwrap();
    let json = json_of(&doc);
    let health = &json["paths"]["/health"]["get"];
    assert!(health.get("security").is_none(), "{health}");
    assert!(health.get(EXTENSION).is_none());
    assert_eq!(health["responses"], json!({"200": {"description": "ok"}}));
    let students = &json["paths"]["/students"]["get"];
    assert_eq!(students["security"], json!([{"bearerAuth": []}]));
    assert_eq!(students[EXTENSION]["entity"], "students");
    // The service's own answer stays.
    assert_eq!(students["responses"]["200"], json!({"description": "ok"}));
    assert_eq!(
        students["responses"]["401"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/IamGuardError"})
    );
    assert!(students["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());
    assert!(students["responses"]["503"]["headers"]["Retry-After"].is_object());
}

#[test]
fn paths_match_by_shape_whatever_the_parameter_is_named() {
    let security = OpenApiSecurity::new().requirement(
        Method::PATCH,
        "/students/{id}",
        Requirement::scopes("students", ScopeAccess::Write),
    );
    let doc = doc_with(&[("/students/{student_id}", HttpMethod::Patch)]);
    assert!(security.undocumented(&doc).is_empty());
    let json = json_of(&security.secure(doc).unwrap());
    assert_eq!(
        json["paths"]["/students/{student_id}"]["patch"][EXTENSION]["access"],
        "WRITE"
    );
    assert!(json["paths"].get("/students/{id}").is_none());
}

#[test]
fn an_undocumented_route_is_added_with_its_path_parameters_or_left_out() {
    let security = OpenApiSecurity::new()
        .requirement(
            Method::DELETE,
            "/students/{id}",
            Requirement::action("students", "delete"),
        )
        .declare(DeclaredRoute::new(
            Method::OPTIONS,
            "/students",
            RouteAccess::Denied,
        ));
    let doc = doc_with(&[]);
    let missing: Vec<_> = security
        .undocumented(&doc)
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(missing, ["DELETE /students/{id}", "OPTIONS /students"]);

    let json = json_of(&security.clone().secure(doc.clone()).unwrap());
    let delete = &json["paths"]["/students/{id}"]["delete"];
    assert_eq!(
        delete["parameters"],
        json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}])
    );
    assert!(delete["responses"]["default"].is_object());
    assert_eq!(delete[EXTENSION]["action"], "delete");
    // A denied route never reaches a handler: only refusals.
    let options = &json["paths"]["/students"]["options"];
    assert!(options["responses"].get("default").is_none());
    assert_eq!(options[EXTENSION]["denied"], true);

    let left = json_of(
        &security
            .undocumented_routes(Undocumented::Leave)
            .secure(doc)
            .unwrap(),
    );
    assert_eq!(left["paths"], json!({}));
}

#[test]
fn bad_input_is_an_error_not_a_half_secured_document() {
    let bad_url = OpenApiSecurity::new()
        .oauth2_flow(OAuth2Flow::client_credentials("/token"))
        .secure(doc_with(&[]));
    assert_eq!(bad_url.err(), Some(OpenApiError::FlowUrl("/token".into())));

    let conflict = OpenApiSecurity::new()
        .requirement(Method::GET, "/students/{id}", read_students())
        .requirement(
            Method::GET,
            "/students/{sid}",
            Requirement::module("finance"),
        )
        .secure(doc_with(&[]));
    assert!(matches!(conflict, Err(OpenApiError::Conflict { .. })));
    // The same declaration twice is one route.
    let twice = OpenApiSecurity::new()
        .requirement(Method::GET, "/students", read_students())
        .requirement(Method::GET, "/students", read_students())
        .secure(doc_with(&[]));
    assert!(twice.is_ok());

    let connect = OpenApiSecurity::new()
        .authenticated(Method::CONNECT, "/tunnel")
        .secure(doc_with(&[]));
    assert_eq!(
        connect.err().map(|e| e.to_string()).as_deref(),
        Some("OpenAPI has no operation for the method CONNECT of /tunnel")
    );
}

#[test]
fn a_token_only_route_claims_bearer_without_a_requirement() {
    let json = json_of(
        &OpenApiSecurity::new()
            .authenticated(Method::GET, "/permissions")
            .secure(doc_with(&[("/permissions", HttpMethod::Get)]))
            .unwrap(),
    );
    let op = &json["paths"]["/permissions"]["get"];
    assert_eq!(op["security"], json!([{"bearerAuth": []}]));
    assert_eq!(op[EXTENSION]["requires"], "token");
    let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
    assert_eq!(statuses, ["200", "400", "401", "403", "503"]);
}

#[test]
fn the_service_security_on_an_operation_is_replaced_by_the_declared_one() {
    let mut doc = doc_with(&[("/students", HttpMethod::Get)]);
    if let Some(op) = doc
        .paths
        .paths
        .get_mut("/students")
        .and_then(|i| i.get.as_mut())
    {
        op.security = Some(vec![SecurityRequirement::new(
            "apiKey",
            Vec::<String>::new(),
        )]);
    }
    let json = json_of(
        &OpenApiSecurity::new()
            .requirement(Method::GET, "/students", read_students())
            .secure(doc)
            .unwrap(),
    );
    assert_eq!(
        json["paths"]["/students"]["get"]["security"],
        json!([{"bearerAuth": []}])
    );
}

#[cfg(feature = "axum")]
#[test]
fn a_bundle_declares_each_route_with_its_field_guards() {
    async fn handler() {}
    let bundle = crate::ProtectedResource::<()>::new("students")
        .get("/students", handler)
        .patch("/students/{id}", handler)
        .route(Method::OPTIONS, "/students", handler);
    let security = OpenApiSecurity::new().resource_under("/v1", &bundle);
    let routes: Vec<_> = security
        .declarations()
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.by_convention))
        .collect();
    assert_eq!(
        routes,
        [
            ("GET", "/v1/students", true),
            ("PATCH", "/v1/students/{id}", true),
            ("OPTIONS", "/v1/students", true),
        ]
    );
    let json = json_of(&security.secure(doc_with(&[])).unwrap());
    let patch = &json["paths"]["/v1/students/{id}"]["patch"];
    assert_eq!(
        patch[EXTENSION]["fields"],
        json!({"entity": "students", "write": true, "filter": true})
    );
    let statuses: Vec<&String> = patch["responses"].as_object().unwrap().keys().collect();
    assert_eq!(
        statuses,
        ["400", "401", "403", "413", "415", "500", "503", "default"]
    );
    let options = &json["paths"]["/v1/students"]["options"];
    assert_eq!(options[EXTENSION]["denied"], true);
    assert!(options[EXTENSION].get("fields").is_none());
    assert_eq!(options["security"], json!([{"bearerAuth": []}]));
}
