//! Claim value checks: a claim that must hold one of a few configured
//! strings (`token_use`, `client_id`, `azp`, `tid`), checked before a token
//! is admitted. Configured through
//! [`TokenValidation::claim_equals`](super::verify::TokenValidation::claim_equals)
//! and
//! [`TokenValidation::client_id_instead_of_audience`](super::verify::TokenValidation::client_id_instead_of_audience).

use std::fmt;

use serde_json::Value;

use crate::principal::{ClaimLookup, ClaimPath};

/// Why a check exists, for the `Debug` output of a validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckKind {
    /// `claim_equals`.
    Equals,
    /// `client_id_instead_of_audience`: stands in for the `aud` check.
    ClientId,
}

/// One claim that must be one of `allowed` (or an array holding one).
#[derive(Clone)]
pub(crate) struct ClaimCheck {
    path: ClaimPath,
    /// The claim's name as configured: what a refusal names. Never the
    /// token's value, which may be personal data or attacker-chosen text.
    name: Box<str>,
    allowed: Box<[Box<str>]>,
    kind: CheckKind,
}

impl fmt::Debug for ClaimCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimCheck")
            .field("claim", &self.path)
            .field("allowed", &self.allowed)
            .field("kind", &self.kind)
            .finish()
    }
}

impl ClaimCheck {
    pub(crate) fn new<I, S>(path: ClaimPath, allowed: I, kind: CheckKind) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let name = path.as_str().into();
        Self {
            path,
            name,
            allowed: allowed
                .into_iter()
                .map(|s| s.into().into_boxed_str())
                .collect(),
            kind,
        }
    }

    /// The configured claim name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether `claims` pass: the claim is a string equal to an allowed
    /// value, or an array holding at least one such string. Anything else
    /// (missing, `null`, a number, an object, an empty list of allowed
    /// values) fails closed.
    pub(crate) fn admits(&self, claims: &impl ClaimLookup) -> bool {
        let allowed = |v: &Value| {
            v.as_str()
                .is_some_and(|s| self.allowed.iter().any(|a| **a == *s))
        };
        match self.path.lookup(claims) {
            Some(Value::Array(items)) => items.iter().any(allowed),
            Some(value) => allowed(value),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(map) => map,
            _ => unreachable!("test claims are objects"),
        }
    }

    fn check(path: &str, allowed: &[&str]) -> ClaimCheck {
        ClaimCheck::new(
            ClaimPath::new(path),
            allowed.iter().copied(),
            CheckKind::Equals,
        )
    }

    #[test]
    fn a_string_or_an_array_holding_an_allowed_value_passes() {
        let c = check("token_use", &["access", "both"]);
        assert!(c.admits(&claims(json!({"token_use": "access"}))));
        assert!(c.admits(&claims(json!({"token_use": ["id", "both"]}))));
        assert!(!c.admits(&claims(json!({"token_use": "id"}))));
        assert!(!c.admits(&claims(json!({"token_use": ["id"]}))));
        assert!(!c.admits(&claims(json!({"token_use": []}))));
    }

    #[test]
    fn missing_and_other_shapes_fail_closed() {
        let c = check("token_use", &["access"]);
        for bad in [
            json!({}),
            json!({"token_use": null}),
            json!({"token_use": 1}),
            json!({"token_use": true}),
            json!({"token_use": {"access": true}}),
            json!({"token_use": [["access"]]}),
            json!({"token_use": "ACCESS"}),
            json!({"token_use": "access "}),
        ] {
            assert!(!c.admits(&claims(bad.clone())), "{bad}");
        }
        let none_allowed = check("token_use", &[]);
        assert!(!none_allowed.admits(&claims(json!({"token_use": "access"}))));
    }

    #[test]
    fn nested_paths_are_followed_and_named() {
        let c = check("ext.token_use", &["access"]);
        assert_eq!(c.name(), "ext.token_use");
        assert!(c.admits(&claims(json!({"ext": {"token_use": "access"}}))));
        assert!(!c.admits(&claims(json!({"ext.token_use": "id", "ext": {}}))));
        assert!(!c.admits(&claims(json!({"ext": "access"}))));
    }
}
