//! [`FieldFilter`]: responses carry only the scope groups the caller can
//! READ.
//!
//! For a `2xx` response with a JSON content type (`application/json` or
//! `application/*+json`) on a route whose requirement names an entity,
//! the filter keeps the always-allowed keys (`id`, `createdAt`,
//! `updatedAt`, configurable) and the top-level scope groups where the
//! caller has READ or WRITE, and drops every other top-level key. It
//! handles a single object, an array of objects, and a page
//! `{"data": [...], "meta": {...}}` (`meta` is kept). Custom fields live
//! inside their scope group (`customFields`) and go with it.
//!
//! The inside of a group is never parsed into values: kept members are
//! copied byte for byte (see [`model::fields`](crate::model::fields)), so
//! filtering costs about one pass over the body. `Content-Length` is set
//! to the new length and `Accept-Ranges` removed.
//!
//! Everything else passes through untouched: other statuses (including
//! `204`), other content types, and routes whose requirement names no
//! entity (unless [`FieldFilterLayer::entity`] gives one). A `HEAD`
//! response is filtered like a `GET` when the framework hands it the body
//! (axum does, and strips it afterwards, so the advertised length is the
//! filtered one); a `HEAD` response that arrives without a body loses its
//! `Content-Length`, which described the unfiltered document.
//!
//! # Failing closed
//!
//! On a response that must be filtered, the filter never sends the
//! original body when it cannot filter it. These are answered 500
//! `INTERNAL` (in the format configured on the auth layer) and audited:
//! a body that is not JSON, a `Content-Encoding` other than `identity`, a
//! body over the buffer limit (default 8 MiB), a body stream error, and a
//! response of a route no auth layer admitted. Permissions that cannot be
//! loaded are a 503 `IAM_UNAVAILABLE`.
//!
//! # Responses serialized already filtered
//!
//! A handler that still holds its value can write only the readable groups
//! itself, with a [`ReadView`] (`view.json(&value)`, `view.page(&data,
//! &meta)`): the groups the caller cannot read are never serialized, and
//! this filter sends the response without scanning it. It trusts such a
//! response only when it carries the very buffer the view wrote, for this
//! request's permissions, entity and this filter's configuration; anything
//! else — a body another layer changed, copied or replaced — is scanned
//! and cut as usual.
//!
//! # Where it goes
//!
//! - Anywhere around the route: the requirement guard plants the request
//!   context (caller, permissions, the route's requirement) in the
//!   response as well as the request, so a router-wide
//!   `Router::layer(FieldFilterLayer::new())` works inside or outside
//!   `JwtAuthGuardLayer`.
//! - **Inside** `CompressionLayer`: compression must happen after
//!   filtering. Put the other way round the filter sees a gzip body and
//!   answers 500.
//!
//! With [`JwtAuthGuardLayer::super_user_bypass`](crate::JwtAuthGuardLayer::super_user_bypass)
//! on, a super user's responses are not filtered; each is audited.
//!
//! # Example
//!
//! ```
//! use axum::{body::Body, http::Request, routing::get, Json, Router};
//! use http_body_util::BodyExt;
//! use iam_guard::{
//!     test_util::TestIam, ClaimsSource, FieldFilterLayer, JwtAuthGuardLayer, ScopeGuard,
//! };
//! use serde_json::{json, Value};
//! use tower::ServiceExt;
//!
//! async fn show() -> Json<Value> {
//!     Json(json!({
//!         "id": "s-1",
//!         "anagraphic": { "firstName": "Marco", "customFields": { "nickname": "Marc" } },
//!         "sensitive": { "disabilityInfo": null, "customFields": { "blood_type": "O+" } },
//!         "createdAt": "2026-03-01", "updatedAt": "2026-03-02"
//!     }))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let iam = TestIam::start().await;
//! let app = Router::new()
//!     .route(
//!         "/students/{id}",
//!         get(show)
//!             .route_layer(FieldFilterLayer::new())
//!             .route_layer(ScopeGuard::read("students")),
//!     )
//!     .layer(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()));
//!
//! let token = iam.mint(json!({
//!     "entities": { "students": { "scopes": { "anagraphic": "READ" }, "actions": {} } }
//! }));
//! let req = Request::get("/students/s-1")
//!     .header("authorization", format!("Bearer {token}"))
//!     .body(Body::empty())
//!     .unwrap();
//! let res = app.oneshot(req).await.unwrap();
//! let body: Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
//! assert_eq!(body, json!({
//!     "id": "s-1",
//!     "anagraphic": { "firstName": "Marco", "customFields": { "nickname": "Marc" } },
//!     "createdAt": "2026-03-01", "updatedAt": "2026-03-02"
//! }));
//! # }
//! ```

pub(crate) mod prefiltered;
#[cfg(feature = "axum")]
mod read_view;
mod reading;

#[cfg(feature = "axum")]
pub use read_view::ReadView;

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{
    body::{BodyHeaders, BoxError},
    context::RequestContext,
    deny::{Guard, RouteName, Scene},
    future::BoxFuture,
};
use crate::{
    model::{fields::DEFAULT_ALWAYS_ALLOWED, name_set::NameSet},
    rejection::{ErrorCode, Rejection},
};
use prefiltered::Plan;
use reading::{Buffer, Reading, OVER_LIMIT};

/// The default response buffer limit: 8 MiB.
pub const DEFAULT_RESPONSE_LIMIT: usize = 8 * 1024 * 1024;

/// Applies [`FieldFilter`]. See the [module docs](self) for an example.
#[derive(Clone, Debug)]
pub struct FieldFilterLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// The keys as configured, in their order, for
    /// [`FieldFilterLayer::always_allowed_keys`].
    always_allowed: Vec<String>,
    /// The same keys as a set, for the keep rule to ask once per top-level
    /// key; both are set together, by the one builder method.
    pub(crate) always_allowed_set: NameSet,
    limit: usize,
    entity: Option<String>,
}

impl Default for FieldFilterLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl FieldFilterLayer {
    /// A filter keeping `id`, `createdAt` and `updatedAt`, buffering at
    /// most 8 MiB.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                always_allowed: DEFAULT_ALWAYS_ALLOWED.map(str::to_owned).to_vec(),
                always_allowed_set: NameSet::of(DEFAULT_ALWAYS_ALLOWED),
                limit: DEFAULT_RESPONSE_LIMIT,
                entity: None,
            }),
        }
    }

    /// The top-level keys kept whatever the caller's scopes, replacing the
    /// default `id`, `createdAt`, `updatedAt`.
    pub fn always_allowed<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        let config = Arc::make_mut(&mut self.config);
        config.always_allowed = keys.into_iter().map(Into::into).collect();
        config.always_allowed_set = NameSet::of(config.always_allowed.iter().map(String::as_str));
        self
    }

    /// The largest response body filtered, in bytes; a larger one is a 500
    /// (it is never sent unfiltered).
    pub fn limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).limit = bytes;
        self
    }

    /// The entity to filter for when the route's requirement names none
    /// (or there is no requirement). A requirement's own entity wins.
    pub fn entity(mut self, entity: &str) -> Self {
        Arc::make_mut(&mut self.config).entity = Some(entity.to_owned());
        self
    }

    /// The always-allowed keys.
    pub fn always_allowed_keys(&self) -> &[String] {
        &self.config.always_allowed
    }
}

impl<S> Layer<S> for FieldFilterLayer {
    type Service = FieldFilter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FieldFilter {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Strips the scope groups the caller cannot read from JSON responses.
/// See the [module docs](self).
#[derive(Clone)]
pub struct FieldFilter<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for FieldFilter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldFilter")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S> FieldFilter<S> {
    /// Wraps `inner` with the default configuration.
    pub fn new(inner: S) -> Self {
        FieldFilterLayer::new().layer(inner)
    }

    /// The layer, to configure.
    pub fn layer() -> FieldFilterLayer {
        FieldFilterLayer::new()
    }

    crate::macros::define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for FieldFilter<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body + From<Bytes> + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // For a ReadView in the handler: it filters by this configuration.
        // Inside the auth layer the request context carries it; outside,
        // an extension does.
        let context = RequestContext::from_extensions(req.extensions()).cloned();
        match &context {
            Some(context) => context.record_filter_plan(self.config.clone()),
            None => {
                req.extensions_mut().insert(Plan(self.config.clone()));
                // The caller and the route's requirement are known only
                // inside: have them brought back on the response.
                RequestContext::ask_for_it_on_the_response(req.extensions_mut());
            }
        }
        let pending = Pending {
            context,
            method: req.method().clone(),
            route: RouteName::of(req.extensions()),
            config: self.config.clone(),
        };
        ResponseFuture {
            inner: self.inner.call(req),
            pending: Some(pending),
            body: None,
            reading: None,
            filtering: None,
        }
    }
}

pin_project! {
    /// Response future of [`FieldFilter`].
    ///
    /// When the permissions are already loaded (the usual case: the
    /// requirement guard read them), the body is read in place, frame by
    /// frame, with no boxed future; a body of one frame (axum's `Json`, a
    /// `Bytes`) is filtered straight from that frame's buffer.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
        // The response body being read in place, and what it is read for.
        #[pin]
        body: Option<B>,
        reading: Option<Reading>,
        // Permissions still to load: one boxed future for the rest.
        filtering: Option<BoxFuture<Response<B>>>,
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("reading", &self.reading.is_some())
            .field("filtering", &self.filtering.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body + From<Bytes> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(filtering) = this.filtering.as_mut() {
            return filtering.as_mut().poll(cx).map(Ok);
        }
        if this.reading.is_none() {
            let res = ready!(this.inner.poll(cx))?;
            let pending = this.pending.take().expect("polled after completion");
            match pending.decide(res) {
                Decision::Done(res) => return Poll::Ready(Ok(res)),
                Decision::Read(reading, body) => {
                    *this.reading = Some(reading);
                    this.body.set(Some(body));
                }
                Decision::Wait(mut filtering) => {
                    let poll = filtering.as_mut().poll(cx);
                    *this.filtering = Some(filtering);
                    return poll.map(Ok);
                }
            }
        }
        let reading = this.reading.as_mut().expect("reading the body");
        let body = this
            .body
            .as_mut()
            .as_pin_mut()
            .expect("a body while reading");
        let read = ready!(reading.poll_body(body, cx));
        this.body.set(None);
        let reading = this.reading.take().expect("reading the body");
        Poll::Ready(Ok(reading.finish(read)))
    }
}

/// What [`Pending::decide`] makes of a response.
// Returned once and moved straight into the response future: boxing the
// large variant would cost an allocation per filtered response.
#[allow(clippy::large_enum_variant)]
enum Decision<B> {
    /// The response as it goes out: passed through, or refused.
    Done(Response<B>),
    /// The body to read and filter, the permissions at hand.
    Read(Reading, B),
    /// The permissions to load first.
    Wait(BoxFuture<Response<B>>),
}

/// What the response phase needs from the request.
struct Pending {
    context: Option<RequestContext>,
    method: Method,
    route: RouteName,
    config: Arc<Config>,
}

impl Pending {
    fn entity(&self) -> Option<&str> {
        self.context
            .as_ref()
            .and_then(RequestContext::requirement)
            .and_then(|r| r.entity())
            .or(self.config.entity.as_deref())
    }

    fn scene(&self) -> Scene<'_> {
        Scene::new(Guard::FieldFilter, &self.method, self.route.as_str())
            .within_opt(self.context.as_ref())
    }

    /// Fails closed: never the unfiltered body.
    fn internal<B: From<Bytes>>(&self, why: &str) -> Response<B> {
        let rejection = Rejection::new(ErrorCode::Internal, "the response could not be filtered");
        self.scene().deny_with(&rejection, why, &[])
    }

    /// The response when it is final, or the body to read (with the
    /// permissions, or a future that loads them first).
    fn decide<B>(mut self, mut res: Response<B>) -> Decision<B>
    where
        B: Body + From<Bytes> + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        if self.context.is_none() {
            // Outside the auth layer: the requirement guard left the
            // request's context on the response.
            self.context = RequestContext::from_extensions(res.extensions()).cloned();
        }
        if self.entity().is_none() {
            return Decision::Done(res);
        }
        let status = res.status();
        if !status.is_success()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::RESET_CONTENT
        {
            return Decision::Done(res);
        }
        let described = BodyHeaders::of(res.headers());
        if !described.json {
            return Decision::Done(res);
        }
        let Some(context) = self.context.clone() else {
            return Decision::Done(self.scene().wiring(
                "FieldFilter filters a route that no JwtAuthGuard admitted: add \
                 JwtAuthGuardLayer with a permission source",
            ));
        };
        if context.bypasses() {
            self.scene().bypass();
            return Decision::Done(res);
        }
        let head = self.method == Method::HEAD;
        if head && res.body().size_hint().exact() == Some(0) {
            // Nothing to filter, and the length on it is the unfiltered one.
            res.headers_mut().remove(header::CONTENT_LENGTH);
            return Decision::Done(res);
        }
        if described.encoded {
            // Never decode-filter-reencode: put the filter inside the
            // compression layer instead.
            return Decision::Done(self.internal("the response is content-encoded"));
        }
        let limit = self.config.limit;
        if described
            .length
            .ok()
            .flatten()
            .is_some_and(|n| n > limit as u64)
            || res.body().size_hint().lower() > limit as u64
        {
            return Decision::Done(self.internal(OVER_LIMIT));
        }
        let (parts, body) = res.into_parts();
        let reading = move |pending, perms| Reading {
            pending,
            parts,
            perms,
            head,
            describes_body: described.describes_body,
            len: 0,
            buffer: Buffer::Empty,
        };
        match context.permissions_now() {
            Some(Ok(perms)) => Decision::Read(reading(self, perms), body),
            Some(Err(why)) => Decision::Done(self.scene().no_permissions(&why)),
            None => Decision::Wait(Box::pin(async move {
                let perms = match context.permissions().await {
                    Ok(perms) => perms,
                    Err(why) => return self.scene().no_permissions(&why),
                };
                let mut reading = reading(self, perms);
                let mut body = std::pin::pin!(body);
                let read = std::future::poll_fn(|cx| reading.poll_body(body.as_mut(), cx)).await;
                reading.finish(read)
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_configuration() {
        let layer = FieldFilterLayer::new();
        assert_eq!(
            layer.always_allowed_keys(),
            ["id", "createdAt", "updatedAt"]
        );
        let layer = layer
            .always_allowed(["id", "version"])
            .limit(10)
            .entity("students");
        assert_eq!(layer.always_allowed_keys(), ["id", "version"]);
        assert_eq!(layer.config.limit, 10);
        assert_eq!(layer.config.entity.as_deref(), Some("students"));
    }
}
