//! The guards: one Tower `Layer` + `Service` pair per file.

pub mod auth;
