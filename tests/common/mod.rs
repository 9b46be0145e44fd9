//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use axum::{body::Body, routing::get, Router};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use iam_guard::{JwtAuthGuardLayer, Principal};
use serde_json::Value;
use tower::ServiceExt;

/// A handler echoing what the guard put in the request.
pub async fn whoami(p: Principal) -> String {
    format!("{}|{}", p.user_id(), p.tenant_id().unwrap_or("-"))
}

/// `GET /me` and `POST /me` behind `layer`.
pub fn app(layer: JwtAuthGuardLayer) -> Router {
    Router::new()
        .route("/me", get(whoami).post(whoami))
        .layer(layer)
}

/// A request to `/me` with `method` and headers.
pub fn request(method: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::builder().method(method).uri("/me");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::empty()).unwrap()
}

/// `GET /me` with a bearer token.
pub fn bearer(token: &str) -> Request<Body> {
    request("GET", &[("authorization", &format!("Bearer {token}"))])
}

/// Sends `req` through `app`.
pub async fn send(app: &Router, req: Request<Body>) -> Response<Body> {
    app.clone().oneshot(req).await.unwrap()
}

/// Status and body text.
pub async fn call(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let res = send(app, req).await;
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Status, `WWW-Authenticate` and the JSON error body.
pub async fn call_json(app: &Router, req: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let res = send(app, req).await;
    let status = res.status();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, challenge, json)
}
