//! `metrics::bind_request_counters`: the counters of the request path,
//! bound once to the global recorder. A test binary of its own: binding
//! lasts for the process, and the other suites count with thread-local
//! recorders.
#![cfg(feature = "test-util")]

mod common;

use axum::{
    body::Body,
    http::{Request, StatusCode},
    Json, Router,
};
use common::{counters, decision, send, Counters};
use iam_guard::{
    guard::protected::ProtectedResource,
    metrics::{bind_request_counters, FILTERED_RESPONSES, PERMISSION_LOADS, TOKEN_CACHE},
    permissions::source::ClaimsSource,
    test_util::TestIam,
    JwtAuthGuardLayer, ReadView,
};
use metrics_util::debugging::DebuggingRecorder;
use serde_json::{json, Value};

fn record() -> Value {
    json!({"id": "s-1", "anagraphic": {"firstName": "Marco"}, "sensitive": {"bloodType": "O+"}})
}

fn get(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn bound_counters_count_every_request_in_the_global_recorder_whatever_is_local() {
    let recorder = DebuggingRecorder::new();
    let global = Counters::of(recorder.snapshotter());
    recorder
        .install()
        .expect("the only recorder this process installs");
    assert!(bind_request_counters(), "the first call binds");
    assert!(!bind_request_counters(), "later calls change nothing");

    let iam = TestIam::start().await;
    let app: Router = ProtectedResource::new("students")
        .authenticate(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()))
        .get("/students/{id}", || async { Json(record()) })
        .get("/students", |view: ReadView| async move {
            view.json(&[record()])
        })
        .into_router();
    let token = iam.mint(json!({"entities": {"students": {
        "scopes": {"anagraphic": "READ"}, "actions": {}
    }}}));
    let cut = json!({"id": "s-1", "anagraphic": {"firstName": "Marco"}});
    for uri in [
        "/students/s-1",
        "/students/s-1",
        "/students/s-1",
        "/students",
        "/students",
    ] {
        let res = send(&app, get(uri, &token)).await;
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        let expected = if uri == "/students" {
            json!([cut])
        } else {
            cut.clone()
        };
        assert_eq!(
            body, expected,
            "{uri}: the sensitive group is cut either way"
        );
    }
    let counted = global.take();
    let count = |key: &str| counted.get(key).copied().unwrap_or(0);
    assert_eq!(count(&decision("auth", "allow", "")), 5, "{counted:?}");
    assert_eq!(
        count(&decision("requirement", "allow", "")),
        5,
        "{counted:?}"
    );
    assert_eq!(
        count(&format!("{TOKEN_CACHE}{{result=miss}}")),
        1,
        "{counted:?}"
    );
    assert_eq!(
        count(&format!("{TOKEN_CACHE}{{result=hit}}")),
        4,
        "{counted:?}"
    );
    assert_eq!(
        count(&format!("{FILTERED_RESPONSES}{{pass=scanned}}")),
        3,
        "{counted:?}"
    );
    assert_eq!(
        count(&format!("{FILTERED_RESPONSES}{{pass=serialized}}")),
        2,
        "{counted:?}"
    );
    let loads: u64 = counted
        .iter()
        .filter(|(k, _)| {
            k.starts_with(&format!("{PERMISSION_LOADS}{{")) && k.contains("source=claims")
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(loads, 5, "one permission load per request: {counted:?}");

    // A thread-local recorder set afterwards sees none of the bound
    // counters: they stay with the global one.
    let (local, _guard) = counters();
    let res = send(&app, get("/students", &token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let seen_locally = local.take();
    for bound in [
        &decision("auth", "allow", ""),
        &format!("{TOKEN_CACHE}{{result=hit}}"),
    ] {
        assert!(
            !seen_locally.contains_key(bound),
            "{bound} in {seen_locally:?}"
        );
    }
    let counted = global.take();
    assert_eq!(
        counted.get(&decision("auth", "allow", "")),
        Some(&1),
        "{counted:?}"
    );
    assert_eq!(
        counted.get(&format!("{FILTERED_RESPONSES}{{pass=serialized}}")),
        Some(&1),
        "{counted:?}"
    );
    // What is not bound still goes to the current recorder: a refusal.
    let res = send(&app, get("/students", "not-a-token")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        local.take().get(&decision("auth", "deny", "invalid_token")),
        Some(&1)
    );
}
