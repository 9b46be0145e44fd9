//! The one deny path. Every refusal anywhere in the crate is answered by
//! [`Scene::deny`]: it renders with the renderer configured on the auth
//! layer, emits one audit event with one field set, and counts the
//! decision.
//!
//! # The audit event
//!
//! Target `iam_guard::audit`, level WARN, one event per deny and per
//! super-user bypass, always with these fields (`-` when unknown):
//!
//! | field | value |
//! |---|---|
//! | `outcome` | `deny` or `bypass` |
//! | `guard` | `auth`, `requirement`, `field_write`, `field_filter`, `undeclared`, `extractor` |
//! | `status` | the HTTP status (`-` for a bypass) |
//! | `code` | the [`ErrorCode`] (`-` for a bypass) |
//! | `reason` | why, for the operator (may say more than the client message; never the token) |
//! | `user`, `tenant` | the caller and active tenant, once the token is verified |
//! | `method` | the request method |
//! | `route` | the matched route template (`/students/{id}`) or the declared gRPC method (`/school.v1.Students/GetStudent`), never the raw path, which can carry record ids |
//! | `requirement` | the route's requirement |
//! | `keys` | for FieldWriteGuard, the offending body keys (never sent to the client) |
//!
//! Wiring bugs (a guard without the layer it needs) also log an ERROR on
//! target `iam_guard::wiring` saying what to add.
//!
//! The mapping of lower layers' errors to answers lives here too: `jwt`
//! and `permissions` return their own error types and never know how a
//! refusal is rendered.

use std::fmt;

use bytes::Bytes;
use http::{Extensions, Method, Response, StatusCode};

use super::context::{NoPermissions, Policy, RequestContext};
#[cfg(feature = "jwks-http")]
use crate::jwt::introspection::IntrospectionError;
use crate::{
    jwt::token::AuthScheme,
    jwt::{
        certificate::CertificateBindingError, dpop::DpopError, token::TokenError,
        verify::VerifyError,
    },
    metrics,
    model::{custom_fields::CustomFieldError, Denial, Requirement},
    permissions::source::PermissionError,
    rejection::{ErrorCode, ErrorRenderer, Rejection},
};

/// Which guard decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    Auth,
    Requirement,
    FieldWrite,
    FieldFilter,
    #[cfg(any(feature = "axum", feature = "grpc"))]
    Undeclared,
    #[cfg(any(feature = "axum", feature = "grpc"))]
    Extractor,
}

impl Guard {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Requirement => "requirement",
            Self::FieldWrite => "field_write",
            Self::FieldFilter => "field_filter",
            #[cfg(any(feature = "axum", feature = "grpc"))]
            Self::Undeclared => "undeclared",
            #[cfg(any(feature = "axum", feature = "grpc"))]
            Self::Extractor => "extractor",
        }
    }
}

/// The name of a route a bundle declared, put in the request extensions by
/// a bundle that routes outside any framework router (the gRPC methods of
/// `GrpcMethods`): a name from the
/// configuration, never the raw path.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredRoute(pub(crate) std::sync::Arc<str>);

/// The matched route template of a request, kept for a decision taken
/// after the request is gone (FieldFilter decides on the response).
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteName {
    declared: Option<DeclaredRoute>,
    #[cfg(feature = "axum")]
    matched: Option<axum::extract::MatchedPath>,
}

impl RouteName {
    pub(crate) fn of(extensions: &Extensions) -> Self {
        Self {
            declared: extensions.get::<DeclaredRoute>().cloned(),
            #[cfg(feature = "axum")]
            matched: extensions.get::<axum::extract::MatchedPath>().cloned(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        if let Some(declared) = &self.declared {
            return &declared.0;
        }
        #[cfg(feature = "axum")]
        if let Some(matched) = &self.matched {
            return matched.as_str();
        }
        "-"
    }
}

/// The declared route or matched route template in `extensions`, or `-`:
/// never the raw path.
pub(crate) fn route_of(extensions: &Extensions) -> &str {
    if let Some(declared) = extensions.get::<DeclaredRoute>() {
        return &declared.0;
    }
    #[cfg(feature = "axum")]
    if let Some(matched) = extensions.get::<axum::extract::MatchedPath>() {
        return matched.as_str();
    }
    "-"
}

/// Who is refused where: everything a decision's answer and audit event
/// need.
pub(crate) struct Scene<'a> {
    guard: Guard,
    policy: Option<&'a Policy>,
    user: Option<&'a str>,
    tenant: Option<&'a str>,
    method: &'a Method,
    route: &'a str,
    requirement: Option<&'a Requirement>,
    /// The scheme the token came with, for the challenges.
    presented: Option<AuthScheme>,
    /// A gRPC call: answered as gRPC status unless the renderer is
    /// custom.
    grpc: bool,
}

impl<'a> Scene<'a> {
    pub(crate) fn new(guard: Guard, method: &'a Method, route: &'a str) -> Self {
        Self {
            guard,
            policy: None,
            user: None,
            tenant: None,
            method,
            route,
            requirement: None,
            presented: None,
            grpc: false,
        }
    }

    /// The caller, the configured renderer and the recorded requirement of
    /// `context`.
    pub(crate) fn within(mut self, context: &'a RequestContext) -> Self {
        self.policy = Some(context.policy());
        if let Some(principal) = context.principal() {
            self.user = Some(principal.user_id());
            self.tenant = principal.tenant_id();
        }
        if self.requirement.is_none() {
            self.requirement = context.requirement();
        }
        self.presented = self.presented.or(context.auth_scheme());
        self.grpc |= context.is_grpc();
        self
    }

    /// Same as [`within`](Self::within) when there is a context.
    pub(crate) fn within_opt(self, context: Option<&'a RequestContext>) -> Self {
        match context {
            Some(context) => self.within(context),
            None => self,
        }
    }

    /// The auth layer's configuration, before any context exists.
    pub(crate) fn policy(mut self, policy: &'a Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The verified caller, before any context exists.
    pub(crate) fn user(mut self, user: &'a str) -> Self {
        self.user = Some(user);
        self
    }

    /// The scheme the token was presented with, before any context
    /// exists.
    pub(crate) fn presented(mut self, scheme: AuthScheme) -> Self {
        self.presented = Some(scheme);
        self
    }

    /// Whether the request is a gRPC call, before any context exists.
    pub(crate) fn grpc(mut self, grpc: bool) -> Self {
        self.grpc = grpc;
        self
    }

    /// The requirement this decision is about.
    pub(crate) fn requirement(mut self, requirement: &'a Requirement) -> Self {
        self.requirement = Some(requirement);
        self
    }

    /// Refuses with `rejection`, its message as the reason.
    pub(crate) fn deny<B: From<Bytes>>(&self, rejection: &Rejection) -> Response<B> {
        self.deny_with(rejection, rejection.message(), &[])
    }

    /// Refuses with `rejection`; `reason` and `keys` go to the audit event
    /// only.
    pub(crate) fn deny_with<B: From<Bytes>>(
        &self,
        rejection: &Rejection,
        reason: &str,
        keys: &[String],
    ) -> Response<B> {
        let code = rejection.code().as_str();
        self.audit("deny", rejection.status().as_str(), code, reason, keys);
        metrics::decision(self.guard.as_str(), "deny", code);
        let default;
        let renderer = match self.policy {
            // A gRPC client can read no JSON body: the built-in HTTP
            // renderers yield to the gRPC one; a custom renderer decides
            // for itself.
            Some(policy) if !(self.grpc && policy.renderer.is_http_only()) => &policy.renderer,
            _ if self.grpc => {
                default = ErrorRenderer::grpc();
                &default
            }
            // No auth layer in front: nothing was configured.
            _ => {
                default = ErrorRenderer::default();
                &default
            }
        };
        // The layer's metadata URL and schemes go on every challenge it (or
        // a guard behind it) sends, whoever built the rejection; only those
        // that get a challenge pay for the copy.
        let challenged = matches!(
            rejection.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        );
        let metadata = self
            .policy
            .and_then(|p| p.resource_metadata.as_ref())
            .filter(|_| challenged && rejection.resource_metadata().is_none());
        let schemes = self
            .policy
            .and_then(|p| p.schemes.as_ref())
            .filter(|_| challenged);
        let completed;
        let rejection = if metadata.is_some() || schemes.is_some() {
            let mut copy = rejection.clone();
            if let Some(url) = metadata {
                copy = copy.with_resource_metadata(url.clone());
            }
            if let Some(schemes) = schemes {
                copy = copy.with_schemes(schemes.clone(), self.presented);
            }
            completed = copy;
            &completed
        } else {
            rejection
        };
        renderer.render(rejection).map(B::from)
    }

    /// Refuses a request that the guards cannot check because a layer is
    /// missing or misplaced: 500 `INTERNAL` saying what to add (it names
    /// layers, nothing about the caller), also logged for the operator.
    pub(crate) fn wiring<B: From<Bytes>>(&self, fix: &'static str) -> Response<B> {
        tracing::error!(
            target: "iam_guard::wiring",
            guard = self.guard.as_str(),
            route = self.route,
            "{fix}"
        );
        self.deny(&wiring_rejection(fix))
    }

    /// The answer to a request whose permissions cannot be had.
    pub(crate) fn no_permissions<B: From<Bytes>>(&self, why: &NoPermissions) -> Response<B> {
        match why {
            NoPermissions::NoSource => self.wiring(NO_SOURCE),
            // The source's detail is for the operator, not the client.
            NoPermissions::Unavailable(e) => {
                self.deny_with(&Rejection::from(why), &e.to_string(), &[])
            }
            NoPermissions::Anonymous => self.deny(&Rejection::from(why)),
        }
    }

    /// Records that a super user passed this guard unchecked.
    pub(crate) fn bypass(&self) {
        self.audit("bypass", "-", "-", "super-user bypass", &[]);
        metrics::decision(self.guard.as_str(), "bypass", "");
    }

    /// The one place an audit event is emitted.
    fn audit(&self, outcome: &str, status: &str, code: &str, reason: &str, keys: &[String]) {
        tracing::warn!(
            target: "iam_guard::audit",
            outcome,
            guard = self.guard.as_str(),
            status,
            code,
            reason,
            user = self.user.unwrap_or("-"),
            tenant = self.tenant.unwrap_or("-"),
            method = self.method.as_str(),
            route = self.route,
            requirement = %OrDash(self.requirement),
            keys = %Keys(keys),
        );
    }
}

struct OrDash<'a, T>(Option<&'a T>);

impl<T: fmt::Display> fmt::Display for OrDash<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

struct Keys<'a>(&'a [String]);

impl fmt::Display for Keys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for (i, key) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            // Keys come from the client's body: escape what could forge a
            // second field or line in a plain-text log.
            write!(f, "{}", key.escape_debug())?;
        }
        Ok(())
    }
}

/// The fix for a guard that needs permissions behind an auth layer without
/// a source.
pub(crate) const NO_SOURCE: &str =
    "no permission source on the auth layer: add JwtAuthGuardLayer::permissions(..)";

/// The 500 of a wiring bug: the message says which layer to add.
pub(crate) fn wiring_rejection(fix: &'static str) -> Rejection {
    Rejection::new(ErrorCode::Internal, fix)
}

/// 401 for an anonymous request (an optional auth layer let it through: a
/// guarded route still needs a token), 500 for a missing source, 503 when
/// the source fails.
impl From<&NoPermissions> for Rejection {
    fn from(why: &NoPermissions) -> Self {
        match why {
            NoPermissions::Anonymous => Rejection::missing_token(),
            NoPermissions::NoSource => wiring_rejection(NO_SOURCE),
            NoPermissions::Unavailable(e) => Rejection::from(e),
        }
    }
}

/// 400 for a malformed request, 403 for an XSRF mismatch, else 401.
impl From<TokenError> for Rejection {
    fn from(e: TokenError) -> Self {
        let code = match e {
            TokenError::Ambiguous | TokenError::UnreadableHeader => ErrorCode::InvalidRequest,
            TokenError::XsrfMismatch => ErrorCode::XsrfMismatch,
            _ => ErrorCode::InvalidToken,
        };
        Rejection::new(code, e.to_string())
    }
}

/// 503 when no keys can be had (never a guess), else 401 `invalid_token`.
impl From<&VerifyError> for Rejection {
    fn from(e: &VerifyError) -> Self {
        match e {
            VerifyError::KeysUnavailable => {
                Rejection::iam_unavailable("the IAM's signing keys cannot be obtained")
            }
            other => Rejection::invalid_token(other.to_string()),
        }
    }
}

/// 401 `invalid_dpop_proof` for a proof that fails a check, 401
/// `use_dpop_nonce` when a fresh nonce is needed (the guard adds it),
/// 401 `invalid_token` when the token and the scheme disagree, 503 when
/// the replay cache cannot answer.
impl From<&DpopError> for Rejection {
    fn from(e: &DpopError) -> Self {
        let code = match e {
            DpopError::NonceRequired => ErrorCode::UseDpopNonce,
            DpopError::ReplayCacheUnavailable => ErrorCode::IamUnavailable,
            DpopError::NotBound | DpopError::BoundTokenAsBearer | DpopError::DpopRequired => {
                ErrorCode::InvalidToken
            }
            _ => ErrorCode::InvalidDpopProof,
        };
        Rejection::new(code, e.to_string())
    }
}

/// 503 `IAM_UNAVAILABLE` when the IAM could not be asked about an opaque
/// token (its detail stays in the logs), else 401 `invalid_token`.
#[cfg(feature = "jwks-http")]
impl From<&IntrospectionError> for Rejection {
    fn from(e: &IntrospectionError) -> Self {
        match e {
            IntrospectionError::Unavailable(_) => {
                Rejection::iam_unavailable("the IAM cannot introspect the token")
            }
            other => Rejection::invalid_token(other.to_string()),
        }
    }
}

/// 401 `invalid_token`: a certificate-bound token without its
/// certificate.
impl From<&CertificateBindingError> for Rejection {
    fn from(e: &CertificateBindingError) -> Self {
        Rejection::invalid_token(e.to_string())
    }
}

/// 503 `IAM_UNAVAILABLE`: a service that cannot learn what a caller may do
/// must not guess. The source's detail stays in the logs.
impl From<&PermissionError> for Rejection {
    fn from(_: &PermissionError) -> Self {
        Rejection::iam_unavailable("the caller's permissions cannot be obtained")
    }
}

/// 403 with the denial's code ([`ErrorCode::from`] a [`Denial`], the
/// mapping the access matrix reports too).
impl From<Denial> for Rejection {
    fn from(denial: Denial) -> Self {
        let message = match denial {
            Denial::InsufficientScope => {
                "the caller has no access to this entity at the required level"
            }
            Denial::ActionNotPermitted => "the caller may not perform this action",
            Denial::PermissionDenied => "the caller lacks a required permission",
            Denial::InsufficientOAuthScope => "the access token lacks a required OAuth scope",
            Denial::RoleRequired => "the caller lacks a required role",
        };
        Rejection::new(ErrorCode::from(denial), message)
    }
}

/// A custom field error is the client's to fix: 400 `INVALID_BODY`, with
/// the field named in the message.
impl From<&CustomFieldError> for Rejection {
    fn from(e: &CustomFieldError) -> Self {
        Rejection::new(ErrorCode::InvalidBody, e.to_string())
    }
}

/// See `From<&CustomFieldError>`.
impl From<CustomFieldError> for Rejection {
    fn from(e: CustomFieldError) -> Self {
        Rejection::from(&e)
    }
}

/// 400 `INVALID_BODY` naming the field, in the default JSON format; use
/// `Rejection::from(&err)` with your own [`ErrorRenderer`] for another.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl axum::response::IntoResponse for CustomFieldError {
    fn into_response(self) -> axum::response::Response {
        ErrorRenderer::default()
            .render(&Rejection::from(&self))
            .map(axum::body::Body::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_joined_and_escaped() {
        assert_eq!(Keys(&[]).to_string(), "-");
        let keys = ["sensitive".to_owned(), "a\nb=c".to_owned()];
        assert_eq!(Keys(&keys).to_string(), "sensitive,a\\nb=c");
    }

    #[cfg(feature = "jwks-http")]
    #[test]
    fn an_introspection_outage_is_a_503_and_every_verdict_a_401() {
        use crate::jwt::source::FetchError;
        let down = IntrospectionError::Unavailable(FetchError::Status(500));
        assert_eq!(Rejection::from(&down).code(), ErrorCode::IamUnavailable);
        for verdict in [
            IntrospectionError::Malformed,
            IntrospectionError::Inactive,
            IntrospectionError::Invalid("the token is not for this audience"),
        ] {
            let rejection = Rejection::from(&verdict);
            assert_eq!(rejection.code(), ErrorCode::InvalidToken, "{verdict}");
            assert_eq!(rejection.status(), 401, "{verdict}");
        }
    }

    #[test]
    fn token_errors_map_to_their_status() {
        assert_eq!(Rejection::from(TokenError::Ambiguous).status(), 400);
        assert_eq!(Rejection::from(TokenError::UnreadableHeader).status(), 400);
        assert_eq!(
            Rejection::from(TokenError::XsrfMismatch).code(),
            ErrorCode::XsrfMismatch
        );
        for e in [
            TokenError::OtherScheme,
            TokenError::Empty,
            TokenError::TooLarge,
        ] {
            let r = Rejection::from(e);
            assert_eq!(r.code(), ErrorCode::InvalidToken, "{e}");
            assert_eq!(r.message(), e.to_string());
        }
    }

    #[test]
    fn keys_unavailable_is_a_503_and_everything_else_a_401() {
        assert_eq!(
            Rejection::from(&VerifyError::KeysUnavailable).code(),
            ErrorCode::IamUnavailable
        );
        let r = Rejection::from(&VerifyError::Expired);
        assert_eq!(r.code(), ErrorCode::InvalidToken);
        assert_eq!(r.message(), "the token has expired");
    }

    #[test]
    fn permission_errors_do_not_leak_their_detail() {
        let r = Rejection::from(&PermissionError::Unavailable("10.0.0.7 refused".into()));
        assert_eq!(r.code(), ErrorCode::IamUnavailable);
        assert!(!r.message().contains("10.0.0.7"));
    }

    #[test]
    fn custom_field_errors_become_invalid_body() {
        use crate::model::custom_fields::{
            CustomFieldDef, CustomFieldDefinitions, FieldType, WriteMode,
        };
        let defs = CustomFieldDefinitions::new([CustomFieldDef::new(
            "nickname",
            "anagraphic",
            FieldType::Text,
        )]);
        let err = defs
            .validate_body(
                &serde_json::json!({"anagraphic": {"customFields": {"nickname": 1}}}),
                WriteMode::Update,
            )
            .unwrap_err();
        let r = Rejection::from(&err);
        assert_eq!(r.status(), 400);
        assert_eq!(r.code(), ErrorCode::InvalidBody);
        assert!(
            r.message().contains("anagraphic.nickname"),
            "{}",
            r.message()
        );
    }
}
