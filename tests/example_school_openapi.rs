//! The school example run as a binary serves `GET /openapi.json` without a
//! token, and the document says what the running guards enforce: the same
//! checks as the in-process `tests/openapi.rs`, on what a client fetches.
#![cfg(all(feature = "test-util", feature = "openapi"))]

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "common/school_openapi.rs"]
mod school_openapi;
#[path = "common/school_process.rs"]
mod school_process;

use school_process::School;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_school_serves_its_document_with_each_routes_security() {
    let school = tokio::task::spawn_blocking(School::start)
        .await
        .expect("the example starts");
    let doc = school.openapi().await;
    school_openapi::check_school_document(&doc);

    let http = reqwest::Client::new();
    // What the document calls unprotected answers without a token...
    for path in school_openapi::UNPROTECTED {
        let res = http
            .get(format!("{}{path}", school.base))
            .send()
            .await
            .expect("the example answers");
        assert_eq!(res.status(), 200, "GET {path}: {}", school.output());
    }
    // ...and what it protects answers 401 without one, 200 with one that
    // meets the declared requirement.
    let admin = school.token("admin").await;
    for (method, path, _) in school_openapi::school_declarations() {
        if method != "get" {
            continue;
        }
        let url = format!("{}{}", school.base, path.replace("{id}", "s-1"));
        let anonymous = http.get(&url).send().await.expect("an answer");
        assert_eq!(anonymous.status(), 401, "GET {path}");
        assert!(doc["paths"][path]["get"]["responses"]["401"].is_object());
        let res = http
            .get(&url)
            .bearer_auth(&admin)
            .send()
            .await
            .expect("an answer");
        assert_eq!(res.status(), 200, "GET {path}");
        assert!(doc["paths"][path]["get"]["responses"]["200"].is_object());
    }
}
