//! RFC 7662 introspection of opaque access tokens: `Introspector` against
//! the test kit's `IntrospectionEndpoint` (answers, faults and credentials
//! switched per test) and against a real OpenID Provider (panva's
//! `oidc-provider`, whose opaque client-credentials tokens are introspected,
//! revoked and outlived; see `tests/common/oidc.rs`).
//!
//! Timing is only ever waited for (short TTLs, polled with a deadline),
//! never asserted as speed.
#![cfg(all(feature = "jwks-http", feature = "test-util"))]

mod common;

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{
    capture, counters,
    oidc::{form_encode, Provider, CLIENT_ID, CLIENT_SECRET},
};
use iam_guard::{
    jwt::{
        introspection::{IntrospectionError, Introspector, IntrospectorBuilder},
        source::FetchError,
    },
    metrics::INTROSPECTIONS,
    test_util::{IamMode, IntrospectionEndpoint, IntrospectionRequest},
    ClaimMapping, ErrorCode, Rejection,
};
use serde_json::{json, Value};

/// Long enough for any loaded machine to get past a short TTL.
const DEADLINE: Duration = Duration::from_secs(10);

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// An introspector for `iam`, authenticating with its credentials.
fn builder(iam: &IntrospectionEndpoint) -> IntrospectorBuilder {
    Introspector::builder(&iam.url(), &iam.issuer())
        .client_secret_basic(iam.client_id(), iam.client_secret())
}

fn introspector(iam: &IntrospectionEndpoint) -> Introspector {
    builder(iam).build().expect("a valid endpoint")
}

/// An active answer for `user`, valid for a minute, with `patch` merged.
fn active(user: &str, patch: Value) -> Value {
    iam_guard::test_util::merge(
        json!({"active": true, "sub": user, "exp": now() as u64 + 60}),
        patch,
    )
}

/// Polls `probe` until it returns `Some`, or panics after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn is_unavailable(outcome: &Result<iam_guard::Principal, IntrospectionError>) -> bool {
    matches!(outcome, Err(IntrospectionError::Unavailable(_)))
}

// ---------------------------------------------------------------------
// Against the test kit's endpoint.
// ---------------------------------------------------------------------

#[tokio::test]
async fn an_active_answer_admits_the_caller_with_every_member_as_a_claim() {
    let iam = IntrospectionEndpoint::start().await;
    iam.answer(
        "opaque-teacher",
        active(
            "u-teacher",
            json!({
                "tenantId": "school-1",
                "roles": ["teacher"],
                "scope": "students:read grades:write",
                "token_type": "DPoP",
                "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
            }),
        ),
    );
    let introspector = introspector(&iam);
    let caller = introspector.check("opaque-teacher").await.expect("active");
    assert_eq!(caller.user_id(), "u-teacher");
    assert_eq!(caller.tenant_id(), Some("school-1"));
    assert!(caller.has_role("teacher"));
    assert!(caller.has_oauth_scope("grades:write"));
    // The answer had no `iss`: the introspector's issuer vouched.
    assert_eq!(caller.issuer(), iam.issuer());
    // `cnf` reaches whoever checks the proof of possession.
    assert_eq!(
        caller.claim::<String>("cnf.jkt").unwrap(),
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    );
    assert_eq!(caller.claim::<String>("token_type").unwrap(), "DPoP");

    // RFC 7662 §2.1: a form POST with the hint, asking for JSON, with
    // RFC 6749 §2.3.1 Basic credentials (the test secret holds `:`, `+`
    // and a space, which only form-encoding gets across).
    let request = iam.last_request().expect("a request");
    assert_eq!(request.token.as_deref(), Some("opaque-teacher"));
    assert_eq!(request.token_type_hint.as_deref(), Some("access_token"));
    assert_eq!(request.accept.as_deref(), Some("application/json"));
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.client_auth, Some("client_secret_basic"));
}

#[tokio::test]
async fn a_client_credentials_answer_maps_the_user_from_client_id() {
    let iam = IntrospectionEndpoint::start().await;
    iam.answer(
        "opaque-service",
        json!({"active": true, "client_id": "billing-svc", "exp": now() as u64 + 60}),
    );
    // The default mapping reads `sub`, which this answer lacks.
    let default = introspector(&iam);
    assert_eq!(
        default.check("opaque-service").await.unwrap_err(),
        IntrospectionError::Invalid("token has no subject")
    );
    let mapped = builder(&iam)
        .claims(ClaimMapping::default().user_id("client_id"))
        .build()
        .unwrap();
    assert_eq!(
        mapped.check("opaque-service").await.unwrap().user_id(),
        "billing-svc"
    );
}

#[tokio::test]
async fn a_cached_active_answer_makes_no_call() {
    let iam = IntrospectionEndpoint::start().await;
    iam.answer("opaque-1", active("u-1", json!({})));
    let introspector = introspector(&iam);
    introspector.check("opaque-1").await.unwrap();
    assert_eq!((introspector.calls(), iam.requests()), (1, 1));
    for _ in 0..50 {
        assert_eq!(
            introspector.check("opaque-1").await.unwrap().user_id(),
            "u-1"
        );
    }
    assert_eq!((introspector.calls(), iam.requests()), (1, 1));
    // Clones share the cache.
    introspector.clone().check("opaque-1").await.unwrap();
    assert_eq!(iam.requests(), 1);
    assert_eq!(introspector.cached_answers().await, 1);
}

#[tokio::test]
async fn an_inactive_token_is_remembered_for_the_inactive_ttl_then_asked_again() {
    let iam = IntrospectionEndpoint::start().await;
    let introspector = builder(&iam)
        .inactive_ttl(Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(
        introspector.check("not-yet").await.unwrap_err(),
        IntrospectionError::Inactive
    );
    assert_eq!(iam.requests(), 1);
    // Within the TTL the verdict is remembered: no call.
    assert_eq!(
        introspector.check("not-yet").await.unwrap_err(),
        IntrospectionError::Inactive
    );
    assert_eq!((introspector.calls(), iam.requests()), (1, 1));
    // The IAM now knows the token; once the TTL is over we learn it.
    iam.answer("not-yet", active("u-late", json!({})));
    let caller = eventually("the inactive verdict to expire", || async {
        introspector.check("not-yet").await.ok()
    })
    .await;
    assert_eq!(caller.user_id(), "u-late");
    assert_eq!(iam.requests(), 2, "asked once more, after the TTL");
}

#[tokio::test]
async fn a_flood_of_garbage_tokens_costs_one_call_each_per_ttl() {
    let iam = IntrospectionEndpoint::start().await;
    let introspector = introspector(&iam);
    for round in 0..3 {
        for i in 0..20 {
            let outcome = introspector.check(&format!("garbage-{i}")).await;
            assert_eq!(
                outcome.unwrap_err(),
                IntrospectionError::Inactive,
                "{round}"
            );
        }
    }
    assert_eq!(iam.requests(), 20);
}

#[tokio::test]
async fn an_answer_is_never_served_past_its_exp() {
    let iam = IntrospectionEndpoint::start().await;
    // At least a second ahead, at most two.
    let exp = now().floor() + 2.0;
    iam.answer(
        "short-lived",
        json!({"active": true, "sub": "u-1", "exp": exp as u64}),
    );
    // The bound is far away: only `exp` ends the entry.
    let introspector = builder(&iam)
        .max_ttl(Duration::from_secs(600))
        .build()
        .unwrap();
    introspector
        .check("short-lived")
        .await
        .expect("active until exp");
    let requests = iam.requests();
    let verdict = eventually("the token's exp", || async {
        let asked_at = now();
        match introspector.check("short-lived").await {
            Ok(_) => {
                assert!(asked_at < exp, "served from the cache past exp");
                None
            }
            Err(e) => Some(e),
        }
    })
    .await;
    assert_eq!(verdict, IntrospectionError::Inactive);
    assert!(now() >= exp);
    // Either the clock check answered it (no call) or moka had dropped the
    // entry and the IAM was asked again; a served hit past exp never.
    assert!(iam.requests() <= requests + 1);
}

#[tokio::test]
async fn an_answer_without_exp_is_reused_for_max_ttl_then_asked_again() {
    let iam = IntrospectionEndpoint::start().await;
    iam.answer("no-exp", json!({"active": true, "sub": "u-1"}));
    let introspector = builder(&iam)
        .max_ttl(Duration::from_millis(300))
        .build()
        .unwrap();
    introspector.check("no-exp").await.unwrap();
    introspector.check("no-exp").await.unwrap();
    assert_eq!(iam.requests(), 1);
    // Revoked at the IAM: noticed once the bound is over.
    iam.forget("no-exp");
    let verdict = eventually("max_ttl to end", || async {
        introspector.check("no-exp").await.err()
    })
    .await;
    assert_eq!(verdict, IntrospectionError::Inactive);
    assert_eq!(iam.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_uncached_token_make_one_call() {
    let iam = IntrospectionEndpoint::start().await;
    iam.answer("popular", active("u-1", json!({})));
    // Slow enough that every task arrives while the call is in flight.
    iam.set_mode(IamMode::Slow(Duration::from_millis(300)));
    let introspector = introspector(&iam);
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (introspector, barrier) = (introspector.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                introspector
                    .check("popular")
                    .await
                    .map(|p| p.user_id().to_owned())
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "u-1");
    }
    assert_eq!((introspector.calls(), iam.requests()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_failed_call_too() {
    let iam = IntrospectionEndpoint::start().await;
    iam.set_mode(IamMode::Slow(Duration::from_millis(300)));
    let introspector = builder(&iam)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (introspector, barrier) = (introspector.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                introspector.check("slow").await
            })
        })
        .collect();
    for task in tasks {
        assert!(is_unavailable(&task.await.unwrap()));
    }
    assert_eq!(introspector.calls(), 1);
}

#[tokio::test]
async fn an_outage_is_unavailable_and_never_cached() {
    let iam = IntrospectionEndpoint::start().await;
    iam.answer("opaque-1", active("u-1", json!({})));
    let introspector = introspector(&iam);
    iam.set_down(true);
    let outcome = introspector.check("opaque-1").await;
    assert_eq!(
        outcome.unwrap_err(),
        IntrospectionError::Unavailable(FetchError::Status(503))
    );
    // Not remembered: the next request asks again.
    assert!(is_unavailable(&introspector.check("opaque-1").await));
    assert_eq!((introspector.calls(), iam.requests()), (2, 2));
    assert_eq!(introspector.cached_answers().await, 0);
    iam.set_down(false);
    assert_eq!(
        introspector.check("opaque-1").await.unwrap().user_id(),
        "u-1"
    );
    assert_eq!(iam.requests(), 3);
}

#[tokio::test]
async fn an_unreachable_or_slow_iam_is_unavailable() {
    // A port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let unreachable =
        Introspector::builder(&format!("http://{closed}/introspect"), "http://iam.test")
            .build()
            .unwrap();
    assert!(matches!(
        unreachable.check("opaque-1").await,
        Err(IntrospectionError::Unavailable(FetchError::Connect(_)))
    ));
    assert!(is_unavailable(&unreachable.check("opaque-1").await));
    assert_eq!(unreachable.calls(), 2);

    let iam = IntrospectionEndpoint::start().await;
    iam.answer("opaque-1", active("u-1", json!({})));
    iam.set_mode(IamMode::Slow(Duration::from_secs(5)));
    let impatient = builder(&iam)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert!(matches!(
        impatient.check("opaque-1").await,
        Err(IntrospectionError::Unavailable(FetchError::Timeout(_)))
    ));
}

/// Whether an error is the one expected.
type Expect = fn(&IntrospectionError) -> bool;

/// An answer the IAM sent that is not an RFC 7662 answer.
fn not_an_answer(e: &IntrospectionError) -> bool {
    matches!(e, IntrospectionError::Unavailable(FetchError::Invalid(_)))
}

/// What each malformed answer, fault or refused answer gives.
#[tokio::test]
async fn malformed_answers_and_refused_ones_each_give_their_error() {
    let iam = IntrospectionEndpoint::start().await;
    let introspector = builder(&iam)
        .audience(["students-api"])
        .max_answer_bytes(4096)
        .build()
        .unwrap();
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "array",
            json!([{"active": true, "sub": "u"}]),
            not_an_answer,
        ),
        (
            "active-string",
            json!({"active": "true", "sub": "u", "aud": "students-api"}),
            not_an_answer,
        ),
        (
            "active-missing",
            json!({"sub": "u", "aud": "students-api"}),
            not_an_answer,
        ),
        (
            "other-issuer",
            active(
                "u",
                json!({"aud": "students-api", "iss": "https://evil.example"}),
            ),
            |e| *e == IntrospectionError::Invalid("the token was issued by another issuer"),
        ),
        (
            "refresh-token",
            active(
                "u",
                json!({"aud": "students-api", "token_type": "refresh_token"}),
            ),
            |e| *e == IntrospectionError::Invalid("a refresh token is not an access token"),
        ),
        (
            "other-audience",
            active("u", json!({"aud": ["billing-api"]})),
            |e| *e == IntrospectionError::Invalid("the token is not for this audience"),
        ),
        ("no-audience", active("u", json!({})), |e| {
            *e == IntrospectionError::Invalid("the token is not for this audience")
        }),
        (
            "expired",
            active("u", json!({"aud": "students-api", "exp": now() as u64 - 5})),
            |e| *e == IntrospectionError::Inactive,
        ),
        (
            "not-yet",
            active(
                "u",
                json!({"aud": "students-api", "nbf": now() as u64 + 60}),
            ),
            |e| *e == IntrospectionError::Invalid("the token is not valid yet"),
        ),
    ];
    for (token, answer, expected) in &cases {
        iam.answer(token, answer.clone());
        let err = introspector.check(token).await.unwrap_err();
        assert!(expected(&err), "{token}: {err:?}");
        let before = iam.requests();
        let again = introspector.check(token).await.unwrap_err();
        assert_eq!(again, err, "{token}");
        // An answer we cannot read is the IAM's fault and asked again; a
        // verdict against the token is remembered.
        let asked_again = iam.requests() > before;
        assert_eq!(asked_again, not_an_answer(&err), "{token}: {err:?}");
    }
    // The same token, accepted once the answer is right.
    iam.answer(
        "other-audience",
        active("u", json!({"aud": "students-api"})),
    );
    let fresh = builder(&iam).audience(["students-api"]).build().unwrap();
    assert_eq!(fresh.check("other-audience").await.unwrap().user_id(), "u");

    // Faults of the whole endpoint.
    iam.answer("opaque-1", active("u", json!({"aud": "students-api"})));
    let faults: Vec<(IamMode, Expect)> = vec![
        (IamMode::Garbage, not_an_answer),
        (IamMode::Status(500), |e| {
            *e == IntrospectionError::Unavailable(FetchError::Status(500))
        }),
        (IamMode::Status(302), |e| {
            *e == IntrospectionError::Unavailable(FetchError::Status(302))
        }),
        (IamMode::Huge(100_000), |e| {
            *e == IntrospectionError::Unavailable(FetchError::TooLarge(4096))
        }),
    ];
    for (mode, expected) in faults {
        iam.set_mode(mode.clone());
        let err = introspector.check("opaque-1").await.unwrap_err();
        assert!(expected(&err), "{mode:?}: {err:?}");
        assert_eq!(
            Rejection::from(&err).code(),
            ErrorCode::IamUnavailable,
            "{mode:?}"
        );
    }
    // A streamed body (no Content-Length) is capped while it is read.
    iam.set_mode(IamMode::Chunked);
    let padding = "x".repeat(8192);
    iam.answer(
        "padded",
        active("u", json!({"aud": "students-api", "padding": padding})),
    );
    assert_eq!(
        introspector.check("padded").await.unwrap_err(),
        IntrospectionError::Unavailable(FetchError::TooLarge(4096))
    );
    // The same streaming, small enough: fine.
    assert_eq!(introspector.check("opaque-1").await.unwrap().user_id(), "u");
}

#[tokio::test]
async fn a_malformed_token_is_refused_without_a_call() {
    let iam = IntrospectionEndpoint::start().await;
    let introspector = introspector(&iam);
    let long = "a".repeat(8 * 1024 + 1);
    for token in ["", "two words", "line\nbreak", "ünïcode", long.as_str()] {
        assert_eq!(
            introspector.check(token).await.unwrap_err(),
            IntrospectionError::Malformed,
            "{token:?}"
        );
    }
    assert_eq!((introspector.calls(), iam.requests()), (0, 0));
}

#[tokio::test]
async fn client_secret_basic_post_and_bearer_are_accepted_and_wrong_ones_refused() {
    let iam = IntrospectionEndpoint::start().await;
    iam.answer("opaque-1", active("u-1", json!({})));
    let auth_of = |iam: &IntrospectionEndpoint| {
        iam.last_request()
            .and_then(|r: IntrospectionRequest| r.client_auth)
    };

    let basic = introspector(&iam);
    basic.check("opaque-1").await.expect("basic accepted");
    assert_eq!(auth_of(&iam), Some("client_secret_basic"));

    // Form-encoded in the body too, so `&`, `=` and `%` survive.
    iam.set_credentials("client:1", "p%ss=w&rd +");
    let post = Introspector::builder(&iam.url(), &iam.issuer())
        .client_secret_post("client:1", "p%ss=w&rd +")
        .build()
        .unwrap();
    post.check("opaque-1").await.expect("post accepted");
    assert_eq!(auth_of(&iam), Some("client_secret_post"));
    let basic = Introspector::builder(&iam.url(), &iam.issuer())
        .client_secret_basic("client:1", "p%ss=w&rd +")
        .build()
        .unwrap();
    basic
        .check("opaque-1")
        .await
        .expect("basic with a `:` in the id");

    iam.accept_bearer(Some("service-credential"));
    let bearer = Introspector::builder(&iam.url(), &iam.issuer())
        .bearer("service-credential")
        .build()
        .unwrap();
    bearer.check("opaque-1").await.expect("bearer accepted");
    assert_eq!(auth_of(&iam), Some("bearer"));

    // The IAM refusing us is a configuration error: 503, never a verdict
    // against the caller's token, and not remembered.
    let wrong = [
        Introspector::builder(&iam.url(), &iam.issuer()).client_secret_basic("client:1", "wrong"),
        Introspector::builder(&iam.url(), &iam.issuer())
            .client_secret_post("client:2", "p%ss=w&rd +"),
        Introspector::builder(&iam.url(), &iam.issuer()).bearer("stolen"),
        Introspector::builder(&iam.url(), &iam.issuer()),
    ];
    for builder in wrong {
        let introspector = builder.build().unwrap();
        let err = introspector.check("opaque-1").await.unwrap_err();
        assert_eq!(
            err,
            IntrospectionError::Unavailable(FetchError::Status(401)),
            "{introspector:?}"
        );
        let rejection = Rejection::from(&err);
        assert_eq!(rejection.status(), 503);
        assert!(is_unavailable(&introspector.check("opaque-1").await));
        assert_eq!(introspector.calls(), 2, "{introspector:?}");
    }
}

#[tokio::test]
async fn the_token_and_the_secret_appear_in_no_debug_output_error_or_log() {
    let (logs, _guard) = capture();
    let iam = IntrospectionEndpoint::start().await;
    let token = "SECRET-TOKEN-2YotnFZFEjr1zCsicMWpAA";
    iam.answer(token, active("u-1", json!({})));
    let introspector = introspector(&iam);
    let caller = introspector.check(token).await.unwrap();
    iam.set_down(true);
    let down = introspector.check("SECRET-TOKEN-other").await.unwrap_err();
    iam.set_down(false);
    let wrong = Introspector::builder(&iam.url(), &iam.issuer())
        .client_secret_basic(iam.client_id(), "SECRET-WRONG")
        .build()
        .unwrap();
    let refused = wrong.check("SECRET-TOKEN-third").await.unwrap_err();

    let texts = [
        format!("{introspector:?}"),
        format!("{wrong:?}"),
        format!("{caller:?}"),
        format!("{down:?} {down}"),
        format!("{refused:?} {refused}"),
        format!("{:?}", Rejection::from(&down)),
        format!("{:?}", Rejection::from(&IntrospectionError::Inactive)),
        logs.all_text(),
    ];
    for text in &texts {
        assert!(!text.contains("SECRET"), "leaked: {text}");
        assert!(!text.contains(&iam.client_secret()), "leaked: {text}");
    }
    // The failures were logged, at WARN, with the endpoint and the reason.
    let warnings: Vec<_> = logs
        .events()
        .into_iter()
        .filter(|e| e.target == "iam_guard::introspection")
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    for warning in &warnings {
        assert_eq!(warning.fields["endpoint"], iam.url(), "{warning:?}");
        assert!(warning.fields.contains_key("error"), "{warning:?}");
    }
    assert!(
        warnings[1].fields["message"].contains("client credentials"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn introspections_are_counted_by_result() {
    let (counted, _metrics) = counters();
    let iam = IntrospectionEndpoint::start().await;
    iam.answer("opaque-1", active("u-1", json!({})));
    iam.answer(
        "other-issuer",
        active("u-1", json!({"iss": "https://evil"})),
    );
    let introspector = introspector(&iam);
    introspector.check("opaque-1").await.unwrap();
    introspector.check("opaque-1").await.unwrap();
    let _ = introspector.check("never-issued").await;
    let _ = introspector.check("other-issuer").await;
    iam.set_down(true);
    let _ = introspector.check("down").await;
    let key = |result: &str| format!("{INTROSPECTIONS}{{result={result}}}");
    assert_eq!(
        counted.take_named(INTROSPECTIONS),
        [
            (key("active"), 1),
            (key("error"), 1),
            (key("hit"), 1),
            (key("inactive"), 1),
            (key("invalid"), 1),
        ]
        .into_iter()
        .collect()
    );
}

// ---------------------------------------------------------------------
// Against a real OpenID Provider.
// ---------------------------------------------------------------------

/// The provider's resource server whose access tokens are opaque
/// (`OPAQUE_RESOURCES` in `tests/oidc/provider.mjs`).
const OPAQUE: &str = "urn:iam-guard:opaque";
const OPAQUE_SCOPE: &str = "opaque:read";

impl Provider {
    /// An opaque client-credentials access token for [`OPAQUE`].
    async fn opaque_token(&self) -> String {
        let json = self.token_response(OPAQUE, OPAQUE_SCOPE).await;
        assert_eq!(json["token_type"], "Bearer", "{json}");
        let token = json["access_token"].as_str().expect("an access_token");
        // A handle, not a JWT: only introspection can tell what it means.
        assert!(!token.contains('.'), "not opaque: {token}");
        token.to_owned()
    }

    /// The endpoint `name` (`introspection_endpoint`, …) of the provider's
    /// discovery document.
    async fn endpoint(&self, name: &str) -> String {
        let body = self
            .http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await
            .expect("discovery")
            .bytes()
            .await
            .expect("a discovery body");
        let doc: Value = serde_json::from_slice(&body).expect("discovery is JSON");
        doc[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {doc}"))
            .to_owned()
    }

    /// An introspector for this provider, as the resource server would
    /// build it: the interop client's credentials, its audience, the user
    /// from `client_id` (a client-credentials token has no `sub`).
    async fn introspector(&self, max_ttl: Duration) -> Introspector {
        Introspector::builder(&self.endpoint("introspection_endpoint").await, &self.issuer)
            .client_secret_basic(CLIENT_ID, CLIENT_SECRET)
            .audience([OPAQUE])
            .claims(ClaimMapping::default().user_id("client_id"))
            .max_ttl(max_ttl)
            .build()
            .expect("the provider's endpoint is an http URL")
    }

    /// Revokes `token` at the provider's RFC 7009 endpoint.
    async fn revoke(&self, token: &str) {
        use base64::Engine as _;
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        let res = self
            .http
            .post(self.endpoint("revocation_endpoint").await)
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "token={}&token_type_hint=access_token",
                form_encode(token)
            ))
            .send()
            .await
            .expect("POST revocation");
        assert!(
            res.status().is_success(),
            "revocation answered {}",
            res.status()
        );
    }
}

#[tokio::test]
async fn the_providers_opaque_token_is_active_then_revoked_then_inactive() {
    let provider = Provider::start();
    let token = provider.opaque_token().await;
    let introspector = provider.introspector(Duration::from_millis(500)).await;

    let caller = introspector
        .check(&token)
        .await
        .unwrap_or_else(|e| panic!("introspection failed: {e}\n{}", provider.stderr()));
    assert_eq!(caller.user_id(), CLIENT_ID);
    assert_eq!(caller.issuer(), provider.issuer);
    // The resource server's extra claims, through the introspection answer.
    assert_eq!(caller.tenant_id(), Some("school-1"));
    assert!(caller.has_role("teacher"));
    assert!(caller.has_oauth_scope(OPAQUE_SCOPE));
    assert_eq!(caller.claim::<String>("aud").unwrap(), OPAQUE);
    assert_eq!(caller.claim::<String>("token_type").unwrap(), "Bearer");
    assert!(caller.claim::<u64>("exp").unwrap() > now() as u64);

    // A cache hit asks nothing.
    introspector.check(&token).await.unwrap();
    assert_eq!(introspector.calls(), 1);

    // Revoked at the provider: noticed once max_ttl is over.
    provider.revoke(&token).await;
    let verdict = eventually("the revocation to be noticed", || async {
        introspector.check(&token).await.err()
    })
    .await;
    assert_eq!(verdict, IntrospectionError::Inactive);
    assert!(introspector.calls() >= 2);

    // A handle the provider never issued is inactive too.
    assert_eq!(
        introspector
            .check("never-issued-by-the-provider")
            .await
            .unwrap_err(),
        IntrospectionError::Inactive
    );
}

#[tokio::test]
async fn the_provider_refuses_an_introspector_with_the_wrong_credentials() {
    let provider = Provider::start();
    let token = provider.opaque_token().await;
    let endpoint = provider.endpoint("introspection_endpoint").await;
    let wrong = Introspector::builder(&endpoint, &provider.issuer)
        .client_secret_basic(CLIENT_ID, "not-the-secret")
        .claims(ClaimMapping::default().user_id("client_id"))
        .build()
        .unwrap();
    assert_eq!(
        wrong.check(&token).await.unwrap_err(),
        IntrospectionError::Unavailable(FetchError::Status(401))
    );
    // The provider's own audience policy: the same token, introspected by
    // a resource server expecting another audience, is refused.
    let elsewhere = Introspector::builder(&endpoint, &provider.issuer)
        .client_secret_basic(CLIENT_ID, CLIENT_SECRET)
        .audience(["urn:iam-guard:rs256"])
        .claims(ClaimMapping::default().user_id("client_id"))
        .build()
        .unwrap();
    assert_eq!(
        elsewhere.check(&token).await.unwrap_err(),
        IntrospectionError::Invalid("the token is not for this audience")
    );
}

#[tokio::test]
async fn a_provider_that_is_gone_is_unavailable_with_nothing_cached() {
    let provider = Provider::start();
    let token = provider.opaque_token().await;
    let cached = provider.opaque_token().await;
    let introspector = provider.introspector(Duration::from_secs(60)).await;
    introspector.check(&cached).await.expect("active");
    drop(provider);

    let outcome = introspector.check(&token).await;
    assert!(is_unavailable(&outcome), "{outcome:?}");
    assert!(matches!(
        Rejection::from(&outcome.unwrap_err()).code(),
        ErrorCode::IamUnavailable
    ));
    // Not remembered: asked again.
    assert!(is_unavailable(&introspector.check(&token).await));
    assert_eq!(introspector.calls(), 3);
    // What was cached before the outage still answers, within its bound.
    assert_eq!(
        introspector.check(&cached).await.unwrap().user_id(),
        CLIENT_ID
    );
    assert_eq!(introspector.calls(), 3);
}

/// The provider's tokens through the guard itself: its JWT verified
/// locally and its opaque token introspected by one `JwtAuthGuardLayer`,
/// answering with the statuses a client sees.
#[tokio::test]
async fn through_the_guard_the_providers_opaque_token_is_200_then_401_once_revoked_and_503_when_it_is_gone(
) {
    use axum::{body::Body, routing::get, Router};
    use http::{Request, StatusCode};
    use iam_guard::{JwtAuthGuardLayer, Principal};
    use tower::ServiceExt;

    let provider = Provider::start();
    let opaque = provider.opaque_token().await;
    let jwt = provider
        .token_response("urn:iam-guard:rs256", "rs256:read")
        .await["access_token"]
        .as_str()
        .expect("an access_token")
        .to_owned();
    let introspector = provider.introspector(Duration::from_millis(500)).await;
    let auth = JwtAuthGuardLayer::issuer(&provider.issuer)
        .expect("the provider's issuer URL")
        .audience(["urn:iam-guard:rs256"])
        .claims(ClaimMapping::default().user_id("client_id"))
        .introspection(introspector.clone());
    let router = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { p.user_id().to_owned() }),
        )
        .layer(auth);
    let status = |token: String| {
        let router = router.clone();
        async move {
            let req = Request::builder()
                .uri("/me")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let res = router.oneshot(req).await.unwrap();
            let status = res.status();
            let body = http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(
        status(opaque.clone()).await,
        (StatusCode::OK, CLIENT_ID.to_owned())
    );
    assert_eq!(status(opaque.clone()).await.0, StatusCode::OK);
    assert_eq!(
        introspector.calls(),
        1,
        "the second request was a cache hit"
    );
    assert_eq!(
        status(jwt.clone()).await,
        (StatusCode::OK, CLIENT_ID.to_owned())
    );
    assert_eq!(introspector.calls(), 1, "a JWT is never introspected");

    provider.revoke(&opaque).await;
    let refused = eventually("the revocation to reach the guard", || {
        let status = status(opaque.clone());
        async move {
            let (code, body) = status.await;
            (code == StatusCode::UNAUTHORIZED).then_some(body)
        }
    })
    .await;
    assert!(refused.contains("the token is not active"), "{refused}");

    // Gone, with a token it never saw: 503, never a guess.
    let unseen = provider.opaque_token().await;
    drop(provider);
    let (code, body) = status(unseen).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("IAM_UNAVAILABLE"), "{body}");
}
