//! The top-level members of a verified token's claims set, as the
//! verification reads them once: the registered-claim checks, the issuer
//! and claim checks, and the [`ClaimMapping`](super::ClaimMapping) that
//! takes the user, tenant, roles and scopes out of them.
//!
//! A claims set is a handful of members, read about ten times and then
//! dropped. Kept in the order they came, with their names borrowed from the
//! decoded payload (when a name holds no escape), they cost no map to
//! build or tear down and no allocation per name; a lookup compares
//! lengths first, so most members are passed over with one comparison.

use std::{borrow::Cow, fmt};

use serde::{
    de::{MapAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::{Map, Value};

/// Top-level claims by name: a parsed map, or a [`ClaimSet`].
pub(crate) trait ClaimLookup {
    /// The top-level claim `name`, if present.
    fn claim(&self, name: &str) -> Option<&Value>;
}

impl<T: ClaimLookup + ?Sized> ClaimLookup for &T {
    fn claim(&self, name: &str) -> Option<&Value> {
        (**self).claim(name)
    }
}

impl ClaimLookup for Map<String, Value> {
    fn claim(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// A claims set's members, names borrowed from the JSON text they were
/// read from. See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct ClaimSet<'a> {
    members: Vec<(Cow<'a, str>, Value)>,
}

impl ClaimLookup for ClaimSet<'_> {
    fn claim(&self, name: &str) -> Option<&Value> {
        // The last of two members with one name counts, as in a map
        // (RFC 7519 §4 lets a parser keep the lexically last one).
        self.members
            .iter()
            .rev()
            .find(|(member, _)| member.as_ref() == name)
            .map(|(_, value)| value)
    }
}

/// Only a JSON object is a claims set (RFC 7519 §7.2): an array or any
/// other value is refused, as a map would refuse it.
impl<'de> Deserialize<'de> for ClaimSet<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// Most tokens carry fewer members than this: one allocation for them.
const USUAL_MEMBERS: usize = 16;

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = ClaimSet<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(USUAL_MEMBERS));
        while let Some(Name(name)) = map.next_key()? {
            members.push((name, map.next_value()?));
        }
        Ok(ClaimSet { members })
    }
}

/// A member's name: borrowed unless it had to be unescaped.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(name)))
            }

            fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }

            fn visit_string<E>(self, name: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn members_are_found_by_their_unescaped_names_and_the_last_duplicate_counts() {
        let text = r#"{"sub":"u-1","t\u0069d":"t-1","roles":["a"],"sub":"u-2","":0}"#;
        let set: ClaimSet<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(set.claim("sub"), Some(&json!("u-2")));
        assert_eq!(set.claim("tid"), Some(&json!("t-1")));
        assert_eq!(set.claim("roles"), Some(&json!(["a"])));
        assert_eq!(set.claim(""), Some(&json!(0)));
        assert_eq!(set.claim("su"), None);
        assert_eq!(set.claim("subs"), None);
        // Names without escapes are not copied.
        assert!(matches!(set.members[0].0, Cow::Borrowed("sub")));
        assert!(matches!(set.members[1].0, Cow::Owned(_)));
    }

    #[test]
    fn only_an_object_is_a_claims_set() {
        for text in [
            r#"["sub","u-1"]"#,
            r#""sub""#,
            "1",
            "null",
            "{",
            r#"{"a":}"#,
        ] {
            assert!(
                serde_json::from_str::<ClaimSet<'_>>(text).is_err(),
                "{text}"
            );
        }
        assert!(serde_json::from_str::<ClaimSet<'_>>("{}")
            .unwrap()
            .members
            .is_empty());
    }

    proptest! {
        /// Whatever the object, a member is what a map parsed from the
        /// same text holds under that name.
        #[test]
        fn answers_as_a_map_parsed_from_the_same_text(
            members in prop::collection::vec(("[a-c\\\\\"é]{0,4}", 0u8..3), 0..12),
            probes in prop::collection::vec("[a-c\\\\\"é]{0,4}", 0..8),
        ) {
            let object: Vec<String> = members
                .iter()
                .map(|(name, v)| format!("{}:{v}", Value::from(name.as_str())))
                .collect();
            let text = format!("{{{}}}", object.join(","));
            let map: Map<String, Value> = serde_json::from_str(&text).unwrap();
            let set: ClaimSet<'_> = serde_json::from_str(&text).unwrap();
            for name in members.iter().map(|(n, _)| n).chain(&probes) {
                prop_assert_eq!(set.claim(name), map.get(name), "{}", text);
            }
        }
    }
}
