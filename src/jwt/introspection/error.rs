//! [`IntrospectionError`]: why an opaque token was not admitted, and the
//! answer each reason gets.

use crate::jwt::source::FetchError;

/// Introspecting an opaque access token did not admit it.
///
/// Every variant but [`Unavailable`](Self::Unavailable) is a verdict about
/// the token (401 `invalid_token`); `Unavailable` says nothing about it
/// (503: never a guess). No message ever contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// The token is not one this service sends the IAM: empty, longer
    /// than 8 KiB, or not visible ASCII (RFC 6750 §2.1 `b64token`s and
    /// every opaque format in use are). Refused before any call.
    #[error("the token is malformed")]
    Malformed,
    /// The IAM answered `active: false` (unknown, expired, revoked, or
    /// not for this client to see), or the answer's `exp` has passed.
    #[error("the token is not active")]
    Inactive,
    /// The IAM answered `active: true`, but the answer fails this
    /// service's checks: another issuer, another audience, a refresh
    /// token, a `nbf` in the future, or claims the claim mapping cannot
    /// read.
    #[error("{0}")]
    Invalid(&'static str),
    /// The IAM could not be asked, or its answer was not an RFC 7662
    /// answer: unreachable, a timeout, a non-2xx status (a 401 means it
    /// refused this service's own credentials), a body over the size cap,
    /// not a JSON object, or no boolean `active`. Never cached.
    #[error("token introspection failed: {0}")]
    Unavailable(FetchError),
}
