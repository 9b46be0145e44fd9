//! Which issuer a token claims, and whether a configured issuer — a URL or
//! a multi-tenant template — admits it.
//!
//! A configured issuer is matched exactly, byte for byte, unless it holds
//! the placeholder `{tenantid}` (Microsoft Entra's multi-tenant issuer
//! `https://login.microsoftonline.com/{tenantid}/v2.0`, as its `/common`
//! and `/organizations` discovery documents publish it). A template admits
//! a token whose `iss` is the template with `{tenantid}` replaced by the
//! token's tenant claim (`tid` by default), when that tenant is on the
//! allow-list or any tenant was explicitly allowed. A template with
//! neither admits nothing.
//!
//! [`peek`] reads `iss` (and the tenant claim) from a token that has not
//! been verified yet, so a guard trusting several issuers can pick the one
//! whose keys to use before any key is fetched. What it reads chooses
//! keys and nothing more: the verified claims are checked again after the
//! signature.

use std::{collections::BTreeSet, fmt};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{validation::VerifyError, verify::json_object_segment};
use crate::principal::{ClaimLookup, ClaimPath};

/// The placeholder a multi-tenant issuer template holds.
pub(crate) const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// The longest tenant id a template accepts. Real ones are GUIDs.
const MAX_TENANT_LEN: usize = 128;

/// Which tenants an issuer template admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tenants {
    /// None: the template was given without a decision, which admits no
    /// token rather than every tenant of a public multi-tenant IdP.
    Undecided,
    /// Exactly these.
    Only(BTreeSet<String>),
    /// Any tenant, by explicit choice.
    Any,
}

/// A configured issuer: an exact URL or a `{tenantid}` template.
#[derive(Clone)]
pub(crate) enum IssuerPattern {
    Exact(String),
    Template {
        /// The configured template, as written (for discovery, logs).
        template: String,
        prefix: String,
        suffix: String,
        tenants: Tenants,
        tenant_claim: ClaimPath,
    },
}

impl fmt::Debug for IssuerPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(issuer) => f.debug_tuple("Exact").field(issuer).finish(),
            Self::Template {
                template, tenants, ..
            } => f
                .debug_struct("Template")
                .field("template", template)
                .field("tenants", tenants)
                .finish(),
        }
    }
}

impl IssuerPattern {
    /// `issuer` as configured: a template when it holds the placeholder
    /// exactly once.
    pub(crate) fn new(issuer: String) -> Self {
        match issuer.split_once(TENANT_PLACEHOLDER) {
            Some((prefix, suffix)) if !suffix.contains(TENANT_PLACEHOLDER) => Self::Template {
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
                template: issuer,
                tenants: Tenants::Undecided,
                tenant_claim: ClaimPath::new("tid"),
            },
            // Twice is not a template we can match unambiguously: it is
            // kept as an exact string, which no real token carries.
            _ => Self::Exact(issuer),
        }
    }

    /// The issuer as configured (the template itself for a template).
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Exact(issuer) => issuer,
            Self::Template { template, .. } => template,
        }
    }

    /// The issuers this pattern admits, when they can be listed.
    pub(crate) fn concrete(&self) -> Vec<String> {
        match self {
            Self::Exact(issuer) => vec![issuer.clone()],
            Self::Template {
                prefix,
                suffix,
                tenants: Tenants::Only(list),
                ..
            } => list
                .iter()
                .filter(|t| is_tenant_id(t))
                .map(|t| format!("{prefix}{t}{suffix}"))
                .collect(),
            Self::Template { .. } => Vec::new(),
        }
    }

    pub(crate) fn is_template(&self) -> bool {
        matches!(self, Self::Template { .. })
    }

    /// Sets the tenants a template admits; no effect on an exact issuer.
    pub(crate) fn set_tenants(&mut self, allowed: Tenants) {
        if let Self::Template { tenants, .. } = self {
            *tenants = allowed;
        }
    }

    /// Sets the claim a template reads the tenant from.
    pub(crate) fn set_tenant_claim(&mut self, claim: ClaimPath) {
        if let Self::Template { tenant_claim, .. } = self {
            *tenant_claim = claim;
        }
    }

    /// Whether a token with `iss` and the tenant read by
    /// [`tenant_of`](Self::tenant_of) comes from this issuer.
    pub(crate) fn admits(&self, iss: Option<&str>, tenant: Option<&str>) -> bool {
        let Some(iss) = iss else {
            return false;
        };
        match self {
            Self::Exact(issuer) => iss == issuer,
            Self::Template {
                prefix,
                suffix,
                tenants,
                ..
            } => {
                let Some(tenant) = tenant.filter(|t| is_tenant_id(t)) else {
                    return false;
                };
                let allowed = match tenants {
                    Tenants::Undecided => false,
                    Tenants::Only(list) => list.contains(tenant),
                    Tenants::Any => true,
                };
                // `iss` must be the template filled with this very tenant:
                // a token of tenant A cannot claim tenant B's issuer.
                allowed
                    && iss.len() == prefix.len() + tenant.len() + suffix.len()
                    && iss.starts_with(prefix.as_str())
                    && iss.ends_with(suffix.as_str())
                    && &iss[prefix.len()..iss.len() - suffix.len()] == tenant
            }
        }
    }

    /// The tenant claim of `claims`, for a template; `None` for an exact
    /// issuer, which needs none.
    pub(crate) fn tenant_of<'a>(&self, claims: &'a impl ClaimLookup) -> Option<&'a str> {
        match self {
            Self::Exact(_) => None,
            Self::Template { tenant_claim, .. } => tenant_claim.lookup(claims)?.as_str(),
        }
    }

    /// [`admits`](Self::admits) for verified claims.
    pub(crate) fn admits_claims(&self, claims: &impl ClaimLookup) -> bool {
        self.admits(
            claims.claim("iss").and_then(Value::as_str),
            self.tenant_of(claims),
        )
    }

    /// Whether [`peek`] must keep the whole payload for this pattern: a
    /// template whose tenant claim is not the top-level `tid`.
    pub(crate) fn needs_full_peek(&self) -> bool {
        matches!(self, Self::Template { tenant_claim, .. } if tenant_claim.as_str() != "tid")
    }

    /// [`admits`](Self::admits) for what [`peek`] read.
    pub(crate) fn admits_peeked(&self, peeked: &Peeked) -> bool {
        let tenant = match self {
            Self::Exact(_) => None,
            Self::Template { tenant_claim, .. } => peeked.tenant(tenant_claim),
        };
        self.admits(peeked.iss.as_deref(), tenant)
    }
}

/// A tenant id a template may put in an issuer URL: a URL path segment of
/// unreserved characters, so it cannot add a path or a host.
fn is_tenant_id(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_LEN
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// What [`peek`] read from an unverified token.
#[derive(Debug, Default)]
pub(crate) struct Peeked {
    pub(crate) iss: Option<String>,
    /// Whether `iss` was there and not `null` (if not a string).
    iss_present: bool,
    /// The whole payload, kept only when a template needs a tenant claim
    /// that is not the top-level `tid`.
    tid: Option<String>,
    claims: Option<Map<String, Value>>,
}

impl Peeked {
    /// Why no configured issuer admits this token, worded as the same
    /// problem is after the signature check.
    pub(crate) fn refusal(&self) -> VerifyError {
        if self.iss_present {
            VerifyError::Issuer
        } else {
            VerifyError::Claims("iss is missing or not valid".into())
        }
    }

    fn tenant<'a>(&'a self, claim: &ClaimPath) -> Option<&'a str> {
        match &self.claims {
            Some(claims) => claim.lookup(claims)?.as_str(),
            None if claim.as_str() == "tid" => self.tid.as_deref(),
            None => None,
        }
    }
}

/// The top-level members [`peek`] needs; the rest of the payload is
/// skipped without being built.
#[derive(Deserialize)]
struct IssuerClaims {
    #[serde(default)]
    iss: Option<Value>,
    #[serde(default)]
    tid: Option<Value>,
}

/// Reads `iss` (and `tid`) from the payload of an unverified token. With
/// `full`, the whole payload is kept, for a template whose tenant claim is
/// not the top-level `tid`.
///
/// # Errors
///
/// [`VerifyError::Malformed`] when the token is not three segments with a
/// base64url JSON-object payload. An `iss` that is not a string yields no
/// issuer, which no configured issuer admits.
pub(crate) fn peek(token: &str, full: bool) -> Result<Peeked, VerifyError> {
    let raw = json_object_segment(token, 1)?;
    let present = |v: &Option<Value>| !matches!(v, None | Some(Value::Null));
    let as_string = |v: Option<Value>| match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    if full {
        let mut claims = serde_json::from_slice::<Map<String, Value>>(&raw)
            .map_err(|_| VerifyError::Malformed)?;
        let iss = claims.remove("iss");
        return Ok(Peeked {
            iss_present: present(&iss),
            iss: as_string(iss),
            tid: None,
            claims: Some(claims),
        });
    }
    let read = serde_json::from_slice::<IssuerClaims>(&raw).map_err(|_| VerifyError::Malformed)?;
    Ok(Peeked {
        iss_present: present(&read.iss),
        iss: as_string(read.iss),
        tid: as_string(read.tid),
        claims: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    fn template(tenants: Tenants) -> IssuerPattern {
        let mut pattern =
            IssuerPattern::new("https://login.example.com/{tenantid}/v2.0".to_owned());
        pattern.set_tenants(tenants);
        pattern
    }

    fn only(list: &[&str]) -> Tenants {
        Tenants::Only(list.iter().map(|t| (*t).to_owned()).collect())
    }

    fn token(payload: &Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b64(br#"{"alg":"RS256"}"#),
            b64(payload.to_string().as_bytes())
        )
    }

    #[test]
    fn an_exact_issuer_matches_byte_for_byte() {
        let exact = IssuerPattern::new("https://iam.test".to_owned());
        assert!(!exact.is_template());
        assert!(exact.admits(Some("https://iam.test"), None));
        assert!(!exact.admits(Some("https://iam.test/"), None));
        assert!(!exact.admits(None, None));
    }

    #[test]
    fn a_template_admits_allowed_tenants_in_their_own_issuer() {
        let t = template(only(&["t1", "t2"]));
        assert!(t.is_template());
        let iss = |tenant: &str| format!("https://login.example.com/{tenant}/v2.0");
        assert!(t.admits(Some(&iss("t1")), Some("t1")));
        assert!(t.admits(Some(&iss("t2")), Some("t2")));
        // A third tenant, a disagreeing iss and tid, no tid at all.
        assert!(!t.admits(Some(&iss("t3")), Some("t3")));
        assert!(!t.admits(Some(&iss("t1")), Some("t2")));
        assert!(!t.admits(Some(&iss("t1")), None));
        // A tenant that would add a path or a host.
        let any = template(Tenants::Any);
        assert!(any.admits(Some(&iss("whoever")), Some("whoever")));
        assert!(!any.admits(Some(&iss("a/b")), Some("a/b")));
        assert!(!any.admits(Some("https://login.example.com//v2.0"), Some("")));
        assert!(!any.admits(
            Some("https://login.example.com/t1/v2.0/extra"),
            Some("t1/v2.0/extra")
        ));
    }

    #[test]
    fn only_listed_tenants_make_concrete_issuers() {
        let t = template(only(&["t1", "a/b", "t2"]));
        assert_eq!(
            t.concrete(),
            [
                "https://login.example.com/t1/v2.0",
                "https://login.example.com/t2/v2.0"
            ]
        );
        assert!(template(Tenants::Any).concrete().is_empty());
        assert!(template(Tenants::Undecided).concrete().is_empty());
        let exact = IssuerPattern::new("https://iam.test".to_owned());
        assert_eq!(exact.concrete(), ["https://iam.test"]);
    }

    #[test]
    fn an_undecided_template_admits_nobody() {
        let t = template(Tenants::Undecided);
        assert!(!t.admits(Some("https://login.example.com/t1/v2.0"), Some("t1")));
    }

    #[test]
    fn two_placeholders_are_no_template() {
        let p = IssuerPattern::new("https://x/{tenantid}/{tenantid}".to_owned());
        assert!(!p.is_template());
    }

    #[test]
    fn peek_reads_iss_and_tid_of_an_unverified_token() {
        let t = token(&json!({"iss": "https://iam.test", "tid": "t1", "sub": "u"}));
        let peeked = peek(&t, false).unwrap();
        assert_eq!(peeked.iss.as_deref(), Some("https://iam.test"));
        assert_eq!(peeked.tenant(&ClaimPath::new("tid")), Some("t1"));
        let nested = token(&json!({"iss": "x", "ext": {"tenant": "t9"}}));
        assert_eq!(
            peek(&nested, true)
                .unwrap()
                .tenant(&ClaimPath::new("ext.tenant")),
            Some("t9")
        );
    }

    #[test]
    fn peek_refuses_garbage_and_names_a_missing_issuer() {
        for bad in ["", "a.b", "a.b.c.d", "a.!!!.c", &token(&json!(["iss"]))] {
            assert_eq!(
                peek(bad, false).unwrap_err(),
                VerifyError::Malformed,
                "{bad}"
            );
            assert_eq!(
                peek(bad, true).unwrap_err(),
                VerifyError::Malformed,
                "{bad}"
            );
        }
        for (payload, refusal) in [
            (json!({"iss": 7}), VerifyError::Issuer),
            (json!({"iss": ["https://iam.test"]}), VerifyError::Issuer),
            (
                json!({"iss": null}),
                VerifyError::Claims("iss is missing or not valid".into()),
            ),
            (
                json!({"sub": "u"}),
                VerifyError::Claims("iss is missing or not valid".into()),
            ),
        ] {
            for full in [false, true] {
                let peeked = peek(&token(&payload), full).unwrap();
                assert!(peeked.iss.is_none(), "{payload}");
                assert_eq!(peeked.refusal(), refusal, "{payload}");
            }
        }
    }
}
