//! A DPoP client for the school example's walk-through: makes a key, asks
//! the development IAM for a token bound to it, and prints `curl`
//! commands, each with a fresh one-time proof for the URL given.
//!
//! ```text
//! cargo run --example dpop_proof -- <dev IAM URL> <URL to call> [user] [method]
//! cargo run --example dpop_proof -- http://127.0.0.1:4000 http://127.0.0.1:3000/students/s-1 teacher
//! ```
//!
//! A proof is good for one request within a minute: run it again for more.
//! The key lives only in this process, which is the point: whoever copies
//! the token from the output cannot make a proof for it.

use std::process::ExitCode;

use iam_guard::test_util::DpopKey;
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(iam), Some(url)) = (args.first(), args.get(1)) else {
        eprintln!("usage: dpop_proof <dev IAM URL> <URL to call> [user] [method]");
        return ExitCode::from(2);
    };
    let user = args.get(2).map_or("teacher", String::as_str);
    let method = args.get(3).map_or("GET", String::as_str);
    let key = DpopKey::es256();
    let answer = reqwest::Client::new()
        .post(format!("{}/token", iam.trim_end_matches('/')))
        .header("content-type", "application/json")
        .body(json!({"user": user, "jkt": key.thumbprint()}).to_string())
        .send()
        .await;
    let body: Value = match answer {
        Ok(res) if res.status().is_success() => {
            match res.bytes().await.map(|b| serde_json::from_slice(&b)) {
                Ok(Ok(body)) => body,
                Ok(Err(e)) => {
                    eprintln!("dpop_proof: the IAM's answer is not JSON: {e}");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("dpop_proof: the IAM's answer is not JSON: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        Ok(res) => {
            eprintln!(
                "dpop_proof: the IAM answered {}: {}",
                res.status(),
                res.text().await.unwrap_or_default()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("dpop_proof: cannot reach the IAM at {iam}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(token) = body["access_token"].as_str() else {
        eprintln!("dpop_proof: no access_token in {body}");
        return ExitCode::FAILURE;
    };
    // htu is the URL without query and fragment (RFC 9449 §4.2).
    let htu = url.split(['?', '#']).next().unwrap_or(url);
    println!(
        "# a token bound to key {} (cnf.jkt), token_type {}",
        key.thumbprint(),
        body["token_type"]
    );
    println!("TOKEN='{token}'\n");
    let curl = |proof: &str| {
        format!("curl -s -X {method} '{url}' -H \"Authorization: DPoP $TOKEN\" -H 'DPoP: {proof}'")
    };
    let first = key.proof(method, htu, token);
    println!("# with its proof (200)");
    println!("{}\n", curl(&first));
    println!("# the same proof again: a replay (401 invalid_dpop_proof)");
    println!("{}\n", curl(&first));
    println!("# a fresh proof (200)");
    println!("{}\n", curl(&key.proof(method, htu, token)));
    println!("# the token without a proof, as Bearer (401 invalid_token: it is DPoP-bound)");
    println!("curl -s '{url}' -H \"Authorization: Bearer $TOKEN\"");
    ExitCode::SUCCESS
}
