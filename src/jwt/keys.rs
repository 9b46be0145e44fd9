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
        Arc, OnceLock,
    },
};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde::Deserialize;
use serde_json::Value;

use super::{
    algorithm::{Algorithm, KeyFamily},
    validation::VerifyError,
};

/// The RSA algorithms, in the order of [`RsaKey::parsed`]'s slots.
const RSA_ALGORITHMS: [(Algorithm, &RsaParameters); 6] = [
    (Algorithm::RS256, &signature::RSA_PKCS1_2048_8192_SHA256),
    (Algorithm::RS384, &signature::RSA_PKCS1_2048_8192_SHA384),
    (Algorithm::RS512, &signature::RSA_PKCS1_2048_8192_SHA512),
    (Algorithm::PS256, &signature::RSA_PSS_2048_8192_SHA256),
    (Algorithm::PS384, &signature::RSA_PSS_2048_8192_SHA384),
    (Algorithm::PS512, &signature::RSA_PSS_2048_8192_SHA512),
];

/// An RSA key: aws-lc binds a parsed key to one algorithm (padding and
/// hash), and a JWK that pins none may verify any of six. Each is parsed
/// the first time a token uses it, then kept for the key's life.
struct RsaKey {
    n: Box<[u8]>,
    e: Box<[u8]>,
    parsed: [OnceLock<Option<ParsedPublicKey>>; 6],
}

impl RsaKey {
    fn parsed(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        let slot = RSA_ALGORITHMS.iter().position(|(a, _)| *a == alg)?;
        let params = RSA_ALGORITHMS[slot].1;
        self.parsed[slot]
            .get_or_init(|| {
                RsaPublicKeyComponents {
                    n: &*self.n,
                    e: &*self.e,
                }
                .to_parsed_public_key(params)
                .ok()
            })
            .as_ref()
    }
}

/// The key, parsed once, ready to check signatures.
enum Material {
    /// Boxed: six parse slots beside one parsed key.
    Rsa(Box<RsaKey>),
    /// An EC or Ed25519 key: one algorithm each, parsed when the JWKS is.
    Parsed(ParsedPublicKey),
}

/// One usable public key from the JWKS.
pub(crate) struct VerifyingKey {
    pub(crate) kid: Arc<str>,
    family: KeyFamily,
    /// The JWK's `alg`, when it pins one.
    alg: Option<Algorithm>,
    material: Material,
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
        alg.key_family() == Some(self.family) && self.alg.is_none_or(|pinned| pinned == alg)
    }

    /// Checks `signature` over `message` for a token signed with `alg`,
    /// which [`accepts`](Self::accepts) has admitted. ECDSA signatures are
    /// the fixed-size `r || s` of RFC 7518 §3.4 (never DER), Ed25519 ones
    /// are checked strictly by aws-lc.
    pub(crate) fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        let parsed = match &self.material {
            Material::Rsa(rsa) => rsa.parsed(alg).ok_or(VerifyError::KeyMismatch)?,
            Material::Parsed(parsed) => parsed,
        };
        parsed
            .verify_sig(message, signature)
            .map_err(|_| VerifyError::Signature)
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

/// The JWK members we read (RFC 7517 §4, RFC 7518 §6). Borrowed from the
/// parsed document; a member of the wrong JSON type makes the key
/// unusable, like a key of an unknown type.
#[derive(Deserialize)]
struct RawJwk<'a> {
    kty: &'a str,
    #[serde(default)]
    kid: Option<&'a str>,
    #[serde(default, rename = "use")]
    public_key_use: Option<&'a str>,
    #[serde(default)]
    key_ops: Option<Vec<&'a str>>,
    #[serde(default)]
    alg: Option<&'a str>,
    #[serde(default)]
    crv: Option<&'a str>,
    #[serde(default)]
    n: Option<&'a str>,
    #[serde(default)]
    e: Option<&'a str>,
    #[serde(default)]
    x: Option<&'a str>,
    #[serde(default)]
    y: Option<&'a str>,
}

/// Strict unpadded base64url (RFC 7515 §2): no padding, no other
/// alphabet, no stray bits after the last character.
fn base64url(member: Option<&str>) -> Result<Vec<u8>, &'static str> {
    member
        .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
        .ok_or("key material is invalid")
}

fn parse_key(raw: &Value) -> Result<VerifyingKey, &'static str> {
    let jwk = RawJwk::deserialize(raw).map_err(|_| "not a valid JWK")?;
    let kid: Arc<str> = match jwk.kid {
        Some(kid) if !kid.is_empty() => kid.into(),
        _ => return Err("no kid"),
    };
    match jwk.public_key_use {
        None | Some("sig") => {}
        Some(_) => return Err("not a signature key"),
    }
    if let Some(ops) = &jwk.key_ops {
        if !ops.contains(&"verify") {
            return Err("key_ops does not allow verify");
        }
    }
    let family = match (jwk.kty, jwk.crv) {
        ("RSA", _) => KeyFamily::Rsa,
        ("EC", Some("P-256")) => KeyFamily::EcP256,
        ("EC", Some("P-384")) => KeyFamily::EcP384,
        ("EC", Some("P-521")) => KeyFamily::EcP521,
        ("OKP", Some("Ed25519")) => KeyFamily::Ed25519,
        ("EC" | "OKP", _) => return Err("unsupported curve"),
        ("oct", _) => return Err("symmetric keys are never accepted"),
        _ => return Err("unsupported key type"),
    };
    let alg = match jwk.alg {
        None => None,
        Some(name) => {
            let alg = name
                .parse::<Algorithm>()
                .map_err(|_| "alg is not a signature algorithm")?;
            if alg.key_family() != Some(family) {
                return Err("alg does not match the key type");
            }
            Some(alg)
        }
    };
    let material = match family {
        KeyFamily::Rsa => {
            let rsa = RsaKey {
                n: base64url(jwk.n)?.into(),
                e: base64url(jwk.e)?.into(),
                parsed: Default::default(),
            };
            // Parsed now for the pinned algorithm (or RS256), so a key
            // that is not an RSA public key is skipped here rather than
            // refusing each of its tokens later.
            rsa.parsed(alg.unwrap_or(Algorithm::RS256))
                .ok_or("key material is invalid")?;
            Material::Rsa(Box::new(rsa))
        }
        KeyFamily::EcP256 | KeyFamily::EcP384 | KeyFamily::EcP521 => {
            let (size, algorithm) = match family {
                KeyFamily::EcP256 => (32, &signature::ECDSA_P256_SHA256_FIXED),
                KeyFamily::EcP384 => (48, &signature::ECDSA_P384_SHA384_FIXED),
                _ => (66, &signature::ECDSA_P521_SHA512_FIXED),
            };
            let (x, y) = (base64url(jwk.x)?, base64url(jwk.y)?);
            // RFC 7518 §6.2.1.2: each coordinate is exactly the curve's
            // size, leading zeros kept.
            if x.len() != size || y.len() != size {
                return Err("key material is invalid");
            }
            // The uncompressed SEC1 point: 0x04 || x || y.
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Material::Parsed(
                ParsedPublicKey::new(algorithm, point).map_err(|_| "key material is invalid")?,
            )
        }
        KeyFamily::Ed25519 => {
            let x = base64url(jwk.x)?;
            if x.len() != 32 {
                return Err("key material is invalid");
            }
            Material::Parsed(
                ParsedPublicKey::new(&signature::ED25519, x)
                    .map_err(|_| "key material is invalid")?,
            )
        }
    };
    Ok(VerifyingKey {
        kid,
        family,
        alg,
        material,
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
            {"kty": "EC", "kid": "k256", "crv": "secp256k1", "x": "AA", "y": "AA"},
            {"kty": "XYZ", "kid": "weird"},
            {"kty": "RSA", "n": N, "e": "AQAB"},
            "not an object",
        ]});
        let parsed = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.keys.len(), 1);
        assert!(parsed.keys.contains_key("good"));
        assert_eq!(parsed.skipped.len(), 8);
        let reason = |kid: &str| {
            parsed
                .skipped
                .iter()
                .find(|s| s.kid.as_deref() == Some(kid))
                .unwrap()
                .reason
        };
        assert_eq!(reason("sym"), "symmetric keys are never accepted");
        assert_eq!(reason("p521"), "key material is invalid");
        assert_eq!(reason("k256"), "unsupported curve");
        assert_eq!(reason("garbage"), "not a valid JWK");
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
