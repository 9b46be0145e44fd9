//! The school example's router, driven in-process through the flows the
//! README and the example's printed walkthrough promise.
#![cfg(feature = "test-util")]

#[allow(dead_code)]
#[path = "../examples/school/users.rs"]
mod users;

#[allow(dead_code)]
#[path = "../examples/school/app.rs"]
mod app;

#[path = "../examples/school/catalogue.rs"]
mod catalogue;

use axum::{body::Body, http::Request, Router};
use http_body_util::BodyExt;
use iam_guard::{
    model::Catalogue,
    permissions::{
        hosted_catalogue::{CatalogueFetcher, HostedCatalogueSource},
        source::CatalogueSource,
    },
    test_util::TestIam,
    JwtAuthGuardLayer,
};
use serde_json::{json, Value};
use tower::ServiceExt;

struct School {
    iam: TestIam,
    app: Router,
}

async fn school() -> School {
    let iam = TestIam::start().await;
    let auth = JwtAuthGuardLayer::new(iam.verifier())
        .permissions(CatalogueSource::new(Catalogue::students_fixture()));
    let app = app::router(auth, app::Store::demo());
    School { iam, app }
}

/// The school with the benchmark's unguarded mount (`SCHOOL_BARE_ROUTES=1`).
async fn school_with_bare_routes() -> School {
    let iam = TestIam::start().await;
    let auth = JwtAuthGuardLayer::new(iam.verifier())
        .permissions(CatalogueSource::new(Catalogue::students_fixture()));
    let app = app::router_with(auth, app::Store::demo(), app::BareRoutes::On);
    School { iam, app }
}

/// The school as `cargo run --example school` starts it with no
/// configuration: the catalogue, the demo school's custom role included,
/// fetched from the development IAM (fresh for an hour here, so the test
/// decides when it is refreshed).
async fn school_with_catalogue_from_the_iam() -> (School, CatalogueFetcher) {
    let iam = TestIam::start().await;
    iam.set_catalogue(catalogue::school_catalogue());
    let fetcher = CatalogueFetcher::builder()
        .ttl(std::time::Duration::from_secs(3600))
        .url(&iam.catalogue_url())
        .unwrap();
    fetcher.warm_up().await.unwrap();
    let auth = JwtAuthGuardLayer::new(iam.verifier())
        .permissions(HostedCatalogueSource::new(fetcher.clone()));
    let app = app::router(auth, app::Store::demo());
    (School { iam, app }, fetcher)
}

impl School {
    fn token(&self, user: &str) -> String {
        self.iam
            .mint(users::demo_claims(user).expect("a demo user"))
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(user) = user {
            req = req.header("authorization", format!("Bearer {}", self.token(user)));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let res = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn admin_lists_every_student_with_every_group() {
    let s = school().await;
    let (status, body) = s.send("GET", "/students", Some("admin"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["meta"]["total"], 3);
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    assert!(body["data"][0].get("sensitive").is_some());
    assert!(body["data"][0].get("financial").is_some());
}

#[tokio::test]
async fn pagination_keeps_meta() {
    let s = school().await;
    let (status, body) = s
        .send("GET", "/students?page=2&limit=2", Some("admin"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["meta"], json!({"page": 2, "limit": 2, "total": 3}));
}

#[tokio::test]
async fn a_teacher_reads_a_student_without_the_groups_it_cannot_read() {
    let s = school().await;
    let (status, body) = s.send("GET", "/students/s-1", Some("teacher"), None).await;
    assert_eq!(status, 200);
    // internal_teacher: anagraphic R, attendance W, scoring W, family R,
    // enrollment R; sensitive, financial, documents NONE.
    assert_eq!(
        keys(&body),
        [
            "anagraphic",
            "attendance",
            "createdAt",
            "enrollment",
            "family",
            "id",
            "scoring",
            "updatedAt"
        ]
    );
    // Custom fields travel with their group.
    assert_eq!(body["anagraphic"]["customFields"]["nickname"], "mario");
}

#[tokio::test]
async fn a_teacher_may_patch_attendance_but_not_sensitive_data() {
    let s = school().await;
    let (status, body) = s
        .send(
            "PATCH",
            "/students/s-1",
            Some("teacher"),
            Some(json!({"attendance": {"absences": 3}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attendance"]["absences"], 3);
    assert!(body.get("sensitive").is_none());

    let (status, body) = s
        .send(
            "PATCH",
            "/students/s-1",
            Some("teacher"),
            Some(json!({"sensitive": {"disabilityInfo": "ADHD"}})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "FORBIDDEN_FIELDS");
    assert!(
        !body.to_string().contains("sensitive"),
        "the forbidden group is not echoed"
    );
    // Nothing was written.
    let (_, admin_view) = s.send("GET", "/students/s-1", Some("admin"), None).await;
    assert_eq!(admin_view["sensitive"]["disabilityInfo"], Value::Null);
}

#[tokio::test]
async fn a_parent_sees_only_their_child_and_a_student_only_themselves() {
    let s = school().await;
    let (status, body) = s.send("GET", "/students", Some("parent"), None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s-1"]);
    let (status, _) = s.send("GET", "/students/s-2", Some("parent"), None).await;
    assert_eq!(status, 404, "another family's child is invisible");

    let (_, body) = s.send("GET", "/students", Some("student"), None).await;
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s-2"]);
}

#[tokio::test]
async fn an_accountant_sees_anagraphic_financial_and_documents() {
    let s = school().await;
    let (status, body) = s
        .send("GET", "/students/s-2", Some("accountant"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        keys(&body),
        [
            "anagraphic",
            "createdAt",
            "documents",
            "financial",
            "id",
            "updatedAt"
        ]
    );
}

#[tokio::test]
async fn only_admin_may_create_and_delete() {
    let s = school().await;
    let new = json!({"anagraphic": {"firstName": "Anna", "customFields": {"nickname": "Annie"}},
                     "sensitive": {"customFields": {"blood_type": "A+"}}});
    let (status, body) = s
        .send("POST", "/students", Some("secretary"), Some(new.clone()))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("ACTION_NOT_PERMITTED"))
    );
    let (status, created) = s.send("POST", "/students", Some("admin"), Some(new)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = s
        .send("GET", &format!("/students/{id}"), Some("teacher"), None)
        .await;
    assert_eq!(status, 200, "an accepted write is readable afterwards");

    let (status, body) = s
        .send("DELETE", &format!("/students/{id}"), Some("teacher"), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("ACTION_NOT_PERMITTED"))
    );
    let (status, _) = s
        .send("DELETE", &format!("/students/{id}"), Some("admin"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = s
        .send("GET", &format!("/students/{id}"), Some("admin"), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn custom_fields_are_validated_with_the_field_named() {
    let s = school().await;
    let bad = json!({"sensitive": {"customFields": {"blood_type": "Z"}}});
    let (status, body) = s
        .send("PATCH", "/students/s-1", Some("admin"), Some(bad))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "INVALID_BODY");
    assert!(
        body["message"].as_str().unwrap().contains("blood_type"),
        "{body}"
    );
}

#[tokio::test]
async fn the_permissions_endpoint_describes_the_teacher() {
    let s = school().await;
    let (status, body) = s.send("GET", "/permissions", Some("teacher"), None).await;
    assert_eq!(status, 200);
    // The custom fields of the scopes the teacher reads (anagraphic,
    // enrollment), never the sensitive blood type.
    assert_eq!(
        body,
        json!({"students": {"scopes": {"anagraphic": "READ", "attendance": "WRITE", "scoring": "WRITE",
                    "family": "READ", "enrollment": "READ"},
        "actions": {},
        "customFieldDefinitions": [
            {"key": "nickname", "label": "Nickname", "scope": "anagraphic",
             "type": "TEXT", "isRequired": false, "sortOrder": 0},
            {"key": "bus_route", "label": "Bus route", "scope": "enrollment",
             "type": "NUMBER", "isRequired": false, "sortOrder": 0}
        ]}})
    );
}

#[tokio::test]
async fn the_permissions_endpoint_lists_every_custom_field_to_the_admin() {
    let s = school().await;
    let (status, body) = s.send("GET", "/permissions", Some("admin"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["students"]["actions"],
        json!({"create": true, "delete": true})
    );
    assert_eq!(
        body["students"]["customFieldDefinitions"],
        json!([
            {"key": "nickname", "label": "Nickname", "scope": "anagraphic",
             "type": "TEXT", "isRequired": false, "sortOrder": 0},
            {"key": "bus_route", "label": "Bus route", "scope": "enrollment",
             "type": "NUMBER", "isRequired": false, "sortOrder": 0},
            {"key": "blood_type", "label": "Blood Type", "scope": "sensitive", "type": "SELECT",
             "options": ["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"],
             "isRequired": false, "sortOrder": 0}
        ])
    );
}

#[tokio::test]
async fn no_token_is_401_and_health_needs_none() {
    let s = school().await;
    let (status, body) = s.send("GET", "/students", None, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );
    let res = s
        .app
        .clone()
        .oneshot(Request::get("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn writes_are_stamped_in_rfc_3339() {
    let s = school().await;
    let (_, body) = s
        .send(
            "PATCH",
            "/students/s-1",
            Some("admin"),
            Some(json!({"attendance": {"absences": 1}})),
        )
        .await;
    let stamp = body["updatedAt"].as_str().unwrap();
    assert_eq!(stamp.len(), 20, "{stamp}");
    assert!(
        stamp.starts_with("20") && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "{stamp}"
    );
    assert!(stamp > "2026-01-01", "{stamp}");
}

#[tokio::test]
async fn the_unguarded_bare_mount_is_absent_by_default() {
    let s = school().await;
    for user in [None, Some("admin")] {
        let (status, body) = s.send("GET", "/bare/students/s-1", user, None).await;
        assert_eq!(status, 404, "{user:?}: {body}");
        assert!(body.get("anagraphic").is_none(), "no record leaks: {body}");
    }
    // The default is what `router` builds.
    assert_eq!(app::BareRoutes::default(), app::BareRoutes::Off);
}

#[tokio::test]
async fn the_bare_mount_serves_what_the_guarded_route_serves_an_admin() {
    let s = school_with_bare_routes().await;
    let (status, bare) = s.send("GET", "/bare/students/s-1", None, None).await;
    assert_eq!(status, 200, "{bare}");
    let (status, guarded) = s.send("GET", "/students/s-1", Some("admin"), None).await;
    assert_eq!(status, 200, "{guarded}");
    assert_eq!(bare, guarded);
    let (status, _) = s.send("GET", "/bare/students/s-404", None, None).await;
    assert_eq!(status, 404);
    // The guarded routes stay guarded next to it.
    let (status, _) = s.send("GET", "/students/s-1", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn metrics_are_served_for_prometheus_with_the_guards_decisions() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // This test's thread only: the router runs on it under #[tokio::test].
    let _recording = metrics::set_default_local_recorder(&recorder);
    let school = school().await;
    let app = school.app.clone().merge(app::metrics_route(handle));
    let school = School {
        iam: school.iam,
        app,
    };
    assert_eq!(
        school
            .send("GET", "/students/s-1", Some("teacher"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        school
            .send("GET", "/students/s-1", Some("teacher"), None)
            .await
            .0,
        200
    );
    assert_eq!(school.send("GET", "/students", None, None).await.0, 401);
    let patch = json!({"sensitive": {"disabilityInfo": "x"}});
    assert_eq!(
        school
            .send("PATCH", "/students/s-1", Some("teacher"), Some(patch))
            .await
            .0,
        403
    );

    // Served without a token, as scrapers expect.
    let res = school
        .app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    // A series' value, 0 when it was never recorded.
    let sample = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    let value = |series: &str| -> u64 {
        let v = sample(series);
        assert!(v > 0, "{series} in\n{text}");
        v
    };
    assert_eq!(
        value(r#"iam_guard_decisions_total{guard="auth",outcome="allow",code=""}"#),
        3
    );
    assert_eq!(
        value(r#"iam_guard_decisions_total{guard="auth",outcome="deny",code="invalid_token"}"#),
        1
    );
    assert_eq!(
        value(
            r#"iam_guard_decisions_total{guard="field_write",outcome="deny",code="FORBIDDEN_FIELDS"}"#
        ),
        1
    );
    assert_eq!(
        value(r#"iam_guard_field_filter_removed_total{entity="students"}"#),
        6,
        "sensitive, financial and documents, twice"
    );
    // One token-cache lookup per request that carried a token.
    let lookups = sample(r#"iam_guard_token_cache_total{result="hit"}"#)
        + sample(r#"iam_guard_token_cache_total{result="miss"}"#);
    assert_eq!(lookups, 3, "{text}");
    // Bounded labels: no user, token or record id ever names a series.
    for secret in ["u-teacher", "s-1", &school.token("teacher")] {
        assert!(!text.contains(secret), "{secret} in\n{text}");
    }
}

#[tokio::test]
async fn the_schools_custom_role_reads_sensitive_data_until_its_admin_edits_it_at_the_iam() {
    let (s, fetcher) = school_with_catalogue_from_the_iam().await;
    let (status, body) = s.send("GET", "/students/s-1", Some("support"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sensitive"]["customFields"]["blood_type"], "O+");
    // The preset it was cloned from is untouched.
    let (_, teacher) = s.send("GET", "/students/s-1", Some("teacher"), None).await;
    assert!(teacher.get("sensitive").is_none(), "{teacher}");
    let (status, body) = s.send("GET", "/permissions", Some("support"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["students"]["scopes"]["sensitive"], "READ");

    // The walkthrough's curl: the admin takes `sensitive` away.
    let res = reqwest::Client::new()
        .put(format!(
            "{}/tenants/{}/roles/{}",
            s.iam.catalogue_url(),
            users::TENANT,
            catalogue::CUSTOM_ROLE
        ))
        .header("content-type", "application/json")
        .body(catalogue::support_teacher("NONE").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, before) = s.send("GET", "/students/s-1", Some("support"), None).await;
    assert!(before.get("sensitive").is_some(), "not before a refresh");

    assert_eq!(fetcher.refresh().await.unwrap().number(), 2);
    let (status, after) = s.send("GET", "/students/s-1", Some("support"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        keys(&after),
        keys(&teacher),
        "now the preset's groups: {after}"
    );
    let patch = json!({"sensitive": {"disabilityInfo": "x"}});
    let (status, body) = s
        .send("PATCH", "/students/s-1", Some("support"), Some(patch))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("FORBIDDEN_FIELDS"))
    );
}
