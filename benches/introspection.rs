//! Opaque-token introspection: a request whose token's answer is cached
//! (the SHA-256 of the token, a moka lookup, the clock checks and the
//! principal), through the public `Introspector::check`.
//!
//! `cargo bench --bench introspection`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::{hint::black_box, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion};
use iam_guard::{jwt::introspection::Introspector, test_util::IntrospectionEndpoint};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A 43-character handle, the size oidc-provider and most IAMs issue.
    let token = "k3Zt0bV9yQm2Lr8sWx1uNc4pHf7aJd6eGi5oTq0vBnY";
    let (iam, introspector) = rt.block_on(async {
        let iam = IntrospectionEndpoint::start().await;
        iam.answer(
            token,
            json!({
                "active": true,
                "sub": "u-1",
                "tenantId": "t-1",
                "roles": ["teacher"],
                "scope": "students:read",
                "exp": 4_000_000_000u64,
            }),
        );
        let introspector = Introspector::builder(&iam.url(), &iam.issuer())
            .client_secret_basic(iam.client_id(), iam.client_secret())
            .build()
            .unwrap();
        // Only this call reaches the endpoint; the measured ones are hits.
        introspector.check(token).await.unwrap();
        (iam, introspector)
    });

    let mut g = c.benchmark_group("introspection");
    g.bench_function("cache_hit", |b| {
        b.iter(|| rt.block_on(introspector.check(black_box(token))).unwrap())
    });
    g.finish();
    assert_eq!(iam.requests(), 1, "every measured check was a cache hit");
    assert_eq!(introspector.calls(), 1);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
