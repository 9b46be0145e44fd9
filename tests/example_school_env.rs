//! The school example configured through its environment, run as the
//! binary `cargo test` builds: `IAM_ISSUER` with several issuers trusts
//! each with its own keys and publishes them in its RFC 9728 metadata, and
//! a bad list exits with code 2 naming the variable.
#![cfg(feature = "test-util")]

#[path = "common/example_binary.rs"]
mod example_binary;

use example_binary::example_binary;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use iam_guard::test_util::TestIam;
use serde_json::json;

/// The example, killed on drop.
struct School {
    child: Child,
    base: String,
}

impl Drop for School {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &[(&str, &str)]) -> School {
    let mut command = Command::new(example_binary("school"));
    command
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the school example starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("students API on ") {
                let base = rest.split(',').next().unwrap_or_default().to_owned();
                let _ = tx.send((base, line));
            }
        }
    });
    let (base, _line) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the example announces where it listens");
    School { child, base }
}

async fn get_student(school: &School, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/students/s-1", school.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("the example answers")
        .status()
        .as_u16()
}

fn admin_of(iam: &TestIam) -> String {
    iam.mint(json!({"aud": "students-api", "roles": ["admin"], "tenantId": "school-1"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_issuer_takes_a_comma_separated_list_and_trusts_each() {
    let old = TestIam::start().await;
    let new = TestIam::start().await;
    let stranger = TestIam::start().await;
    let list = format!("{}, {}", old.issuer(), new.issuer());
    // Started off the runtime: the example fetches keys from the test IAMs
    // while it starts, and they are served by this runtime.
    let school = tokio::task::spawn_blocking(move || start(&[("IAM_ISSUER", &list)]))
        .await
        .expect("the example starts");

    // RFC 9728: the 401 names the metadata, which names both issuers.
    let res = reqwest::get(format!("{}/students/s-1", school.base))
        .await
        .expect("the example answers");
    assert_eq!(res.status(), 401);
    let metadata_url = format!("{}/.well-known/oauth-protected-resource", school.base);
    assert_eq!(
        res.headers()["www-authenticate"],
        format!("Bearer resource_metadata=\"{metadata_url}\"").as_str()
    );
    let body = reqwest::get(&metadata_url)
        .await
        .expect("the metadata is served")
        .bytes()
        .await
        .expect("a body");
    let metadata: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(metadata["resource"], school.base.as_str());
    assert_eq!(
        metadata["authorization_servers"],
        json!([old.issuer(), new.issuer()])
    );

    assert_eq!(get_student(&school, &admin_of(&old)).await, 200);
    assert_eq!(get_student(&school, &admin_of(&new)).await, 200);
    assert_eq!(get_student(&school, &admin_of(&stranger)).await, 401);
    assert_eq!(stranger.jwks_fetches() + stranger.discovery_fetches(), 0);
    // Each issuer's keys were fetched from that issuer once (at start-up).
    assert_eq!((old.jwks_fetches(), new.jwks_fetches()), (1, 1));
}

#[test]
fn a_bad_issuer_list_exits_with_code_2_naming_the_variable() {
    for (env, needle) in [
        (
            vec![("IAM_ISSUER", "http://127.0.0.1:9,")],
            "invalid IAM_ISSUER",
        ),
        (
            vec![("IAM_ISSUER", "ftp://iam.example")],
            "invalid IAM_ISSUER",
        ),
        (
            vec![
                ("IAM_ISSUER", "http://127.0.0.1:9,http://127.0.0.1:10"),
                ("IAM_JWKS_URI", "http://127.0.0.1:9/jwks"),
            ],
            "invalid IAM_JWKS_URI",
        ),
    ] {
        let output = Command::new(example_binary("school"))
            .env_clear()
            .envs(env.iter().copied())
            .env("BIND_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null())
            .output()
            .expect("the school example runs");
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{env:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_dpop_required_takes_dpop_bound_tokens_with_their_proof_only() {
    use iam_guard::test_util::DpopKey;
    let iam = TestIam::start().await;
    let issuer = iam.issuer().to_owned();
    let school = tokio::task::spawn_blocking(move || {
        start(&[("IAM_ISSUER", &issuer), ("IAM_DPOP", "required")])
    })
    .await
    .expect("the example starts");
    let key = DpopKey::es256();
    let mut claims = json!({"aud": "students-api", "roles": ["admin"], "tenantId": "school-1"});
    claims["cnf"] = key.cnf()["cnf"].clone();
    let token = iam.mint(claims);
    let url = format!("{}/students/s-1", school.base);
    let client = reqwest::Client::new();
    let send = |proof: String| {
        client
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
    };
    let proof = key.proof("GET", &url, &token);
    assert_eq!(send(proof.clone()).await.unwrap().status(), 200);
    let replay = send(proof).await.unwrap();
    assert_eq!(replay.status(), 401);
    assert!(replay.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("DPoP error=\"invalid_dpop_proof\""));
    // A bearer token, even a valid one, is refused; the challenge and the
    // metadata say DPoP is required.
    assert_eq!(get_student(&school, &admin_of(&iam)).await, 401);
    let metadata = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource",
        school.base
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&metadata).unwrap();
    assert_eq!(metadata["dpop_bound_access_tokens_required"], true);
}

#[test]
fn a_bad_iam_dpop_exits_with_code_2_naming_it() {
    let out = Command::new(example_binary("school"))
        .env_clear()
        .env("IAM_DPOP", "sometimes")
        .output()
        .expect("the example runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid IAM_DPOP"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_introspection_url_takes_opaque_tokens_beside_jwts() {
    use iam_guard::test_util::{DEV_CLIENT_ID, DEV_CLIENT_SECRET};
    let iam = TestIam::start().await;
    let (issuer, url) = (iam.issuer().to_owned(), iam.introspection_url());
    let school = tokio::task::spawn_blocking(move || {
        start(&[
            ("IAM_ISSUER", &issuer),
            ("IAM_INTROSPECTION_URL", &url),
            ("IAM_CLIENT_ID", DEV_CLIENT_ID),
            ("IAM_CLIENT_SECRET", DEV_CLIENT_SECRET),
        ])
    })
    .await
    .expect("the example starts");
    let opaque =
        iam.mint_opaque(json!({"aud": "students-api", "roles": ["admin"], "tenantId": "school-1"}));
    let res = reqwest::Client::new()
        .get(format!("{}/students/s-1", school.base))
        .bearer_auth(&opaque)
        .send()
        .await
        .expect("the example answers");
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    assert_eq!(get_student(&school, &admin_of(&iam)).await, 200);
    // Another audience is refused, as for a JWT.
    let other =
        iam.mint_opaque(json!({"aud": "billing-api", "roles": ["admin"], "tenantId": "school-1"}));
    assert_eq!(get_student(&school, &other).await, 401);
    iam.deactivate_opaque("never-issued");
    assert_eq!(get_student(&school, "never-issued").await, 401);
}

#[test]
fn introspection_with_an_external_iam_needs_the_client_credentials() {
    let out = Command::new(example_binary("school"))
        .env_clear()
        .env("IAM_ISSUER", "https://iam.example.com")
        .env(
            "IAM_INTROSPECTION_URL",
            "https://iam.example.com/introspect",
        )
        .output()
        .expect("the example runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid IAM_CLIENT_ID"), "{stderr}");
}
