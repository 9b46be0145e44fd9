//! Where permissions come from and how a request loads them once.

pub mod memo;
#[cfg(feature = "jwks-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
pub mod remote;
pub mod source;
