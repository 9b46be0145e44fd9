//! schemathesis, an OpenAPI-driven fuzzer, against the running school
//! example and its `/openapi.json`: as the admin (every route reaches its
//! handler) and as a teacher (writes to groups it cannot write, creates and
//! deletes are refused by the guards). Each run must find no server error
//! and every answer's status code, content type, headers and body must be
//! what the document says for that operation.
//!
//! schemathesis is installed under `target/schemathesis` by
//! `tests/support/install-schemathesis.sh` (run by `.ci/run`); without it
//! this test fails and says how to install it. The runs are bounded: a few
//! examples per operation, a fixed seed, no example database.
#![cfg(all(feature = "test-util", feature = "openapi"))]

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "common/school_process.rs"]
mod school_process;

use std::{path::PathBuf, process::Command};

use school_process::School;

/// Examples per operation and phase: enough to send every operation
/// valid, invalid and boundary data, small enough for ~5 s a run.
const MAX_EXAMPLES: &str = "20";
const SEED: &str = "20261202";
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

fn schemathesis() -> PathBuf {
    let st = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/bin/st");
    assert!(
        st.is_file(),
        "{} is missing: run `bash tests/support/install-schemathesis.sh` (.ci/run does)",
        st.display()
    );
    st
}

/// Runs schemathesis against `school_base` with `token` and `doc` (the
/// document the school served, given as a file: loaded from a URL,
/// schemathesis leaves out the operation that served it); panics with its
/// output unless it exits 0 having tested `operations` operations.
fn fuzz(school_base: &str, doc: &serde_json::Value, token: &str, operations: usize, who: &str) {
    let workdir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis-run");
    std::fs::create_dir_all(&workdir).expect("a work directory under target/");
    let schema = workdir.join(format!("openapi-{who}.json"));
    std::fs::write(&schema, doc.to_string()).expect("the document is written");
    let out = Command::new(schemathesis())
        .current_dir(&workdir)
        .env("NO_COLOR", "1")
        .arg("run")
        .arg(&schema)
        .args(["--url", school_base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--generation-database", "none", "--workers", "1"])
        .args(["--request-timeout", "10"])
        .output()
        .expect("schemathesis runs");
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("schemathesis as {who}:\n{output}");
    assert!(
        out.status.success(),
        "schemathesis as {who} found problems ({}):\n{output}",
        out.status
    );
    assert!(
        output.contains(&format!("Tested: {operations}")),
        "schemathesis as {who} tested every one of the {operations} operations:\n{output}"
    );
    assert!(
        output.contains(&format!("{operations} selected / {operations} total")),
        "{output}"
    );
}

fn operations(doc: &serde_json::Value) -> usize {
    doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| {
            [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .iter()
            .filter(|m| item.get(**m).is_some())
            .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_school_true_to_its_document_as_admin_and_as_a_teacher() {
    // First, so a missing fuzzer fails before anything starts.
    schemathesis();
    let school = tokio::task::spawn_blocking(School::start)
        .await
        .expect("the example starts");
    let doc = school.openapi().await;
    let count = operations(&doc);
    assert_eq!(count, 10, "the school documents 10 operations");
    for who in ["admin", "teacher"] {
        let token = school.token(who).await;
        let (base, doc) = (school.base.clone(), doc.clone());
        tokio::task::spawn_blocking(move || fuzz(&base, &doc, &token, count, who))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }
}
