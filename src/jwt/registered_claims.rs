//! The registered claims every token is checked for after its signature
//! (RFC 7519 §4.1): `exp` and `iss` present, `aud` when audiences are
//! configured, `exp` and `nbf` against the clock with the leeway, and `aud`
//! naming one of the configured audiences. Read from the claims as parsed
//! once for the principal, never from a second decoding of the payload.

use serde_json::Value;

use crate::principal::ClaimLookup;

use super::{
    jose::numeric_date,
    validation::{TokenValidation, VerifyError},
};

/// A NumericDate as the clock comparison reads it: a non-negative integer,
/// or a finite non-negative number rounded to the nearest second. Anything
/// else (a string, a negative number) is not a date.
fn whole_seconds(value: &Value) -> Option<u64> {
    let n = value.as_number()?;
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|secs| secs.is_finite() && *secs >= 0.0 && *secs < u64::MAX as f64)
            .map(|secs| secs.round() as u64)
    })
}

/// A string or an array of strings (RFC 7519 §4.1.1, §4.1.3).
fn string_or_strings(value: Option<&Value>) -> Option<StringOrStrings<'_>> {
    match value? {
        Value::String(one) => Some(StringOrStrings::One(one)),
        Value::Array(items) => items
            .iter()
            .all(Value::is_string)
            .then_some(StringOrStrings::Many(items)),
        _ => None,
    }
}

enum StringOrStrings<'a> {
    One(&'a str),
    /// Every item is a string.
    Many(&'a [Value]),
}

impl StringOrStrings<'_> {
    fn any(&self, mut accepted: impl FnMut(&str) -> bool) -> bool {
        match self {
            Self::One(one) => accepted(one),
            Self::Many(items) => items.iter().filter_map(Value::as_str).any(accepted),
        }
    }
}

/// Checks the registered claims of a token whose signature verified, at
/// `now` (Unix time, fraction kept), and answers its `exp` in whole seconds,
/// rounded down: a cached verification never outlives the token.
pub(super) fn check(
    validation: &TokenValidation,
    claims: &impl ClaimLookup,
    now: f64,
) -> Result<u64, VerifyError> {
    let missing = |claim: &str| VerifyError::Claims(format!("{claim} is missing or not valid"));
    let exp = claims
        .claim("exp")
        .filter(|exp| whole_seconds(exp).is_some())
        .and_then(numeric_date)
        .ok_or_else(|| missing("exp"))?;
    if string_or_strings(claims.claim("iss")).is_none() {
        return Err(missing("iss"));
    }
    let audience = if validation.audiences.is_empty() {
        None
    } else {
        Some(string_or_strings(claims.claim("aud")).ok_or_else(|| missing("aud"))?)
    };
    let nbf = match claims.claim("nbf") {
        None | Some(Value::Null) => None,
        Some(nbf) => Some(
            whole_seconds(nbf)
                .ok_or_else(|| VerifyError::Claims("nbf has the wrong type".into()))?,
        ),
    };
    // RFC 7519 §4.1.4: not accepted on or after `exp` (plus the leeway),
    // compared as a number: a NumericDate may carry a fraction (§2).
    if exp + validation.leeway.as_secs_f64() <= now {
        return Err(VerifyError::Expired);
    }
    let whole_now = now as u64;
    if nbf.is_some_and(|nbf| nbf > whole_now.saturating_add(validation.leeway.as_secs())) {
        return Err(VerifyError::NotYetValid);
    }
    // RFC 7519 §4.1.3: a service must find itself among the audiences; one
    // of the token's audiences being ours is enough.
    if let Some(audience) = audience {
        if !audience.any(|aud| validation.audiences.iter().any(|ours| ours == aud)) {
            return Err(VerifyError::Audience);
        }
    }
    Ok(exp as u64)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn checked(validation: &TokenValidation, claims: Value) -> Result<(), VerifyError> {
        check(validation, claims.as_object().unwrap(), NOW as f64).map(|_| ())
    }

    fn base() -> TokenValidation {
        TokenValidation::new("https://iam").leeway(Duration::from_secs(60))
    }

    #[test]
    fn exp_and_iss_are_required_and_must_have_their_types() {
        let v = base();
        assert_eq!(
            checked(&v, json!({"iss": "https://iam", "exp": NOW + 10})),
            Ok(())
        );
        let missing = |c: &str| Err(VerifyError::Claims(format!("{c} is missing or not valid")));
        assert_eq!(checked(&v, json!({"iss": "https://iam"})), missing("exp"));
        assert_eq!(
            checked(&v, json!({"iss": "x", "exp": "soon"})),
            missing("exp")
        );
        assert_eq!(checked(&v, json!({"iss": "x", "exp": -1})), missing("exp"));
        assert_eq!(
            checked(&v, json!({"iss": "x", "exp": null})),
            missing("exp")
        );
        assert_eq!(checked(&v, json!({"exp": NOW + 10})), missing("iss"));
        assert_eq!(
            checked(&v, json!({"iss": 7, "exp": NOW + 10})),
            missing("iss")
        );
        assert_eq!(
            checked(&v, json!({"iss": ["a", 1], "exp": NOW + 10})),
            missing("iss")
        );
        // A fractional NumericDate is a date (RFC 7519 §2).
        assert_eq!(
            checked(&v, json!({"iss": "x", "exp": NOW as f64 + 0.5})),
            Ok(())
        );
    }

    #[test]
    fn the_clock_with_leeway() {
        let v = base();
        let at = |exp: u64, nbf: Value| checked(&v, json!({"iss": "x", "exp": exp, "nbf": nbf}));
        assert_eq!(at(NOW - 59, json!(null)), Ok(()));
        // On `exp` plus the leeway the token is no longer accepted.
        assert_eq!(at(NOW - 60, json!(null)), Err(VerifyError::Expired));
        let fraction = json!({"iss": "x", "exp": (NOW - 60) as f64 + 0.5});
        let exp = check(&v, fraction.as_object().unwrap(), NOW as f64);
        assert_eq!(exp, Ok(NOW - 60), "kept no later than exp: rounded down");
        assert_eq!(at(NOW + 600, json!(NOW + 60)), Ok(()));
        assert_eq!(
            at(NOW + 600, json!(NOW + 61)),
            Err(VerifyError::NotYetValid)
        );
        assert_eq!(
            at(NOW + 600, json!("tomorrow")),
            Err(VerifyError::Claims("nbf has the wrong type".into()))
        );
    }

    #[test]
    fn audience_when_configured() {
        let v = base().audience(["api-a", "api-b"]);
        let aud = |aud: Value| checked(&v, json!({"iss": "x", "exp": NOW + 10, "aud": aud}));
        assert_eq!(aud(json!("api-b")), Ok(()));
        assert_eq!(aud(json!(["other", "api-a"])), Ok(()));
        assert_eq!(aud(json!("API-A")), Err(VerifyError::Audience));
        assert_eq!(aud(json!([])), Err(VerifyError::Audience));
        assert_eq!(
            aud(json!(["api-a", 3])),
            Err(VerifyError::Claims("aud is missing or not valid".into()))
        );
        assert_eq!(
            checked(&v, json!({"iss": "x", "exp": NOW + 10})),
            Err(VerifyError::Claims("aud is missing or not valid".into()))
        );
        // Without configured audiences, `aud` is not looked at.
        assert_eq!(
            checked(&base(), json!({"iss": "x", "exp": NOW + 10, "aud": 5})),
            Ok(())
        );
    }
}
