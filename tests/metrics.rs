//! The counters a service team graphs, read through a debugging recorder:
//! JWKS fetches by result, unknown-kid refetches and cooldown refusals,
//! stale keys served through an outage, verified-token cache hits and
//! misses, permission loads by source and cache level, and scope groups
//! removed by FieldFilter. (Decisions are counted in `tests/deny_path.rs`.)
//!
//! Every label value is from a fixed set or the configuration: no user id,
//! tenant, token or path ever becomes a series.

mod common;

use std::time::{Duration, Instant};

use axum::{body::Body, http::Request, routing::get, Json, Router};
use common::{bearer, call, counters, Counters};
use http::StatusCode;
use iam_guard::{
    metrics::{
        FIELDS_REMOVED, JWKS_COOLDOWN_REFUSALS, JWKS_FETCHES, JWKS_STALE_KEYS_SERVED,
        JWKS_UNKNOWN_KID_REFETCHES, PERMISSION_LOADS, TOKEN_CACHE,
    },
    test_util::{TestIam, TestKey},
    Catalogue, CatalogueSource, ClaimsSource, FieldFilterLayer, JwksFetcher, JwtAuthGuardLayer,
    Principal, ScopeGuard, Verifier,
};
use serde_json::{json, Value};
use tower::ServiceExt;

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

fn counts(pairs: &[(String, u64)]) -> std::collections::BTreeMap<String, u64> {
    pairs.iter().cloned().collect()
}

async fn whoami(p: Principal) -> String {
    p.user_id().to_owned()
}

fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/me", get(whoami))
        .layer(JwtAuthGuardLayer::new(verifier))
}

/// No series carries anything a caller sent.
fn assert_bounded(counted: &std::collections::BTreeMap<String, u64>, secrets: &[&str]) {
    for name in counted.keys() {
        for secret in secrets {
            assert!(!name.contains(secret), "{name} carries {secret}");
        }
    }
}

#[tokio::test]
async fn jwks_fetches_refetches_and_cooldown_refusals_are_counted() {
    let (counted, _metrics) = counters();
    let iam = TestIam::start().await;
    let fetcher = iam.fetcher();
    let app = app(Verifier::new(fetcher.clone(), iam.validation()));
    fetcher.warm_up().await.unwrap();
    assert_eq!(
        counted.take_named(JWKS_FETCHES),
        counts(&[(key(JWKS_FETCHES, &[("result", "ok")]), 1)])
    );

    // A kid the cache does not hold: one refetch, then the cooldown
    // answers every other unknown kid without asking the IAM.
    let token = iam.mint(json!({}));
    let stranger = TestKey::rsa("stranger");
    let (status, _) = call(&app, bearer(&iam.mint_with(&stranger, json!({})))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for kid in ["k-1", "k-2", "k-3"] {
        let key = TestKey::rsa(kid);
        let (status, _) = call(&app, bearer(&iam.mint_with(&key, json!({})))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = call(&app, bearer(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let taken = counted.take();
    assert_eq!(taken.get(&key(JWKS_UNKNOWN_KID_REFETCHES, &[])), Some(&1));
    assert_eq!(taken.get(&key(JWKS_COOLDOWN_REFUSALS, &[])), Some(&3));
    assert_eq!(
        taken.get(&key(JWKS_FETCHES, &[("result", "ok")])),
        Some(&1),
        "{taken:?}"
    );
    assert_bounded(&taken, &["stranger", "k-1", &token]);

    // A fetch that fails is counted as an error.
    let down = TestIam::start().await;
    down.stop();
    assert!(down.fetcher().warm_up().await.is_err());
    assert_eq!(
        counted.take_named(JWKS_FETCHES),
        counts(&[(key(JWKS_FETCHES, &[("result", "error")]), 1)])
    );
}

#[tokio::test]
async fn the_token_cache_counts_hits_and_misses() {
    let (counted, _metrics) = counters();
    let iam = TestIam::start().await;
    let app = app(iam.verifier());
    let token = iam.mint(json!({"sub": "alice"}));
    for _ in 0..3 {
        assert_eq!(call(&app, bearer(&token)).await.0, StatusCode::OK);
    }
    let taken = counted.take_named(TOKEN_CACHE);
    assert_eq!(
        taken,
        counts(&[
            (key(TOKEN_CACHE, &[("result", "hit")]), 2),
            (key(TOKEN_CACHE, &[("result", "miss")]), 1),
        ])
    );
    assert_bounded(&taken, &["alice", &token]);
}

#[tokio::test]
async fn stale_keys_served_during_an_outage_are_counted() {
    let (counted, _metrics) = counters();
    let iam = TestIam::start().await;
    let fetcher = JwksFetcher::builder()
        .ttl(Duration::from_millis(100))
        .ttl_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .stale_if_error(Duration::from_secs(60))
        .retry_after_failure(Duration::from_millis(20))
        .jwks_uri(&iam.jwks_uri())
        .unwrap();
    let verifier = Verifier::builder(fetcher.clone(), iam.validation())
        .no_token_cache()
        .build();
    let app = app(verifier);
    fetcher.warm_up().await.unwrap();
    let token = iam.mint(json!({}));
    assert_eq!(call(&app, bearer(&token)).await.0, StatusCode::OK);
    assert_eq!(counted.take().get(&key(JWKS_STALE_KEYS_SERVED, &[])), None);

    iam.stop();
    // Past the TTL the keys are stale; the window keeps them serving.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut stale = 0;
    while stale == 0 {
        assert!(Instant::now() < deadline, "no stale key was counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(call(&app, bearer(&token)).await.0, StatusCode::OK);
        stale = counted
            .take()
            .get(&key(JWKS_STALE_KEYS_SERVED, &[]))
            .copied()
            .unwrap_or(0);
    }
}

async fn read_students(app: &Router, token: &str) -> Value {
    let req = Request::get("/students/s-1")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&body).unwrap()
}

fn students(auth: JwtAuthGuardLayer) -> Router {
    let record = || async {
        Json(json!({
            "id": "s-1",
            "anagraphic": {}, "sensitive": {}, "financial": {}, "attendance": {},
        }))
    };
    Router::new()
        .route(
            "/students/{id}",
            get(record)
                .route_layer(FieldFilterLayer::new())
                .route_layer(ScopeGuard::read("students")),
        )
        .layer(auth)
}

fn loads(counted: &Counters) -> std::collections::BTreeMap<String, u64> {
    counted.take_named(PERMISSION_LOADS)
}

#[tokio::test]
async fn permission_loads_are_counted_once_per_request_by_source_and_level() {
    let (counted, _metrics) = counters();
    let iam = TestIam::start().await;

    // Claims: computed from the token, once per request although the
    // requirement guard and the filter both read them.
    let app = students(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()));
    let token = iam.mint(json!({
        "entities": {"students": {"scopes": {"anagraphic": "READ"}, "actions": {}}},
    }));
    read_students(&app, &token).await;
    read_students(&app, &token).await;
    assert_eq!(
        loads(&counted),
        counts(&[(
            key(
                PERMISSION_LOADS,
                &[("source", "claims"), ("level", "source")]
            ),
            2
        )])
    );

    // Catalogue: a role set is compiled once, then served from this
    // replica's memo, whoever carries it.
    let source = CatalogueSource::new(Catalogue::students_fixture());
    let app = students(JwtAuthGuardLayer::new(iam.verifier()).permissions(source));
    for user in ["t-1", "t-2", "t-3"] {
        let token = iam.mint(json!({"sub": user, "roles": ["internal_teacher"]}));
        read_students(&app, &token).await;
    }
    let taken = loads(&counted);
    assert_eq!(
        taken,
        counts(&[
            (
                key(
                    PERMISSION_LOADS,
                    &[("source", "catalogue"), ("level", "source")]
                ),
                1
            ),
            (
                key(
                    PERMISSION_LOADS,
                    &[("source", "catalogue"), ("level", "local")]
                ),
                2
            ),
        ])
    );
    assert_bounded(&taken, &["t-1", "internal_teacher"]);
}

#[tokio::test]
async fn groups_removed_by_the_filter_are_counted_per_entity() {
    let (counted, _metrics) = counters();
    let iam = TestIam::start().await;
    let app = students(JwtAuthGuardLayer::new(iam.verifier()).permissions(ClaimsSource::new()));
    let reader = iam.mint(json!({
        "entities": {"students": {"scopes": {"anagraphic": "READ", "attendance": "READ"}, "actions": {}}},
    }));
    let body = read_students(&app, &reader).await;
    assert_eq!(
        body,
        json!({"id": "s-1", "anagraphic": {}, "attendance": {}})
    );
    assert_eq!(
        counted.take_named(FIELDS_REMOVED),
        counts(&[(key(FIELDS_REMOVED, &[("entity", "students")]), 2)])
    );
    // Nothing removed, nothing counted.
    let all = iam.mint(json!({
        "entities": {"students": {"scopes": {
            "anagraphic": "READ", "attendance": "READ", "sensitive": "READ", "financial": "READ",
        }, "actions": {}}},
    }));
    read_students(&app, &all).await;
    assert!(counted.take_named(FIELDS_REMOVED).is_empty());
}
