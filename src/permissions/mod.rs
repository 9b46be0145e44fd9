//! Where permissions come from and how a request loads them once.
//!
//! Nothing here renders an answer: sources return a
//! [`PermissionError`](source::PermissionError) and the guards decide what
//! the client is told.

pub mod cache;
pub mod hosted_catalogue;
pub(crate) mod memo;
pub mod oauth_scopes;
#[cfg(feature = "jwks-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
pub mod remote;
pub(crate) mod role_sets;
pub mod source;
pub mod union;
