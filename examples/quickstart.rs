//! The smallest guarded service: an embedded development IAM (JWKS and
//! OIDC discovery on a loopback port) and an axum router behind
//! `JwtAuthGuardLayer`, configured with nothing but the issuer URL.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! It prints `curl` commands with ready-made tokens. The embedded IAM is
//! `iam_guard::test_util::TestIam`: development only, it mints tokens for
//! anyone.

use axum::{routing::get, Router};
use iam_guard::{
    test_util::{TestIam, TEST_AUDIENCE},
    JwtAuthGuardLayer, Principal,
};
use serde_json::json;

async fn me(principal: Principal) -> String {
    format!(
        "hello {} (tenant {}, roles {:?})\n",
        principal.user_id(),
        principal.tenant_id().unwrap_or("-"),
        principal
            .roles()
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iam = TestIam::start().await;

    // What a real service writes: the IAM's issuer URL and your audience.
    let issuer = iam.issuer().to_owned();
    let auth = JwtAuthGuardLayer::issuer(&issuer)?.audience([TEST_AUDIENCE]);
    // Optional: fetch the keys now, so the first request does not wait.
    auth.verifier().jwks().warm_up().await?;
    let app = Router::new().route("/me", get(me)).layer(auth);

    let addr = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    // Demo tokens live for an hour so the printed commands keep working.
    let exp = iam.default_claims()["iat"].as_u64().unwrap_or(0) + 3600;
    let token =
        iam.mint(json!({"sub": "alice", "tenantId": "school-1", "roles": ["teacher"], "exp": exp}));
    let expired = iam.mint(json!({"sub": "alice", "exp": 1_000_000_000}));
    println!("IAM (development only): {issuer}");
    println!("service:                {base}\n");
    println!("# 200, with the caller's identity");
    println!("curl -i {base}/me -H 'Authorization: Bearer {token}'\n");
    println!("# 401 invalid_token: expired");
    println!("curl -i {base}/me -H 'Authorization: Bearer {expired}'\n");
    println!("# 401 without an error attribute: no token");
    println!("curl -i {base}/me\n");

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
