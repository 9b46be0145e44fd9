//! The machinery shared by [`ScopeGuard`](super::scope::ScopeGuard),
//! [`ActionGuard`](super::action::ActionGuard) and
//! [`PermissionGuard`](super::permission::PermissionGuard): read the
//! request's memoized permissions, evaluate one [`Requirement`], answer 403
//! or call the route.
//!
//! The guard also records its requirement as a [`RouteRequirement`] in the
//! request extensions (FieldWriteGuard derives the entity from it) and in
//! the response extensions (so a FieldFilter layered outside the route can
//! still see it).

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use crate::{
    guard::auth::Anonymous,
    model::{Denial, Requirement},
    permissions::memo::PermissionSlot,
    principal::Principal,
    rejection::{AuditContext, ErrorCode, ErrorRenderer, Rejection},
};

pub use super::future::ResponseFuture;

/// The requirement of the route that handled a request, as recorded by the
/// guard that enforced it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRequirement(pub Arc<Requirement>);

impl RouteRequirement {
    /// The entity the route is about, if its requirement names one.
    pub fn entity(&self) -> Option<&str> {
        self.0.entity()
    }
}

/// The service behind every requirement guard.
#[derive(Clone)]
pub(crate) struct Require<S> {
    pub(crate) inner: S,
    pub(crate) requirement: Arc<Requirement>,
}

impl<S: fmt::Debug> fmt::Debug for Require<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Require")
            .field("inner", &self.inner)
            .field("requirement", &self.requirement)
            .finish()
    }
}

enum Verdict {
    Pass,
    Deny(Rejection),
}

fn code_of(denial: Denial) -> ErrorCode {
    match denial {
        Denial::InsufficientScope => ErrorCode::InsufficientScope,
        Denial::ActionNotPermitted => ErrorCode::ActionNotPermitted,
        Denial::PermissionDenied => ErrorCode::PermissionDenied,
    }
}

fn message_of(denial: Denial) -> &'static str {
    match denial {
        Denial::InsufficientScope => {
            "the caller has no access to this entity at the required level"
        }
        Denial::ActionNotPermitted => "the caller may not perform this action",
        Denial::PermissionDenied => "the caller lacks a required permission",
    }
}

fn decide(
    requirement: &Requirement,
    loaded: &Result<
        Arc<crate::model::CompiledPermissions>,
        crate::permissions::source::PermissionError,
    >,
) -> Verdict {
    match loaded {
        Ok(perms) => match requirement.evaluate(perms) {
            Ok(()) => Verdict::Pass,
            Err(denial) => Verdict::Deny(Rejection::new(code_of(denial), message_of(denial))),
        },
        Err(e) => Verdict::Deny(e.rejection()),
    }
}

fn audit<B>(req: &Request<B>, requirement: &Requirement, rejection: &Rejection) {
    let principal = req.extensions().get::<Principal>();
    rejection.audit(&AuditContext {
        user: principal.map(Principal::user_id),
        tenant: principal.and_then(Principal::tenant_id),
        method: req.method(),
        route: req.uri().path(),
        requirement: Some(&requirement.to_string()),
    });
}

fn render<B, ResBody: From<Bytes>>(
    req: &Request<B>,
    requirement: &Requirement,
    renderer: &ErrorRenderer,
    rejection: &Rejection,
) -> Response<ResBody> {
    audit(req, requirement, rejection);
    renderer.render(rejection).map(ResBody::from)
}

fn audit_bypass<B>(req: &Request<B>, requirement: &Requirement, slot: &PermissionSlot) {
    let principal = slot.principal();
    tracing::warn!(
        target: "iam_guard::audit",
        event = "super_user_bypass",
        requirement = %requirement,
        user = principal.user_id(),
        tenant = principal.tenant_id().unwrap_or("-"),
        method = %req.method(),
        route = req.uri().path(),
    );
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Require<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let requirement = self.requirement.clone();
        let marker = RouteRequirement(requirement.clone());
        req.extensions_mut().insert(marker.clone());
        let Some(slot) = req.extensions().get::<PermissionSlot>().cloned() else {
            if let Some(Anonymous(renderer)) = req.extensions().get::<Anonymous>() {
                // An optional auth layer admitted a request without a token:
                // a route with a requirement still needs one.
                let res = render(&req, &requirement, renderer, &Rejection::missing_token());
                return ResponseFuture::ready(res).marked(marker);
            }
            // No slot: JwtAuthGuard is missing or has no permission source.
            // A wiring bug, and never a reason to let the request through.
            let rejection = Rejection::new(
                ErrorCode::Internal,
                "permissions are not available on this route",
            );
            tracing::error!(
                target: "iam_guard::audit",
                route = req.uri().path(),
                "a requirement guard ran without JwtAuthGuard and a permission source: \
                 add JwtAuthGuardLayer::permissions(..) in front of this route"
            );
            let res = render(&req, &requirement, &ErrorRenderer::default(), &rejection);
            return ResponseFuture::ready(res).marked(marker);
        };
        if slot.bypasses() {
            audit_bypass(&req, &requirement, &slot);
            return ResponseFuture::inner(self.inner.call(req)).marked(marker);
        }
        if let Some(loaded) = slot.load_now() {
            return match decide(&requirement, loaded) {
                Verdict::Pass => ResponseFuture::inner(self.inner.call(req)).marked(marker),
                Verdict::Deny(rejection) => {
                    let res = render(&req, &requirement, slot.renderer(), &rejection);
                    ResponseFuture::ready(res).marked(marker)
                }
            };
        }
        // The first reader of this request loads. The future owns the
        // service, so take the instance that was polled ready and leave a
        // clone: https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let fut = Box::pin(async move {
            let loaded = slot.get().await;
            match decide(&requirement, &loaded) {
                Verdict::Pass => inner.call(req).await,
                Verdict::Deny(rejection) => {
                    Ok(render(&req, &requirement, slot.renderer(), &rejection))
                }
            }
        });
        ResponseFuture::boxed(fut).marked(marker)
    }
}

/// Defines a public guard: a `Layer` holding one requirement and a
/// `Service` newtype over [`Require`].
macro_rules! define_requirement_guard {
    ($(#[$layer_doc:meta])* $layer:ident, $(#[$service_doc:meta])* $service:ident) => {
        $(#[$layer_doc])*
        #[derive(Clone, Debug)]
        pub struct $layer {
            requirement: std::sync::Arc<$crate::model::Requirement>,
        }

        impl $layer {
            /// The requirement this layer enforces.
            pub fn requirement(&self) -> &$crate::model::Requirement {
                &self.requirement
            }
        }

        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service($crate::guard::require::Require {
                    inner,
                    requirement: self.requirement.clone(),
                })
            }
        }

        $(#[$service_doc])*
        #[derive(Clone, Debug)]
        pub struct $service<S>($crate::guard::require::Require<S>);

        impl<S> $service<S> {
            /// Gets a reference to the underlying service.
            pub fn get_ref(&self) -> &S {
                &self.0.inner
            }

            /// Consumes `self`, returning the underlying service.
            pub fn into_inner(self) -> S {
                self.0.inner
            }
        }

        impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for $service<S>
        where
            S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
                + Clone
                + Send
                + 'static,
            S::Future: Send + 'static,
            ReqBody: Send + 'static,
            ResBody: From<bytes::Bytes> + Send + 'static,
        {
            type Response = http::Response<ResBody>;
            type Error = S::Error;
            type Future = $crate::guard::future::ResponseFuture<S::Future, ResBody, S::Error>;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.0.poll_ready(cx)
            }

            fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
                self.0.call(req)
            }
        }
    };
}

pub(crate) use define_requirement_guard;
