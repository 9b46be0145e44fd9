//! The catalogue the test IAM serves: `GET /catalogue` with an ETag and
//! `If-None-Match`, the development endpoints that change it, and the test
//! methods that publish anything at all (invalid catalogues included).
//!
//! | endpoint | what it does |
//! |---|---|
//! | `GET /catalogue` | the catalogue, with `ETag` (a new one per change) and the `Cache-Control` set by [`TestIam::set_catalogue_cache_control`]; `304 Not Modified` when `If-None-Match` names the current ETag |
//! | `PUT /catalogue` | replaces the whole document (the layered format of `iam_guard::model::catalogue::tenants`) |
//! | `PUT /catalogue/tenants/{tenant}/roles/{role}` | adds or replaces a custom role of `tenant`; the body is the role (`{"name", "scopes", "actions", ...}`, its `id` optional) |
//! | `DELETE /catalogue/tenants/{tenant}/roles/{role}` | removes it |
//!
//! The development endpoints publish only documents that validate, and
//! answer 400 with the problem named otherwise; the test methods publish
//! whatever they are given, so tests can serve what a real IAM must never
//! serve.
//!
//! With [`TestIam::publish_to`], a change made through the development
//! endpoints also invalidates every cached permission set on every
//! replica (the IAM knows its catalogue changed, so the permissions it
//! answers on `GET /permissions` did too). The answer keeps its status and
//! says so in an `x-invalidated` header: `all` when published, `failed`
//! when Redis refused (logged; replicas may serve the old permissions
//! until their TTL). The test methods publish no invalidation.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};

use axum::{
    body::Body,
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, put},
    Json, Router,
};
use bytes::Bytes;
use serde_json::{json, Value};

use super::loopback::Shared;
use super::{IamMode, TestIam};
use crate::{model::TenantCatalogues, permissions::hosted_catalogue::CatalogueFetcher};

/// What the catalogue endpoints share.
pub(super) struct CatalogueState {
    published: Mutex<Published>,
    mode: Mutex<IamMode>,
    cache_control: Mutex<Option<String>>,
    hits: AtomicUsize,
    not_modified: AtomicUsize,
}

/// The document served, and its revision (which names its ETag).
struct Published {
    body: Bytes,
    revision: u64,
}

impl Published {
    fn etag(&self) -> String {
        format!("\"catalogue-{}\"", self.revision)
    }
}

impl Default for CatalogueState {
    fn default() -> Self {
        Self {
            published: Mutex::new(Published {
                body: Bytes::from_static(
                    include_str!("../../fixtures/students_catalogue.json").as_bytes(),
                ),
                revision: 1,
            }),
            mode: Mutex::new(IamMode::Healthy),
            cache_control: Mutex::new(None),
            hits: AtomicUsize::new(0),
            not_modified: AtomicUsize::new(0),
        }
    }
}

impl CatalogueState {
    fn publish(&self, body: Bytes) -> String {
        let mut published = self.published.lock().expect("lock");
        published.body = body;
        published.revision += 1;
        published.etag()
    }

    /// Publishes `doc` if it is a valid catalogue.
    fn publish_valid(&self, doc: &Value) -> Result<String, String> {
        let text = doc.to_string();
        TenantCatalogues::from_json(&text).map_err(|e| e.to_string())?;
        Ok(self.publish(Bytes::from(text)))
    }

    fn document(&self) -> Option<Value> {
        serde_json::from_slice(&self.body()).ok()
    }

    /// The document served, byte for byte.
    pub(super) fn body(&self) -> Bytes {
        self.published.lock().expect("lock").body.clone()
    }
}

/// The catalogue endpoints, merged into the loopback IAM's router.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/catalogue", get(serve).put(replace))
        .route(
            "/catalogue/tenants/{tenant}/roles/{role}",
            put(put_role).delete(delete_role),
        )
}

impl TestIam {
    /// The URL of the catalogue (`GET /catalogue`), which serves the
    /// bundled students catalogue until something else is published.
    ///
    /// | endpoint | what it does |
    /// |---|---|
    /// | `GET /catalogue` | the catalogue, with an `ETag` (a new one per change) and the `Cache-Control` of [`set_catalogue_cache_control`](Self::set_catalogue_cache_control); `304 Not Modified` when `If-None-Match` names the current ETag |
    /// | `PUT /catalogue` | replaces the whole document (the layered format of [`model::catalogue::tenants`](crate::model::catalogue::tenants)) |
    /// | `PUT /catalogue/tenants/{tenant}/roles/{role}` | adds or replaces a custom role of `tenant`; the body is the role (`{"name", "scopes", "actions", ...}`, its `id` optional) |
    /// | `DELETE /catalogue/tenants/{tenant}/roles/{role}` | removes it |
    ///
    /// The development endpoints publish only documents that validate,
    /// and answer 400 naming the problem otherwise; with
    /// [`publish_to`](Self::publish_to) they also invalidate every cached
    /// permission set on every replica (header `x-invalidated: all`, or
    /// `failed` when Redis refused). Development only, like `POST /token`:
    /// whoever reaches the port changes what every service trusting this
    /// IAM grants.
    pub fn catalogue_url(&self) -> String {
        format!("{}/catalogue", self.shared.issuer)
    }

    /// Publishes `doc` as the catalogue, as is: valid or not, so tests can
    /// serve what a real IAM must not. A new ETag each time.
    pub fn set_catalogue(&self, doc: Value) {
        self.shared.catalogue.publish(Bytes::from(doc.to_string()));
    }

    /// Publishes `body` as the catalogue, byte for byte (malformed or
    /// oversized documents). A new ETag each time.
    pub fn set_catalogue_raw(&self, body: impl Into<Bytes>) {
        self.shared.catalogue.publish(body.into());
    }

    /// The catalogue as published, if it is JSON. The bundled students
    /// catalogue until something else is published.
    pub fn catalogue(&self) -> Option<Value> {
        self.shared.catalogue.document()
    }

    /// The ETag of the catalogue as published.
    pub fn catalogue_etag(&self) -> String {
        self.shared.catalogue.published.lock().expect("lock").etag()
    }

    /// Adds or replaces the custom role `role["id"]` of `tenant`, as
    /// `PUT /catalogue/tenants/{tenant}/roles/{role}` does.
    ///
    /// # Errors
    ///
    /// When the role has no string `id`, the published catalogue is not
    /// JSON, or the result would not be a valid catalogue: nothing is
    /// published then.
    pub fn put_catalogue_role(&self, tenant: &str, role: Value) -> Result<String, String> {
        let id = role
            .get("id")
            .and_then(Value::as_str)
            .ok_or("the role needs a string `id`")?
            .to_owned();
        self.shared.put_role(tenant, &id, role)
    }

    /// Sets how catalogue requests are answered (the JWKS keeps its own
    /// [`set_mode`](Self::set_mode)).
    pub fn set_catalogue_mode(&self, mode: IamMode) {
        *self.shared.catalogue.mode.lock().expect("lock") = mode;
    }

    /// Sets the `Cache-Control` header of catalogue answers (none by
    /// default).
    pub fn set_catalogue_cache_control(&self, value: Option<&str>) {
        *self.shared.catalogue.cache_control.lock().expect("lock") = value.map(str::to_owned);
    }

    /// `GET /catalogue` requests served so far, whatever the answer.
    pub fn catalogue_fetches(&self) -> usize {
        self.shared.catalogue.hits.load(Ordering::SeqCst)
    }

    /// `GET /catalogue` requests answered 304 Not Modified so far.
    pub fn catalogue_not_modified(&self) -> usize {
        self.shared.catalogue.not_modified.load(Ordering::SeqCst)
    }

    /// A catalogue fetcher for this IAM, with a short retry pause suited
    /// to tests.
    ///
    /// # Panics
    ///
    /// Never for a running test IAM (its URL is valid).
    pub fn catalogue_fetcher(&self) -> CatalogueFetcher {
        CatalogueFetcher::builder()
            .retry_after_failure(std::time::Duration::from_millis(50))
            .url(&self.catalogue_url())
            .expect("a valid catalogue URL")
    }
}

impl Shared {
    fn put_role(&self, tenant: &str, id: &str, mut role: Value) -> Result<String, String> {
        let Some(mut doc) = self.catalogue.document() else {
            return Err("the published catalogue is not JSON".into());
        };
        let Some(fields) = role.as_object_mut() else {
            return Err("a role is a JSON object".into());
        };
        match fields.get("id") {
            Some(Value::String(given)) if given != id => {
                return Err(format!("the body's id {given:?} is not the path's {id:?}"))
            }
            _ => {
                fields.insert("id".into(), json!(id));
            }
        }
        let roles = tenant_roles(&mut doc, tenant)?;
        match roles.iter_mut().find(|r| r["id"] == id) {
            Some(slot) => *slot = role,
            None => roles.push(role),
        }
        self.catalogue.publish_valid(&doc)
    }

    fn delete_role(&self, tenant: &str, id: &str) -> Result<Option<String>, String> {
        let Some(mut doc) = self.catalogue.document() else {
            return Err("the published catalogue is not JSON".into());
        };
        let roles = tenant_roles(&mut doc, tenant)?;
        let before = roles.len();
        roles.retain(|r| r["id"] != id);
        if roles.len() == before {
            return Ok(None);
        }
        self.catalogue.publish_valid(&doc).map(Some)
    }
}

/// The role list of `tenant` in `doc`, created when absent.
fn tenant_roles<'a>(doc: &'a mut Value, tenant: &str) -> Result<&'a mut Vec<Value>, String> {
    let Some(root) = doc.as_object_mut() else {
        return Err("the published catalogue is not a JSON object".into());
    };
    root.entry("tenants")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or("`tenants` is not an object")?
        .entry(tenant)
        .or_insert_with(|| json!({"roles": []}))
        .as_object_mut()
        .ok_or("the tenant is not an object")?
        .entry("roles")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| "the tenant's `roles` is not a list".to_owned())
}

fn invalid(why: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_catalogue", "error_description": why})),
    )
        .into_response()
}

/// The answer to a change published as `etag`, after invalidating every
/// replica's cached permissions when there are replicas to reach.
async fn published(shared: &Shared, etag: String) -> Response {
    let invalidated = match shared.dev.revoke.invalidate_all().await {
        Ok(false) => None,
        Ok(true) => Some("all"),
        Err(why) => {
            tracing::warn!(
                target: "iam_guard::test_util",
                %etag,
                "catalogue changed, but the invalidation was not published: {why}"
            );
            Some("failed")
        }
    };
    let mut res = Json(json!({"etag": etag})).into_response();
    if let Some(value) = invalidated {
        res.headers_mut()
            .insert("x-invalidated", HeaderValue::from_static(value));
    }
    res
}

/// `GET /catalogue`.
async fn serve(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let state = &shared.catalogue;
    state.hits.fetch_add(1, Ordering::SeqCst);
    let mode = state.mode.lock().expect("lock").clone();
    match mode {
        IamMode::Healthy | IamMode::Chunked => {}
        IamMode::Status(code) => {
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()
        }
        IamMode::Garbage => return (StatusCode::OK, "{\"entities\": [oops").into_response(),
        IamMode::Slow(delay) => tokio::time::sleep(delay).await,
        IamMode::Huge(len) => return (StatusCode::OK, " ".repeat(len)).into_response(),
    }
    let (body, etag) = {
        let published = state.published.lock().expect("lock");
        (published.body.clone(), published.etag())
    };
    let cache_control = state.cache_control.lock().expect("lock").clone();
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if matches {
        state.not_modified.fetch_add(1, Ordering::SeqCst);
        StatusCode::NOT_MODIFIED.into_response()
    } else if mode == IamMode::Chunked {
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(4096)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Body::from_stream(futures_util::stream::iter(chunks)).into_response()
    } else {
        Body::from(body).into_response()
    };
    let headers = res.headers_mut();
    if !matches {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if let Some(v) = cache_control.and_then(|cc| HeaderValue::from_str(&cc).ok()) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    res
}

/// `PUT /catalogue`: the whole document. Development only.
async fn replace(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let doc: Value = match serde_json::from_slice(&body) {
        Ok(doc) => doc,
        Err(e) => return invalid(format!("not JSON: {e}")),
    };
    match shared.catalogue.publish_valid(&doc) {
        Ok(etag) => published(&shared, etag).await,
        Err(why) => invalid(why),
    }
}

/// `PUT /catalogue/tenants/{tenant}/roles/{role}`. Development only.
async fn put_role(
    State(shared): State<Arc<Shared>>,
    Path((tenant, role)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let doc: Value = match serde_json::from_slice(&body) {
        Ok(doc) => doc,
        Err(e) => return invalid(format!("not JSON: {e}")),
    };
    match shared.put_role(&tenant, &role, doc) {
        Ok(etag) => published(&shared, etag).await,
        Err(why) => invalid(why),
    }
}

/// `DELETE /catalogue/tenants/{tenant}/roles/{role}`. Development only.
async fn delete_role(
    State(shared): State<Arc<Shared>>,
    Path((tenant, role)): Path<(String, String)>,
) -> Response {
    match shared.delete_role(&tenant, &role) {
        Ok(Some(etag)) => published(&shared, etag).await,
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "unknown_role"})),
        )
            .into_response(),
        Err(why) => invalid(why),
    }
}
