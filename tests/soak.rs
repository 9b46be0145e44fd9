//! Bounded soak / load over loopback: the school example router served with
//! `axum::serve` on 127.0.0.1:0, driven by reqwest with a mix of valid,
//! expired and forged tokens, reads and writes, while the IAM goes down
//! halfway and comes back.
//!
//! - always on: 2,000 requests at concurrency 16;
//! - long: 100,000 requests at concurrency 64, `#[ignore]`d:
//!   `cargo test --all-features --test soak -- --ignored --nocapture`.
//!
//! Asserted: every response has the expected status (valid → 200, expired
//! or forged → 401, forbidden write → 403), every accepted write is read
//! back with the written value, the verified-token cache stays within its
//! bound, and valid requests keep succeeding while the IAM is down
//! (stale-if-error).
#![cfg(feature = "test-util")]

#[allow(dead_code)]
#[path = "../examples/school/users.rs"]
mod users;

#[allow(dead_code)]
#[path = "../examples/school/app.rs"]
mod app;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use iam_guard::{
    model::Catalogue,
    permissions::source::CatalogueSource,
    test_util::{merge, TestIam, TestKey},
    JwtAuthGuardLayer, Verifier,
};
use serde_json::{json, Value};

const TOKEN_CACHE: u64 = 100;
/// Distinct valid tokens per role: more than the cache holds, so it evicts.
const TOKENS_PER_ROLE: usize = 80;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

struct Tokens {
    admin: Vec<String>,
    teacher: Vec<String>,
    secretary: Vec<String>,
    expired: Vec<String>,
    forged: Vec<String>,
}

fn tokens(iam: &TestIam) -> Tokens {
    let role = |name: &str| -> Vec<String> {
        let claims = users::demo_claims(name).expect("a demo user");
        (0..TOKENS_PER_ROLE)
            .map(|i| iam.mint(merge(claims.clone(), json!({"jti": format!("{name}-{i}")}))))
            .collect()
    };
    let admin = users::demo_claims("admin").expect("admin");
    let expired = (0..20)
        .map(|i| {
            iam.mint(merge(
                admin.clone(),
                json!({"exp": now() - 600, "jti": format!("old-{i}")}),
            ))
        })
        .collect();
    // The attacker's key under the IAM's kid, and the IAM's token with its
    // signature swapped for another token's.
    let attacker = TestKey::rsa("attacker");
    let mut forged: Vec<String> = (0..10)
        .map(|i| {
            let claims = merge(
                merge(iam.default_claims(), admin.clone()),
                json!({"jti": format!("f-{i}")}),
            );
            attacker.sign_with_header(&json!({"alg": "RS256", "kid": "rsa-1"}), &claims)
        })
        .collect();
    let a = iam.mint(merge(admin.clone(), json!({"jti": "a"})));
    let b = iam.mint(merge(admin, json!({"jti": "b"})));
    let (a_input, _) = a.rsplit_once('.').expect("3 parts");
    let (_, b_sig) = b.rsplit_once('.').expect("3 parts");
    forged.push(format!("{a_input}.{b_sig}"));
    Tokens {
        admin: role("admin"),
        teacher: role("teacher"),
        secretary: role("secretary"),
        expired,
        forged,
    }
}

#[derive(Default)]
struct Stats {
    by_status: Mutex<BTreeMap<u16, usize>>,
    done: AtomicUsize,
    writes: AtomicUsize,
    valid_during_outage: AtomicUsize,
    valid_after_restart: AtomicUsize,
    unexpected: Mutex<Vec<String>>,
}

impl Stats {
    fn lost(&self, field: &str, written: u64, body: &str) {
        self.unexpected
            .lock()
            .expect("lock")
            .push(format!("lost write {field} = {written}: {body}"));
    }

    fn record(&self, what: &str, expected: u16, got: u16, body: &str) {
        *self.by_status.lock().expect("lock").entry(got).or_default() += 1;
        self.done.fetch_add(1, Ordering::Relaxed);
        if got != expected {
            let mut u = self.unexpected.lock().expect("lock");
            if u.len() < 20 {
                u.push(format!("{what}: expected {expected}, got {got}: {body}"));
            }
        }
    }
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let mut req = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            (status, res.text().await.unwrap_or_default())
        }
        Err(e) => (0, format!("transport error: {e}")),
    }
}

/// Runs `total` requests at `concurrency`; the IAM is stopped once half
/// are done and restarted at three quarters.
async fn soak(total: usize, concurrency: usize) {
    let iam = Arc::new(TestIam::start().await);
    // A short JWKS TTL, so refreshes are attempted (and fail) while the IAM
    // is down: the keys must then be served stale, not dropped.
    let fetcher = iam_guard::JwksFetcher::builder()
        .ttl(Duration::from_millis(300))
        .ttl_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .retry_after_failure(Duration::from_millis(50))
        .discover(iam.issuer())
        .expect("a valid issuer");
    let verifier = Verifier::builder(fetcher, iam.validation())
        .token_cache(TOKEN_CACHE)
        .build();
    let auth = JwtAuthGuardLayer::new(verifier.clone())
        .permissions(CatalogueSource::new(Catalogue::students_fixture()));
    let router = app::router(auth, app::Store::demo());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    let tokens = Arc::new(tokens(&iam));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    // One student per worker, created by the admin, so that each worker's
    // writes to its documented `attendance.absences` are its own and its
    // last accepted one must be what a final read finds.
    let admin = tokens.admin[0].clone();
    let mut students = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let body = json!({"anagraphic": {"firstName": format!("Worker {w}"), "lastName": "Soak"},
                          "attendance": {"absences": 0}});
        let (s, b) = send(
            &client,
            reqwest::Method::POST,
            &format!("{base}/students"),
            &admin,
            Some(&body),
        )
        .await;
        assert_eq!(s, 201, "creating the student of worker {w}: {b}");
        let created: Value = serde_json::from_str(&b).expect("json");
        let id = created["id"].as_str().expect("an id");
        students.push(format!("{base}/students/{id}"));
    }
    let stats = Arc::new(Stats::default());
    let outage = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));

    // The IAM goes down at 50 % and comes back at 75 %.
    let controller = {
        let (iam, stats, outage, restarted) = (
            iam.clone(),
            stats.clone(),
            outage.clone(),
            restarted.clone(),
        );
        tokio::spawn(async move {
            while stats.done.load(Ordering::Relaxed) < total / 2 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            iam.stop();
            outage.store(true, Ordering::SeqCst);
            let stopped_at = Instant::now();
            // Long enough for several TTLs to lapse during the outage.
            while stats.done.load(Ordering::Relaxed) < total * 3 / 4
                || stopped_at.elapsed() < Duration::from_millis(400)
            {
                if stats.done.load(Ordering::Relaxed) >= total {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            iam.restart().await;
            outage.store(false, Ordering::SeqCst);
            restarted.store(true, Ordering::SeqCst);
        })
    };

    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let per_worker = total / concurrency + usize::from(w < total % concurrency);
        let (client, tokens, stats, outage, restarted, base, student) = (
            client.clone(),
            tokens.clone(),
            stats.clone(),
            outage.clone(),
            restarted.clone(),
            base.clone(),
            students[w].clone(),
        );
        workers.push(tokio::spawn(async move {
            let student = student.clone();
            let list = format!("{base}/students");
            let field = "absences";
            let mut written = 0u64;
            // `i` picks the kind of request; `sent` bounds the loop (a
            // write and its read-back are two requests).
            let mut sent = 0;
            let mut i = 0;
            while sent < per_worker {
                let pick = |v: &Vec<String>| v[(w * 7919 + i * 31) % v.len()].clone();
                // A write takes two requests (with its read-back): the last
                // request of a worker is a read instead, so the count is exact.
                let slot = match i % 10 {
                    3 | 4 if sent + 1 == per_worker => 0,
                    slot => slot,
                };
                match slot {
                    // Valid reads.
                    0..=2 => {
                        let token =
                            pick([&tokens.admin, &tokens.teacher, &tokens.secretary][i % 3]);
                        let url = if slot == 0 { &list } else { &student };
                        let (s, b) = send(&client, reqwest::Method::GET, url, &token, None).await;
                        stats.record("valid read", 200, s, &b);
                        if s == 200 && outage.load(Ordering::Relaxed) {
                            stats.valid_during_outage.fetch_add(1, Ordering::Relaxed);
                        }
                        if s == 200 && restarted.load(Ordering::Relaxed) {
                            stats.valid_after_restart.fetch_add(1, Ordering::Relaxed);
                        }
                        sent += 1;
                    }
                    // An accepted write, then its read-back.
                    3 | 4 => {
                        written += 1;
                        let token = pick(if slot == 3 {
                            &tokens.teacher
                        } else {
                            &tokens.admin
                        });
                        let body = json!({"attendance": {field: written}});
                        let (s, b) = send(
                            &client,
                            reqwest::Method::PATCH,
                            &student,
                            &token,
                            Some(&body),
                        )
                        .await;
                        stats.record("write", 200, s, &b);
                        if s == 200 {
                            stats.writes.fetch_add(1, Ordering::Relaxed);
                            let (s, b) =
                                send(&client, reqwest::Method::GET, &student, &token, None).await;
                            stats.record("read-back", 200, s, &b);
                            let got: Value = serde_json::from_str(&b).unwrap_or(Value::Null);
                            if got["attendance"][field] != json!(written) {
                                stats.lost(&student, written, &b);
                            }
                            sent += 1;
                        } else {
                            written -= 1;
                        }
                        sent += 1;
                    }
                    // A forbidden write: the teacher may not touch `sensitive`.
                    5 => {
                        let body = json!({"sensitive": {"disabilityInfo": format!("x{i}")}});
                        let token = pick(&tokens.teacher);
                        let (s, b) = send(
                            &client,
                            reqwest::Method::PATCH,
                            &student,
                            &token,
                            Some(&body),
                        )
                        .await;
                        stats.record("forbidden write", 403, s, &b);
                        sent += 1;
                    }
                    // Expired.
                    6 | 7 => {
                        let token = pick(&tokens.expired);
                        let (s, b) =
                            send(&client, reqwest::Method::GET, &student, &token, None).await;
                        stats.record("expired", 401, s, &b);
                        sent += 1;
                    }
                    // Forged, on reads and writes.
                    _ => {
                        let token = pick(&tokens.forged);
                        let (s, b) = if slot == 8 {
                            send(&client, reqwest::Method::GET, &list, &token, None).await
                        } else {
                            // Never a value a worker writes: one accepted
                            // would show in the final read.
                            let body = json!({"attendance": {field: 4_000_000_000u64}});
                            send(
                                &client,
                                reqwest::Method::PATCH,
                                &student,
                                &token,
                                Some(&body),
                            )
                            .await
                        };
                        stats.record("forged", 401, s, &b);
                        sent += 1;
                    }
                }
                i += 1;
            }
            (field, student, written)
        }));
    }
    let mut last_writes = Vec::new();
    for w in workers {
        last_writes.push(w.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    controller.await.expect("controller");

    // Every worker's last accepted write is still there, read with a
    // fresh admin token after the IAM came back.
    let admin = iam.mint(users::demo_claims("admin").expect("admin"));
    for (field, student, written) in &last_writes {
        let (s, b) = send(&client, reqwest::Method::GET, student, &admin, None).await;
        assert_eq!(s, 200, "{b}");
        let got: Value = serde_json::from_str(&b).expect("json");
        assert_eq!(
            got["attendance"][field],
            json!(written),
            "{field} on {student}"
        );
    }

    let by_status = stats.by_status.lock().expect("lock").clone();
    let requests: usize = by_status.values().sum();
    println!(
        "soak: {requests} requests at concurrency {concurrency} in {:.2?} ({:.0} req/s); \
         statuses {by_status:?}; {} accepted writes; {} valid reads during the IAM outage, {} after its restart; \
         {} signature checks; {} cached tokens; {} JWKS fetches",
        elapsed,
        requests as f64 / elapsed.as_secs_f64(),
        stats.writes.load(Ordering::Relaxed),
        stats.valid_during_outage.load(Ordering::Relaxed),
        stats.valid_after_restart.load(Ordering::Relaxed),
        verifier.signature_checks(),
        verifier.cached_tokens(),
        iam.jwks_fetches(),
    );
    let unexpected = stats.unexpected.lock().expect("lock").clone();
    assert!(
        unexpected.is_empty(),
        "unexpected statuses: {unexpected:#?}"
    );
    assert_eq!(requests, total);
    assert!(stats.writes.load(Ordering::Relaxed) > 0);
    assert!(
        stats.valid_during_outage.load(Ordering::Relaxed) > 0,
        "no valid request ran while the IAM was down"
    );
    assert!(
        verifier.cached_tokens() <= TOKEN_CACHE,
        "{} cached tokens over the bound {TOKEN_CACHE}",
        verifier.cached_tokens()
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_small() {
    tokio::time::timeout(Duration::from_secs(120), soak(2_000, 16))
        .await
        .expect("the small soak finishes within 2 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
#[ignore = "long: cargo test --all-features --test soak -- --ignored --nocapture"]
async fn soak_long() {
    tokio::time::timeout(Duration::from_secs(1800), soak(100_000, 64))
        .await
        .expect("the long soak finishes within 30 minutes");
}
