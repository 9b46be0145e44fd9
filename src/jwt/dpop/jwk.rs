//! The public key in a DPoP proof's `jwk` header: checked against the
//! proof's `alg`, turned into an aws-lc-rs verification key, and
//! thumbprinted (RFC 7638) for comparison with the token's `cnf.jkt`.

use aws_lc_rs::{
    digest,
    signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::{Map, Value};

use super::{error::DpopError, DpopAlgorithm};

/// Members that only a private (or symmetric) JWK has (RFC 7518 §6.2.2,
/// §6.3.2, §6.4.1; RFC 8037 §2). A client that puts its private key in a
/// proof has given it to everyone on the path: the proof is refused.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A proof's public key, ready to check the proof's signature.
pub(super) struct ProofKey {
    alg: DpopAlgorithm,
    /// The SEC1 point (EC) or the raw key (Ed25519); empty for RSA.
    bytes: Vec<u8>,
    /// RSA modulus and exponent, big-endian.
    rsa: Option<(Vec<u8>, Vec<u8>)>,
    /// RFC 7638 SHA-256 thumbprint, unpadded base64url.
    thumbprint: String,
}

impl ProofKey {
    /// Reads `jwk` as a public key of `alg`'s family.
    pub(super) fn from_jwk(
        jwk: &Map<String, Value>,
        alg: DpopAlgorithm,
    ) -> Result<Self, DpopError> {
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(DpopError::PrivateKey);
        }
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        let member = |name: &str| -> Result<Vec<u8>, DpopError> {
            let value = text(name).ok_or(DpopError::Key("a key member is missing"))?;
            URL_SAFE_NO_PAD
                .decode(value)
                .map_err(|_| DpopError::Key("a key member is not base64url"))
        };
        // A JWK that pins an algorithm must pin this one (RFC 7517 §4.4);
        // EdDSA and Ed25519 name one algorithm (RFC 9864 §2.2).
        if let Some(pinned) = jwk.get("alg") {
            let ed25519 = |name: Option<&str>| matches!(name, Some("EdDSA" | "Ed25519"));
            let same = pinned.as_str() == Some(alg.name())
                || (ed25519(pinned.as_str()) && ed25519(Some(alg.name())));
            if !same {
                return Err(DpopError::Key("the jwk is for another algorithm"));
            }
        }
        // A key published for encryption is not a signing key (RFC 7517
        // §4.2).
        if jwk.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
            return Err(DpopError::Key("the jwk is not for signatures"));
        }
        let kty = text("kty").ok_or(DpopError::Key("the jwk has no kty"))?;
        // The thumbprint input: the required members only, in
        // lexicographic order, no whitespace (RFC 7638 §3.2). The values
        // are the strings as sent, which is what the client hashed.
        let (canonical, bytes, rsa) = match (alg, kty) {
            (DpopAlgorithm::Es256 | DpopAlgorithm::Es384, "EC") => {
                let (crv, size) = match alg {
                    DpopAlgorithm::Es256 => ("P-256", 32),
                    _ => ("P-384", 48),
                };
                if text("crv") != Some(crv) {
                    return Err(DpopError::Key("the jwk's curve does not match alg"));
                }
                let (x, y) = (member("x")?, member("y")?);
                if x.len() != size || y.len() != size {
                    return Err(DpopError::Key("the jwk's coordinates have the wrong size"));
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let canonical = canonical_json(&[
                    ("crv", crv),
                    ("kty", "EC"),
                    ("x", text("x").unwrap_or_default()),
                    ("y", text("y").unwrap_or_default()),
                ]);
                (canonical, point, None)
            }
            (DpopAlgorithm::EdDsa | DpopAlgorithm::Ed25519, "OKP") => {
                if text("crv") != Some("Ed25519") {
                    return Err(DpopError::Key("only Ed25519 is accepted for EdDSA"));
                }
                let x = member("x")?;
                if x.len() != 32 {
                    return Err(DpopError::Key("the jwk's key has the wrong size"));
                }
                let canonical = canonical_json(&[
                    ("crv", "Ed25519"),
                    ("kty", "OKP"),
                    ("x", text("x").unwrap_or_default()),
                ]);
                (canonical, x, None)
            }
            (DpopAlgorithm::Rs256 | DpopAlgorithm::Ps256, "RSA") => {
                let (n, e) = (member("n")?, member("e")?);
                // aws-lc-rs checks the size (2048 to 8192 bits); a leading
                // zero byte would make two encodings of one key.
                if n.first() == Some(&0) || e.first() == Some(&0) || e.is_empty() {
                    return Err(DpopError::Key("the jwk's RSA members are not minimal"));
                }
                let canonical = canonical_json(&[
                    ("e", text("e").unwrap_or_default()),
                    ("kty", "RSA"),
                    ("n", text("n").unwrap_or_default()),
                ]);
                (canonical, Vec::new(), Some((n, e)))
            }
            _ => return Err(DpopError::Key("the jwk's kty does not match alg")),
        };
        let thumbprint =
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
        Ok(Self {
            alg,
            bytes,
            rsa,
            thumbprint,
        })
    }

    /// The RFC 7638 thumbprint, as `cnf.jkt` carries it.
    pub(super) fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Checks `signature` over `message`.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), DpopError> {
        let ok = match (&self.rsa, self.alg) {
            (Some((n, e)), alg) => {
                let params = match alg {
                    DpopAlgorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    _ => &signature::RSA_PKCS1_2048_8192_SHA256,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            (None, alg) => {
                let algorithm: &'static dyn VerificationAlgorithm = match alg {
                    DpopAlgorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
                    DpopAlgorithm::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => &signature::ED25519,
                };
                UnparsedPublicKey::new(algorithm, &self.bytes)
                    .verify(message, signature)
                    .is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(DpopError::Signature)
        }
    }
}

/// `{"a":"…","b":"…"}` for members already in order. The values are
/// base64url or fixed names, which JSON needs no escape for; anything else
/// is escaped by serde so a hostile value cannot change the structure.
fn canonical_json(members: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        out.push_str(&Value::from(*value).to_string());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let key = ProofKey::from_jwk(jwk.as_object().unwrap(), DpopAlgorithm::Rs256).unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn private_members_are_refused() {
        for member in PRIVATE_MEMBERS {
            let mut jwk =
                json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([1u8; 32])});
            jwk[member] = json!("AAAA");
            let err = ProofKey::from_jwk(jwk.as_object().unwrap(), DpopAlgorithm::EdDsa)
                .err()
                .unwrap();
            assert_eq!(err, DpopError::PrivateKey, "{member}");
        }
    }

    #[test]
    fn family_curve_and_size_must_match_alg() {
        let x32 = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let cases = [
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": x32}),
                DpopAlgorithm::Es256,
            ),
            (
                json!({"kty": "EC", "crv": "P-384", "x": x32, "y": x32}),
                DpopAlgorithm::Es256,
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "x": x32, "y": "AAAA"}),
                DpopAlgorithm::Es256,
            ),
            (
                json!({"kty": "OKP", "crv": "Ed448", "x": x32}),
                DpopAlgorithm::EdDsa,
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": format!("{x32}=")}),
                DpopAlgorithm::EdDsa,
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": x32, "alg": "ES256"}),
                DpopAlgorithm::EdDsa,
            ),
            (
                json!({"kty": "RSA", "n": "AKq7", "e": "AQAB"}),
                DpopAlgorithm::Rs256,
            ),
            (json!({"crv": "Ed25519", "x": x32}), DpopAlgorithm::EdDsa),
        ];
        for (jwk, alg) in cases {
            assert!(
                matches!(
                    ProofKey::from_jwk(jwk.as_object().unwrap(), alg),
                    Err(DpopError::Key(_))
                ),
                "{jwk} for {alg:?}"
            );
        }
    }
}
