//! Permission compilation and lookups: compiling 10 roles over 10
//! entities × 8 scopes, a guard check on compiled permissions, and a
//! cross-request cache hit of `RemoteSource`.
//!
//! `cargo bench --bench permissions`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::{hint::black_box, time::Duration};

use axum::{routing::get, Json, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use iam_guard::{
    model::{Catalogue, Requirement, ScopeAccess},
    permissions::{remote::RemoteSource, source::PermissionSource},
    test_util::principal,
};
use serde_json::{json, Value};

/// 10 entities × 8 scopes, a `create` action needing two WRITEs per entity,
/// and 10 roles each granting a different mix on every entity.
fn catalogue() -> Catalogue {
    let entities: Vec<Value> = (0..10)
        .map(|e| {
            json!({
                "key": format!("e{e}"),
                "scopes": (0..8).map(|s| json!({"key": format!("s{s}"), "fields": [format!("f{s}")]})).collect::<Vec<_>>(),
                "actions": [{"key": "create", "requires": {"s0": "WRITE", "s1": "WRITE"}}],
            })
        })
        .collect();
    let roles: Vec<Value> = (0..10)
        .map(|r| {
            let scopes: serde_json::Map<String, Value> = (0..10)
                .map(|e| {
                    let access: serde_json::Map<String, Value> = (0..8)
                        .map(|s| {
                            let level = ["NONE", "READ", "WRITE"][(r + e + s) % 3];
                            (format!("s{s}"), json!(level))
                        })
                        .collect();
                    (format!("e{e}"), Value::Object(access))
                })
                .collect();
            json!({
                "id": format!("r{r}"),
                "name": format!("role {r}"),
                "scopes": scopes,
                "actions": (0..10).map(|e| format!("e{e}.create")).collect::<Vec<_>>(),
                "permissions": [format!("p{r}")],
            })
        })
        .collect();
    Catalogue::from_json(&json!({"entities": entities, "roles": roles}).to_string())
        .expect("a consistent catalogue")
}

fn bench(c: &mut Criterion) {
    let catalogue = catalogue();
    let roles: Vec<String> = (0..10).map(|r| format!("r{r}")).collect();
    let compiled = catalogue.compile_roles(&roles);

    let mut g = c.benchmark_group("permissions");
    g.bench_function("compile_10_roles_10x8", |b| {
        b.iter(|| catalogue.compile_roles(black_box(&roles)))
    });
    let scope = Requirement::scopes("e7", ScopeAccess::Write);
    let action = Requirement::action("e7", "create");
    g.bench_function("check_scope_requirement", |b| {
        b.iter(|| black_box(&scope).evaluate(black_box(&compiled)))
    });
    g.bench_function("check_action_requirement", |b| {
        b.iter(|| black_box(&action).evaluate(black_box(&compiled)))
    });

    // A loopback IAM answering GET /permissions; only the first load
    // reaches it, the measured loads are cache hits.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let doc =
            json!({"students": {"scopes": {"anagraphic": "WRITE"}, "actions": {"create": true}}});
        let app = Router::new().route(
            "/permissions",
            get(move || async move { Json(doc.clone()) }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/permissions")
    });
    let remote = RemoteSource::builder(url).build().unwrap();
    let caller = principal(json!({"sub": "u-1", "tenantId": "t-1"}));
    rt.block_on(remote.load(&caller)).unwrap();
    g.bench_function("remote_source_cache_hit", |b| {
        b.iter(|| rt.block_on(remote.load(black_box(&caller))).unwrap())
    });
    assert_eq!(
        remote.fetch_count(),
        1,
        "every measured load was a cache hit"
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
