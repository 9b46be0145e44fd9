//! [`DpopNonces`]: server-provided nonces (RFC 9449 §8), so that a proof
//! cannot be made ahead of time and a client's clock does not matter.
//!
//! A nonce is stateless: the number of the time window it was issued in
//! and an HMAC-SHA256 tag of that number. A nonce of the current or the
//! previous window is accepted, so each lives between one and two
//! lifetimes. Replicas that share the secret accept each other's nonces.

use std::{fmt, time::Duration};

use aws_lc_rs::{hmac, rand};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use subtle::ConstantTimeEq;

/// The default nonce lifetime: 5 minutes.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// Bytes of the tag kept in a nonce.
const TAG_LEN: usize = 16;

/// Issues and checks DPoP server nonces. See the [module docs](self).
#[derive(Clone)]
pub struct DpopNonces {
    key: hmac::Key,
    lifetime: u64,
}

impl fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonces")
            .field("lifetime_secs", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl DpopNonces {
    /// Nonces under a random secret: for one replica.
    ///
    /// # Errors
    ///
    /// When the system's random generator fails.
    pub fn random() -> Result<Self, aws_lc_rs::error::Unspecified> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rand::SystemRandom::new())?;
        Ok(Self::with_key(key))
    }

    /// Nonces under `secret`: give every replica the same one.
    pub fn shared(secret: &[u8; 32]) -> Self {
        Self::with_key(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    fn with_key(key: hmac::Key) -> Self {
        Self {
            key,
            lifetime: DEFAULT_NONCE_LIFETIME.as_secs(),
        }
    }

    /// How long a window lasts (default 5 minutes, at least 1 second).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.as_secs().max(1);
        self
    }

    /// A nonce for `now` (Unix seconds).
    pub(crate) fn issue(&self, now: u64) -> String {
        let window = now / self.lifetime;
        let mut raw = [0u8; 8 + TAG_LEN];
        raw[..8].copy_from_slice(&window.to_be_bytes());
        raw[8..].copy_from_slice(&self.tag(window));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` was issued by us in this window or the last.
    pub(crate) fn accepts(&self, nonce: &str, now: u64) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        if raw.len() != 8 + TAG_LEN {
            return false;
        }
        let mut window = [0u8; 8];
        window.copy_from_slice(&raw[..8]);
        let window = u64::from_be_bytes(window);
        let current = now / self.lifetime;
        if window != current && window.checked_add(1) != Some(current) {
            return false;
        }
        bool::from(self.tag(window).ct_eq(&raw[8..]))
    }

    fn tag(&self, window: u64) -> [u8; TAG_LEN] {
        let tag = hmac::sign(&self.key, &window.to_be_bytes());
        let mut out = [0; TAG_LEN];
        out.copy_from_slice(&tag.as_ref()[..TAG_LEN]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_lives_for_its_window_and_the_next() {
        let nonces = DpopNonces::shared(&[7; 32]).lifetime(Duration::from_secs(100));
        let nonce = nonces.issue(1_050);
        assert!(nonces.accepts(&nonce, 1_000));
        assert!(nonces.accepts(&nonce, 1_199));
        assert!(!nonces.accepts(&nonce, 1_200));
        assert!(!nonces.accepts(&nonce, 999));
    }

    #[test]
    fn only_our_nonces_are_accepted() {
        let ours = DpopNonces::shared(&[7; 32]);
        let theirs = DpopNonces::shared(&[8; 32]);
        let replica = DpopNonces::shared(&[7; 32]);
        let nonce = ours.issue(5_000);
        assert!(replica.accepts(&nonce, 5_000));
        assert!(!theirs.accepts(&nonce, 5_000));
        let mut forged = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        forged[20] ^= 1;
        assert!(!ours.accepts(&URL_SAFE_NO_PAD.encode(forged), 5_000));
        for junk in ["", "abc", "!!!!", &"A".repeat(32)] {
            assert!(!ours.accepts(junk, 5_000), "{junk}");
        }
    }
}
