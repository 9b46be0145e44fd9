//! Checking one DPoP proof (RFC 9449 §4.3) for one request and one access
//! token. Pure apart from the clock the caller passes in: the replay cache
//! and nonces are the caller's next step.

use aws_lc_rs::digest;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{error::DpopError, jwk::ProofKey, replay::ProofId, DpopAlgorithm};
use crate::jwt::jose::{numeric_date, object_segment};

/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 512;

/// The rules a proof is checked against, from the guard's configuration.
#[derive(Debug)]
pub(super) struct ProofRules<'a> {
    pub(super) algorithms: &'a [DpopAlgorithm],
    pub(super) max_age: u64,
    pub(super) leeway: u64,
    pub(super) max_len: usize,
}

/// What the request supplies.
#[derive(Debug)]
pub(super) struct ProofRequest<'a> {
    pub(super) method: &'a str,
    /// Normalized, see `htu`.
    pub(super) url: &'a str,
    pub(super) access_token: &'a str,
    pub(super) now: u64,
}

/// A proof whose signature and claims passed.
#[derive(Debug)]
pub(super) struct CheckedProof {
    /// RFC 7638 thumbprint of the proof's key.
    pub(super) thumbprint: String,
    pub(super) id: ProofId,
    /// When the proof's window closes (Unix seconds).
    pub(super) until: u64,
    pub(super) nonce: Option<String>,
}

/// Deserializing into structs makes serde refuse a duplicate member, which
/// a map would resolve to one of them.
#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: String,
    jwk: Option<Map<String, Value>>,
    #[serde(default)]
    crit: Option<Value>,
    #[serde(default)]
    b64: Option<Value>,
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<Value>,
    htm: Option<Value>,
    htu: Option<Value>,
    iat: Option<Value>,
    ath: Option<Value>,
    nonce: Option<Value>,
}

/// Checks `proof` in the order of RFC 9449 §4.3: form, header, signature,
/// then the claims against the request.
pub(super) fn check(
    proof: &str,
    rules: &ProofRules<'_>,
    request: &ProofRequest<'_>,
) -> Result<CheckedProof, DpopError> {
    if proof.len() > rules.max_len {
        return Err(DpopError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed);
    };
    let header: Header =
        serde_json::from_slice(&object_segment(header_b64).ok_or(DpopError::Malformed)?)
            .map_err(|_| DpopError::Malformed)?;
    if !header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("dpop+jwt") || t.eq_ignore_ascii_case("application/dpop+jwt")
    }) {
        return Err(DpopError::Type);
    }
    // Exact, case-sensitive names: "none", "HS256" and "es256" are never on
    // the list, whatever it holds.
    let alg = rules
        .algorithms
        .iter()
        .copied()
        .find(|a| a.name() == header.alg)
        .ok_or(DpopError::Algorithm)?;
    if header.crit.is_some() {
        return Err(DpopError::Header("crit names an unsupported extension"));
    }
    if header.b64.is_some() {
        return Err(DpopError::Header("unencoded payloads are not accepted"));
    }
    let jwk = header.jwk.ok_or(DpopError::Key("the header has no jwk"))?;
    let key = ProofKey::from_jwk(&jwk, alg)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| DpopError::Malformed)?;
    let signed = &proof[..header_b64.len() + 1 + payload_b64.len()];
    key.verify(signed.as_bytes(), &signature)?;

    let claims: Claims =
        serde_json::from_slice(&object_segment(payload_b64).ok_or(DpopError::Malformed)?)
            .map_err(|_| DpopError::Malformed)?;
    let text = |value: Option<Value>, what: &'static str| match value {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(DpopError::Claim(what)),
    };
    let jti = text(claims.jti, "jti is missing")?;
    if jti.len() > MAX_JTI_LEN {
        return Err(DpopError::Claim("jti is too long"));
    }
    if text(claims.htm, "htm is missing")? != request.method {
        return Err(DpopError::Method);
    }
    let htu = text(claims.htu, "htu is missing")?;
    // RFC 9449 §4.2: htu is the URI "without query and fragment parts". A
    // proof that names one was made for a different request line than
    // the one it signs for, or by a client that would sign anything.
    if htu.contains(['?', '#']) || super::htu::normalize(&htu).as_deref() != Some(request.url) {
        return Err(DpopError::Url);
    }
    let iat = match &claims.iat {
        None | Some(Value::Null) => return Err(DpopError::Claim("iat is missing")),
        // Whole seconds: the window is counted in seconds.
        Some(iat) => numeric_date(iat).ok_or(DpopError::Claim("iat is not a NumericDate"))? as u64,
    };
    let earliest = request.now.saturating_sub(rules.max_age + rules.leeway);
    if iat < earliest || iat > request.now + rules.leeway {
        return Err(DpopError::IssuedAt);
    }
    let expected_ath = URL_SAFE_NO_PAD.encode(digest::digest(
        &digest::SHA256,
        request.access_token.as_bytes(),
    ));
    match claims.ath {
        Some(Value::String(ath)) if ath == expected_ath => {}
        _ => return Err(DpopError::AccessTokenHash),
    }
    let nonce = match claims.nonce {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(n),
        Some(_) => return Err(DpopError::Claim("nonce is not a string")),
    };
    let thumbprint = key.thumbprint().to_owned();
    Ok(CheckedProof {
        id: ProofId::new(&thumbprint, &jti),
        thumbprint,
        // Past this, the proof's iat is refused anyway.
        until: iat + rules.max_age + rules.leeway + 1,
        nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ProofRules<'static> {
        ProofRules {
            algorithms: &[
                DpopAlgorithm::Es256,
                DpopAlgorithm::EdDsa,
                DpopAlgorithm::Rs256,
            ],
            max_age: 60,
            leeway: 10,
            max_len: 8 * 1024,
        }
    }

    fn request() -> ProofRequest<'static> {
        ProofRequest {
            method: "GET",
            url: "https://api.test/me",
            access_token: "token",
            now: 1_000_000,
        }
    }

    proptest::proptest! {
        // Whatever a client sends as a proof, the answer is a refusal,
        // never a panic.
        #[test]
        fn any_text_is_refused_without_panicking(proof in "\\PC{0,300}") {
            proptest::prop_assert!(check(&proof, &rules(), &request()).is_err());
        }

        #[test]
        fn any_three_segments_are_refused_without_panicking(
            header in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            signature in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
            let proof = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
            proptest::prop_assert!(check(&proof, &rules(), &request()).is_err());
        }

        #[test]
        fn json_headers_of_any_shape_are_refused_without_panicking(
            typ in proptest::option::of("[a-z+/]{0,12}"),
            alg in "[A-Za-z0-9]{0,6}",
            kty in "[A-Z]{0,4}",
            x in "[A-Za-z0-9_-]{0,50}",
        ) {
            let header = serde_json::json!({
                "typ": typ, "alg": alg, "jwk": {"kty": kty, "crv": "P-256", "x": x, "y": x}
            });
            let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
            let proof = format!("{}.{}.AAAA", b64(&header), b64(&serde_json::json!({"jti": "j"})));
            proptest::prop_assert!(check(&proof, &rules(), &request()).is_err());
        }
    }
}
