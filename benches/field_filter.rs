//! FieldFilter's core against the obvious alternative, in one run: eight-scope
//! student documents of about 1 KB, 8 KB and 64 KB filtered by
//! `model::fields::filter_document` (top-level scan, groups copied raw) and
//! by a `serde_json::Value` parse, `retain`, serialize round trip. Also a
//! 64 KB page, and FieldWriteGuard's check of a 2 KB write body.
//!
//! Run: `cargo bench --bench field_filter -- --warm-up-time 1 --measurement-time 3`.
//! Target (DESIGN.md §8): the core ≥ 5× faster than the round trip at 8 KB,
//! ≥ 1 GB/s at 64 KB.
//!
//! Instruction counts: `benches/callgrind.sh field_filter/scan/record_1KB`
//! (or any `field_filter/<function>/<input>` case below) runs one filter
//! alone under callgrind; `IAM_GUARD_COUNT=<case>:<n>` makes this binary
//! run it `n` times in `count_loop` and exit. Divide by the input's length
//! (`record_1KB` is the 1.3 KB eight-scope record of `benches/auth.rs`'s
//! `stack/*` cases, 1,343 bytes) for instructions per byte.

// criterion_group! expands to an undocumented `pub fn`.
#![allow(missing_docs)]

#[path = "support/documents.rs"]
mod documents;

use documents::{record, student};

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use iam_guard::model::{
    fields::{check_write, filter_document, DEFAULT_ALWAYS_ALLOWED},
    CompiledPermissions, ScopeAccess,
};
use serde_json::{json, Value};

/// The smallest student document of at least `target` bytes.
fn document(target: usize) -> Vec<u8> {
    (0..)
        .map(|fields| serde_json::to_vec(&student(fields)).unwrap())
        .find(|doc| doc.len() >= target)
        .unwrap()
}

/// The case `IAM_GUARD_COUNT=<case>:<iterations>` asks for.
fn counting() -> Option<(String, u64)> {
    let spec = std::env::var("IAM_GUARD_COUNT").ok()?;
    let (case, n) = spec.rsplit_once(':').expect("IAM_GUARD_COUNT=<case>:<n>");
    Some((case.to_owned(), n.parse().expect("an iteration count")))
}

/// The loop callgrind counts (`--toggle-collect=*count_loop*`): building
/// the documents stays outside it.
#[inline(never)]
fn count_loop<R>(n: u64, f: &mut impl FnMut() -> R) {
    for _ in 0..n {
        black_box(f());
    }
}

/// In a counting run for `case`, runs `f` the asked number of times and
/// exits.
fn count_if_asked<R>(case: &str, mut f: impl FnMut() -> R) {
    if let Some((asked, n)) = counting() {
        if asked == case {
            count_loop(n, &mut f);
            std::process::exit(0);
        }
    }
}

/// A teacher's view: four of the eight groups readable.
fn permissions() -> CompiledPermissions {
    let mut perms = CompiledPermissions::default();
    perms
        .grant_scope("students", "anagraphic", ScopeAccess::Write)
        .grant_scope("students", "attendance", ScopeAccess::Write)
        .grant_scope("students", "scoring", ScopeAccess::Read)
        .grant_scope("students", "family", ScopeAccess::Read);
    perms
}

/// Value round trip: what a filter without a scanner would do.
fn value_round_trip(input: &[u8], keep: &dyn Fn(&str) -> bool) -> Vec<u8> {
    fn filter(v: &mut Value, keep: &dyn Fn(&str) -> bool) {
        if let Value::Object(map) = v {
            map.retain(|k, _| keep(k));
        }
    }
    let mut v: Value = serde_json::from_slice(input).unwrap();
    match &mut v {
        Value::Array(items) => items.iter_mut().for_each(|i| filter(i, keep)),
        Value::Object(map)
            if map.contains_key("meta") && map.get("data").is_some_and(Value::is_array) =>
        {
            if let Some(Value::Array(items)) = map.get_mut("data") {
                items.iter_mut().for_each(|i| filter(i, keep));
            }
        }
        other => filter(other, keep),
    }
    serde_json::to_vec(&v).unwrap()
}

fn bench_filter(c: &mut Criterion) {
    let perms = permissions();
    let scopes = perms.scopes().get("students");
    // The predicate FieldFilter builds per response.
    let keep = |k: &str| {
        DEFAULT_ALWAYS_ALLOWED.contains(&k)
            || scopes
                .and_then(|s| s.get(k))
                .is_some_and(|a| *a >= ScopeAccess::Read)
    };

    let mut inputs: Vec<(String, Vec<u8>)> = vec![("record_1KB".into(), record())];
    inputs.extend(
        [1024, 8 * 1024, 64 * 1024]
            .into_iter()
            .map(|size| (format!("object_{}KB", size / 1024), document(size))),
    );
    // A page of 8 KB students, about 64 KB.
    let item: Value = serde_json::from_slice(&document(8 * 1024)).unwrap();
    let page = json!({ "data": vec![item; 8], "meta": { "total": 8, "page": 1 } });
    inputs.push(("page_64KB".into(), serde_json::to_vec(&page).unwrap()));

    let mut group = c.benchmark_group("field_filter");
    for (name, input) in &inputs {
        // Both must agree before their speed is compared.
        let ours: Value = serde_json::from_slice(&filter_document(input, keep).unwrap()).unwrap();
        let theirs: Value = serde_json::from_slice(&value_round_trip(input, &keep)).unwrap();
        assert_eq!(ours, theirs, "{name}");
        if counting().is_some_and(|(case, _)| case.ends_with(&format!("/{name}"))) {
            // callgrind.sh hides this; run the binary alone to see it.
            eprintln!("{name}: {} bytes", input.len());
        }
        count_if_asked(&format!("field_filter/scan/{name}"), || {
            filter_document(black_box(input), keep).unwrap()
        });
        count_if_asked(&format!("field_filter/value_round_trip/{name}"), || {
            value_round_trip(black_box(input), &keep)
        });
        if counting().is_some() {
            continue;
        }

        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("scan", name), input, |b, input| {
            b.iter(|| filter_document(black_box(input), keep).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("value_round_trip", name),
            input,
            |b, input| b.iter(|| value_round_trip(black_box(input), &keep)),
        );
    }
    group.finish();
}

fn bench_write_check(c: &mut Criterion) {
    let perms = permissions();
    let scopes = perms.scopes().get("students");
    let can_write = |k: &str| {
        scopes
            .and_then(|s| s.get(k))
            .is_some_and(|a| *a >= ScopeAccess::Write)
    };
    // A PATCH of the two writable groups, about 2 KB.
    let mut fields = 0;
    let body = loop {
        let doc = student(fields);
        let patch = json!({ "anagraphic": doc["anagraphic"], "attendance": doc["attendance"] });
        let bytes = serde_json::to_vec(&patch).unwrap();
        if bytes.len() >= 2048 {
            break bytes;
        }
        fields += 1;
    };
    assert!(check_write(&body, can_write).is_ok());
    count_if_asked("field_write/check_2KB", || {
        check_write(black_box(&body), can_write).unwrap()
    });
    if counting().is_some() {
        return;
    }

    let mut group = c.benchmark_group("field_write");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("check_2KB", |b| {
        b.iter(|| check_write(black_box(&body), can_write).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_filter, bench_write_check);
criterion_main!(benches);
