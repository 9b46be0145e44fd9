//! A development IAM as a standalone server, for running a service and
//! its IAM in two terminals. **Development only: it mints a token for
//! anyone who asks.**
//!
//! ```text
//! cargo run --example dev_iam                 # terminal 1: the IAM on 127.0.0.1:4000
//! IAM_ISSUER=http://127.0.0.1:4000 cargo run --example school   # terminal 2
//! ```
//!
//! Endpoints:
//!
//! - `GET /.well-known/openid-configuration`, `GET /jwks`
//! - `POST /token` with `{"user": "teacher"}` (the school demo users) or
//!   `{"claims": {...}}` for arbitrary claims
//! - `POST /rotate` with an optional `{"alg": "ES256"}`: publish a new
//!   signing key (old keys stay published)
//! - `GET /catalogue` (the school example's: the presets and the demo
//!   school's custom role), changed with `PUT /catalogue` and
//!   `PUT`/`DELETE /catalogue/tenants/{tenant}/roles/{role}`
//! - `GET /permissions?userId=u-teacher&tenantId=school-1`: a demo user's
//!   roles compiled against that catalogue, for services whose
//!   `PERMISSIONS_SOURCE` is `http://127.0.0.1:4000/permissions`
//! - `PUT /users/{name}` with the claims of a demo user (roles included)
//!   replacing theirs
//! - with `REDIS_URL`: `POST /revoke` with `{"user": "u-teacher"}` (every
//!   token of the user issued until now; `"tenant"` and `"before"`
//!   optional), `{"jti": "...", "exp": 1900000000}` or `{"user": "...",
//!   "version": 2}`, and `POST /invalidate` with `{"user": "...",
//!   "tenant": "..."}` or `{"all": true}`: published through Redis to
//!   every replica of the services started with the same `REDIS_URL`.
//!   `PUT /users/{name}` then invalidates that user's cached permissions,
//!   and a catalogue change every cached permission set, on every
//!   replica. Without `REDIS_URL`, `/revoke` and `/invalidate` answer 503.
//!
//! `DEV_IAM_ADDR` changes the address, `DEV_IAM_AUDIENCE` the audience of
//! minted tokens (default `students-api`, the school example's),
//! `REDIS_URL` (`redis://host:port/`) where revocations and invalidations
//! are published. A bad value exits with code 2 naming the variable.

use std::{net::SocketAddr, process::ExitCode};

#[path = "school/users.rs"]
mod users;

#[path = "school/catalogue.rs"]
mod catalogue;

use iam_guard::{
    replicas::RedisReplicas,
    test_util::{TestIam, TestKey},
};
use serde_json::json;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = std::env::var("DEV_IAM_ADDR").unwrap_or_else(|_| "127.0.0.1:4000".into());
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("dev_iam: invalid DEV_IAM_ADDR: {addr:?} is not an address like 127.0.0.1:4000");
        return ExitCode::from(2);
    };
    let audience = std::env::var("DEV_IAM_AUDIENCE").unwrap_or_else(|_| "students-api".into());
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let replicas = match &redis_url {
        None => None,
        Some(url) => match RedisReplicas::builder(url).connect().await {
            Ok(replicas) => Some(replicas),
            Err(e) => {
                eprintln!("dev_iam: invalid REDIS_URL: cannot use {url}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let iam = match TestIam::start_at(addr, vec![TestKey::rsa("rsa-1")]).await {
        Ok(iam) => iam,
        Err(e) => {
            eprintln!("dev_iam: invalid DEV_IAM_ADDR: cannot bind {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(replicas) = replicas {
        iam.publish_to(replicas);
    }
    iam.set_catalogue(catalogue::school_catalogue());
    for (name, _, _) in users::DEMO_USERS {
        let mut claims = users::demo_claims(name).expect("a demo user");
        claims["aud"] = json!(audience);
        iam.add_user(name, claims);
    }
    let base = iam.issuer();
    println!("DEVELOPMENT IAM — never use in production: it mints tokens for anyone.");
    println!("issuer:    {base}");
    println!("discovery: {base}/.well-known/openid-configuration");
    println!("jwks:      {base}/jwks");
    println!("catalogue: {}", iam.catalogue_url());
    println!("permissions: {}", iam.permissions_url());
    match &redis_url {
        Some(url) => println!("revoke:    {base}/revoke, published through Redis at {url}\n"),
        None => println!("revoke:    off (no REDIS_URL): POST /revoke answers 503\n"),
    }
    println!(
        "# a token for a demo user ({})",
        users::DEMO_USERS
            .iter()
            .map(|u| u.0)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("curl -s -X POST {base}/token -H 'Content-Type: application/json' -d '{{\"user\":\"teacher\"}}'\n");
    println!("# a token with arbitrary claims");
    println!("curl -s -X POST {base}/token -d '{{\"claims\":{{\"sub\":\"x\",\"roles\":[\"principal\"],\"tenantId\":\"school-1\",\"aud\":\"{audience}\"}}}}'\n");
    println!("# rotate the signing key");
    println!("curl -s -X POST {base}/rotate -d '{{\"alg\":\"RS256\"}}'\n");
    println!(
        "# what the IAM answers a service for the teacher (PERMISSIONS_SOURCE={base}/permissions)"
    );
    println!(
        "curl -s '{base}/permissions?userId=u-teacher&tenantId={}'\n",
        users::TENANT
    );
    let mut claims = users::demo_claims("teacher").expect("a demo user");
    claims["roles"] = json!(["accountant"]);
    claims["aud"] = json!(audience);
    let everywhere = match &redis_url {
        Some(_) => ", and every replica drops their cached permissions",
        None => "",
    };
    println!("# make the teacher an accountant{everywhere}");
    println!("curl -s -X PUT {base}/users/teacher -d '{claims}'");
    if redis_url.is_some() {
        println!(
            "\n# log the teacher out on every replica: their tokens issued until now answer 401"
        );
        println!("curl -s -X POST {base}/revoke -d '{{\"user\":\"u-teacher\"}}'\n");
        println!(
            "# drop the teacher's cached permissions on every replica (PUT /users does it too)"
        );
        println!(
            "curl -s -X POST {base}/invalidate -d '{{\"user\":\"u-teacher\",\"tenant\":\"{}\"}}'",
            users::TENANT
        );
    }
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
