//! [`VerifiedToken`]: what the verified-token cache holds for one token,
//! and the [`Signer`] that vouched for it.

use std::{
    fmt,
    sync::{atomic::AtomicU64, Arc},
};

use super::{
    algorithm::Algorithm, keys::VerifyingKey, secret::SharedSecret, validation::VerifyError,
};
use crate::principal::Identity;

/// What verified a token's signature.
#[derive(Clone)]
pub(super) enum Signer {
    /// A key of the JWKS.
    Jwks(Arc<VerifyingKey>),
    /// A configured shared secret.
    Secret(SharedSecret),
    /// No signature: the IAM's introspection endpoint (RFC 7662) answered
    /// that an opaque token is active.
    #[cfg(feature = "jwks-http")]
    Introspection,
}

impl Signer {
    /// Checks `signature` over `message` for a token signed with `alg`.
    /// An introspected token has no key, so nothing verifies with it.
    pub(super) fn check(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        match self {
            Self::Jwks(key) => key.verify(alg, message, signature),
            Self::Secret(secret) => secret.verify(message, signature),
            #[cfg(feature = "jwks-http")]
            Self::Introspection => Err(VerifyError::UnknownKey),
        }
    }

    pub(super) fn kid(&self) -> Option<&str> {
        match self {
            Self::Jwks(key) => Some(&key.kid),
            Self::Secret(secret) => secret.key_id(),
            #[cfg(feature = "jwks-http")]
            Self::Introspection => None,
        }
    }
}

/// A verified token: its identity, what verified it, its expiry.
pub(crate) struct VerifiedToken {
    /// The token itself, shared with its key in the verified-token cache
    /// (empty for an introspected token, which never enters that cache).
    pub(crate) token: Arc<str>,
    pub(crate) identity: Arc<Identity>,
    pub(super) signer: Signer,
    /// Whole seconds, rounded down from the token's NumericDate.
    pub(crate) exp: u64,
    /// The revocation generation this token was last found clean at (0:
    /// never checked), so that a cached token is looked up again only
    /// after something new was revoked.
    pub(crate) revocation_checked: AtomicU64,
}

impl VerifiedToken {
    /// An opaque token the IAM's introspection endpoint answered active
    /// for: `exp` is the answer's (whole seconds, rounded down), or the
    /// end of the introspection cache bound when the answer has none.
    #[cfg(feature = "jwks-http")]
    pub(crate) fn introspected(identity: Identity, exp: u64) -> Self {
        Self {
            token: Arc::from(""),
            identity: Arc::new(identity),
            signer: Signer::Introspection,
            exp,
            revocation_checked: AtomicU64::new(0),
        }
    }
}

impl VerifiedToken {
    /// Estimated heap bytes: this token's own allocation (it lives in an
    /// `Arc`) and its identity's. The key, shared by every token it
    /// verified, is not counted.
    pub(crate) fn heap_bytes(&self) -> usize {
        crate::cache_bound::alloc_bytes(std::mem::size_of::<Self>() + 16)
            + self.identity.heap_bytes()
    }
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("user_id", &self.identity.user_id)
            .field("kid", &self.signer.kid())
            .field(
                "by",
                &match self.signer {
                    Signer::Jwks(_) => "jwks",
                    Signer::Secret(_) => "shared secret",
                    #[cfg(feature = "jwks-http")]
                    Signer::Introspection => "introspection",
                },
            )
            .field("exp", &self.exp)
            .finish()
    }
}
