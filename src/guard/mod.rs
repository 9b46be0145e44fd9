//! The guards: one Tower `Layer` + `Service` pair per file.

pub mod action;
pub mod auth;
pub mod field_filter;
pub mod field_write;
pub mod future;
pub mod permission;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod protected;
pub mod require;
pub mod scope;
