//! [`SharedSecret`]: HMAC signatures (HS256, HS384, HS512) from a secret
//! you configure explicitly, for in-house auth servers that sign with one.
//!
//! **Prefer asymmetric keys.** Every holder of a shared secret can mint
//! tokens that this service accepts: the auth server, every service that
//! verifies with the same secret, and whoever reads it from any of their
//! configurations. With a JWKS, the services only ever hold public keys.
//! Use a shared secret only where the token issuer offers nothing else,
//! give each service its own secret where the issuer allows it, and keep
//! it out of logs and source control.
//!
//! What keeps a secret from weakening the asymmetric path (RFC 8725 §2.1,
//! the RS/HS confusion attack):
//!
//! - the token's `alg` header decides the family: an HS* token is checked
//!   only with the configured secret of exactly that algorithm (an HS256
//!   secret never verifies HS512, nor the other way round), and an
//!   asymmetric token never with a secret;
//! - HMAC is enabled by configuring a secret and in no other way:
//!   [`TokenValidation::algorithms`](super::verify::TokenValidation::algorithms)
//!   drops HMAC algorithms, and `oct` keys in a JWKS are skipped;
//! - the secret must be at least as long as the hash output (RFC 7518
//!   §3.2), so a short password cannot be configured by mistake.
//!
//! Every other check (expiry, issuer, audience, header members, required
//! claims and claim values, the verified-token cache) applies to HMAC
//! tokens exactly as to the others.
//!
//! ```
//! use iam_guard::{Algorithm, JwtAuthGuardLayer, SharedSecret};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In production, read the secret from your secret store.
//! let secret = SharedSecret::new(Algorithm::HS256, [7u8; 32])?.kid("auth-2024");
//! let auth = JwtAuthGuardLayer::shared_secret("https://auth.internal", secret)
//!     .audience(["students-api"]);
//! # let _ = auth; Ok(()) }
//! ```

use std::{fmt, sync::Arc};

use aws_lc_rs::hmac;

use super::{algorithm::Algorithm, validation::VerifyError};

/// Configuring a [`SharedSecret`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The algorithm is not HS256, HS384 or HS512.
    #[error(
        "a shared secret signs with HS256, HS384 or HS512 only; asymmetric algorithms need a JWKS"
    )]
    NotHmac,
    /// The secret is shorter than the hash output of its algorithm.
    #[error(
        "a {alg:?} secret must be at least {min} bytes long (RFC 7518 §3.2), this one has {len}"
    )]
    TooShort {
        /// The algorithm the secret was configured for.
        alg: Algorithm,
        /// The shortest secret accepted for `alg`.
        min: usize,
        /// The length of the secret given.
        len: usize,
    },
}

/// An HMAC secret for one algorithm, optionally bound to a `kid`. Cheap to
/// clone. See the [module docs](self) for why it is the weaker choice and
/// for an example.
///
/// Its `Debug` output names the algorithm and kid, never the secret.
#[derive(Clone)]
pub struct SharedSecret {
    alg: Algorithm,
    kid: Option<Arc<str>>,
    /// Keyed once: aws-lc keeps the secret only inside its HMAC context,
    /// which it cleanses when the last clone is dropped.
    key: Arc<hmac::Key>,
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSecret")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl SharedSecret {
    /// A secret verifying tokens whose `alg` is `alg`.
    ///
    /// # Errors
    ///
    /// [`SecretError::NotHmac`] when `alg` is not HS256, HS384 or HS512;
    /// [`SecretError::TooShort`] when the secret is shorter than the hash
    /// output: 32 bytes for HS256, 48 for HS384, 64 for HS512.
    ///
    /// ```
    /// use iam_guard::{jwt::secret::SecretError, Algorithm, SharedSecret};
    ///
    /// let err = SharedSecret::new(Algorithm::HS512, "password").unwrap_err();
    /// assert_eq!(err, SecretError::TooShort { alg: Algorithm::HS512, min: 64, len: 8 });
    /// ```
    pub fn new(alg: Algorithm, secret: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let mut secret = secret.into();
        let min = min_len(alg).ok_or(SecretError::NotHmac);
        let checked = min.and_then(|min| {
            if secret.len() < min {
                Err(SecretError::TooShort {
                    alg,
                    min,
                    len: secret.len(),
                })
            } else {
                Ok(hmac::Key::new(hmac_algorithm(alg), &secret))
            }
        });
        // Best effort: the key holds its own copy (zeroed on drop), so this
        // one need not linger in freed memory. `black_box` keeps the writes
        // from being optimised away as dead stores.
        secret.fill(0);
        std::hint::black_box(&secret);
        Ok(Self {
            alg,
            kid: None,
            key: Arc::new(checked?),
        })
    }

    /// Binds the secret to `kid`: an HMAC token that carries a `kid` must
    /// then carry exactly this one. A token without a `kid` is still
    /// accepted, as many in-house auth servers send none.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into().into());
        self
    }

    /// The algorithm this secret verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The kid this secret is bound to, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Checks the HMAC `tag` over `message`. aws-lc's `hmac::verify`
    /// compares in constant time: timing tells an attacker nothing about
    /// how much of a forged tag was right.
    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> Result<(), VerifyError> {
        hmac::verify(&self.key, message, tag).map_err(|_| VerifyError::Signature)
    }
}

/// aws-lc's HMAC for `alg`, which [`min_len`] has admitted as HMAC.
fn hmac_algorithm(alg: Algorithm) -> hmac::Algorithm {
    match alg {
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

/// The shortest secret for `alg`: its hash output (RFC 7518 §3.2); `None`
/// for an algorithm that is not HMAC.
fn min_len(alg: Algorithm) -> Option<usize> {
    match alg {
        Algorithm::HS256 => Some(32),
        Algorithm::HS384 => Some(48),
        Algorithm::HS512 => Some(64),
        _ => None,
    }
}

/// Whether `alg` is an HMAC algorithm.
pub(crate) fn is_hmac(alg: Algorithm) -> bool {
    min_len(alg).is_some()
}

/// The configured secrets, at most one per algorithm and kid.
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<SharedSecret>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

impl Secrets {
    /// Adds `secret`, replacing one with the same algorithm and kid.
    pub(crate) fn add(&mut self, secret: SharedSecret) {
        self.0
            .retain(|s| !(s.alg == secret.alg && s.kid == secret.kid));
        self.0.push(secret);
    }

    /// The algorithms that have a secret.
    pub(crate) fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.0.iter().map(|s| s.alg)
    }

    /// The one secret that may verify a token with `alg` and `kid`, or
    /// `None`. Exactly one secret is ever tried: trying each in turn would
    /// make acceptance depend on which secrets are configured.
    ///
    /// - A `kid` picks the secret bound to it, else the secret of `alg`
    ///   bound to no kid (which accepts any).
    /// - No `kid` picks the secret of `alg` bound to no kid, else the only
    ///   secret of `alg`; several kid-bound ones are ambiguous.
    pub(crate) fn select(&self, alg: Algorithm, kid: Option<&str>) -> Option<&SharedSecret> {
        let of_alg = || self.0.iter().filter(move |s| s.alg == alg);
        let unbound = of_alg().find(|s| s.kid.is_none());
        match kid {
            Some(kid) => of_alg().find(|s| s.kid.as_deref() == Some(kid)).or(unbound),
            None => unbound.or_else(|| {
                let mut candidates = of_alg();
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_shorter_than_the_hash_output_are_refused_with_a_clear_message() {
        for (alg, min) in [
            (Algorithm::HS256, 32),
            (Algorithm::HS384, 48),
            (Algorithm::HS512, 64),
        ] {
            let err = SharedSecret::new(alg, vec![1; min - 1]).unwrap_err();
            assert_eq!(
                err,
                SecretError::TooShort {
                    alg,
                    min,
                    len: min - 1
                }
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "a {alg:?} secret must be at least {min} bytes long (RFC 7518 §3.2), this one has {}",
                    min - 1
                )
            );
            assert!(SharedSecret::new(alg, vec![1; min]).is_ok());
        }
    }

    #[test]
    fn asymmetric_algorithms_are_not_hmac() {
        for alg in [
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            assert_eq!(
                SharedSecret::new(alg, vec![1; 64]).unwrap_err(),
                SecretError::NotHmac
            );
        }
        assert!(SecretError::NotHmac.to_string().contains("HS256"));
    }

    #[test]
    fn debug_names_the_algorithm_and_kid_but_not_the_secret() {
        let secret = SharedSecret::new(Algorithm::HS256, "correct horse battery staple 1234")
            .unwrap()
            .kid("k1");
        let debug = format!("{secret:?}");
        assert!(debug.contains("HS256") && debug.contains("k1"), "{debug}");
        assert!(!debug.contains("horse"), "{debug}");
        assert!(!debug.contains("99, 111, 114"), "{debug}");
    }

    fn secret(alg: Algorithm, kid: Option<&str>) -> SharedSecret {
        let s = SharedSecret::new(alg, vec![9; 64]).unwrap();
        match kid {
            Some(kid) => s.kid(kid),
            None => s,
        }
    }

    fn picked(secrets: &Secrets, alg: Algorithm, kid: Option<&str>) -> Option<Option<String>> {
        secrets
            .select(alg, kid)
            .map(|s| s.key_id().map(str::to_owned))
    }

    #[test]
    fn one_secret_is_selected_by_algorithm_and_kid() {
        let mut secrets = Secrets::default();
        secrets.add(secret(Algorithm::HS256, Some("a")));
        assert_eq!(
            picked(&secrets, Algorithm::HS256, Some("a")),
            Some(Some("a".into()))
        );
        assert_eq!(
            picked(&secrets, Algorithm::HS256, None),
            Some(Some("a".into()))
        );
        assert_eq!(picked(&secrets, Algorithm::HS256, Some("b")), None);
        assert_eq!(picked(&secrets, Algorithm::HS512, Some("a")), None);
        assert_eq!(picked(&secrets, Algorithm::HS512, None), None);

        // Two kid-bound secrets: a token without kid is ambiguous.
        secrets.add(secret(Algorithm::HS256, Some("b")));
        assert_eq!(
            picked(&secrets, Algorithm::HS256, Some("b")),
            Some(Some("b".into()))
        );
        assert_eq!(picked(&secrets, Algorithm::HS256, None), None);

        // An unbound secret takes what no bound one claims.
        secrets.add(secret(Algorithm::HS256, None));
        assert_eq!(picked(&secrets, Algorithm::HS256, None), Some(None));
        assert_eq!(picked(&secrets, Algorithm::HS256, Some("c")), Some(None));
        assert_eq!(
            picked(&secrets, Algorithm::HS256, Some("a")),
            Some(Some("a".into()))
        );
    }

    #[test]
    fn a_secret_with_the_same_algorithm_and_kid_replaces_the_first() {
        let mut secrets = Secrets::default();
        secrets.add(secret(Algorithm::HS256, None));
        secrets.add(secret(Algorithm::HS256, None));
        secrets.add(secret(Algorithm::HS384, None));
        assert_eq!(secrets.0.len(), 2);
    }
}
