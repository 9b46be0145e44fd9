//! Deny reasons and how they become HTTP responses.
//!
//! Every guard in this crate turns a failed check into a [`Rejection`]: a
//! status, a stable machine-readable [`ErrorCode`] and a short message that
//! never carries the token or internal detail. An [`ErrorRenderer`] turns the
//! rejection into a response: the default JSON body
//! `{"statusCode", "error", "code", "message"}`, RFC 9457
//! `application/problem+json`, a gRPC status ([`ErrorRenderer::grpc`],
//! also used for every gRPC call unless the renderer is custom), or a
//! renderer of your own. Whatever renders
//! the body, the `WWW-Authenticate` header of RFC 6750 is always set on 401
//! and 403 responses, because clients rely on it to know what to do next.
//!
//! The guards answer every refusal with the renderer configured on
//! [`JwtAuthGuardLayer::error_renderer`](crate::JwtAuthGuardLayer::error_renderer),
//! and audit and count it the same way; see the
//! [`guard`](crate::guard) module.

use std::{borrow::Cow, fmt, sync::Arc};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::{jwt::token::AuthScheme, model::Denial, resource_metadata::ResourceMetadataUrl};

/// The stable, machine-readable code carried by every rejection.
///
/// The string forms (see [`ErrorCode::as_str`]) are part of the public
/// contract: clients branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the request is malformed (two tokens, an unreadable header).
    InvalidRequest,
    /// 400: the active-tenant header is required and missing.
    TenantRequired,
    /// 400: a write body is not a JSON object.
    InvalidBody,
    /// 401: missing, malformed, expired or otherwise invalid token.
    InvalidToken,
    /// 401: the DPoP proof is missing or invalid (RFC 9449 §7.1).
    InvalidDpopProof,
    /// 401: the DPoP proof needs a fresh server nonce, sent in the
    /// `DPoP-Nonce` header of this answer (RFC 9449 §9).
    UseDpopNonce,
    /// 403: the active tenant is not one of the caller's memberships.
    TenantNotPermitted,
    /// 403: a cookie token on an unsafe method without a matching XSRF header.
    XsrfMismatch,
    /// 403: the caller has no scope of the entity at the required level.
    InsufficientScope,
    /// 403: the caller's action is not effective.
    ActionNotPermitted,
    /// 403: a flat permission or module is missing.
    PermissionDenied,
    /// 403: the access token lacks an OAuth 2.0 scope the route needs (an
    /// OAuth scope such as `students:read`, not an entity's scope group).
    /// The challenge names the scopes to ask for.
    InsufficientOAuthScope,
    /// 403: the caller lacks a role the route needs.
    RoleRequired,
    /// 403: a write body touches fields the caller cannot write.
    ForbiddenFields,
    /// 413: a write body is over the size limit.
    PayloadTooLarge,
    /// 415: a write body is not JSON.
    UnsupportedMediaType,
    /// 500: the guards are wired wrongly or a response cannot be filtered.
    Internal,
    /// 503: signing keys or permissions cannot be obtained from the IAM.
    IamUnavailable,
}

impl ErrorCode {
    /// The code as it appears in response bodies.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::TenantRequired => "TENANT_REQUIRED",
            Self::InvalidBody => "INVALID_BODY",
            Self::InvalidToken => "invalid_token",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::TenantNotPermitted => "TENANT_NOT_PERMITTED",
            Self::XsrfMismatch => "XSRF_MISMATCH",
            Self::InsufficientScope => "INSUFFICIENT_SCOPE",
            Self::ActionNotPermitted => "ACTION_NOT_PERMITTED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::InsufficientOAuthScope => "INSUFFICIENT_OAUTH_SCOPE",
            Self::RoleRequired => "ROLE_REQUIRED",
            Self::ForbiddenFields => "FORBIDDEN_FIELDS",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::Internal => "INTERNAL",
            Self::IamUnavailable => "IAM_UNAVAILABLE",
        }
    }

    /// The HTTP status this code is answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest | Self::TenantRequired | Self::InvalidBody => {
                StatusCode::BAD_REQUEST
            }
            Self::InvalidToken | Self::InvalidDpopProof | Self::UseDpopNonce => {
                StatusCode::UNAUTHORIZED
            }
            Self::TenantNotPermitted
            | Self::XsrfMismatch
            | Self::InsufficientScope
            | Self::ActionNotPermitted
            | Self::PermissionDenied
            | Self::InsufficientOAuthScope
            | Self::RoleRequired
            | Self::ForbiddenFields => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::IamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl ErrorCode {
    /// The gRPC status code this code is answered with by the gRPC
    /// renderer ([`ErrorRenderer::grpc`]):
    ///
    /// | HTTP status | gRPC status |
    /// |---|---|
    /// | 400, 413, 415 | `INVALID_ARGUMENT` (3) |
    /// | 401 | `UNAUTHENTICATED` (16) |
    /// | 403 | `PERMISSION_DENIED` (7) |
    /// | 500 | `INTERNAL` (13) |
    /// | 503 | `UNAVAILABLE` (14) |
    pub const fn grpc_code(self) -> i32 {
        match self {
            Self::InvalidRequest
            | Self::TenantRequired
            | Self::InvalidBody
            | Self::PayloadTooLarge
            | Self::UnsupportedMediaType => 3,
            Self::InvalidToken | Self::InvalidDpopProof | Self::UseDpopNonce => 16,
            Self::TenantNotPermitted
            | Self::XsrfMismatch
            | Self::InsufficientScope
            | Self::ActionNotPermitted
            | Self::PermissionDenied
            | Self::InsufficientOAuthScope
            | Self::RoleRequired
            | Self::ForbiddenFields => 7,
            Self::Internal => 13,
            Self::IamUnavailable => 14,
        }
    }
}

/// The code of a route that a protected bundle serves without a
/// requirement: denied to everyone, whoever asks.
pub(crate) const UNDECLARED_ROUTE: ErrorCode = ErrorCode::PermissionDenied;

impl From<Denial> for ErrorCode {
    /// The code a route guard answers a [`Denial`] with: one mapping for
    /// the guards and for [`access_matrix`](crate::access_matrix), so the
    /// matrix reports exactly what a request gets.
    fn from(denial: Denial) -> Self {
        match denial {
            Denial::InsufficientScope => Self::InsufficientScope,
            Denial::ActionNotPermitted => Self::ActionNotPermitted,
            Denial::PermissionDenied => Self::PermissionDenied,
            Denial::InsufficientOAuthScope => Self::InsufficientOAuthScope,
            Denial::RoleRequired => Self::RoleRequired,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was denied.
///
/// Built by the guards; handed to the [`ErrorRenderer`]. The message is
/// written for the API client and never contains the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    code: ErrorCode,
    message: Cow<'static, str>,
    token_sent: bool,
    /// The OAuth scopes the client should ask for, for the challenge.
    oauth_scope: Option<Box<str>>,
    /// Where the client learns which authorization server to ask, for the
    /// challenge.
    resource_metadata: Option<ResourceMetadataUrl>,
    /// The schemes the resource accepts; `None` is `Bearer` alone.
    schemes: Option<Schemes>,
    /// The scheme the request used, when known.
    presented: Option<AuthScheme>,
    /// Sent in `DPoP-Nonce`.
    dpop_nonce: Option<Box<str>>,
}

impl Rejection {
    /// A rejection with `code` and a client-facing `message`.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            token_sent: true,
            oauth_scope: None,
            resource_metadata: None,
            schemes: None,
            presented: None,
            dpop_nonce: None,
        }
    }

    /// Names the OAuth scopes (space-separated) the client should request,
    /// sent as the `scope` attribute of the 403 challenge (RFC 6750 §3).
    /// A value with characters a scope cannot hold (RFC 6749 §3.3: no
    /// quote, backslash or control character) is left out of the header.
    pub fn with_oauth_scope(mut self, scopes: impl Into<Box<str>>) -> Self {
        self.oauth_scope = Some(scopes.into());
        self
    }

    /// The OAuth scopes set with [`with_oauth_scope`](Self::with_oauth_scope).
    pub fn oauth_scope(&self) -> Option<&str> {
        self.oauth_scope.as_deref()
    }

    /// Names the URL of the resource's protected resource metadata, sent as
    /// the `resource_metadata` attribute of the 401 and 403 challenges
    /// (RFC 9728 §5.1). The guards set it on every refusal when
    /// [`JwtAuthGuardLayer::resource_metadata_url`](crate::JwtAuthGuardLayer::resource_metadata_url)
    /// is configured.
    pub fn with_resource_metadata(mut self, url: ResourceMetadataUrl) -> Self {
        self.resource_metadata = Some(url);
        self
    }

    /// The URL set with [`with_resource_metadata`](Self::with_resource_metadata).
    pub fn resource_metadata(&self) -> Option<&ResourceMetadataUrl> {
        self.resource_metadata.as_ref()
    }

    /// 401 for a request that carried no token at all. RFC 6750 §3.1 says
    /// such a challenge must not carry an `error` attribute.
    pub fn missing_token() -> Self {
        Self {
            code: ErrorCode::InvalidToken,
            message: Cow::Borrowed("no access token was sent"),
            token_sent: false,
            oauth_scope: None,
            resource_metadata: None,
            schemes: None,
            presented: None,
            dpop_nonce: None,
        }
    }

    /// 401 `invalid_token` with `message`.
    pub fn invalid_token(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidToken, message)
    }

    /// 503 `IAM_UNAVAILABLE` with `message`.
    pub fn iam_unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::IamUnavailable, message)
    }

    /// The machine-readable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The client-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Sends `nonce` in the `DPoP-Nonce` header of the answer (RFC 9449
    /// §8): the guards set it on `use_dpop_nonce` refusals.
    pub fn with_dpop_nonce(mut self, nonce: impl Into<Box<str>>) -> Self {
        self.dpop_nonce = Some(nonce.into());
        self
    }

    /// The nonce set with [`with_dpop_nonce`](Self::with_dpop_nonce).
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
    }

    /// The schemes the resource accepts and the one this request used,
    /// for the challenges; set by the deny path from the auth layer's
    /// configuration.
    pub(crate) fn with_schemes(mut self, schemes: Schemes, presented: Option<AuthScheme>) -> Self {
        self.schemes = Some(schemes);
        if self.presented.is_none() {
            self.presented = presented;
        }
        self
    }

    /// Records the scheme the token was presented with.
    pub(crate) fn presented(mut self, scheme: AuthScheme) -> Self {
        self.presented = Some(scheme);
        self
    }

    /// The `WWW-Authenticate` challenges for this rejection, if its status
    /// calls for them (401 and 403, RFC 6750 §3, RFC 9449 §7.1), with the
    /// `scope` and `resource_metadata` attributes when they are set.
    ///
    /// A resource that accepts DPoP answers with a `DPoP` challenge naming
    /// its algorithms (`algs`), beside the `Bearer` one unless DPoP is
    /// required. The `error` goes on the challenge of the scheme the
    /// request used; `invalid_dpop_proof` and `use_dpop_nonce` only ever
    /// on the `DPoP` one.
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        let status = self.status();
        let dpop_error = matches!(
            self.code,
            ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce
        );
        let error = match status {
            StatusCode::UNAUTHORIZED if !self.token_sent => None,
            StatusCode::UNAUTHORIZED if dpop_error => Some(self.code.as_str()),
            StatusCode::UNAUTHORIZED => Some("invalid_token"),
            // An XSRF failure says nothing about the token's scope: no
            // challenge would help the client.
            StatusCode::FORBIDDEN if self.code == ErrorCode::XsrfMismatch => return None,
            StatusCode::FORBIDDEN => Some("insufficient_scope"),
            _ => return None,
        };
        let scope = match status {
            StatusCode::FORBIDDEN => self.oauth_scope.as_deref().filter(|s| is_scope_list(s)),
            _ => None,
        };
        let metadata = self
            .resource_metadata
            .as_ref()
            .map(ResourceMetadataUrl::as_str);
        let (bearer, algs) = match &self.schemes {
            None => (true, None),
            Some(schemes) => (schemes.bearer, schemes.dpop_algs.as_deref()),
        };
        let dpop = algs.is_some() || dpop_error;
        let mut header = String::new();
        if bearer {
            let error = match self.presented {
                _ if dpop_error => None,
                Some(AuthScheme::Dpop) if dpop => None,
                _ => error,
            };
            push_challenge(
                &mut header,
                "Bearer",
                [
                    ("error", error),
                    ("scope", scope),
                    ("resource_metadata", metadata),
                    ("algs", None),
                ],
            );
        }
        if dpop {
            let error = match self.presented {
                _ if dpop_error => error,
                Some(AuthScheme::Bearer) if bearer => None,
                _ => error,
            };
            push_challenge(
                &mut header,
                "DPoP",
                [
                    ("error", error),
                    ("scope", scope),
                    ("resource_metadata", metadata),
                    ("algs", algs),
                ],
            );
        }
        HeaderValue::from_str(&header).ok()
    }
}

/// Appends `scheme` and its set attributes to a `WWW-Authenticate` value,
/// after a `, ` when it already holds a challenge (RFC 9110 §11.6.1).
/// Every value is an error code, a scope list, an algorithm list or a
/// checked URL: none holds a quote, backslash or control character, so
/// none needs escaping.
fn push_challenge<const N: usize>(
    header: &mut String,
    scheme: &str,
    attributes: [(&str, Option<&str>); N],
) {
    if !header.is_empty() {
        header.push_str(", ");
    }
    header.push_str(scheme);
    for (i, (name, value)) in attributes
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .enumerate()
    {
        header.push_str(if i == 0 { " " } else { ", " });
        header.push_str(name);
        header.push_str("=\"");
        header.push_str(value);
        header.push('"');
    }
}

/// The authorization schemes a resource accepts, for its challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schemes {
    /// `Bearer` (header or cookie) is accepted.
    pub(crate) bearer: bool,
    /// `DPoP` is accepted with these algorithms (space-separated).
    pub(crate) dpop_algs: Option<Arc<str>>,
}

/// Scope tokens separated by single spaces, safe inside a quoted header
/// attribute.
fn is_scope_list(scopes: &str) -> bool {
    !scopes.is_empty() && scopes.split(' ').all(is_scope_token)
}

/// RFC 6749 §3.3 `scope-token`: `%x21 / %x23-5B / %x5D-7E`, at least one.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status(), self.code, self.message)
    }
}

impl std::error::Error for Rejection {}

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

/// The `grpc-message` header name.
const GRPC_MESSAGE: &str = "grpc-message";
/// The header naming the rejection's [`ErrorCode`] in a gRPC answer.
const GRPC_ERROR_CODE: &str = "iam-guard-code";

/// A trailers-only gRPC answer: the status travels in the headers of an
/// HTTP 200 with no body, which gRPC clients read as the call's status.
fn grpc_response(rejection: &Rejection) -> Response<Bytes> {
    let mut res = Response::new(Bytes::new());
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(rejection.code.grpc_code()));
    // Percent-encoding leaves only visible ASCII and spaces, which are
    // always a valid header value.
    if let Ok(message) = HeaderValue::from_str(&grpc_percent_encode(rejection.message())) {
        headers.insert(GRPC_MESSAGE, message);
    }
    headers.insert(
        GRPC_ERROR_CODE,
        HeaderValue::from_static(rejection.code.as_str()),
    );
    res
}

/// `grpc-message` encoding (gRPC over HTTP/2, "Responses"): UTF-8 bytes
/// outside `%x20-%x7E`, and `%` itself, become `%XX` with upper-case hex
/// digits; everything else stays as it is.
fn grpc_percent_encode(message: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7E).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    out
}

/// Whether `headers` declare a gRPC request: `application/grpc`, alone or
/// with a `+format` suffix or parameters (gRPC-Web's `application/grpc-web`
/// is another protocol, answered over its own translation layer).
pub(crate) fn is_grpc(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let value = value.as_bytes();
    const GRPC: &[u8] = b"application/grpc";
    value.len() >= GRPC.len()
        && value[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(value.get(GRPC.len()), None | Some(b'+' | b';' | b' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(res: &Response<Bytes>) -> serde_json::Value {
        serde_json::from_slice(res.body()).unwrap()
    }

    #[test]
    fn missing_token_challenge_has_no_error_attribute() {
        let res = ErrorRenderer::json().render(&Rejection::missing_token());
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn invalid_token_challenge_names_the_error() {
        let res = ErrorRenderer::json().render(&Rejection::invalid_token("token expired"));
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(
            body(&res),
            serde_json::json!({
                "statusCode": 401,
                "error": "Unauthorized",
                "code": "invalid_token",
                "message": "token expired",
            })
        );
    }

    #[test]
    fn forbidden_carries_insufficient_scope_challenge() {
        let r = Rejection::new(ErrorCode::TenantNotPermitted, "no");
        let res = ErrorRenderer::json().render(&r);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_scope\""
        );
    }

    #[test]
    fn oauth_scope_refusal_names_the_scopes_in_the_challenge() {
        let r = Rejection::new(ErrorCode::InsufficientOAuthScope, "no")
            .with_oauth_scope("students:read students:write");
        let res = ErrorRenderer::json().render(&r);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_scope\", scope=\"students:read students:write\""
        );
        assert_eq!(body(&res)["code"], "INSUFFICIENT_OAUTH_SCOPE");
        // A scope that would break out of the quoted attribute is left out.
        for bad in ["a\"b", "a\\b", "a  b", "", "a\tb", "é"] {
            let r = Rejection::new(ErrorCode::InsufficientOAuthScope, "no").with_oauth_scope(bad);
            assert_eq!(
                r.www_authenticate().unwrap(),
                "Bearer error=\"insufficient_scope\"",
                "{bad:?}"
            );
        }
        assert_eq!(ErrorCode::RoleRequired.status(), StatusCode::FORBIDDEN);
        assert_eq!(ErrorCode::RoleRequired.as_str(), "ROLE_REQUIRED");
    }

    #[test]
    fn resource_metadata_is_named_in_every_challenge() {
        let url = ResourceMetadataUrl::new(
            "https://api.example.com/.well-known/oauth-protected-resource/students",
        )
        .unwrap();
        let attr = "resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/students\"";
        for (rejection, want) in [
            (Rejection::missing_token(), format!("Bearer {attr}")),
            (
                Rejection::invalid_token("x"),
                format!("Bearer error=\"invalid_token\", {attr}"),
            ),
            (
                Rejection::new(ErrorCode::PermissionDenied, "no"),
                format!("Bearer error=\"insufficient_scope\", {attr}"),
            ),
            (
                Rejection::new(ErrorCode::InsufficientOAuthScope, "no")
                    .with_oauth_scope("a:read b"),
                format!("Bearer error=\"insufficient_scope\", scope=\"a:read b\", {attr}"),
            ),
        ] {
            let rejection = rejection.with_resource_metadata(url.clone());
            assert_eq!(rejection.resource_metadata(), Some(&url));
            assert_eq!(rejection.www_authenticate().unwrap(), want.as_str());
        }
        // Statuses without a challenge stay without one.
        for code in [
            ErrorCode::XsrfMismatch,
            ErrorCode::InvalidRequest,
            ErrorCode::IamUnavailable,
        ] {
            let r = Rejection::new(code, "x").with_resource_metadata(url.clone());
            assert!(r.www_authenticate().is_none(), "{code}");
        }
        // A custom renderer gets it too.
        let custom = ErrorRenderer::custom(|rej| {
            let mut res = Response::new(Bytes::new());
            *res.status_mut() = rej.status();
            res
        });
        let res = custom.render(&Rejection::missing_token().with_resource_metadata(url));
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            format!("Bearer {attr}").as_str()
        );
    }

    #[test]
    fn bad_request_and_unavailable_have_no_challenge() {
        let res = ErrorRenderer::json().render(&Rejection::new(ErrorCode::InvalidRequest, "x"));
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
        let res = ErrorRenderer::json().render(&Rejection::iam_unavailable("down"));
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(res.headers()[header::RETRY_AFTER], "5");
        assert_eq!(body(&res)["code"], "IAM_UNAVAILABLE");
    }

    #[test]
    fn problem_json_renderer() {
        let res = ErrorRenderer::problem_json().render(&Rejection::invalid_token("bad signature"));
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let b = body(&res);
        assert_eq!(b["status"], 401);
        assert_eq!(b["title"], "Unauthorized");
        assert_eq!(b["detail"], "bad signature");
        assert_eq!(b["code"], "invalid_token");
    }

    #[test]
    fn custom_renderer_still_gets_the_challenge() {
        let r = ErrorRenderer::custom(|rej| {
            let mut res = Response::new(Bytes::from(format!("denied: {}", rej.code())));
            *res.status_mut() = rej.status();
            res
        });
        let res = r.render(&Rejection::invalid_token("x"));
        assert_eq!(res.body(), &Bytes::from("denied: invalid_token"));
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
    }

    #[test]
    fn grpc_message_is_percent_encoded_as_the_grpc_spec_says() {
        assert_eq!(grpc_percent_encode("plain text, 100"), "plain text, 100");
        assert_eq!(grpc_percent_encode("50% off"), "50%25 off");
        assert_eq!(grpc_percent_encode("a\nb\tc"), "a%0Ab%09c");
        assert_eq!(grpc_percent_encode("caf\u{e9}"), "caf%C3%A9");
        assert_eq!(grpc_percent_encode("\u{7f}~ "), "%7F~ ");
        // What a client decodes is what was meant.
        let message = "the x-org header is required: 100% \u{2713}\r\n";
        let encoded = grpc_percent_encode(message);
        assert!(
            encoded.bytes().all(|b| (0x20..=0x7E).contains(&b)),
            "{encoded}"
        );
        assert_eq!(percent_decode(&encoded), message);
    }

    fn percent_decode(encoded: &str) -> String {
        let mut decoded = Vec::new();
        let mut bytes = encoded.bytes();
        while let Some(b) = bytes.next() {
            if b == b'%' {
                let hex = [bytes.next().unwrap(), bytes.next().unwrap()];
                decoded.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap(), 16).unwrap());
            } else {
                decoded.push(b);
            }
        }
        String::from_utf8(decoded).unwrap()
    }

    proptest::proptest! {
        /// Whatever a message holds, the gRPC answer carries it in a valid
        /// `grpc-message` that decodes back to it.
        #[test]
        fn every_message_survives_the_grpc_renderer(message in proptest::prelude::any::<String>()) {
            let res = ErrorRenderer::grpc().render(&Rejection::new(ErrorCode::PermissionDenied, message.clone()));
            let header = res.headers().get("grpc-message").expect("always set");
            proptest::prop_assert_eq!(percent_decode(header.to_str().unwrap()), message);
        }
    }

    #[test]
    fn grpc_renderer_answers_trailers_only_with_the_status_in_the_headers() {
        for (rejection, status) in [
            (Rejection::missing_token(), "16"),
            (Rejection::invalid_token("the token has expired"), "16"),
            (Rejection::new(ErrorCode::InsufficientScope, "no"), "7"),
            (Rejection::new(ErrorCode::ForbiddenFields, "no"), "7"),
            (Rejection::new(ErrorCode::InvalidRequest, "two"), "3"),
            (Rejection::new(ErrorCode::TenantRequired, "x-org"), "3"),
            (Rejection::new(ErrorCode::PayloadTooLarge, "big"), "3"),
            (Rejection::new(ErrorCode::UnsupportedMediaType, "xml"), "3"),
            (Rejection::new(ErrorCode::Internal, "wiring"), "13"),
            (Rejection::iam_unavailable("down"), "14"),
        ] {
            let res = ErrorRenderer::grpc().render(&rejection);
            let code = rejection.code();
            assert_eq!(res.status(), StatusCode::OK, "{code}");
            assert_eq!(res.headers()[header::CONTENT_TYPE], "application/grpc");
            assert_eq!(res.headers()["grpc-status"], status, "{code}");
            assert_eq!(code.grpc_code().to_string(), status);
            assert_eq!(res.headers()["grpc-message"], rejection.message());
            assert_eq!(res.headers()["iam-guard-code"], code.as_str());
            assert!(
                res.body().is_empty(),
                "{code}: a trailers-only answer has no body"
            );
            assert!(res.headers().get(header::CONTENT_LENGTH).is_none());
        }
    }

    #[test]
    fn grpc_renderer_keeps_the_challenges_and_retry_after() {
        let res = ErrorRenderer::grpc().render(&Rejection::missing_token());
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let res = ErrorRenderer::grpc().render(&Rejection::new(ErrorCode::PermissionDenied, "no"));
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_scope\""
        );
        let res = ErrorRenderer::grpc().render(&Rejection::iam_unavailable("down"));
        assert_eq!(res.headers()[header::RETRY_AFTER], "5");
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(
            format!("{:?}", ErrorRenderer::grpc()),
            "ErrorRenderer(\"grpc\")"
        );
        assert!(!ErrorRenderer::grpc().is_http_only());
        assert!(ErrorRenderer::json().is_http_only());
        assert!(ErrorRenderer::problem_json().is_http_only());
        assert!(!ErrorRenderer::custom(|_| Response::new(Bytes::new())).is_http_only());
    }

    #[test]
    fn grpc_content_types_are_recognised() {
        let with = |value: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_grpc(&headers)
        };
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC+json",
            "application/grpc; charset=utf-8",
        ] {
            assert!(with(yes), "{yes}");
        }
        for no in [
            "application/json",
            "application/grpc-web",
            "application/grpc-web+proto",
            "application/grpcx",
            "application/gr",
            "text/plain",
        ] {
            assert!(!with(no), "{no}");
        }
        assert!(!is_grpc(&http::HeaderMap::new()));
    }
}
