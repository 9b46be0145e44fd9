//! An inventory service as an in-house IAM sees it: an RS256 JWT in a
//! cookie with an XSRF header, roles as `{system, role, department}`
//! objects, and flat permissions
//! (`inventory.regions.view/create/update/delete`) required per route with
//! `PermissionGuard`.
//!
//! Roles are limited to departments: the demo user is an admin in `dc-1`
//! and a viewer in `dc-2`. The route guards ask "may the caller do this
//! somewhere?"; the handlers take `RecordAccess` and keep every query
//! within the departments where the role allows it. Roles the IAM issued
//! for another system (`monitoring`) never reach this service.
//!
//! ```text
//! cargo run --example inventory
//! ```
//!
//! It starts an embedded development IAM and prints `curl` commands.
//! `BIND_ADDR` changes the address (default `127.0.0.1:3001`).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::{get, patch},
    Json, Router,
};
use iam_guard::{
    model::Catalogue, permissions::source::CatalogueSource, test_util::TestIam, Access,
    ClaimMapping, JwtAuthGuardLayer, PermissionGuard, RecordAccess, Verifier,
};
use serde_json::{json, Value};

/// Roles to flat permissions: the catalogue needs no entities.
pub(crate) const CATALOGUE: &str = r#"{
  "entities": [],
  "roles": [
    { "id": "inventory_admin", "name": "Inventory admin",
      "permissions": ["inventory.access", "inventory.regions.view", "inventory.regions.create",
                      "inventory.regions.update", "inventory.regions.delete"] },
    { "id": "inventory_viewer", "name": "Inventory viewer",
      "permissions": ["inventory.access", "inventory.regions.view"] }
  ]
}"#;

/// The cookie the access token travels in.
pub(crate) const COOKIE: &str = "access_token";

type Regions = Arc<Mutex<BTreeMap<String, Value>>>;

/// This service's system: roles the IAM issued for other systems do not
/// count here.
pub(crate) const SYSTEM: &str = "inventory";

/// Whether `access` lets the caller use `permission` in `department`.
fn allowed(access: &RecordAccess, permission: &str, department: &str) -> bool {
    match &access.access {
        Access::Full => true,
        _ => access
            .departments_where(|p| p.has_permission(permission))
            .contains(&department),
    }
}

fn department_of(region: &Value) -> &str {
    region["department"].as_str().unwrap_or_default()
}

/// The regions of the departments where the caller may view them.
async fn list(State(regions): State<Regions>, access: RecordAccess) -> Json<Value> {
    let regions = regions.lock().expect("lock");
    Json(json!(regions
        .values()
        .filter(|r| allowed(&access, "inventory.regions.view", department_of(r)))
        .cloned()
        .collect::<Vec<_>>()))
}

async fn create(
    State(regions): State<Regions>,
    access: RecordAccess,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let department = body["department"].as_str().unwrap_or_default();
    if !allowed(&access, "inventory.regions.create", department) {
        return Err(StatusCode::FORBIDDEN);
    }
    let mut regions = regions.lock().expect("lock");
    let id = format!("r-{}", regions.len() + 1);
    let region = json!({"id": id, "name": body["name"], "department": department});
    regions.insert(id, region.clone());
    Ok((StatusCode::CREATED, Json(region)))
}

async fn update(
    State(regions): State<Regions>,
    access: RecordAccess,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    let mut regions = regions.lock().expect("lock");
    let region = regions.get_mut(&id).ok_or(StatusCode::NOT_FOUND)?;
    if !allowed(&access, "inventory.regions.update", department_of(region)) {
        // Not found rather than forbidden: a region the caller may not
        // touch is one it need not learn about.
        return Err(StatusCode::NOT_FOUND);
    }
    region["name"] = body.get("name").cloned().unwrap_or(Value::Null);
    Ok(Json(region.clone()))
}

async fn remove(
    State(regions): State<Regions>,
    access: RecordAccess,
    Path(id): Path<String>,
) -> StatusCode {
    let mut regions = regions.lock().expect("lock");
    match regions.get(&id) {
        Some(r) if allowed(&access, "inventory.regions.delete", department_of(r)) => {
            regions.remove(&id);
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::NOT_FOUND,
    }
}

/// The inventory router behind a cookie-session auth layer.
pub(crate) fn router(verifier: Verifier) -> Router {
    let catalogue = Catalogue::from_json(CATALOGUE).expect("the inventory catalogue is valid");
    let auth = JwtAuthGuardLayer::new(verifier)
        .claims(ClaimMapping::default().system(SYSTEM))
        .cookie(COOKIE)
        .xsrf(true)
        .permissions(CatalogueSource::new(catalogue));
    let need = |p: &str| PermissionGuard::all_of([p]);
    let regions: Regions = Arc::new(Mutex::new(BTreeMap::from([
        (
            "r-1".to_owned(),
            json!({"id": "r-1", "name": "eu-south", "department": "dc-1"}),
        ),
        (
            "r-2".to_owned(),
            json!({"id": "r-2", "name": "eu-north", "department": "dc-2"}),
        ),
        (
            "r-3".to_owned(),
            json!({"id": "r-3", "name": "us-east", "department": "dc-3"}),
        ),
    ])));
    Router::new()
        .route(
            "/regions",
            get(list)
                .route_layer(need("inventory.regions.view"))
                .merge(axum::routing::post(create).route_layer(need("inventory.regions.create"))),
        )
        .route(
            "/regions/{id}",
            patch(update)
                .route_layer(need("inventory.regions.update"))
                .merge(axum::routing::delete(remove).route_layer(need("inventory.regions.delete"))),
        )
        .with_state(regions)
        .layer(auth)
}

/// Claims of a demo user holding `role` in `dc-1`.
pub(crate) fn claims(sub: &str, role: &str, xsrf: &str) -> Value {
    json!({
        "sub": sub,
        "username": sub,
        "departments": ["dc-1"],
        "roles": [{"system": SYSTEM, "role": role, "department": "dc-1"}],
        "xsrf_token": xsrf,
    })
}

/// Claims of the demo user of the IAM's own example: admin in `dc-1`,
/// viewer in `dc-2`, and an admin role of another system that must grant
/// nothing here.
pub(crate) fn mixed_claims(sub: &str, xsrf: &str) -> Value {
    json!({
        "sub": sub,
        "username": sub,
        "departments": ["dc-1", "dc-2"],
        "roles": [
            {"system": SYSTEM, "role": "inventory_admin", "department": "dc-1"},
            {"system": SYSTEM, "role": "inventory_viewer", "department": "dc-2"},
            {"system": "monitoring", "role": "inventory_admin", "department": "dc-3"},
        ],
        "xsrf_token": xsrf,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let bind = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let Ok(bind) = bind.parse::<SocketAddr>() else {
        eprintln!("inventory: invalid BIND_ADDR: {bind:?} is not an address like 127.0.0.1:3001");
        return ExitCode::from(2);
    };
    let iam = TestIam::start().await;
    let verifier = iam.verifier();
    if let Err(e) = verifier.jwks().warm_up().await {
        eprintln!("inventory: the embedded IAM did not answer: {e}");
        return ExitCode::FAILURE;
    }
    let listener = match tokio::net::TcpListener::bind(bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("inventory: invalid BIND_ADDR: cannot bind {bind}: {e}");
            return ExitCode::from(2);
        }
    };
    let exp = iam.default_claims()["iat"].as_u64().unwrap_or(0) + 3600;
    let mint = |sub: &str, role: &str| {
        let mut c = claims(sub, role, "xsrf-demo");
        c["exp"] = json!(exp);
        iam.mint(c)
    };
    let admin = mint("cj", "inventory_admin");
    let viewer = mint("vi", "inventory_viewer");
    let mut mixed = mixed_claims("mx", "xsrf-demo");
    mixed["exp"] = json!(exp);
    let mixed = iam.mint(mixed);
    let base = format!("http://{bind}");
    println!(
        "Development IAM (do not use in production): {}",
        iam.issuer()
    );
    println!("inventory API: {base}\n");
    println!("# admin in dc-1, viewer in dc-2: lists the regions of dc-1 and dc-2 only");
    println!("curl -s {base}/regions -b '{COOKIE}={mixed}'\n");
    println!("# ...and may rename dc-1's region (200) but not dc-2's (404)");
    println!("curl -s -X PATCH {base}/regions/r-1 -b '{COOKIE}={mixed}' -H 'X-XSRF-TOKEN: xsrf-demo' -H 'Content-Type: application/json' -d '{{\"name\":\"eu-south-1\"}}'");
    println!("curl -s -X PATCH {base}/regions/r-2 -b '{COOKIE}={mixed}' -H 'X-XSRF-TOKEN: xsrf-demo' -H 'Content-Type: application/json' -d '{{\"name\":\"eu-north-1\"}}'\n");
    println!("# a viewer lists regions (200)");
    println!("curl -s {base}/regions -b '{COOKIE}={viewer}'\n");
    println!("# a viewer may not create one (403 PERMISSION_DENIED)");
    println!("curl -s -X POST {base}/regions -b '{COOKIE}={viewer}' -H 'X-XSRF-TOKEN: xsrf-demo' -H 'Content-Type: application/json' -d '{{\"name\":\"us-west\",\"department\":\"dc-1\"}}'\n");
    println!("# an admin may (201)...");
    println!("curl -s -X POST {base}/regions -b '{COOKIE}={admin}' -H 'X-XSRF-TOKEN: xsrf-demo' -H 'Content-Type: application/json' -d '{{\"name\":\"us-west\",\"department\":\"dc-1\"}}'\n");
    println!("# ...but not without the XSRF header (403 XSRF_MISMATCH)");
    println!("curl -s -X POST {base}/regions -b '{COOKIE}={admin}' -H 'Content-Type: application/json' -d '{{\"name\":\"us-east\"}}'\n");
    let served = axum::serve(listener, router(verifier))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    if let Err(e) = served {
        eprintln!("inventory: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
