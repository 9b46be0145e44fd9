//! The matrix as CSV (RFC 4180), one row per subject, route and method.

use std::fmt::Write as _;

use super::{compute::AccessMatrix, escape};

/// The header of [`AccessMatrix::to_csv`].
pub(super) const HEADER: &str = "role,name,method,path,requirement,outcome,status,code";

impl AccessMatrix {
    /// The matrix as CSV: the header
    /// `role,name,method,path,requirement,outcome,status,code`, then one
    /// record per row and route (`allowed` with an empty status and code,
    /// or `refused` with the status and code a request gets). Records end
    /// with CRLF; fields are quoted per RFC 4180, and a field a spreadsheet
    /// would run as a formula is prefixed with `'`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(HEADER);
        out.push_str("\r\n");
        for row in self.rows() {
            for (route, outcome) in self.routes().iter().zip(row.outcomes()) {
                let (verdict, status, code) = match outcome.code() {
                    None => ("allowed", String::new(), ""),
                    Some(code) => ("refused", code.status().as_u16().to_string(), code.as_str()),
                };
                let _ = write!(
                    out,
                    "{},{},{},{},{},{verdict},{status},{}\r\n",
                    escape::csv(&row.label()),
                    escape::csv(row.name().unwrap_or_default()),
                    escape::csv(route.method().as_str()),
                    escape::csv(route.path()),
                    escape::csv(&route.access().to_string()),
                    escape::csv(code),
                );
            }
        }
        out
    }
}
