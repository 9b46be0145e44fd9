//! A refused write does not break the client's connection.
//!
//! A guard that refuses a POST before reading its body leaves the body on
//! the connection. hyper reads what has already arrived and, if the body
//! is not complete, drops the connection without a word, so the client's
//! next request on it fails. The guards drain an unread body up to a
//! bound (64 KiB by default) so the connection carries the next request,
//! and past the bound answer `Connection: close` so the client knows.
//!
//! These tests speak HTTP/1.1 over a real loopback socket to `axum::serve`,
//! sending the body in two segments with a pause between them, the way a
//! large or slow upload arrives.

mod common;

use std::time::Duration;

use axum::{
    routing::{get, post},
    Router,
};
use iam_guard::{
    test_util::TestIam, ActionGuard, ClaimsSource, FieldWriteGuardLayer, JwtAuthGuardLayer,
    ScopeGuard,
};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};

const PATIENCE: Duration = Duration::from_secs(10);

/// A served router on a loopback port; the server stops with the test.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

fn app(iam: &TestIam, drain_limit: Option<usize>) -> Router {
    let mut auth = JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new());
    if let Some(limit) = drain_limit {
        auth = auth.drain_limit(limit);
    }
    Router::new()
        .route(
            "/students",
            post(|| async { "created" }).route_layer(ActionGuard::new("students", "create")),
        )
        .route(
            "/students/{id}",
            get(|| async { "a student" })
                .patch(|| async { "patched" })
                .route_layer(FieldWriteGuardLayer::new())
                .route_layer(ScopeGuard::read("students")),
        )
        .layer(auth)
}

/// One HTTP/1.1 response: status, headers (lower-case names) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response with a `Content-Length` body from `stream`.
async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Answer {
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("the connection is readable");
        assert!(n > 0, "the server closed the connection before answering");
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(pending[..head_end].to_vec()).unwrap();
    pending.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    while pending.len() < len {
        let n = timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("a body in time")
            .expect("the connection is readable");
        assert!(n > 0, "the body was cut short");
        pending.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8(pending.drain(..len).collect()).unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// Writes a request whose body goes out in two segments with a pause in
/// between, so the server sees the headers before the body has arrived.
async fn send_in_two(stream: &mut TcpStream, head: &str, body: &[u8]) {
    let head = format!("{head}content-length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    let (first, second) = body.split_at(body.len() / 2);
    stream.write_all(first).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The server may already have answered and closed; that is for the
    // assertions to judge, not the write.
    let _ = stream.write_all(second).await;
}

async fn get_on(stream: &mut TcpStream, pending: &mut Vec<u8>, token: &str) -> Answer {
    let req = format!(
        "GET /students/s-1 HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    read_answer(stream, pending).await
}

#[tokio::test]
async fn a_write_refused_before_its_body_was_read_leaves_the_connection_usable() {
    let iam = TestIam::start().await;
    let addr = serve(app(&iam, None)).await;
    let reader = iam.mint(json!({
        "entities": {"students": {"scopes": {"anagraphic": "READ"}, "actions": {}}},
    }));
    let body = format!(r#"{{"anagraphic":{{"note":"{}"}}}}"#, "x".repeat(30_000));
    let cases = [
        (
            "no token: 401 by the auth guard",
            String::new(),
            "POST /students",
            "application/json",
            401,
        ),
        (
            "no action: 403 by the requirement guard",
            reader.clone(),
            "POST /students",
            "application/json",
            403,
        ),
        (
            "not JSON: 415 by the field guard",
            reader.clone(),
            "PATCH /students/s-1",
            "text/plain",
            415,
        ),
    ];
    for (what, token, target, content_type, status) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut pending = Vec::new();
        let mut head =
            format!("{target} HTTP/1.1\r\nhost: test\r\ncontent-type: {content_type}\r\n");
        if !token.is_empty() {
            head.push_str(&format!("authorization: Bearer {token}\r\n"));
        }
        send_in_two(&mut stream, &head, body.as_bytes()).await;
        let refused = read_answer(&mut stream, &mut pending).await;
        assert_eq!(refused.status, status, "{what}: {refused:?}");
        assert_eq!(refused.header("connection"), None, "{what}: kept alive");

        // The same connection carries the next request.
        let next = get_on(&mut stream, &mut pending, &reader).await;
        assert_eq!(next.status, 200, "{what}: {next:?}");
        assert_eq!(next.body, "a student", "{what}");
    }
}

#[tokio::test]
async fn a_body_past_the_drain_limit_is_answered_with_connection_close() {
    let iam = TestIam::start().await;
    let addr = serve(app(&iam, Some(1024))).await;
    let body = "x".repeat(8 * 1024);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut pending = Vec::new();
    send_in_two(
        &mut stream,
        "POST /students HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n",
        body.as_bytes(),
    )
    .await;
    let refused = read_answer(&mut stream, &mut pending).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("connection"), Some("close"), "{refused:?}");
    // And the server does close it: the client was told, nothing is left
    // half-read.
    let mut rest = Vec::new();
    let read = timeout(PATIENCE, stream.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection");
    assert!(read.is_ok() || rest.is_empty());
    assert!(rest.is_empty(), "nothing after the answer: {rest:?}");
}

#[tokio::test]
async fn a_client_waiting_for_100_continue_is_refused_without_sending_its_body() {
    let iam = TestIam::start().await;
    let addr = serve(app(&iam, None)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut pending = Vec::new();
    stream
        .write_all(
            b"POST /students HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
              expect: 100-continue\r\ncontent-length: 100000\r\n\r\n",
        )
        .await
        .unwrap();
    // The refusal comes without the body ever being sent.
    let refused = read_answer(&mut stream, &mut pending).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.header("connection"), Some("close"));
}
