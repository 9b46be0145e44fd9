//! A catalogue that lives at the IAM: fetched over real loopback HTTP from
//! the test IAM, layered per tenant, refreshed, refused when bad, kept
//! through outages, and never a guess on a cold start.
#![cfg(feature = "test-util")]

mod common;

use std::{sync::Arc, time::Duration};

use axum::{routing::get, Router};
use common::*;
use http::StatusCode;
use iam_guard::{
    permissions::{
        hosted_catalogue::{
            CatalogueFetchError, CatalogueFetcher, CatalogueFetcherBuilder, HostedCatalogueSource,
        },
        source::PermissionSource,
    },
    permissions_endpoint,
    test_util::{self, IamMode, TestIam},
    JwtAuthGuardLayer, ScopeGuard,
};
use serde_json::{json, Value};

/// The system part: one entity with two scopes, two preset roles.
fn system_catalogue() -> Value {
    json!({
        "version": "v1",
        "entities": [{
            "key": "students",
            "scopes": [
                { "key": "anagraphic", "fields": ["firstName"] },
                { "key": "sensitive", "fields": ["disabilityInfo"] }
            ]
        }],
        "roles": [
            { "id": "teacher", "name": "Teacher",
              "scopes": { "students": { "anagraphic": "READ" } } },
            { "id": "admin", "name": "Admin",
              "scopes": { "students": { "anagraphic": "WRITE", "sensitive": "WRITE" } } }
        ]
    })
}

/// A custom role cloned from `teacher`, with `sensitive` at `access`.
fn support_teacher(sensitive: &str) -> Value {
    json!({ "id": "support_teacher", "name": "Support teacher (from Teacher)",
            "scopes": { "students": { "anagraphic": "READ", "sensitive": sensitive } } })
}

/// Tenants 1 and 2 both have a custom `support_teacher`, with different
/// grants.
fn two_schools() -> Value {
    let mut doc = system_catalogue();
    doc["tenants"] = json!({
        "school-1": { "roles": [support_teacher("READ")] },
        "school-2": { "roles": [{ "id": "support_teacher", "name": "Support teacher",
                                  "scopes": { "students": { "anagraphic": "WRITE" } } }] }
    });
    doc
}

/// Settings where nothing happens on its own during a test: an hour of
/// freshness, so every refresh is one the test asks for.
fn settled() -> CatalogueFetcherBuilder {
    CatalogueFetcher::builder()
        .ttl(Duration::from_secs(3600))
        .retry_after_failure(Duration::from_millis(50))
}

struct Service {
    iam: TestIam,
    fetcher: CatalogueFetcher,
    source: HostedCatalogueSource,
    app: Router,
}

/// A guarded router whose permissions come from `iam`'s catalogue:
/// `GET /permissions` (the caller's compiled permissions), `GET /students`
/// (READ on students) and `GET /sensitive` (READ on `students.sensitive`
/// by the handler's own check of the permissions).
fn service_over(iam: TestIam, fetcher: CatalogueFetcher) -> Service {
    let source = HostedCatalogueSource::new(fetcher.clone());
    let auth = JwtAuthGuardLayer::new(iam.verifier())
        .tenant_header(http::HeaderName::from_static("x-org"))
        .permissions(source.clone());
    let app = Router::new()
        .route("/permissions", get(permissions_endpoint))
        .route(
            "/students",
            get(|| async { "listed" }).route_layer(ScopeGuard::read("students")),
        )
        .layer(auth);
    Service {
        iam,
        fetcher,
        source,
        app,
    }
}

async fn service(doc: Value, builder: CatalogueFetcherBuilder) -> Service {
    let iam = TestIam::start().await;
    iam.set_catalogue(doc);
    let fetcher = builder.url(&iam.catalogue_url()).unwrap();
    service_over(iam, fetcher)
}

impl Service {
    fn token(&self, roles: &[&str]) -> String {
        self.iam.mint(json!({
            "sub": "u-1", "tenantId": "school-1", "roles": roles,
            "organizations": ["school-1", "school-2", "school-9"]
        }))
    }

    /// `GET path` as a caller holding `roles`, acting in `tenant`.
    async fn get(&self, path: &str, roles: &[&str], tenant: &str) -> (StatusCode, Value) {
        let token = self.token(roles);
        let auth = format!("Bearer {token}");
        let req = to(
            "GET",
            path,
            "",
            &[("authorization", &auth), ("x-org", tenant)],
        );
        let (status, _, body) = call_json(&self.app, req).await;
        (status, body)
    }

    /// The scopes the caller holds on `students`, as the permissions
    /// endpoint reports them (`{}` for none).
    async fn scopes(&self, roles: &[&str], tenant: &str) -> Value {
        let (status, body) = self.get("/permissions", roles, tenant).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.get("students")
            .map_or_else(|| json!({}), |s| s["scopes"].clone())
    }
}

#[tokio::test]
async fn a_custom_role_added_at_the_iam_takes_effect_after_one_refresh_and_not_before() {
    let s = service(system_catalogue(), settled()).await;
    assert_eq!(s.fetcher.warm_up().await.unwrap().number(), 1);
    let (status, body) = s.get("/students", &["support_teacher"], "school-1").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "INSUFFICIENT_SCOPE");

    // The school's admin creates the role at the IAM.
    s.iam
        .put_catalogue_role("school-1", support_teacher("READ"))
        .unwrap();
    let (status, body) = s.get("/students", &["support_teacher"], "school-1").await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("INSUFFICIENT_SCOPE")),
        "not before a refresh"
    );
    assert_eq!(s.iam.catalogue_fetches(), 1, "warm requests asked nothing");

    let version = s.fetcher.refresh().await.unwrap();
    assert_eq!(version.number(), 2);
    assert_eq!(version.etag(), Some(s.iam.catalogue_etag().as_str()));
    let (status, body) = s.get("/students", &["support_teacher"], "school-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        s.scopes(&["support_teacher"], "school-1").await,
        json!({"anagraphic": "READ", "sensitive": "READ"})
    );
    assert_eq!(s.iam.catalogue_fetches(), 2);
}

#[tokio::test]
async fn a_change_reaches_requests_through_the_background_refresh() {
    // Fresh for no time at all: every request finds the catalogue due and
    // starts (at most one) background refresh, and none waits for it.
    let builder = CatalogueFetcher::builder()
        .ttl(Duration::ZERO)
        .ttl_bounds(Duration::ZERO, Duration::from_secs(60))
        .retry_after_failure(Duration::from_millis(20));
    let s = service(system_catalogue(), builder).await;
    s.fetcher.warm_up().await.unwrap();
    assert_eq!(s.scopes(&["support_teacher"], "school-1").await, json!({}));
    s.iam
        .put_catalogue_role("school-1", support_teacher("READ"))
        .unwrap();
    let mut seen = Value::Null;
    for _ in 0..500 {
        // Every answer is a 200 (checked in `scopes`): the refresh runs
        // off the request path.
        seen = s.scopes(&["support_teacher"], "school-1").await;
        if seen != json!({}) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, json!({"anagraphic": "READ", "sensitive": "READ"}));
    assert!(s.iam.catalogue_fetches() >= 2);
}

#[tokio::test]
async fn permissions_compiled_from_an_old_version_are_not_served_after_the_new_one_is_in() {
    let s = service(two_schools(), settled()).await;
    s.fetcher.warm_up().await.unwrap();
    let caller = test_util::principal(json!({
        "sub": "u-1", "tenantId": "school-1", "roles": ["teacher", "support_teacher"]
    }));
    let first = s.source.load(&caller).await.unwrap();
    let again = s.source.load(&caller).await.unwrap();
    assert!(Arc::ptr_eq(&first, &again), "memoized within a version");
    assert!(first.can_read("students", "sensitive"));

    // The school takes `sensitive` away from its custom role; the same
    // caller with the same roles asks again.
    s.iam
        .put_catalogue_role("school-1", support_teacher("NONE"))
        .unwrap();
    assert!(
        s.source
            .load(&caller)
            .await
            .unwrap()
            .can_read("students", "sensitive"),
        "the old version serves until the new one is in"
    );
    assert_eq!(s.fetcher.refresh().await.unwrap().number(), 2);
    let after = s.source.load(&caller).await.unwrap();
    assert!(!Arc::ptr_eq(&first, &after));
    assert!(!after.can_read("students", "sensitive"));
    assert!(after.can_read("students", "anagraphic"));
    let now = s.source.load_now(&caller).unwrap().unwrap();
    assert!(
        !now.can_read("students", "sensitive"),
        "nor without waiting"
    );
    assert_eq!(
        s.scopes(&["teacher", "support_teacher"], "school-1").await,
        json!({"anagraphic": "READ"})
    );

    // A preset changes for everybody on deploy: teacher now writes.
    let mut doc = s.iam.catalogue().unwrap();
    doc["roles"][0]["scopes"]["students"]["anagraphic"] = json!("WRITE");
    s.iam.set_catalogue(doc);
    assert_eq!(
        s.scopes(&["teacher"], "school-2").await,
        json!({"anagraphic": "READ"})
    );
    assert_eq!(s.fetcher.refresh().await.unwrap().number(), 3);
    for tenant in ["school-1", "school-2", "school-9"] {
        assert_eq!(
            s.scopes(&["teacher"], tenant).await,
            json!({"anagraphic": "WRITE"}),
            "{tenant}"
        );
    }
}

#[tokio::test]
async fn tenants_are_isolated_and_an_unknown_tenant_gets_the_system_roles() {
    let s = service(two_schools(), settled()).await;
    s.fetcher.warm_up().await.unwrap();
    // Same token, same role name, three tenants: school 1 compiles first,
    // so a memo shared across tenants would hand its grants to the others.
    assert_eq!(
        s.scopes(&["support_teacher"], "school-1").await,
        json!({"anagraphic": "READ", "sensitive": "READ"})
    );
    assert_eq!(
        s.scopes(&["support_teacher"], "school-2").await,
        json!({"anagraphic": "WRITE"})
    );
    assert_eq!(s.scopes(&["support_teacher"], "school-9").await, json!({}));
    let (status, body) = s.get("/students", &["support_teacher"], "school-9").await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("INSUFFICIENT_SCOPE"))
    );
    // The presets hold everywhere.
    for tenant in ["school-1", "school-2", "school-9"] {
        assert_eq!(
            s.scopes(&["teacher"], tenant).await,
            json!({"anagraphic": "READ"}),
            "{tenant}"
        );
    }
    // Without any tenant: the system roles only.
    let no_tenant =
        test_util::principal(json!({"sub": "u-2", "roles": ["support_teacher", "teacher"]}));
    let perms = s.source.load(&no_tenant).await.unwrap();
    assert!(perms.can_read("students", "anagraphic"));
    assert!(!perms.can_write("students", "anagraphic"));
    assert!(!perms.can_read("students", "sensitive"));
}

#[tokio::test]
async fn malformed_invalid_and_oversized_catalogues_are_refused_logged_and_replace_nothing() {
    let (capture, _guard) = capture();
    let cap = 16 * 1024;
    let s = service(two_schools(), settled().max_document_bytes(cap)).await;
    s.fetcher.warm_up().await.unwrap();
    let before = s.scopes(&["support_teacher"], "school-1").await;
    assert_eq!(before, json!({"anagraphic": "READ", "sensitive": "READ"}));
    capture.clear();

    let mut undeclared = two_schools();
    undeclared["tenants"]["school-1"]["roles"][0]["scopes"]["students"]["ghost"] = json!("WRITE");
    let mut padded = two_schools().to_string();
    padded.push_str(&" ".repeat(cap));
    // What each case publishes, byte for byte, and the problem named.
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "malformed",
            b"{\"entities\": [{\"key\": ".to_vec(),
            "invalid catalogue json",
        ),
        (
            "undeclared scope",
            undeclared.to_string().into_bytes(),
            "tenant `school-1`: role `support_teacher` grants unknown scope `ghost` of entity \
             `students`",
        ),
        ("oversized", padded.into_bytes(), "larger than 16384 bytes"),
    ];
    for (case, body, problem) in cases {
        s.iam.set_catalogue_raw(body);
        let err = s.fetcher.refresh().await.unwrap_err();
        assert!(err.to_string().contains(problem), "{case}: {err}");
        match (case, &err) {
            ("malformed" | "undeclared scope", CatalogueFetchError::Invalid(_)) => {}
            ("oversized", CatalogueFetchError::Fetch(_)) => {}
            _ => panic!("{case}: unexpected error {err:?}"),
        }
        // The old version keeps serving, unchanged.
        let current = s.fetcher.current().expect("still usable");
        assert_eq!(current.number(), 1, "{case}");
        assert_eq!(current.document_version(), Some("v1"), "{case}");
        assert_eq!(
            s.scopes(&["support_teacher"], "school-1").await,
            before,
            "{case}"
        );
        // Logged once, as a warning naming the problem and what serves.
        let warned: Vec<_> = capture
            .events()
            .into_iter()
            .filter(|e| e.target == "iam_guard::catalogue")
            .collect();
        assert_eq!(warned.len(), 1, "{case}: {warned:?}");
        let fields = &warned[0].fields;
        assert!(
            fields["message"].starts_with("refused the catalogue"),
            "{case}: {fields:?}"
        );
        assert!(fields["error"].contains(problem), "{case}: {fields:?}");
        assert_eq!(fields["serving"], "version 1", "{case}");
        assert!(
            !capture.all_text().contains("installed a new catalogue"),
            "{case}"
        );
        capture.clear();
    }

    // A valid document still gets in after all that.
    s.iam.set_catalogue(system_catalogue());
    assert_eq!(s.fetcher.refresh().await.unwrap().number(), 2);
    assert_eq!(s.scopes(&["support_teacher"], "school-1").await, json!({}));
    assert!(capture
        .all_text()
        .contains("installed a new catalogue version"));
}

#[tokio::test]
async fn a_cold_start_with_the_catalogue_unavailable_is_503_iam_unavailable() {
    let iam = TestIam::start().await;
    iam.set_catalogue_mode(IamMode::Status(500));
    let fetcher = settled().url(&iam.catalogue_url()).unwrap();
    let s = service_over(iam, fetcher);
    for path in ["/students", "/permissions"] {
        let (status, body) = s.get(path, &["admin"], "school-1").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body["code"], "IAM_UNAVAILABLE", "{path}");
        assert_eq!(body["statusCode"], 503, "{path}");
        assert!(
            !body.to_string().contains("listed"),
            "the handler never ran"
        );
        assert!(
            !body.to_string().contains(s.iam.issuer()),
            "no internal address in the answer: {body}"
        );
    }
    assert!(s.fetcher.current().is_none());

    // A closed port (the whole IAM down) answers the same.
    let down = TestIam::start().await;
    let url = down.catalogue_url();
    down.stop();
    let s2 = service_over(TestIam::start().await, settled().url(&url).unwrap());
    let (status, body) = s2.get("/students", &["admin"], "school-1").await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("IAM_UNAVAILABLE"))
    );

    // Once the IAM serves it, the same request succeeds.
    s.iam.set_catalogue_mode(IamMode::Healthy);
    s.fetcher.warm_up().await.unwrap();
    let (status, body) = s.get("/students", &["admin"], "school-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_pause_holds_under_load_on_a_cold_down_iam() {
    let iam = TestIam::start().await;
    iam.set_catalogue_mode(IamMode::Status(503));
    let fetcher = CatalogueFetcher::builder()
        .retry_after_failure(Duration::from_secs(3600))
        .url(&iam.catalogue_url())
        .unwrap();
    let s = Arc::new(service_over(iam, fetcher));
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.get("/students", &["admin"], "school-1").await
            })
        })
        .collect();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "IAM_UNAVAILABLE");
    }
    assert_eq!(s.fetcher.fetch_count(), 1, "one fetch per pause");
    assert_eq!(s.iam.catalogue_fetches(), 1, "the IAM was asked once");
}

#[tokio::test]
async fn a_304_keeps_the_version_and_what_was_compiled_from_it() {
    let s = service(two_schools(), settled()).await;
    s.iam.set_catalogue_cache_control(Some("max-age=600"));
    let first = s.fetcher.warm_up().await.unwrap();
    let etag = first.etag().expect("the IAM sends an ETag").to_owned();
    let caller = test_util::principal(json!({
        "sub": "u-1", "tenantId": "school-1", "roles": ["support_teacher"]
    }));
    let compiled = s.source.load(&caller).await.unwrap();

    let again = s.fetcher.refresh().await.unwrap();
    assert!(Arc::ptr_eq(&first, &again), "the same version");
    assert_eq!(again.etag(), Some(etag.as_str()));
    assert_eq!(s.iam.catalogue_fetches(), 2);
    assert_eq!(
        s.iam.catalogue_not_modified(),
        1,
        "asked with If-None-Match"
    );
    assert!(Arc::ptr_eq(
        &compiled,
        &s.source.load(&caller).await.unwrap()
    ));

    // A changed document is downloaded again.
    s.iam.set_catalogue(system_catalogue());
    let changed = s.fetcher.refresh().await.unwrap();
    assert_eq!(changed.number(), 2);
    assert_ne!(changed.etag(), Some(etag.as_str()));
    assert_eq!(s.iam.catalogue_not_modified(), 1);
}

#[tokio::test]
async fn the_last_good_catalogue_keeps_serving_while_the_iam_is_down() {
    // Stale as soon as fetched, within a one-hour stale-if-error window:
    // every request is served by a stale version and tries a refresh.
    let builder = CatalogueFetcher::builder()
        .ttl(Duration::ZERO)
        .ttl_bounds(Duration::ZERO, Duration::from_secs(60))
        .stale_if_error(Duration::from_secs(3600))
        .retry_after_failure(Duration::from_millis(20));
    let s = service(two_schools(), builder).await;
    s.fetcher.warm_up().await.unwrap();
    s.iam.set_catalogue_mode(IamMode::Status(502));
    assert!(s.fetcher.refresh().await.is_err());
    for _ in 0..20 {
        assert_eq!(
            s.scopes(&["support_teacher"], "school-1").await,
            json!({"anagraphic": "READ", "sensitive": "READ"})
        );
    }
    assert_eq!(s.fetcher.current().unwrap().number(), 1);
}

#[tokio::test]
async fn past_the_stale_window_an_unreachable_iam_is_503() {
    // No freshness and no stale window: the version is spent at once, so
    // the next request must fetch, and the IAM is gone.
    let builder = CatalogueFetcher::builder()
        .ttl(Duration::ZERO)
        .ttl_bounds(Duration::ZERO, Duration::from_secs(60))
        .stale_if_error(Duration::ZERO);
    let s = service(two_schools(), builder).await;
    s.fetcher.warm_up().await.unwrap();
    s.iam.set_catalogue_mode(IamMode::Status(500));
    let (status, body) = s.get("/students", &["admin"], "school-1").await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("IAM_UNAVAILABLE")),
        "a spent catalogue is never a guess: {body}"
    );
}

#[tokio::test]
async fn the_development_endpoints_change_the_catalogue_and_refuse_invalid_edits() {
    let iam = TestIam::start().await;
    let client = reqwest::Client::new();
    let put = |url: String, body: Value| {
        let client = client.clone();
        async move {
            let res = client
                .put(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = serde_json::from_slice::<Value>(&res.bytes().await.unwrap()).unwrap();
            (status, body)
        }
    };
    let url = format!(
        "{}/tenants/school-1/roles/support_teacher",
        iam.catalogue_url()
    );
    let (status, body) = put(
        url.clone(),
        json!({"name": "Support", "scopes": {"students": {"sensitive": "READ"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let etag = body["etag"].clone();
    assert_eq!(etag, json!(iam.catalogue_etag()));
    let doc = iam.catalogue().unwrap();
    assert_eq!(
        doc["tenants"]["school-1"]["roles"][0]["id"],
        "support_teacher"
    );

    // An edit the catalogue would refuse is refused, and nothing changes.
    let (status, body) = put(
        url.clone(),
        json!({"name": "Support", "scopes": {"students": {"ghost": "READ"}}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("unknown scope `ghost`"),
        "{body}"
    );
    let (status, body) = put(
        format!("{}/tenants/school-1/roles/admin", iam.catalogue_url()),
        json!({"name": "Mine"}),
    )
    .await;
    assert_eq!(status, 400, "a preset cannot be redefined: {body}");
    assert_eq!(iam.catalogue().unwrap(), doc);
    assert_eq!(json!(iam.catalogue_etag()), etag);

    // The fetcher sees the edit; GET honours If-None-Match.
    let fetcher = iam.catalogue_fetcher();
    let version = fetcher.warm_up().await.unwrap();
    assert!(version
        .catalogues()
        .for_tenant(Some("school-1"))
        .compile_roles(["support_teacher"])
        .can_read("students", "sensitive"));
    let res = client
        .get(iam.catalogue_url())
        .header("if-none-match", iam.catalogue_etag())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);

    let res = client.delete(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(client.delete(&url).send().await.unwrap().status(), 404);
    let version = fetcher.refresh().await.unwrap();
    assert!(version
        .catalogues()
        .for_tenant(Some("school-1"))
        .compile_roles(["support_teacher"])
        .is_empty());
}

#[tokio::test]
async fn a_token_with_role_assignments_is_judged_again_on_every_request() {
    let svc = service(system_catalogue(), settled()).await;
    let until = common::replicas::now() + 2;
    // The assignment outranks the plain roles while it holds, and lapses
    // while the token is still valid and cached.
    let token = svc.iam.mint(json!({
        "sub": "u-1", "tenantId": "school-1", "roles": ["teacher"],
        "organizations": ["school-1"],
        "role_assignments": [{"role": "admin", "validUntil": until}],
    }));
    let auth = format!("Bearer {token}");
    let scopes = |svc: &Service| {
        let req = to(
            "GET",
            "/permissions",
            "",
            &[("authorization", &auth), ("x-org", "school-1")],
        );
        let app = svc.app.clone();
        async move {
            let (status, _, body) = call_json(&app, req).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body.get("students")
                .map_or_else(|| json!({}), |s| s["scopes"].clone())
        }
    };
    let admin = json!({"anagraphic": "WRITE", "sensitive": "WRITE"});
    assert_eq!(scopes(&svc).await, admin);
    // A repeat is not served what a roles-only token would be.
    assert_eq!(scopes(&svc).await, admin);
    while common::replicas::now() <= until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        scopes(&svc).await,
        json!({}),
        "the lapsed assignment still grants"
    );

    // A token with plain roles only: the same answer on every request.
    for _ in 0..2 {
        let (status, body) = svc.get("/permissions", &["teacher"], "school-1").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["students"]["scopes"], json!({"anagraphic": "READ"}));
    }
}
