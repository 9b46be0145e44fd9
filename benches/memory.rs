//! Memory per cached verified token, and memory past the token cache's
//! byte bound.
//!
//! Mints `IAM_GUARD_TOKENS` (default 100,000) distinct EdDSA tokens of
//! about 570 bytes (the size of an RS256 token with the test IAM's default
//! claims, made up here with a tenant, two roles, memberships, scopes and a
//! `jti` rather than a longer signature: signing 100,000 RSA tokens would
//! take minutes), verifies each through `JwtAuthGuardLayer` (one `oneshot`
//! request per token, the token cache on) and reads the resident set size
//! from `/proc/self/statm` before and after.
//!
//! - `unbounded`: the cache bounded far above the run (1,000,000 entries,
//!   16 GiB): RSS growth / cached tokens is the memory per cached token.
//! - `bounded`: the default entry bound lifted, `token_cache_bytes` at
//!   16 MiB: the entry count levels off where the bytes run out and RSS
//!   stays flat from there on (sampled every 10,000 tokens).
//!
//! - `moka`, `moka-expiry`: moka's own bookkeeping per entry, without and
//!   with per-entry expiry (the weighers' `ENTRY_OVERHEAD`).
//! - `text`: what writing parsed claims back out as compact JSON costs
//!   (the fresh path's price for keeping claims as text), beside parsing.
//!
//! `cargo bench --all-features --bench memory` (`-- <mode>` for one).
//! Each mode runs in a process of its own, so one run's freed memory is
//! not the next one's baseline.

#![allow(missing_docs)]

use std::{convert::Infallible, process::Command};

use axum::{body::Body, http::Request, routing::get, Router};
use iam_guard::{
    test_util::{TestIam, TestKey},
    JwtAuthGuardLayer, Verifier,
};
use serde_json::json;
use tokio::runtime::Runtime;
use tower::{Service, ServiceExt};

/// Far enough in the future that no run outlives the tokens.
const EXP: u64 = 4_000_000_000;
/// Tokens minted, signed and verified at a time: minted tokens are
/// dropped after their request, so only the cache's copies stay.
const BATCH: usize = 1_000;
/// The byte bound of the `bounded` run.
const BOUND_BYTES: u64 = 16 << 20;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm's resident field");
    pages * 4096
}

fn run<S>(rt: &Runtime, svc: &S, token: &str) -> u16
where
    S: Service<Request<Body>, Error = Infallible, Response = axum::response::Response> + Clone,
{
    let req = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    rt.block_on(svc.clone().oneshot(req))
        .unwrap()
        .status()
        .as_u16()
}

fn main() {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let total: usize = std::env::var("IAM_GUARD_TOKENS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    match only.as_deref() {
        Some(mode @ ("unbounded" | "bounded")) => measure(mode, total),
        Some("text") => claims_as_text(),
        Some("moka") => moka_overhead(total, false),
        Some("moka-expiry") => moka_overhead(total, true),
        Some(_) => {}
        // Each mode in a process of its own.
        None => {
            let me = std::env::current_exe().expect("own path");
            for mode in ["text", "moka", "moka-expiry", "unbounded", "bounded"] {
                let status = Command::new(&me).arg(mode).status().expect("run a mode");
                assert!(status.success(), "{mode} failed");
            }
        }
    }
}

fn measure(mode: &str, total: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let iam = rt.block_on(TestIam::start_with(vec![TestKey::ed25519("d")]));
    let key = iam.key();
    let verifier = || {
        let builder = Verifier::builder(iam.fetcher(), iam.validation()).token_cache(1_000_000);
        match mode {
            "bounded" => builder.token_cache_bytes(BOUND_BYTES),
            _ => builder.token_cache_bytes(16 << 30),
        }
        .build()
    };
    let app = |verifier: &Verifier| {
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(JwtAuthGuardLayer::new(verifier.clone()))
    };
    let mint = |i: usize| {
        iam.mint_with(
            &key,
            json!({
                "sub": format!("user-{i:07}"),
                "tenantId": "tenant-0042",
                "roles": ["teacher", "class_admin"],
                "organizations": ["tenant-0042", "tenant-0043"],
                "scope": "openid profile students:read grades:write",
                "jti": format!("3f1c9a52-7d2e-4b8a-9c61-{i:012}"),
                "exp": EXP,
            }),
        )
    };
    let sample = mint(0);
    // Warm up on a verifier of its own, then dropped: the runtime, the
    // loopback IAM and the allocator's pools in place, one batch through a
    // token cache and out of it again.
    {
        let warm = verifier();
        let warm_app = app(&warm);
        for i in 0..BATCH {
            assert_eq!(run(&rt, &warm_app, &mint(total + i)), 200);
        }
    }
    let verifier = verifier();
    let app = app(&verifier);
    assert_eq!(run(&rt, &app, &sample), 200);
    let before = rss_bytes();
    println!(
        "memory/{mode}: {total} distinct tokens of {} bytes, token cache {}",
        sample.len(),
        match mode {
            "bounded" => format!("bounded at {} MiB", BOUND_BYTES >> 20),
            _ => "unbounded".to_owned(),
        }
    );
    let mut done = 0;
    while done < total {
        let batch: Vec<String> = (done..(done + BATCH).min(total)).map(mint).collect();
        for token in &batch {
            assert_eq!(run(&rt, &app, token), 200);
        }
        done += batch.len();
        drop(batch);
        if mode == "bounded" && done % 10_000 == 0 {
            let cached = verifier.cached_tokens();
            println!(
                "  after {done:>7} tokens: {cached:>7} cached, RSS +{:>6.1} MiB",
                (rss_bytes().saturating_sub(before)) as f64 / f64::from(1 << 20)
            );
        }
    }
    let cached = verifier.cached_tokens();
    let grown = rss_bytes().saturating_sub(before);
    println!(
        "  {cached} cached, RSS +{:.1} MiB: {:.0} bytes per cached token",
        grown as f64 / f64::from(1 << 20),
        grown as f64 / cached.max(1) as f64
    );
}

/// What moka itself keeps per entry, beyond the key's and the value's own
/// allocations: the constant the weighers add to each entry
/// (`ENTRY_OVERHEAD` in the crate), without and with per-entry expiry
/// (the token cache's `expire_after`). Keys are 16-byte boxed strings (a
/// 32-byte glibc chunk each), values an `Arc<u64>` (a 32-byte chunk): both
/// subtracted.
fn moka_overhead(total: usize, expiry: bool) {
    use std::{
        sync::Arc,
        time::{Duration, Instant},
    };
    struct Hour;
    impl moka::Expiry<Box<str>, Arc<u64>> for Hour {
        fn expire_after_create(&self, _: &Box<str>, _: &Arc<u64>, _: Instant) -> Option<Duration> {
            Some(Duration::from_secs(3600))
        }
    }
    let key = |i: usize| -> Box<str> { format!("{i:016}").into() };
    let builder = moka::sync::Cache::<Box<str>, Arc<u64>>::builder()
        .max_capacity(u64::MAX)
        .weigher(|_, _| 1);
    let cache = if expiry {
        builder.expire_after(Hour).build()
    } else {
        builder.build()
    };
    cache.insert(key(usize::MAX), Arc::new(0));
    cache.run_pending_tasks();
    let before = rss_bytes();
    for i in 0..total {
        cache.insert(key(i), Arc::new(i as u64));
        if i % 1_000 == 0 {
            cache.run_pending_tasks();
        }
    }
    cache.run_pending_tasks();
    let grown = rss_bytes().saturating_sub(before) as f64 / cache.entry_count() as f64;
    println!(
        "memory/moka (per-entry expiry: {expiry}): {} entries, {grown:.0} bytes each, {:.0} of them moka's",
        cache.entry_count(),
        grown - 64.0
    );
}

/// What keeping the claims as text costs a fresh verification: writing
/// the parsed claims of the tokens above back out as compact JSON (what
/// `Claims::new` does), timed over 100,000 rounds, beside parsing them.
fn claims_as_text() {
    use std::{hint::black_box, time::Instant};
    let claims = json!({
        "iss": "http://127.0.0.1:40000", "aud": "iam-guard-tests", "iat": 1_764_000_000,
        "sub": "user-0000001", "tenantId": "tenant-0042",
        "roles": ["teacher", "class_admin"],
        "organizations": ["tenant-0042", "tenant-0043"],
        "scope": "openid profile students:read grades:write",
        "jti": "3f1c9a52-7d2e-4b8a-9c61-000000000001", "exp": EXP,
    });
    let text = claims.to_string();
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    const ROUNDS: u32 = 100_000;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        black_box(serde_json::to_string(black_box(&map)).unwrap());
    }
    let write = start.elapsed() / ROUNDS;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        black_box(
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(black_box(&text))
                .unwrap(),
        );
    }
    let parse = start.elapsed() / ROUNDS;
    println!(
        "memory/text: claims of {} bytes: written out in {write:?}, parsed in {parse:?} (one run, wall clock)",
        text.len()
    );
}
