//! How long a fetched document (the JWKS, the IAM's catalogue) is fresh,
//! how long it may still serve once stale, when it is due for a background
//! refresh, and how long a failed fetch pauses the next: the windows both
//! fetchers keep, set where they are built and read on the request path
//! without a lock.
//!
//! Each fetcher keeps what it fetches and how; this holds only time. The
//! request path reads the clock once ([`Freshness::now_ms`]) and asks
//! [`Freshness::usable_at`] and [`Freshness::stale_at`] of that instant,
//! then [`Freshness::claim_refresh`], which costs one atomic load when
//! nothing is due.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// A stamp that was never set, or a window that never ends.
pub(crate) const NEVER: u64 = u64::MAX;

/// A duration in whole milliseconds, short of [`NEVER`].
#[inline]
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(NEVER - 1)
}

/// A fetcher's windows, configured on its builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Windows {
    /// Freshness when the document comes without a `max-age`.
    pub(crate) ttl: Duration,
    /// Bounds applied to the freshness, the `max-age` or `ttl`.
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    /// How long a stale document keeps serving while no new one can be had.
    pub(crate) stale_if_error: Duration,
    /// Pause after a failed fetch before another is tried.
    pub(crate) retry_after_failure: Duration,
}

impl Windows {
    /// `ttl`, `stale_if_error` and `retry_after_failure`, with the
    /// freshness bounded to 10 s … 24 h.
    pub(crate) const fn new(
        ttl: Duration,
        stale_if_error: Duration,
        retry_after_failure: Duration,
    ) -> Self {
        Self {
            ttl,
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(24 * 60 * 60),
            stale_if_error,
            retry_after_failure,
        }
    }

    /// Sets the freshness bounds; a `max` below `min` is raised to it.
    pub(crate) fn bound_ttl(&mut self, min: Duration, max: Duration) {
        self.min_ttl = min;
        self.max_ttl = max.max(min);
    }

    /// How long a document sent with `max_age` (or none) is fresh.
    pub(crate) fn ttl_for(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.ttl)
            .clamp(self.min_ttl, self.max_ttl)
    }
}

/// A fetched document's windows, as milliseconds since the fetcher was
/// built, in atomics.
pub(crate) struct Freshness {
    epoch: Instant,
    /// Until when the last good document is fresh.
    fresh_until: AtomicU64,
    /// Until when it may serve: its freshness plus the stale-if-error
    /// window, which starts when it goes stale. 0 before any success.
    usable_until: AtomicU64,
    /// When a background refresh is due: at 80 % of the freshness, or the
    /// end of the pause after a failure.
    refresh_at: AtomicU64,
    last_failure: AtomicU64,
    /// Whether a background refresh is running.
    background: AtomicBool,
}

impl Freshness {
    /// Nothing fetched yet: not usable, no refresh due.
    pub(crate) fn unfetched() -> Self {
        Self::until(0)
    }

    /// A fixed document that is always usable and never due for a refresh.
    pub(crate) fn forever() -> Self {
        Self::until(NEVER)
    }

    fn until(until: u64) -> Self {
        Self {
            epoch: Instant::now(),
            fresh_until: AtomicU64::new(until),
            usable_until: AtomicU64::new(until),
            refresh_at: AtomicU64::new(NEVER),
            last_failure: AtomicU64::new(NEVER),
            background: AtomicBool::new(false),
        }
    }

    /// The clock the windows are kept in.
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// Whether `window` has passed since `stamp` (a [`now_ms`](Self::now_ms)
    /// reading, or [`NEVER`] for never).
    pub(crate) fn since(&self, stamp: &AtomicU64, window: Duration) -> bool {
        let at = stamp.load(Ordering::Acquire);
        at == NEVER || self.now_ms().saturating_sub(at) >= millis(window)
    }

    /// Whether the last fetch failed less than the pause ago.
    pub(crate) fn retry_paused(&self, windows: &Windows) -> bool {
        !self.since(&self.last_failure, windows.retry_after_failure)
    }

    /// Whether the document may serve at `now`.
    #[inline]
    pub(crate) fn usable_at(&self, now: u64) -> bool {
        now < self.usable_until.load(Ordering::Acquire)
    }

    /// Whether the document may serve now.
    #[inline]
    pub(crate) fn usable(&self) -> bool {
        self.usable_at(self.now_ms())
    }

    /// Whether the document's freshness is over at `now`.
    #[inline]
    pub(crate) fn stale_at(&self, now: u64) -> bool {
        now >= self.fresh_until.load(Ordering::Acquire)
    }

    /// A good document was installed, sent with `max_age`: it is fresh for
    /// its bounded TTL, usable for the stale-if-error window after that, and
    /// due for a background refresh at 80 % of its freshness.
    pub(crate) fn renew(&self, windows: &Windows, max_age: Option<Duration>) {
        let ttl = millis(windows.ttl_for(max_age));
        let now = self.now_ms();
        let fresh = now.saturating_add(ttl);
        self.fresh_until.store(fresh, Ordering::Release);
        self.usable_until.store(
            fresh.saturating_add(millis(windows.stale_if_error)),
            Ordering::Release,
        );
        self.refresh_at
            .store(now.saturating_add(ttl / 5 * 4), Ordering::Release);
    }

    /// A fetch failed: the next is tried after the pause, by a request or
    /// the background refresh, so an outage costs the IAM one call per
    /// pause however busy the service is.
    pub(crate) fn failed(&self, windows: &Windows) {
        let now = self.now_ms();
        self.last_failure.store(now, Ordering::Release);
        self.refresh_at.store(
            now.saturating_add(millis(windows.retry_after_failure)),
            Ordering::Release,
        );
    }

    /// The runtime to start a background refresh on, when one is due at
    /// `now`, a Tokio runtime is current and none is running; the caller
    /// spawns it and calls [`refresh_finished`](Self::refresh_finished) at
    /// its end. One atomic load when nothing is due.
    #[inline]
    pub(crate) fn claim_refresh(&self, now: u64) -> Option<tokio::runtime::Handle> {
        let due = self.refresh_at.load(Ordering::Acquire);
        if due == NEVER || now < due {
            return None;
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        self.background
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        Some(runtime)
    }

    /// The background refresh [`claim_refresh`](Self::claim_refresh) gave
    /// out has ended.
    pub(crate) fn refresh_finished(&self) {
        self.background.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> Windows {
        Windows::new(
            Duration::from_secs(100),
            Duration::from_secs(50),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn nothing_fetched_serves_nothing_and_is_never_due() {
        let f = Freshness::unfetched();
        assert!(!f.usable_at(0));
        assert!(f.stale_at(0));
        assert!(!f.retry_paused(&windows()));
        assert!(f.claim_refresh(u64::MAX - 1).is_none());
    }

    #[test]
    fn a_fixed_document_always_serves_fresh() {
        let f = Freshness::forever();
        assert!(f.usable_at(NEVER - 1));
        assert!(!f.stale_at(NEVER - 1));
    }

    #[test]
    fn a_renewed_document_is_fresh_then_stale_then_unusable() {
        let f = Freshness::unfetched();
        let w = windows();
        f.renew(&w, None);
        let now = f.now_ms();
        assert!(f.usable_at(now) && !f.stale_at(now));
        // The TTL is 100 s: stale from then, usable 50 s more.
        assert!(f.stale_at(now + 100_000) && f.usable_at(now + 100_000));
        assert!(!f.usable_at(now + 150_001));
        // A max-age below the lower bound is raised to 10 s.
        f.renew(&w, Some(Duration::from_secs(1)));
        let now = f.now_ms();
        assert!(!f.stale_at(now + 9_000) && f.stale_at(now + 10_000));
    }

    #[tokio::test]
    async fn one_background_refresh_at_a_time_from_80_percent() {
        let f = Freshness::unfetched();
        f.renew(&windows(), None);
        let now = f.now_ms();
        assert!(f.claim_refresh(now + 79_000).is_none());
        assert!(f.claim_refresh(now + 80_100).is_some());
        assert!(f.claim_refresh(now + 80_100).is_none(), "one is running");
        f.refresh_finished();
        assert!(f.claim_refresh(now + 80_100).is_some());
    }

    #[test]
    fn no_background_refresh_without_a_runtime() {
        let f = Freshness::unfetched();
        f.failed(&windows());
        assert!(f.claim_refresh(NEVER - 1).is_none());
    }

    #[test]
    fn a_failure_pauses_the_next_fetch() {
        let f = Freshness::unfetched();
        let w = windows();
        f.failed(&w);
        assert!(f.retry_paused(&w));
        let no_pause = Windows {
            retry_after_failure: Duration::ZERO,
            ..w
        };
        assert!(!f.retry_paused(&no_pause));
    }

    #[test]
    fn windows_past_what_milliseconds_hold_saturate_instead_of_wrapping() {
        let f = Freshness::unfetched();
        let w = Windows::new(Duration::MAX, Duration::MAX, Duration::MAX);
        f.failed(&w);
        assert!(f.retry_paused(&w));
        f.renew(
            &Windows {
                max_ttl: Duration::MAX,
                ..w
            },
            None,
        );
        let now = f.now_ms();
        assert!(f.usable_at(now) && !f.stale_at(now));
        assert!(f.usable_at(NEVER - 2));
    }

    #[test]
    fn bounds_never_cross() {
        let mut w = windows();
        w.bound_ttl(Duration::from_secs(60), Duration::from_secs(30));
        assert_eq!(w.ttl_for(None), Duration::from_secs(60));
        assert_eq!(
            w.ttl_for(Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }
}
