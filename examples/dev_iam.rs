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
//!
//! `DEV_IAM_ADDR` changes the address, `DEV_IAM_AUDIENCE` the audience of
//! minted tokens (default `students-api`, the school example's).

use std::{net::SocketAddr, process::ExitCode};

#[path = "school/users.rs"]
mod users;

use iam_guard::test_util::{TestIam, TestKey};
use serde_json::json;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = std::env::var("DEV_IAM_ADDR").unwrap_or_else(|_| "127.0.0.1:4000".into());
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("dev_iam: invalid DEV_IAM_ADDR: {addr:?} is not an address like 127.0.0.1:4000");
        return ExitCode::from(2);
    };
    let audience = std::env::var("DEV_IAM_AUDIENCE").unwrap_or_else(|_| "students-api".into());
    let iam = match TestIam::start_at(addr, vec![TestKey::rsa("rsa-1")]).await {
        Ok(iam) => iam,
        Err(e) => {
            eprintln!("dev_iam: invalid DEV_IAM_ADDR: cannot bind {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    for (name, _, _) in users::DEMO_USERS {
        let mut claims = users::demo_claims(name).expect("a demo user");
        claims["aud"] = json!(audience);
        iam.add_user(name, claims);
    }
    let base = iam.issuer();
    println!("DEVELOPMENT IAM — never use in production: it mints tokens for anyone.");
    println!("issuer:    {base}");
    println!("discovery: {base}/.well-known/openid-configuration");
    println!("jwks:      {base}/jwks\n");
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
    println!("curl -s -X POST {base}/rotate -d '{{\"alg\":\"RS256\"}}'");
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
