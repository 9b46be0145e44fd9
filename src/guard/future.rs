//! The response future shared by the guards that may answer on their own
//! (JwtAuthGuard, the requirement guard, FieldWriteGuard).
//!
//! A guard either calls the route at once (`Inner`, no allocation), answers
//! itself (`Ready`), or first awaits something — a JWKS fetch, the
//! permission load, the body — in a boxed future (`Boxed`, one allocation).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use http::Response;
use pin_project_lite::pin_project;

use super::context::RequestContext;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pin_project! {
    /// Response future of the guards.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
        // Planted in the response extensions too when a FieldFilter outside
        // the auth layer asked for it, so that it still finds the caller
        // and the route's requirement.
        context: Option<RequestContext>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Inner { #[pin] fut: F },
        Ready { res: Option<Response<B>> },
        Boxed { fut: BoxFuture<Result<Response<B>, E>> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn inner(fut: F) -> Self {
        Self::inner_carrying(fut, None)
    }

    /// [`inner`](Self::inner), planting `context` (when there is one) in
    /// the response; built in one go, so the inner future is not moved
    /// again.
    pub(crate) fn inner_carrying(fut: F, context: Option<RequestContext>) -> Self {
        Self {
            kind: Kind::Inner { fut },
            context,
        }
    }

    pub(crate) fn ready(res: Response<B>) -> Self {
        Self {
            kind: Kind::Ready { res: Some(res) },
            context: None,
        }
    }

    pub(crate) fn boxed(fut: BoxFuture<Result<Response<B>, E>>) -> Self {
        Self {
            kind: Kind::Boxed { fut },
            context: None,
        }
    }

    /// Plants `context` (when there is one) in the response.
    pub(crate) fn carrying(mut self, context: Option<RequestContext>) -> Self {
        self.context = context;
        self
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.kind.project() {
            KindProj::Inner { fut } => ready!(fut.poll(cx)),
            KindProj::Ready { res } => Ok(res.take().expect("polled after completion")),
            KindProj::Boxed { fut } => ready!(fut.as_mut().poll(cx)),
        };
        Poll::Ready(result.map(|mut res| {
            if let Some(context) = this.context.take() {
                context.plant(res.extensions_mut());
            }
            res
        }))
    }
}
