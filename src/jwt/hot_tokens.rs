//! The few tokens each thread served last, in front of the shared
//! verified-token cache.
//!
//! A repeat request of a cached token is the most common request a
//! service sees, and moka's `get` is most of its cost: a lookup in the
//! concurrent table, its clock, a record of the read for its eviction
//! policy, two small allocations. A per-thread table of a few slots,
//! indexed by the token's hash, answers a hit with one thread-local read,
//! one `Arc` clone and one comparison of the whole token.
//!
//! It is only ever a shortcut to an entry of the shared cache: a slot is
//! filled from a shared-cache hit, holds the same `Arc<VerifiedToken>`,
//! and every check a shared-cache hit gets (expiry, a key that left the
//! JWKS, the end of the stale-if-error window, revocations) runs on a hot
//! hit too. Slots belong to one verifier (by an id never reused), so a
//! verifier built with other rules never sees another's tokens. What it
//! holds is bounded: [`SLOTS`] entries per thread, each an `Arc` of an
//! entry the shared cache made.

use std::{cell::RefCell, sync::Arc};

use super::verify::VerifiedToken;

/// Slots per thread. A power of two: the slot is the hash's low bits.
pub(super) const SLOTS: usize = 16;

struct Slot {
    verifier: u64,
    hash: u64,
    verified: Arc<VerifiedToken>,
}

thread_local! {
    static HOT: RefCell<[Option<Slot>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
}

fn index(hash: u64) -> usize {
    (hash as usize) & (SLOTS - 1)
}

/// The entry this thread last served for `token` under `verifier`, if
/// it is still in its slot.
pub(super) fn get(verifier: u64, hash: u64, token: &[u8]) -> Option<Arc<VerifiedToken>> {
    HOT.with(|hot| {
        let hot = hot.borrow();
        let slot = hot[index(hash)].as_ref()?;
        // The hash picks the slot; the whole token decides the hit.
        (slot.verifier == verifier && slot.hash == hash && slot.verified.token.as_bytes() == token)
            .then(|| slot.verified.clone())
    })
}

/// Remembers a shared-cache hit.
pub(super) fn put(verifier: u64, hash: u64, verified: &Arc<VerifiedToken>) {
    HOT.with(|hot| {
        hot.borrow_mut()[index(hash)] = Some(Slot {
            verifier,
            hash,
            verified: verified.clone(),
        });
    });
}

/// Forgets `token` (its verification is no longer worth anything).
pub(super) fn forget(verifier: u64, hash: u64) {
    HOT.with(|hot| {
        let mut hot = hot.borrow_mut();
        let slot = &mut hot[index(hash)];
        if slot
            .as_ref()
            .is_some_and(|s| s.verifier == verifier && s.hash == hash)
        {
            *slot = None;
        }
    });
}
