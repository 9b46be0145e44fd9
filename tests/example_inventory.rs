//! The inventory example's router (seed 000: cookie token, XSRF,
//! structured roles, flat permissions), driven in-process.
#![cfg(feature = "test-util")]

#[allow(dead_code)]
#[path = "../examples/inventory.rs"]
mod inventory;

use axum::{body::Body, http::Request, Router};
use http_body_util::BodyExt;
use iam_guard::test_util::TestIam;
use serde_json::Value;
use tower::ServiceExt;

async fn send(
    app: &Router,
    method: &str,
    path: &str,
    token: &str,
    xsrf: Option<&str>,
) -> (u16, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("cookie", format!("{}={token}", inventory::COOKIE))
        .header("content-type", "application/json");
    if let Some(x) = xsrf {
        req = req.header("x-xsrf-token", x);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(r#"{"name":"us-east"}"#)).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn viewers_read_admins_write_with_xsrf() {
    let iam = TestIam::start().await;
    let app = inventory::router(iam.verifier());
    let viewer = iam.mint(inventory::claims("vi", "inventory_viewer", "x1"));
    let admin = iam.mint(inventory::claims("cj", "inventory_admin", "x2"));

    assert_eq!(send(&app, "GET", "/regions", &viewer, None).await.0, 200);
    let (status, body) = send(&app, "POST", "/regions", &viewer, Some("x1")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );

    let (status, body) = send(&app, "POST", "/regions", &admin, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("XSRF_MISMATCH"))
    );
    let (status, body) = send(&app, "POST", "/regions", &admin, Some("x1")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("XSRF_MISMATCH")),
        "another session's XSRF token"
    );
    let (status, created) = send(&app, "POST", "/regions", &admin, Some("x2")).await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();

    let (status, _) = send(&app, "PATCH", &format!("/regions/{id}"), &admin, Some("x2")).await;
    assert_eq!(status, 200);
    let (status, body) = send(
        &app,
        "DELETE",
        &format!("/regions/{id}"),
        &viewer,
        Some("x1"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    assert_eq!(
        send(
            &app,
            "DELETE",
            &format!("/regions/{id}"),
            &admin,
            Some("x2")
        )
        .await
        .0,
        204
    );
}
