//! What JwtAuthGuard costs a request, measured in one run against its
//! baselines: a bare router, and `jsonwebtoken::decode` alone as the floor
//! for a fresh RS256 verification.
//!
//! `cargo bench --bench auth`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use axum::{body::Body, http::Request, routing::get, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use iam_guard::{test_util::TestIam, JwtAuthGuardLayer, Verifier};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

fn request(token: &str) -> Request<Body> {
    Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let iam = rt.block_on(TestIam::start());
    let token = iam.mint(json!({"sub": "bench", "roles": ["teacher"], "exp": 4_000_000_000u64}));

    let bare = Router::new().route("/", get(|| async { "ok" }));
    let cached = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(JwtAuthGuardLayer::new(iam.verifier()));
    let fresh_verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .no_token_cache()
        .build();
    rt.block_on(fresh_verifier.jwks().warm_up()).unwrap();
    let fresh = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(JwtAuthGuardLayer::new(fresh_verifier));
    // Warm the caches before measuring.
    for app in [&cached, &fresh] {
        let res = rt.block_on(app.clone().oneshot(request(&token))).unwrap();
        assert_eq!(res.status(), 200);
    }

    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(iam.key().jwk()).unwrap();
    let key = DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[iam.issuer()]);
    validation.set_audience(&[iam_guard::test_util::TEST_AUDIENCE]);

    let mut g = c.benchmark_group("auth");
    g.bench_function("bare_router", |b| {
        b.iter(|| rt.block_on(bare.clone().oneshot(request(&token))).unwrap())
    });
    g.bench_function("guard_cached_token", |b| {
        b.iter(|| {
            rt.block_on(cached.clone().oneshot(request(&token)))
                .unwrap()
        })
    });
    g.bench_function("guard_fresh_rs256", |b| {
        b.iter(|| rt.block_on(fresh.clone().oneshot(request(&token))).unwrap())
    });
    g.bench_function("jsonwebtoken_decode_rs256", |b| {
        b.iter(|| jsonwebtoken::decode::<Map<String, Value>>(&token, &key, &validation).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
