//! Whether a replica's view of revocations and invalidations can be
//! trusted right now: always in one process; with Redis, while the
//! subscription is live and for a bounded grace window after it is lost.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
    time::{Duration, Instant},
};

/// `trusted_until` while the view is current.
const ALWAYS: u64 = u64::MAX;
/// `trusted_until` before the first sync.
const NEVER: u64 = 0;

/// Milliseconds on a monotonic clock since the first call in this process
/// (plus one, so that 0 stays "never").
fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// The trust state shared by a replica's revocations and permission
/// caches. Reading it costs one atomic load while the view is current.
#[derive(Debug)]
pub(crate) struct Trust {
    trusted_until: AtomicU64,
}

impl Trust {
    /// A view that is always current: one process, no Redis.
    pub(crate) fn always() -> Self {
        Self {
            trusted_until: AtomicU64::new(ALWAYS),
        }
    }

    /// A view not loaded yet: untrusted until [`synced`](Self::synced).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn not_synced() -> Self {
        Self {
            trusted_until: AtomicU64::new(NEVER),
        }
    }

    /// Whether decisions may rely on the view now.
    pub(crate) fn is_trusted(&self) -> bool {
        match self.trusted_until.load(Ordering::Acquire) {
            ALWAYS => true,
            NEVER => false,
            until => monotonic_ms() < until,
        }
    }

    /// The view has just been loaded in full and is kept current.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn synced(&self) {
        self.trusted_until.store(ALWAYS, Ordering::Release);
    }

    /// The view stopped being kept current now; it stays trusted for
    /// `grace` (untrusted at once for zero). Only the first call after a
    /// sync starts the window: a second loss does not extend it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn cut_off(&self, grace: Duration) {
        let until = monotonic_ms()
            .saturating_add(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX))
            .min(ALWAYS - 1);
        // Only a current view starts a window; NEVER stays NEVER.
        let _ = self.trusted_until.compare_exchange(
            ALWAYS,
            until.max(NEVER + 1),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_starts_once_and_a_sync_ends_it() {
        let trust = Trust::not_synced();
        assert!(!trust.is_trusted());
        trust.cut_off(Duration::from_secs(60));
        assert!(!trust.is_trusted(), "never synced stays untrusted");
        trust.synced();
        assert!(trust.is_trusted());
        trust.cut_off(Duration::from_secs(60));
        assert!(trust.is_trusted(), "inside the window");
        trust.cut_off(Duration::ZERO);
        assert!(
            trust.is_trusted(),
            "a second loss does not restart the window"
        );
        trust.synced();
        trust.cut_off(Duration::ZERO);
        assert!(!trust.is_trusted(), "no window at all");
    }

    #[test]
    fn a_window_ends() {
        let trust = Trust::not_synced();
        trust.synced();
        trust.cut_off(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!trust.is_trusted());
        assert!(Trust::always().is_trusted());
    }
}
