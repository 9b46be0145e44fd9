//! An inventory service as an in-house IAM sees it: an RS256 JWT in a
//! cookie with an XSRF header, roles as `{system, role, department}` objects, and flat
//! permissions (`inventory.regions.view/create/update/delete`) required
//! per route with `PermissionGuard`.
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
    model::Catalogue, permissions::source::CatalogueSource, test_util::TestIam, JwtAuthGuardLayer,
    PermissionGuard, Verifier,
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

async fn list(State(regions): State<Regions>) -> Json<Value> {
    Json(json!(regions
        .lock()
        .expect("lock")
        .values()
        .cloned()
        .collect::<Vec<_>>()))
}

async fn create(
    State(regions): State<Regions>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut regions = regions.lock().expect("lock");
    let id = format!("r-{}", regions.len() + 1);
    let mut region = json!({"id": id});
    region["name"] = body.get("name").cloned().unwrap_or(Value::Null);
    regions.insert(id, region.clone());
    (StatusCode::CREATED, Json(region))
}

async fn update(
    State(regions): State<Regions>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    let mut regions = regions.lock().expect("lock");
    let region = regions.get_mut(&id).ok_or(StatusCode::NOT_FOUND)?;
    region["name"] = body.get("name").cloned().unwrap_or(Value::Null);
    Ok(Json(region.clone()))
}

async fn remove(State(regions): State<Regions>, Path(id): Path<String>) -> StatusCode {
    match regions.lock().expect("lock").remove(&id) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

/// The inventory router behind a cookie-session auth layer.
pub(crate) fn router(verifier: Verifier) -> Router {
    let catalogue = Catalogue::from_json(CATALOGUE).expect("the inventory catalogue is valid");
    let auth = JwtAuthGuardLayer::new(verifier)
        .cookie(COOKIE)
        .xsrf(true)
        .permissions(CatalogueSource::new(catalogue));
    let need = |p: &str| PermissionGuard::all_of([p]);
    let regions: Regions = Arc::new(Mutex::new(BTreeMap::from([(
        "r-1".to_owned(),
        json!({"id": "r-1", "name": "eu-south"}),
    )])));
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

/// Claims of a demo user: roles per system and department.
pub(crate) fn claims(sub: &str, role: &str, xsrf: &str) -> Value {
    json!({
        "sub": sub,
        "username": sub,
        "departments": ["dc-1"],
        "roles": [{"system": "inventory", "role": role, "department": "dc-1"}],
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
    let base = format!("http://{bind}");
    println!(
        "Development IAM (do not use in production): {}",
        iam.issuer()
    );
    println!("inventory API: {base}\n");
    println!("# a viewer lists regions (200)");
    println!("curl -s {base}/regions -b '{COOKIE}={viewer}'\n");
    println!("# a viewer may not create one (403 PERMISSION_DENIED)");
    println!("curl -s -X POST {base}/regions -b '{COOKIE}={viewer}' -H 'X-XSRF-TOKEN: xsrf-demo' -H 'Content-Type: application/json' -d '{{\"name\":\"us-east\"}}'\n");
    println!("# an admin may (201)...");
    println!("curl -s -X POST {base}/regions -b '{COOKIE}={admin}' -H 'X-XSRF-TOKEN: xsrf-demo' -H 'Content-Type: application/json' -d '{{\"name\":\"us-east\"}}'\n");
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
