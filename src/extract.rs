//! axum extractors for what the guards put in request extensions
//! ([`Principal`], [`Permissions`], [`RecordAccess`]) and the
//! [`permissions_endpoint`] handler.

use std::{convert::Infallible, sync::Arc};

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::request::Parts;

use crate::{
    guard::auth::Anonymous,
    model::CompiledPermissions,
    permissions::memo::PermissionSlot,
    principal::Principal,
    record_access::RecordAccess,
    rejection::{AuditContext, ErrorCode, ErrorRenderer, Rejection},
};

/// Extracting a value the guards should have inserted failed. Either the
/// guard is not installed in front of this handler — a wiring bug, so a
/// 500 — or an optional JwtAuthGuard let a request without a token
/// through, which this handler cannot serve: a 401.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct MissingGuard(Rejection, ErrorRenderer);

impl MissingGuard {
    fn new(parts: &Parts, what: &'static str) -> Self {
        match parts.extensions.get::<Anonymous>() {
            Some(Anonymous(renderer)) => Self(Rejection::missing_token(), renderer.clone()),
            None => Self(
                Rejection::new(ErrorCode::Internal, what),
                ErrorRenderer::json(),
            ),
        }
    }
}

impl IntoResponse for MissingGuard {
    fn into_response(self) -> Response {
        if self.0.code() == ErrorCode::Internal {
            tracing::error!(target: "iam_guard::audit", reason = %self.0, "guard missing");
        }
        self.1.render(&self.0).map(Into::into)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = MissingGuard;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            MissingGuard::new(
                parts,
                "no Principal: is JwtAuthGuardLayer installed in front of this route?",
            )
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

/// The caller's compiled permissions, loaded at most once per request.
///
/// Usable as an axum extractor, or without axum through
/// [`PermissionSlot::from_extensions`](crate::permissions::memo::PermissionSlot::from_extensions).
#[derive(Debug, Clone)]
pub struct Permissions(pub Arc<CompiledPermissions>);

impl std::ops::Deref for Permissions {
    type Target = CompiledPermissions;

    fn deref(&self) -> &CompiledPermissions {
        &self.0
    }
}

/// Extracting [`Permissions`] failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PermissionsRejection {
    /// No permission slot: JwtAuthGuardLayer or its source is missing.
    #[error(transparent)]
    MissingGuard(MissingGuard),
    /// The source failed: 503.
    #[error("{0}")]
    Unavailable(Rejection, ErrorRenderer),
}

impl IntoResponse for PermissionsRejection {
    fn into_response(self) -> Response {
        match self {
            Self::MissingGuard(m) => m.into_response(),
            Self::Unavailable(rejection, renderer) => renderer.render(&rejection).map(Into::into),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Permissions {
    type Rejection = PermissionsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let slot = parts.extensions.get::<PermissionSlot>().cloned().ok_or_else(|| {
            PermissionsRejection::MissingGuard(MissingGuard::new(
                parts,
                "no permissions: is JwtAuthGuardLayer::permissions(..) installed in front of this route?",
            ))
        })?;
        slot.get().await.map(Permissions).map_err(|e| {
            let rejection = e.rejection();
            // A 503 from an extractor is a deny like a guard's: audit it.
            let principal = slot.principal();
            rejection.audit(&AuditContext {
                user: Some(principal.user_id()),
                tenant: principal.tenant_id(),
                method: &parts.method,
                route: parts.uri.path(),
                requirement: None,
            });
            PermissionsRejection::Unavailable(rejection, slot.renderer().clone())
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RecordAccess {
    type Rejection = MissingGuard;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        RecordAccess::from_extensions(&parts.extensions).ok_or_else(|| {
            MissingGuard::new(
                parts,
                "no Principal: is JwtAuthGuardLayer installed in front of this route?",
            )
        })
    }
}

/// `GET /permissions` for the current caller, in seed 002 §4's
/// entity-grouped shape (NONE scopes omitted, effective actions as `true`),
/// so a frontend can decide what to render.
///
/// ```
/// use axum::{routing::get, Router};
/// use iam_guard::extract::permissions_endpoint;
///
/// let app: Router = Router::new().route("/permissions", get(permissions_endpoint));
/// # let _ = app;
/// ```
pub async fn permissions_endpoint(permissions: Permissions) -> Response {
    let body = permissions.to_frontend_json().to_string();
    let mut res = Response::new(body.into());
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    // Permissions are per caller: never let a shared cache keep them.
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("private, no-store"),
    );
    res
}
