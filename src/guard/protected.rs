//! [`ProtectedResource`]: one call protects every route of an entity.
//!
//! Routes are registered through the bundle, so it knows every (method,
//! path) it serves and which requirement guards it. In convention mode
//! (the default) the requirement comes from the method:
//!
//! | method | requirement |
//! |---|---|
//! | GET, HEAD | READ on any scope of the entity |
//! | PATCH, PUT | WRITE on any scope of the entity |
//! | POST | action `create` |
//! | DELETE | action `delete` |
//!
//! An explicit requirement overrides the convention. A route with neither
//! (another method, or any route in [`explicit`](ProtectedResource::explicit)
//! mode without one) is **denied** with 403, never open, and
//! [`report`](ProtectedResource::report) lists it as such at startup.
//!
//! Guards are per-route layers, so an unknown path stays a 404 and a wrong
//! method a 405; authentication, when given to the bundle, is a route layer
//! for the same reason.
//!
//! Each guarded route runs, outermost first: the requirement guard,
//! [`FieldWriteGuard`](super::field_write::FieldWriteGuard) (write bodies
//! touch only writable scope groups), the handler, and
//! [`FieldFilter`](super::field_filter::FieldFilter) (responses carry only
//! readable scope groups). Both field guards use the bundle's entity when a
//! route's requirement names none. Configure them with
//! [`always_allowed`](ProtectedResource::always_allowed),
//! [`body_limit`](ProtectedResource::body_limit) or whole layers
//! ([`field_write`](ProtectedResource::field_write),
//! [`field_filter`](ProtectedResource::field_filter)), before or after the
//! routes: the bundle layers every route when it builds the router.
//!
//! # Example
//!
//! ```
//! use axum::{http::Method, Router};
//! use iam_guard::{guard::protected::ProtectedResource, model::Requirement};
//!
//! async fn list() -> &'static str { "[]" }
//! async fn create() -> &'static str { "{}" }
//! async fn archive() -> &'static str { "" }
//!
//! let students = ProtectedResource::new("students")
//!     .get("/students", list)
//!     .post("/students", create)
//!     .route_with(
//!         Method::POST,
//!         "/students/{id}/archive",
//!         Requirement::action("students", "archive"),
//!         archive,
//!     );
//! for line in students.report() {
//!     println!("{line}");
//! }
//! let app: Router = students.into_router();
//! # let _ = app;
//! ```

use std::{collections::BTreeMap, fmt};

use axum::{
    handler::Handler,
    http::Method,
    response::Response,
    routing::{on, MethodFilter, MethodRouter},
    Router,
};
use tower_layer::Stack;

use super::{
    auth::JwtAuthGuardLayer,
    body::refuse_async,
    context::{RequestContext, DEFAULT_DRAIN_LIMIT},
    deny::{route_of, Guard, Scene},
    field_filter::FieldFilterLayer,
    field_write::FieldWriteGuardLayer,
    require::RequirementGuardLayer,
};
use crate::{
    model::{Requirement, ScopeAccess},
    rejection::{Rejection, UNDECLARED_ROUTE},
};

/// One line of the startup report.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteReport {
    /// The method.
    pub method: Method,
    /// The path as registered.
    pub path: String,
    /// The requirement, or `None` when the route is denied to everyone.
    pub requirement: Option<Requirement>,
    /// Whether the requirement came from the method convention.
    pub by_convention: bool,
}

impl fmt::Display for RouteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Method`'s own Display ignores the width; its `&str` honours it.
        let method = self.method.as_str();
        match &self.requirement {
            Some(r) if self.by_convention => {
                write!(f, "{method:<7} {} -> {r} (convention)", self.path)
            }
            Some(r) => write!(f, "{method:<7} {} -> {r}", self.path),
            None => write!(
                f,
                "{method:<7} {} -> DENIED (no requirement declared)",
                self.path
            ),
        }
    }
}

/// The requirement the method convention gives `method` on `entity`.
pub fn convention(entity: &str, method: &Method) -> Option<Requirement> {
    match *method {
        Method::GET | Method::HEAD => Some(Requirement::scopes(entity, ScopeAccess::Read)),
        Method::PATCH | Method::PUT => Some(Requirement::scopes(entity, ScopeAccess::Write)),
        Method::POST => Some(Requirement::action(entity, "create")),
        Method::DELETE => Some(Requirement::action(entity, "delete")),
        _ => None,
    }
}

/// Protects the routes of one entity. See the [module docs](self).
pub struct ProtectedResource<S = ()> {
    entity: String,
    convention: bool,
    /// One unlayered method router per report line, in the same order:
    /// layers are applied by `into_router`, so settings may come in any
    /// order.
    routes: Vec<MethodRouter<S>>,
    report: Vec<RouteReport>,
    auth: Option<JwtAuthGuardLayer>,
    field_write: FieldWriteGuardLayer,
    field_filter: FieldFilterLayer,
}

impl<S> fmt::Debug for ProtectedResource<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedResource")
            .field("entity", &self.entity)
            .field("convention", &self.convention)
            .field("routes", &self.report)
            .finish_non_exhaustive()
    }
}

impl<S> ProtectedResource<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// A bundle for `entity` in convention mode.
    pub fn new(entity: &str) -> Self {
        Self {
            entity: entity.to_owned(),
            convention: true,
            routes: Vec::new(),
            report: Vec::new(),
            auth: None,
            field_write: FieldWriteGuardLayer::new().entity(entity),
            field_filter: FieldFilterLayer::new().entity(entity),
        }
    }

    /// A bundle for `entity` where every route must declare its
    /// requirement with [`route_with`](Self::route_with); any other route is
    /// denied.
    pub fn explicit(entity: &str) -> Self {
        Self {
            convention: false,
            ..Self::new(entity)
        }
    }

    /// The entity.
    pub fn entity(&self) -> &str {
        &self.entity
    }

    /// Authenticate the bundle's routes with `layer` (as a route layer, so
    /// 404 and 405 answers stay what they are). Leave it out when the
    /// auth layer wraps the whole application.
    ///
    /// It is also the cheaper way to put the auth layer in front of the
    /// bundle: each route then gets one layer with the auth guard and its
    /// requirement and field guards composed, where a `route_layer(auth)`
    /// over the bundle's router adds a second one, and axum boxes a future
    /// and clones a boxed service per layer on every request.
    pub fn authenticate(mut self, layer: JwtAuthGuardLayer) -> Self {
        self.auth = Some(layer);
        self
    }

    /// The FieldWriteGuard of every route (default: 1 MiB limit). The
    /// bundle's entity is set on it as the fallback entity.
    pub fn field_write(mut self, layer: FieldWriteGuardLayer) -> Self {
        self.field_write = layer.entity(&self.entity);
        self
    }

    /// The FieldFilter of every route (default: keeps `id`, `createdAt`,
    /// `updatedAt`; 8 MiB buffer). The bundle's entity is set on it as
    /// the fallback entity.
    pub fn field_filter(mut self, layer: FieldFilterLayer) -> Self {
        self.field_filter = layer.entity(&self.entity);
        self
    }

    /// The top-level keys every response keeps whatever the caller's
    /// scopes (default `id`, `createdAt`, `updatedAt`).
    pub fn always_allowed<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.field_filter = self.field_filter.always_allowed(keys);
        self
    }

    /// The largest write body accepted, in bytes (default 1 MiB; larger is
    /// a 413).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.field_write = self.field_write.limit(bytes);
        self
    }

    /// `method path` with the convention's requirement (or denied).
    ///
    /// # Panics
    ///
    /// When the same method and path are registered twice, like axum.
    pub fn route<H, T>(self, method: Method, path: &str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let requirement = if self.convention {
            convention(&self.entity, &method)
        } else {
            None
        };
        self.register(method, path, requirement, true, handler)
    }

    /// `method path` guarded by `requirement`, whatever the convention says.
    ///
    /// # Panics
    ///
    /// When the same method and path are registered twice, like axum.
    pub fn route_with<H, T>(
        self,
        method: Method,
        path: &str,
        requirement: Requirement,
        handler: H,
    ) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.register(method, path, Some(requirement), false, handler)
    }

    /// `GET path` (HEAD included) by convention.
    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.route(Method::GET, path, handler)
    }

    /// `POST path` by convention.
    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.route(Method::POST, path, handler)
    }

    /// `PUT path` by convention.
    pub fn put<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.route(Method::PUT, path, handler)
    }

    /// `PATCH path` by convention.
    pub fn patch<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.route(Method::PATCH, path, handler)
    }

    /// `DELETE path` by convention.
    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.route(Method::DELETE, path, handler)
    }

    fn register<H, T>(
        mut self,
        method: Method,
        path: &str,
        requirement: Option<Requirement>,
        by_convention: bool,
        handler: H,
    ) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        assert!(
            !self
                .report
                .iter()
                .any(|r| r.method == method && r.path == path),
            "{method} {path} is registered twice in the {} bundle",
            self.entity
        );
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("axum cannot route the method {method}"));
        self.routes.push(match &requirement {
            Some(_) => on(filter, handler),
            // Fail closed: the handler is never reachable.
            None => on(filter, deny_undeclared),
        });
        self.report.push(RouteReport {
            method,
            path: path.to_owned(),
            requirement,
            by_convention,
        });
        self
    }

    /// Every route with its requirement, in registration order.
    pub fn report(&self) -> &[RouteReport] {
        &self.report
    }

    /// The OAuth scopes the bundle's routes require
    /// ([`Requirement::OAuthScopes`]), each once, in registration order:
    /// what its protected resource metadata should list in
    /// `scopes_supported`
    /// ([`ProtectedResourceMetadataBuilder::scopes_supported`](crate::resource_metadata::ProtectedResourceMetadataBuilder::scopes_supported)).
    /// Entity scope groups are not OAuth scopes and are not listed.
    pub fn oauth_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = Vec::new();
        for line in &self.report {
            if let Some(Requirement::OAuthScopes(rule)) = &line.requirement {
                for scope in rule.items() {
                    if !scopes.contains(scope) {
                        scopes.push(scope.clone());
                    }
                }
            }
        }
        scopes
    }

    /// The router, with the report logged at INFO (target
    /// `iam_guard::startup`) and denied routes at WARN.
    pub fn into_router(self) -> Router<S> {
        for line in &self.report {
            if line.requirement.is_some() {
                tracing::info!(target: "iam_guard::startup", entity = %self.entity, "{line}");
            } else {
                tracing::warn!(target: "iam_guard::startup", entity = %self.entity, "{line}");
            }
        }
        let mut paths: BTreeMap<String, MethodRouter<S>> = BTreeMap::new();
        for (line, mut method_router) in self.report.iter().zip(self.routes) {
            // One composed layer per method, not one `route_layer` per
            // guard: axum boxes a future and clones a boxed service per
            // `route_layer` on every request. It wraps outward: the auth
            // guard runs first, then the requirement guard, which records
            // the requirement the field guards read.
            //
            // Per method, not `Router::route_layer`: axum layers a path's
            // whole method router there, 405 fallback included, so a wrong
            // method without a token would become a 401.
            //
            // Only a method that writes gets FieldWriteGuard: it lets any
            // other method through untouched, and one layer fewer is one
            // future and one move of the response fewer.
            macro_rules! layered {
                ($guards:expr) => {
                    match &self.auth {
                        Some(auth) => method_router.route_layer(Stack::new($guards, auth.clone())),
                        None => method_router.route_layer($guards),
                    }
                };
            }
            let writes = matches!(line.method, Method::POST | Method::PUT | Method::PATCH);
            method_router = match (&line.requirement, writes) {
                (Some(requirement), true) => layered!(Stack::new(
                    Stack::new(self.field_filter.clone(), self.field_write.clone()),
                    RequirementGuardLayer::new(requirement.clone()),
                )),
                (Some(requirement), false) => layered!(Stack::new(
                    self.field_filter.clone(),
                    RequirementGuardLayer::new(requirement.clone()),
                )),
                (None, _) => match &self.auth {
                    Some(auth) => method_router.route_layer(auth.clone()),
                    None => method_router,
                },
            };
            let merged = match paths.remove(&line.path) {
                Some(existing) => existing.merge(method_router),
                None => method_router,
            };
            paths.insert(line.path.clone(), merged);
        }
        paths
            .into_iter()
            .fold(Router::new(), |router, (path, method_router)| {
                router.route(&path, method_router)
            })
    }
}

async fn deny_undeclared(req: axum::extract::Request) -> Response {
    let rejection = Rejection::new(UNDECLARED_ROUTE, "this route declares no requirement");
    let context = RequestContext::from_extensions(req.extensions());
    let res = Scene::new(Guard::Undeclared, req.method(), route_of(req.extensions()))
        .within_opt(context)
        .deny_with(&rejection, "no requirement is declared for this route", &[]);
    let limit = context.map_or(DEFAULT_DRAIN_LIMIT, |c| c.policy().drain_limit);
    refuse_async(req, res, limit).await
}
