//! Properties of the field guards' pure core, for random permission sets
//! and random documents: the read filter never leaks a group without READ
//! and copies every readable group byte for byte; the write check never
//! passes a group without WRITE; and both accept damaged documents exactly
//! when serde_json does. 20,000 cases in all.
#![cfg(feature = "test-util")]

use std::collections::BTreeMap;

use iam_guard::model::{
    fields::{
        check_write, filter_document, top_level_keys, InvalidBody, WriteError,
        DEFAULT_ALWAYS_ALLOWED, SYSTEM_FIELDS,
    },
    CompiledPermissions, ScopeAccess,
};
use proptest::prelude::*;
use serde_json::{value::RawValue, Value};

const ENTITY: &str = "students";
const SCOPES: [&str; 9] = [
    "anagraphic",
    "sensitive",
    "attendance",
    "scoring",
    "financial",
    "family",
    "documents",
    "enrollment",
    "others",
];
const CASES: u32 = 4_000;

fn access() -> impl Strategy<Value = ScopeAccess> {
    prop_oneof![
        Just(ScopeAccess::None),
        Just(ScopeAccess::Read),
        Just(ScopeAccess::Write)
    ]
}

/// Random grants on the students scopes (and on a system-field name, which
/// must not help a write), plus noise on another entity.
fn permissions() -> impl Strategy<Value = CompiledPermissions> {
    (
        prop::collection::vec(access(), SCOPES.len()),
        access(),
        access(),
    )
        .prop_map(|(levels, id_level, other)| {
            let mut perms = CompiledPermissions::default();
            for (scope, level) in SCOPES.iter().zip(levels) {
                perms.grant_scope(ENTITY, *scope, level);
            }
            perms.grant_scope(ENTITY, "id", id_level);
            perms.grant_scope("teachers", "sensitive", other);
            perms
        })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(SCOPES.to_vec()).prop_map(str::to_owned),
        2 => prop::sample::select(SYSTEM_FIELDS.to_vec()).prop_map(str::to_owned),
        1 => Just("customFields".to_owned()),
        // `data` and `meta` together would make a page: unit-tested apart.
        1 => "[a-zA-Z_]{1,8}".prop_filter("page keys", |k| k != "data" && k != "meta"),
        // Keys that need escaping in JSON.
        1 => "[a-z\"\\\\/\u{e9}\u{1F600}\t]{1,5}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value as text, compact or pretty (no whitespace around it).
fn value_text() -> impl Strategy<Value = String> {
    (value(), any::<bool>()).prop_map(|(v, pretty)| {
        if pretty {
            serde_json::to_string_pretty(&v).unwrap()
        } else {
            serde_json::to_string(&v).unwrap()
        }
    })
}

/// An entity: unique keys, each with its value's exact text.
type Entity = Vec<(String, String)>;

fn entity() -> impl Strategy<Value = Entity> {
    prop::collection::btree_map(key(), value_text(), 0..10).prop_map(|m| m.into_iter().collect())
}

#[derive(Debug, Clone)]
enum Doc {
    Object(Entity),
    Array(Vec<Entity>),
    Page(Vec<Entity>, String),
}

fn doc() -> impl Strategy<Value = Doc> {
    prop_oneof![
        entity().prop_map(Doc::Object),
        prop::collection::vec(entity(), 0..5).prop_map(Doc::Array),
        (prop::collection::vec(entity(), 0..5), value_text()).prop_map(|(d, m)| Doc::Page(d, m)),
    ]
}

/// Whitespace JSON allows between tokens.
fn ws(seed: &mut u64) -> &'static str {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ["", "", " ", "\n  ", "\t", " \r\n "][(*seed >> 33) as usize % 6]
}

fn render_entity(e: &Entity, seed: &mut u64, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in e.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(ws(seed));
        out.push_str(&serde_json::to_string(k).unwrap());
        out.push_str(ws(seed));
        out.push(':');
        out.push_str(ws(seed));
        out.push_str(v);
        out.push_str(ws(seed));
    }
    out.push('}');
}

fn render_list(items: &[Entity], seed: &mut u64, out: &mut String) {
    out.push('[');
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(ws(seed));
        render_entity(e, seed, out);
    }
    out.push_str(ws(seed));
    out.push(']');
}

fn render(doc: &Doc, mut seed: u64) -> String {
    let mut out = String::new();
    let seed = &mut seed;
    out.push_str(ws(seed));
    match doc {
        Doc::Object(e) => render_entity(e, seed, &mut out),
        Doc::Array(items) => render_list(items, seed, &mut out),
        Doc::Page(items, meta) => {
            out.push_str("{\"meta\":");
            out.push_str(meta);
            out.push_str(",\"data\":");
            out.push_str(ws(seed));
            render_list(items, seed, &mut out);
            out.push('}');
        }
    }
    out.push_str(ws(seed));
    out
}

fn readable(perms: &CompiledPermissions) -> impl Fn(&str) -> bool + '_ {
    move |k| DEFAULT_ALWAYS_ALLOWED.contains(&k) || perms.can_read(ENTITY, k)
}

/// Checks one filtered entity against its input.
fn check_entity(
    out: &RawValue,
    input: &Entity,
    keep: &dyn Fn(&str) -> bool,
) -> Result<(), TestCaseError> {
    let members: Vec<(String, &RawValue)> =
        serde_json::from_str::<BTreeMap<String, &RawValue>>(out.get())
            .map_err(|e| TestCaseError::fail(format!("not an object: {e}")))?
            .into_iter()
            .collect();
    for (k, raw) in &members {
        prop_assert!(keep(k), "`{k}` has no READ but was kept");
        let original = input.iter().find(|(ik, _)| ik == k).map(|(_, v)| v);
        prop_assert_eq!(Some(raw.get()), original.map(String::as_str));
    }
    for (k, v) in input {
        if keep(k) {
            let got = members
                .iter()
                .find(|(ok, _)| ok == k)
                .map(|(_, raw)| raw.get());
            prop_assert_eq!(got, Some(v.as_str()), "readable `{}` changed or lost", k);
        }
    }
    Ok(())
}

fn check_list(
    out: &RawValue,
    input: &[Entity],
    keep: &dyn Fn(&str) -> bool,
) -> Result<(), TestCaseError> {
    let items: Vec<&RawValue> = serde_json::from_str(out.get())
        .map_err(|e| TestCaseError::fail(format!("not an array: {e}")))?;
    prop_assert_eq!(items.len(), input.len());
    for (item, e) in items.iter().zip(input) {
        check_entity(item, e, keep)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Objects, arrays and pages: no group without READ survives, every
    /// readable group survives byte for byte, and a page keeps its meta.
    #[test]
    fn filter_keeps_exactly_the_readable_groups_verbatim(
        perms in permissions(),
        doc in doc(),
        seed in any::<u64>(),
    ) {
        let input = render(&doc, seed);
        let keep = readable(&perms);
        let out = filter_document(input.as_bytes(), &keep)
            .map_err(|e| TestCaseError::fail(format!("{e} in {input}")))?;
        let out = String::from_utf8(out).unwrap();
        let raw: &RawValue = serde_json::from_str(&out)
            .map_err(|e| TestCaseError::fail(format!("output is not JSON ({e}): {out}")))?;
        match &doc {
            Doc::Object(e) => check_entity(raw, e, &keep)?,
            Doc::Array(items) => check_list(raw, items, &keep)?,
            Doc::Page(items, meta) => {
                let page: BTreeMap<String, &RawValue> = serde_json::from_str(&out).unwrap();
                prop_assert_eq!(page.keys().map(String::as_str).collect::<Vec<_>>(), ["data", "meta"]);
                prop_assert_eq!(page["meta"].get(), meta.as_str());
                check_list(page["data"], items, &keep)?;
            }
        }
    }

    /// The write check passes a body exactly when every top-level key is a
    /// scope group with WRITE and none is a system field; otherwise it
    /// names every offending key.
    #[test]
    fn write_check_never_passes_a_group_without_write(
        perms in permissions(),
        body in entity(),
        seed in any::<u64>(),
    ) {
        let text = render(&Doc::Object(body.clone()), seed);
        let can_write = |k: &str| perms.can_write(ENTITY, k);
        let mut offending: Vec<String> = body
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| SYSTEM_FIELDS.contains(&k.as_str()) || !perms.can_write(ENTITY, k))
            .collect();
        offending.sort();
        match check_write(text.as_bytes(), can_write) {
            Ok(()) => prop_assert!(offending.is_empty(), "passed {:?} in {}", offending, text),
            Err(WriteError::Forbidden(keys)) => prop_assert_eq!(keys, offending),
            Err(e) => prop_assert!(false, "valid body refused: {e}: {text}"),
        }
    }

    /// Whatever bytes come in (valid documents with one byte changed), the
    /// filter does not panic, and what it returns is a fixed point: filtering
    /// it again changes nothing, so nothing unreadable is left in it.
    #[test]
    fn filter_output_is_a_fixed_point_even_for_damaged_input(
        perms in permissions(),
        doc in doc(),
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(b'"'), Just(b','), Just(b'{'), Just(b']'), Just(b':'), any::<u8>()],
        damage in any::<bool>(),
    ) {
        let mut input = render(&doc, seed).into_bytes();
        if damage && !input.is_empty() {
            let i = at.index(input.len());
            input[i] = byte;
        }
        let keep = readable(&perms);
        if let Ok(out) = filter_document(&input, &keep) {
            prop_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&out).is_ok());
            let again = filter_document(&out, &keep).expect("filtered output filters");
            prop_assert_eq!(again, out);
        }
    }

    /// The filter's own scanner accepts a damaged document exactly when
    /// serde_json reads it (as UTF-8 JSON): it never copies through a
    /// document a JSON parser would refuse, nor refuses a valid one.
    #[test]
    fn filter_accepts_exactly_what_serde_json_reads(
        perms in permissions(),
        doc in doc(),
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(b'"'), Just(b','), Just(b'{'), Just(b'['), Just(b']'), Just(b'\\'), Just(b'e'), Just(b'-'), any::<u8>()],
        damage in any::<bool>(),
    ) {
        let mut input = render(&doc, seed).into_bytes();
        if damage && !input.is_empty() {
            let i = at.index(input.len());
            input[i] = byte;
        }
        let serde_reads = std::str::from_utf8(&input).is_ok()
            && serde_json::from_slice::<serde::de::IgnoredAny>(&input).is_ok();
        match filter_document(&input, readable(&perms)) {
            Ok(_) => prop_assert!(serde_reads, "accepted what serde_json refuses: {}", String::from_utf8_lossy(&input)),
            Err(e) => prop_assert!(
                !serde_reads
                    || e.to_string().contains("array nested in an array")
                    || e.to_string().contains("invalid escape in a member name"),
                "refused valid JSON ({e}): {}", String::from_utf8_lossy(&input)
            ),
        }
    }

    /// The write check tells "not JSON" from "not an object" exactly as a
    /// handler's serde_json would, for damaged write bodies.
    #[test]
    fn write_check_reads_bodies_as_serde_json_does(
        body in entity(),
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(b'"'), Just(b','), Just(b'{'), Just(b'}'), Just(b'\\'), Just(b' '), any::<u8>()],
    ) {
        let mut input = render(&Doc::Object(body), seed).into_bytes();
        let i = at.index(input.len());
        input[i] = byte;
        let parsed = serde_json::from_slice::<Value>(&input);
        if let Err(e) = &parsed {
            // Grammatical JSON that serde_json cannot hold in an f64.
            prop_assume!(!e.to_string().contains("number out of range"));
        }
        let text = String::from_utf8_lossy(&input).into_owned();
        match (top_level_keys(&input), parsed) {
            (Err(InvalidBody::NotJson), Err(_)) => {}
            (Err(InvalidBody::NotAnObject), Ok(v)) => prop_assert!(!v.is_object(), "{}", text),
            (Err(InvalidBody::DuplicateKey), Ok(Value::Object(_))) => {}
            (Ok(keys), Ok(Value::Object(map))) => {
                prop_assert_eq!(keys.len(), map.len(), "{}", text);
            }
            (ours, serde) => prop_assert!(false, "{:?} vs serde_json {:?}: {}", ours, serde.map(|_| ()), text),
        }
    }
}

/// What a filter without a scanner would do: parse into a `Value`, drop
/// the members `keep` refuses, serialize.
fn value_round_trip(input: &str, keep: &dyn Fn(&str) -> bool) -> Value {
    let filter = |v: &mut Value| {
        if let Value::Object(map) = v {
            map.retain(|k, _| keep(k));
        }
    };
    let mut v: Value = serde_json::from_str(input).unwrap();
    match &mut v {
        Value::Array(items) => items.iter_mut().for_each(filter),
        Value::Object(map)
            if map.contains_key("meta") && map.get("data").is_some_and(Value::is_array) =>
        {
            if let Some(Value::Array(items)) = map.get_mut("data") {
                items.iter_mut().for_each(filter);
            }
        }
        other => filter(other),
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The scanner and a `serde_json::Value` round trip agree on every
    /// document: same members kept, same values (escapes, numbers and
    /// UTF-8 read alike).
    #[test]
    fn filter_agrees_with_the_value_round_trip(
        perms in permissions(),
        doc in doc(),
        seed in any::<u64>(),
    ) {
        let input = render(&doc, seed);
        let keep = readable(&perms);
        let ours = filter_document(input.as_bytes(), &keep)
            .map_err(|e| TestCaseError::fail(format!("{e} in {input}")))?;
        let ours: Value = serde_json::from_slice(&ours).unwrap();
        prop_assert_eq!(ours, value_round_trip(&input, &keep));
    }
}

/// Every input the `fields` fuzz target keeps (its seeds and the crashes
/// it found) is accepted exactly when serde_json reads it, and filtering
/// what was accepted again changes nothing.
#[test]
fn fuzz_corpus_is_judged_as_serde_json_judges_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seen = 0;
    for dir in ["seeds/fields", "regressions/fields"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let input = std::fs::read(entry.unwrap().path()).unwrap();
            let serde_reads = std::str::from_utf8(&input).is_ok()
                && serde_json::from_slice::<serde::de::IgnoredAny>(&input).is_ok();
            let keep = |k: &str| k == "id" || k == "anagraphic";
            match filter_document(&input, keep) {
                Ok(out) => {
                    assert!(serde_reads, "{}", String::from_utf8_lossy(&input));
                    assert_eq!(filter_document(&out, keep).unwrap(), out);
                }
                Err(e) => assert!(
                    !serde_reads
                        || e.to_string().contains("array nested in an array")
                        || e.to_string().contains("invalid escape in a member name"),
                    "refused valid JSON ({e}): {}",
                    String::from_utf8_lossy(&input)
                ),
            }
            seen += 1;
        }
    }
    assert!(seen > 0, "no corpus under fuzz/");
}
