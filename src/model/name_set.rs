//! A set of short names asked once per top-level key of every filtered
//! response: the groups a caller can read, the always-allowed keys.
//!
//! Scope-group and field names are short and few. Up to [`FEW`] of them
//! are kept as their length and two machine words (enough to tell apart
//! any two names of at most sixteen bytes), in a small open-addressed
//! table: a lookup packs the name, hashes the words and compares integers
//! in, usually, one slot. It touches a name's bytes only past sixteen of
//! them. More than [`FEW`] names go to a hash set.

use std::{collections::HashSet, mem::size_of};

use rustc_hash::FxBuildHasher;

use crate::cache_bound::{alloc_bytes, hash_table_bytes};

/// Past this many names a hash set beats the small table.
const FEW: usize = 16;

/// Slots of the small table: twice [`FEW`], so that at least half stay
/// empty and a probe ends quickly. A power of two, and at most 255
/// entries are indexed by a byte.
const SLOTS: usize = 32;

/// A set of names. See the [module docs](self).
#[derive(Clone, Debug)]
pub(crate) enum NameSet {
    Few(Few),
    Many(HashSet<Box<str>, FxBuildHasher>),
}

/// Up to [`FEW`] names and the table that finds them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Few {
    names: Vec<(Packed, Box<str>)>,
    /// Open addressing with linear probing: a slot holds an index into
    /// `names` plus one; zero is empty.
    slots: [u8; SLOTS],
}

/// Equal when they hold the same names, in whatever order they came.
impl PartialEq for NameSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.names().all(|name| other.contains(name))
    }
}

impl Eq for NameSet {}

impl Default for NameSet {
    fn default() -> Self {
        Self::Few(Few::default())
    }
}

/// A name's length and up to sixteen of its bytes in two words: two
/// names of at most sixteen bytes are equal exactly when these are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packed {
    len: usize,
    head: u64,
    tail: u64,
}

impl Packed {
    /// Overlapping loads instead of a loop over the bytes: with the length
    /// known, the first and last eight bytes (four, for four to seven; the
    /// first, middle and last, for one to three) hold every byte of a
    /// name of at most sixteen.
    fn of(name: &[u8]) -> Self {
        let len = name.len();
        let (head, tail) = match len {
            8.. => (word(name, 0), word(name, len - 8)),
            4..=7 => (
                u64::from(half(name, 0)) | (u64::from(half(name, len - 4)) << 32),
                0,
            ),
            1..=3 => (
                u64::from(name[0])
                    | (u64::from(name[len / 2]) << 8)
                    | (u64::from(name[len - 1]) << 16),
                0,
            ),
            0 => (0, 0),
        };
        Self { len, head, tail }
    }

    /// The slot where the probe for this name starts.
    fn slot(&self) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(32) ^ self.len as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // The top bits of the product mix every input bit.
        (mixed >> (u64::BITS - SLOTS.trailing_zeros())) as usize
    }
}

fn word(name: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&name[at..at + 8]);
    u64::from_le_bytes(bytes)
}

fn half(name: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&name[at..at + 4]);
    u32::from_le_bytes(bytes)
}

/// Past sixteen bytes the packed words do not decide: the bytes do. Out
/// of line, so that the short names' loop keeps its registers.
#[cold]
#[inline(never)]
fn same_long_name(stored: &str, name: &[u8]) -> bool {
    stored.as_bytes() == name
}

impl Few {
    fn contains(&self, name: &[u8]) -> bool {
        let packed = Packed::of(name);
        let mut at = packed.slot();
        // Ends: at most FEW of the SLOTS slots are taken.
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return false;
            }
            let (stored, text) = &self.names[usize::from(slot - 1)];
            if *stored == packed && (packed.len <= 16 || same_long_name(text, name)) {
                return true;
            }
            at = (at + 1) & (SLOTS - 1);
        }
    }

    /// Adds a name that is not in the table; there is room for it.
    fn push(&mut self, name: &str) {
        let packed = Packed::of(name.as_bytes());
        let mut at = packed.slot();
        while self.slots[at] != 0 {
            at = (at + 1) & (SLOTS - 1);
        }
        self.names.push((packed, name.into()));
        // At most FEW (< 255) names: the index fits a byte.
        self.slots[at] = self.names.len() as u8;
    }
}

impl NameSet {
    /// The set of `names`.
    pub(crate) fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = Self::default();
        for name in names {
            set.insert(name);
        }
        set
    }

    /// Whether `name` is in the set.
    pub(crate) fn contains(&self, name: &str) -> bool {
        match self {
            Self::Few(few) => few.contains(name.as_bytes()),
            Self::Many(names) => names.contains(name),
        }
    }

    /// Adds `name` (once).
    pub(crate) fn insert(&mut self, name: &str) {
        if self.contains(name) {
            return;
        }
        match self {
            Self::Few(few) if few.names.len() < FEW => few.push(name),
            Self::Few(few) => {
                let mut all: HashSet<Box<str>, FxBuildHasher> =
                    few.names.drain(..).map(|(_, n)| n).collect();
                all.insert(name.into());
                *self = Self::Many(all);
            }
            Self::Many(names) => {
                names.insert(name.into());
            }
        }
    }

    /// How many names it holds.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Few(few) => few.names.len(),
            Self::Many(names) => names.len(),
        }
    }

    fn names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Self::Few(few) => Box::new(few.names.iter().map(|(_, n)| &**n)),
            Self::Many(names) => Box::new(names.iter().map(|n| &**n)),
        }
    }

    /// Estimated heap bytes: the entries and each name's allocation (the
    /// small table's slots are inline).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Self::Few(few) => {
                few.names.capacity() * size_of::<(Packed, Box<str>)>()
                    + few
                        .names
                        .iter()
                        .map(|(_, n)| alloc_bytes(n.len()))
                        .sum::<usize>()
            }
            Self::Many(names) => {
                hash_table_bytes(names.capacity(), size_of::<Box<str>>())
                    + names.iter().map(|n| alloc_bytes(n.len())).sum::<usize>()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_that_share_their_ends_or_their_length_are_told_apart() {
        let set = NameSet::of([
            "id",
            "createdAt",
            "updatedAt",
            "a_name_of_twenty_bytes",
            "a_name_of_twenty_byte_",
        ]);
        for name in ["id", "createdAt", "updatedAt", "a_name_of_twenty_bytes"] {
            assert!(set.contains(name), "{name}");
        }
        // Same length, same first and last eight bytes, another middle.
        assert!(!set.contains("a_name_oX_twenty_bytes"));
        for name in [
            "",
            "i",
            "d",
            "id\0",
            "ic",
            "createdA",
            "createdAt ",
            "updatedAT",
        ] {
            assert!(!set.contains(name), "{name:?}");
        }
        assert!(!NameSet::default().contains(""));
        assert!(NameSet::of([""]).contains(""));
    }

    #[test]
    fn sixteen_names_of_every_short_length_share_the_small_table() {
        // Lengths 1 to 16 (each packing rule) and names that differ in one
        // byte only, so that slots collide and probes wrap around.
        let names: Vec<String> = (1..=16).map(|n| "x".repeat(n - 1) + "y").collect();
        let set = NameSet::of(names.iter().map(String::as_str));
        assert!(matches!(set, NameSet::Few(_)));
        assert!(names.iter().all(|n| set.contains(n)));
        for n in 1..=17 {
            assert!(!set.contains(&"x".repeat(n)), "{n}");
            assert!(!set.contains(&("y".to_owned() + &"x".repeat(n))), "{n}");
        }
        // One to three bytes: first, middle and last.
        let short = NameSet::of(["ab", "abc", "acc", "a"]);
        assert!(short.contains("abc") && short.contains("acc") && short.contains("a"));
        assert!(!short.contains("aac") && !short.contains("b") && !short.contains("ba"));
    }

    #[test]
    fn past_sixteen_names_it_hashes_them_and_keeps_every_one() {
        let names: Vec<String> = (0..40).map(|i| format!("group{i}")).collect();
        let set = NameSet::of(names.iter().map(String::as_str));
        assert!(matches!(set, NameSet::Many(_)));
        assert_eq!(set.len(), 40);
        assert!(names.iter().all(|n| set.contains(n)));
        assert!(!set.contains("group40"));
    }

    #[test]
    fn equal_sets_are_equal_whatever_the_order() {
        assert_eq!(
            NameSet::of(["a", "b", "c"]),
            NameSet::of(["c", "a", "b", "a"])
        );
        assert_ne!(NameSet::of(["a", "b"]), NameSet::of(["a", "b", "c"]));
        assert_ne!(NameSet::of(["a", "b"]), NameSet::of(["a", "c"]));
        let many: Vec<String> = (0..20).map(|i| format!("g{i}")).collect();
        let forward = NameSet::of(many.iter().map(String::as_str));
        let backward = NameSet::of(many.iter().rev().map(String::as_str));
        assert_eq!(forward, backward);
    }

    proptest! {
        /// Whatever the names (ASCII or not, any length, NUL bytes), the set
        /// answers as a set of strings does.
        #[test]
        fn answers_as_a_set_of_strings(
            names in prop::collection::vec("[a-c\\x00é]{0,20}", 0..24),
            probes in prop::collection::vec("[a-c\\x00é]{0,20}", 0..24),
        ) {
            let set = NameSet::of(names.iter().map(String::as_str));
            let reference: std::collections::BTreeSet<&str> =
                names.iter().map(String::as_str).collect();
            prop_assert_eq!(set.len(), reference.len());
            for probe in names.iter().chain(&probes) {
                prop_assert_eq!(set.contains(probe), reference.contains(probe.as_str()), "{:?}", probe);
            }
        }
    }
}
