//! The inventory example's router (cookie token, XSRF, structured roles
//! limited to departments, flat permissions), driven in-process.
#![cfg(feature = "test-util")]

#[allow(dead_code)]
#[path = "../examples/inventory.rs"]
mod inventory;

use axum::{body::Body, http::Request, routing::get, Json, Router};
use http_body_util::BodyExt;
use iam_guard::{
    test_util::TestIam, Access, Catalogue, CatalogueSource, ClaimMapping, JwtAuthGuardLayer,
    RecordAccess,
};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn send(
    app: &Router,
    method: &str,
    path: &str,
    token: &str,
    xsrf: Option<&str>,
) -> (u16, Value) {
    send_body(
        app,
        method,
        path,
        token,
        xsrf,
        r#"{"name":"us-west","department":"dc-1"}"#,
    )
    .await
}

async fn send_body(
    app: &Router,
    method: &str,
    path: &str,
    token: &str,
    xsrf: Option<&str>,
    body: &str,
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
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
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

fn region_ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list of regions")
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn department_limited_roles_hold_in_their_department_only() {
    let iam = TestIam::start().await;
    let app = inventory::router(iam.verifier());
    let mixed = iam.mint(inventory::mixed_claims("mx", "x3"));

    // Admin in dc-1, viewer in dc-2; the monitoring system's admin role in
    // dc-3 grants nothing here.
    let (status, list) = send(&app, "GET", "/regions", &mixed, None).await;
    assert_eq!(status, 200);
    assert_eq!(region_ids(&list), ["r-1", "r-2"]);

    let dc = |d: &str| format!(r#"{{"name":"n","department":"{d}"}}"#);
    let (status, _) = send_body(&app, "POST", "/regions", &mixed, Some("x3"), &dc("dc-1")).await;
    assert_eq!(status, 201, "an admin in dc-1 creates there");
    for elsewhere in ["dc-2", "dc-3"] {
        let (status, _) =
            send_body(&app, "POST", "/regions", &mixed, Some("x3"), &dc(elsewhere)).await;
        assert_eq!(status, 403, "no create in {elsewhere}");
    }
    assert_eq!(
        send(&app, "PATCH", "/regions/r-1", &mixed, Some("x3"))
            .await
            .0,
        200
    );
    assert_eq!(
        send(&app, "PATCH", "/regions/r-2", &mixed, Some("x3"))
            .await
            .0,
        404
    );
    assert_eq!(
        send(&app, "DELETE", "/regions/r-2", &mixed, Some("x3"))
            .await
            .0,
        404
    );
    assert_eq!(
        send(&app, "DELETE", "/regions/r-3", &mixed, Some("x3"))
            .await
            .0,
        404
    );
    let (_, list) = send(&app, "GET", "/regions", &mixed, None).await;
    assert_eq!(
        region_ids(&list),
        ["r-1", "r-2", "r-4"],
        "r-2 and r-3 survived"
    );
}

async fn describe_access(access: RecordAccess) -> Json<Value> {
    let departments: serde_json::Map<String, Value> = access
        .departments
        .iter()
        .map(|(name, d)| {
            let perms = d
                .permissions
                .as_ref()
                .expect("the catalogue knows departments");
            (
                name.clone(),
                json!({"roles": d.roles, "permissions": perms.permissions()}),
            )
        })
        .collect();
    Json(json!({
        "access": match &access.access {
            Access::Departments(d) => json!(d),
            other => json!(format!("{other:?}")),
        },
        "roles": access.roles,
        "departments": departments,
        "view": access.departments_where(|p| p.has_permission("inventory.regions.view")),
        "delete": access.departments_where(|p| p.has_permission("inventory.regions.delete")),
    }))
}

#[tokio::test]
async fn record_access_lists_what_each_department_allows() {
    let iam = TestIam::start().await;
    let catalogue = Catalogue::from_json(inventory::CATALOGUE).unwrap();
    let app = Router::new().route("/access", get(describe_access)).layer(
        JwtAuthGuardLayer::new(iam.verifier())
            .claims(ClaimMapping::default().system(inventory::SYSTEM))
            .permissions(CatalogueSource::new(catalogue)),
    );
    let token = iam.mint(inventory::mixed_claims("mx", "x"));
    let res = app
        .oneshot(
            Request::get("/access")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        body,
        json!({
            "access": ["dc-1", "dc-2"],
            "roles": ["inventory_admin", "inventory_viewer"],
            "departments": {
                "dc-1": {"roles": ["inventory_admin"], "permissions": [
                    "inventory.access", "inventory.regions.create", "inventory.regions.delete",
                    "inventory.regions.update", "inventory.regions.view"]},
                "dc-2": {"roles": ["inventory_viewer"], "permissions": [
                    "inventory.access", "inventory.regions.view"]},
            },
            "view": ["dc-1", "dc-2"],
            "delete": ["dc-1"],
        })
    );
}
