//! Several issuers in one guard, and multi-tenant issuer templates, over
//! loopback IAMs: each token is checked with its own issuer's keys only,
//! an issuer that is not configured costs no fetch anywhere, and one
//! issuer's kid-spray or outage leaves the others alone.

mod common;

use std::time::Duration;

use axum::{routing::get, Router};
use common::{app, assert_invalid_token, bearer, call, call_json, to};
use http::StatusCode;
use iam_guard::{
    model::Catalogue,
    test_util::{IamMode, TestIam, TestKey, TEST_AUDIENCE},
    CatalogueSource, ClaimMapping, ClaimsSource, JwksFetcher, JwtAuthGuardLayer, Principal,
    ScopeGuard, TokenValidation, TrustedIssuer, Verifier,
};
use serde_json::json;

fn trusted(iam: &TestIam) -> TrustedIssuer {
    TrustedIssuer::new(iam.verifier())
}

/// Discovery and JWKS requests `iam` has answered.
fn hits(iam: &TestIam) -> usize {
    iam.jwks_fetches() + iam.discovery_fetches()
}

#[tokio::test]
async fn each_token_is_checked_with_its_own_issuers_keys_only() {
    // Both IAMs publish a key named `rsa-1`: a guard that pooled keys by
    // kid would check one issuer's tokens with the other's key.
    let a = TestIam::start().await;
    let b = TestIam::start().await;
    assert_eq!(a.key().kid(), b.key().kid());
    let layer = JwtAuthGuardLayer::new(trusted(&a)).trust(trusted(&b));
    let app = app(layer.clone());

    let (status, body) = call(&app, bearer(&a.mint(json!({"sub": "ann"})))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ann|-"));
    let (status, body) = call(&app, bearer(&b.mint(json!({"sub": "bob"})))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "bob|-"));
    assert_eq!((a.jwks_fetches(), b.jwks_fetches()), (1, 1));

    // A's key signing a token that claims B: checked with B's `rsa-1`.
    let forged = a.mint(json!({"iss": b.issuer()}));
    let message = assert_invalid_token(&app, &forged, "A's signature as B").await;
    assert_eq!(message, "the token's signature is invalid");

    // Each issuer has its own verified-token cache.
    let issuers: Vec<_> = layer.issuers().collect();
    assert_eq!(issuers.len(), 2);
    assert_eq!(issuers[0].issuer(), a.issuer());
    assert_eq!(issuers[1].issuer(), b.issuer());
    assert_eq!(issuers[0].verifier().cached_tokens(), 1);
    assert_eq!(issuers[1].verifier().cached_tokens(), 1);
}

#[tokio::test]
async fn an_issuer_that_is_not_configured_is_refused_without_any_fetch() {
    let a = TestIam::start().await;
    let b = TestIam::start().await;
    // A real IAM the token points at: it must never be asked.
    let rogue = TestIam::start_with(vec![TestKey::rsa("rogue-1")]).await;
    let app = app(JwtAuthGuardLayer::new(trusted(&a)).trust(trusted(&b)));

    let rogue_token = rogue.mint(json!({}));
    let with_jku = rogue.key().sign_with_header(
        &json!({"alg": "RS256", "kid": "rogue-1", "jku": rogue.jwks_uri()}),
        &rogue.default_claims(),
    );
    for (token, expected) in [
        (rogue_token.as_str(), "the token's issuer is not accepted"),
        (with_jku.as_str(), "the token's issuer is not accepted"),
        (
            &rogue.mint(json!({"iss": format!("{}/", a.issuer())})),
            "the token's issuer is not accepted",
        ),
        (
            &rogue.mint(json!({"iss": null})),
            "the token's claims are invalid: iss is missing or not valid",
        ),
        (
            &rogue.mint(json!({"iss": [a.issuer()]})),
            "the token's issuer is not accepted",
        ),
    ] {
        let message = assert_invalid_token(&app, token, "unknown issuer").await;
        assert_eq!(message, expected);
    }
    assert_eq!(
        (hits(&a), hits(&b), hits(&rogue)),
        (0, 0, 0),
        "no IAM was asked anything"
    );

    // One trusted issuer: a token claiming another with a kid never seen
    // is refused before its kid could cause a fetch.
    let single = common::app(JwtAuthGuardLayer::new(a.verifier()));
    let message = assert_invalid_token(&single, &rogue_token, "single issuer").await;
    assert_eq!(message, "the token's issuer is not accepted");
    assert_eq!((hits(&a), hits(&rogue)), (0, 0));
}

#[tokio::test]
async fn a_kid_spray_at_one_issuer_fetches_nothing_at_the_other() {
    let a = TestIam::start().await;
    let b = TestIam::start().await;
    let app = app(JwtAuthGuardLayer::new(trusted(&a)).trust(trusted(&b)));
    // Warm both.
    for iam in [&a, &b] {
        let (status, _) = call(&app, bearer(&iam.mint(json!({})))).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!((a.jwks_fetches(), b.jwks_fetches()), (1, 1));

    let key = a.key();
    for n in 0..50 {
        let kid = format!("sprayed-{n}");
        let token = key.sign_with_header(&json!({"alg": "RS256", "kid": kid}), &a.default_claims());
        let message = assert_invalid_token(&app, &token, "sprayed kid").await;
        assert_eq!(message, "the token's signing key is unknown");
    }
    // One refetch at A, then its cooldown; B was not touched.
    assert_eq!(a.jwks_fetches(), 2);
    assert_eq!(b.jwks_fetches(), 1);
    let (status, _) = call(&app, bearer(&b.mint(json!({"sub": "fresh"})))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(b.jwks_fetches(), 1);
}

#[tokio::test]
async fn one_issuer_down_leaves_the_others_tokens_alone() {
    let a = TestIam::start().await;
    let b = TestIam::start().await;
    a.stop();
    let app = app(JwtAuthGuardLayer::new(trusted(&a)).trust(trusted(&b)));

    let (status, _, body) = call_json(&app, bearer(&a.mint(json!({})))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "IAM_UNAVAILABLE");
    for n in 0..5 {
        let token = b.mint(json!({"sub": format!("user-{n}")}));
        let (status, body) = call(&app, bearer(&token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(b.jwks_fetches(), 1);

    // B failing later, after its keys are in: A recovering is unaffected
    // and B's held keys keep verifying (stale-if-error is per issuer).
    b.set_mode(IamMode::Status(500));
    a.restart().await;
    tokio::time::sleep(Duration::from_millis(60)).await; // past A's retry pause
    let (status, body) = call(&app, bearer(&a.mint(json!({"sub": "back"})))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "back|-"));
    let (status, _) = call(&app, bearer(&b.mint(json!({"sub": "still"})))).await;
    assert_eq!(status, StatusCode::OK);
}

async fn scope_of(principal: Principal) -> String {
    principal.issuer().to_owned()
}

#[tokio::test]
async fn each_issuer_has_its_own_claim_mapping_and_permission_source() {
    let school = TestIam::start().await;
    let partner = TestIam::start().await;
    // The school's IAM puts roles in `groups`, compiled against the
    // catalogue (the layer's source); the partner signs permissions into
    // its tokens (its own source).
    let layer =
        JwtAuthGuardLayer::new(trusted(&school).claims(ClaimMapping::default().roles("groups")))
            .trust(trusted(&partner).permissions(ClaimsSource::new()))
            .permissions(CatalogueSource::new(Catalogue::students_fixture()));
    let guard = ScopeGuard::read("students");
    let app = Router::new()
        .route("/sensitive", get(scope_of).route_layer(guard))
        .layer(layer);

    // The same `sub` at both issuers.
    let admin_by_groups = school.mint(json!({"sub": "u-1", "groups": ["admin"]}));
    let (status, body) = call(&app, to("GET", "/sensitive", &admin_by_groups, &[])).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, school.issuer()));
    // `roles` is not read for the school's tokens.
    let roles_claim = school.mint(json!({"sub": "u-1", "roles": ["admin"]}));
    let (status, _) = call(&app, to("GET", "/sensitive", &roles_claim, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The partner's `admin` role means nothing: its source reads the
    // permissions in the token, not the catalogue.
    let partner_role = partner.mint(json!({"sub": "u-1", "roles": ["admin"]}));
    let (status, _) = call(&app, to("GET", "/sensitive", &partner_role, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let partner_grant = partner.mint(json!({
        "sub": "u-1",
        "entities": {"students": {"scopes": {"sensitive": "READ"}}}
    }));
    let (status, body) = call(&app, to("GET", "/sensitive", &partner_grant, &[])).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, partner.issuer()));
}

#[tokio::test]
async fn the_layers_token_rules_apply_to_every_issuer() {
    let a = TestIam::start().await;
    let b = TestIam::start().await;
    let app = app(JwtAuthGuardLayer::new(trusted(&a))
        .trust(trusted(&b))
        .audience(["orders-api"]));
    for iam in [&a, &b] {
        let message =
            assert_invalid_token(&app, &iam.mint(json!({"aud": TEST_AUDIENCE})), "old aud").await;
        assert_eq!(message, "the token's audience is not accepted");
        let (status, _) = call(&app, bearer(&iam.mint(json!({"aud": "orders-api"})))).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn an_issuer_given_twice_keeps_the_later_configuration() {
    let a = TestIam::start().await;
    let layer = JwtAuthGuardLayer::new(trusted(&a)).trust(trusted(&a).audience(["later"]));
    assert_eq!(layer.issuers().len(), 1);
    let app = app(layer);
    let (status, _) = call(&app, bearer(&a.mint(json!({"aud": "later"})))).await;
    assert_eq!(status, StatusCode::OK);
    let message = assert_invalid_token(&app, &a.mint(json!({})), "earlier audience").await;
    assert_eq!(message, "the token's audience is not accepted");
}

/// A multi-tenant IAM at `iam`: issuer `<iam>/{tenantid}/v2.0`, its
/// discovery document publishing that template.
fn template_of(iam: &TestIam) -> String {
    format!("{}/{{tenantid}}/v2.0", iam.issuer())
}

fn template_fetcher(iam: &TestIam) -> JwksFetcher {
    iam.set_discovery_issuer(Some(&template_of(iam)));
    JwksFetcher::builder()
        .retry_after_failure(Duration::from_millis(50))
        .discovery_document(
            &format!("{}/.well-known/openid-configuration", iam.issuer()),
            &template_of(iam),
        )
        .expect("a valid discovery URL")
}

fn tenant_token(iam: &TestIam, iss_tenant: &str, tid: &str) -> String {
    iam.mint(json!({
        "iss": format!("{}/{iss_tenant}/v2.0", iam.issuer()),
        "tid": tid,
    }))
}

#[tokio::test]
async fn an_issuer_template_accepts_the_allowed_tenants_in_their_own_issuer() {
    let iam = TestIam::start().await;
    let validation = TokenValidation::new(template_of(&iam))
        .audience([TEST_AUDIENCE])
        .tenants(["t1", "t2"]);
    assert!(validation.is_template());
    let app = app(JwtAuthGuardLayer::new(Verifier::new(
        template_fetcher(&iam),
        validation,
    )));

    // A tenant that is not allowed, iss and tid that disagree, no tid:
    // refused before anything is fetched.
    for (token, context) in [
        (tenant_token(&iam, "t3", "t3"), "a third tenant"),
        (tenant_token(&iam, "t1", "t2"), "iss of t1, tid of t2"),
        (tenant_token(&iam, "t2", "t1"), "iss of t2, tid of t1"),
        (
            iam.mint(json!({"iss": format!("{}/t1/v2.0", iam.issuer())})),
            "no tid",
        ),
        (
            iam.mint(json!({"iss": template_of(&iam), "tid": "t1"})),
            "the template itself as iss",
        ),
    ] {
        let message = assert_invalid_token(&app, &token, context).await;
        assert_eq!(message, "the token's issuer is not accepted", "{context}");
    }
    assert_eq!(hits(&iam), 0);

    for tenant in ["t1", "t2"] {
        let (status, body) = call(&app, bearer(&tenant_token(&iam, tenant, tenant))).await;
        assert_eq!(status, StatusCode::OK, "{tenant}: {body}");
    }
    // The template's discovery document was accepted with its template.
    assert_eq!((iam.discovery_fetches(), iam.jwks_fetches()), (1, 1));
    // With the keys cached, the disagreeing token still fails on its
    // verified claims.
    let message = assert_invalid_token(&app, &tenant_token(&iam, "t1", "t2"), "cached").await;
    assert_eq!(message, "the token's issuer is not accepted");
}

#[tokio::test]
async fn an_issuer_template_takes_any_tenant_only_when_told() {
    let iam = TestIam::start().await;
    let undecided = app(JwtAuthGuardLayer::new(Verifier::new(
        template_fetcher(&iam),
        TokenValidation::new(template_of(&iam)).audience([TEST_AUDIENCE]),
    )));
    let message =
        assert_invalid_token(&undecided, &tenant_token(&iam, "t1", "t1"), "undecided").await;
    assert_eq!(message, "the token's issuer is not accepted");
    assert_eq!(hits(&iam), 0);

    let any = app(JwtAuthGuardLayer::new(Verifier::new(
        template_fetcher(&iam),
        TokenValidation::new(template_of(&iam))
            .audience([TEST_AUDIENCE])
            .any_tenant(),
    )));
    for tenant in ["t1", "someone-else", "c1a2b3c4-0000-4000-8000-000000000002"] {
        let (status, _) = call(&any, bearer(&tenant_token(&iam, tenant, tenant))).await;
        assert_eq!(status, StatusCode::OK, "{tenant}");
    }
    // A tid that would add a path to the issuer is no tenant.
    let sneaky = tenant_token(&iam, "t1/v2.0/x", "t1/v2.0/x");
    let message = assert_invalid_token(&any, &sneaky, "tid with a slash").await;
    assert_eq!(message, "the token's issuer is not accepted");
}

#[tokio::test]
async fn a_template_beside_an_exact_issuer_is_chosen_by_the_token() {
    let tenants = TestIam::start().await;
    let home = TestIam::start().await;
    let layer = JwtAuthGuardLayer::new(trusted(&home)).trust(TrustedIssuer::new(Verifier::new(
        template_fetcher(&tenants),
        TokenValidation::new(template_of(&tenants))
            .audience([TEST_AUDIENCE])
            .tenants(["t1"]),
    )));
    let app = app(layer);
    let (status, _) = call(&app, bearer(&home.mint(json!({})))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, bearer(&tenant_token(&tenants, "t1", "t1"))).await;
    assert_eq!(status, StatusCode::OK);
    let message =
        assert_invalid_token(&app, &tenant_token(&tenants, "t2", "t2"), "tenant t2").await;
    assert_eq!(message, "the token's issuer is not accepted");
    assert_eq!((home.jwks_fetches(), tenants.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn a_template_discovery_document_must_publish_the_template() {
    let iam = TestIam::start().await;
    let fetcher = template_fetcher(&iam);
    // The discovery document names a concrete tenant's issuer instead.
    iam.set_discovery_issuer(Some(&format!("{}/t1/v2.0", iam.issuer())));
    let app = app(JwtAuthGuardLayer::new(Verifier::new(
        fetcher,
        TokenValidation::new(template_of(&iam))
            .audience([TEST_AUDIENCE])
            .tenants(["t1"]),
    )));
    let (status, _, body) = call_json(&app, bearer(&tenant_token(&iam, "t1", "t1"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(iam.jwks_fetches(), 0, "no keys from a mismatched document");
}

#[test]
fn a_template_cannot_be_discovered_under_itself() {
    let err = JwtAuthGuardLayer::issuer("https://login.example.com/{tenantid}/v2.0").unwrap_err();
    assert!(err.to_string().contains("issuer template"), "{err}");
    assert!(JwksFetcher::discover("https://login.example.com/{tenantid}/v2.0").is_err());
}

#[tokio::test]
async fn the_multi_tenant_entra_preset_accepts_its_allowed_directories_only() {
    use iam_guard::preset::Preset;
    const CLIENT: &str = "0f2c8f5e-0000-4000-8000-5c4d2a1b9e10";
    let iam = TestIam::start().await;
    iam.set_discovery_issuer(Some(&template_of(&iam)));
    // The preset as a service configures it, pointed at the loopback IAM
    // standing in for login.microsoftonline.com.
    let preset = Preset::entra_multi_tenant(CLIENT)
        .issuer(&template_of(&iam))
        .discovery(&format!(
            "{}/.well-known/openid-configuration",
            iam.issuer()
        ))
        .tenants(["t1", "t2"]);
    let app = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move {
                format!(
                    "{}|{}|{}",
                    p.user_id(),
                    p.tenant_id().unwrap_or("-"),
                    p.has_role("Reader")
                )
            }),
        )
        .layer(JwtAuthGuardLayer::new(
            TrustedIssuer::preset(preset).expect("a valid preset"),
        ));
    let entra = |tenant: &str, aud: &str| {
        iam.mint(json!({
            "iss": format!("{}/{tenant}/v2.0", iam.issuer()),
            "tid": tenant,
            "aud": aud,
            "oid": format!("oid-in-{tenant}"),
            "roles": ["Reader"],
            "scp": "students.read",
        }))
    };
    for tenant in ["t1", "t2"] {
        let (status, body) = call(&app, bearer(&entra(tenant, CLIENT))).await;
        assert_eq!(status, StatusCode::OK, "{tenant}: {body}");
        assert_eq!(body, format!("oid-in-{tenant}|{tenant}|true"));
    }
    let message = assert_invalid_token(&app, &entra("t3", CLIENT), "a third directory").await;
    assert_eq!(message, "the token's issuer is not accepted");
    let message = assert_invalid_token(&app, &entra("t1", "another-api"), "another API").await;
    assert_eq!(message, "the token's audience is not accepted");
}

#[tokio::test]
async fn the_protected_resource_metadata_names_every_trusted_issuer() {
    let a = TestIam::start().await;
    let tenants = TestIam::start().await;
    let layer = JwtAuthGuardLayer::new(trusted(&a))
        .trust(TrustedIssuer::new(Verifier::new(
            template_fetcher(&tenants),
            TokenValidation::new(template_of(&tenants)).tenants(["t1", "t2"]),
        )))
        // Open to any tenant: no list of issuers exists to publish.
        .trust(TrustedIssuer::new(Verifier::new(
            template_fetcher(&a),
            TokenValidation::new(template_of(&a)).any_tenant(),
        )));
    let metadata = layer
        .protected_resource_metadata("https://api.example.com/students")
        .build()
        .expect("valid metadata");
    assert_eq!(
        metadata.authorization_servers(),
        [
            a.issuer().to_owned(),
            format!("{}/t1/v2.0", tenants.issuer()),
            format!("{}/t2/v2.0", tenants.issuer()),
        ]
    );
}
