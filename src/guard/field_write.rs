//! [`FieldWriteGuard`]: a write body may only touch the scope groups the
//! caller can WRITE (seed 002 §6).
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
//! never saw. The offending keys are logged (target `iam_guard::audit`,
//! with user, tenant, route and entity) and never returned: the response
//! says only that the body has forbidden fields, so it does not map the
//! caller's permissions (seed 002 §6).
//!
//! The handler receives the original bytes unchanged, as the same body
//! type the guard was given (`ReqBody: From<Bytes>`; axum's `Body`
//! qualifies), so `Content-Length` stays right and `Json<T>` works as
//! usual.
//!
//! The entity comes from the [`RouteRequirement`] a requirement guard
//! (ScopeGuard, ActionGuard, PermissionGuard) puts in the request, so this
//! guard must run **inside** one: add it with `route_layer` *before* the
//! requirement guard. A requirement naming no entity (flat permissions)
//! falls back to [`FieldWriteGuardLayer::entity`]; with neither the guard
//! answers 500 rather than let an unchecked body through.
//!
//! With [`JwtAuthGuardLayer::super_user_bypass`](crate::JwtAuthGuardLayer::super_user_bypass)
//! on, a super user's write passes unread; each such pass is audited.
//!
//! # Example
//!
//! ```
//! use axum::{body::Body, http::Request, routing::patch, Router};
//! use iam_guard::{
//!     guard::{field_write::FieldWriteGuardLayer, scope::ScopeGuardLayer},
//!     model::ScopeAccess,
//!     permissions::source::ClaimsSource,
//!     test_util::TestIam,
//!     JwtAuthGuardLayer,
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
//!             .route_layer(ScopeGuardLayer::new("students", ScopeAccess::Write)),
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
    error::Error as StdError,
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::require::RouteRequirement;
use crate::{
    model::{
        custom_fields::CustomFieldError,
        fields::{check_write, WriteError},
        ScopeAccess,
    },
    permissions::memo::PermissionSlot,
    principal::Principal,
    rejection::{ErrorCode, ErrorRenderer, Rejection},
};

pub use super::future::ResponseFuture;

type BoxError = Box<dyn StdError + Send + Sync>;

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

/// Whether `headers` declare exactly one JSON media type:
/// `application/json` or `application/<anything>+json`, parameters allowed.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let essence = value
        .as_bytes()
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default();
    let essence = essence.trim_ascii();
    let Some(slash) = essence.iter().position(|b| *b == b'/') else {
        return false;
    };
    let (kind, subtype) = (&essence[..slash], &essence[slash + 1..]);
    kind.eq_ignore_ascii_case(b"application")
        && (subtype.eq_ignore_ascii_case(b"json")
            || (subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json")))
}

/// Whether `headers` declare a content coding other than `identity`.
pub(crate) fn is_encoded(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONTENT_ENCODING).iter().any(|v| {
        v.as_bytes().split(|b| *b == b',').any(|coding| {
            let coding = coding.trim_ascii();
            !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity")
        })
    })
}

/// Whether `e` or anything in its source chain is a body length limit:
/// an outer `Limited` (tower-http's `RequestBodyLimit`) reaches us wrapped
/// in the framework's body error.
pub(crate) fn is_length_limit(e: &(dyn StdError + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Who and where, for audit events.
struct Audit<'a> {
    principal: Option<&'a Principal>,
    method: &'a Method,
    route: &'a str,
    entity: Option<&'a str>,
}

impl Audit<'_> {
    fn deny(&self, rejection: &Rejection, forbidden: &[String]) {
        tracing::warn!(
            target: "iam_guard::audit",
            event = "deny",
            guard = "field_write",
            status = rejection.status().as_u16(),
            code = rejection.code().as_str(),
            reason = rejection.message(),
            forbidden = %forbidden.join(","),
            entity = self.entity.unwrap_or("-"),
            user = self.principal.map_or("-", Principal::user_id),
            tenant = self.principal.and_then(Principal::tenant_id).unwrap_or("-"),
            method = %self.method,
            route = self.route,
        );
    }

    fn bypass(&self) {
        tracing::warn!(
            target: "iam_guard::audit",
            event = "super_user_bypass",
            guard = "field_write",
            entity = self.entity.unwrap_or("-"),
            user = self.principal.map_or("-", Principal::user_id),
            tenant = self.principal.and_then(Principal::tenant_id).unwrap_or("-"),
            method = %self.method,
            route = self.route,
        );
    }
}

fn reject<B: From<Bytes>>(
    audit: &Audit<'_>,
    renderer: &ErrorRenderer,
    code: ErrorCode,
    message: &'static str,
) -> Response<B> {
    let rejection = Rejection::new(code, message);
    audit.deny(&rejection, &[]);
    renderer.render(&rejection).map(B::from)
}

fn wiring_error<B: From<Bytes>>(audit: &Audit<'_>, why: &'static str) -> Response<B> {
    tracing::error!(target: "iam_guard::audit", route = audit.route, "FieldWriteGuard: {why}");
    reject(
        audit,
        &ErrorRenderer::default(),
        ErrorCode::Internal,
        "the request body cannot be checked on this route",
    )
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
        let requirement = req.extensions().get::<RouteRequirement>().cloned();
        let slot = PermissionSlot::from_extensions(req.extensions()).cloned();
        let entity = requirement
            .as_ref()
            .and_then(RouteRequirement::entity)
            .or(self.config.entity.as_deref());
        let audit = Audit {
            principal: slot.as_ref().map(PermissionSlot::principal),
            method: req.method(),
            route: req.uri().path(),
            entity,
        };
        if requirement.is_none() {
            return ResponseFuture::ready(wiring_error(
                &audit,
                "no requirement guard runs before it: add ScopeGuardLayer, ActionGuardLayer or \
                 PermissionGuardLayer with route_layer after FieldWriteGuardLayer",
            ));
        }
        if entity.is_none() {
            return ResponseFuture::ready(wiring_error(
                &audit,
                "the route's requirement names no entity: give FieldWriteGuardLayer::entity(..)",
            ));
        }
        let Some(slot) = slot.as_ref() else {
            return ResponseFuture::ready(wiring_error(
                &audit,
                "no permissions on the request: add JwtAuthGuardLayer::permissions(..)",
            ));
        };
        if slot.bypasses() {
            audit.bypass();
            return ResponseFuture::inner(self.inner.call(req));
        }

        let renderer = slot.renderer();
        let headers = req.headers();
        let declared = match headers.get(header::CONTENT_LENGTH) {
            None => None,
            Some(v) => match v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
                Some(n) => Some(n),
                None => {
                    let res = reject(
                        &audit,
                        renderer,
                        ErrorCode::InvalidBody,
                        "the Content-Length header is malformed",
                    );
                    return ResponseFuture::ready(res);
                }
            },
        };
        if is_encoded(headers) {
            let res = reject(
                &audit,
                renderer,
                ErrorCode::UnsupportedMediaType,
                "a content-encoded request body cannot be checked",
            );
            return ResponseFuture::ready(res);
        }
        if headers.get(header::CONTENT_TYPE).is_none()
            && (declared == Some(0) || req.body().size_hint().exact() == Some(0))
        {
            // No body at all (an action such as archive): no field to check.
            return ResponseFuture::inner(self.inner.call(req));
        }
        if !is_json(headers) {
            let res = reject(
                &audit,
                renderer,
                ErrorCode::UnsupportedMediaType,
                "the request body must be application/json",
            );
            return ResponseFuture::ready(res);
        }
        let limit = self.config.limit;
        if declared.is_some_and(|n| n > limit as u64) {
            let res = reject(
                &audit,
                renderer,
                ErrorCode::PayloadTooLarge,
                "the request body is too large",
            );
            return ResponseFuture::ready(res);
        }

        // Reading the body is async. The future owns the service, so take
        // the instance that was polled ready and leave a clone:
        // https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let requirement = requirement.expect("checked above");
        let slot = slot.clone();
        let config = self.config.clone();
        ResponseFuture::boxed(Box::pin(async move {
            let (parts, body) = req.into_parts();
            let entity = requirement
                .entity()
                .or(config.entity.as_deref())
                .expect("checked above");
            let audit = Audit {
                principal: Some(slot.principal()),
                method: &parts.method,
                route: parts.uri.path(),
                entity: Some(entity),
            };
            let renderer = slot.renderer();
            let bytes = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if is_length_limit(&*e) => {
                    return Ok(reject(
                        &audit,
                        renderer,
                        ErrorCode::PayloadTooLarge,
                        "the request body is too large",
                    ))
                }
                Err(_) => {
                    return Ok(reject(
                        &audit,
                        renderer,
                        ErrorCode::InvalidBody,
                        "the request body could not be read",
                    ))
                }
            };
            let perms = match slot.get().await {
                Ok(perms) => perms,
                Err(e) => {
                    let rejection = e.rejection();
                    audit.deny(&rejection, &[]);
                    return Ok(renderer.render(&rejection).map(ResBody::from));
                }
            };
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
                    let rejection = Rejection::new(ErrorCode::InvalidBody, e.to_string());
                    audit.deny(&rejection, &[]);
                    Ok(renderer.render(&rejection).map(ResBody::from))
                }
                Err(WriteError::Forbidden(keys)) => {
                    let rejection = Rejection::new(
                        ErrorCode::ForbiddenFields,
                        "the request body contains fields the caller may not write",
                    );
                    audit.deny(&rejection, &keys);
                    Ok(renderer.render(&rejection).map(ResBody::from))
                }
            }
        }))
    }
}

/// A custom field error is the client's to fix: 400 `INVALID_BODY`, with
/// the field named in the message.
impl From<&CustomFieldError> for Rejection {
    fn from(e: &CustomFieldError) -> Self {
        Rejection::new(ErrorCode::InvalidBody, e.to_string())
    }
}

/// See `From<&CustomFieldError>`.
impl From<CustomFieldError> for Rejection {
    fn from(e: CustomFieldError) -> Self {
        Rejection::from(&e)
    }
}

/// 400 `INVALID_BODY` naming the field, in the default JSON format; use
/// `Rejection::from(&err)` with your own [`ErrorRenderer`] for another.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl axum::response::IntoResponse for CustomFieldError {
    fn into_response(self) -> axum::response::Response {
        ErrorRenderer::default()
            .render(&Rejection::from(&self))
            .map(axum::body::Body::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            "application/vnd.api+json ;x=y",
        ] {
            assert!(is_json(&headers(&[("content-type", ok)])), "{ok}");
        }
        for bad in [
            "text/json",
            "application/jsonx",
            "application/+json",
            "text/plain",
            "json",
            "",
        ] {
            assert!(!is_json(&headers(&[("content-type", bad)])), "{bad}");
        }
        assert!(!is_json(&headers(&[])));
        assert!(!is_json(&headers(&[
            ("content-type", "application/json"),
            ("content-type", "text/plain")
        ])));
    }

    #[test]
    fn content_codings() {
        assert!(!is_encoded(&headers(&[])));
        assert!(!is_encoded(&headers(&[("content-encoding", "identity")])));
        assert!(is_encoded(&headers(&[("content-encoding", "gzip")])));
        assert!(is_encoded(&headers(&[(
            "content-encoding",
            "identity, br"
        )])));
    }

    #[test]
    fn length_limit_is_found_through_wrappers() {
        #[derive(Debug)]
        struct Wrapper(LengthLimitError);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("wrapped")
            }
        }
        impl StdError for Wrapper {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let limited = Limited::new(http_body_util::Full::new(Bytes::from_static(b"abc")), 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt.block_on(limited.collect()).unwrap_err();
        assert!(is_length_limit(&*err));
        let inner = *err.downcast::<LengthLimitError>().unwrap();
        assert!(is_length_limit(&Wrapper(inner)));
        assert!(!is_length_limit(&std::io::Error::other("reset")));
    }

    #[test]
    fn custom_field_errors_become_invalid_body() {
        use crate::model::custom_fields::{
            CustomFieldDef, CustomFieldDefinitions, FieldType, WriteMode,
        };
        let defs = CustomFieldDefinitions::new([CustomFieldDef::new(
            "nickname",
            "anagraphic",
            FieldType::Text,
        )]);
        let err = defs
            .validate_body(
                &serde_json::json!({"anagraphic": {"customFields": {"nickname": 1}}}),
                WriteMode::Update,
            )
            .unwrap_err();
        let r = Rejection::from(&err);
        assert_eq!(r.status(), 400);
        assert_eq!(r.code(), ErrorCode::InvalidBody);
        assert!(
            r.message().contains("anagraphic.nickname"),
            "{}",
            r.message()
        );
    }
}
