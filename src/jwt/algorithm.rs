//! [`Algorithm`]: the JWS signature algorithms a token may name (RFC 7518
//! §3.1, RFC 8037), and which kind of key verifies each.

use std::{fmt, str::FromStr};

/// A JWS signature algorithm (also `iam_guard::Algorithm`).
///
/// Names are exact and case-sensitive, as RFC 7518 §3.1 registers them:
/// `"RS256".parse()` is [`Algorithm::RS256`]; `"rs256"`, `"None"` and
/// `"none"` are errors. `none` is not an algorithm here at all, so it can
/// never be allowed.
///
/// ```
/// use iam_guard::Algorithm;
///
/// assert_eq!("ES512".parse::<Algorithm>(), Ok(Algorithm::ES512));
/// assert_eq!(Algorithm::EdDSA.as_str(), "EdDSA");
/// assert!("none".parse::<Algorithm>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256 (a [`SharedSecret`](super::secret::SharedSecret) only).
    HS256,
    /// HMAC with SHA-384 (a [`SharedSecret`](super::secret::SharedSecret) only).
    HS384,
    /// HMAC with SHA-512 (a [`SharedSecret`](super::secret::SharedSecret) only).
    HS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// EdDSA (Ed25519, RFC 8037).
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in the order above.
    pub const ALL: [Algorithm; 13] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::ES256,
        Self::ES384,
        Self::ES512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::EdDSA,
    ];

    /// The registered name, as a token's `alg` header carries it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Whether this is an HMAC algorithm (verified with a shared secret,
    /// never with a public key).
    pub const fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    /// The kind of public key that verifies this algorithm; `None` for
    /// HMAC, which a public JWKS never holds (accepting an HMAC token
    /// against one is the classic RS/HS confusion attack).
    pub(crate) const fn key_family(self) -> Option<KeyFamily> {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                Some(KeyFamily::Rsa)
            }
            Self::ES256 => Some(KeyFamily::EcP256),
            Self::ES384 => Some(KeyFamily::EcP384),
            Self::ES512 => Some(KeyFamily::EcP521),
            Self::EdDSA => Some(KeyFamily::Ed25519),
            Self::HS256 | Self::HS384 | Self::HS512 => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a registered signature algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a supported JWS signature algorithm")]
pub struct UnknownAlgorithm;

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str() == name)
            .ok_or(UnknownAlgorithm)
    }
}

/// The key types a signature algorithm can be verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    EcP256,
    EcP384,
    EcP521,
    Ed25519,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_exactly_and_case_sensitively() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
            assert_eq!(
                serde_json::to_value(alg).unwrap(),
                serde_json::json!(alg.as_str())
            );
            assert!(alg.as_str().to_lowercase().parse::<Algorithm>().is_err());
        }
        for name in ["none", "None", "", "RS256 ", "ES256K", "HS1"] {
            assert_eq!(name.parse::<Algorithm>(), Err(UnknownAlgorithm), "{name}");
        }
    }

    #[test]
    fn hmac_has_no_key_family_and_every_other_algorithm_has_one() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.is_hmac(), alg.key_family().is_none(), "{alg}");
        }
        assert_eq!(Algorithm::ES512.key_family(), Some(KeyFamily::EcP521));
    }
}
