//! [`GrpcRequestExt`]: the caller and its permissions in a tonic handler.

use std::{future::Future, sync::Arc};

use http::Method;

use crate::{
    guard::{
        context::{NoPermissions, RequestContext},
        deny::{route_of, Guard, Scene},
    },
    model::CompiledPermissions,
    principal::Principal,
    rejection::Rejection,
};

/// What the guards planted, read from a [`tonic::Request`] (tonic copies
/// the HTTP request's extensions into it). See the [module docs](super)
/// for an example.
pub trait GrpcRequestExt {
    /// The request context JwtAuthGuard planted, if it ran.
    fn request_context(&self) -> Option<&RequestContext>;

    /// The caller; `None` without JwtAuthGuard in front, or for a call an
    /// optional auth layer let through without a token.
    fn principal(&self) -> Option<&Principal> {
        self.request_context()?.principal()
    }

    /// The caller's compiled permissions: loaded once per call, so a
    /// guard that already read them costs nothing more here.
    ///
    /// # Errors
    ///
    /// The gRPC status of the refusal, through the guards' one deny path
    /// (audited, counted): `UNAUTHENTICATED` for an anonymous call,
    /// `UNAVAILABLE` when the permission source fails, `INTERNAL` when no
    /// auth layer or no permission source is configured.
    fn permissions(
        &self,
    ) -> impl Future<Output = Result<Arc<CompiledPermissions>, tonic::Status>> + Send + 'static;
}

impl<T> GrpcRequestExt for tonic::Request<T> {
    fn request_context(&self) -> Option<&RequestContext> {
        RequestContext::from_extensions(self.extensions())
    }

    fn permissions(
        &self,
    ) -> impl Future<Output = Result<Arc<CompiledPermissions>, tonic::Status>> + Send + 'static
    {
        let context = self.request_context().cloned();
        // The route label is the declared method (set by GrpcMethods), an
        // owned copy since the future outlives the borrow of the request.
        let route: Arc<str> = route_of(self.extensions()).into();
        async move {
            let why = match &context {
                None => None,
                Some(context) => match context.permissions().await {
                    Ok(permissions) => return Ok(permissions),
                    Err(why) => Some(why),
                },
            };
            let scene = Scene::new(Guard::Extractor, &Method::POST, &route)
                .grpc(true)
                .within_opt(context.as_ref());
            let res = match &why {
                Some(why) => scene.no_permissions::<bytes::Bytes>(why),
                None => scene.wiring(NO_AUTH_LAYER),
            };
            Err(status_of(&res, why.as_ref()))
        }
    }
}

/// The fix for a handler that reads permissions no guard planted.
const NO_AUTH_LAYER: &str = "a tonic handler read permissions without JwtAuthGuard: put \
                             JwtAuthGuardLayer with a permission source in front of the server";

/// The status a refusal was rendered as. A custom renderer may have
/// written something else: the rejection's own gRPC status then.
fn status_of(res: &http::Response<bytes::Bytes>, why: Option<&NoPermissions>) -> tonic::Status {
    tonic::Status::from_header_map(res.headers()).unwrap_or_else(|| {
        let rejection = why.map_or_else(
            || crate::guard::deny::wiring_rejection(NO_AUTH_LAYER),
            Rejection::from,
        );
        tonic::Status::new(
            tonic::Code::from(rejection.code().grpc_code()),
            rejection.message().to_owned(),
        )
    })
}
