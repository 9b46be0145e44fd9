//! [`FieldWriteGuard`]: a write body may only touch the scope groups the
//! caller can WRITE.
//!
//! On POST, PUT and PATCH the guard reads the body (bounded), and passes
//! the request on only when the body is a JSON object whose every
//! top-level key is a scope group of the route's entity with WRITE
//! access. Other methods pass untouched and their body is not read.
//!
//! | the request | answer |
//! |---|---|
//! | `Content-Type` not `application/json` nor `application/*+json`, or a `Content-Encoding` | 415 `UNSUPPORTED_MEDIA_TYPE` |
//! | body over the limit (default 1 MiB; `Content-Length` checked first) | 413 `PAYLOAD_TOO_LARGE` |
//! | empty, not JSON, truncated, nested 128 levels deep or more, not an object (`null`, array, string...), or a top-level key twice | 400 `INVALID_BODY` |
//! | a system field (`id`, `createdAt`, `updatedAt`, `tenantId`) or a key that is not a scope group with WRITE | 403 `FORBIDDEN_FIELDS` |
//! | permissions cannot be loaded | 503 `IAM_UNAVAILABLE` |
//! | no requirement guard outside it, or no entity to check against | 500 `INTERNAL` |
//!
//! A write with neither `Content-Type` nor body bytes (`Content-Length: 0`,
//! say a `POST /students/{id}/archive`) carries no field and passes.
//!
//! Only top-level keys are examined; the inside of a group is validated as
//! JSON but never materialized. Duplicate top-level keys are refused
//! because JSON parsers disagree on which copy wins: a handler keeping the
//! last `sensitive` could receive a value that the check of the first
//! never saw. The offending keys are logged (the `keys` field of the
//! `iam_guard::audit` event, with user, tenant, route and requirement) and
//! never returned: the response says only that the body has forbidden
//! fields, so it does not map the caller's permissions for a prober.
//!
//! The handler receives the original bytes unchanged, as the same body
//! type the guard was given (`ReqBody: From<Bytes>`; axum's `Body`
//! qualifies), so `Content-Length` stays right and `Json<T>` works as
//! usual.
//!
//! The entity comes from the requirement a requirement guard
//! ([`ScopeGuard`](crate::ScopeGuard), [`ActionGuard`](crate::ActionGuard),
//! [`PermissionGuard`](crate::PermissionGuard)) records in the request
//! context, so this guard must run **inside** one: add it with
//! `route_layer` *before* the requirement guard. A requirement naming no
//! entity (flat permissions) falls back to [`FieldWriteGuardLayer::entity`];
//! with neither the guard answers 500 rather than let an unchecked body
//! through.
//!
//! With [`JwtAuthGuardLayer::super_user_bypass`](crate::JwtAuthGuardLayer::super_user_bypass)
//! on, a super user's write passes unread; each such pass is audited.
//!
//! # Example
//!
//! ```
//! use axum::{body::Body, http::Request, routing::patch, Router};
//! use iam_guard::{
//!     test_util::TestIam, ClaimsSource, FieldWriteGuardLayer, JwtAuthGuardLayer, ScopeGuard,
//! };
//! use serde_json::json;
//! use tower::ServiceExt;
//!
//! async fn update(body: String) -> String { body }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let iam = TestIam::start().await;
//! let app = Router::new()
//!     .route(
//!         "/students/{id}",
//!         patch(update)
//!             // Inner first: the write guard runs after the scope gate.
//!             .route_layer(FieldWriteGuardLayer::new().limit(64 * 1024))
//!             .route_layer(ScopeGuard::write("students")),
//!     )
//!     .layer(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()));
//!
//! let token = iam.mint(json!({
//!     "entities": { "students": { "scopes": { "anagraphic": "WRITE" }, "actions": {} } }
//! }));
//! let send = |body: &'static str| {
//!     Request::patch("/students/7")
//!         .header("authorization", format!("Bearer {token}"))
//!         .header("content-type", "application/json")
//!         .body(Body::from(body))
//!         .unwrap()
//! };
//! let ok = app.clone().oneshot(send(r#"{"anagraphic":{"firstName":"Mario"}}"#)).await.unwrap();
//! assert_eq!(ok.status(), 200);
//! let denied = app.oneshot(send(r#"{"sensitive":{"disabilityInfo":"ADHD"}}"#)).await.unwrap();
//! assert_eq!(denied.status(), 403);
//! # }
//! ```

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    body::{
        close_connection, content_length, is_encoded, is_json, is_length_limit, refused, BoxError,
    },
    context::RequestContext,
    deny::{route_of, Guard, Scene},
    future::ResponseFuture,
};
use crate::{
    model::{
        fields::{check_write, WriteError},
        ScopeAccess,
    },
    rejection::{ErrorCode, Rejection},
};

/// The default body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Applies [`FieldWriteGuard`]. See the [module docs](self) for an example.
#[derive(Clone, Debug)]
pub struct FieldWriteGuardLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    limit: usize,
    entity: Option<String>,
}

impl Default for FieldWriteGuardLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl FieldWriteGuardLayer {
    /// A guard with a 1 MiB body limit.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                limit: DEFAULT_BODY_LIMIT,
                entity: None,
            }),
        }
    }

    /// The largest body accepted, in bytes; larger is a 413.
    pub fn limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).limit = bytes;
        self
    }

    /// The entity to check against when the route's requirement names
    /// none (a flat-permission route). A requirement's own entity always
    /// wins.
    pub fn entity(mut self, entity: &str) -> Self {
        Arc::make_mut(&mut self.config).entity = Some(entity.to_owned());
        self
    }

    /// The body limit in bytes.
    pub fn body_limit(&self) -> usize {
        self.config.limit
    }
}

impl<S> Layer<S> for FieldWriteGuardLayer {
    type Service = FieldWriteGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FieldWriteGuard {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Refuses write bodies with fields the caller cannot write. See the
/// [module docs](self).
#[derive(Clone)]
pub struct FieldWriteGuard<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for FieldWriteGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldWriteGuard")
            .field("inner", &self.inner)
            .field("limit", &self.config.limit)
            .field("entity", &self.config.entity)
            .finish()
    }
}

impl<S> FieldWriteGuard<S> {
    /// Wraps `inner` with the default configuration.
    pub fn new(inner: S) -> Self {
        FieldWriteGuardLayer::new().layer(inner)
    }

    /// The layer, to configure.
    pub fn layer() -> FieldWriteGuardLayer {
        FieldWriteGuardLayer::new()
    }

    crate::macros::define_inner_service_accessors!();
}

/// What the request's headers already decide, before the body is read.
enum Precheck {
    /// No body to check (an action such as archive).
    Empty,
    /// Read the body, at most this many bytes.
    Read,
    /// Refuse.
    Refuse(Rejection),
}

fn precheck<B: Body>(req: &Request<B>, limit: usize) -> Precheck {
    let headers = req.headers();
    let Ok(declared) = content_length(headers) else {
        return Precheck::Refuse(Rejection::new(
            ErrorCode::InvalidBody,
            "the Content-Length header is malformed",
        ));
    };
    if is_encoded(headers) {
        return Precheck::Refuse(Rejection::new(
            ErrorCode::UnsupportedMediaType,
            "a content-encoded request body cannot be checked",
        ));
    }
    if headers.get(http::header::CONTENT_TYPE).is_none()
        && (declared == Some(0) || req.body().size_hint().exact() == Some(0))
    {
        return Precheck::Empty;
    }
    if !is_json(headers) {
        return Precheck::Refuse(Rejection::new(
            ErrorCode::UnsupportedMediaType,
            "the request body must be application/json",
        ));
    }
    if declared.is_some_and(|n| n > limit as u64) {
        return Precheck::Refuse(too_large());
    }
    Precheck::Read
}

fn too_large() -> Rejection {
    Rejection::new(ErrorCode::PayloadTooLarge, "the request body is too large")
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for FieldWriteGuard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
            return ResponseFuture::inner(self.inner.call(req));
        }
        let found = RequestContext::from_extensions(req.extensions()).cloned();
        // Built only for a refusal or a bypass: a write that passes pays
        // nothing for it.
        let scene = || {
            Scene::new(Guard::FieldWrite, req.method(), route_of(req.extensions()))
                .within_opt(found.as_ref())
        };
        let Some(context) = found.as_ref() else {
            let res = scene().wiring("FieldWriteGuard ran without JwtAuthGuard in front of it");
            return refused(req, res, super::context::DEFAULT_DRAIN_LIMIT);
        };
        let limit = context.policy().drain_limit;
        let Some(requirement) = context.requirement() else {
            let res = scene().wiring(
                "no requirement guard runs before FieldWriteGuard: add ScopeGuard, ActionGuard \
                 or PermissionGuard with route_layer after FieldWriteGuardLayer",
            );
            return refused(req, res, limit);
        };
        if requirement
            .entity()
            .or(self.config.entity.as_deref())
            .is_none()
        {
            let res = scene().wiring(
                "the route's requirement names no entity: give FieldWriteGuardLayer::entity(..)",
            );
            return refused(req, res, limit);
        }
        if context.bypasses() {
            scene().bypass();
            return ResponseFuture::inner(self.inner.call(req));
        }
        let body_limit = self.config.limit;
        match precheck(&req, body_limit) {
            Precheck::Empty => return ResponseFuture::inner(self.inner.call(req)),
            Precheck::Refuse(rejection) => {
                let res = scene().deny(&rejection);
                return refused(req, res, limit);
            }
            Precheck::Read => {}
        }

        // Reading the body is async. The future owns the service, so take
        // the instance that was polled ready and leave a clone:
        // https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let context = context.clone();
        let config = self.config.clone();
        ResponseFuture::boxed(Box::pin(async move {
            let (parts, body) = req.into_parts();
            let scene = Scene::new(
                Guard::FieldWrite,
                &parts.method,
                route_of(&parts.extensions),
            )
            .within(&context);
            let bytes = match Limited::new(body, body_limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    let rejection = if is_length_limit(&*e) {
                        too_large()
                    } else {
                        Rejection::new(ErrorCode::InvalidBody, "the request body could not be read")
                    };
                    // Part of the body is still unread: the connection
                    // cannot carry another request.
                    let mut res = scene.deny(&rejection);
                    close_connection(&mut res);
                    return Ok(res);
                }
            };
            let perms = match context.permissions().await {
                Ok(perms) => perms,
                Err(why) => return Ok(scene.no_permissions(&why)),
            };
            let entity = context
                .requirement()
                .and_then(|r| r.entity())
                .or(config.entity.as_deref())
                .expect("checked before the body was read");
            let scopes = perms.scopes().get(entity);
            let can_write = |k: &str| {
                scopes
                    .and_then(|s| s.get(k))
                    .is_some_and(|a| *a >= ScopeAccess::Write)
            };
            match check_write(&bytes, can_write) {
                Ok(()) => {
                    // The same bytes (a refcount clone), so the handler
                    // sees exactly what was checked and Content-Length
                    // still holds.
                    let req = Request::from_parts(parts, ReqBody::from(bytes));
                    inner.call(req).await
                }
                Err(WriteError::Invalid(e)) => {
                    Ok(scene.deny(&Rejection::new(ErrorCode::InvalidBody, e.to_string())))
                }
                Err(WriteError::Forbidden(keys)) => {
                    let rejection = Rejection::new(
                        ErrorCode::ForbiddenFields,
                        "the request body contains fields the caller may not write",
                    );
                    Ok(scene.deny_with(&rejection, rejection.message(), &keys))
                }
            }
        }))
    }
}
