//! A set of short names asked once per top-level key of every filtered
//! response: the groups a caller can read, the always-allowed keys.
//!
//! Scope-group and field names are short and few. Up to [`FEW`] of them
//! are kept as their length and two machine words (their first and last
//! eight bytes), so a lookup compares integers and touches the name's
//! bytes only past sixteen of them; more than that go to a hash set.

use std::{collections::HashSet, mem::size_of};

use rustc_hash::FxBuildHasher;

use crate::cache_bound::{alloc_bytes, hash_table_bytes};

/// Past this many names a hash set beats comparing them one by one.
const FEW: usize = 16;

/// A set of names. See the [module docs](self).
#[derive(Clone, Debug)]
pub(crate) enum NameSet {
    Few(Vec<(Packed, Box<str>)>),
    Many(HashSet<Box<str>, FxBuildHasher>),
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
        Self::Few(Vec::new())
    }
}

/// A name's length and its first and last eight bytes (zero-padded when
/// it is shorter): two names of at most sixteen bytes are equal exactly
/// when these are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packed {
    len: usize,
    head: u64,
    tail: u64,
}

impl Packed {
    fn of(name: &[u8]) -> Self {
        let len = name.len();
        let (head, tail) = if len >= 8 {
            let word = |at: usize| {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&name[at..at + 8]);
                u64::from_le_bytes(bytes)
            };
            (word(0), word(len - 8))
        } else {
            let mut word = 0u64;
            for (i, b) in name.iter().enumerate() {
                word |= u64::from(*b) << (8 * i);
            }
            (word, word)
        };
        Self { len, head, tail }
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
            Self::Few(names) => {
                let packed = Packed::of(name.as_bytes());
                names.iter().any(|(p, stored)| {
                    *p == packed && (packed.len <= 16 || stored.as_bytes() == name.as_bytes())
                })
            }
            Self::Many(names) => names.contains(name),
        }
    }

    /// Adds `name` (once).
    pub(crate) fn insert(&mut self, name: &str) {
        if self.contains(name) {
            return;
        }
        match self {
            Self::Few(names) if names.len() < FEW => {
                names.push((Packed::of(name.as_bytes()), name.into()));
            }
            Self::Few(names) => {
                let mut all: HashSet<Box<str>, FxBuildHasher> =
                    names.drain(..).map(|(_, n)| n).collect();
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
            Self::Few(names) => names.len(),
            Self::Many(names) => names.len(),
        }
    }

    fn names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Self::Few(names) => Box::new(names.iter().map(|(_, n)| &**n)),
            Self::Many(names) => Box::new(names.iter().map(|n| &**n)),
        }
    }

    /// Estimated heap bytes: the slots and each name's allocation.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Self::Few(names) => {
                names.capacity() * size_of::<(Packed, Box<str>)>()
                    + names
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
