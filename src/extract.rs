//! axum extractors for what the guards know about a request —
//! [`Principal`], [`Permissions`], [`RecordAccess`], [`RequestContext`],
//! and [`ReadView`](crate::ReadView) for a response serialized already
//! filtered —
//! and the permissions endpoint ([`permissions_endpoint`], or
//! [`PermissionsEndpoint`] with custom field definitions).
//!
//! They read the [`RequestContext`] JwtAuthGuard planted. A refusal
//! (no token on an optional route: 401; permissions unavailable: 503; no
//! auth layer at all: 500) goes through the same deny path as the guards'
//! own: the configured renderer, one audit event, one count.

use std::{convert::Infallible, fmt, sync::Arc};

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
    routing::{get, MethodRouter},
};
use http::request::Parts;

use crate::{
    guard::{
        context::{NoPermissions, RequestContext},
        deny::{route_of, wiring_rejection, Guard, Scene},
    },
    model::{custom_fields::EntityCustomFields, Catalogue, CompiledPermissions},
    principal::Principal,
    record_access::RecordAccess,
    rejection::Rejection,
};

/// An extractor could not give what the handler asked for. Already
/// rendered (in the auth layer's format), audited and counted when it was
/// built; its response is the answer.
pub struct GuardRejection {
    // Boxed: a rejection travels in every extractor's `Result`, and a
    // response is large next to the value a handler wants.
    inner: Box<(Rejection, Response)>,
}

impl GuardRejection {
    fn new(parts: &Parts, context: Option<&RequestContext>, rejection: Rejection) -> Self {
        let response = Scene::new(Guard::Extractor, &parts.method, route_of(&parts.extensions))
            .within_opt(context)
            .deny(&rejection);
        Self {
            inner: Box::new((rejection, response)),
        }
    }

    /// No context: the auth layer is missing, a wiring bug.
    pub(crate) fn missing(parts: &Parts, what: &'static str) -> Self {
        let response =
            Scene::new(Guard::Extractor, &parts.method, route_of(&parts.extensions)).wiring(what);
        Self {
            inner: Box::new((wiring_rejection(what), response)),
        }
    }

    pub(crate) fn no_permissions(
        parts: &Parts,
        context: &RequestContext,
        why: &NoPermissions,
    ) -> Self {
        let response = Scene::new(Guard::Extractor, &parts.method, route_of(&parts.extensions))
            .within(context)
            .no_permissions(why);
        Self {
            inner: Box::new((Rejection::from(why), response)),
        }
    }

    /// Why the request was refused.
    pub fn rejection(&self) -> &Rejection {
        &self.inner.0
    }
}

impl fmt::Debug for GuardRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GuardRejection")
            .field(self.rejection())
            .finish()
    }
}

impl fmt::Display for GuardRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rejection().fmt(f)
    }
}

impl std::error::Error for GuardRejection {}

impl IntoResponse for GuardRejection {
    fn into_response(self) -> Response {
        self.inner.1
    }
}

pub(crate) const NO_AUTH_LAYER: &str =
    "no request context: is JwtAuthGuardLayer installed in front of this route?";

/// The context, or the refusal of a handler that needs one.
fn context(parts: &Parts) -> Result<&RequestContext, GuardRejection> {
    RequestContext::from_extensions(&parts.extensions)
        .ok_or_else(|| GuardRejection::missing(parts, NO_AUTH_LAYER))
}

/// The caller, or 401 for an anonymous request an optional auth layer let
/// through.
fn caller(parts: &Parts) -> Result<&Principal, GuardRejection> {
    let context = context(parts)?;
    context
        .principal()
        .ok_or_else(|| GuardRejection::new(parts, Some(context), Rejection::missing_token()))
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        context(parts).cloned()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        caller(parts).cloned()
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(Principal::from_extensions(&parts.extensions).cloned())
    }
}

/// The caller's compiled permissions, loaded at most once per request.
///
/// Usable as an axum extractor, or without axum through
/// [`RequestContext::permissions`].
#[derive(Debug, Clone)]
pub struct Permissions(pub Arc<CompiledPermissions>);

impl std::ops::Deref for Permissions {
    type Target = CompiledPermissions;

    fn deref(&self) -> &CompiledPermissions {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Permissions {
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let context = context(parts)?.clone();
        context
            .permissions()
            .await
            .map(Permissions)
            .map_err(|why| GuardRejection::no_permissions(parts, &context, &why))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RecordAccess {
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        caller(parts)?;
        Ok(RecordAccess::from_extensions(&parts.extensions)
            .expect("the caller was found in the same extensions"))
    }
}

/// `GET /permissions` for the current caller, in the permissions document
/// format (entity-grouped; NONE scopes omitted, effective actions as
/// `true`), so a frontend can decide what to render. To list the custom
/// field definitions the caller may see as well, serve a
/// [`PermissionsEndpoint`] instead.
///
/// ```
/// use axum::{routing::get, Router};
/// use iam_guard::permissions_endpoint;
///
/// let app: Router = Router::new().route("/permissions", get(permissions_endpoint));
/// # let _ = app;
/// ```
pub async fn permissions_endpoint(permissions: Permissions) -> Response {
    document_response(permissions.to_document())
}

/// `GET /permissions` with each entity's `customFieldDefinitions`: the
/// definitions whose scope the caller can READ (see
/// [`CompiledPermissions::to_document_with_custom_fields`]), so a
/// frontend learns which custom fields exist and where, and never hears
/// of one it may not see.
///
/// The definitions come from the catalogue that declares them
/// ([`catalogue`](Self::catalogue)) or from the service
/// ([`custom_fields`](Self::custom_fields)); they are set once here and
/// shared by every request.
///
/// ```
/// use axum::Router;
/// use iam_guard::{model::Catalogue, PermissionsEndpoint};
///
/// let catalogue = Catalogue::students_fixture();
/// let app: Router = Router::new().route(
///     "/permissions",
///     PermissionsEndpoint::new().catalogue(&catalogue).into_route(),
/// );
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Default)]
pub struct PermissionsEndpoint {
    custom_fields: Arc<EntityCustomFields>,
}

impl PermissionsEndpoint {
    /// An endpoint listing no custom field definitions (what
    /// [`permissions_endpoint`] serves).
    pub fn new() -> Self {
        Self::default()
    }

    /// Lists the definitions every entity of `catalogue` declares,
    /// replacing any set before.
    pub fn catalogue(self, catalogue: &Catalogue) -> Self {
        self.custom_fields(EntityCustomFields::from_catalogue(catalogue))
    }

    /// Lists `fields`, replacing any set before.
    pub fn custom_fields(mut self, fields: EntityCustomFields) -> Self {
        self.custom_fields = Arc::new(fields);
        self
    }

    /// The document this endpoint serves to a caller with `permissions`.
    pub fn document(&self, permissions: &CompiledPermissions) -> serde_json::Value {
        permissions.to_document_with_custom_fields(&self.custom_fields)
    }

    /// The `GET` route serving the document; other methods answer 405.
    pub fn into_route<S>(self) -> MethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        get(move |permissions: Permissions| {
            std::future::ready(document_response(self.document(&permissions)))
        })
    }
}

fn document_response(document: serde_json::Value) -> Response {
    let mut res = Response::new(document.to_string().into());
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
