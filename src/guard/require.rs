//! [`RequirementGuard`]: one guard for every route requirement. It reads
//! the request's memoized permissions, evaluates one [`Requirement`], and
//! answers 403 or calls the route.
//!
//! Build it with the constructor that says what the route needs:
//!
//! | constructor | passes when | else |
//! |---|---|---|
//! | [`ScopeGuard::read`] / [`ScopeGuard::write`] | the caller has ANY scope of the entity at that level (WRITE implies READ) | 403 `INSUFFICIENT_SCOPE` |
//! | [`ActionGuard::new`] | the action `<entity>.<action>` is effective: granted by a role AND every scope it requires holds | 403 `ACTION_NOT_PERMITTED` |
//! | [`PermissionGuard::all_of`] / [`any_of`](PermissionGuard::any_of) / [`module`](PermissionGuard::module) | the flat permission strings or the module are granted | 403 `PERMISSION_DENIED` |
//! | [`OAuthScopeGuard::all_of`] / [`any_of`](OAuthScopeGuard::any_of) | the access token grants the OAuth scopes (`scope` / `scp`) | 403 `INSUFFICIENT_OAUTH_SCOPE`, challenge `Bearer error="insufficient_scope", scope="<needed>"` |
//! | [`RoleGuard::all_of`] / [`any_of`](RoleGuard::any_of) | the token grants the roles (names, or `"<qualifier>:<name>"`) | 403 `ROLE_REQUIRED` |
//! | [`RequirementGuardLayer::new`] | any [`Requirement`] | its code |
//!
//! The scope gate is deliberately coarse: which scope groups the caller
//! may actually read or write is enforced by
//! [`FieldWriteGuard`](super::field_write::FieldWriteGuard) and
//! [`FieldFilter`](super::field_filter::FieldFilter), which take the
//! route's entity from the requirement this guard records in the request
//! context.
//!
//! Put [`JwtAuthGuardLayer`](crate::JwtAuthGuardLayer) with a permission
//! source in front of it: without one the guard answers 500, never passes.
//! OAuth scope and role guards are answered by the verified token alone:
//! they load no permissions and need no source (teams that authorize by
//! their IdP's roles need no catalogue).
//! A request an optional auth layer let through without a token is a 401.
//! With [`JwtAuthGuardLayer::super_user_bypass`](crate::JwtAuthGuardLayer::super_user_bypass)
//! on, a super user passes unchecked, and each such pass is audited.
//!
//! Add it with `route_layer` so an unknown path stays a 404 and a wrong
//! method a 405.
//!
//! # Example
//!
//! ```
//! use axum::{routing::{delete, get, post}, Router};
//! use iam_guard::{ActionGuard, PermissionGuard, ScopeGuard};
//!
//! async fn handler() -> &'static str { "{}" }
//!
//! let app: Router = Router::new()
//!     .route("/students", get(handler).route_layer(ScopeGuard::read("students")))
//!     .route("/students/new", post(handler).route_layer(ActionGuard::new("students", "create")))
//!     .route(
//!         "/regions/{id}",
//!         delete(handler).route_layer(PermissionGuard::all_of(["inventory.regions.delete"])),
//!     );
//! # let _ = app;
//! ```

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::{
    body::{refuse_async, refused},
    context::RequestContext,
    deny::{route_of, Guard, Scene},
    future::ResponseFuture,
};
use crate::{
    metrics,
    model::{CompiledPermissions, Denial, PermissionRule, Requirement, ScopeAccess},
    rejection::{is_grpc, Rejection},
};

/// Applies [`RequirementGuard`]. See the [module docs](self) for the named
/// constructors.
#[derive(Clone, Debug)]
pub struct RequirementGuardLayer {
    requirement: Arc<Requirement>,
}

impl RequirementGuardLayer {
    /// Enforces `requirement`.
    pub fn new(requirement: Requirement) -> Self {
        Self {
            requirement: Arc::new(requirement),
        }
    }

    /// Requires `level` (READ or WRITE) on any scope of `entity`.
    pub fn scopes(entity: &str, level: ScopeAccess) -> Self {
        Self::new(Requirement::scopes(entity, level))
    }

    /// Requires the effective action `action` on `entity`.
    pub fn action(entity: &str, action: &str) -> Self {
        Self::new(Requirement::action(entity, action))
    }

    /// Requires every one of `permissions`.
    pub fn all_of<I, P>(permissions: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        Self::new(Requirement::all_of(permissions))
    }

    /// Requires at least one of `permissions`.
    pub fn any_of<I, P>(permissions: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        Self::new(Requirement::any_of(permissions))
    }

    /// Requires the module `module`.
    pub fn module(module: &str) -> Self {
        Self::new(Requirement::module(module))
    }

    /// The requirement this layer enforces.
    pub fn requirement(&self) -> &Requirement {
        &self.requirement
    }
}

/// The requirement a guard layer enforces, so that a table of
/// requirements (`GrpcMethods::method`, feature `grpc`) reads like the
/// routes: `ScopeGuard::read("students")`.
impl From<RequirementGuardLayer> for Requirement {
    fn from(layer: RequirementGuardLayer) -> Self {
        Arc::unwrap_or_clone(layer.requirement)
    }
}

impl<S> Layer<S> for RequirementGuardLayer {
    type Service = RequirementGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirementGuard {
            inner,
            requirement: self.requirement.clone(),
        }
    }
}

/// The gate of read and update routes: ANY scope of an entity at a level.
/// Its constructors build a [`RequirementGuardLayer`]; see the
/// [module docs](self).
#[derive(Debug)]
#[non_exhaustive]
pub struct ScopeGuard;

impl ScopeGuard {
    /// Requires READ (or WRITE) on any scope of `entity`.
    pub fn read(entity: &str) -> RequirementGuardLayer {
        RequirementGuardLayer::scopes(entity, ScopeAccess::Read)
    }

    /// Requires WRITE on any scope of `entity`.
    pub fn write(entity: &str) -> RequirementGuardLayer {
        RequirementGuardLayer::scopes(entity, ScopeAccess::Write)
    }

    /// Requires `level` on any scope of `entity`.
    #[allow(
        clippy::new_ret_no_self,
        reason = "a name for a requirement guard, not a type of its own"
    )]
    pub fn new(entity: &str, level: ScopeAccess) -> RequirementGuardLayer {
        RequirementGuardLayer::scopes(entity, level)
    }
}

/// The gate of create and delete routes: an effective action. Its
/// constructor builds a [`RequirementGuardLayer`]; see the
/// [module docs](self).
#[derive(Debug)]
#[non_exhaustive]
pub struct ActionGuard;

impl ActionGuard {
    /// Requires the effective action `action` on `entity`.
    #[allow(
        clippy::new_ret_no_self,
        reason = "a name for a requirement guard, not a type of its own"
    )]
    pub fn new(entity: &str, action: &str) -> RequirementGuardLayer {
        RequirementGuardLayer::action(entity, action)
    }
}

/// Flat permission strings (`inventory.regions.delete`) and modules
/// (`finance`). Its constructors build a [`RequirementGuardLayer`]; see the
/// [module docs](self).
#[derive(Debug)]
#[non_exhaustive]
pub struct PermissionGuard;

impl PermissionGuard {
    /// Requires every one of `permissions`.
    pub fn all_of<I, P>(permissions: I) -> RequirementGuardLayer
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        RequirementGuardLayer::all_of(permissions)
    }

    /// Requires at least one of `permissions`.
    pub fn any_of<I, P>(permissions: I) -> RequirementGuardLayer
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        RequirementGuardLayer::any_of(permissions)
    }

    /// Requires the module `module`.
    pub fn module(module: &str) -> RequirementGuardLayer {
        RequirementGuardLayer::module(module)
    }
}

/// OAuth 2.0 scopes the access token must grant (`scope` / `scp` claims,
/// see [`ClaimMapping::oauth_scopes`](crate::ClaimMapping::oauth_scopes)).
/// Its constructors build a [`RequirementGuardLayer`]; see the
/// [module docs](self).
///
/// These are the scopes a client asked its authorization server for
/// (`students:read`), unrelated to the scope groups of an entity that
/// [`ScopeGuard`] checks. A refusal is 403 `INSUFFICIENT_OAUTH_SCOPE` with
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`
/// naming the scopes of the rule.
///
/// ```
/// use axum::{routing::get, Router};
/// use iam_guard::{OAuthScopeGuard, RoleGuard};
///
/// async fn handler() -> &'static str { "{}" }
///
/// let app: Router = Router::new()
///     .route("/grades", get(handler).route_layer(OAuthScopeGuard::all_of(["grades:read"])))
///     .route("/admin", get(handler).route_layer(RoleGuard::any_of(["admin", "students-api:admin"])));
/// # let _ = app;
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct OAuthScopeGuard;

impl OAuthScopeGuard {
    /// Requires every one of `scopes`.
    pub fn all_of<I, S>(scopes: I) -> RequirementGuardLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequirementGuardLayer::new(Requirement::oauth_scopes(PermissionRule::AllOf(
            scopes.into_iter().map(Into::into).collect(),
        )))
    }

    /// Requires at least one of `scopes`.
    pub fn any_of<I, S>(scopes: I) -> RequirementGuardLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequirementGuardLayer::new(Requirement::oauth_scopes(PermissionRule::AnyOf(
            scopes.into_iter().map(Into::into).collect(),
        )))
    }
}

/// Roles the token must grant, for teams that authorize by their IdP's
/// roles without a catalogue. Each role is a name (`"admin"`, from any
/// mapped role claim) or `"<qualifier>:<name>"` (`"students-api:admin"`,
/// only from the role claim mapped with that qualifier, see
/// [`ClaimMapping::qualified_roles`](crate::ClaimMapping::qualified_roles)).
/// A refusal is 403 `ROLE_REQUIRED`. Its constructors build a
/// [`RequirementGuardLayer`]; see [`OAuthScopeGuard`] for an example.
#[derive(Debug)]
#[non_exhaustive]
pub struct RoleGuard;

impl RoleGuard {
    /// Requires every one of `roles`.
    pub fn all_of<I, S>(roles: I) -> RequirementGuardLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequirementGuardLayer::new(Requirement::roles(PermissionRule::AllOf(
            roles.into_iter().map(Into::into).collect(),
        )))
    }

    /// Requires at least one of `roles`.
    pub fn any_of<I, S>(roles: I) -> RequirementGuardLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequirementGuardLayer::new(Requirement::roles(PermissionRule::AnyOf(
            roles.into_iter().map(Into::into).collect(),
        )))
    }
}

/// Enforces one route requirement. See the [module docs](self).
#[derive(Clone)]
pub struct RequirementGuard<S> {
    inner: S,
    requirement: Arc<Requirement>,
}

impl<S: fmt::Debug> fmt::Debug for RequirementGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequirementGuard")
            .field("inner", &self.inner)
            .field("requirement", &self.requirement)
            .finish()
    }
}

impl<S> RequirementGuard<S> {
    /// Wraps `inner` with `requirement`.
    pub fn new(inner: S, requirement: Requirement) -> Self {
        RequirementGuardLayer::new(requirement).layer(inner)
    }

    crate::macros::define_inner_service_accessors!();
}

/// Who is refused where, by this guard.
fn scene<'a, B>(
    req: &'a Request<B>,
    context: &'a RequestContext,
    requirement: &'a Requirement,
) -> Scene<'a> {
    Scene::new(Guard::Requirement, req.method(), route_of(req.extensions()))
        .within(context)
        .requirement(requirement)
}

/// The answer of the requirement to `loaded`, if it is a refusal. The
/// scene is only built for one: a request that passes pays nothing for it.
fn verdict<'a, B: From<Bytes>>(
    scene: impl FnOnce() -> Scene<'a>,
    requirement: &Requirement,
    loaded: Result<&CompiledPermissions, &super::context::NoPermissions>,
) -> Option<Response<B>> {
    match loaded {
        Ok(perms) => match requirement.evaluate(perms) {
            Ok(()) => {
                metrics::requirement_allowed();
                None
            }
            Err(denial) => Some(scene().deny(&refusal(requirement, denial))),
        },
        Err(why) => Some(scene().no_permissions(why)),
    }
}

/// The answer of a requirement of the token: no permissions are loaded.
fn verdict_on_token<'a, B: From<Bytes>>(
    scene: impl FnOnce() -> Scene<'a>,
    requirement: &Requirement,
    context: &RequestContext,
) -> Option<Response<B>> {
    let Some(principal) = context.principal() else {
        return Some(scene().no_permissions(&super::context::NoPermissions::Anonymous));
    };
    match requirement.evaluate_token(principal) {
        Ok(()) => {
            metrics::requirement_allowed();
            None
        }
        Err(denial) => Some(scene().deny(&refusal(requirement, denial))),
    }
}

/// The 403 of `denial`, naming the OAuth scopes to ask for when the
/// requirement is on OAuth scopes.
fn refusal(requirement: &Requirement, denial: Denial) -> Rejection {
    let rejection = Rejection::from(denial);
    match requirement.oauth_scope_hint() {
        Some(scopes) => rejection.with_oauth_scope(scopes),
        None => rejection,
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequirementGuard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        enforce(&mut self.inner, &self.requirement, req)
    }
}

/// Checks `requirement` for `req`, then calls `inner` (polled ready) or
/// answers with the refusal: the requirement guard's call, shared with
/// the bundles that pick a requirement per request (`GrpcMethods`).
pub(crate) fn enforce<S, ReqBody, ResBody>(
    inner: &mut S,
    requirement: &Arc<Requirement>,
    req: Request<ReqBody>,
) -> ResponseFuture<S::Future, ResBody, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ResBody: From<Bytes> + Send + 'static,
{
    let Some(context) = RequestContext::from_extensions(req.extensions()).cloned() else {
        // No auth layer in front: a wiring bug, and never a reason to
        // let the request through.
        let res = Scene::new(Guard::Requirement, req.method(), route_of(req.extensions()))
            .requirement(requirement)
            .grpc(is_grpc(req.headers()))
            .wiring(
                "a requirement guard ran without JwtAuthGuard: put JwtAuthGuardLayer \
                 with a permission source in front of this route",
            );
        return refused(req, res, super::context::DEFAULT_DRAIN_LIMIT);
    };
    context.record(requirement);
    let limit = context.policy().drain_limit;
    // Only a FieldFilter outside the auth layer reads the context off the
    // response; it asks for it, and no other response carries it.
    let carried = RequestContext::wanted_on_response(req.extensions()).then(|| context.clone());
    if context.bypasses() {
        scene(&req, &context, requirement).bypass();
        return ResponseFuture::inner_carrying(inner.call(req), carried);
    }
    // Decided on the spot when the token answers, or when the
    // permissions are at hand without waiting.
    let decided = if requirement.is_on_token() {
        Some(verdict_on_token(
            || scene(&req, &context, requirement),
            requirement,
            &context,
        ))
    } else {
        context.permissions_now().map(|loaded| {
            verdict(
                || scene(&req, &context, requirement),
                requirement,
                loaded.as_deref(),
            )
        })
    };
    if let Some(refusal) = decided {
        return match refusal {
            // The common case, built in place.
            None => ResponseFuture::inner_carrying(inner.call(req), carried),
            Some(res) => refused(req, res, limit).carrying(carried),
        };
    }
    // The first reader of this request loads. The future owns the
    // service, so take the instance that was polled ready and leave a
    // clone: https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
    let clone = inner.clone();
    let mut inner = std::mem::replace(inner, clone);
    let requirement = requirement.clone();
    ResponseFuture::boxed(Box::pin(async move {
        let loaded = context.permissions().await;
        match verdict(
            || scene(&req, &context, &requirement),
            &requirement,
            loaded.as_deref(),
        ) {
            None => inner.call(req).await,
            Some(res) => Ok(refuse_async(req, res, limit).await),
        }
    }))
    .carrying(carried)
}
