//! [`IntrospectionEndpoint`]: an RFC 7662 token introspection endpoint on
//! loopback, answering what the test tells it to, for
//! [`Introspector`](crate::jwt::introspection::Introspector) tests.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::IamMode;

/// The client id [`IntrospectionEndpoint`] expects by default.
pub const TEST_CLIENT_ID: &str = "test-resource-server";
/// The client secret [`IntrospectionEndpoint`] expects by default. Holds
/// `:`, `+` and a space, so a client that skips RFC 6749's form encoding
/// of Basic credentials is refused.
pub const TEST_CLIENT_SECRET: &str = "s3cret: for+loopback tests";

/// An introspection endpoint on an ephemeral loopback port, shut down on
/// drop.
///
/// `POST /introspect` answers each token with the JSON set for it by
/// [`answer`](Self::answer) (`{"active": false}` for any other), once the
/// caller authenticated as the configured client: `client_secret_basic`
/// (RFC 6749 §2.3.1, form-urlencoded id and secret) or
/// `client_secret_post`, or a bearer token accepted with
/// [`accept_bearer`](Self::accept_bearer). Anything else is 401
/// `invalid_client`; both Basic and form credentials at once, a body that
/// is not a form, or no `token` is 400 `invalid_request`. Faults are set
/// with [`set_mode`](Self::set_mode) (answered before authentication, as a
/// failing proxy would), and every request is counted, refused or not.
///
/// **For tests only**: it vouches for whatever it is told to.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use iam_guard::{
///     jwt::introspection::{IntrospectionError, Introspector},
///     test_util::IntrospectionEndpoint,
/// };
/// use serde_json::json;
///
/// let iam = IntrospectionEndpoint::start().await;
/// iam.answer("opaque-1", json!({"active": true, "sub": "teacher-1", "roles": ["teacher"]}));
/// let introspector = Introspector::builder(&iam.url(), &iam.issuer())
///     .client_secret_basic(iam.client_id(), iam.client_secret())
///     .build()
///     .unwrap();
///
/// let caller = introspector.check("opaque-1").await.unwrap();
/// assert_eq!(caller.user_id(), "teacher-1");
/// assert_eq!(
///     introspector.check("never-issued").await.unwrap_err(),
///     IntrospectionError::Inactive
/// );
/// assert_eq!(iam.requests(), 2);
/// # }
/// ```
pub struct IntrospectionEndpoint {
    addr: SocketAddr,
    state: Arc<EndpointState>,
    server: JoinHandle<()>,
}

/// What the endpoint last received, for tests of the request's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntrospectionRequest {
    /// The `token` form parameter.
    pub token: Option<String>,
    /// The `token_type_hint` form parameter.
    pub token_type_hint: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// How the client authenticated, if it did acceptably:
    /// `client_secret_basic`, `client_secret_post` or `bearer`.
    pub client_auth: Option<&'static str>,
}

struct EndpointState {
    answers: Mutex<HashMap<String, Value>>,
    mode: Mutex<IamMode>,
    credentials: Mutex<(String, String)>,
    bearer: Mutex<Option<String>>,
    requests: AtomicUsize,
    last: Mutex<Option<IntrospectionRequest>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked mid-update leaves valid data behind.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for IntrospectionEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionEndpoint")
            .field("url", &self.url())
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl Drop for IntrospectionEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl IntrospectionEndpoint {
    /// Starts an endpoint expecting [`TEST_CLIENT_ID`] and
    /// [`TEST_CLIENT_SECRET`], with no answers set.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let state = Arc::new(EndpointState {
            answers: Mutex::new(HashMap::new()),
            mode: Mutex::new(IamMode::Healthy),
            credentials: Mutex::new((TEST_CLIENT_ID.into(), TEST_CLIENT_SECRET.into())),
            bearer: Mutex::new(None),
            requests: AtomicUsize::new(0),
            last: Mutex::new(None),
        });
        let app = Router::new()
            .route("/introspect", post(introspect))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            state,
            server,
        }
    }

    /// The endpoint's URL (`http://127.0.0.1:PORT/introspect`).
    pub fn url(&self) -> String {
        format!("http://{}/introspect", self.addr)
    }

    /// An issuer identifier for this endpoint's IAM
    /// (`http://127.0.0.1:PORT`). Answers carry no `iss` unless a test
    /// puts one in.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The client id currently expected.
    pub fn client_id(&self) -> String {
        lock(&self.state.credentials).0.clone()
    }

    /// The client secret currently expected.
    pub fn client_secret(&self) -> String {
        lock(&self.state.credentials).1.clone()
    }

    /// Expects `client_id` and `secret` from now on.
    pub fn set_credentials(&self, client_id: &str, secret: &str) {
        *lock(&self.state.credentials) = (client_id.into(), secret.into());
    }

    /// Also accepts `Authorization: Bearer <token>` as the client's
    /// credential (`None`: no longer).
    pub fn accept_bearer(&self, token: Option<&str>) {
        *lock(&self.state.bearer) = token.map(str::to_owned);
    }

    /// Answers `token` with `answer` from now on: any JSON, an RFC 7662
    /// answer or not (`json!([1])`, `json!({"active": "true"})`).
    pub fn answer(&self, token: &str, answer: Value) {
        lock(&self.state.answers).insert(token.into(), answer);
    }

    /// Answers `token` with `{"active": false}` from now on, as for a
    /// token revoked or never issued.
    pub fn forget(&self, token: &str) {
        lock(&self.state.answers).remove(token);
    }

    /// Sets how requests are answered: [`IamMode::Healthy`] (the answers),
    /// a bare status, a body that is not JSON, a delay before the answer,
    /// a body of a given size, or the answer streamed in chunks without a
    /// `Content-Length`.
    pub fn set_mode(&self, mode: IamMode) {
        *lock(&self.state.mode) = mode;
    }

    /// `true`: every request is answered 503; `false`: back to the
    /// answers ([`IamMode::Healthy`]).
    pub fn set_down(&self, down: bool) {
        self.set_mode(if down {
            IamMode::Status(503)
        } else {
            IamMode::Healthy
        });
    }

    /// Requests received so far, refused ones included.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The last request received, if any.
    pub fn last_request(&self) -> Option<IntrospectionRequest> {
        lock(&self.state.last).clone()
    }
}

async fn introspect(
    State(state): State<Arc<EndpointState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let mode = lock(&state.mode).clone();
    match mode {
        IamMode::Healthy | IamMode::Chunked => {}
        IamMode::Status(code) => {
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()
        }
        IamMode::Garbage => return (StatusCode::OK, "{\"active\": tru").into_response(),
        IamMode::Slow(delay) => tokio::time::sleep(delay).await,
        IamMode::Huge(len) => {
            let padding = " ".repeat(len.saturating_sub(16));
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                format!("{{\"active\":false{padding}}}"),
            )
                .into_response();
        }
    }
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = text(header::CONTENT_TYPE);
    let form = match &content_type {
        Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => {
            form_decode(&String::from_utf8_lossy(&body))
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
    };
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let client_auth = authenticate(&state, &headers, &param);
    *lock(&state.last) = Some(IntrospectionRequest {
        token: param("token"),
        token_type_hint: param("token_type_hint"),
        accept: text(header::ACCEPT),
        content_type,
        client_auth: client_auth.ok(),
    });
    if let Err(status) = client_auth {
        return oauth_error(status, "invalid_client");
    }
    let Some(token) = param("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let answer = lock(&state.answers)
        .get(&token)
        .cloned()
        .unwrap_or_else(|| json!({"active": false}));
    if mode == IamMode::Chunked {
        let body = answer.to_string().into_bytes();
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(16)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        return (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(futures_util::stream::iter(chunks)),
        )
            .into_response();
    }
    Json(answer).into_response()
}

/// The client's authentication method, or the status refusing it.
fn authenticate(
    state: &EndpointState,
    headers: &HeaderMap,
    param: &dyn Fn(&str) -> Option<String>,
) -> Result<&'static str, StatusCode> {
    let (id, secret) = lock(&state.credentials).clone();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let posted = (param("client_id"), param("client_secret"));
    match (authorization, posted) {
        // RFC 6749 §2.3: a client uses one method per request.
        (Some(_), (Some(_), _) | (_, Some(_))) => Err(StatusCode::BAD_REQUEST),
        (Some(value), _) => {
            if let Some(encoded) = value.strip_prefix("Basic ") {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|raw| String::from_utf8(raw).ok())
                    .ok_or(StatusCode::UNAUTHORIZED)?;
                let (their_id, their_secret) =
                    decoded.split_once(':').ok_or(StatusCode::UNAUTHORIZED)?;
                // RFC 6749 §2.3.1: both parts are form-urlencoded.
                if form_unescape(their_id) == id && form_unescape(their_secret) == secret {
                    return Ok("client_secret_basic");
                }
            } else if let Some(token) = value.strip_prefix("Bearer ") {
                if lock(&state.bearer).as_deref() == Some(token) {
                    return Ok("bearer");
                }
            }
            Err(StatusCode::UNAUTHORIZED)
        }
        (None, (Some(their_id), Some(their_secret)))
            if their_id == id && their_secret == secret =>
        {
            Ok("client_secret_post")
        }
        (None, _) => Err(StatusCode::UNAUTHORIZED),
    }
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    let mut res = (status, Json(json!({"error": error}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"introspection\""),
        );
    }
    res
}

/// The name/value pairs of an `application/x-www-form-urlencoded` body.
fn form_decode(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_unescape(k), form_unescape(v))
        })
        .collect()
}

/// `+` as a space, `%XX` as its byte; a broken escape stays as it is.
fn form_unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // `get`, not indexing: a short or non-ASCII tail is None.
                let hex = value
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_unescaped() {
        assert_eq!(form_unescape("a+b%2Bc%3A%25"), "a b+c:%");
        assert_eq!(form_unescape("%C3%A9"), "é");
        assert_eq!(form_unescape("50%"), "50%");
        assert_eq!(form_unescape("%zz"), "%zz");
        assert_eq!(
            form_decode("token=a%2Fb&token_type_hint=access_token&flag"),
            [
                ("token".into(), "a/b".into()),
                ("token_type_hint".into(), "access_token".into()),
                ("flag".into(), String::new()),
            ]
        );
    }
}
