//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

/// A real OpenID Provider (panva's oidc-provider on Node) per test.
pub mod oidc;
/// A real `redis-server` per test. Under `use common::*;` this module
/// shadows the `redis` crate: name the crate `::redis` there.
pub mod redis;
/// A real Redis Cluster (several `redis-server --cluster-enabled yes`).
pub mod redis_cluster;
/// What the replica suites share.
#[cfg(feature = "redis")]
pub mod replicas;

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

/// A permission source whose IAM is down: every load is `Unavailable`.
pub struct Down;

impl iam_guard::permissions::source::PermissionSource for Down {
    fn load<'a>(
        &'a self,
        _: &'a Principal,
    ) -> iam_guard::permissions::source::PermissionFuture<'a> {
        Box::pin(async {
            Err(
                iam_guard::permissions::source::PermissionError::Unavailable(
                    "connection refused".into(),
                ),
            )
        })
    }
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

/// 401 `invalid_token` with the RFC 6750 challenge and the token nowhere
/// in the body; returns the message.
pub async fn assert_invalid_token(app: &Router, token: &str, context: &str) -> String {
    let (status, challenge, body) = call_json(app, bearer(token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}: {body}");
    assert_eq!(body["code"], "invalid_token", "{context}: {body}");
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer error=\"invalid_token\""),
        "{context}"
    );
    assert!(
        token.is_empty() || !body.to_string().contains(token),
        "{context}: token leaked"
    );
    body["message"].as_str().unwrap_or_default().to_owned()
}

/// `method uri` with a bearer token (none when `token` is empty) and extra
/// headers. Write methods carry an empty JSON object, so a field guard in
/// the route's stack has a valid body to inspect.
pub fn to(method: &str, uri: &str, token: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if !token.is_empty() {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = if matches!(method, "POST" | "PUT" | "PATCH") {
        req = req.header("content-type", "application/json");
        Body::from("{}")
    } else {
        Body::empty()
    };
    req.body(body).unwrap()
}

/// Asserts a 403 from an authorization guard: the status, the JSON `code`
/// and RFC 6750's `insufficient_scope` challenge.
pub fn assert_forbidden(
    (status, challenge, body): &(StatusCode, Option<String>, Value),
    code: &str,
    context: &str,
) {
    assert_eq!(*status, StatusCode::FORBIDDEN, "{context}: {body}");
    assert_eq!(body["code"], code, "{context}: {body}");
    assert_eq!(body["statusCode"], 403, "{context}: {body}");
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer error=\"insufficient_scope\""),
        "{context}"
    );
}

/// The one field set of every `iam_guard::audit` event.
pub const AUDIT_FIELDS: [&str; 11] = [
    "outcome",
    "guard",
    "status",
    "code",
    "reason",
    "user",
    "tenant",
    "method",
    "route",
    "requirement",
    "keys",
];

/// Asserts that `event` has exactly the audit field set.
pub fn assert_audit_schema(event: &std::collections::BTreeMap<String, String>) {
    let mut fields: Vec<&str> = event.keys().map(String::as_str).collect();
    fields.sort_unstable();
    let mut expected = AUDIT_FIELDS.to_vec();
    expected.sort_unstable();
    assert_eq!(fields, expected, "{event:?}");
}

/// An event recorded by [`Capture`]: its target and its fields as strings.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub target: String,
    pub fields: std::collections::BTreeMap<String, String>,
}

/// A `tracing` layer recording every event, for audit-log assertions.
#[derive(Clone, Default)]
pub struct Capture(std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>);

impl Capture {
    /// Every event so far.
    pub fn events(&self) -> Vec<Recorded> {
        self.0.lock().expect("lock").clone()
    }

    /// The fields of the `iam_guard::audit` events so far.
    pub fn audit(&self) -> Vec<std::collections::BTreeMap<String, String>> {
        self.events()
            .into_iter()
            .filter(|e| e.target == "iam_guard::audit")
            .map(|e| e.fields)
            .collect()
    }

    /// The fields of the `iam_guard::audit` events whose `outcome` is
    /// `outcome` (`"deny"` or `"bypass"`).
    pub fn audit_events(&self, outcome: &str) -> Vec<std::collections::BTreeMap<String, String>> {
        self.audit()
            .into_iter()
            .filter(|fields| fields.get("outcome").map(String::as_str) == Some(outcome))
            .collect()
    }

    /// Everything recorded, as one string for failure messages and for
    /// asserting what must never be logged.
    pub fn all_text(&self) -> String {
        format!("{:?}", self.events())
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.0.lock().expect("lock").clear();
    }
}

struct CaptureFields<'a>(&'a mut std::collections::BTreeMap<String, String>);

impl tracing::field::Visit for CaptureFields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = std::collections::BTreeMap::new();
        event.record(&mut CaptureFields(&mut fields));
        self.0.lock().expect("lock").push(Recorded {
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
}

/// Records this thread's events until the guard drops; `#[tokio::test]`
/// runs the router on the test's own thread.
pub fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::layer::SubscriberExt as _;
    // tracing caches per callsite whether any dispatcher listens. A
    // callsite first hit on another test thread while only the no-op
    // global dispatcher existed can stay cached as "never", and a capture
    // would then miss events (seen as a flaky empty capture). A global
    // registry listens to everything, so no callsite is ever "never";
    // events still go to this thread's own default.
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    (capture, tracing::subscriber::set_default(subscriber))
}

/// Counter increments recorded on this thread, read through a debugging
/// recorder: `#[tokio::test]` runs the router on the test's own thread.
pub struct Counters(metrics_util::debugging::Snapshotter);

impl Counters {
    /// Reads what `snapshotter`'s recorder recorded (a global one, say).
    pub fn of(snapshotter: metrics_util::debugging::Snapshotter) -> Self {
        Self(snapshotter)
    }

    /// The increments since the last call, keyed `name{label=value,...}`
    /// with labels in name order.
    pub fn take(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for (key, _, _, value) in self.0.snapshot().into_vec() {
            let metrics_util::debugging::DebugValue::Counter(n) = value else {
                continue;
            };
            if n == 0 {
                continue;
            }
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            *out.entry(format!("{}{{{}}}", key.name(), labels.join(",")))
                .or_default() += n;
        }
        out
    }

    /// The increments since the last call whose name is `name`.
    pub fn take_named(&self, name: &str) -> std::collections::BTreeMap<String, u64> {
        self.take()
            .into_iter()
            .filter(|(k, _)| k.split('{').next() == Some(name))
            .collect()
    }
}

/// Records this thread's metrics until the guard drops.
pub fn counters() -> (Counters, metrics::LocalRecorderGuard<'static>) {
    let recorder: &'static metrics_util::debugging::DebuggingRecorder =
        Box::leak(Box::new(metrics_util::debugging::DebuggingRecorder::new()));
    let counters = Counters(recorder.snapshotter());
    (counters, metrics::set_default_local_recorder(recorder))
}

/// The key [`Counters::take`] gives a decision.
pub fn decision(guard: &str, outcome: &str, code: &str) -> String {
    format!("iam_guard_decisions_total{{code={code},guard={guard},outcome={outcome}}}")
}

/// A response read off the wire (reqwest), for the suites that serve on a
/// real port.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub body: String,
}

impl Answer {
    /// Status, `WWW-Authenticate` and body of `res`.
    pub async fn read(res: reqwest::Response) -> reqwest::Result<Self> {
        let status = StatusCode::from_u16(res.status().as_u16()).expect("a valid status");
        let challenge = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("an ASCII challenge").to_owned());
        Ok(Self {
            status,
            challenge,
            body: res.text().await?,
        })
    }

    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A 401 with `code`, `message` and the challenge `challenge`.
    pub fn assert_401(&self, code: &str, message: &str, challenge: &str, context: &str) {
        let body = self.json();
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{context}: {body}");
        assert_eq!(body["code"], code, "{context}: {body}");
        assert_eq!(body["message"], message, "{context}");
        assert_eq!(self.challenge.as_deref(), Some(challenge), "{context}");
    }
}
