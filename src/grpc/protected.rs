//! [`ProtectedService`]: one tonic service with its own auth layer and
//! method table, for `Server::builder().add_service(..)`.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tonic::server::NamedService;
use tower_layer::Layer;
use tower_service::Service;

use super::{body::ResponseBody, methods::GrpcMethods, service::GrpcMethodsGuard};
use crate::guard::auth::{JwtAuthGuard, JwtAuthGuardLayer};

/// A tonic service behind its own [`JwtAuthGuardLayer`] and
/// [`GrpcMethods`], built by [`GrpcMethods::protect`]. It keeps the
/// service's name ([`NamedService`]) and answers with tonic's body, so it
/// goes to `Server::builder().add_service(..)` like the service itself,
/// beside services that stay open (a health service a probe calls
/// without a token).
#[derive(Clone)]
pub struct ProtectedService<S> {
    inner: JwtAuthGuard<GrpcMethodsGuard<S>>,
}

impl<S: fmt::Debug> fmt::Debug for ProtectedService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedService")
            .field("inner", self.inner.get_ref().get_ref())
            .finish_non_exhaustive()
    }
}

impl GrpcMethods {
    /// `service` behind `auth` and these methods' requirements, as one
    /// service of its own name: for a server whose services are not all
    /// protected alike. (To protect every service of a server the same
    /// way, layer the server instead: `Server::builder().layer(auth).layer(methods)`.)
    pub fn protect<S>(self, auth: JwtAuthGuardLayer, service: S) -> ProtectedService<S> {
        ProtectedService {
            inner: auth.layer(self.layer(service)),
        }
    }
}

impl<S: NamedService> NamedService for ProtectedService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, ReqBody> Service<Request<ReqBody>> for ProtectedService<S>
where
    JwtAuthGuard<GrpcMethodsGuard<S>>: Service<Request<ReqBody>, Response = Response<ResponseBody>>,
{
    type Response = Response<tonic::body::Body>;
    type Error = <JwtAuthGuard<GrpcMethodsGuard<S>> as Service<Request<ReqBody>>>::Error;
    type Future =
        ProtectedFuture<<JwtAuthGuard<GrpcMethodsGuard<S>> as Service<Request<ReqBody>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        ProtectedFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// Response future of [`ProtectedService`].
    pub struct ProtectedFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> fmt::Debug for ProtectedFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for ProtectedFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, E>>,
{
    type Output = Result<Response<tonic::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(res.map(ResponseBody::into_inner)))
    }
}
