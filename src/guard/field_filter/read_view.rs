//! [`ReadView`]: a handler serializes its response with only the scope
//! groups the caller can read, and FieldFilter sends it without scanning
//! it again.

use std::{
    cell::Cell,
    fmt,
    sync::{Arc, OnceLock},
};

use axum::{body::Body, extract::FromRequestParts, response::Response};
use bytes::Bytes;
use http::{header, request::Parts, HeaderValue, Method};
use serde::Serialize;

use super::{
    prefiltered::{keeper, EntityFrom, Plan, Prefiltered},
    Config, FieldFilterLayer,
};
use crate::{
    extract::{GuardRejection, NO_AUTH_LAYER},
    guard::{
        context::RequestContext,
        deny::{Guard, RouteName, Scene},
    },
    metrics::{self, FilterPass},
    model::{filtered_json, CompiledPermissions},
    rejection::{ErrorCode, Rejection},
};

const NO_ENTITY: &str = "ReadView on a route whose requirement names no entity: guard the \
                         route with a scope or action requirement, or give \
                         FieldFilterLayer::entity";

/// The caller's view of the route's entity: which scope groups it can
/// read, and a JSON response serialized with only those.
///
/// [`FieldFilter`](super::FieldFilter) filters any JSON response by
/// scanning the bytes the handler produced. A handler that still holds
/// the value can skip that pass: [`json`](Self::json) (an object, a list)
/// and [`page`](Self::page) (`{"data": [...], "meta": {...}}`) serialize
/// the value leaving out the groups the caller cannot read — they are
/// never written at all — and the filter on the route recognises the
/// response as its own work and sends it as it is. The bytes are the same
/// the filter would have produced from the whole value.
///
/// The filter stays the net: it trusts a response only when it carries
/// the very buffer the view wrote, for this request's permissions, entity
/// and filter configuration. A body another layer replaced or changed is
/// scanned like any other. Without a FieldFilter on the route the view
/// filters on its own, by the filter's defaults (`id`, `createdAt` and
/// `updatedAt` always kept).
///
/// [`can_read`](Self::can_read) lets a handler skip loading a group it
/// would only drop.
///
/// # Refusals
///
/// As an extractor, through the crate's one deny path: no auth layer, or
/// a route whose requirement names no entity (and no
/// [`FieldFilterLayer::entity`]), is a wiring 500; permissions that cannot
/// be loaded are a 503 `IAM_UNAVAILABLE`. A value that cannot be
/// serialized filtered (an array in an array, a raw JSON value standing
/// for an entity, the value's own serialization error) is a 500
/// `INTERNAL`, never the unfiltered body.
///
/// With [`JwtAuthGuardLayer::super_user_bypass`](crate::JwtAuthGuardLayer::super_user_bypass)
/// on, a super user's responses are written whole (and audited, as the
/// filter audits them).
///
/// # Example
///
/// ```
/// use axum::{body::Body, http::Request, response::Response, routing::get, Router};
/// use http_body_util::BodyExt;
/// use iam_guard::{
///     test_util::TestIam, ClaimsSource, FieldFilterLayer, JwtAuthGuardLayer, ReadView,
///     ScopeGuard,
/// };
/// use serde::Serialize;
/// use serde_json::{json, Value};
/// use tower::ServiceExt;
///
/// #[derive(Serialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Student {
///     id: &'static str,
///     anagraphic: Value,
///     sensitive: Value,
/// }
///
/// async fn show(view: ReadView) -> Response {
///     let student = Student {
///         id: "s-1",
///         anagraphic: json!({ "firstName": "Marco" }),
///         // A group the caller cannot read need not even be loaded.
///         sensitive: if view.can_read("sensitive") {
///             json!({ "disabilityInfo": null })
///         } else {
///             Value::Null
///         },
///     };
///     view.json(&student)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let iam = TestIam::start().await;
/// let app = Router::new()
///     .route(
///         "/students/{id}",
///         get(show)
///             .route_layer(FieldFilterLayer::new())
///             .route_layer(ScopeGuard::read("students")),
///     )
///     .layer(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()));
///
/// let token = iam.mint(json!({
///     "entities": { "students": { "scopes": { "anagraphic": "READ" }, "actions": {} } }
/// }));
/// let req = Request::get("/students/s-1")
///     .header("authorization", format!("Bearer {token}"))
///     .body(Body::empty())
///     .unwrap();
/// let res = app.oneshot(req).await.unwrap();
/// let body = res.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(body, r#"{"id":"s-1","anagraphic":{"firstName":"Marco"}}"#);
/// # }
/// ```
#[derive(Clone)]
pub struct ReadView {
    context: RequestContext,
    /// `None` for a super user under the bypass: nothing is left out.
    permissions: Option<Arc<CompiledPermissions>>,
    entity_from: EntityFrom,
    plan: Plan,
    /// The plan is the route's FieldFilter's (which then trusts the
    /// response), not the defaults.
    filtered_again: bool,
    method: Method,
    route: RouteName,
}

impl fmt::Debug for ReadView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadView")
            .field("entity", &self.entity())
            .field("bypass", &self.permissions.is_none())
            .field("filter_on_route", &self.filtered_again)
            .finish_non_exhaustive()
    }
}

/// The plan of a route with no FieldFilter: the filter's defaults.
fn default_plan() -> Plan {
    static DEFAULT: OnceLock<Plan> = OnceLock::new();
    DEFAULT
        .get_or_init(|| Plan(FieldFilterLayer::new().config))
        .clone()
}

impl ReadView {
    /// The entity whose scope groups are filtered: the route
    /// requirement's, or the one given to the FieldFilter.
    pub fn entity(&self) -> &str {
        let entity = match self.entity_from {
            EntityFrom::Requirement => self.context.requirement().and_then(|r| r.entity()),
            EntityFrom::Plan => self.plan.0.entity.as_deref(),
        };
        entity.expect("found when the view was extracted")
    }

    /// Whether a top-level member `key` is written: an always-allowed key,
    /// or a scope group the caller can READ (or WRITE).
    pub fn can_read(&self, key: &str) -> bool {
        self.permissions
            .as_ref()
            .is_none_or(|perms| keeper(&self.plan.0, perms, self.entity())(key))
    }

    /// `value` as an `application/json` response with only the members
    /// [`can_read`](Self::can_read) accepts: a struct or map is an entity,
    /// a sequence holds entities (scalars in it are kept), a scalar is
    /// kept. See [`filtered_json::to_vec`].
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) -> Response {
        self.respond(|keep| filtered_json::to_vec(value, keep))
    }

    /// The page `{"data": data, "meta": meta}` as an `application/json`
    /// response: each entity of `data` with only the members the caller
    /// can read, `meta` as it is. See [`filtered_json::page_to_vec`].
    pub fn page<D, M>(&self, data: &D, meta: &M) -> Response
    where
        D: Serialize + ?Sized,
        M: Serialize + ?Sized,
    {
        self.respond(|keep| filtered_json::page_to_vec(data, meta, keep))
    }

    fn scene(&self) -> Scene<'_> {
        Scene::new(Guard::FieldFilter, &self.method, self.route.as_str()).within(&self.context)
    }

    fn respond<W>(&self, write: W) -> Response
    where
        W: FnOnce(&dyn Fn(&str) -> bool) -> serde_json::Result<Vec<u8>>,
    {
        let removed = Cell::new(0u64);
        let written = match &self.permissions {
            None => write(&|_| true),
            Some(perms) => {
                let keeps = keeper(&self.plan.0, perms, self.entity());
                write(&|key| {
                    let kept = keeps(key);
                    if !kept {
                        removed.set(removed.get() + 1);
                    }
                    kept
                })
            }
        };
        let body = match written {
            Ok(body) => Bytes::from(body),
            Err(e) => {
                let rejection =
                    Rejection::new(ErrorCode::Internal, "the response could not be filtered");
                return self.scene().deny_with(&rejection, &e.to_string(), &[]);
            }
        };
        match (&self.permissions, self.filtered_again) {
            (Some(perms), true) => self.context.record_prefiltered(Prefiltered {
                body: body.clone(),
                permissions: perms.clone(),
                filter: self.plan.0.clone(),
                entity_from: self.entity_from,
                removed: removed.get(),
            }),
            // No filter on the route to count or audit: the view does.
            (Some(_), false) => {
                metrics::response_filtered(FilterPass::Serialized);
                metrics::fields_removed(self.entity(), removed.get());
            }
            (None, false) => self.scene().bypass(),
            (None, true) => {}
        }
        let mut res = Response::new(Body::from(body));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReadView {
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(context) = RequestContext::from_extensions(&parts.extensions).cloned() else {
            return Err(GuardRejection::missing(parts, NO_AUTH_LAYER));
        };
        // The filter nearest the handler: inside the auth layer it left its
        // configuration in the context, outside it in an extension.
        let layer_plan = context
            .filter_plan()
            .and_then(|plan| plan.downcast::<Config>().ok())
            .map(Plan)
            .or_else(|| parts.extensions.get::<Plan>().cloned());
        let filtered_again = layer_plan.is_some();
        let plan = layer_plan.unwrap_or_else(default_plan);
        let entity_from = if context.requirement().and_then(|r| r.entity()).is_some() {
            EntityFrom::Requirement
        } else if plan.0.entity.is_some() {
            EntityFrom::Plan
        } else {
            return Err(GuardRejection::missing(parts, NO_ENTITY));
        };
        let permissions = if context.bypasses() {
            None
        } else {
            // Usually loaded already by the route's requirement guard.
            let loaded = match context.permissions_now() {
                Some(loaded) => loaded,
                None => context.permissions().await,
            };
            match loaded {
                Ok(perms) => Some(perms),
                Err(why) => return Err(GuardRejection::no_permissions(parts, &context, &why)),
            }
        };
        Ok(Self {
            permissions,
            entity_from,
            plan,
            filtered_again,
            method: parts.method.clone(),
            route: RouteName::of(&parts.extensions),
            context,
        })
    }
}
