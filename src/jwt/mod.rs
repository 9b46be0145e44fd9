//! Tokens and keys: finding the token, fetching and caching the IAM's
//! JWKS, and verifying tokens against it.

pub mod discovery;
#[cfg(feature = "jwks-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
pub mod http;
pub mod jwks;
mod keys;
pub mod source;
pub mod token;
mod token_cache;
pub mod verify;
