//! The JWKS fetcher end to end: a real loopback test IAM over HTTP, tokens
//! through an axum router with `JwtAuthGuardLayer`, and the IAM counting
//! every fetch that reaches it.
#![cfg(feature = "test-util")]

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::Router;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use common::*;
use http::StatusCode;
use iam_guard::{
    jwt::{
        jwks::{JwksFetcher, JwksFetcherBuilder, DEFAULT_COOLDOWN, DEFAULT_TTL},
        source::FetchError,
    },
    test_util::{IamMode, TestIam, TestKey},
    JwtAuthGuardLayer, Verifier,
};
use serde_json::{json, Value};
use tokio::sync::Barrier;

/// How long a poll waits for something that should take a second or two.
/// Only reached when the behaviour is broken; generous for loaded machines.
const PATIENCE: Duration = Duration::from_secs(15);
/// Pause between two polls.
const POLL: Duration = Duration::from_millis(25);

const OK: StatusCode = StatusCode::OK;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
const UNAVAILABLE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

fn guarded(verifier: &Verifier) -> Router {
    app(JwtAuthGuardLayer::new(verifier.clone()))
}

/// A router verifying with `fetcher`'s keys and no token cache: what keeps
/// a token working is the key, not a cached verification.
fn guarded_by_keys(iam: &TestIam, fetcher: &JwksFetcher) -> Router {
    let verifier = Verifier::builder(fetcher.clone(), iam.validation())
        .no_token_cache()
        .build();
    guarded(&verifier)
}

/// A builder with a short pause after failures, so recovery tests do not
/// wait the default second per attempt.
fn builder() -> JwksFetcherBuilder {
    JwksFetcher::builder().retry_after_failure(Duration::from_millis(50))
}

async fn status(app: &Router, token: &str) -> StatusCode {
    let (status, body) = call(app, bearer(token)).await;
    assert!(
        status == OK || !body.is_empty(),
        "a rejection without a body: {status}"
    );
    status
}

/// Asserts a 503 `IAM_UNAVAILABLE`: no keys, so no guess (never 401/500).
async fn assert_iam_unavailable(app: &Router, token: &str) {
    let (status, _, body) = call_json(app, bearer(token)).await;
    assert_eq!(status, UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "IAM_UNAVAILABLE", "{body}");
    assert_eq!(body["statusCode"], 503, "{body}");
}

/// Asserts a 401 `invalid_token`.
async fn assert_invalid_token(app: &Router, token: &str) {
    let (status, _, body) = call_json(app, bearer(token)).await;
    assert_eq!(status, UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "invalid_token", "{body}");
}

/// Sends `token` until the answer is `want`; every other answer on the way
/// must be one of `meanwhile`. Returns the JSON body of the `want` answer.
async fn until_status(
    app: &Router,
    token: &str,
    want: StatusCode,
    meanwhile: &[StatusCode],
) -> Value {
    until_status_with(app, || token.to_owned(), want, meanwhile).await
}

/// Like [`until_status`], with a token from `token` for each attempt.
async fn until_status_with(
    app: &Router,
    mut token: impl FnMut() -> String,
    want: StatusCode,
    meanwhile: &[StatusCode],
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, _, body) = call_json(app, bearer(&token())).await;
        if status == want {
            return body;
        }
        assert!(
            meanwhile.contains(&status),
            "{status} while waiting for {want}: {body}"
        );
        assert!(
            Instant::now() < deadline,
            "still {status} after {PATIENCE:?} waiting for {want}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `done` holds.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// `token` with its header replaced by one naming `kid`. The signature no
/// longer matches, which does not matter: an unknown kid is refused before
/// any signature is checked.
fn with_kid(token: &str, kid: &str) -> String {
    let (_, rest) = token.split_once('.').expect("a JWS");
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

// --- Unknown kid: one refetch, single-flight, then a cooldown ----------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_kid_is_fetched_once_for_100_concurrent_requests() {
    let iam = TestIam::start().await;
    let verifier = iam.verifier();
    let app = guarded(&verifier);
    assert_eq!(status(&app, &iam.mint(json!({}))).await, OK);
    assert_eq!(iam.jwks_fetches(), 1);

    // The IAM rotates a key in; 100 callers present it at once, each with
    // its own token so none is answered from the verified-token cache.
    let new_key = iam.add_key(TestKey::rsa("rsa-2"));
    let before = iam.jwks_fetches();
    let barrier = Arc::new(Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let token = iam.mint_with(&new_key, json!({"sub": format!("user-{i}")}));
            let (app, barrier) = (app.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                call(&app, bearer(&token)).await
            })
        })
        .collect();
    for task in tasks {
        let (status, body) = task.await.expect("request task");
        assert_eq!(status, OK, "{body}");
    }
    assert_eq!(iam.jwks_fetches() - before, 1, "single-flight: one fetch");
    assert_eq!(verifier.signature_checks(), 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spray_of_random_kids_costs_the_iam_at_most_two_fetches() {
    assert_eq!(DEFAULT_COOLDOWN, Duration::from_secs(30));
    let iam = TestIam::start().await;
    let verifier = iam.verifier(); // default cooldown
    let app = guarded(&verifier);
    let valid = iam.mint(json!({}));

    // From a cold start: the first kid fetches (no keys yet), the second
    // forces one refetch, and the cooldown answers the rest from the
    // negative cache.
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos() as u64
        | 1;
    let mut random_kid = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        format!("{seed:016x}")
    };
    let mut sent = 0;
    for _ in 0..20 {
        let tasks: Vec<_> = (0..500)
            .map(|_| {
                let token = with_kid(&valid, &random_kid());
                let app = app.clone();
                tokio::spawn(async move { call_json(&app, bearer(&token)).await })
            })
            .collect();
        for task in tasks {
            let (status, _, body) = task.await.expect("request task");
            assert_eq!(status, UNAUTHORIZED, "{body}");
            assert_eq!(body["code"], "invalid_token", "{body}");
            sent += 1;
        }
    }
    assert_eq!(sent, 10_000);
    let fetches = iam.jwks_fetches();
    assert!(
        (1..=2).contains(&fetches),
        "{fetches} fetches for the spray"
    );
    assert_eq!(verifier.signature_checks(), 0);

    // Real traffic is unaffected and needs no fetch: its kid is cached.
    assert_eq!(status(&app, &valid).await, OK);
    assert_eq!(iam.jwks_fetches(), fetches);
}

#[tokio::test]
async fn after_the_cooldown_an_unknown_kid_is_fetched_again() {
    let iam = TestIam::start().await;
    let new_key = TestKey::rsa("rsa-2");
    let fetcher = builder()
        .cooldown(Duration::from_secs(2))
        .jwks_uri(&iam.jwks_uri())
        .unwrap();
    let app = guarded(&Verifier::new(fetcher, iam.validation()));
    let valid = iam.mint(json!({}));
    assert_eq!(status(&app, &valid).await, OK);
    assert_eq!(iam.jwks_fetches(), 1);

    // An unknown kid forces a refetch and starts the cooldown ...
    assert_invalid_token(&app, &with_kid(&valid, "nope-1")).await;
    assert_eq!(iam.jwks_fetches(), 2);
    // ... during which even a key the IAM has just published is unknown
    // without asking the IAM (the price of not being hammerable).
    let new_key = iam.add_key(new_key);
    let rotated = iam.mint_with(&new_key, json!({}));
    assert_invalid_token(&app, &rotated).await;
    assert_invalid_token(&app, &with_kid(&valid, "nope-2")).await;
    assert_eq!(iam.jwks_fetches(), 2);

    // Once the cooldown is over, the kid is fetched: exactly once more.
    until_status(&app, &rotated, OK, &[UNAUTHORIZED]).await;
    assert_eq!(iam.jwks_fetches(), 3);
}

// --- Rotation -------------------------------------------------------------

#[tokio::test]
async fn a_new_key_works_at_once_and_a_removed_key_stops_after_the_next_refresh() {
    let iam = TestIam::start().await;
    let second = TestKey::rsa("rsa-2");
    let fetcher = builder()
        .ttl_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .jwks_uri(&iam.jwks_uri())
        .unwrap();
    let verifier = Verifier::new(fetcher.clone(), iam.validation());
    let app = guarded(&verifier);

    // A token of the first key, verified once and then served from the
    // verified-token cache.
    let old = iam.mint(json!({"sub": "old"}));
    assert_eq!(status(&app, &old).await, OK);
    assert_eq!(status(&app, &old).await, OK);
    assert_eq!(verifier.signature_checks(), 1, "the repeat is a cache hit");
    assert_eq!(iam.jwks_fetches(), 1);

    // The IAM publishes a second key (and from now on a short max-age):
    // its token is accepted on its very first request.
    iam.set_cache_control(Some("max-age=1"));
    let second = iam.add_key(second);
    let new = iam.mint_with(&second, json!({"sub": "new"}));
    assert_eq!(status(&app, &new).await, OK);
    assert_eq!(iam.jwks_fetches(), 2);

    // The IAM withdraws the first key. Until a refresh notices, the old
    // token is still served (from the cache); the refresh is due 0.8 s
    // after the last fetch and runs in the background.
    iam.remove_key("rsa-1");
    assert_eq!(status(&app, &old).await, OK);
    let body = until_status(&app, &old, UNAUTHORIZED, &[OK]).await;
    assert_eq!(body["code"], "invalid_token", "{body}");
    assert!(iam.jwks_fetches() >= 3);
    assert_eq!(fetcher.kids(), ["rsa-2"]);
    // The cache did not keep it, and it stays refused.
    assert_invalid_token(&app, &old).await;
    assert_eq!(status(&app, &new).await, OK);
}

#[tokio::test]
async fn a_key_rotated_out_during_an_outage_takes_its_cached_tokens_with_it() {
    let iam = TestIam::start().await;
    let second = TestKey::rsa("rsa-2");
    let fetcher = builder()
        .ttl(Duration::from_millis(200))
        .ttl_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .stale_if_error(Duration::from_secs(1))
        .jwks_uri(&iam.jwks_uri())
        .unwrap();
    let verifier = Verifier::new(fetcher.clone(), iam.validation());
    let app = guarded(&verifier);
    let old = iam.mint(json!({"sub": "old"}));
    assert_eq!(status(&app, &old).await, OK);
    assert_eq!(status(&app, &old).await, OK);
    assert_eq!(verifier.signature_checks(), 1, "the repeat is a cache hit");

    // The IAM is down past the stale window: the keys are gone. (A fresh
    // token per attempt: this is about the keys, not the token cache.)
    iam.stop();
    let mut n = 0;
    let fresh = || {
        n += 1;
        iam.mint(json!({"sub": format!("fresh-{n}")}))
    };
    until_status_with(&app, fresh, UNAVAILABLE, &[OK]).await;
    // Long enough for the key cache's housekeeping to drop the expired key
    // (it runs on lookups, at most every few hundred ms).
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_iam_unavailable(&app, &iam.mint(json!({"sub": "later"}))).await;
    }

    // It comes back having rotated the old key out.
    let second = iam.rotate_to(second);
    iam.restart().await;
    let new = iam.mint_with(&second, json!({}));
    until_status(&app, &new, OK, &[UNAVAILABLE]).await;
    assert_eq!(fetcher.kids(), ["rsa-2"]);

    // The old key left the JWKS while the fetcher no longer held it; its
    // token must not come back out of the verified-token cache.
    assert_invalid_token(&app, &old).await;
}

// --- TTL ------------------------------------------------------------------

#[tokio::test]
async fn without_cache_control_the_keys_stay_fresh_for_ten_minutes() {
    assert_eq!(DEFAULT_TTL, Duration::from_secs(10 * 60));
    let iam = TestIam::start().await;
    // Lower the minimum TTL so that it cannot mask a default TTL gone
    // wrong: a TTL of nothing would mean a refresh every 80 ms.
    let fetcher = builder()
        .ttl_bounds(
            Duration::from_millis(100),
            Duration::from_secs(24 * 60 * 60),
        )
        .jwks_uri(&iam.jwks_uri())
        .unwrap();
    let app = guarded(&Verifier::new(fetcher.clone(), iam.validation()));
    assert_eq!(status(&app, &iam.mint(json!({}))).await, OK);
    assert_eq!(iam.jwks_fetches(), 1);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..100 {
        let token = iam.mint(json!({"sub": format!("user-{i}")}));
        assert_eq!(status(&app, &token).await, OK);
    }
    // Give a background refresh, had one been started, time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fetcher.fetch_count(), 1);
    assert_eq!(iam.jwks_fetches(), 1);
}

#[tokio::test]
async fn max_age_sets_the_ttl_and_the_refresh_does_not_delay_the_request() {
    let iam = TestIam::start().await;
    let second = TestKey::rsa("rsa-2");
    iam.set_cache_control(Some("public, max-age=1"));
    let fetcher = builder()
        .ttl_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .jwks_uri(&iam.jwks_uri())
        .unwrap();
    let app = guarded(&Verifier::new(fetcher.clone(), iam.validation()));
    assert_eq!(status(&app, &iam.mint(json!({}))).await, OK);
    assert_eq!(iam.jwks_fetches(), 1);
    assert_eq!(fetcher.kids(), ["rsa-1"]);

    // The next document has a second key (so we can see when it is
    // installed) and takes the IAM two seconds to produce.
    iam.add_key(second);
    iam.set_mode(IamMode::Slow(Duration::from_secs(2)));
    // Past max-age=1 (the refresh is due at 80 % of it); the default TTL
    // would keep the keys fresh for minutes.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let token = iam.mint(json!({"sub": "due"}));
    assert_eq!(status(&app, &token).await, OK);
    // The request is answered while the refresh it started is still
    // waiting on the IAM: the new document is not installed yet.
    assert_eq!(
        fetcher.kids(),
        ["rsa-1"],
        "the request waited for the refresh"
    );
    wait_for("the refresh to reach the IAM", || iam.jwks_fetches() == 2).await;
    wait_for("the refresh to complete", || fetcher.kids().len() == 2).await;
    assert_eq!(fetcher.kids(), ["rsa-1", "rsa-2"]);
    assert_eq!(iam.jwks_fetches(), 2);
}

// --- Stale-if-error ---------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Outage {
    Stopped,
    Status500,
    Garbage,
}

/// Keys held keep verifying through an outage for the stale window, then
/// 503; the outage is not cached, so the first attempt after it succeeds.
async fn keys_outlive_an_outage_for_the_stale_window(outage: Outage) {
    let iam = TestIam::start().await;
    let fetcher = builder()
        // Due for a refresh every 160 ms, so refreshes fail during the
        // window; keys usable for 2 s after the last good fetch.
        .ttl(Duration::from_millis(200))
        .ttl_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .stale_if_error(Duration::from_secs(2))
        .jwks_uri(&iam.jwks_uri())
        .unwrap();
    let app = guarded_by_keys(&iam, &fetcher);
    let token = iam.mint(json!({}));
    fetcher.warm_up().await.unwrap();
    assert_eq!(iam.jwks_fetches(), 1);

    match outage {
        Outage::Stopped => iam.stop(),
        Outage::Status500 => iam.set_mode(IamMode::Status(500)),
        Outage::Garbage => iam.set_mode(IamMode::Garbage),
    }
    // An attempt starts only after the previous one ended, so a third
    // attempt means a refresh has failed: the token still verifies.
    let deadline = Instant::now() + PATIENCE;
    while fetcher.fetch_count() < 3 {
        assert_eq!(status(&app, &token).await, OK, "{outage:?}");
        assert!(Instant::now() < deadline, "no refresh was attempted");
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(status(&app, &token).await, OK, "{outage:?}");
    if !matches!(outage, Outage::Stopped) {
        assert!(iam.jwks_fetches() >= 3, "the IAM saw the failed refreshes");
    }

    // Past the window the keys are gone: 503, never 401.
    let body = until_status(&app, &token, UNAVAILABLE, &[OK]).await;
    assert_eq!(body["code"], "IAM_UNAVAILABLE", "{body}");

    // The IAM recovers: the failure was not cached, the next attempt
    // fetches and the same token verifies again.
    match outage {
        Outage::Stopped => iam.restart().await,
        _ => iam.set_mode(IamMode::Healthy),
    }
    let before = iam.jwks_fetches();
    until_status(&app, &token, OK, &[UNAVAILABLE]).await;
    assert!(iam.jwks_fetches() > before);
}

#[tokio::test]
async fn stale_keys_outlive_a_stopped_iam_for_the_window() {
    keys_outlive_an_outage_for_the_stale_window(Outage::Stopped).await;
}

#[tokio::test]
async fn stale_keys_outlive_an_iam_answering_500_for_the_window() {
    keys_outlive_an_outage_for_the_stale_window(Outage::Status500).await;
}

#[tokio::test]
async fn stale_keys_outlive_an_iam_answering_garbage_for_the_window() {
    keys_outlive_an_outage_for_the_stale_window(Outage::Garbage).await;
}

// --- Cold start, timeouts, size cap ---------------------------------------

#[tokio::test]
async fn cold_start_with_the_iam_down_is_503_until_it_comes_back() {
    let iam = TestIam::start().await;
    let token = iam.mint(json!({}));
    let app = guarded(&iam.verifier());
    iam.stop();
    for _ in 0..3 {
        assert_iam_unavailable(&app, &token).await;
    }
    assert_eq!(iam.jwks_fetches(), 0);

    // Nothing but the IAM coming back: the fetcher retries on demand.
    iam.restart().await;
    until_status(&app, &token, OK, &[UNAVAILABLE]).await;
    assert_eq!(iam.discovery_fetches(), 1);
    assert_eq!(iam.jwks_fetches(), 1);
}

#[tokio::test]
async fn an_iam_slower_than_the_http_timeout_is_unavailable() {
    let iam = TestIam::start().await;
    iam.set_mode(IamMode::Slow(Duration::from_secs(2)));
    let fetcher = builder()
        .http_timeout(Duration::from_millis(200))
        .jwks_uri(&iam.jwks_uri())
        .unwrap();
    let app = guarded(&Verifier::new(fetcher, iam.validation()));
    let token = iam.mint(json!({}));
    // With the default 5 s timeout this would wait out the IAM and be 200.
    assert_iam_unavailable(&app, &token).await;
    wait_for("the IAM to see the fetch", || iam.jwks_fetches() == 1).await;

    iam.set_mode(IamMode::Healthy);
    until_status(&app, &token, OK, &[UNAVAILABLE]).await;
}

#[tokio::test]
async fn documents_over_the_default_size_cap_are_refused() {
    let iam = TestIam::start().await;
    let token = iam.mint(json!({}));

    // 2 MiB announced by Content-Length.
    iam.set_mode(IamMode::Huge(2 * 1024 * 1024));
    assert_iam_unavailable(&guarded(&iam.verifier()), &token).await;
    assert_eq!(iam.jwks_fetches(), 1);

    // A well-formed JWKS that would verify the token, padded past 1 MiB
    // with a key that is skipped anyway: the size alone refuses it, with
    // and without a Content-Length to go by.
    iam.set_mode(IamMode::Healthy);
    iam.add_raw_jwk(json!({"kty": "oct", "kid": "padding", "k": "A".repeat(2 * 1024 * 1024)}));
    assert_iam_unavailable(&guarded(&iam.verifier()), &token).await;
    assert_eq!(iam.jwks_fetches(), 2);
    iam.set_mode(IamMode::Chunked);
    assert_iam_unavailable(&guarded(&iam.verifier()), &token).await;
    assert_eq!(iam.jwks_fetches(), 3);
}

#[tokio::test]
async fn a_document_within_a_small_cap_is_accepted_and_one_byte_over_is_not() {
    let iam = TestIam::start().await;
    let token = iam.mint(json!({}));
    // Several transport chunks' worth.
    iam.add_raw_jwk(json!({"kty": "oct", "kid": "padding", "k": "A".repeat(10_000)}));
    let size = iam.jwks().to_string().len();
    for mode in [IamMode::Healthy, IamMode::Chunked] {
        iam.set_mode(mode.clone());
        for (cap, want) in [(size, OK), (size - 1, UNAVAILABLE)] {
            let fetcher = builder()
                .max_document_bytes(cap)
                .jwks_uri(&iam.jwks_uri())
                .unwrap();
            let app = guarded(&Verifier::new(fetcher, iam.validation()));
            let before = iam.jwks_fetches();
            assert_eq!(
                status(&app, &token).await,
                want,
                "{mode:?}, cap {cap} for {size}"
            );
            assert_eq!(iam.jwks_fetches(), before + 1);
        }
    }
}

// --- Robustness to keys we cannot use --------------------------------------

#[tokio::test]
async fn unusable_keys_in_the_jwks_are_skipped_and_the_good_ones_kept() {
    let iam = TestIam::start().await;
    // The signing key's own material, published for encryption.
    let mut enc = iam.key().jwk();
    enc["kid"] = json!("enc-1");
    enc["use"] = json!("enc");
    iam.add_raw_jwk(json!({"kty": "oct", "kid": "sym-1", "k": "c2VjcmV0"}));
    iam.add_raw_jwk(enc);
    iam.add_raw_jwk(json!({"kty": "RSA", "kid": "junk", "n": 42, "e": ["AQAB"]}));
    iam.add_raw_jwk(json!({"kty": "XYZ", "kid": "weird", "x": "AA"}));
    iam.add_raw_jwk(json!("not even an object"));
    let verifier = iam.verifier();
    let app = guarded(&verifier);

    assert_eq!(status(&app, &iam.mint(json!({}))).await, OK);
    assert_eq!(iam.jwks_fetches(), 1);
    assert_eq!(verifier.jwks().kids(), ["rsa-1"]);

    // Skipped means not used: the encryption key does not verify a token,
    // though it is the very key that signed it.
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "enc-1"});
    let token = iam.key().sign_with_header(&header, &iam.default_claims());
    assert_invalid_token(&app, &token).await;
    assert_eq!(verifier.jwks().kids(), ["rsa-1"]);
}

// --- Warm-up --------------------------------------------------------------

#[tokio::test]
async fn warm_up_fetches_so_the_first_request_does_not() {
    let iam = TestIam::start().await;
    let fetcher = iam.fetcher();
    fetcher.warm_up().await.unwrap();
    assert_eq!(iam.jwks_fetches(), 1);

    let app = guarded(&Verifier::new(fetcher, iam.validation()));
    assert_eq!(status(&app, &iam.mint(json!({}))).await, OK);
    assert_eq!(iam.jwks_fetches(), 1);
}

#[tokio::test]
async fn warm_up_against_a_down_iam_fails_and_the_fetcher_recovers_later() {
    let iam = TestIam::start().await;
    let token = iam.mint(json!({}));
    iam.stop();
    let fetcher = iam.fetcher();
    let err = fetcher.warm_up().await.unwrap_err();
    assert!(matches!(err, FetchError::Connect(_)), "{err:?}");

    let app = guarded(&Verifier::new(fetcher, iam.validation()));
    assert_iam_unavailable(&app, &token).await;
    iam.restart().await;
    until_status(&app, &token, OK, &[UNAVAILABLE]).await;
    assert_eq!(iam.jwks_fetches(), 1);
}

// --- Discovery ------------------------------------------------------------

#[tokio::test]
async fn discovery_runs_once_and_refetches_reuse_its_jwks_uri() {
    let iam = TestIam::start().await;
    let second = TestKey::rsa("rsa-2");
    let fetcher = iam.fetcher();
    let app = guarded(&Verifier::new(fetcher.clone(), iam.validation()));
    assert_eq!(
        iam.discovery_fetches(),
        0,
        "discovery waits for the first fetch"
    );

    assert_eq!(status(&app, &iam.mint(json!({}))).await, OK);
    assert_eq!((iam.discovery_fetches(), iam.jwks_fetches()), (1, 1));

    // A refetch for a new kid, then an explicit one.
    let second = iam.add_key(second);
    assert_eq!(status(&app, &iam.mint_with(&second, json!({}))).await, OK);
    assert_eq!((iam.discovery_fetches(), iam.jwks_fetches()), (1, 2));
    fetcher.warm_up().await.unwrap();
    assert_eq!((iam.discovery_fetches(), iam.jwks_fetches()), (1, 3));
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let iam = TestIam::start().await;
    let token = iam.mint(json!({}));
    // Its jwks_uri still points at this IAM's (valid) keys.
    iam.set_discovery_issuer(Some("https://other-iam.example"));
    let app = guarded(&iam.verifier());
    assert_iam_unavailable(&app, &token).await;
    assert!(iam.discovery_fetches() >= 1);
    assert_eq!(iam.jwks_fetches(), 0, "its jwks_uri was not followed");

    // Not cached either: once the document is right, discovery succeeds.
    iam.set_discovery_issuer(None);
    until_status(&app, &token, OK, &[UNAVAILABLE]).await;
    assert_eq!(iam.jwks_fetches(), 1);
}

// --- The verified-token cache -------------------------------------------------

#[tokio::test]
async fn a_repeated_token_skips_the_signature_check() {
    let iam = TestIam::start().await;
    let layer = JwtAuthGuardLayer::new(iam.verifier());
    let verifier = layer.verifier().clone();
    let app = app(layer);
    let token = iam.mint(json!({}));
    assert_eq!(status(&app, &token).await, OK);
    assert_eq!(verifier.signature_checks(), 1);
    for _ in 0..5 {
        assert_eq!(status(&app, &token).await, OK);
    }
    assert_eq!(verifier.signature_checks(), 1);
    assert_eq!(verifier.cached_tokens(), 1);
    assert_eq!(iam.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let iam = TestIam::start().await;
    let verifier =
        Verifier::builder(iam.fetcher(), iam.validation().leeway(Duration::ZERO)).build();
    let app = guarded(&verifier);
    let exp = unix_now() + 3;
    let token = iam.mint(json!({"exp": exp}));
    assert_eq!(status(&app, &token).await, OK);
    assert_eq!(status(&app, &token).await, OK);
    assert_eq!(verifier.signature_checks(), 1, "the repeat is a cache hit");

    // One whole second past exp (at exp itself is a second-granularity
    // edge), with no leeway.
    while unix_now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, body) = call_json(&app, bearer(&token)).await;
    assert_eq!(status, UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "invalid_token", "{body}");
    assert_eq!(verifier.cached_tokens(), 0);
    assert_eq!(iam.jwks_fetches(), 1);
}

#[tokio::test]
async fn the_token_cache_is_bounded() {
    let iam = TestIam::start().await;
    let verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .token_cache(10)
        .build();
    let app = guarded(&verifier);
    for i in 0..50 {
        let token = iam.mint(json!({"sub": format!("user-{i}")}));
        assert_eq!(status(&app, &token).await, OK);
    }
    assert_eq!(verifier.signature_checks(), 50);
    let cached = verifier.cached_tokens();
    assert!((1..=10).contains(&cached), "{cached} tokens cached");
    assert_eq!(iam.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_verifier_never_serves_a_token_another_verifier_cached() {
    let iam = TestIam::start().await;
    let first = iam.verifier();
    let token = iam.mint(json!({}));
    let app = guarded(&first);
    for _ in 0..3 {
        assert_eq!(status(&app, &token).await, OK);
    }
    assert_eq!(first.signature_checks(), 1, "repeats are cache hits");
    // The same keys, stricter rules, on the same thread: the token the
    // first verifier served a moment ago is checked afresh, and refused.
    let stricter = first.with_rules(
        iam.validation().audience(["another-api"]),
        first.claim_mapping().clone(),
    );
    let (code, _, body) = call_json(&guarded(&stricter), bearer(&token)).await;
    assert_eq!(code, UNAUTHORIZED, "{body}");
    assert_eq!(body["message"], "the token's audience is not accepted");
    assert_eq!(stricter.signature_checks(), 1);
    assert_eq!(stricter.cached_tokens(), 0);
    // And the first still serves it from its cache.
    assert_eq!(status(&app, &token).await, OK);
    assert_eq!(first.signature_checks(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_threads_share_one_verification_of_a_token() {
    let iam = TestIam::start().await;
    let verifier = iam.verifier();
    let app = guarded(&verifier);
    let token = iam.mint(json!({}));
    assert_eq!(status(&app, &token).await, OK);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move {
                for _ in 0..20 {
                    assert_eq!(status(&app, &token).await, OK);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(verifier.signature_checks(), 1);
    // A forged twin (the same signature tail, another payload) is no hit
    // on any thread's slots.
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = URL_SAFE_NO_PAD.encode(br#"{"sub":"mallory","exp":4000000000}"#);
    parts[1] = &other;
    let forged = parts.join(".");
    assert_eq!(status(&app, &forged).await, UNAUTHORIZED);
}

#[tokio::test]
async fn the_token_cache_is_bounded_in_bytes_as_well_as_in_entries() {
    let iam = TestIam::start().await;
    // 10,000 entries allowed, but only 64 KiB: tokens carrying a 2 KB
    // claim weigh about 3.5 KiB each (the token, its claims kept as
    // compact JSON, moka's bookkeeping), so the bytes bind at under 20.
    let verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .token_cache(10_000)
        .token_cache_bytes(64 << 10)
        .build();
    let app = guarded(&verifier);
    let padding = "p".repeat(2_000);
    for i in 0..100 {
        let token = iam.mint(json!({"sub": format!("user-{i}"), "note": padding}));
        assert_eq!(status(&app, &token).await, OK);
    }
    assert_eq!(verifier.signature_checks(), 100);
    let cached = verifier.cached_tokens();
    assert!((1..20).contains(&cached), "{cached} tokens cached");
    // The same bound holds small tokens to the entry bound, not the bytes.
    let verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .token_cache(10)
        .token_cache_bytes(64 << 20)
        .build();
    let app = guarded(&verifier);
    for i in 0..100 {
        let token = iam.mint(json!({"sub": format!("user-{i}")}));
        assert_eq!(status(&app, &token).await, OK);
    }
    let cached = verifier.cached_tokens();
    assert!((1..=10).contains(&cached), "{cached} tokens cached");
    // No bytes, no cache.
    let verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .token_cache_bytes(0)
        .build();
    let app = guarded(&verifier);
    let token = iam.mint(json!({}));
    for _ in 0..2 {
        assert_eq!(status(&app, &token).await, OK);
    }
    assert_eq!(verifier.signature_checks(), 2);
    assert_eq!(verifier.cached_tokens(), 0);
}

#[tokio::test]
async fn the_token_cache_can_be_turned_off() {
    let iam = TestIam::start().await;
    let verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .no_token_cache()
        .build();
    let app = guarded(&verifier);
    let token = iam.mint(json!({}));
    for checks in 1..=5 {
        assert_eq!(status(&app, &token).await, OK);
        assert_eq!(verifier.signature_checks(), checks);
    }
    assert_eq!(verifier.cached_tokens(), 0);
    assert_eq!(iam.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_stale_window_shorter_than_the_ttl_never_drops_fresh_keys() {
    let iam = TestIam::start().await;
    // Ten minutes fresh, then one hundred milliseconds of grace.
    let fetcher = builder()
        .stale_if_error(Duration::from_millis(100))
        .jwks_uri(&iam.jwks_uri())
        .unwrap();
    let app = guarded_by_keys(&iam, &fetcher);
    fetcher.warm_up().await.unwrap();
    iam.stop();
    // Well past the grace window, well within the TTL: the keys are fresh
    // and need no IAM.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let token = iam.mint(json!({}));
    assert_eq!(status(&app, &token).await, OK);
    assert_eq!(fetcher.fetch_count(), 1, "fresh keys are not refetched");
}

#[tokio::test]
async fn the_stale_window_starts_when_the_keys_go_stale() {
    let iam = TestIam::start().await;
    let fetcher = builder()
        .ttl(Duration::from_secs(1))
        .ttl_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .stale_if_error(Duration::from_secs(1))
        .jwks_uri(&iam.jwks_uri())
        .unwrap();
    let app = guarded_by_keys(&iam, &fetcher);
    // Taken before the fetch, so it is no later than the keys' arrival.
    let start = Instant::now();
    fetcher.warm_up().await.unwrap();
    iam.stop();
    let token = iam.mint(json!({}));
    // 1.5 s after the last good fetch: more than the window, but only half
    // of it since the keys went stale at 1 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status(&app, &token).await, OK);
    // Past TTL + window: nothing trustworthy is left, 503.
    until_status(&app, &token, UNAVAILABLE, &[OK]).await;
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "keys kept for the TTL and the whole window"
    );
}
