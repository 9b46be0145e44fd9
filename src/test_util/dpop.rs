//! [`DpopKey`]: a DPoP client's key pair, minting proofs (RFC 9449 §4) for
//! tests, honest ones and any header or claims for attack tests.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::digest;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::{json, Map, Value};

use super::keys::TestKey;
use crate::revocation::unix_now;

/// A DPoP client key: signs proofs and names itself in tokens' `cnf.jkt`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use iam_guard::test_util::{DpopKey, TestIam};
/// use serde_json::json;
///
/// let iam = TestIam::start().await;
/// let key = DpopKey::es256();
/// // A token bound to the key, and a proof of it for one request.
/// let token = iam.mint(json!({"sub": "u1", "cnf": {"jkt": key.thumbprint()}}));
/// let proof = key.proof("GET", "https://api.example.com/me", &token);
/// // Send: `Authorization: DPoP <token>` and `DPoP: <proof>`.
/// # let _ = proof;
/// # }
/// ```
#[derive(Debug)]
pub struct DpopKey {
    key: TestKey,
}

/// Makes every proof's `jti` unique within the process, whatever the clock.
static PROOFS: AtomicU64 = AtomicU64::new(0);

impl DpopKey {
    /// A fresh P-256 key (ES256).
    pub fn es256() -> Self {
        Self::from(TestKey::ec_p256("dpop"))
    }

    /// A fresh P-384 key (ES384).
    pub fn es384() -> Self {
        Self::from(TestKey::ec_p384("dpop"))
    }

    /// A fresh Ed25519 key (EdDSA).
    pub fn ed25519() -> Self {
        Self::from(TestKey::ed25519("dpop"))
    }

    /// A fresh RSA-2048 key (RS256).
    pub fn rs256() -> Self {
        Self::from(TestKey::rsa("dpop"))
    }

    /// A fresh RSA-2048 key (PS256).
    pub fn ps256() -> Self {
        Self::from(TestKey::rsa_pss("dpop"))
    }

    /// The algorithm its proofs are signed with.
    pub fn alg(&self) -> &'static str {
        self.key.alg()
    }

    /// The public key as a JWK: the members of its key type only.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.key.jwk();
        if let Some(members) = jwk.as_object_mut() {
            for extra in ["kid", "alg", "use"] {
                members.remove(extra);
            }
        }
        jwk
    }

    /// The RFC 7638 SHA-256 thumbprint, as `cnf.jkt` carries it: the
    /// required members, sorted by name (serde_json's map is ordered),
    /// without whitespace.
    pub fn thumbprint(&self) -> String {
        let jwk = self.public_jwk();
        let required: &[&str] = match jwk["kty"].as_str() {
            Some("RSA") => &["e", "kty", "n"],
            Some("EC") => &["crv", "kty", "x", "y"],
            _ => &["crv", "kty", "x"],
        };
        let members: Map<String, Value> = required
            .iter()
            .map(|name| ((*name).to_owned(), jwk[*name].clone()))
            .collect();
        let canonical = Value::Object(members).to_string();
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    /// `{"cnf": {"jkt": …}}`: a patch for [`TestIam::mint`](super::TestIam::mint)
    /// that binds a token to this key.
    pub fn cnf(&self) -> Value {
        json!({"cnf": {"jkt": self.thumbprint()}})
    }

    /// The header of an honest proof: `typ`, `alg` and the public `jwk`.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.public_jwk()})
    }

    /// The claims of an honest proof for `method` and `url` (query and
    /// fragment are the caller's to leave out), sent with `access_token`:
    /// a unique `jti`, `iat` now and `ath`.
    pub fn claims(&self, method: &str, url: &str, access_token: &str) -> Value {
        let n = PROOFS.fetch_add(1, Ordering::Relaxed);
        json!({
            "jti": format!("proof-{}-{n}", unix_now()),
            "htm": method,
            "htu": url,
            "iat": unix_now(),
            "ath": access_token_hash(access_token),
        })
    }

    /// An honest proof for one request.
    pub fn proof(&self, method: &str, url: &str, access_token: &str) -> String {
        self.sign(&self.header(), &self.claims(method, url, access_token))
    }

    /// An honest proof carrying the server's `nonce`.
    pub fn proof_with_nonce(
        &self,
        method: &str,
        url: &str,
        access_token: &str,
        nonce: &str,
    ) -> String {
        let mut claims = self.claims(method, url, access_token);
        claims["nonce"] = json!(nonce);
        self.sign(&self.header(), &claims)
    }

    /// Signs any `header` and `claims` with this key: proofs that lie.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.key.sign_with_header(header, claims)
    }
}

impl From<TestKey> for DpopKey {
    /// A proof key from any asymmetric [`TestKey`].
    fn from(key: TestKey) -> Self {
        Self { key }
    }
}

/// `ath`: base64url SHA-256 of the access token (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, access_token.as_bytes()))
}
