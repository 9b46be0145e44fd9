//! Parsing a JWKS document into verification keys, one key at a time.
//!
//! A JWKS is parsed key by key so that one key we cannot use (a symmetric
//! `oct` key, an encryption key, an unknown curve, garbage members) is
//! skipped instead of failing the whole set: an IAM that adds an encryption
//! key must not take every service down.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse},
    Algorithm, DecodingKey,
};
use serde_json::Value;

/// The key families a signature algorithm can be verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyFamily {
    fn of(alg: Algorithm) -> Option<Self> {
        use Algorithm::*;
        match alg {
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(Self::Rsa),
            ES256 => Some(Self::EcP256),
            ES384 => Some(Self::EcP384),
            EdDSA => Some(Self::Ed25519),
            // HMAC algorithms verify with a shared secret, which a public
            // JWKS never holds; accepting them is the classic RS/HS
            // confusion attack.
            _ => None,
        }
    }
}

/// One usable public key from the JWKS.
pub(crate) struct VerifyingKey {
    pub(crate) kid: Arc<str>,
    family: KeyFamily,
    /// The JWK's `alg`, when it pins one.
    alg: Option<Algorithm>,
    pub(crate) decoding: DecodingKey,
    /// The JWK as published, to notice a kid re-published with new material.
    pub(crate) fingerprint: Box<str>,
    /// Set when the key leaves the JWKS; verified tokens signed by it are
    /// then no longer served from the token cache.
    revoked: AtomicBool,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("alg", &self.alg)
            .field("revoked", &self.is_revoked())
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Whether this key may verify a token signed with `alg` (RFC 8725
    /// §3.1: the key's type and pinned algorithm must agree with the
    /// token's).
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        KeyFamily::of(alg) == Some(self.family) && self.alg.is_none_or(|pinned| pinned == alg)
    }

    pub(crate) fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

/// Why a JWK was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub(crate) kid: Option<String>,
    pub(crate) reason: &'static str,
}

/// The outcome of parsing a JWKS document.
#[derive(Debug)]
pub(crate) struct ParsedJwks {
    pub(crate) keys: HashMap<Arc<str>, VerifyingKey>,
    pub(crate) skipped: Vec<Skipped>,
}

/// Parses a JWKS document.
///
/// # Errors
///
/// Only when the document itself is unusable: not JSON, no `keys` array.
/// Individual keys that cannot be used are reported in `skipped`.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<ParsedJwks, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no `keys` array")?;
    let mut parsed = ParsedJwks {
        keys: HashMap::with_capacity(keys.len()),
        skipped: Vec::new(),
    };
    for raw in keys {
        let kid = raw.get("kid").and_then(Value::as_str);
        match parse_key(raw) {
            Ok(key) => {
                if parsed.keys.contains_key(&key.kid) {
                    // Two keys under one kid make key selection ambiguous;
                    // keep neither rather than guess.
                    parsed.keys.remove(&key.kid);
                    parsed.skipped.push(Skipped {
                        kid: kid.map(str::to_owned),
                        reason: "duplicate kid",
                    });
                } else {
                    parsed.keys.insert(key.kid.clone(), key);
                }
            }
            Err(reason) => parsed.skipped.push(Skipped {
                kid: kid.map(str::to_owned),
                reason,
            }),
        }
    }
    Ok(parsed)
}

fn parse_key(raw: &Value) -> Result<VerifyingKey, &'static str> {
    let jwk: Jwk = serde_json::from_value(raw.clone()).map_err(|_| "not a valid JWK")?;
    let kid: Arc<str> = match jwk.common.key_id.as_deref() {
        Some(kid) if !kid.is_empty() => kid.into(),
        _ => return Err("no kid"),
    };
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err("not a signature key"),
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.iter().any(|op| matches!(op, KeyOperations::Verify)) {
            return Err("key_ops does not allow verify");
        }
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyFamily::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => KeyFamily::EcP256,
            EllipticCurve::P384 => KeyFamily::EcP384,
            _ => return Err("unsupported curve"),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => KeyFamily::Ed25519,
            _ => return Err("unsupported curve"),
        },
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are never accepted"),
        _ => return Err("unsupported key type"),
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(ka) => {
            let alg = ka
                .to_string()
                .parse::<Algorithm>()
                .map_err(|_| "alg is not a signature algorithm")?;
            if KeyFamily::of(alg) != Some(family) {
                return Err("alg does not match the key type");
            }
            Some(alg)
        }
    };
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| "key material is invalid")?;
    Ok(VerifyingKey {
        kid,
        family,
        alg,
        decoding,
        fingerprint: raw.to_string().into(),
        revoked: AtomicBool::new(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    fn rsa(kid: &str) -> Value {
        json!({"kty": "RSA", "kid": kid, "n": N, "e": "AQAB"})
    }

    #[test]
    fn bad_keys_are_skipped_and_good_keys_kept() {
        let doc = json!({"keys": [
            rsa("good"),
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "garbage", "n": 42},
            {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "XYZ", "kid": "weird"},
            {"kty": "RSA", "n": N, "e": "AQAB"},
            "not an object",
        ]});
        let parsed = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.keys.len(), 1);
        assert!(parsed.keys.contains_key("good"));
        assert_eq!(parsed.skipped.len(), 7);
        let reason = |kid: &str| {
            parsed
                .skipped
                .iter()
                .find(|s| s.kid.as_deref() == Some(kid))
                .unwrap()
                .reason
        };
        assert_eq!(reason("sym"), "symmetric keys are never accepted");
        assert_eq!(reason("enc"), "not a signature key");
    }

    #[test]
    fn unusable_documents_are_errors() {
        assert!(parse_jwks(b"<html>").is_err());
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"{\"keys\": {}}").is_err());
        assert!(parse_jwks(b"{\"keys\": []}").unwrap().keys.is_empty());
    }

    #[test]
    fn duplicate_kids_are_dropped() {
        let doc = json!({"keys": [rsa("a"), rsa("a"), rsa("b")]});
        let parsed = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert!(!parsed.keys.contains_key("a"));
        assert!(parsed.keys.contains_key("b"));
    }

    #[test]
    fn key_type_and_alg_must_agree_with_token_alg() {
        let mut pinned = rsa("k");
        pinned["alg"] = json!("RS256");
        let doc = json!({"keys": [pinned, rsa("free")]});
        let parsed = parse_jwks(doc.to_string().as_bytes()).unwrap();
        let k = &parsed.keys["k"];
        assert!(k.accepts(Algorithm::RS256));
        assert!(!k.accepts(Algorithm::PS256));
        assert!(!k.accepts(Algorithm::HS256));
        assert!(!k.accepts(Algorithm::ES256));
        let free = &parsed.keys["free"];
        assert!(free.accepts(Algorithm::PS256));
        assert!(!free.accepts(Algorithm::EdDSA));
        assert!(!free.accepts(Algorithm::HS256));
    }

    #[test]
    fn mismatched_alg_on_the_key_is_skipped() {
        let mut k = rsa("k");
        k["alg"] = json!("ES256");
        let parsed = parse_jwks(json!({"keys": [k]}).to_string().as_bytes()).unwrap();
        assert!(parsed.keys.is_empty());
    }
}
