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

use http::{HeaderValue, StatusCode};

use crate::{jwt::token::AuthScheme, model::Denial, resource_metadata::ResourceMetadataUrl};

pub(crate) use grpc::is_grpc;
pub use render::ErrorRenderer;

mod grpc;
mod render;

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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{header, Response};

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
}
