//! OpenAPI (utoipa): the security of each route, written into the
//! service's own document from the declarations that enforce it.
//!
//! A service documents its handlers with utoipa; [`OpenApiSecurity`]
//! takes that [`OpenApi`] document and what the guards were given — the
//! routes of each [`ProtectedResource`](crate::ProtectedResource) (its
//! [`report`](crate::ProtectedResource::report)), routes guarded one by
//! one with a [`RequirementGuardLayer`], routes that only need a token —
//! and adds, without a second hand-kept list:
//!
//! - the security schemes: `bearerAuth` (HTTP bearer, `bearerFormat:
//!   JWT`) always, and `oauth2` with every OAuth scope a route requires
//!   when you name the IAM's flows ([`OAuth2Flow`]; their URLs are never
//!   guessed);
//! - on each declared operation, its `security`: `bearerAuth` (and
//!   `oauth2`), each with the OAuth scopes the route needs — one
//!   alternative per scope of an "any of" rule. Scopes on a bearer
//!   requirement are the role names OpenAPI 3.1 allows there;
//! - the vendor extension `x-iam-guard` naming the requirement (below);
//! - the refusals the guards can answer instead of the handler, with the
//!   body of the configured renderer ([`ErrorBody`]): 400, 401
//!   (`WWW-Authenticate`), 403, 503 (`Retry-After`) everywhere; 413 and
//!   415 on writes checked by `FieldWriteGuard`; 500 where `FieldFilter`
//!   filters the response. A status the service documents itself keeps
//!   its body, with the error body as an `anyOf` alternative.
//!
//! Operations of the document that no declaration names are left as they
//! are: no security is claimed for them (a top-level `security` the
//! service set itself is its own claim). A declared route missing from the
//! document is added as a minimal operation (its path parameters, the
//! refusals and, unless it is denied, a `default` answer the service does
//! not describe), so the document lists everything the service serves;
//! [`undocumented`](OpenApiSecurity::undocumented) lists those routes, and
//! [`Undocumented::Leave`] leaves them out instead. Paths match by shape:
//! `/students/{id}` in the router is `/students/{student_id}` in the
//! document.
//!
//! # The `x-iam-guard` extension
//!
//! | key | when | value |
//! |---|---|---|
//! | `denied` | always | `true` for a route of a bundle with no requirement: 403 whatever the token |
//! | `requires` | always | `scopes`, `action`, `permissions`, `module`, `oauthScopes`, `roles`, `token` (authentication only) or `nothing` (denied) |
//! | `entity`, `access` | `scopes` | the entity and `READ` or `WRITE` on any of its scope groups |
//! | `entity`, `action` | `action` | the effective action `<entity>.<action>` |
//! | `allOf` / `anyOf` | `permissions`, `oauthScopes`, `roles` | the names, and how they combine |
//! | `module` | `module` | the module |
//! | `refusal` | a requirement, or denied | the 403 code when the caller falls short |
//! | `summary` | always | the requirement as the startup report prints it |
//! | `convention` | always | whether the method convention of the bundle chose it |
//! | `fields` | bundle routes with a requirement | `{"entity", "write", "filter"}`: write bodies are checked (`write`) and responses filtered (`filter`) by scope group |
//!
//! # Example
//!
//! ```
//! use axum::http::Method;
//! use iam_guard::{
//!     openapi::{OAuth2Flow, OpenApiSecurity},
//!     OAuthScopeGuard, ProtectedResource,
//! };
//! use utoipa::openapi::{InfoBuilder, OpenApiBuilder};
//!
//! async fn list() -> &'static str { "[]" }
//!
//! let students = ProtectedResource::<()>::new("students").get("/students", list);
//! let reports = OAuthScopeGuard::all_of(["reports:read"]);
//! // The service's own document, usually `ApiDoc::openapi()` from
//! // `#[derive(utoipa::OpenApi)]`.
//! let doc = OpenApiBuilder::new()
//!     .info(InfoBuilder::new().title("school").version("1").build())
//!     .build();
//!
//! let doc = OpenApiSecurity::new()
//!     .resource(&students)
//!     .route(Method::GET, "/reports", &reports)
//!     .authenticated(Method::GET, "/permissions")
//!     .oauth2_flow(OAuth2Flow::client_credentials("https://iam.example.com/token"))
//!     .secure(doc)?;
//!
//! let json = serde_json::to_value(&doc)?;
//! let list = &json["paths"]["/students"]["get"];
//! assert_eq!(list["security"], serde_json::json!([{"bearerAuth": []}, {"oauth2": []}]));
//! assert_eq!(list["x-iam-guard"]["requires"], "scopes");
//! assert_eq!(list["x-iam-guard"]["access"], "READ");
//! assert_eq!(
//!     json["paths"]["/reports"]["get"]["security"][1],
//!     serde_json::json!({"oauth2": ["reports:read"]})
//! );
//! assert!(json["paths"]["/students"]["get"]["responses"]["403"].is_object());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod declaration;
mod extension;
mod permissions_document;
mod refusals;
mod scheme;

use std::collections::BTreeMap;

use http::Method;
use utoipa::openapi::{
    path::{Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem},
    response::ResponseBuilder,
    schema::{ObjectBuilder, Type},
    security::SecurityRequirement,
    Components, OpenApi, RefOr, Required,
};

pub use self::{
    declaration::{DeclaredRoute, FieldGuards, RouteAccess},
    extension::EXTENSION,
    permissions_document::{permissions_document_schema, PERMISSIONS_DOCUMENT_SCHEMA},
    refusals::ErrorBody,
    scheme::OAuth2Flow,
};
use crate::{guard::require::RequirementGuardLayer, model::Requirement};

/// The name of the HTTP bearer scheme in `components.securitySchemes`.
pub const BEARER_SCHEME: &str = "bearerAuth";
/// The name of the OAuth 2.0 scheme in `components.securitySchemes`.
pub const OAUTH2_SCHEME: &str = "oauth2";

/// What [`OpenApiSecurity::secure`] does with a declared route the
/// document does not describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Undocumented {
    /// Add a minimal operation: its path parameters, the refusals, the
    /// extension and its security (the default).
    #[default]
    Add,
    /// Leave the document without it (see
    /// [`OpenApiSecurity::undocumented`]).
    Leave,
}

/// Why [`OpenApiSecurity::secure`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenApiError {
    /// An OAuth 2.0 flow URL that is not an absolute http(s) URL.
    #[error("the OAuth 2.0 flow URL {0:?} is not an absolute http(s) URL")]
    FlowUrl(String),
    /// One route declared twice with different requirements.
    #[error("{method} {path} is declared twice with different requirements")]
    Conflict {
        /// The method.
        method: Method,
        /// The path.
        path: String,
    },
    /// A method OpenAPI has no operation for (such as CONNECT).
    #[error("OpenAPI has no operation for the method {method} of {path}")]
    Method {
        /// The method.
        method: Method,
        /// The path.
        path: String,
    },
}

/// Writes the guards' declarations into an OpenAPI document. See the
/// [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct OpenApiSecurity {
    routes: Vec<DeclaredRoute>,
    flows: Vec<OAuth2Flow>,
    scope_descriptions: BTreeMap<String, String>,
    error_body: ErrorBody,
    undocumented: Undocumented,
}

impl OpenApiSecurity {
    /// Nothing declared yet; JSON error bodies; undocumented routes added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every route of `bundle`, with its requirement (or denied) and its
    /// field guards, at the paths it registered.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn resource<S>(self, bundle: &crate::ProtectedResource<S>) -> Self
    where
        S: Clone + Send + Sync + 'static,
    {
        self.resource_under("", bundle)
    }

    /// Every route of `bundle` as served under `prefix` (`Router::nest`).
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn resource_under<S>(mut self, prefix: &str, bundle: &crate::ProtectedResource<S>) -> Self
    where
        S: Clone + Send + Sync + 'static,
    {
        for line in bundle.report() {
            let path = declaration::nested(prefix, &line.path);
            let route = match &line.requirement {
                Some(requirement) => DeclaredRoute::new(
                    line.method.clone(),
                    path,
                    RouteAccess::Requirement(requirement.clone()),
                )
                .field_guarded(bundle.entity()),
                // A denied route answers before the field guards.
                None => DeclaredRoute::new(line.method.clone(), path, RouteAccess::Denied),
            };
            self.routes.push(DeclaredRoute {
                by_convention: line.by_convention,
                ..route
            });
        }
        self
    }

    /// `method path`, guarded by `layer` (a [`ScopeGuard`](crate::ScopeGuard),
    /// [`OAuthScopeGuard`](crate::OAuthScopeGuard), ... added with
    /// `route_layer`).
    pub fn route(self, method: Method, path: &str, layer: &RequirementGuardLayer) -> Self {
        self.requirement(method, path, layer.requirement().clone())
    }

    /// `method path`, guarded by `requirement`.
    pub fn requirement(self, method: Method, path: &str, requirement: Requirement) -> Self {
        self.declare(DeclaredRoute::new(
            method,
            path,
            RouteAccess::Requirement(requirement),
        ))
    }

    /// `method path`, behind the auth layer with no requirement guard:
    /// any valid token.
    pub fn authenticated(self, method: Method, path: &str) -> Self {
        self.declare(DeclaredRoute::new(method, path, RouteAccess::Authenticated))
    }

    /// One route as declared, such as one layered by hand with the field
    /// guards ([`DeclaredRoute::field_guarded`]).
    pub fn declare(mut self, route: DeclaredRoute) -> Self {
        self.routes.push(route);
        self
    }

    /// Offer `flow` in the `oauth2` security scheme. Without one, the
    /// document has no `oauth2` scheme and the OAuth scopes a route needs
    /// are listed on its bearer requirement only.
    pub fn oauth2_flow(mut self, flow: OAuth2Flow) -> Self {
        self.flows.push(flow);
        self
    }

    /// What the OAuth scope `scope` grants, for the `oauth2` scheme
    /// (default: the routes that require it).
    pub fn scope_description(mut self, scope: &str, description: &str) -> Self {
        self.scope_descriptions
            .insert(scope.to_owned(), description.to_owned());
        self
    }

    /// The error body the refusals carry (default [`ErrorBody::Json`]):
    /// the format of the auth layer's renderer.
    pub fn error_body(mut self, body: ErrorBody) -> Self {
        self.error_body = body;
        self
    }

    /// What to do with declared routes the document does not describe
    /// (default [`Undocumented::Add`]).
    pub fn undocumented_routes(mut self, what: Undocumented) -> Self {
        self.undocumented = what;
        self
    }

    /// The declarations, in the order given.
    pub fn declarations(&self) -> &[DeclaredRoute] {
        &self.routes
    }

    /// The declared routes `doc` has no operation for.
    pub fn undocumented(&self, doc: &OpenApi) -> Vec<&DeclaredRoute> {
        self.routes
            .iter()
            .filter(|route| {
                find_path(doc, &route.path)
                    .and_then(|key| doc.paths.paths.get(key))
                    .and_then(|item| operation(item, &route.method))
                    .is_none()
            })
            .collect()
    }

    /// Every OAuth scope the declarations require, each once, in the
    /// order first required.
    pub fn oauth_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = Vec::new();
        for route in &self.routes {
            for set in route.oauth_scope_sets() {
                for scope in set {
                    if !scopes.contains(&scope) {
                        scopes.push(scope);
                    }
                }
            }
        }
        scopes
    }

    /// `doc` with the security schemes, the error schema, and each
    /// declared operation's security, extension and refusals.
    ///
    /// # Errors
    ///
    /// [`OpenApiError`] when an OAuth 2.0 flow URL is not absolute
    /// http(s), a route is declared twice with different requirements, or
    /// a method has no OpenAPI operation. The document is not returned
    /// half-secured.
    pub fn secure(self, mut doc: OpenApi) -> Result<OpenApi, OpenApiError> {
        for flow in &self.flows {
            if let Some(bad) = flow
                .urls()
                .into_iter()
                .find(|u| !scheme::is_absolute_http(u))
            {
                return Err(OpenApiError::FlowUrl(bad.to_owned()));
            }
        }
        let routes = self.distinct_routes()?;

        let components = doc.components.get_or_insert_with(Components::new);
        components
            .security_schemes
            .insert(BEARER_SCHEME.to_owned(), scheme::bearer());
        if !self.flows.is_empty() {
            let scopes: Vec<(String, String)> = self
                .oauth_scopes()
                .into_iter()
                .map(|scope| {
                    let text = self
                        .scope_descriptions
                        .get(&scope)
                        .cloned()
                        .unwrap_or_else(|| self.required_by(&scope));
                    (scope, text)
                })
                .collect();
            components.security_schemes.insert(
                OAUTH2_SCHEME.to_owned(),
                scheme::oauth2(&self.flows, &scopes),
            );
        }
        components.schemas.insert(
            self.error_body.schema_name().to_owned(),
            RefOr::T(self.error_body.schema()),
        );

        for route in routes {
            let key = match find_path(&doc, &route.path) {
                Some(key) => key.to_owned(),
                None => openapi_path_of(&route.path),
            };
            let documented = doc
                .paths
                .paths
                .get(&key)
                .and_then(|item| operation(item, &route.method))
                .is_some();
            if !documented && self.undocumented == Undocumented::Leave {
                continue;
            }
            let item = doc.paths.paths.entry(key).or_default();
            let slot = operation_mut(item, &route.method).ok_or_else(|| OpenApiError::Method {
                method: route.method.clone(),
                path: route.path.clone(),
            })?;
            let op = slot.get_or_insert_with(|| minimal_operation(route));
            self.secure_operation(op, route);
        }
        Ok(doc)
    }

    /// The declarations without repeats.
    ///
    /// # Errors
    ///
    /// [`OpenApiError::Conflict`] for a route declared twice differently,
    /// [`OpenApiError::Method`] for a method OpenAPI cannot describe.
    fn distinct_routes(&self) -> Result<Vec<&DeclaredRoute>, OpenApiError> {
        let mut seen: BTreeMap<(String, String), &DeclaredRoute> = BTreeMap::new();
        let mut out = Vec::new();
        for route in &self.routes {
            if !is_operation_method(&route.method) {
                return Err(OpenApiError::Method {
                    method: route.method.clone(),
                    path: route.path.clone(),
                });
            }
            let key = (
                route.method.as_str().to_owned(),
                declaration::path_shape(&route.path),
            );
            match seen.get(&key) {
                Some(earlier) if earlier.access != route.access => {
                    return Err(OpenApiError::Conflict {
                        method: route.method.clone(),
                        path: route.path.clone(),
                    })
                }
                Some(_) => {}
                None => {
                    seen.insert(key, route);
                    out.push(route);
                }
            }
        }
        Ok(out)
    }

    fn secure_operation(&self, op: &mut Operation, route: &DeclaredRoute) {
        let mut security = Vec::new();
        let mut schemes = vec![BEARER_SCHEME];
        if !self.flows.is_empty() {
            schemes.push(OAUTH2_SCHEME);
        }
        for name in schemes {
            for set in route.oauth_scope_sets() {
                security.push(SecurityRequirement::new(name, set));
            }
        }
        op.security = Some(security);
        op.extensions
            .get_or_insert_with(Default::default)
            .insert(EXTENSION.to_owned(), extension::extension(route));
        refusals::add_refusals(&mut op.responses.responses, route, self.error_body);
    }

    /// "Required by GET /a, POST /b".
    fn required_by(&self, scope: &str) -> String {
        let routes: Vec<String> = self
            .routes
            .iter()
            .filter(|r| {
                r.oauth_scope_sets()
                    .iter()
                    .any(|set| set.iter().any(|s| s == scope))
            })
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        format!("Required by {}", routes.join(", "))
    }
}

/// The document's key for `path`, matched by shape.
fn find_path<'d>(doc: &'d OpenApi, path: &str) -> Option<&'d str> {
    let shape = declaration::path_shape(path);
    doc.paths
        .paths
        .keys()
        .find(|key| declaration::path_shape(key) == shape)
        .map(String::as_str)
}

fn openapi_path_of(path: &str) -> String {
    declaration::openapi_path(path).0
}

fn is_operation_method(method: &Method) -> bool {
    operation_mut(&mut PathItem::default(), method).is_some()
}

fn operation<'i>(item: &'i PathItem, method: &Method) -> Option<&'i Operation> {
    match *method {
        Method::GET => item.get.as_ref(),
        Method::PUT => item.put.as_ref(),
        Method::POST => item.post.as_ref(),
        Method::DELETE => item.delete.as_ref(),
        Method::OPTIONS => item.options.as_ref(),
        Method::HEAD => item.head.as_ref(),
        Method::PATCH => item.patch.as_ref(),
        Method::TRACE => item.trace.as_ref(),
        _ => None,
    }
}

fn operation_mut<'i>(item: &'i mut PathItem, method: &Method) -> Option<&'i mut Option<Operation>> {
    Some(match *method {
        Method::GET => &mut item.get,
        Method::PUT => &mut item.put,
        Method::POST => &mut item.post,
        Method::DELETE => &mut item.delete,
        Method::OPTIONS => &mut item.options,
        Method::HEAD => &mut item.head,
        Method::PATCH => &mut item.patch,
        Method::TRACE => &mut item.trace,
        _ => return None,
    })
}

/// The operation added for a declared route the document lacks.
fn minimal_operation(route: &DeclaredRoute) -> Operation {
    let (_, names) = declaration::openapi_path(&route.path);
    let mut op = OperationBuilder::new().summary(Some(format!(
        "{} {} (declared to iam-guard, not documented by the service)",
        route.method, route.path
    )));
    for name in names {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    if route.access != RouteAccess::Denied {
        op = op.response(
            "default",
            ResponseBuilder::new().description("The route's own answer, not documented"),
        );
    }
    op.build()
}

#[cfg(test)]
mod tests;
