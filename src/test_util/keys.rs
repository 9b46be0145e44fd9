//! Signing keys for tests: generation, JWKs and signatures.

use aws_lc_rs::{
    hmac,
    rand::SystemRandom,
    rsa::KeySize,
    signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::{json, Value};

enum Pair {
    Rsa(aws_lc_rs::rsa::KeyPair, &'static dyn signature::RsaEncoding),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key with its public JWK.
pub struct TestKey {
    kid: String,
    alg: &'static str,
    pair: Pair,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// A fresh RSA-2048 key for RS256.
    ///
    /// # Panics
    ///
    /// When the platform cannot generate keys.
    pub fn rsa(kid: &str) -> Self {
        Self::rsa_with(kid, "RS256", &signature::RSA_PKCS1_SHA256)
    }

    /// A fresh RSA-2048 key for PS256.
    ///
    /// # Panics
    ///
    /// When the platform cannot generate keys.
    pub fn rsa_pss(kid: &str) -> Self {
        Self::rsa_with(kid, "PS256", &signature::RSA_PSS_SHA256)
    }

    fn rsa_with(kid: &str, alg: &'static str, enc: &'static dyn signature::RsaEncoding) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).expect("rsa keygen");
        Self {
            kid: kid.into(),
            alg,
            pair: Pair::Rsa(pair, enc),
        }
    }

    /// A fresh P-256 key for ES256.
    ///
    /// # Panics
    ///
    /// When the platform cannot generate keys.
    pub fn ec_p256(kid: &str) -> Self {
        let pair =
            EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec keygen");
        Self {
            kid: kid.into(),
            alg: "ES256",
            pair: Pair::Ec(pair),
        }
    }

    /// A fresh P-384 key for ES384.
    ///
    /// # Panics
    ///
    /// When the platform cannot generate keys.
    pub fn ec_p384(kid: &str) -> Self {
        let pair =
            EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).expect("ec keygen");
        Self {
            kid: kid.into(),
            alg: "ES384",
            pair: Pair::Ec(pair),
        }
    }

    /// A fresh P-521 key for ES512.
    ///
    /// # Panics
    ///
    /// When the platform cannot generate keys.
    pub fn ec_p521(kid: &str) -> Self {
        let pair =
            EcdsaKeyPair::generate(&signature::ECDSA_P521_SHA512_FIXED_SIGNING).expect("ec keygen");
        Self {
            kid: kid.into(),
            alg: "ES512",
            pair: Pair::Ec(pair),
        }
    }

    /// A fresh Ed25519 key for EdDSA.
    ///
    /// # Panics
    ///
    /// When the platform cannot generate keys.
    pub fn ed25519(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().expect("ed25519 keygen");
        Self {
            kid: kid.into(),
            alg: "EdDSA",
            pair: Pair::Ed(pair),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm this key signs with.
    pub fn alg(&self) -> &'static str {
        self.alg
    }

    /// The public key as a JWK (with `kid`, `alg` and `use: sig`).
    pub fn jwk(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match &self.pair {
            Pair::Rsa(pair, _) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::Ec(pair) => {
                // Uncompressed SEC1 point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                let size = (point.len() - 1) / 2;
                let crv = match size {
                    66 => "P-521",
                    48 => "P-384",
                    _ => "P-256",
                };
                json!({
                    "kty": "EC",
                    "crv": crv,
                    "x": b64(&point[1..=size]),
                    "y": b64(&point[1 + size..]),
                })
            }
            Pair::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg);
        jwk["use"] = json!("sig");
        jwk
    }

    /// The public key bytes as the key type stores them (PKCS#1 DER for
    /// RSA, the SEC1 point for EC, the raw 32 bytes for Ed25519): material
    /// for algorithm-confusion tests.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(pair, _) => pair.public_key().as_ref().to_vec(),
            Pair::Ec(pair) => pair.public_key().as_ref().to_vec(),
            Pair::Ed(pair) => pair.public_key().as_ref().to_vec(),
        }
    }

    /// The default header for this key: `{"alg", "typ": "JWT", "kid"}`.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg, "typ": "JWT", "kid": self.kid})
    }

    /// Signs `claims` under this key's default header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&self.header(), claims)
    }

    /// Signs `claims` under any `header` (which is not checked: attack
    /// tests need headers that lie).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// Signs raw header and claims bytes, for headers that are not valid
    /// JSON objects or have duplicate members.
    ///
    /// # Panics
    ///
    /// When signing fails, which aws-lc only does on invalid keys.
    pub fn sign_raw(&self, header: &[u8], claims: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = match &self.pair {
            Pair::Rsa(pair, enc) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(*enc, &SystemRandom::new(), input.as_bytes(), &mut sig)
                    .expect("rsa sign");
                sig
            }
            Pair::Ec(pair) => pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("ec sign")
                .as_ref()
                .to_vec(),
            Pair::Ed(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// Signs `header` and `claims` with HMAC-SHA256 under `secret`: forged
/// tokens for algorithm-confusion tests.
pub fn sign_hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}
