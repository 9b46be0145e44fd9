//! [`Confirmation`]: the key or certificate a token is bound to, read once
//! from its `cnf` claim (RFC 7800) when the token is verified.
//!
//! Two confirmation methods are understood: `jkt`, the RFC 7638 thumbprint
//! of the key a DPoP client proves it holds (RFC 9449 §6), and `x5t#S256`,
//! the SHA-256 thumbprint of the client certificate of the TLS connection
//! (RFC 8705 §3.1). A token without `cnf` is a plain bearer token.
//!
//! A `cnf` this crate cannot read is refused, never treated as absent: a
//! token whose issuer bound it to something must not be accepted as an
//! unbound one because its binding had an unexpected shape.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::Value;

use super::ClaimLookup;

/// The binding of a token, from its `cnf` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Confirmation {
    /// `cnf.jkt`: the base64url SHA-256 JWK thumbprint of the DPoP key.
    pub(crate) jkt: Option<Box<str>>,
    /// `cnf["x5t#S256"]`: the SHA-256 thumbprint of the client
    /// certificate, decoded (32 bytes).
    pub(crate) x5t_s256: Option<[u8; 32]>,
}

impl Confirmation {
    /// Whether the token is bound to anything at all.
    pub(crate) fn is_bound(&self) -> bool {
        self.jkt.is_some() || self.x5t_s256.is_some()
    }

    /// Reads `cnf` from a verified claim set.
    ///
    /// # Errors
    ///
    /// A message for the client when `cnf` is present but not an object,
    /// or one of the methods it names has the wrong shape. Members for
    /// other confirmation methods (`jwk`, `kid`, …) are refused too: this
    /// crate cannot check them, so accepting the token would drop a
    /// binding its issuer asked for.
    pub(crate) fn from_claims(claims: &impl ClaimLookup) -> Result<Self, &'static str> {
        let cnf = match claims.claim("cnf") {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Object(cnf)) => cnf,
            Some(_) => return Err("cnf is not an object"),
        };
        let mut confirmation = Self::default();
        for (method, value) in cnf {
            match method.as_str() {
                "jkt" => {
                    // 43 characters: 32 bytes of SHA-256, unpadded base64url.
                    let jkt = value
                        .as_str()
                        .filter(|t| decode_sha256(t).is_some())
                        .ok_or("cnf.jkt is not a SHA-256 thumbprint")?;
                    confirmation.jkt = Some(jkt.into());
                }
                "x5t#S256" => {
                    let thumbprint = value
                        .as_str()
                        .and_then(decode_sha256)
                        .ok_or("cnf.x5t#S256 is not a SHA-256 thumbprint")?;
                    confirmation.x5t_s256 = Some(thumbprint);
                }
                _ => return Err("cnf names a confirmation method this service cannot check"),
            }
        }
        Ok(confirmation)
    }
}

/// A SHA-256 digest in strict unpadded base64url.
fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    if text.len() != 43 {
        return None;
    }
    URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(claims: Value) -> Result<Confirmation, &'static str> {
        Confirmation::from_claims(claims.as_object().unwrap())
    }

    const THUMB: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    #[test]
    fn no_cnf_is_unbound() {
        let c = read(json!({"sub": "u"})).unwrap();
        assert!(!c.is_bound());
        assert_eq!(read(json!({"cnf": null})).unwrap(), Confirmation::default());
    }

    #[test]
    fn both_methods_are_read() {
        let c = read(json!({"cnf": {"jkt": THUMB, "x5t#S256": THUMB}})).unwrap();
        assert_eq!(c.jkt.as_deref(), Some(THUMB));
        assert_eq!(c.x5t_s256.unwrap().len(), 32);
        assert!(c.is_bound());
    }

    #[test]
    fn unreadable_bindings_are_refused_not_dropped() {
        for claims in [
            json!({"cnf": "jkt"}),
            json!({"cnf": []}),
            json!({"cnf": {"jkt": 7}}),
            json!({"cnf": {"jkt": "short"}}),
            json!({"cnf": {"jkt": format!("{THUMB}=")}}),
            json!({"cnf": {"jkt": THUMB.replace('-', "+")}}),
            json!({"cnf": {"x5t#S256": "AAAA"}}),
            json!({"cnf": {"jwk": {"kty": "EC"}}}),
            json!({"cnf": {"kid": "k1"}}),
        ] {
            assert!(read(claims.clone()).is_err(), "{claims}");
        }
    }
}
