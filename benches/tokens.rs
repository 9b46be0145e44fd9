//! What sender-constrained and opaque tokens cost a request, next to
//! bearer tokens, in one run (`oneshot` through an axum 0.8 router):
//!
//! - `tokens/bare`: the router without a guard;
//! - `tokens/bearer_cached_token`: JwtAuthGuard, a cached bearer token;
//! - `tokens/bearer_fresh_rs256`: the same with the token cache off (a
//!   signature check per request);
//! - `tokens/dpop_cached_token_es256`, `tokens/dpop_cached_token_eddsa`: a
//!   cached DPoP-bound token with a fresh proof on every request (the
//!   proof's signature, its claims, the thumbprint and the in-process
//!   replay cache);
//! - `tokens/opaque_cached_introspection`: an opaque token whose
//!   introspection answer is cached (no call to the IAM).
//!
//! Each proof is made (signed) outside the timed part, with criterion's
//! `iter_batched`: only the server's work is measured.
//!
//! `cargo bench --all-features --bench tokens`; instruction counts with
//! `benches/callgrind.sh tokens/<case>` (`IAM_GUARD_COUNT=tokens/<case>:<n>`
//! signs `n` proofs first, then counts only the `n` requests).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::convert::Infallible;

use axum::{body::Body, http::Request, routing::get, Router};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use iam_guard::{
    jwt::dpop::LocalReplayCache,
    test_util::{DpopKey, TestIam, TestKey, DEV_CLIENT_ID, DEV_CLIENT_SECRET},
    Dpop, Introspector, JwtAuthGuardLayer, Verifier,
};
use serde_json::json;
use tokio::runtime::Runtime;
use tower::{Service, ServiceExt};

const URL: &str = "https://api.bench/";

fn request(scheme: &str, token: &str, proof: Option<String>) -> Request<Body> {
    let mut req = Request::get("/")
        .header("host", "api.bench")
        .header("authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        req = req.header("dpop", proof);
    }
    req.body(Body::empty()).unwrap()
}

fn run<S>(rt: &Runtime, svc: &S, req: Request<Body>) -> u16
where
    S: Service<Request<Body>, Response = axum::response::Response, Error = Infallible> + Clone,
{
    let status = rt
        .block_on(svc.clone().oneshot(req))
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 200);
    status
}

fn bench_dpop(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let iam = rt.block_on(TestIam::start_with(vec![TestKey::rsa("k")]));
    let introspector = Introspector::builder(&iam.introspection_url(), iam.issuer())
        .client_secret_basic(DEV_CLIENT_ID, DEV_CLIENT_SECRET)
        .build()
        .unwrap();
    let guarded = |verifier: Verifier| {
        // Room for every proof of a run inside the 70 s window.
        let dpop = Dpop::allowed().replay_cache(LocalReplayCache::new(50_000_000));
        let auth = JwtAuthGuardLayer::new(verifier)
            .dpop(dpop)
            .introspection(introspector.clone());
        Router::new().route("/", get(|| async { "ok" })).layer(auth)
    };
    let bare = Router::new().route("/", get(|| async { "ok" }));
    let cached = guarded(iam.verifier());
    let uncached = guarded(
        Verifier::builder(iam.fetcher(), iam.validation())
            .no_token_cache()
            .build(),
    );
    let plain = iam.mint(json!({}));
    let opaque = iam.mint_opaque(json!({}));
    let es = DpopKey::es256();
    let ed = DpopKey::ed25519();
    let es_token = iam.mint(es.cnf());
    let ed_token = iam.mint(ed.cnf());
    // Warm the key and token caches.
    run(&rt, &cached, request("Bearer", &plain, None));
    run(&rt, &uncached, request("Bearer", &plain, None));
    run(&rt, &cached, request("Bearer", &opaque, None));
    for (key, token) in [(&es, &es_token), (&ed, &ed_token)] {
        run(
            &rt,
            &cached,
            request("DPoP", token, Some(key.proof("GET", URL, token))),
        );
    }

    if let Some((case, n)) = counting() {
        let svc = match case.as_str() {
            "tokens/bare" => &bare,
            "tokens/bearer_fresh_rs256" => &uncached,
            _ => &cached,
        };
        let mut requests: Vec<Request<Body>> = (0..n)
            .map(|_| match case.as_str() {
                "tokens/dpop_cached_token_es256" => {
                    request("DPoP", &es_token, Some(es.proof("GET", URL, &es_token)))
                }
                "tokens/dpop_cached_token_eddsa" => {
                    request("DPoP", &ed_token, Some(ed.proof("GET", URL, &ed_token)))
                }
                "tokens/opaque_cached_introspection" => request("Bearer", &opaque, None),
                _ => request("Bearer", &plain, None),
            })
            .collect();
        count_loop(
            &mut || run(&rt, svc, requests.pop().expect("one request per iteration")),
            n,
        );
        std::process::exit(0);
    }

    let mut g = c.benchmark_group("tokens");
    g.bench_function("bare", |b| {
        b.iter(|| run(&rt, &bare, request("Bearer", &plain, None)))
    });
    g.bench_function("bearer_cached_token", |b| {
        b.iter(|| run(&rt, &cached, request("Bearer", &plain, None)))
    });
    g.bench_function("opaque_cached_introspection", |b| {
        b.iter(|| run(&rt, &cached, request("Bearer", &opaque, None)))
    });
    g.bench_function("bearer_fresh_rs256", |b| {
        b.iter(|| run(&rt, &uncached, request("Bearer", &plain, None)))
    });
    for (name, key, token) in [
        ("dpop_cached_token_es256", &es, &es_token),
        ("dpop_cached_token_eddsa", &ed, &ed_token),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || request("DPoP", token, Some(key.proof("GET", URL, token))),
                |req| run(&rt, &cached, req),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// The case `IAM_GUARD_COUNT=tokens/<name>:<iterations>` asks for.
fn counting() -> Option<(String, usize)> {
    let spec = std::env::var("IAM_GUARD_COUNT").ok()?;
    let (case, n) = spec.rsplit_once(':')?;
    Some((case.to_owned(), n.parse().ok()?))
}

/// The loop callgrind counts (`--toggle-collect=*count_loop*`): proofs
/// are signed before it.
#[inline(never)]
fn count_loop<R>(f: &mut impl FnMut() -> R, n: usize) {
    for _ in 0..n {
        std::hint::black_box(f());
    }
}

criterion_group!(benches, bench_dpop);
criterion_main!(benches);
