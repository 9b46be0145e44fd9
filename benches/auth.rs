//! What the guards cost a request, each figure measured in one run against
//! its baseline (`oneshot` through an axum 0.8 router):
//!
//! - `auth/*`: a bare router; JwtAuthGuard with a cached token (also with
//!   revocations on, 11,000 of them, none this token's); with a
//!   fresh RS256 / ES256 / EdDSA / ES512 verification each time (token
//!   cache off); the signature check alone with a key aws-lc parsed once
//!   (the floor under any verification); `jsonwebtoken::decode` alone on
//!   the same token (what the library used to verify with); and the peer, the published `jwt-authorizer` layer, on
//!   the same token and key (it has no verified-token cache).
//! - `stack/*`: the full `ProtectedResource` stack (auth, scope requirement,
//!   FieldWriteGuard, FieldFilter, catalogue permissions memoized per
//!   request) with a cached admin token, against the same handlers on a bare
//!   router: a GET answering an eight-scope student record (filtered: all
//!   groups kept for an admin, some cut for a teacher) and a
//!   PATCH with a small body (write-checked); and auth + the READ
//!   requirement alone (no field guards), to show where the time goes.
//!   The `*_typed` cases serialize the same record from a
//!   `serde_json::Value` in the handler: bare with `Json`, guarded with a
//!   `ReadView` (written already filtered, not scanned by FieldFilter).
//!
//! Every router is resolved with `.with_state(())` first, as `axum::serve`
//! does once per connection: otherwise axum turns each handler into a
//! route, and applies every `layer` to it, again on every `oneshot`.
//!
//! `cargo bench --all-features --bench auth`
//!
//! Paired times on a noisy machine:
//! `IAM_GUARD_PAIR=stack/bare_get_typed,stack/full_get_typed_cached_token cargo bench --all-features --bench auth`
//! alternates the two cases in batches and prints their medians and the
//! median difference (`:<rounds>` after the pair, default 100;
//! `IAM_GUARD_PAIR_BATCH` requests per batch, default 2,000).
//!
//! Instruction counts: `benches/callgrind.sh stack/full_get_cached_token`
//! runs one case alone under callgrind (`IAM_GUARD_COUNT=<case>:<n>`
//! makes this binary run that case `n` times in `count_loop` instead of
//! timing anything).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

#[path = "support/documents.rs"]
mod documents;

use documents::record;

use std::sync::Arc;

use std::{convert::Infallible, time::Duration};

use axum::{
    body::{Body, Bytes},
    http::{header::CONTENT_TYPE, Method, Request, Response},
    response::IntoResponse,
    routing::get,
    Router,
};
use criterion::{
    criterion_group, criterion_main, measurement::WallTime, BenchmarkGroup, Criterion,
};
use iam_guard::{
    guard::protected::{convention, ProtectedResource},
    model::Catalogue,
    permissions::source::CatalogueSource,
    revocation::Revocations,
    test_util::{TestIam, TestKey, TEST_AUDIENCE},
    JwtAuthGuardLayer, ReadView, RequirementGuardLayer, Verifier,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use jwt_authorizer::{IntoLayer, JwtAuthorizer};
use serde_json::{json, Map, Value};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};

/// Far enough in the future that no run outlives the tokens.
const EXP: u64 = 4_000_000_000;

type Claims = Map<String, Value>;

fn request(token: &str) -> Request<Body> {
    Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn run<S>(rt: &Runtime, svc: &S, req: Request<Body>) -> S::Response
where
    S: Service<Request<Body>, Error = Infallible> + Clone,
{
    rt.block_on(svc.clone().oneshot(req)).unwrap()
}

/// `jsonwebtoken::decode` with the same checks as the guard: the floor.
fn raw_decoder(iam: &TestIam, key: &TestKey) -> (DecodingKey, Validation) {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).unwrap();
    let decoding = DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = Validation::new(key.alg().parse::<Algorithm>().unwrap());
    validation.set_issuer(&[iam.issuer()]);
    validation.set_audience(&[TEST_AUDIENCE]);
    (decoding, validation)
}

/// The signature check alone, with a key aws-lc parsed beforehand: the
/// floor under any verification of `token` (no header, no claims, no
/// router).
fn signature_only(key: &TestKey, token: &str) -> impl FnMut() -> bool {
    use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    let algorithm: &'static dyn VerificationAlgorithm = match key.alg() {
        "RS256" => &sig::RSA_PKCS1_2048_8192_SHA256,
        "ES256" => &sig::ECDSA_P256_SHA256_FIXED,
        "ES512" => &sig::ECDSA_P521_SHA512_FIXED,
        "EdDSA" => &sig::ED25519,
        other => panic!("no signature-only case for {other}"),
    };
    let parsed = ParsedPublicKey::new(algorithm, key.public_key_bytes()).unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    let (input, signature) = (input.to_owned(), signature.to_owned());
    move || {
        let raw = URL_SAFE_NO_PAD.decode(&signature).unwrap();
        parsed.verify_sig(input.as_bytes(), &raw).is_ok()
    }
}

/// axum 0.8's response body as axum 0.7's, the only response type
/// jwt-authorizer 0.15 can build its rejections in.
fn to_axum07(res: Response<Body>) -> Response<axum_core_04::body::Body> {
    res.map(axum_core_04::body::Body::new)
}

/// The case `IAM_GUARD_COUNT=<group>/<name>:<iterations>` asks for.
fn counting() -> Option<(String, u64)> {
    let spec = std::env::var("IAM_GUARD_COUNT").ok()?;
    let (case, n) = spec
        .rsplit_once(':')
        .expect("IAM_GUARD_COUNT=<group>/<name>:<n>");
    Some((case.to_owned(), n.parse().expect("an iteration count")))
}

/// Whether a counting or pairing run skips the whole `group` (its setup
/// included).
fn skip_group(group: &str) -> bool {
    let prefix = format!("{group}/");
    counting().is_some_and(|(case, _)| !case.starts_with(&prefix))
        || pairing().is_some_and(|(a, _, _)| !a.starts_with(&prefix))
}

/// The cases `IAM_GUARD_PAIR=<group>/<a>,<group>/<b>[:rounds]` asks to
/// alternate.
fn pairing() -> Option<(String, String, usize)> {
    let spec = std::env::var("IAM_GUARD_PAIR").ok()?;
    let (cases, rounds) = match spec.rsplit_once(':') {
        Some((cases, rounds)) => (cases, rounds.parse().expect("a round count")),
        None => (spec.as_str(), 100),
    };
    let (a, b) = cases
        .split_once(',')
        .expect("IAM_GUARD_PAIR=<group>/<a>,<group>/<b>[:rounds]");
    Some((a.to_owned(), b.to_owned(), rounds))
}

/// A case of a group: its name and what one request of it does.
type Case<'a, R> = (&'a str, Box<dyn FnMut() -> R + 'a>);

/// Requests per timed batch of a pairing run (`IAM_GUARD_PAIR_BATCH`,
/// default 2,000: long enough that switching cases costs nothing that
/// shows, short enough that a slow spell of the machine spans both).
fn pair_batch() -> u32 {
    std::env::var("IAM_GUARD_PAIR_BATCH")
        .ok()
        .map_or(2_000, |n| n.parse().expect("a batch size"))
}

/// In a pairing run for `group`, alternates its two cases in batches of
/// [`pair_batch`] requests (A B, then B A, round after round, the first
/// tenth discarded as warm-up) and prints each one's median time per
/// request and the median of the rounds' differences: a slow spell of the
/// machine hits both alike, where criterion times one case after the
/// other. Returns whether it ran.
fn pair_run<R>(group: &str, cases: &mut [Case<'_, R>]) -> bool {
    let Some((a, b, rounds)) = pairing() else {
        return false;
    };
    let index = |case: &str| {
        cases
            .iter()
            .position(|(name, _)| format!("{group}/{name}") == case)
    };
    // A group may pair from several sets of cases: this one must hold both.
    let (Some(ia), Some(ib)) = (index(&a), index(&b)) else {
        return false;
    };
    let batch = pair_batch();
    let mut time = |i: usize| {
        let f = &mut cases[i].1;
        let start = std::time::Instant::now();
        for _ in 0..batch {
            std::hint::black_box(f());
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(batch)
    };
    let (mut ta, mut tb, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds + rounds / 10 {
        let (x, y) = if round % 2 == 0 {
            let x = time(ia);
            (x, time(ib))
        } else {
            let y = time(ib);
            (time(ia), y)
        };
        if round >= rounds / 10 {
            ta.push(x);
            tb.push(y);
            diff.push(y - x);
        }
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.25), at(0.75))
    };
    let (ma, _, _) = stats(&mut ta);
    let (mb, _, _) = stats(&mut tb);
    let (md, d25, d75) = stats(&mut diff);
    println!(
        "pair {a} vs {b}: {rounds} rounds x {batch} requests each\n  \
         {a}: {ma:.3} µs (median)\n  {b}: {mb:.3} µs (median)\n  \
         difference: {md:+.3} µs (median of rounds; quartiles {d25:+.3} .. {d75:+.3}), \
         ratio {:.2}",
        mb / ma
    );
    true
}

/// The loop callgrind counts (`--toggle-collect=*count_loop*`): setup,
/// key generation and warm-up stay outside it.
#[inline(never)]
fn count_loop<R>(n: u64, f: &mut impl FnMut() -> R) {
    for _ in 0..n {
        std::hint::black_box(f());
    }
}

/// Times `f` as `group/name`, or, in a counting run for this case, runs it
/// the asked number of times and exits.
fn bench<R>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    group: &str,
    name: &str,
    mut f: impl FnMut() -> R,
) {
    match counting() {
        Some((case, n)) if case == format!("{group}/{name}") => {
            count_loop(n, &mut f);
            std::process::exit(0);
        }
        Some(_) => {}
        None => {
            g.bench_function(name, |b| b.iter(&mut f));
        }
    }
}

fn bench_auth(c: &mut Criterion) {
    if skip_group("auth") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let iam = rt.block_on(TestIam::start_with(vec![TestKey::rsa("k")]));
    let keys = [
        ("rs256", iam.key()),
        ("es256", iam.add_key(TestKey::ec_p256("e"))),
        ("eddsa", iam.add_key(TestKey::ed25519("d"))),
    ];
    let claims = json!({"sub": "bench", "roles": ["teacher"], "exp": EXP});
    let tokens: Vec<String> = keys
        .iter()
        .map(|(_, k)| iam.mint_with(k, claims.clone()))
        .collect();

    let handler = || async { "ok" };
    let bare = Router::new().route("/", get(handler)).with_state(());
    let cached = Router::new()
        .route("/", get(handler))
        .layer(JwtAuthGuardLayer::new(iam.verifier()))
        .with_state(());
    // The same with revocations on and 10,000 token ids plus 1,000 users
    // revoked (none of them this token): after its first check, a cached
    // token is looked up again only when something new is revoked.
    let revocations = Revocations::builder()
        // The bench tokens expire in 2096 and carry no `iat`.
        .max_token_lifetime(Duration::from_secs(1 << 40))
        .build();
    for i in 0..10_000 {
        revocations.revoke_token(&format!("jti-{i}"), Some(EXP));
    }
    for i in 0..1_000 {
        revocations.revoke_user(&format!("user-{i}"), None, EXP);
    }
    let with_revocations = Router::new()
        .route("/", get(handler))
        .layer(JwtAuthGuardLayer::new(iam.verifier()).revocations(revocations))
        .with_state(());
    let fresh_verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .no_token_cache()
        .build();
    rt.block_on(fresh_verifier.jwks().warm_up()).unwrap();
    let fresh = Router::new()
        .route("/", get(handler))
        .layer(JwtAuthGuardLayer::new(fresh_verifier))
        .with_state(());

    // The same IAM as the second of two trusted issuers: a repeat token
    // is looked up in the first issuer's token cache, then its own; a fresh
    // one has its payload read once to find its issuer.
    let other = rt.block_on(TestIam::start_with(vec![TestKey::rsa("k")]));
    let second_cached = Router::new()
        .route("/", get(handler))
        .layer(JwtAuthGuardLayer::new(other.verifier()).trust(iam.verifier()))
        .with_state(());
    let second_fresh_verifier = Verifier::builder(iam.fetcher(), iam.validation())
        .no_token_cache()
        .build();
    rt.block_on(second_fresh_verifier.jwks().warm_up()).unwrap();
    let second_fresh = Router::new()
        .route("/", get(handler))
        .layer(
            JwtAuthGuardLayer::new(
                Verifier::builder(other.fetcher(), other.validation())
                    .no_token_cache()
                    .build(),
            )
            .trust(second_fresh_verifier),
        )
        .with_state(());

    // The peer: jwt-authorizer from the same JWKS URL, checking iss and aud.
    let peer_validation = jwt_authorizer::Validation::new()
        .iss(&[iam.issuer()])
        .aud(&[TEST_AUDIENCE]);
    let peer_layer = rt
        .block_on(
            JwtAuthorizer::<Claims>::from_jwks_url(&iam.jwks_uri())
                .validation(peer_validation)
                .build(),
        )
        .unwrap()
        .into_layer();
    let bare07 = ServiceExt::<Request<Body>>::map_response(bare.clone(), to_axum07);
    let peer = peer_layer.layer(bare07.clone());

    // Warm every cache (JWKS, verified tokens, the peer's key store).
    for token in &tokens {
        for app in [
            &cached,
            &with_revocations,
            &fresh,
            &second_cached,
            &second_fresh,
        ] {
            assert_eq!(run(&rt, app, request(token)).status(), 200);
        }
        assert_eq!(run(&rt, &peer, request(token)).status(), 200);
    }
    // jsonwebtoken, and so jwt-authorizer, has no ES512 (nor does it read a
    // JWKS holding a P-521 key): its IAM of its own.
    let p521 = rt.block_on(TestIam::start_with(vec![TestKey::ec_p521("p")]));
    let es512 = p521.mint(claims.clone());
    let fresh_p521_verifier = Verifier::builder(p521.fetcher(), p521.validation())
        .no_token_cache()
        .build();
    rt.block_on(fresh_p521_verifier.jwks().warm_up()).unwrap();
    let fresh_p521 = Router::new()
        .route("/", get(handler))
        .layer(JwtAuthGuardLayer::new(fresh_p521_verifier))
        .with_state(());
    assert_eq!(run(&rt, &fresh_p521, request(&es512)).status(), 200);

    let rs256 = &tokens[0];
    let mut cached_cases: [Case<'_, Response<Body>>; 2] = [
        ("bare_router", Box::new(|| run(&rt, &bare, request(rs256)))),
        (
            "guard_cached_token",
            Box::new(|| run(&rt, &cached, request(rs256))),
        ),
    ];
    if pair_run("auth", &mut cached_cases) {
        return;
    }
    let mut g = c.benchmark_group("auth");
    for (name, f) in &mut cached_cases {
        bench(&mut g, "auth", name, f);
    }
    bench(&mut g, "auth", "guard_cached_token_revocations", || {
        run(&rt, &with_revocations, request(rs256))
    });
    bench(
        &mut g,
        "auth",
        "guard_cached_token_second_of_two_issuers",
        || run(&rt, &second_cached, request(rs256)),
    );
    bench(
        &mut g,
        "auth",
        "guard_fresh_rs256_second_of_two_issuers",
        || run(&rt, &second_fresh, request(rs256)),
    );
    bench(&mut g, "auth", "bare_router_axum07_body", || {
        run(&rt, &bare07, request(rs256))
    });
    // Fresh verifications beside their floor and their peers; pairable
    // with each other and with the bare router (`IAM_GUARD_PAIR`).
    let names: Vec<[String; 4]> = keys
        .iter()
        .map(|(name, _)| {
            [
                format!("signature_only_{name}"),
                format!("guard_fresh_{name}"),
                format!("jsonwebtoken_decode_{name}"),
                format!("jwt_authorizer_{name}"),
            ]
        })
        .collect();
    let mut fresh_cases: Vec<Case<'_, ()>> = vec![(
        "bare_router",
        Box::new(|| drop(run(&rt, &bare, request(rs256)))),
    )];
    for (((_, key), token), [signature, guard, decode, authorizer]) in
        keys.iter().zip(&tokens).zip(&names)
    {
        let mut check = signature_only(key, token);
        assert!(check(), "the floor checks the same signature");
        let (decoding, validation) = raw_decoder(&iam, key);
        fresh_cases.push((signature, Box::new(move || assert!(check()))));
        fresh_cases.push((guard, Box::new(|| drop(run(&rt, &fresh, request(token))))));
        fresh_cases.push((
            decode,
            Box::new(move || {
                std::hint::black_box(
                    jsonwebtoken::decode::<Claims>(token, &decoding, &validation).unwrap(),
                );
            }),
        ));
        fresh_cases.push((
            authorizer,
            Box::new(|| drop(run(&rt, &peer, request(token)))),
        ));
    }
    if pair_run("auth", &mut fresh_cases) {
        return;
    }
    if let Some((a, b, _)) = pairing() {
        panic!("no pair {a}, {b} in the auth group");
    }
    // The bare router was timed with the cached cases.
    for (name, f) in &mut fresh_cases[1..] {
        bench(&mut g, "auth", name, f);
    }
    let mut check = signature_only(&p521.key(), &es512);
    assert!(check(), "the floor checks the same signature");
    bench(&mut g, "auth", "signature_only_es512", &mut check);
    bench(&mut g, "auth", "guard_fresh_es512", || {
        run(&rt, &fresh_p521, request(&es512))
    });
    g.finish();
}

const PATCH_BODY: &str = r#"{"anagraphic":{"firstName":"Ada"},"attendance":{"days":180}}"#;

/// The response with its body read, as a server would: FieldFilter's work
/// happens while the body is produced.
fn run_read<S>(rt: &Runtime, svc: &S, req: Request<Body>) -> Bytes
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    rt.block_on(async {
        let res = svc.clone().oneshot(req).await.unwrap();
        axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap()
    })
}

fn get_req(token: &str) -> Request<Body> {
    Request::get("/students/s-1")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn patch_req(token: &str) -> Request<Body> {
    Request::patch("/students/s-1")
        .header("authorization", format!("Bearer {token}"))
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(PATCH_BODY))
        .unwrap()
}

fn bench_stack(c: &mut Criterion) {
    if skip_group("stack") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let iam = rt.block_on(TestIam::start());
    let token = iam.mint(json!({"sub": "admin-1", "roles": ["admin"], "exp": EXP}));
    // Reads some of the eight groups: FieldFilter cuts the others.
    let teacher = iam.mint(json!({"sub": "t-1", "roles": ["internal_teacher"], "exp": EXP}));

    let full_record = Bytes::from(record());
    let get_one = move || {
        let record = full_record.clone();
        async move { ([(CONTENT_TYPE, "application/json")], record) }
    };
    let patch = |body: Bytes| async move { ([(CONTENT_TYPE, "application/json")], body) };
    // The same record as a value the handler serializes on each request.
    let value: Arc<Value> = Arc::new(serde_json::from_slice(&record()).unwrap());
    let typed_value = value.clone();
    let bare_typed = move || {
        let value = typed_value.clone();
        async move { axum::Json(&*value).into_response() }
    };
    let typed_value = value.clone();
    let read_view = move |view: ReadView| {
        let value = typed_value.clone();
        async move { view.json(&*value) }
    };

    let bare = Router::new()
        .route("/students/{id}", get(get_one.clone()).patch(patch))
        .with_state(());
    let bare_typed = Router::new()
        .route("/students/{id}", get(bare_typed))
        .with_state(());
    let auth = JwtAuthGuardLayer::new(iam.verifier())
        .permissions(CatalogueSource::new(Catalogue::students_fixture()));
    // Auth and the READ requirement only, no field guards: where the time goes.
    let auth_scope = Router::new()
        .route(
            "/students/{id}",
            get(get_one.clone()).route_layer(RequirementGuardLayer::new(
                convention("students", &Method::GET).unwrap(),
            )),
        )
        .route_layer(auth.clone())
        .with_state(());
    let full_typed: Router = ProtectedResource::new("students")
        .authenticate(auth.clone())
        .get("/students/{id}", read_view)
        .into_router()
        .with_state(());
    let full: Router = ProtectedResource::new("students")
        .authenticate(auth)
        .get("/students/{id}", get_one)
        .patch("/students/{id}", patch)
        .into_router()
        .with_state(());

    // Warm the caches, and check the stack lets the admin through.
    assert_eq!(run(&rt, &auth_scope, get_req(&token)).status(), 200);
    for app in [&bare, &full] {
        assert_eq!(run(&rt, app, get_req(&token)).status(), 200);
        assert_eq!(run(&rt, app, patch_req(&token)).status(), 200);
    }

    let seen = run_read(&rt, &full, get_req(&teacher));
    assert!(
        seen.len() < record().len(),
        "the teacher's view is filtered"
    );
    // Typed and scanned, the same bytes for both callers.
    assert_eq!(run_read(&rt, &full_typed, get_req(&teacher)), seen);
    assert_eq!(
        run_read(&rt, &full_typed, get_req(&token)),
        run_read(&rt, &bare_typed, get_req(&token))
    );

    let mut cases: [Case<'_, Bytes>; 9] = [
        (
            "bare_get",
            Box::new(|| run_read(&rt, &bare, get_req(&token))),
        ),
        (
            "auth_scope_get_cached_token",
            Box::new(|| run_read(&rt, &auth_scope, get_req(&token))),
        ),
        (
            "full_get_cached_token",
            Box::new(|| run_read(&rt, &full, get_req(&token))),
        ),
        (
            "full_get_cached_token_teacher",
            Box::new(|| run_read(&rt, &full, get_req(&teacher))),
        ),
        (
            "bare_get_typed",
            Box::new(|| run_read(&rt, &bare_typed, get_req(&token))),
        ),
        (
            "full_get_typed_cached_token",
            Box::new(|| run_read(&rt, &full_typed, get_req(&token))),
        ),
        (
            "full_get_typed_cached_token_teacher",
            Box::new(|| run_read(&rt, &full_typed, get_req(&teacher))),
        ),
        (
            "bare_patch",
            Box::new(|| run_read(&rt, &bare, patch_req(&token))),
        ),
        (
            "full_patch_cached_token",
            Box::new(|| run_read(&rt, &full, patch_req(&token))),
        ),
    ];
    if pair_run("stack", &mut cases) {
        return;
    }
    let mut g = c.benchmark_group("stack");
    for (name, f) in &mut cases {
        bench(&mut g, "stack", name, f);
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench_auth, bench_stack
}
criterion_main!(benches);
