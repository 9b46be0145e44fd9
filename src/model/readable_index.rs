//! The scope groups a caller can read, per entity, in name sets.
//!
//! The keep rule of every filtered response asks "can this caller read
//! the group named by this top-level key?" once per key. The permissions
//! keep their groups in ordered maps (for stable output and documents),
//! where a lookup compares the key with several names byte by byte; a
//! [`NameSet`] of the same names answers with integer comparisons.
//! Every group stored in [`CompiledPermissions`](super::CompiledPermissions)
//! is readable (NONE is never stored), so this holds exactly its names.

use std::{collections::HashMap, fmt, mem::size_of};

use rustc_hash::FxBuildHasher;

use super::name_set::NameSet;
use crate::cache_bound::{alloc_bytes, hash_table_bytes};

/// Per entity, the groups the caller can read.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ReadableIndex(HashMap<Box<str>, ReadableGroups, FxBuildHasher>);

/// The groups of one entity the caller can read.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ReadableGroups(NameSet);

impl ReadableGroups {
    /// Whether `group` is one of them.
    pub(crate) fn contains(&self, group: &str) -> bool {
        self.0.contains(group)
    }
}

impl ReadableIndex {
    /// No entity, no group.
    pub(crate) const fn new() -> Self {
        Self(HashMap::with_hasher(FxBuildHasher))
    }

    /// Records that `group` of `entity` is readable.
    pub(crate) fn insert(&mut self, entity: &str, group: &str) {
        match self.0.get_mut(entity) {
            Some(groups) => groups.0.insert(group),
            None => {
                let mut groups = ReadableGroups::default();
                groups.0.insert(group);
                self.0.insert(entity.into(), groups);
            }
        }
    }

    /// The readable groups of `entity`, `None` when it has none.
    pub(crate) fn groups(&self, entity: &str) -> Option<&ReadableGroups> {
        self.0.get(entity)
    }

    /// Estimated heap bytes: the table, each entity name and its groups.
    pub(crate) fn heap_bytes(&self) -> usize {
        hash_table_bytes(self.0.capacity(), size_of::<(Box<str>, ReadableGroups)>())
            + self
                .0
                .iter()
                .map(|(entity, groups)| alloc_bytes(entity.len()) + groups.0.heap_bytes())
                .sum::<usize>()
    }
}

impl fmt::Debug for ReadableIndex {
    // Derived from the permissions' scopes, which their Debug shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("..")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_each_pair_once_and_answers_per_entity() {
        let mut index = ReadableIndex::new();
        index.insert("students", "anagraphic");
        index.insert("students", "anagraphic");
        index.insert("students", "attendance");
        index.insert("teachers", "payroll");
        let students = index.groups("students").unwrap();
        assert!(students.contains("anagraphic") && students.contains("attendance"));
        assert!(!students.contains("payroll") && !students.contains("anagraphi"));
        assert_eq!(students.0.len(), 2);
        assert!(index.groups("teachers").unwrap().contains("payroll"));
        assert!(index.groups("courses").is_none());
        assert!(index.heap_bytes() > 0);
        assert_eq!(ReadableIndex::new().heap_bytes(), 0);
    }
}
