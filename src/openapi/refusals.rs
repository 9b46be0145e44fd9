//! The answers the guards can give a protected operation instead of the
//! handler's, with the error body of the configured renderer.

use utoipa::openapi::{
    content::ContentBuilder,
    header::HeaderBuilder,
    response::{Response, ResponseBuilder},
    schema::{AnyOfBuilder, ObjectBuilder, Schema, Type},
    Ref, RefOr,
};

use super::declaration::{DeclaredRoute, RouteAccess};

/// The error body the document describes: the one the auth layer's
/// [`ErrorRenderer`](crate::ErrorRenderer) sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ErrorBody {
    /// `application/json` `{"statusCode", "error", "code", "message"}`
    /// ([`ErrorRenderer::json`](crate::ErrorRenderer::json), the default),
    /// as the schema `IamGuardError`.
    #[default]
    Json,
    /// RFC 9457 `application/problem+json`
    /// `{"type", "title", "status", "detail", "code"}`
    /// ([`ErrorRenderer::problem_json`](crate::ErrorRenderer::problem_json)),
    /// as the schema `IamGuardProblem`.
    ProblemJson,
}

impl ErrorBody {
    /// The media type of the body.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::ProblemJson => "application/problem+json",
        }
    }

    /// The name of its schema in `components.schemas`.
    pub fn schema_name(self) -> &'static str {
        match self {
            Self::Json => "IamGuardError",
            Self::ProblemJson => "IamGuardProblem",
        }
    }

    /// The schema of the body.
    pub(crate) fn schema(self) -> Schema {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let integer = || ObjectBuilder::new().schema_type(Type::Integer);
        let code = string().description(Some(
            "The stable machine-readable code, such as `invalid_token` or `INSUFFICIENT_SCOPE`.",
        ));
        let object = ObjectBuilder::new().schema_type(Type::Object);
        let object = match self {
            Self::Json => object
                .description(Some("A refusal, as iam-guard's JSON renderer sends it."))
                .property(
                    "statusCode",
                    integer().description(Some("The HTTP status.")),
                )
                .property(
                    "error",
                    string().description(Some("The status's reason phrase.")),
                )
                .property("code", code)
                .property(
                    "message",
                    string().description(Some("What went wrong, for a person.")),
                )
                .required("statusCode")
                .required("error")
                .required("code")
                .required("message"),
            Self::ProblemJson => object
                .description(Some("A refusal, as an RFC 9457 problem."))
                .property("type", string())
                .property("title", string())
                .property("status", integer())
                .property("detail", string())
                .property("code", code)
                .required("type")
                .required("title")
                .required("status")
                .required("detail")
                .required("code"),
        };
        Schema::Object(object.build())
    }
}

/// One refusal: a status and what it means on this route.
struct Refusal {
    status: u16,
    description: String,
    header: Option<(&'static str, &'static str)>,
}

/// The refusals `route` can answer, by status.
fn refusals(route: &DeclaredRoute) -> Vec<Refusal> {
    let write = route.field_guards.as_ref().is_some_and(|f| f.write);
    let mut bad_request = String::from(
        "Refused by iam-guard: a malformed request (`invalid_request`, such as two tokens) \
         or a missing active tenant (`TENANT_REQUIRED`)",
    );
    if write {
        bad_request.push_str(", or a write body that is not one JSON object (`INVALID_BODY`)");
    }
    let forbidden = match &route.access {
        RouteAccess::Denied => {
            "Refused by iam-guard: this route declares no requirement, so it is denied to \
             every caller (`PERMISSION_DENIED`)"
                .to_owned()
        }
        RouteAccess::Authenticated => {
            "Refused by iam-guard: the active tenant is not one of the caller's \
             (`TENANT_NOT_PERMITTED`), or a cookie token without its XSRF header \
             (`XSRF_MISMATCH`)"
                .to_owned()
        }
        RouteAccess::Requirement(requirement) => {
            let mut text = format!(
                "Refused by iam-guard: the caller does not meet `{requirement}` (`{}`)",
                requirement.denial().code()
            );
            if write {
                text.push_str(
                    ", or the body touches fields the caller cannot write (`FORBIDDEN_FIELDS`)",
                );
            }
            text
        }
    };
    let mut out = vec![
        Refusal {
            status: 400,
            description: bad_request,
            header: None,
        },
        Refusal {
            status: 401,
            description: "Refused by iam-guard: no token, or one that is invalid or expired \
                          (`invalid_token`)"
                .into(),
            header: Some((
                "WWW-Authenticate",
                "The RFC 6750 challenge: `Bearer`, with `error` when a token was sent",
            )),
        },
        Refusal {
            status: 403,
            description: forbidden,
            header: Some((
                "WWW-Authenticate",
                "`Bearer error=\"insufficient_scope\"` (RFC 6750)",
            )),
        },
    ];
    if write {
        out.push(Refusal {
            status: 413,
            description: "Refused by iam-guard: the body is over the size limit \
                          (`PAYLOAD_TOO_LARGE`)"
                .into(),
            header: None,
        });
        out.push(Refusal {
            status: 415,
            description: "Refused by iam-guard: the body is not JSON, or is content-encoded \
                          (`UNSUPPORTED_MEDIA_TYPE`)"
                .into(),
            header: None,
        });
    }
    if route.field_guards.is_some() {
        out.push(Refusal {
            status: 500,
            description: "Refused by iam-guard: the response could not be filtered, so it is \
                          not sent (`INTERNAL`)"
                .into(),
            header: None,
        });
    }
    out.push(Refusal {
        status: 503,
        description: "Refused by iam-guard: signing keys or permissions cannot be obtained from \
                      the IAM (`IAM_UNAVAILABLE`)"
            .into(),
        header: Some(("Retry-After", "Seconds to wait before trying again")),
    });
    out
}

/// Adds the refusals of `route` to `responses`. A status the service
/// already documents keeps its description (the guard's is appended) and
/// gains the error body as an alternative (`anyOf`) when its own body for
/// that media type differs; a `$ref` response is left as it is.
pub(crate) fn add_refusals(
    responses: &mut std::collections::BTreeMap<String, RefOr<Response>>,
    route: &DeclaredRoute,
    body: ErrorBody,
) {
    let schema_ref = || RefOr::Ref(Ref::from_schema_name(body.schema_name()));
    for refusal in refusals(route) {
        let key = refusal.status.to_string();
        match responses.get_mut(&key) {
            None => {
                let mut response = ResponseBuilder::new()
                    .description(&refusal.description)
                    .content(
                        body.content_type(),
                        ContentBuilder::new().schema(Some(schema_ref())).build(),
                    );
                if let Some((name, text)) = refusal.header {
                    response = response.header(name, header(text));
                }
                responses.insert(key, RefOr::T(response.build()));
            }
            Some(RefOr::Ref(_)) => {}
            Some(RefOr::T(existing)) => {
                if !existing.description.contains(&refusal.description) {
                    existing.description = if existing.description.is_empty() {
                        refusal.description.clone()
                    } else {
                        format!("{}; or: {}", existing.description, refusal.description)
                    };
                }
                let ours = schema_ref();
                match existing.content.get_mut(body.content_type()) {
                    None => {
                        existing.content.insert(
                            body.content_type().to_owned(),
                            ContentBuilder::new().schema(Some(ours)).build(),
                        );
                    }
                    Some(content) => {
                        content.schema = match content.schema.take() {
                            None => Some(ours),
                            Some(theirs) if theirs == ours => Some(theirs),
                            Some(RefOr::T(Schema::AnyOf(any))) if any.items.contains(&ours) => {
                                Some(RefOr::T(Schema::AnyOf(any)))
                            }
                            Some(theirs) => Some(RefOr::T(Schema::AnyOf(
                                AnyOfBuilder::new().item(theirs).item(ours).build(),
                            ))),
                        }
                    }
                }
                if let Some((name, text)) = refusal.header {
                    existing
                        .headers
                        .entry(name.to_owned())
                        .or_insert_with(|| header(text));
                }
            }
        }
    }
}

fn header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use http::Method;
    use serde_json::{json, Value};

    use super::*;
    use crate::model::{Requirement, ScopeAccess};

    fn statuses(route: &DeclaredRoute) -> Vec<String> {
        let mut responses = BTreeMap::new();
        add_refusals(&mut responses, route, ErrorBody::Json);
        responses.into_keys().collect()
    }

    fn scopes(method: Method) -> DeclaredRoute {
        DeclaredRoute::new(
            method,
            "/s",
            RouteAccess::Requirement(Requirement::scopes("s", ScopeAccess::Read)),
        )
    }

    #[test]
    fn a_guarded_route_answers_400_401_403_and_503() {
        assert_eq!(statuses(&scopes(Method::GET)), ["400", "401", "403", "503"]);
    }

    #[test]
    fn field_guards_add_500_and_write_bodies_413_and_415() {
        assert_eq!(
            statuses(&scopes(Method::GET).field_guarded("s")),
            ["400", "401", "403", "500", "503"]
        );
        assert_eq!(
            statuses(&scopes(Method::PATCH).field_guarded("s")),
            ["400", "401", "403", "413", "415", "500", "503"]
        );
    }

    #[test]
    fn the_body_is_the_renderers() {
        let mut responses = BTreeMap::new();
        add_refusals(&mut responses, &scopes(Method::GET), ErrorBody::ProblemJson);
        let json = serde_json::to_value(&responses).unwrap();
        assert_eq!(
            json["403"]["content"]["application/problem+json"]["schema"],
            json!({"$ref": "#/components/schemas/IamGuardProblem"})
        );
        let schema = serde_json::to_value(ErrorBody::Json.schema()).unwrap();
        assert_eq!(
            schema["required"],
            json!(["statusCode", "error", "code", "message"])
        );
        assert_eq!(schema["properties"]["statusCode"]["type"], "integer");
    }

    #[test]
    fn a_documented_status_keeps_its_body_beside_the_refusal() {
        let theirs = ResponseBuilder::new()
            .description("no such student")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(Ref::from_schema_name("NotFound"))))
                    .build(),
            )
            .build();
        let mut responses = BTreeMap::from([("400".to_owned(), RefOr::T(theirs))]);
        add_refusals(&mut responses, &scopes(Method::GET), ErrorBody::Json);
        // Twice: the second pass changes nothing.
        add_refusals(&mut responses, &scopes(Method::GET), ErrorBody::Json);
        let json: Value = serde_json::to_value(&responses).unwrap();
        let description = json["400"]["description"].as_str().unwrap();
        assert!(description.starts_with("no such student; or: Refused by iam-guard"));
        assert_eq!(description.matches("Refused by iam-guard").count(), 1);
        assert_eq!(
            json["400"]["content"]["application/json"]["schema"],
            json!({"anyOf": [
                {"$ref": "#/components/schemas/NotFound"},
                {"$ref": "#/components/schemas/IamGuardError"}
            ]})
        );
    }
}
