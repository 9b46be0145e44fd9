//! The school's students API over an in-memory store: the router, its
//! handlers (documented with utoipa), the OpenAPI document and the demo
//! data. `main.rs` wires it to an IAM; the integration tests
//! (`tests/example_school.rs`, `tests/openapi.rs`) drive this router
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
    extract::{
        rejection::{JsonRejection, PathRejection, QueryRejection},
        Path, Query, State,
    },
    http::{Method, StatusCode},
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
    openapi::OpenApiSecurity,
    record_access::{Access, RecordAccess, RecordAccessPolicy},
    ErrorCode, ErrorRenderer, JwtAuthGuardLayer, PermissionsEndpoint, ReadView, Rejection,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, OpenApi, ToSchema};

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
    /// Through `view`, only the groups the caller can read are written
    /// (and FieldFilter has nothing left to scan); the bare benchmark
    /// mount has no view and writes the whole record.
    fn respond_one(
        &self,
        access: &RecordAccess,
        view: Option<&ReadView>,
        id: &str,
    ) -> Option<Response> {
        let tenant = access.tenant.as_deref()?;
        let guard = self.inner.read().expect("lock");
        let student = guard.get(tenant)?.get(id).filter(|s| may_see(access, s))?;
        Some(match view {
            Some(view) => view.json(&student.record),
            None => Json(&student.record).into_response(),
        })
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

/// The list's query: `page` from 1, `limit` from 1 to 100 (clamped).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// The page, from 1 (default 1; 0 counts as 1).
    page: Option<usize>,
    /// Students per page (default 20, clamped to 1..=100).
    limit: Option<usize>,
}

/// One page of the students the caller may see, each with only the
/// scope groups the caller may read.
#[utoipa::path(
    get,
    path = "/students",
    tag = "students",
    params(Page),
    responses(
        (status = 200, description = "One page of students", body = StudentPage),
        (status = 400, description = "A query that is not two non-negative integers (`INVALID_QUERY`)", body = ErrorResponse),
    )
)]
async fn list(
    State(app): State<AppState>,
    access: RecordAccess,
    view: ReadView,
    page: Result<Query<Page>, QueryRejection>,
) -> Response {
    let Query(page) = match page {
        Ok(page) => page,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "INVALID_QUERY", e.body_text()),
    };
    let limit = page.limit.unwrap_or(20).clamp(1, 100);
    let page_no = page.page.unwrap_or(1).max(1);
    let skip = (page_no - 1).saturating_mul(limit);
    let (data, total) = app.store.page(&access, skip, limit);
    view.page(
        &data,
        &json!({"page": page_no, "limit": limit, "total": total}),
    )
}

/// An error in the guards' JSON format, so a client parses one shape.
fn refuse(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(json!({
            "statusCode": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("Error"),
            "code": code,
            "message": message,
        })),
    )
        .into_response()
}

fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "no such student".into())
}

/// The student id of the path, or 400 in the error format.
fn student_id(id: Result<Path<String>, PathRejection>) -> Result<String, Box<Response>> {
    id.map(|Path(id)| id).map_err(|e| {
        Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
            e.body_text(),
        ))
    })
}

/// The write body as a JSON object and the record it must describe, or
/// the refusal: custom fields first (the error names the field), then the
/// shape of each scope group.
fn write_body(
    app: &AppState,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
    mode: WriteMode,
) -> Result<Map<String, Value>, Box<Response>> {
    let body = match body {
        Ok(Json(body)) => body,
        Err(e) => {
            let code = match e.status() {
                StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
                _ => ErrorCode::InvalidBody,
            };
            let rejection = Rejection::new(code, e.body_text());
            return Err(Box::new(
                ErrorRenderer::json()
                    .render(&rejection)
                    .map(axum::body::Body::from),
            ));
        }
    };
    let doc = Value::Object(body);
    if let Err(e) = app.custom_fields.validate_body(&doc, mode) {
        return Err(Box::new(e.into_response()));
    }
    // The groups as the document describes them: the store keeps only
    // records that the schema of `Student` describes. Objects only: serde
    // would also read a struct from an array of its members in order.
    if let Some((group, _)) = body_groups(&doc).find(|(_, v)| !v.is_object()) {
        return Err(Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            format!("the scope group {group} is not an object"),
        )));
    }
    if let Err(e) = StudentWrite::deserialize(&doc) {
        return Err(Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            format!("the body is not a student's scope groups: {e}"),
        )));
    }
    let Value::Object(body) = doc else {
        unreachable!("built from a map")
    };
    Ok(body)
}

/// The top-level members of a write body.
fn body_groups(doc: &Value) -> impl Iterator<Item = (&String, &Value)> {
    doc.as_object().into_iter().flatten()
}

/// One student, with only the scope groups the caller may read.
#[utoipa::path(
    get,
    path = "/students/{id}",
    tag = "students",
    params(("id" = String, Path, description = "The student's id, such as `s-1`")),
    responses(
        (status = 200, description = "The student", body = StudentRecord),
        (status = 404, description = "No such student the caller may see (`NOT_FOUND`)", body = ErrorResponse),
        (status = 400, description = "A path that is not an id (`INVALID_PATH`)", body = ErrorResponse),
    )
)]
async fn get_one(
    State(app): State<AppState>,
    access: RecordAccess,
    view: ReadView,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match student_id(id) {
        Ok(id) => id,
        Err(res) => return *res,
    };
    app.store
        .respond_one(&access, Some(&view), &id)
        .unwrap_or_else(not_found)
}

/// A new student. Every top-level key must be a scope group the caller
/// may write.
#[utoipa::path(
    post,
    path = "/students",
    tag = "students",
    request_body = StudentWrite,
    responses(
        (status = 201, description = "The new student, with only the groups the caller may read", body = StudentRecord),
        (status = 400, description = "A custom field or a group member of the wrong type (`INVALID_BODY`)", body = ErrorResponse),
    )
)]
async fn create(
    State(app): State<AppState>,
    access: RecordAccess,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Response {
    let doc = match write_body(&app, body, WriteMode::Create) {
        Ok(body) => Value::Object(body),
        Err(res) => return *res,
    };
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

/// Changes a student: each scope group given is merged member by member.
#[utoipa::path(
    patch,
    path = "/students/{id}",
    tag = "students",
    params(("id" = String, Path, description = "The student's id, such as `s-1`")),
    request_body = StudentWrite,
    responses(
        (status = 200, description = "The student, with only the groups the caller may read", body = StudentRecord),
        (status = 404, description = "No such student the caller may see (`NOT_FOUND`)", body = ErrorResponse),
        (status = 400, description = "A custom field or a group member of the wrong type (`INVALID_BODY`), or a path that is not an id (`INVALID_PATH`)", body = ErrorResponse),
    )
)]
async fn patch(
    State(app): State<AppState>,
    access: RecordAccess,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Response {
    let id = match student_id(id) {
        Ok(id) => id,
        Err(res) => return *res,
    };
    let body = match write_body(&app, body, WriteMode::Update) {
        Ok(body) => body,
        Err(res) => return *res,
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

/// Deletes a student.
#[utoipa::path(
    delete,
    path = "/students/{id}",
    tag = "students",
    params(("id" = String, Path, description = "The student's id, such as `s-1`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such student the caller may see (`NOT_FOUND`)", body = ErrorResponse),
        (status = 400, description = "A path that is not an id (`INVALID_PATH`)", body = ErrorResponse),
    )
)]
async fn remove(
    State(app): State<AppState>,
    access: RecordAccess,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match student_id(id) {
        Ok(id) => id,
        Err(res) => return *res,
    };
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

/// `GET /bare/students/{id}`: what `get_one` does — the same lookup, the
/// same record serialized — with the fixed [`bare_access`] from an
/// extension instead of the guard's, and no filtering.
async fn bare_get_one(
    State(app): State<AppState>,
    Extension(access): Extension<RecordAccess>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match student_id(id) {
        Ok(id) => id,
        Err(res) => return *res,
    };
    app.store
        .respond_one(&access, None, &id)
        .unwrap_or_else(not_found)
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
    // Who sees every record: set once on the auth layer, carried by the
    // request context it plants.
    let auth = auth.record_access(
        RecordAccessPolicy::new().full_access_roles(FULL_ACCESS_ROLES.iter().copied()),
    );
    // The bundle takes the auth layer itself: composed with its guards
    // into one layer per route, where a `route_layer` over the router
    // would add a second that axum boxes and clones on every request.
    let guarded = students()
        .authenticate(auth.clone())
        .into_router()
        .with_state(state.clone())
        .route(
            "/permissions",
            PermissionsEndpoint::new()
                .custom_fields(fields)
                .into_route()
                .route_layer(auth),
        );
    let router = Router::new().route("/health", get(health)).merge(guarded);
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

/// Liveness: `ok`, with no token.
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    responses((status = 200, description = "The service is up", body = String, content_type = "text/plain"))
)]
async fn health() -> &'static str {
    "ok"
}

// The OpenAPI document. The schemas describe what the handlers accept and
// return: every scope group is optional in a record (FieldFilter strips
// the ones the caller cannot read), and a write body holds only scope
// groups (FieldWriteGuard refuses anything else with 403) whose members
// `write_body` checks against these types. They are never constructed:
// records are stored and served as JSON.

/// An error: the guards' refusals and the handlers' own errors share it.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = Error)]
#[serde(rename_all = "camelCase")]
struct ErrorResponse {
    status_code: u16,
    error: String,
    code: String,
    message: String,
}

/// The `anagraphic` scope group.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Anagraphic {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    /// As given (`2015-04-01` in the demo data); not validated.
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    custom_fields: AnagraphicCustomFields,
}

/// The school's custom fields of `anagraphic`.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct AnagraphicCustomFields {
    #[serde(default)]
    nickname: String,
}

/// The `sensitive` scope group.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Sensitive {
    #[serde(default)]
    disability_info: Option<String>,
    #[serde(default)]
    dietary_restrictions: Option<String>,
    #[serde(default)]
    custom_fields: SensitiveCustomFields,
}

/// The school's custom fields of `sensitive`.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct SensitiveCustomFields {
    #[serde(default)]
    blood_type: Option<BloodType>,
}

/// A SELECT custom field's options.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema)]
enum BloodType {
    #[serde(rename = "A+")]
    APositive,
    #[serde(rename = "A-")]
    ANegative,
    #[serde(rename = "B+")]
    BPositive,
    #[serde(rename = "B-")]
    BNegative,
    #[serde(rename = "AB+")]
    AbPositive,
    #[serde(rename = "AB-")]
    AbNegative,
    #[serde(rename = "O+")]
    OPositive,
    #[serde(rename = "O-")]
    ONegative,
}

/// The `attendance` scope group.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct Attendance {
    #[serde(default)]
    absences: u32,
}

/// The `scoring` scope group.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct Scoring {
    #[serde(default)]
    average: f64,
}

/// The `financial` scope group.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Financial {
    #[serde(default)]
    fees_due: u32,
}

/// The `family` scope group: parents' user ids.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct Family {
    #[serde(default)]
    parents: Vec<String>,
}

/// The `documents` scope group.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Documents {
    #[serde(default)]
    id_card: String,
}

/// The `enrollment` scope group.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Enrollment {
    #[serde(default)]
    class: String,
    #[serde(default)]
    custom_fields: EnrollmentCustomFields,
}

/// The school's custom fields of `enrollment`.
#[allow(dead_code)]
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct EnrollmentCustomFields {
    #[serde(default)]
    bus_route: Option<f64>,
}

/// A write body: scope groups only, each optional (the caller needs WRITE
/// on every group it sends).
#[allow(dead_code)]
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StudentWrite {
    #[serde(default)]
    anagraphic: Anagraphic,
    #[serde(default)]
    sensitive: Sensitive,
    #[serde(default)]
    attendance: Attendance,
    #[serde(default)]
    scoring: Scoring,
    #[serde(default)]
    financial: Financial,
    #[serde(default)]
    family: Family,
    #[serde(default)]
    documents: Documents,
    #[serde(default)]
    enrollment: Enrollment,
}

/// A student: the system fields and the scope groups the caller may read.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = Student)]
#[serde(rename_all = "camelCase")]
struct StudentRecord {
    id: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
    #[serde(default)]
    anagraphic: Anagraphic,
    #[serde(default)]
    sensitive: Sensitive,
    #[serde(default)]
    attendance: Attendance,
    #[serde(default)]
    scoring: Scoring,
    #[serde(default)]
    financial: Financial,
    #[serde(default)]
    family: Family,
    #[serde(default)]
    documents: Documents,
    #[serde(default)]
    enrollment: Enrollment,
}

/// A page of students.
#[allow(dead_code)]
#[derive(ToSchema)]
struct StudentPage {
    data: Vec<StudentRecord>,
    meta: PageMeta,
}

/// Where a page is.
#[allow(dead_code)]
#[derive(ToSchema)]
struct PageMeta {
    page: u64,
    limit: u64,
    total: u64,
}

/// The handlers' own documentation, before the guards' security.
#[derive(OpenApi)]
#[openapi(
    info(title = "school students API", description = "The iam-guard school example: students guarded by scope group."),
    paths(list, get_one, create, patch, remove, health),
    tags((name = "students", description = "Student records, filtered by scope group")),
)]
struct SchoolApi;

/// The school's OpenAPI document: the handlers' own, the routes that
/// `main.rs` serves beside them, and the security of every route from the
/// same declarations that guard it (`students()` and the permissions
/// endpoint).
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = SchoolApi::openapi();
    for (path, tag, summary, body) in [
        (
            "/permissions",
            "students",
            "What the caller may do, for a frontend: scopes, actions and custom field definitions",
            "application/json",
        ),
        (
            "/openapi.json",
            "service",
            "This document",
            "application/json",
        ),
        (
            "/.well-known/oauth-protected-resource",
            "service",
            "RFC 9728 protected resource metadata: which IAM issues tokens for this API",
            "application/json",
        ),
        (
            "/metrics",
            "service",
            "The guards' counters in the Prometheus text format",
            "text/plain",
        ),
    ] {
        // The permissions document has a schema of its own, from the
        // library; the others are described by their content type.
        let schema = match path {
            "/permissions" => iam_guard::openapi::permissions_document_schema(),
            _ => plain_schema(body),
        };
        doc.paths
            .paths
            .insert(path.to_owned(), plain_get(tag, summary, body, schema));
    }
    OpenApiSecurity::new()
        .resource(&students())
        .authenticated(Method::GET, "/permissions")
        .secure(doc)
        .expect("the school's declarations are consistent and name no OAuth flow")
}

/// What a body of `content_type` is: an object when it is JSON, else a
/// string.
fn plain_schema(content_type: &str) -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    let kind = match content_type {
        "application/json" => Type::Object,
        _ => Type::String,
    };
    Schema::Object(ObjectBuilder::new().schema_type(kind).build())
}

/// A `GET` answering 200 with a `schema` body of `content_type`.
fn plain_get(
    tag: &str,
    summary: &str,
    content_type: &str,
    schema: utoipa::openapi::schema::Schema,
) -> utoipa::openapi::PathItem {
    use utoipa::openapi::{
        path::OperationBuilder, ContentBuilder, HttpMethod, PathItem, ResponseBuilder,
    };
    PathItem::new(
        HttpMethod::Get,
        OperationBuilder::new()
            .tag(tag)
            .summary(Some(summary))
            .response(
                "200",
                ResponseBuilder::new().description(summary).content(
                    content_type,
                    ContentBuilder::new().schema(Some(schema)).build(),
                ),
            ),
    )
}

/// `GET /openapi.json`: `doc`, serialized once. Unguarded, like the
/// metadata: it says what each route requires, never who may pass.
pub(crate) fn openapi_route(doc: &utoipa::openapi::OpenApi) -> Router {
    let json = doc.to_json().expect("an OpenAPI document serializes");
    Router::new().route(
        "/openapi.json",
        get(move || {
            let json = json.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    json,
                )
            }
        }),
    )
}
