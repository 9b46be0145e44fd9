//! A tonic gRPC service behind the guards: `school.v1.Students` (unary,
//! server-streaming and client-streaming methods) with a requirement per
//! method, one method deliberately left undeclared (denied), and every
//! refusal answered as a gRPC status.
//!
//! ```text
//! cargo run --example grpc
//! ```
//!
//! It starts the embedded development IAM (JWKS and OIDC discovery on a
//! loopback port, `iam_guard::test_util::TestIam`: development only, it
//! mints tokens for anyone) and prints `grpcurl` commands with a ready-made
//! token per demo user. `BIND_ADDR` sets the service's address (default
//! `127.0.0.1:50051`; `127.0.0.1:0` picks a free port).

// Shared with tests/grpc.rs, which also counts handler calls.
#[allow(dead_code)]
mod students;

use std::{net::SocketAddr, process::ExitCode};

use iam_guard::{
    test_util::{TestIam, TEST_AUDIENCE},
    ClaimsSource, JwtAuthGuardLayer,
};
use serde_json::json;
use tonic::transport::Server;

use students::{StudentsService, DEMO_USERS};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_target(true)
        .with_max_level(tracing::Level::INFO)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grpc: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let iam = TestIam::start().await;
    let issuer = iam.issuer().to_owned();
    // What a real service writes: the IAM's issuer URL and your audience;
    // here the permissions travel in the token (`entities` claim).
    let auth = JwtAuthGuardLayer::issuer(&issuer)?
        .audience([TEST_AUDIENCE])
        .permissions(ClaimsSource::new());
    auth.verifier().jwks().warm_up().await?;
    let methods = students::methods();
    methods.log_report();

    let addr: SocketAddr = std::env::var("BIND_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:50051".into())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;

    // Demo tokens live for an hour so the printed commands keep working.
    let exp = iam.default_claims()["iat"].as_u64().unwrap_or(0) + 3600;
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/grpc/proto");
    let grpcurl = format!("grpcurl -plaintext -import-path {proto} -proto students.proto");
    println!("IAM (development only): {issuer}");
    println!("service:                grpc://{local} (school.v1.Students)\n");
    for (name, what) in DEMO_USERS {
        let mut claims = students::demo_claims(name).expect("a demo user");
        claims["exp"] = json!(exp);
        println!("# {name}: {what}");
        println!("TOKEN_{}={}", name.to_uppercase(), iam.mint(claims));
    }
    println!();
    println!("# OK (the teacher sees the health notes, the librarian does not)");
    println!(
        "{grpcurl} -H \"authorization: Bearer $TOKEN_TEACHER\" -d '{{\"id\":\"s-1\"}}' \
         {local} school.v1.Students/GetStudent\n"
    );
    println!("# server streaming");
    println!(
        "{grpcurl} -H \"authorization: Bearer $TOKEN_LIBRARIAN\" {local} school.v1.Students/ListStudents\n"
    );
    println!("# PermissionDenied: a parent has no access to students");
    println!(
        "{grpcurl} -H \"authorization: Bearer $TOKEN_PARENT\" -d '{{\"id\":\"s-1\"}}' \
         {local} school.v1.Students/GetStudent\n"
    );
    println!("# PermissionDenied: ArchiveStudents is declared nowhere, even for the secretary");
    println!(
        "{grpcurl} -H \"authorization: Bearer $TOKEN_SECRETARY\" {local} school.v1.Students/ArchiveStudents\n"
    );
    println!("# Unauthenticated: no token");
    println!("{grpcurl} {local} school.v1.Students/WhoAmI\n");

    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    Server::builder()
        .layer(auth)
        .layer(methods)
        .add_service(StudentsService::seeded().into_server())
        .serve_with_incoming_shutdown(incoming, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
