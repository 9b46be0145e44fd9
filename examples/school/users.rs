//! The demo users shared by the school example and the standalone dev
//! IAM: who they are and what their tokens claim.

use serde_json::{json, Value};

/// The tenant of the demo data.
pub(crate) const TENANT: &str = "school-1";

/// Demo users: name → (user id, roles). Every role of the bundled
/// catalogue that the README's walkthrough uses, and the demo school's
/// custom role.
pub(crate) const DEMO_USERS: &[(&str, &str, &[&str])] = &[
    ("admin", "u-admin", &["admin"]),
    ("secretary", "u-secretary", &["hr_secretary"]),
    ("teacher", "u-teacher", &["internal_teacher"]),
    ("accountant", "u-accountant", &["accountant"]),
    ("parent", "u-parent", &["parent"]),
    ("student", "u-student", &["student"]),
    ("support", "u-support", &["support_teacher"]),
];

/// The claims the IAM puts in a demo user's token (besides `iss`, `aud`,
/// `exp`).
pub(crate) fn demo_claims(name: &str) -> Option<Value> {
    let (_, sub, roles) = DEMO_USERS.iter().find(|(n, _, _)| *n == name)?;
    Some(json!({"sub": sub, "tenantId": TENANT, "roles": roles, "name": name}))
}
