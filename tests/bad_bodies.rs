//! Hostile and malformed write bodies against FieldWriteGuard: each gets
//! its documented status, and the server keeps serving afterwards.
#![cfg(feature = "test-util")]

mod common;

use axum::{
    body::{Body, Bytes},
    http::{Method, Request, StatusCode},
    Router,
};
use common::send;
use http_body_util::BodyExt;
use iam_guard::{
    guard::protected::ProtectedResource, permissions::source::ClaimsSource, test_util::TestIam,
    JwtAuthGuardLayer,
};
use serde_json::{json, Value};

async fn update(body: Bytes) -> Bytes {
    body
}

fn app(iam: &TestIam) -> Router {
    ProtectedResource::new("students")
        .patch("/students/{id}", update)
        .post("/students", update)
        .into_router()
        .layer(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()))
}

fn token(iam: &TestIam) -> String {
    iam.mint(json!({
        "entities": {
            "students": {
                "scopes": { "anagraphic": "WRITE", "sensitive": "WRITE" },
                "actions": { "create": true }
            }
        }
    }))
}

fn patch(token: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(Method::PATCH)
        .uri("/students/s-1")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

async fn status_and_code(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = send(app, req).await;
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A valid write still works: nothing is stuck or poisoned.
async fn still_serving(app: &Router, token: &str) {
    let body = r#"{"anagraphic":{"firstName":"Mario"}}"#;
    let res = send(app, patch(token, body)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let echoed = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(echoed, body.as_bytes());
}

fn nested(depth: usize, open: &str, close: &str) -> String {
    let mut s = String::with_capacity(depth * (open.len() + close.len()));
    for _ in 0..depth {
        s.push_str(open);
    }
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

#[tokio::test]
async fn each_bad_body_gets_its_documented_status_and_the_server_keeps_serving() {
    let iam = TestIam::start().await;
    let app = app(&iam);
    let t = token(&iam);
    let deep = 100_000;
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "empty",
            String::new(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "whitespace",
            " \n ".into(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "null",
            "null".into(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "array",
            r#"[{"anagraphic":{}}]"#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "string",
            r#""anagraphic""#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "number",
            "42".into(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "truncated",
            r#"{"anagraphic":{"firstName":"Ma"#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "trailing garbage",
            r#"{"anagraphic":{}} {}"#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "lone surrogate escape",
            r#"{"anagraphic":{"a":"\ud800"}}"#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "deeply nested arrays at the top",
            nested(deep, "[", "]"),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "deeply nested arrays inside a writable group",
            format!(r#"{{"anagraphic":{}}}"#, nested(deep, "[", "]")),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "deeply nested objects",
            format!("{}null{}", "{\"a\":".repeat(deep), "}".repeat(deep)),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "duplicate keys",
            r#"{"anagraphic":{},"anagraphic":{"firstName":"x"}}"#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "duplicate keys, one escaped",
            r#"{"anagraphic":{},"\u0061nagraphic":{}}"#.into(),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            "2 MiB",
            format!(
                r#"{{"anagraphic":{{"notes":"{}"}}}}"#,
                "x".repeat(2 * 1024 * 1024)
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    for (name, body, status, code) in cases {
        let (got, json) = status_and_code(&app, patch(&t, body)).await;
        assert_eq!(got, status, "{name}");
        assert_eq!(json["code"], code, "{name}");
        still_serving(&app, &t).await;
    }
}

#[tokio::test]
async fn a_body_whose_raw_bytes_are_not_utf8_is_400() {
    let iam = TestIam::start().await;
    let app = app(&iam);
    let t = token(&iam);
    let body = Bytes::from_static(b"{\"anagraphic\":{\"a\":\"\xff\"}}");
    let (status, json) = status_and_code(&app, patch(&t, body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["code"], "INVALID_BODY");
    still_serving(&app, &t).await;
}

#[tokio::test]
async fn moderately_nested_values_inside_a_group_pass() {
    let iam = TestIam::start().await;
    let app = app(&iam);
    let t = token(&iam);
    // Under serde_json's recursion limit, as a handler's parser accepts.
    let body = format!(r#"{{"anagraphic":{}}}"#, nested(100, "[", "]"));
    let res = send(&app, patch(&t, body.clone())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes(),
        body.as_bytes()
    );
}

#[tokio::test]
async fn bad_bodies_over_real_http_do_not_take_the_server_down() {
    let iam = TestIam::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app(&iam);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let t = token(&iam);
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/students/s-1");
    let send = |body: String| {
        client
            .patch(&url)
            .bearer_auth(&t)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let bodies = [
        nested(100_000, "[", "]"),
        format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000)),
        r#"{"anagraphic":{},"anagraphic":{}}"#.to_owned(),
        "null".to_owned(),
    ];
    for body in bodies {
        let res = send(body).await.unwrap();
        assert_eq!(res.status().as_u16(), 400);
        let ok = send(r#"{"anagraphic":{"firstName":"Mario"}}"#.to_owned())
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200);
    }
    server.abort();
}
