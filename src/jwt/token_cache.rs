//! The verified-token cache's parts: how a token is hashed and when its
//! entry expires. The cache itself lives in the [`Verifier`](super::verify::Verifier).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use moka::Expiry;

use super::verify::{unix_now, VerifiedToken};

/// Hashes a token by its length and last 16 bytes — the tail of its
/// signature — instead of SipHash over the whole (often 1 KB) string.
///
/// Safe because equality still compares the whole token, and only
/// verified tokens are ever inserted: a client can send many tokens with
/// one tail, but they are lookups that miss, never entries that pile up in
/// one bucket. Real signatures make the tails uniformly random.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SignatureTail;

impl std::hash::BuildHasher for SignatureTail {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(0x9e37_79b9_7f4a_7c15)
    }
}

pub(super) struct TailHasher(u64);

impl std::hash::Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(16)..];
        let mut h = self.0 ^ bytes.len() as u64;
        for chunk in tail.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x0100_0000_01b3_u64 | 1 << 63);
            h ^= h >> 29;
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        // splitmix64's finalizer: moka shards on the high bits.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Expires each cached token at its own `exp`, never later.
pub(super) struct UntilExp;

impl Expiry<Arc<[u8]>, Arc<VerifiedToken>> for UntilExp {
    fn expire_after_create(
        &self,
        _token: &Arc<[u8]>,
        verified: &Arc<VerifiedToken>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(verified.exp.saturating_sub(unix_now())))
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use moka::sync::Cache;

    use super::*;

    #[test]
    fn tokens_sharing_a_tail_share_a_bucket_but_never_an_entry() {
        let a = "aaaa.bbbb.0123456789abcdefXYZ";
        let b = "zzzz.yyyy.0123456789abcdefXYZ";
        let c = "aaaa.bbbb.0123456789abcdefXYW";
        assert_eq!(SignatureTail.hash_one(a), SignatureTail.hash_one(b));
        assert_ne!(SignatureTail.hash_one(a), SignatureTail.hash_one(c));
        // Equality, not the hash, decides a hit.
        let cache: Cache<Box<str>, u8, SignatureTail> = Cache::builder()
            .max_capacity(10)
            .build_with_hasher(SignatureTail);
        cache.insert(a.into(), 1);
        assert_eq!(cache.get(a), Some(1));
        assert_eq!(cache.get(b), None);
        cache.insert(b.into(), 2);
        assert_eq!((cache.get(a), cache.get(b)), (Some(1), Some(2)));
    }

    #[test]
    fn short_and_empty_keys_hash_without_panicking() {
        for key in ["", "a", "abcdefgh", "abcdefghi"] {
            let _ = SignatureTail.hash_one(key);
        }
    }
}
