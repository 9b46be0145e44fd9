//! [`DpopError`]: why a DPoP proof, or the way a token was presented with
//! one, was refused.

/// A DPoP request refused. Messages are for the client and never carry
/// the proof or the token.
///
/// The guard answers [`NonceRequired`](Self::NonceRequired) with 401
/// `use_dpop_nonce` and a fresh `DPoP-Nonce` header,
/// [`ReplayCacheUnavailable`](Self::ReplayCacheUnavailable) with 503
/// `IAM_UNAVAILABLE`, [`NotBound`](Self::NotBound),
/// [`BoundTokenAsBearer`](Self::BoundTokenAsBearer) and
/// [`DpopRequired`](Self::DpopRequired) with 401 `invalid_token`, and every
/// other variant with 401 `invalid_dpop_proof` (RFC 9449 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// The `DPoP` scheme without a `DPoP` header.
    #[error("the DPoP proof is missing")]
    Missing,
    /// Two `DPoP` headers (RFC 9449 §4.3, check 1).
    #[error("more than one DPoP proof was sent")]
    Multiple,
    /// Not a compact JWS of three strict base64url segments, a header or
    /// payload that is not a JSON object, or over the size limit.
    #[error("the DPoP proof is not a well-formed JWT")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ must be dpop+jwt")]
    Type,
    /// `alg` is not on the allow-list (never `none`, never a MAC).
    #[error("the DPoP proof's alg is not accepted")]
    Algorithm,
    /// A header member this crate does not implement (`crit`).
    #[error("the DPoP proof's header is not accepted: {0}")]
    Header(&'static str),
    /// The `jwk` is missing, malformed or not a key of the proof's `alg`.
    #[error("the DPoP proof's jwk is not valid: {0}")]
    Key(&'static str),
    /// The `jwk` holds private key material.
    #[error("the DPoP proof's jwk holds a private key")]
    PrivateKey,
    /// The signature does not verify with the `jwk`.
    #[error("the DPoP proof's signature is not valid")]
    Signature,
    /// A required claim is missing or has the wrong type.
    #[error("the DPoP proof's claims are not valid: {0}")]
    Claim(&'static str),
    /// `htm` is not the request's method.
    #[error("the DPoP proof is for another HTTP method")]
    Method,
    /// `htu` is not the request's URL.
    #[error("the DPoP proof is for another URL")]
    Url,
    /// `iat` is outside the accepted window.
    #[error("the DPoP proof is too old or issued in the future")]
    IssuedAt,
    /// The proof's `jti` was seen before within the window.
    #[error("the DPoP proof was already used")]
    Replayed,
    /// `ath` is missing or is not the hash of the access token sent.
    #[error("the DPoP proof is not for this access token")]
    AccessTokenHash,
    /// The proof's key is not the key the token is bound to (`cnf.jkt`).
    #[error("the DPoP proof's key is not the key the access token is bound to")]
    KeyMismatch,
    /// A server nonce is required and the proof has none, or an old one.
    #[error("the DPoP proof needs a fresh server nonce")]
    NonceRequired,
    /// A token that is not DPoP-bound, sent with the `DPoP` scheme.
    #[error("the access token is not DPoP-bound")]
    NotBound,
    /// A DPoP-bound token sent as a bearer token.
    #[error("a DPoP-bound access token must be sent with the DPoP scheme")]
    BoundTokenAsBearer,
    /// A bearer token where only DPoP is accepted.
    #[error("this resource accepts DPoP-bound access tokens only")]
    DpopRequired,
    /// The shared replay cache could not be asked: whether the proof was
    /// used before cannot be known.
    #[error("the DPoP replay cache cannot be reached")]
    ReplayCacheUnavailable,
}
