//! [`ErrorRenderer`]: a [`Rejection`] as the answer the client reads
//! (JSON, problem+json, gRPC status, or the service's own), with the
//! challenge and retry headers every renderer keeps.

use std::{fmt, sync::Arc};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::{grpc::grpc_response, ErrorCode, Rejection};

type CustomRender = dyn Fn(&Rejection) -> Response<Bytes> + Send + Sync;

/// Turns a [`Rejection`] into a response.
///
/// A request whose `content-type` is gRPC (`application/grpc`,
/// `application/grpc+proto`, …) is answered by the [gRPC
/// renderer](Self::grpc) when the configured one is
/// [`json`](Self::json) or [`problem_json`](Self::problem_json): a gRPC
/// client can read no JSON body. A [`custom`](Self::custom) renderer is
/// always used as configured.
///
/// ```
/// use iam_guard::rejection::{ErrorRenderer, Rejection};
///
/// let res = ErrorRenderer::json().render(&Rejection::missing_token());
/// assert_eq!(res.status(), 401);
/// assert_eq!(res.headers()["www-authenticate"], "Bearer");
/// let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
/// assert_eq!(body["code"], "invalid_token");
/// ```
#[derive(Clone)]
pub struct ErrorRenderer(Renderer);

#[derive(Clone)]
enum Renderer {
    Json,
    Problem,
    Grpc,
    Custom(Arc<CustomRender>),
}

impl ErrorRenderer {
    /// `application/json` body `{"statusCode", "error", "code", "message"}`
    /// (the default).
    pub fn json() -> Self {
        Self(Renderer::Json)
    }

    /// RFC 9457 `application/problem+json` body
    /// `{"type", "title", "status", "detail", "code"}`.
    pub fn problem_json() -> Self {
        Self(Renderer::Problem)
    }

    /// A gRPC status in a trailers-only response (the gRPC over HTTP/2
    /// spec): HTTP 200, `content-type: application/grpc`, the status in
    /// `grpc-status` ([`ErrorCode::grpc_code`]) and the message,
    /// percent-encoded, in `grpc-message`, with an empty body. The
    /// rejection's [`ErrorCode`] goes in `iam-guard-code` (a gRPC client
    /// reads it in the status metadata) for clients that branch on it.
    ///
    /// Configure it only for a server of gRPC alone: it answers every
    /// client this way, and a plain HTTP client would take the 200 for a
    /// success. A server that mixes gRPC and HTTP keeps a JSON renderer,
    /// which already yields to this one for gRPC calls.
    ///
    /// ```
    /// use iam_guard::rejection::{ErrorCode, ErrorRenderer, Rejection};
    ///
    /// let res = ErrorRenderer::grpc().render(&Rejection::new(ErrorCode::InsufficientScope, "no"));
    /// assert_eq!(res.status(), 200);
    /// assert_eq!(res.headers()["content-type"], "application/grpc");
    /// assert_eq!(res.headers()["grpc-status"], "7");
    /// assert_eq!(res.headers()["grpc-message"], "no");
    /// assert_eq!(res.headers()["iam-guard-code"], "INSUFFICIENT_SCOPE");
    /// assert!(res.body().is_empty());
    /// ```
    pub fn grpc() -> Self {
        Self(Renderer::Grpc)
    }

    /// Whether this renderer writes a body only an HTTP client can read
    /// (JSON, problem+json): such a renderer yields to the gRPC one for a
    /// gRPC request.
    pub(crate) fn is_http_only(&self) -> bool {
        matches!(self.0, Renderer::Json | Renderer::Problem)
    }

    /// A renderer of your own. The `WWW-Authenticate` challenge is added
    /// after it runs unless it set one itself.
    pub fn custom<F>(render: F) -> Self
    where
        F: Fn(&Rejection) -> Response<Bytes> + Send + Sync + 'static,
    {
        Self(Renderer::Custom(Arc::new(render)))
    }

    /// Renders `rejection`.
    pub fn render(&self, rejection: &Rejection) -> Response<Bytes> {
        let status = rejection.status();
        let reason = status.canonical_reason().unwrap_or("Error");
        let mut res = match &self.0 {
            Renderer::Json => json_response(
                status,
                "application/json",
                serde_json::json!({
                    "statusCode": status.as_u16(),
                    "error": reason,
                    "code": rejection.code.as_str(),
                    "message": rejection.message(),
                }),
            ),
            Renderer::Problem => json_response(
                status,
                "application/problem+json",
                serde_json::json!({
                    "type": "about:blank",
                    "title": reason,
                    "status": status.as_u16(),
                    "detail": rejection.message(),
                    "code": rejection.code.as_str(),
                }),
            ),
            Renderer::Grpc => grpc_response(rejection),
            Renderer::Custom(render) => render(rejection),
        };
        if let Some(challenge) = rejection.www_authenticate() {
            res.headers_mut()
                .entry(header::WWW_AUTHENTICATE)
                .or_insert(challenge);
        }
        if let Some(nonce) = rejection.dpop_nonce.as_deref() {
            if let Ok(value) = HeaderValue::from_str(nonce) {
                res.headers_mut()
                    .entry(crate::jwt::dpop::DPOP_NONCE_HEADER)
                    .or_insert(value);
            }
        }
        if rejection.code == ErrorCode::IamUnavailable {
            res.headers_mut()
                .entry(header::RETRY_AFTER)
                .or_insert(HeaderValue::from_static("5"));
        }
        res
    }
}

impl Default for ErrorRenderer {
    fn default() -> Self {
        Self::json()
    }
}

impl fmt::Debug for ErrorRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            Renderer::Json => "json",
            Renderer::Problem => "problem+json",
            Renderer::Grpc => "grpc",
            Renderer::Custom(_) => "custom",
        };
        f.debug_tuple("ErrorRenderer").field(&kind).finish()
    }
}

fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: serde_json::Value,
) -> Response<Bytes> {
    let mut res = Response::new(Bytes::from(body.to_string()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}
