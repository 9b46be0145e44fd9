//! Caches bounded in bytes as well as in entries.
//!
//! moka allows one capacity per cache: with a weigher, `max_capacity` is
//! the total weight. Every cache of the crate weighs its entries in bytes
//! (an estimate of their heap footprint, [`ENTRY_OVERHEAD`] included) and
//! gives each entry at least an even share of the byte budget per allowed
//! entry, `ceil(bytes / entries)`. Both limits then hold at once: the total
//! weight never exceeds the byte budget, so neither do the estimated
//! bytes; and since no entry weighs less than its share, no more than
//! `entries` entries fit. Small entries are bounded by the count, large
//! ones by the bytes.

/// What moka keeps per entry beyond the key's and the value's own
/// allocations, measured with `benches/memory.rs` (`moka` and
/// `moka-expiry`: RSS growth over 100,000 entries, minus the key and value
/// allocations, on glibc): 326 bytes without per-entry expiry, 375 with it
/// (its timer-wheel node). Rounded up, one figure for every cache.
pub(crate) const ENTRY_OVERHEAD: usize = 384;

/// Heap bytes of a boxed string or slice of `len` bytes: glibc hands out
/// chunks of 16-byte granules with an 8-byte header, 32 bytes at least.
pub(crate) const fn alloc_bytes(len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let chunk = (len + 8 + 15) & !15;
    if chunk < 32 {
        32
    } else {
        chunk
    }
}

/// Heap bytes of a `std` hash table holding `capacity` slots of `slot`
/// bytes: hashbrown keeps at least an eighth of its buckets free, rounds
/// them up to a power of two, and adds a control byte per bucket.
pub(crate) const fn hash_table_bytes(capacity: usize, slot: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    (capacity * 8 / 7).next_power_of_two() * (slot + 1)
}

/// An entry bound and a byte bound for one moka cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bound {
    /// The least weight of an entry: its share of the byte budget.
    floor: u32,
    /// moka's `max_capacity`, in bytes.
    capacity: u64,
}

impl Bound {
    /// At most `entries` entries and `bytes` estimated bytes. Zero of
    /// either caches nothing.
    pub(crate) fn new(entries: u64, bytes: u64) -> Self {
        if entries == 0 {
            return Self {
                floor: u32::MAX,
                capacity: 0,
            };
        }
        // Saturates for shares above 4 GiB, where moka's u32 weights end:
        // the capacity is then lowered to `entries` such shares, so the
        // entry bound still holds.
        let floor = u32::try_from(bytes.div_ceil(entries))
            .unwrap_or(u32::MAX)
            .max(1);
        Self {
            floor,
            capacity: bytes.min(entries.saturating_mul(u64::from(floor))),
        }
    }

    /// moka's `max_capacity` for a cache built with [`weigher`](Self::weigher).
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The weight of an entry of `bytes` estimated bytes.
    pub(crate) fn weight(&self, bytes: usize) -> u32 {
        u32::try_from(bytes).unwrap_or(u32::MAX).max(self.floor)
    }

    /// A moka weigher: `bytes(key, value)` plus [`ENTRY_OVERHEAD`], at
    /// least the entry's share of the budget.
    pub(crate) fn weigher<K, V, F>(self, bytes: F) -> impl Fn(&K, &V) -> u32 + Send + Sync + 'static
    where
        F: Fn(&K, &V) -> usize + Send + Sync + 'static,
    {
        move |k, v| self.weight(bytes(k, v).saturating_add(ENTRY_OVERHEAD))
    }
}

#[cfg(test)]
mod tests {
    use moka::sync::Cache;

    use super::*;

    fn filled(bound: Bound, key_len: usize, n: usize) -> u64 {
        let cache: Cache<Box<str>, ()> = Cache::builder()
            .max_capacity(bound.capacity())
            .weigher(bound.weigher::<Box<str>, (), _>(|k, _| alloc_bytes(k.len())))
            .build();
        for i in 0..n {
            let key = format!("{i:0key_len$}");
            cache.insert(key.into(), ());
            cache.run_pending_tasks();
        }
        cache.run_pending_tasks();
        cache.entry_count()
    }

    #[test]
    fn small_entries_are_bounded_by_count_and_large_ones_by_bytes() {
        // 100 entries or 100 KiB: a 1,024-byte floor per entry.
        let bound = Bound::new(100, 100 << 10);
        assert_eq!(bound.weight(10), 1024);
        assert_eq!(bound.weight(5000), 5000);
        let small = filled(bound, 8, 1_000);
        assert!((1..=100).contains(&small), "{small} small entries");
        // Each ~4.4 KiB with the overhead: 23 fit in 100 KiB.
        let fit = (100 << 10) / (alloc_bytes(4_000) + ENTRY_OVERHEAD) as u64;
        assert_eq!(fit, 23);
        let large = filled(bound, 4_000, 1_000);
        assert!((1..=fit).contains(&large), "{large} large entries");
    }

    #[test]
    fn zero_of_either_caches_nothing_and_nothing_overflows() {
        assert_eq!(Bound::new(0, 1 << 20).capacity(), 0);
        assert_eq!(Bound::new(10, 0).capacity(), 0);
        assert_eq!(filled(Bound::new(0, 1 << 20), 8, 10), 0);
        let huge = Bound::new(1, u64::MAX);
        assert_eq!(huge.capacity(), u64::from(u32::MAX));
        assert_eq!(huge.weight(usize::MAX), u32::MAX);
        assert_eq!(Bound::new(u64::MAX, u64::MAX).weight(0), 1);
    }

    #[test]
    fn allocations_round_to_glibc_chunks() {
        assert_eq!(alloc_bytes(0), 0);
        assert_eq!(alloc_bytes(1), 32);
        assert_eq!(alloc_bytes(24), 32);
        assert_eq!(alloc_bytes(25), 48);
        assert_eq!(alloc_bytes(546), 560);
    }
}
