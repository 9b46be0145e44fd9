//! Tokens and keys: finding the token, fetching and caching the IAM's
//! JWKS, and verifying tokens against it (or against an explicitly
//! configured shared secret).

mod algorithm;
pub mod certificate;
mod claim_check;
pub mod discovery;
pub mod dpop;
mod hot_tokens;
#[cfg(feature = "jwks-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
pub mod http;
#[cfg(feature = "jwks-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
pub mod introspection;
pub(crate) mod issuer;
mod jose;
pub mod jwks;
mod keys;
mod registered_claims;
pub mod secret;
pub mod source;
pub mod token;
mod token_cache;
mod validation;
mod verified;
pub mod verify;
