//! How the guards' cost grows, each guarded case measured in the same run as
//! the same handler on a bare axum 0.8 router (`oneshot`, body read):
//!
//! - `scaling/response_size`: a JSON page of about 1 KB student records,
//!   1 KB … 1 MB, through the full `ProtectedResource` stack (auth, READ
//!   requirement, FieldWriteGuard, FieldFilter, catalogue permissions) with
//!   a cached token: an admin keeps every group, a teacher has some cut.
//!   Ids: `bare/<bytes>`, `admin/<bytes>`, `teacher/<bytes>`.
//! - `scaling/roles`: a token with 1 … 100 roles (the catalogue grows by 100
//!   generated roles), the 1.3 KB student record, cached token: after the
//!   first request the compiled permissions are kept with the token's
//!   verified-token entry (and in the role-set memo).
//!   `compile/<n>` is what that first request pays once per role set
//!   (`CatalogueSource::compile_at`). Ids: `bare`, `guarded/<n>`,
//!   `compile/<n>`.
//! - `scaling/token_hit_ratio`: the same GET with a verified-token cache of
//!   one entry, a hot token taking the given share of the requests and the
//!   rest cycling through a pool of distinct tokens too large for the cache
//!   to keep (every one a fresh RS256 verification). The hit ratio each case
//!   really had (from the verifier's signature-check count over a
//!   calibration pass) is printed and written to
//!   `<criterion dir>/scaling_token_hit_ratio/hit_ratios.json` (criterion
//!   writes group `a/b` to directory `a_b`) for
//!   `benches/charts.py`. Ids: `bare`, `guarded/<nominal hit %>`.
//!
//! `cargo bench --all-features --bench scaling`; `benches/charts.sh` runs it
//! and draws `docs/charts/*.svg` from criterion's output.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

#[path = "support/documents.rs"]
mod documents;

use documents::{record, student, SCOPES};

use std::{
    convert::Infallible,
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    body::{Body, Bytes},
    http::{header::CONTENT_TYPE, Request, Response},
    routing::get,
    Router,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use iam_guard::{
    guard::protected::ProtectedResource,
    model::Catalogue,
    permissions::source::CatalogueSource,
    test_util::{principal, TestIam},
    JwtAuthGuardLayer, Verifier,
};
use serde_json::{json, Map, Value};
use tokio::runtime::Runtime;
use tower::{Service, ServiceExt};

/// Far enough in the future that no run outlives the tokens.
const EXP: u64 = 4_000_000_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn get_req(path: &str, token: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    req.body(Body::empty()).unwrap()
}

/// The response with its body read, as a server would: FieldFilter's work
/// happens while the body is produced.
fn run_read<S>(rt: &Runtime, svc: &S, req: Request<Body>) -> (u16, Bytes)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    rt.block_on(async {
        let res = svc.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body)
    })
}

/// A page (`{"data": [...], "meta": {...}}`) of `n` records of about 1 KB.
fn page(n: usize) -> Bytes {
    let item = student(1);
    let doc = json!({ "data": vec![item; n], "meta": { "total": n, "page": 1 } });
    serde_json::to_vec(&doc).unwrap().into()
}

/// The same handler on a bare router and behind the full stack.
fn routers(body: Bytes, auth: JwtAuthGuardLayer) -> (Router, Router) {
    let handler = move || {
        let body = body.clone();
        async move { ([(CONTENT_TYPE, "application/json")], body) }
    };
    // Resolved as `axum::serve` resolves a router, once: used directly, a
    // `Router<()>` applies its layers again on every request.
    let bare = Router::new()
        .route("/students/{id}", get(handler.clone()))
        .with_state(());
    let full: Router = ProtectedResource::new("students")
        .authenticate(auth)
        .get("/students/{id}", handler)
        .into_router()
        .with_state(());
    (bare, full)
}

fn bench_response_size(c: &mut Criterion) {
    let rt = runtime();
    let iam = rt.block_on(TestIam::start());
    let admin = iam.mint(json!({"sub": "admin-1", "roles": ["admin"], "exp": EXP}));
    // Reads some of the eight groups: FieldFilter cuts the others.
    let teacher = iam.mint(json!({"sub": "t-1", "roles": ["internal_teacher"], "exp": EXP}));
    let auth = JwtAuthGuardLayer::new(iam.verifier())
        .permissions(CatalogueSource::new(Catalogue::students_fixture()));

    let mut g = c.benchmark_group("scaling/response_size");
    g.sample_size(30);
    for n in [1, 4, 16, 64, 256, 1024] {
        let body = page(n);
        let bytes = body.len();
        let (bare, full) = routers(body.clone(), auth.clone());
        // Warm the caches, and check what each caller gets.
        let path = "/students/s-1";
        assert_eq!(
            run_read(&rt, &bare, get_req(path, None)),
            (200, body.clone())
        );
        assert_eq!(
            run_read(&rt, &full, get_req(path, Some(&admin))),
            (200, body.clone()),
            "the admin keeps every group"
        );
        let (status, seen) = run_read(&rt, &full, get_req(path, Some(&teacher)));
        assert_eq!(status, 200);
        assert!(seen.len() < bytes, "the teacher's view is filtered");

        g.bench_function(BenchmarkId::new("bare", bytes), |b| {
            b.iter(|| run_read(&rt, &bare, get_req(path, None)))
        });
        g.bench_function(BenchmarkId::new("admin", bytes), |b| {
            b.iter(|| run_read(&rt, &full, get_req(path, Some(&admin))))
        });
        g.bench_function(BenchmarkId::new("teacher", bytes), |b| {
            b.iter(|| run_read(&rt, &full, get_req(path, Some(&teacher))))
        });
    }
    g.finish();
}

/// The students fixture with 100 more roles, `bench-role-<i>`, each granting
/// READ on two groups and WRITE on a third, so that every added role
/// changes the union.
fn catalogue_with_roles() -> Catalogue {
    let mut doc: Value =
        serde_json::from_str(include_str!("../fixtures/students_catalogue.json")).unwrap();
    let roles = doc["roles"].as_array_mut().unwrap();
    for i in 0..100 {
        let mut scopes = Map::new();
        scopes.insert(SCOPES[i % 8].into(), "READ".into());
        scopes.insert(SCOPES[(i + 3) % 8].into(), "READ".into());
        scopes.insert(SCOPES[(i + 5) % 8].into(), "WRITE".into());
        roles.push(json!({
            "id": format!("bench-role-{i}"),
            "name": format!("Bench role {i}"),
            "description": "generated by benches/scaling.rs",
            "scopes": { "students": scopes },
            "actions": [],
        }));
    }
    Catalogue::from_json(&doc.to_string()).expect("a consistent catalogue")
}

fn bench_roles(c: &mut Criterion) {
    let rt = runtime();
    let iam = rt.block_on(TestIam::start());
    let source = CatalogueSource::new(catalogue_with_roles());
    let auth = JwtAuthGuardLayer::new(iam.verifier()).permissions(source.clone());
    let (bare, full) = routers(record().into(), auth);
    let path = "/students/s-1";
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let mut g = c.benchmark_group("scaling/roles");
    g.sample_size(30);
    assert_eq!(run_read(&rt, &bare, get_req(path, None)).0, 200);
    g.bench_function("bare", |b| {
        b.iter(|| run_read(&rt, &bare, get_req(path, None)))
    });
    for n in [1, 2, 5, 10, 20, 50, 100] {
        let roles: Vec<String> = (0..n).map(|i| format!("bench-role-{i}")).collect();
        let claims = json!({"sub": format!("u-{n}"), "roles": roles, "exp": EXP});
        let token = iam.mint(claims.clone());
        // The first request verifies the token and compiles its role set;
        // the measured ones hit the token cache, with the permissions the
        // token keeps.
        let (status, seen) = run_read(&rt, &full, get_req(path, Some(&token)));
        assert_eq!(status, 200, "{n} roles");
        assert!(!seen.is_empty());
        g.bench_function(BenchmarkId::new("guarded", n), |b| {
            b.iter(|| run_read(&rt, &full, get_req(path, Some(&token))))
        });
        let caller = principal(merge_iss(&iam, claims));
        g.bench_function(BenchmarkId::new("compile", n), |b| {
            b.iter(|| source.compile_at(std::hint::black_box(&caller), now))
        });
    }
    g.finish();
}

/// The claims as the verifier would see them (issuer and audience set).
fn merge_iss(iam: &TestIam, claims: Value) -> Value {
    iam_guard::test_util::merge(iam.default_claims(), claims)
}

/// Of every `SLOTS` requests, `hot_slots(pct)` use the cached hot token.
const SLOTS: usize = 20;

/// Whether request slot `i` (of `SLOTS`) uses the hot token, spreading
/// `pct` % of the slots evenly.
fn is_hot(i: usize, pct: usize) -> bool {
    let hot = SLOTS * pct / 100;
    (i + 1) * hot / SLOTS > i * hot / SLOTS
}

/// Cycles the hot token and a pool of cold ones in the pattern `pct` asks.
struct TokenMix<'a> {
    hot: &'a str,
    cold: &'a [String],
    pct: usize,
    i: usize,
    next_cold: usize,
}

impl<'a> TokenMix<'a> {
    fn next(&mut self) -> &'a str {
        let slot = self.i % SLOTS;
        self.i += 1;
        if is_hot(slot, self.pct) {
            self.hot
        } else {
            let t = &self.cold[self.next_cold % self.cold.len()];
            self.next_cold += 1;
            t
        }
    }
}

/// Where criterion writes (`$CARGO_TARGET_DIR/criterion`, else
/// `target/criterion`), for the measured hit ratios beside its output.
fn criterion_dir() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target"))
                .join("criterion")
        })
}

fn bench_token_hit_ratio(c: &mut Criterion) {
    let rt = runtime();
    let iam = rt.block_on(TestIam::start());
    // One entry: the hot token, which the cache's frequency-based admission
    // keeps; the cold tokens come back only after the whole pool has passed.
    let verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .token_cache(1)
        .build();
    rt.block_on(verifier.jwks().warm_up()).unwrap();
    let auth = JwtAuthGuardLayer::new(verifier.clone())
        .permissions(CatalogueSource::new(Catalogue::students_fixture()));
    let (bare, full) = routers(record().into(), auth);
    let path = "/students/s-1";
    let hot = iam.mint(json!({"sub": "admin-hot", "roles": ["admin"], "exp": EXP}));
    let cold: Vec<String> = (0..2048)
        .map(|i| iam.mint(json!({"sub": format!("admin-{i}"), "roles": ["admin"], "exp": EXP})))
        .collect();
    for _ in 0..50 {
        assert_eq!(run_read(&rt, &full, get_req(path, Some(&hot))).0, 200);
    }

    let mut g = c.benchmark_group("scaling/token_hit_ratio");
    g.sample_size(30);
    assert_eq!(run_read(&rt, &bare, get_req(path, None)).0, 200);
    g.bench_function("bare", |b| {
        b.iter(|| run_read(&rt, &bare, get_req(path, None)))
    });
    let mut measured = Map::new();
    for pct in [100, 90, 75, 50, 25, 10, 0] {
        let mut mix = TokenMix {
            hot: &hot,
            cold: &cold,
            pct,
            i: 0,
            next_cold: 0,
        };
        // Calibration: one pass through the pool, then count the signature
        // checks over the next 4,000 requests.
        let warm = if pct == 100 {
            100
        } else {
            cold.len() * 100 / (100 - pct)
        };
        for _ in 0..warm {
            assert_eq!(run_read(&rt, &full, get_req(path, Some(mix.next()))).0, 200);
        }
        let before = verifier.signature_checks();
        let calls = 4_000;
        for _ in 0..calls {
            run_read(&rt, &full, get_req(path, Some(mix.next())));
        }
        let misses = verifier.signature_checks() - before;
        let ratio = 100.0 * (1.0 - misses as f64 / calls as f64);
        eprintln!("scaling/token_hit_ratio: nominal {pct} %, measured {ratio:.1} % hits");
        measured.insert(pct.to_string(), json!(ratio));
        g.bench_function(BenchmarkId::new("guarded", pct), |b| {
            b.iter(|| run_read(&rt, &full, get_req(path, Some(mix.next()))))
        });
    }
    g.finish();
    let dir = criterion_dir().join("scaling_token_hit_ratio");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(
            dir.join("hit_ratios.json"),
            serde_json::to_vec_pretty(&Value::Object(measured)).unwrap(),
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
    targets = bench_response_size, bench_roles, bench_token_hit_ratio
}
criterion_main!(benches);
