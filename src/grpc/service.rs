//! [`GrpcMethodsGuard`]: each call checked against its method's
//! requirement before the tonic service sees it.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{
    body::ResponseBody,
    methods::{Access, Table},
};
use crate::{
    guard::{
        body::refused,
        context::{NoPermissions, RequestContext, DEFAULT_DRAIN_LIMIT},
        deny::{route_of, DeclaredRoute, Guard, Scene},
        future::ResponseFuture as GuardFuture,
        require::enforce,
    },
    metrics,
    rejection::{is_grpc, Rejection, UNDECLARED_ROUTE},
};

/// Enforces [`GrpcMethods`](super::GrpcMethods) on a tonic server (or any
/// service of gRPC calls). See the [module docs](super).
#[derive(Clone)]
pub struct GrpcMethodsGuard<S> {
    inner: IntoResponseBody<S>,
    table: Arc<Table>,
}

impl<S: fmt::Debug> fmt::Debug for GrpcMethodsGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcMethodsGuard")
            .field("inner", &self.inner.0)
            .finish_non_exhaustive()
    }
}

impl<S> GrpcMethodsGuard<S> {
    pub(super) fn new(inner: S, table: Arc<Table>) -> Self {
        Self {
            inner: IntoResponseBody(inner),
            table,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner.0
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner.0
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner.0
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcMethodsGuard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = GuardFuture<ResponseFuture<S::Future>, ResponseBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let Some(entry) = self.table.get(req.uri().path()) else {
            // The path is the caller's to choose: it never becomes a
            // label, the route stays `-`.
            return deny_undeclared(req, "no requirement is declared for this gRPC method");
        };
        // The declared path (from the configuration, so bounded) names
        // this call's route in every decision behind this point.
        req.extensions_mut()
            .insert(DeclaredRoute(entry.label.clone()));
        match &entry.access {
            Access::Requires(requirement) => enforce(&mut self.inner, requirement, req),
            Access::Authenticated => authenticated(&mut self.inner, req),
            Access::Denied(why) => deny_undeclared(req, why),
        }
    }
}

/// A method open to any caller with a token: the auth layer must have
/// admitted one.
fn authenticated<S, ReqBody>(
    inner: &mut S,
    req: Request<ReqBody>,
) -> GuardFuture<S::Future, ResponseBody, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResponseBody>>,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    S::Error: 'static,
{
    let Some(context) = RequestContext::from_extensions(req.extensions()).cloned() else {
        let res = Scene::new(Guard::Requirement, req.method(), route_of(req.extensions()))
            .grpc(is_grpc(req.headers()))
            .wiring(
                "GrpcMethods ran without JwtAuthGuard: put JwtAuthGuardLayer in front of it \
                 (Server::builder().layer(auth).layer(methods))",
            );
        return refused(req, res, DEFAULT_DRAIN_LIMIT);
    };
    if context.principal().is_none() {
        // An optional auth layer let a call without a token through.
        let res = Scene::new(Guard::Requirement, req.method(), route_of(req.extensions()))
            .within(&context)
            .no_permissions(&NoPermissions::Anonymous);
        return refused(req, res, context.policy().drain_limit);
    }
    metrics::requirement_allowed();
    // As the requirement guard does: only a layer outside that asked for
    // the context gets it on the response.
    let carried = RequestContext::wanted_on_response(req.extensions()).then_some(context);
    GuardFuture::inner_carrying(inner.call(req), carried)
}

/// 403 `PERMISSION_DENIED` for a method no declaration lets through; the
/// method is never called.
fn deny_undeclared<F, ReqBody, E>(
    req: Request<ReqBody>,
    why: &str,
) -> GuardFuture<F, ResponseBody, E>
where
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    E: 'static,
{
    let rejection = Rejection::new(UNDECLARED_ROUTE, "this gRPC method declares no requirement");
    let context = RequestContext::from_extensions(req.extensions());
    let res = Scene::new(Guard::Undeclared, req.method(), route_of(req.extensions()))
        .grpc(is_grpc(req.headers()))
        .within_opt(context)
        .deny_with(&rejection, why, &[]);
    let limit = context.map_or(DEFAULT_DRAIN_LIMIT, |c| c.policy().drain_limit);
    refused(req, res, limit)
}

/// The tonic service with its response body in [`ResponseBody`], so the
/// guards' refusals and its answers have one type.
#[derive(Clone)]
struct IntoResponseBody<S>(S);

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for IntoResponseBody<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            inner: self.0.call(req),
        }
    }
}

pin_project! {
    /// The future of the tonic service's answer, its body in
    /// [`ResponseBody`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = Result<Response<ResponseBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(res.map(ResponseBody::new)))
    }
}
