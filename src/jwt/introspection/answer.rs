//! Reading and judging an introspection answer (RFC 7662 §2.2): pure, no
//! I/O, no clock of its own (the caller passes `now`).

use std::time::Duration;

use serde_json::{Map, Value};

use super::IntrospectionError;
use crate::{
    jwt::{jose::numeric_date, source::FetchError},
    principal::{ClaimMapping, Identity},
};

/// What an answer is checked against: the configuration of one
/// introspector.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    pub(super) issuer: String,
    /// Empty: `aud` is not checked.
    pub(super) audiences: Vec<String>,
    pub(super) claims: ClaimMapping,
}

/// An answer this service accepts.
#[derive(Debug)]
pub(super) struct Active {
    pub(super) identity: Identity,
    /// The answer's `exp`, in seconds (a fraction allowed), if it had one.
    pub(super) exp: Option<f64>,
}

/// A verdict against the token, and for how long it may be remembered.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) error: IntrospectionError,
    /// A bound below the configured inactive TTL: a token refused only
    /// because its `nbf` is ahead is asked about again once it is not.
    pub(super) ttl_cap: Option<Duration>,
}

impl From<IntrospectionError> for Refusal {
    fn from(error: IntrospectionError) -> Self {
        Self {
            error,
            ttl_cap: None,
        }
    }
}

/// The outcome of judging one answer.
#[derive(Debug)]
pub(super) enum Judged {
    /// Active, and acceptable here (boxed: an identity is large beside a
    /// refusal).
    Active(Box<Active>),
    /// A verdict against the token (cacheable).
    Refused(Refusal),
    /// Not an RFC 7662 answer: the IAM's fault, not the token's (never
    /// cached).
    Garbage(FetchError),
}

/// Judges the answer `body` at `now` (seconds since the epoch) by `rules`.
///
/// Only `active` exactly `true` is active (RFC 7662 §2.2 makes it a
/// REQUIRED boolean): a missing or non-boolean `active` is an answer we
/// cannot read, not a verdict, so it is neither trusted nor cached. Every
/// member of an active answer is kept as a claim, `cnf` included, with
/// `iss` added when the IAM left it out.
pub(super) fn judge(body: &[u8], rules: &Rules, now: f64) -> Judged {
    let mut claims = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return garbage("the introspection answer is not a JSON object"),
        Err(_) => return garbage("the introspection answer is not JSON"),
    };
    match claims.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return refused(IntrospectionError::Inactive),
        _ => return garbage("the introspection answer has no boolean `active`"),
    }
    match check(&claims, rules, now) {
        Ok(exp) => {
            if !claims.contains_key("iss") {
                // Principal::issuer reads `iss`, and per-user state is keyed
                // by issuer: the issuer we asked is the one that vouched.
                claims.insert("iss".into(), Value::String(rules.issuer.clone()));
            }
            match rules.claims.identity(claims) {
                Ok(identity) => Judged::Active(Box::new(Active { identity, exp })),
                Err(message) => refused(IntrospectionError::Invalid(message)),
            }
        }
        Err(refusal) => Judged::Refused(refusal),
    }
}

/// The registered members of an active answer; returns its `exp`.
fn check(claims: &Map<String, Value>, rules: &Rules, now: f64) -> Result<Option<f64>, Refusal> {
    let invalid = |m| Refusal::from(IntrospectionError::Invalid(m));
    // The IAM we asked may front several issuers; a token it says another
    // issuer minted is not ours to accept.
    if let Some(iss) = claims.get("iss") {
        if iss.as_str() != Some(rules.issuer.as_str()) {
            return Err(invalid("the token was issued by another issuer"));
        }
    }
    let exp = match claims.get("exp") {
        None => None,
        Some(v) => Some(numeric_date(v).ok_or_else(|| invalid("exp is not a NumericDate"))?),
    };
    // The IAM judged `exp` by its clock; by ours it must not have passed
    // either, or the cache could serve the token past it.
    if exp.is_some_and(|exp| exp <= now) {
        return Err(IntrospectionError::Inactive.into());
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = numeric_date(nbf).ok_or_else(|| invalid("nbf is not a NumericDate"))?;
        if nbf > now {
            return Err(Refusal {
                error: IntrospectionError::Invalid("the token is not valid yet"),
                // `None` (the configured TTL) for an nbf too far ahead
                // to be a Duration.
                ttl_cap: Duration::try_from_secs_f64(nbf - now).ok(),
            });
        }
    }
    if !rules.audiences.is_empty() && !has_audience(claims.get("aud"), &rules.audiences) {
        return Err(invalid("the token is not for this audience"));
    }
    // RFC 7662 lets an IAM introspect refresh tokens too; one is never a
    // credential for a resource server.
    if claims
        .get("token_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("refresh_token"))
    {
        return Err(invalid("a refresh token is not an access token"));
    }
    Ok(exp)
}

/// Whether `aud` (a string or an array of strings, RFC 7662 §2.2) names
/// one of `audiences`.
fn has_audience(aud: Option<&Value>, audiences: &[String]) -> bool {
    let ours = |a: &str| audiences.iter().any(|ours| ours == a);
    match aud {
        Some(Value::String(a)) => ours(a),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).any(ours),
        _ => false,
    }
}

fn garbage(why: &str) -> Judged {
    Judged::Garbage(FetchError::Invalid(why.into()))
}

fn refused(error: IntrospectionError) -> Judged {
    Judged::Refused(error.into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: f64 = 1_800_000_000.0;
    const ISSUER: &str = "https://iam.example.com";

    fn rules() -> Rules {
        Rules {
            issuer: ISSUER.into(),
            audiences: Vec::new(),
            claims: ClaimMapping::default().user_id("client_id"),
        }
    }

    fn judged(answer: Value, rules: &Rules) -> Judged {
        judge(answer.to_string().as_bytes(), rules, NOW)
    }

    fn active(answer: Value, rules: &Rules) -> Active {
        match judged(answer, rules) {
            Judged::Active(active) => *active,
            other => panic!("not active: {other:?}"),
        }
    }

    fn refusal(answer: Value, rules: &Rules) -> Refusal {
        match judged(answer, rules) {
            Judged::Refused(refusal) => refusal,
            other => panic!("not refused: {other:?}"),
        }
    }

    fn is_garbage(body: &[u8]) -> bool {
        matches!(judge(body, &rules(), NOW), Judged::Garbage(_))
    }

    #[test]
    fn an_active_answer_keeps_every_member_and_maps_the_identity() {
        let got = active(
            json!({
                "active": true,
                "client_id": "svc-1",
                "tenantId": "school-1",
                "roles": ["teacher"],
                "scope": "students:read",
                "exp": NOW + 60.0,
                "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
            }),
            &rules(),
        );
        assert_eq!(got.exp, Some(NOW + 60.0));
        let id = got.identity;
        assert_eq!(id.user_id, "svc-1");
        assert_eq!(id.tenant.as_deref(), Some("school-1"));
        assert_eq!(id.roles[0].name(), "teacher");
        assert_eq!(
            id.oauth_scopes.iter().collect::<Vec<_>>(),
            ["students:read"]
        );
        let claims = id.claims.as_map();
        assert_eq!(
            claims["cnf"]["jkt"],
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
        // Absent from the answer: the configured issuer vouched.
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["active"], true);
    }

    #[test]
    fn only_the_boolean_true_is_active() {
        let inactive = refusal(json!({"active": false}), &rules());
        assert_eq!(inactive.error, IntrospectionError::Inactive);
        assert_eq!(inactive.ttl_cap, None);
        for unreadable in [
            json!({"active": "true"}),
            json!({"active": 1}),
            json!({"active": null}),
            json!({"client_id": "svc-1"}),
        ] {
            assert!(
                matches!(judged(unreadable.clone(), &rules()), Judged::Garbage(_)),
                "{unreadable}"
            );
        }
    }

    #[test]
    fn anything_but_a_json_object_is_garbage() {
        for body in [
            &b""[..],
            b"not json",
            b"[{\"active\": true}]",
            b"true",
            b"\"active\"",
            b"{\"active\": true",
        ] {
            assert!(is_garbage(body), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn another_issuer_is_refused_and_ours_accepted() {
        let answer = |iss: Value| json!({"active": true, "client_id": "c", "iss": iss});
        assert!(matches!(
            refusal(answer(json!("https://evil.example")), &rules()).error,
            IntrospectionError::Invalid(_)
        ));
        // A trailing slash is another issuer (exact match, like the JWT path).
        assert!(matches!(
            judged(answer(json!(format!("{ISSUER}/"))), &rules()),
            Judged::Refused(_)
        ));
        assert!(matches!(
            judged(answer(json!([ISSUER])), &rules()),
            Judged::Refused(_)
        ));
        assert_eq!(
            active(answer(json!(ISSUER)), &rules()).identity.user_id,
            "c"
        );
    }

    #[test]
    fn an_exp_that_passed_is_inactive_and_a_bad_one_invalid() {
        for exp in [NOW, NOW - 1.0, 0.0] {
            let r = refusal(
                json!({"active": true, "client_id": "c", "exp": exp}),
                &rules(),
            );
            assert_eq!(r.error, IntrospectionError::Inactive, "{exp}");
        }
        for exp in [json!("soon"), json!(-5), json!(null)] {
            let r = refusal(
                json!({"active": true, "client_id": "c", "exp": exp}),
                &rules(),
            );
            assert!(matches!(r.error, IntrospectionError::Invalid(_)), "{exp}");
        }
        // A fraction is compared as a number.
        let got = active(
            json!({"active": true, "client_id": "c", "exp": NOW + 0.5}),
            &rules(),
        );
        assert_eq!(got.exp, Some(NOW + 0.5));
        assert_eq!(
            active(json!({"active": true, "client_id": "c"}), &rules()).exp,
            None
        );
    }

    #[test]
    fn a_future_nbf_is_refused_only_until_it_comes() {
        let r = refusal(
            json!({"active": true, "client_id": "c", "nbf": NOW + 3.0}),
            &rules(),
        );
        assert!(matches!(r.error, IntrospectionError::Invalid(_)));
        assert_eq!(r.ttl_cap, Some(Duration::from_secs(3)));
        active(
            json!({"active": true, "client_id": "c", "nbf": NOW}),
            &rules(),
        );
        let bad = refusal(
            json!({"active": true, "client_id": "c", "nbf": "now"}),
            &rules(),
        );
        assert!(matches!(bad.error, IntrospectionError::Invalid(_)));
    }

    #[test]
    fn the_audience_is_a_string_or_an_array_holding_one_of_ours() {
        let rules = Rules {
            audiences: vec!["students-api".into(), "grades-api".into()],
            ..rules()
        };
        let answer = |aud: Value| json!({"active": true, "client_id": "c", "aud": aud});
        active(answer(json!("grades-api")), &rules);
        active(answer(json!(["billing-api", 7, "students-api"])), &rules);
        for other in [
            json!("billing-api"),
            json!(["billing-api"]),
            json!([]),
            json!({"students-api": true}),
            json!(null),
        ] {
            assert!(
                matches!(
                    refusal(answer(other.clone()), &rules).error,
                    IntrospectionError::Invalid(_)
                ),
                "{other}"
            );
        }
        assert!(matches!(
            judged(json!({"active": true, "client_id": "c"}), &rules),
            Judged::Refused(_)
        ));
        // Without configured audiences, `aud` is not looked at.
        active(answer(json!("anything")), &self::rules());
    }

    #[test]
    fn a_refresh_token_is_refused_and_other_types_pass() {
        for refresh in ["refresh_token", "Refresh_Token"] {
            let r = refusal(
                json!({"active": true, "client_id": "c", "token_type": refresh}),
                &rules(),
            );
            assert!(
                matches!(r.error, IntrospectionError::Invalid(_)),
                "{refresh}"
            );
        }
        for fine in ["Bearer", "DPoP", "access_token"] {
            active(
                json!({"active": true, "client_id": "c", "token_type": fine}),
                &rules(),
            );
        }
    }

    #[test]
    fn claims_the_mapping_cannot_read_are_invalid() {
        // Default mapping: `sub`, which a client-credentials answer lacks.
        let default = Rules {
            claims: ClaimMapping::default(),
            ..rules()
        };
        let r = refusal(json!({"active": true, "client_id": "c"}), &default);
        assert_eq!(r.error, IntrospectionError::Invalid("token has no subject"));
        let r = refusal(
            json!({"active": true, "client_id": "c", "roles": 5}),
            &rules(),
        );
        assert!(matches!(r.error, IntrospectionError::Invalid(_)));
    }
}
