//! axum extractors for what the guards put in request extensions.

use std::convert::Infallible;

use axum_core::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::request::Parts;

use crate::{
    principal::Principal,
    rejection::{ErrorCode, ErrorRenderer, Rejection},
};

/// Extracting a value the guards should have inserted failed: the guard is
/// not installed in front of this handler. A wiring bug, so a 500.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct MissingGuard(Rejection);

impl MissingGuard {
    fn new(what: &'static str) -> Self {
        Self(Rejection::new(ErrorCode::Internal, what))
    }
}

impl IntoResponse for MissingGuard {
    fn into_response(self) -> Response {
        tracing::error!(target: "iam_guard::audit", reason = %self.0, "guard missing");
        ErrorRenderer::json().render(&self.0).map(Into::into)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = MissingGuard;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            MissingGuard::new("no Principal: is JwtAuthGuardLayer installed in front of this route?")
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}
