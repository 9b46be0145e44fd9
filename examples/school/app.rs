//! The school's students API over an in-memory store: the router, its
//! handlers and the demo data. `main.rs` wires it to an IAM; the
//! integration tests (`tests/example_school.rs`) drive this router
//! in-process.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Extension, Json, Router,
};
use iam_guard::{
    guard::protected::ProtectedResource,
    model::{
        custom_fields::{CustomFieldDefinitions, EntityCustomFields, WriteMode},
        Catalogue,
    },
    record_access::{Access, RecordAccess, RecordAccessPolicy},
    JwtAuthGuardLayer, PermissionsEndpoint,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::users::TENANT;

/// Roles that see every student of the tenant; parents and students see
/// only their linked or own records.
pub(crate) const FULL_ACCESS_ROLES: &[&str] = &[
    "admin",
    "hr_secretary",
    "principal",
    "internal_teacher",
    "external_teacher",
    "internal_staff",
    "external_staff",
    "accountant",
    "admissions_officer",
    // The demo school's custom role (see `catalogue.rs`).
    "support_teacher",
];

/// The school's custom fields, as the catalogue declares them
/// (`customFieldDefinitions` of `students`: nickname, blood type, bus
/// route): they travel inside their scope group as `customFields`, so they
/// are filtered with it, and `GET /permissions` lists the ones the caller
/// can read.
pub(crate) fn custom_fields() -> EntityCustomFields {
    EntityCustomFields::from_catalogue(&Catalogue::students_fixture())
}

#[derive(Debug, Clone)]
struct Student {
    record: Map<String, Value>,
    /// The student's own user id, for "own record only".
    user: Option<String>,
    /// Parents' user ids, for "linked children only".
    parents: Vec<String>,
}

/// The in-memory store: tenant → id → student.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    inner: Arc<RwLock<HashMap<String, BTreeMap<String, Student>>>>,
    next_id: Arc<AtomicU64>,
}

/// The current time as RFC 3339 (`2026-09-01T08:00:00Z`), like the demo
/// records' timestamps.
fn now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

impl Store {
    /// A store with three demo students in [`TENANT`].
    pub(crate) fn demo() -> Self {
        let store = Self::default();
        let mut students = BTreeMap::new();
        for (i, (first, last, user, parents)) in [
            ("Mario", "Rossi", None, vec!["u-parent".to_owned()]),
            ("Giulia", "Bianchi", Some("u-student".to_owned()), vec![]),
            ("Luca", "Verdi", None, vec![]),
        ]
        .into_iter()
        .enumerate()
        {
            let id = format!("s-{}", i + 1);
            let record = json!({
                "id": id,
                "createdAt": "2026-09-01T08:00:00Z",
                "updatedAt": "2026-09-01T08:00:00Z",
                "anagraphic": {"firstName": first, "lastName": last, "dateOfBirth": "2015-04-0{}".replace("{}", &(i + 1).to_string()),
                               "customFields": {"nickname": first.to_lowercase()}},
                "sensitive": {"disabilityInfo": null, "dietaryRestrictions": "none",
                              "customFields": {"blood_type": "O+"}},
                "attendance": {"absences": i * 2},
                "scoring": {"average": 7.5 + i as f64},
                "financial": {"feesDue": 120 * (i + 1)},
                "family": {"parents": parents},
                "documents": {"idCard": format!("doc-{}", i + 1)},
                "enrollment": {"class": "4B", "customFields": {"bus_route": 3}},
            });
            let Value::Object(record) = record else {
                unreachable!("a JSON object literal")
            };
            students.insert(
                id,
                Student {
                    record,
                    user,
                    parents,
                },
            );
        }
        store
            .inner
            .write()
            .expect("lock")
            .insert(TENANT.into(), students);
        store.next_id.store(4, Ordering::SeqCst);
        store
    }

    /// One page of the students `access` may see (in id order), and how
    /// many it may see in all. Only the page's records are cloned.
    fn page(&self, access: &RecordAccess, skip: usize, take: usize) -> (Vec<Value>, usize) {
        let Some(tenant) = access.tenant.as_deref() else {
            return (Vec::new(), 0);
        };
        let guard = self.inner.read().expect("lock");
        let Some(students) = guard.get(tenant) else {
            return (Vec::new(), 0);
        };
        let mut total = 0;
        let mut data = Vec::new();
        for s in students.values().filter(|s| may_see(access, s)) {
            if total >= skip && data.len() < take {
                data.push(Value::Object(s.record.clone()));
            }
            total += 1;
        }
        (data, total)
    }

    /// The student `id` as a JSON response when `access` may see it, by
    /// one map lookup; serialized under the read lock, without a clone.
    fn respond_one(&self, access: &RecordAccess, id: &str) -> Option<Response> {
        let tenant = access.tenant.as_deref()?;
        let guard = self.inner.read().expect("lock");
        let student = guard.get(tenant)?.get(id).filter(|s| may_see(access, s))?;
        Some(Json(&student.record).into_response())
    }
}

/// Record-level access: full-access roles see the tenant,
/// a parent sees linked children, a student their own record. An
/// `Owner` caller that is neither sees nothing.
fn may_see(access: &RecordAccess, student: &Student) -> bool {
    match &access.access {
        Access::Full => true,
        Access::Owner(user) => {
            student.user.as_deref() == Some(user.as_str()) || student.parents.contains(user)
        }
        _ => false,
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    page: Option<usize>,
    limit: Option<usize>,
}

async fn list(
    State(app): State<AppState>,
    access: RecordAccess,
    Query(page): Query<Page>,
) -> Json<Value> {
    let limit = page.limit.unwrap_or(20).clamp(1, 100);
    let page_no = page.page.unwrap_or(1).max(1);
    let skip = (page_no - 1).saturating_mul(limit);
    let (data, total) = app.store.page(&access, skip, limit);
    Json(json!({"data": data, "meta": {"page": page_no, "limit": limit, "total": total}}))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"statusCode": 404, "error": "Not Found", "code": "NOT_FOUND", "message": "no such student"})),
    )
        .into_response()
}

async fn get_one(
    State(app): State<AppState>,
    access: RecordAccess,
    Path(id): Path<String>,
) -> Response {
    app.store
        .respond_one(&access, &id)
        .unwrap_or_else(not_found)
}

async fn create(
    State(app): State<AppState>,
    access: RecordAccess,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    let doc = Value::Object(body);
    if let Err(e) = app.custom_fields.validate_body(&doc, WriteMode::Create) {
        return e.into_response();
    }
    let Value::Object(mut record) = doc else {
        unreachable!("built from a map")
    };
    let id = format!("s-{}", app.store.next_id.fetch_add(1, Ordering::SeqCst));
    let stamp = now();
    record.insert("id".into(), json!(id));
    record.insert("createdAt".into(), json!(stamp));
    record.insert("updatedAt".into(), json!(stamp));
    let tenant = access.tenant.unwrap_or_default();
    let student = Student {
        record: record.clone(),
        user: None,
        parents: Vec::new(),
    };
    app.store
        .inner
        .write()
        .expect("lock")
        .entry(tenant)
        .or_default()
        .insert(id, student);
    (StatusCode::CREATED, Json(Value::Object(record))).into_response()
}

async fn patch(
    State(app): State<AppState>,
    access: RecordAccess,
    Path(id): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    let doc = Value::Object(body);
    if let Err(e) = app.custom_fields.validate_body(&doc, WriteMode::Update) {
        return e.into_response();
    }
    let Value::Object(body) = doc else {
        unreachable!("built from a map")
    };
    let tenant = access.tenant.clone().unwrap_or_default();
    let mut guard = app.store.inner.write().expect("lock");
    let Some(student) = guard
        .get_mut(&tenant)
        .and_then(|s| s.get_mut(&id))
        .filter(|s| may_see(&access, s))
    else {
        return not_found();
    };
    // A PATCH merges each scope group field by field.
    for (group, fields) in body {
        let slot = student.record.entry(group).or_insert_with(|| json!({}));
        match (slot.as_object_mut(), fields) {
            (Some(existing), Value::Object(fields)) => existing.extend(fields),
            (_, fields) => *slot = fields,
        }
    }
    student.record.insert("updatedAt".into(), json!(now()));
    Json(Value::Object(student.record.clone())).into_response()
}

async fn remove(
    State(app): State<AppState>,
    access: RecordAccess,
    Path(id): Path<String>,
) -> Response {
    let tenant = access.tenant.clone().unwrap_or_default();
    let mut guard = app.store.inner.write().expect("lock");
    let Some(students) = guard.get_mut(&tenant) else {
        return not_found();
    };
    match students.get(&id) {
        Some(s) if may_see(&access, s) => {
            students.remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(),
    }
}

/// The definitions of `students`, which the write handlers validate.
fn student_fields(fields: &EntityCustomFields) -> CustomFieldDefinitions {
    fields.get("students").cloned().unwrap_or_default()
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    store: Store,
    custom_fields: Arc<CustomFieldDefinitions>,
}

/// The students bundle: convention mode, so GET needs READ, PATCH WRITE,
/// POST the `create` action and DELETE the `delete` action on `students`.
pub(crate) fn students() -> ProtectedResource<AppState> {
    ProtectedResource::new("students")
        .get("/students", list)
        .get("/students/{id}", get_one)
        .post("/students", create)
        .patch("/students/{id}", patch)
        .delete("/students/{id}", remove)
}

/// Whether [`router_with`] also mounts the unguarded benchmark route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum BareRoutes {
    /// Every data route is guarded (the default, and the only sane choice
    /// for a real service).
    #[default]
    Off,
    /// Also serve `GET /bare/students/{id}`: the same store lookup and
    /// JSON as `GET /students/{id}`, with no JwtAuthGuard, no requirement
    /// and no FieldFilter, reading as a fixed full-access caller of the
    /// demo tenant. For `benches/http_load.sh` only: anyone can read every
    /// student's every scope group through it.
    On,
}

/// The record access of the bare mount: every student of the demo
/// tenant, as no particular user.
fn bare_access() -> RecordAccess {
    RecordAccess {
        tenant: Some(TENANT.into()),
        user: "bare-benchmark".into(),
        roles: Vec::new(),
        access: Access::Full,
        departments: Default::default(),
    }
}

/// `GET /bare/students/{id}`: what `get_one` does, with the fixed
/// [`bare_access`] from an extension instead of the guard's.
async fn bare_get_one(
    State(app): State<AppState>,
    Extension(access): Extension<RecordAccess>,
    Path(id): Path<String>,
) -> Response {
    get_one(State(app), access, Path(id)).await
}

/// The whole service: the students bundle, the permissions endpoint and
/// an unguarded health check, behind `auth`.
pub(crate) fn router(auth: JwtAuthGuardLayer, store: Store) -> Router {
    router_with(auth, store, BareRoutes::Off)
}

/// `GET /metrics`: the guards' counters (decisions, JWKS fetches, cache
/// hits, permission loads, filtered groups) in the Prometheus text format,
/// from the recorder `main.rs` installs. Not behind the auth layer, as
/// scrapers expect; in a real deployment serve it on an internal port.
pub(crate) fn metrics_route(metrics: metrics_exporter_prometheus::PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || std::future::ready(metrics.render())),
    )
}

/// [`router`], plus the unguarded benchmark route when `bare` is
/// [`BareRoutes::On`].
pub(crate) fn router_with(auth: JwtAuthGuardLayer, store: Store, bare: BareRoutes) -> Router {
    let fields = custom_fields();
    let state = AppState {
        store,
        custom_fields: Arc::new(student_fields(&fields)),
    };
    let policy = RecordAccessPolicy::new().full_access_roles(FULL_ACCESS_ROLES.iter().copied());
    let guarded = students()
        .into_router()
        .with_state(state.clone())
        .route(
            "/permissions",
            PermissionsEndpoint::new()
                .custom_fields(fields)
                .into_route(),
        )
        .route_layer(auth)
        .layer(Extension(policy));
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(guarded);
    match bare {
        BareRoutes::Off => router,
        BareRoutes::On => router.merge(
            Router::new()
                .route("/bare/students/{id}", get(bare_get_one))
                .with_state(state)
                .layer(Extension(bare_access())),
        ),
    }
}
