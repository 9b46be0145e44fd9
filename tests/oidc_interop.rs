//! Interop with a real OpenID Provider: panva's `oidc-provider` (Node,
//! pinned in `tests/oidc/package-lock.json`) issues client-credentials
//! access tokens as RFC 9068 JWTs.
//!
//! - Three resources — RS256, ES256 and EdDSA: the guard, configured with
//!   nothing but the provider's issuer URL, must accept their tokens, reject
//!   them for the wrong audience or algorithm, and follow the provider
//!   through a key rotation.
//! - One resource per IdP preset — Keycloak, Auth0, Entra ID, Cognito, Okta
//!   and an in-house IAM: the provider puts that IdP's claims in the token
//!   (`extraTokenClaims`; see `tests/oidc/provider.mjs` for each shape), and
//!   a guard configured with `JwtAuthGuardLayer::preset` alone must accept
//!   it, map the principal (user, tenant, qualified and department-limited
//!   roles, OAuth scopes), let `OAuthScopeGuard` and `RoleGuard` pass what
//!   the token grants and refuse what it does not (never another client's
//!   or another system's roles), and refuse the token outright when the
//!   preset is configured for another client, API or tenant.
//!
//! Every token here comes from the provider's `/token` endpoint; none is
//! minted by us. The suite needs Node ≥ 20.19 and npm, and installs the
//! provider from the lockfile on first run. It fails — never skips — when
//! the provider cannot be installed or started: a skipped interop suite
//! looks exactly like a passing one.
#![cfg(all(feature = "jwks-http", feature = "axum"))]

mod common;

use axum::{routing::get, Json, Router};
use base64::Engine as _;
use common::{
    oidc::{Provider, CLIENT_ID},
    *,
};
use http::StatusCode;
use iam_guard::{
    preset::Preset, Algorithm, JwksFetcher, JwtAuthGuardLayer, OAuthScopeGuard, Principal,
    RoleGuard, TokenValidation, Verifier,
};
use serde_json::{json, Value};

/// The provider's resource servers (see `tests/oidc/provider.mjs`): each
/// has its own audience and signs with its own algorithm. `scope` is what
/// the tests ask for, and the provider grants.
#[derive(Debug, Clone, Copy)]
struct Resource {
    /// The resource indicator a token is requested for (RFC 8707).
    indicator: &'static str,
    /// The `aud` of its tokens: the indicator, except where a preset
    /// expects the IdP's own audience.
    audience: &'static str,
    scope: &'static str,
    alg: Algorithm,
    alg_name: &'static str,
}

const RS256: Resource = Resource {
    indicator: "urn:iam-guard:rs256",
    audience: "urn:iam-guard:rs256",
    scope: "rs256:read",
    alg: Algorithm::RS256,
    alg_name: "RS256",
};
const ES256: Resource = Resource {
    indicator: "urn:iam-guard:es256",
    audience: "urn:iam-guard:es256",
    scope: "es256:read",
    alg: Algorithm::ES256,
    alg_name: "ES256",
};
const EDDSA: Resource = Resource {
    indicator: "urn:iam-guard:eddsa",
    audience: "urn:iam-guard:eddsa",
    scope: "eddsa:read",
    alg: Algorithm::EdDSA,
    alg_name: "EdDSA",
};
const ALL: [Resource; 3] = [RS256, ES256, EDDSA];

impl Provider {
    /// A client-credentials access token for `resource`, straight from the
    /// provider's token endpoint.
    async fn token(&self, resource: Resource) -> String {
        let json = self
            .token_response(resource.indicator, resource.scope)
            .await;
        assert_eq!(json["token_type"], "Bearer", "{json}");
        assert_eq!(json["scope"], resource.scope, "{json}");
        let token = json["access_token"]
            .as_str()
            .expect("an access_token")
            .to_owned();
        // What the provider sends must be what the tests below assume: an
        // RFC 9068 JWT signed with the resource's algorithm.
        let header = decode_segment(&token, 0);
        assert_eq!(header["typ"], "at+jwt", "{header}");
        assert_eq!(header["alg"], resource.alg_name, "{header}");
        token
    }
}

/// The JSON of segment `i` (0: header, 1: claims) of a compact JWT.
fn decode_segment(token: &str, i: usize) -> Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let segment = token.split('.').nth(i).expect("a compact JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("JSON")
}

/// What the handler saw: the principal's user id and the token claims a
/// client-credentials caller is identified by.
async fn who(p: Principal) -> String {
    let claim = |name: &str| p.claim::<String>(name).unwrap_or_else(|_| "-".into());
    format!(
        "{}|{}|{}|{}",
        p.user_id(),
        claim("client_id"),
        claim("aud"),
        claim("scope")
    )
}

/// A guard built the way a service would against this provider: the
/// issuer URL (discovery finds the JWKS), the audiences and algorithms it
/// accepts, and the RFC 9068 profile the provider's tokens follow.
fn verifier(issuer: &str, audiences: &[Resource], algorithms: &[Algorithm]) -> Verifier {
    let jwks = JwksFetcher::discover(issuer).expect("the issuer is an http URL");
    Verifier::new(
        jwks,
        TokenValidation::new(issuer)
            .audience(audiences.iter().map(|r| r.audience))
            .algorithms(algorithms.iter().copied())
            .access_token_profile(),
    )
}

fn guarded(verifier: &Verifier) -> Router {
    Router::new()
        .route("/me", get(who))
        .layer(JwtAuthGuardLayer::new(verifier.clone()))
}

async fn assert_accepted(app: &Router, token: &str, resource: Resource) {
    let (status, body) = call(app, bearer(token)).await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", resource.alg_name);
    assert_eq!(
        body,
        format!(
            "{CLIENT_ID}|{CLIENT_ID}|{}|{}",
            resource.audience, resource.scope
        ),
        "{}",
        resource.alg_name
    );
}

async fn assert_rejected(app: &Router, token: &str, message: &str, context: &str) {
    let (status, challenge, body) = call_json(app, bearer(token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}: {body}");
    assert_eq!(body["code"], "invalid_token", "{context}: {body}");
    assert_eq!(body["message"], message, "{context}: {body}");
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.contains("invalid_token")),
        "{context}: challenge {challenge:?}"
    );
}

/// A real token for `resource` through a guard that accepts exactly that
/// resource's audience and algorithm.
async fn accepts(resource: Resource) {
    let provider = Provider::start();
    let verifier = verifier(&provider.issuer, &[resource], &[resource.alg]);
    let app = guarded(&verifier);
    let token = provider.token(resource).await;
    let claims = decode_segment(&token, 1);
    assert_eq!(claims["iss"], provider.issuer.as_str(), "{claims}");
    assert_eq!(claims["sub"], CLIENT_ID, "{claims}");
    assert_accepted(&app, &token, resource).await;
    // Again, now from the verified-token cache.
    assert_accepted(&app, &token, resource).await;
    assert_eq!(verifier.signature_checks(), 1);
}

#[tokio::test]
async fn rs256_access_token_from_the_provider_is_accepted() {
    accepts(RS256).await;
}

#[tokio::test]
async fn es256_access_token_from_the_provider_is_accepted() {
    accepts(ES256).await;
}

#[tokio::test]
async fn eddsa_access_token_from_the_provider_is_accepted() {
    accepts(EDDSA).await;
}

#[tokio::test]
async fn discovery_of_the_issuer_is_the_only_configuration() {
    let provider = Provider::start();
    let verifier = verifier(&provider.issuer, &ALL, &ALL.map(|r| r.alg));
    assert_eq!(verifier.jwks().fetch_count(), 0, "discovery is lazy");
    verifier
        .jwks()
        .warm_up()
        .await
        .unwrap_or_else(|e| panic!("discovery + JWKS fetch failed: {e}\n{}", provider.stderr()));
    assert_eq!(verifier.jwks().fetch_count(), 1);
    let mut published = provider.kids.clone();
    published.sort();
    assert_eq!(verifier.jwks().kids(), published);

    let app = guarded(&verifier);
    for resource in ALL {
        let token = provider.token(resource).await;
        assert_accepted(&app, &token, resource).await;
    }
    // Every kid was known from the warm-up: no request went to the IAM.
    assert_eq!(verifier.jwks().fetch_count(), 1);
}

#[tokio::test]
async fn a_token_for_another_resource_is_rejected() {
    let provider = Provider::start();
    let every_alg = ALL.map(|r| r.alg);
    // Only the audience is wrong: the algorithm is on the allow-list.
    let es256_only = guarded(&verifier(&provider.issuer, &[ES256], &every_alg));
    for resource in [RS256, EDDSA] {
        let token = provider.token(resource).await;
        assert_rejected(
            &es256_only,
            &token,
            "the token's audience is not accepted",
            resource.audience,
        )
        .await;
    }
    let token = provider.token(ES256).await;
    assert_accepted(&es256_only, &token, ES256).await;
}

#[tokio::test]
async fn a_token_signed_with_an_algorithm_off_the_allow_list_is_rejected() {
    let provider = Provider::start();
    // Every audience is accepted: only the algorithm is wrong.
    let rs256_only = guarded(&verifier(&provider.issuer, &ALL, &[Algorithm::RS256]));
    for resource in [ES256, EDDSA] {
        let token = provider.token(resource).await;
        assert_rejected(
            &rs256_only,
            &token,
            "the token's algorithm is not accepted",
            resource.alg_name,
        )
        .await;
    }
    let token = provider.token(RS256).await;
    assert_accepted(&rs256_only, &token, RS256).await;
}

#[tokio::test]
async fn the_guard_follows_the_providers_key_rotation() {
    let provider = Provider::start_on(0, "1");
    let verifier = verifier(&provider.issuer, &ALL, &ALL.map(|r| r.alg));
    let app = guarded(&verifier);
    let mut before = Vec::new();
    for resource in ALL {
        let token = provider.token(resource).await;
        assert_accepted(&app, &token, resource).await;
        before.push((resource, token));
    }
    let old_kids = verifier.jwks().kids();
    assert_eq!(verifier.jwks().fetch_count(), 1);

    // Same issuer URL, new key set: the provider has rotated every key.
    let provider = provider.restart_with_new_keys("2");
    let mut new_kids = provider.kids.clone();
    new_kids.sort();
    assert!(
        new_kids.iter().all(|k| !old_kids.contains(k)),
        "{new_kids:?} vs {old_kids:?}"
    );

    // The same guard instance, untouched: the first token with a new kid
    // makes it refetch the JWKS, which brings all three new keys.
    for resource in ALL {
        let token = provider.token(resource).await;
        let kid = decode_segment(&token, 0)["kid"].clone();
        assert!(
            new_kids.iter().any(|k| *k == kid),
            "{kid} not in {new_kids:?}"
        );
        assert_accepted(&app, &token, resource).await;
    }
    assert_eq!(verifier.jwks().fetch_count(), 2);
    assert_eq!(verifier.jwks().kids(), new_kids);

    // The old keys left the JWKS, and their tokens leave with them — even
    // the ones the verified-token cache still held from before.
    for (resource, token) in &before {
        assert_rejected(
            &app,
            token,
            "the token's signing key is unknown",
            resource.alg_name,
        )
        .await;
    }
    // Within the refetch cooldown, unknown kids cost the provider nothing.
    assert_eq!(verifier.jwks().fetch_count(), 2);
}

// ---------------------------------------------------------------------------
// IdP presets against the provider's per-IdP resources.
// ---------------------------------------------------------------------------

/// A preset's resource at the provider, signing with RS256 (the presets'
/// default algorithm). Indicators, audiences and granted scopes must match
/// `PRESET_RESOURCES` in `tests/oidc/provider.mjs`.
const fn preset_resource(
    indicator: &'static str,
    audience: &'static str,
    scope: &'static str,
) -> Resource {
    Resource {
        indicator,
        audience,
        scope,
        alg: Algorithm::RS256,
        alg_name: "RS256",
    }
}

/// Keycloak's audience mapper names the client, `students-api`.
const KEYCLOAK: Resource = preset_resource(
    "urn:iam-guard:keycloak",
    "students-api",
    "email profile students:read",
);
const AUTH0: Resource = preset_resource(
    "urn:iam-guard:auth0",
    "https://api.school.example",
    "read:students",
);
/// Entra's audience is the API's application (client) id.
const ENTRA: Resource = preset_resource("urn:iam-guard:entra", ENTRA_CLIENT, "Students.Read");
/// Cognito access tokens have no `aud`, but oidc-provider requires one in
/// a JWT access token: the indicator. The preset does not look at it.
const COGNITO: Resource = preset_resource(
    "urn:iam-guard:cognito",
    "urn:iam-guard:cognito",
    "students/read",
);
const OKTA: Resource = preset_resource(
    "urn:iam-guard:okta",
    "api://default",
    "students:read grades:read",
);
const IN_HOUSE: Resource = preset_resource(
    "urn:iam-guard:in-house",
    "urn:iam-guard:in-house",
    "inventory:read",
);

/// The directory and application ids the provider's Entra tokens carry.
const ENTRA_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const ENTRA_CLIENT: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

/// What the preset mapped from the token: the fields a handler relies on.
async fn describe(p: Principal) -> Json<Value> {
    Json(json!({
        "user": p.user_id(),
        "tenant": p.tenant_id(),
        "roles": p.roles().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "scopes": p.oauth_scopes().collect::<Vec<_>>(),
        "member_of_school_1": p.is_member_of("school-1"),
    }))
}

async fn ok() -> &'static str {
    "ok"
}

/// The authorization a preset's app is built for: one route per entry.
struct Authz {
    /// An OAuth scope the token grants, and one it does not.
    held_scope: &'static str,
    lacking_scope: &'static str,
    /// Role specs (`name` or `qualifier:name`) the token grants, and ones
    /// it must not.
    held_roles: &'static [&'static str],
    lacking_roles: &'static [&'static str],
}

/// `/me`, and one guarded route per scope and role of `authz`, behind a
/// guard configured with `preset` and nothing else.
fn preset_app(preset: Preset, authz: &Authz) -> Router {
    let mut app = Router::new()
        .route("/me", get(describe))
        .route(
            "/scope/held",
            get(ok).route_layer(OAuthScopeGuard::all_of([authz.held_scope])),
        )
        .route(
            "/scope/lacking",
            get(ok).route_layer(OAuthScopeGuard::all_of([authz.lacking_scope])),
        );
    for (i, role) in authz.held_roles.iter().enumerate() {
        app = app.route(
            &format!("/role/held/{i}"),
            get(ok).route_layer(RoleGuard::any_of([*role])),
        );
    }
    for (i, role) in authz.lacking_roles.iter().enumerate() {
        app = app.route(
            &format!("/role/lacking/{i}"),
            get(ok).route_layer(RoleGuard::any_of([*role])),
        );
    }
    let auth = JwtAuthGuardLayer::preset(preset).expect("the provider's issuer is an http URL");
    app.layer(auth)
}

/// The principal the preset's guard mapped from `token`.
async fn me(app: &Router, token: &str, context: &str) -> Value {
    let (status, body) = call(app, to("GET", "/me", token, &[])).await;
    assert_eq!(status, StatusCode::OK, "{context}: {body}");
    serde_json::from_str(&body).expect("/me answers JSON")
}

/// Every route of `authz`: what the token grants passes, what it does not
/// is a 403 with the guard's code and RFC 6750 challenge.
async fn assert_authorizes(app: &Router, token: &str, authz: &Authz, context: &str) {
    let (status, body) = call(app, to("GET", "/scope/held", token, &[])).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "ok"),
        "{context}: scope {}",
        authz.held_scope
    );
    let (status, challenge, body) = call_json(app, to("GET", "/scope/lacking", token, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{context}: {body}");
    assert_eq!(
        body["code"], "INSUFFICIENT_OAUTH_SCOPE",
        "{context}: {body}"
    );
    // The challenge tells the client which scope to ask its IdP for.
    assert_eq!(
        challenge,
        Some(format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\"",
            authz.lacking_scope
        )),
        "{context}"
    );
    for (i, role) in authz.held_roles.iter().enumerate() {
        let (status, body) = call(app, to("GET", &format!("/role/held/{i}"), token, &[])).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "ok"),
            "{context}: role {role}"
        );
    }
    for (i, role) in authz.lacking_roles.iter().enumerate() {
        let refusal = call_json(app, to("GET", &format!("/role/lacking/{i}"), token, &[])).await;
        assert_forbidden(
            &refusal,
            "ROLE_REQUIRED",
            &format!("{context}: role {role}"),
        );
    }
}

/// The claims of a token the provider issued, checked for the shape the
/// test relies on before the guard sees it.
fn claims_of(provider: &Provider, token: &str, resource: Resource) -> Value {
    let claims = decode_segment(token, 1);
    assert_eq!(claims["iss"], provider.issuer.as_str(), "{claims}");
    assert_eq!(claims["client_id"], CLIENT_ID, "{claims}");
    // A client-credentials token's subject is the client.
    assert_eq!(claims["sub"], CLIENT_ID, "{claims}");
    let aud = &claims["aud"];
    assert!(
        *aud == resource.audience
            || aud
                .as_array()
                .is_some_and(|a| a.iter().any(|v| *v == resource.audience)),
        "{claims}"
    );
    claims
}

#[tokio::test]
async fn keycloak_preset_maps_realm_and_this_clients_roles_never_another_clients() {
    let provider = Provider::start();
    let token = provider.token(KEYCLOAK).await;
    let claims = claims_of(&provider, &token, KEYCLOAK);
    assert_eq!(
        claims["aud"],
        json!(["students-api", "account"]),
        "{claims}"
    );
    assert_eq!(
        claims["resource_access"]["billing-api"]["roles"],
        json!(["admin", "invoices-editor"]),
        "{claims}"
    );

    let preset = Preset::keycloak(&provider.issuer, "students-api");
    let authz = Authz {
        held_scope: "students:read",
        lacking_scope: "students:write",
        held_roles: &[
            "students-api:grades-editor",
            "realm:teacher",
            "teacher",
            "grades-editor",
        ],
        // billing-api's roles, qualified and not: the token holds them, but
        // for another client. And a realm role is not a client role.
        lacking_roles: &[
            "billing-api:admin",
            "admin",
            "invoices-editor",
            "students-api:teacher",
        ],
    };
    let app = preset_app(preset, &authz);
    assert_eq!(
        me(&app, &token, "keycloak").await,
        json!({
            "user": CLIENT_ID,
            "tenant": null,
            "roles": ["realm:offline_access", "realm:uma_authorization",
                      "realm:default-roles-school", "realm:teacher",
                      "students-api:grades-editor"],
            "scopes": ["email", "profile", "students:read"],
            // Keycloak organizations are memberships, not a home tenant.
            "member_of_school_1": true,
        })
    );
    assert_authorizes(&app, &token, &authz, "keycloak").await;

    // The same token at billing-api's guard: billing-api is not in `aud`,
    // so its roles in the token never come into play.
    let billing = preset_app(Preset::keycloak(&provider.issuer, "billing-api"), &authz);
    assert_rejected(
        &billing,
        &token,
        "the token's audience is not accepted",
        "keycloak preset for billing-api",
    )
    .await;
}

#[tokio::test]
async fn auth0_preset_maps_namespaced_roles_and_organization() {
    let provider = Provider::start();
    let token = provider.token(AUTH0).await;
    let claims = claims_of(&provider, &token, AUTH0);
    assert_eq!(
        claims["permissions"],
        json!(["read:students", "write:grades"]),
        "{claims}"
    );

    let preset = || {
        Preset::auth0(
            "school.eu.auth0.com",
            "https://api.school.example",
            "https://school.example.com",
        )
        // Auth0's issuer is fixed by the domain: the provider stands in.
        .issuer(&provider.issuer)
    };
    let authz = Authz {
        held_scope: "read:students",
        lacking_scope: "write:students",
        held_roles: &["teacher"],
        lacking_roles: &["admin"],
    };
    let app = preset_app(preset(), &authz);
    assert_eq!(
        me(&app, &token, "auth0").await,
        json!({
            "user": CLIENT_ID,
            "tenant": "org_7Hk2mP9qR4sT1uVw",
            "roles": ["teacher"],
            "scopes": ["read:students"],
            "member_of_school_1": false,
        })
    );
    assert_authorizes(&app, &token, &authz, "auth0").await;

    // Another API of the same tenant.
    let billing = Preset::auth0(
        "school.eu.auth0.com",
        "https://api.billing.example",
        "https://school.example.com",
    )
    .issuer(&provider.issuer);
    assert_rejected(
        &preset_app(billing, &authz),
        &token,
        "the token's audience is not accepted",
        "auth0 preset for another API",
    )
    .await;
}

#[tokio::test]
async fn entra_preset_maps_oid_tid_scp_and_app_roles_of_this_tenant_only() {
    let provider = Provider::start();
    let token = provider.token(ENTRA).await;
    let claims = claims_of(&provider, &token, ENTRA);
    // As in Entra's tokens: a space-delimited `scp`, and no `scope` to fall
    // back on, so the scopes below come from `scp`.
    assert_eq!(claims["scp"], "Students.Read", "{claims}");
    assert!(claims.get("scope").is_none(), "{claims}");

    // Entra's issuer is fixed by the tenant: the provider stands in.
    let preset =
        |tenant: &str, client: &str| Preset::entra(tenant, client).issuer(&provider.issuer);
    let authz = Authz {
        held_scope: "Students.Read",
        lacking_scope: "Students.Write",
        held_roles: &["Grades.Admin"],
        lacking_roles: &["Grades.Reader"],
    };
    let app = preset_app(preset(ENTRA_TENANT, ENTRA_CLIENT), &authz);
    assert_eq!(
        me(&app, &token, "entra").await,
        json!({
            "user": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
            "tenant": ENTRA_TENANT,
            "roles": ["Grades.Admin"],
            "scopes": ["Students.Read"],
            "member_of_school_1": false,
        })
    );
    assert_authorizes(&app, &token, &authz, "entra").await;

    // Another directory: with the issuer overridden, `tid` is what holds
    // the tenant, and it is checked.
    let other_tenant = preset("00000000-0000-0000-0000-000000000001", ENTRA_CLIENT);
    assert_rejected(
        &preset_app(other_tenant, &authz),
        &token,
        "the token's `tid` claim is not accepted",
        "entra preset for another tenant",
    )
    .await;
    let other_api = preset(ENTRA_TENANT, "00000003-0000-0000-c000-000000000000");
    assert_rejected(
        &preset_app(other_api, &authz),
        &token,
        "the token's audience is not accepted",
        "entra preset for another API",
    )
    .await;
}

#[tokio::test]
async fn cognito_preset_checks_the_app_client_and_maps_groups() {
    let provider = Provider::start();
    let token = provider.token(COGNITO).await;
    let claims = claims_of(&provider, &token, COGNITO);
    assert_eq!(claims["token_use"], "access", "{claims}");

    // Cognito's issuer is fixed by region and pool: the provider stands in.
    let preset = |clients: &[&str]| {
        Preset::cognito("eu-west-1", "eu-west-1_Ab12Cd34E", clients.iter().copied())
            .issuer(&provider.issuer)
    };
    let authz = Authz {
        held_scope: "students/read",
        lacking_scope: "students/write",
        held_roles: &["teachers"],
        lacking_roles: &["admins"],
    };
    // The token's `aud` (which real Cognito access tokens lack) is not
    // configured anywhere: the app client in `client_id` is what counts.
    let app = preset_app(preset(&[CLIENT_ID]), &authz);
    assert_eq!(
        me(&app, &token, "cognito").await,
        json!({
            "user": CLIENT_ID,
            "tenant": null,
            "roles": ["teachers"],
            "scopes": ["students/read"],
            "member_of_school_1": false,
        })
    );
    assert_authorizes(&app, &token, &authz, "cognito").await;

    // A service that allows other app clients of the pool only.
    let others = preset(&["1example23456789", "2mobile3456789"]);
    assert_rejected(
        &preset_app(others, &authz),
        &token,
        "the token's `client_id` claim is not accepted",
        "cognito preset for other app clients",
    )
    .await;
}

#[tokio::test]
async fn okta_preset_reads_the_scp_array_and_groups() {
    let provider = Provider::start();
    let token = provider.token(OKTA).await;
    let claims = claims_of(&provider, &token, OKTA);
    // As in Okta's tokens: `scp` is an array, and there is no `scope`.
    assert_eq!(
        claims["scp"],
        json!(["students:read", "grades:read"]),
        "{claims}"
    );
    assert!(claims.get("scope").is_none(), "{claims}");

    let authz = Authz {
        held_scope: "grades:read",
        lacking_scope: "students:write",
        held_roles: &["Teachers", "Everyone"],
        lacking_roles: &["Admins"],
    };
    let app = preset_app(Preset::okta(&provider.issuer, "api://default"), &authz);
    assert_eq!(
        me(&app, &token, "okta").await,
        json!({
            "user": CLIENT_ID,
            "tenant": null,
            "roles": ["Everyone", "Teachers"],
            "scopes": ["grades:read", "students:read"],
            "member_of_school_1": false,
        })
    );
    assert_authorizes(&app, &token, &authz, "okta").await;

    // Another authorization server audience.
    assert_rejected(
        &preset_app(Preset::okta(&provider.issuer, "api://billing"), &authz),
        &token,
        "the token's audience is not accepted",
        "okta preset for another audience",
    )
    .await;
}

#[tokio::test]
async fn in_house_preset_honours_this_systems_roles_with_their_departments() {
    let provider = Provider::start();
    let token = provider.token(IN_HOUSE).await;
    let claims = claims_of(&provider, &token, IN_HOUSE);
    assert_eq!(
        claims["roles"][2],
        json!({"system": "monitoring", "role": "admin"}),
        "{claims}"
    );

    let authz = Authz {
        held_scope: "inventory:read",
        lacking_scope: "inventory:write",
        held_roles: &["inventory_admin", "inventory_viewer"],
        // The monitoring system's admin is not this service's admin.
        lacking_roles: &["admin"],
    };
    let app = preset_app(Preset::in_house(&provider.issuer, "inventory"), &authz);
    assert_eq!(
        me(&app, &token, "in-house").await,
        json!({
            "user": CLIENT_ID,
            "tenant": "school-1",
            "roles": ["inventory_admin@dc-1", "inventory_viewer@dc-2"],
            "scopes": ["inventory:read"],
            "member_of_school_1": true,
        })
    );
    assert_authorizes(&app, &token, &authz, "in-house").await;

    // No audience is checked unless one is configured; then it is.
    let ours = Preset::in_house(&provider.issuer, "inventory").audience([IN_HOUSE.audience]);
    me(&preset_app(ours, &authz), &token, "in-house, own audience").await;
    let other = Preset::in_house(&provider.issuer, "inventory").audience(["urn:iam-guard:other"]);
    assert_rejected(
        &preset_app(other, &authz),
        &token,
        "the token's audience is not accepted",
        "in-house preset for another audience",
    )
    .await;
}

// ---------------------------------------------------------------------------
// Several issuers: two real providers at once.
// ---------------------------------------------------------------------------

/// A token claiming `issuer`, with a kid the provider never published and
/// a signature that is not one: what a client spraying kids sends.
fn sprayed(issuer: &str, kid: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
    let claims = json!({"iss": issuer, "sub": "x", "aud": RS256.audience, "exp": 4_000_000_000u64});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

#[tokio::test]
async fn two_providers_at_once_each_token_is_checked_with_its_own_providers_keys() {
    let a = Provider::start();
    let b = Provider::start();
    // Same kid names, different keys: pooling keys by kid would check one
    // provider's tokens with the other's key.
    assert_eq!(a.kids, b.kids);
    let va = verifier(&a.issuer, &[RS256], &[Algorithm::RS256]);
    let vb = verifier(&b.issuer, &[RS256], &[Algorithm::RS256]);
    let app = Router::new()
        .route("/me", get(who))
        .layer(JwtAuthGuardLayer::new(va.clone()).trust(vb.clone()));
    let ta = a.token(RS256).await;
    let tb = b.token(RS256).await;
    assert_accepted(&app, &ta, RS256).await;
    assert_accepted(&app, &tb, RS256).await;
    assert_eq!((va.jwks().fetch_count(), vb.jwks().fetch_count()), (1, 1));
    assert_eq!((va.signature_checks(), vb.signature_checks()), (1, 1));

    // A kid-spray claiming A: one refetch at A, then its cooldown; nothing
    // at B.
    for n in 0..20 {
        assert_rejected(
            &app,
            &sprayed(&a.issuer, &format!("sprayed-{n}")),
            "the token's signing key is unknown",
            "kid spray at A",
        )
        .await;
    }
    assert_eq!((va.jwks().fetch_count(), vb.jwks().fetch_count()), (2, 1));

    // A guard that trusts only A: B's real token is refused for its
    // issuer, and asks A nothing.
    let only_a = verifier(&a.issuer, &[RS256], &[Algorithm::RS256]);
    let only_a_app = guarded(&only_a);
    assert_rejected(
        &only_a_app,
        &tb,
        "the token's issuer is not accepted",
        "B's token where only A is trusted",
    )
    .await;
    assert_eq!(only_a.jwks().fetch_count(), 0);

    // A goes down. The warm guard still serves both (A's token from its
    // cache, B's from B's keys); a cold guard answers A's tokens 503 and
    // B's as usual.
    drop(a);
    assert_accepted(&app, &ta, RS256).await;
    let tb2 = b.token(RS256).await;
    assert_accepted(&app, &tb2, RS256).await;
    let cold_a = verifier(va.validation().issuer(), &[RS256], &[Algorithm::RS256]);
    let cold_b = verifier(&b.issuer, &[RS256], &[Algorithm::RS256]);
    let cold = Router::new()
        .route("/me", get(who))
        .layer(JwtAuthGuardLayer::new(cold_a.clone()).trust(cold_b.clone()));
    let (status, _, body) = call_json(&cold, bearer(&ta)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "IAM_UNAVAILABLE");
    assert_accepted(&cold, &tb2, RS256).await;
    assert_eq!(cold_b.jwks().fetch_count(), 1);
}
