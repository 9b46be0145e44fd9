//! The JSON documents the benches send through the field guards, shared so
//! that every bench measures the same shapes: `#[path]`-included by
//! `auth.rs`, `field_filter.rs` and `scaling.rs` (a file under a folder of
//! `benches/` is not a bench of its own).

// Each bench uses a part of this file.
#![allow(dead_code)]

use serde_json::{json, Map, Value};

/// The students catalogue's eight scope groups.
pub(crate) const SCOPES: [&str; 8] = [
    "anagraphic",
    "sensitive",
    "attendance",
    "scoring",
    "financial",
    "family",
    "documents",
    "enrollment",
];

/// A student with eight scope groups, each with `fields` members and
/// custom fields, like the product's response shape.
pub(crate) fn student(fields: usize) -> Value {
    let mut doc = Map::new();
    doc.insert("id".into(), "6f1c2a4e-1111-2222-3333-444455556666".into());
    for scope in SCOPES {
        let mut group = Map::new();
        for i in 0..fields {
            group.insert(
                format!("field{i}"),
                format!("value {i} of {scope}, some text").into(),
            );
            group.insert(format!("count{i}"), (i as f64 * 1.25).into());
        }
        group.insert(
            "customFields".into(),
            json!({ "nickname": "Marc", "flag": true, "since": "2024-09-01" }),
        );
        doc.insert(scope.into(), group.into());
    }
    doc.insert("createdAt".into(), "2026-03-01T10:00:00Z".into());
    doc.insert("updatedAt".into(), "2026-03-02T10:00:00Z".into());
    Value::Object(doc)
}

/// The 1.3 KB eight-scope student record of the `stack/*` cases, as a
/// handler would send it.
pub(crate) fn record() -> Vec<u8> {
    let mut doc = Map::new();
    doc.insert("id".into(), "s-1".into());
    for scope in SCOPES {
        doc.insert(
            scope.into(),
            json!({
                "field0": format!("value 0 of {scope}"),
                "field1": format!("value 1 of {scope}, some text"),
                "count": 12.5,
                "customFields": {"nickname": "Marc", "flag": true},
            }),
        );
    }
    doc.insert("createdAt".into(), "2026-03-01T10:00:00Z".into());
    doc.insert("updatedAt".into(), "2026-03-02T10:00:00Z".into());
    serde_json::to_vec(&doc).unwrap()
}
