//! The development IAM endpoints: `POST /token`, `POST /rotate` and
//! `PUT /users/{name}` (and, from the `revoke` module, `POST /revoke` and
//! `POST /invalidate`; from the `permissions` module, `GET /permissions`).
//!
//! They let a frontend or `curl` get tokens from a locally running test IAM
//! (as `examples/dev_iam.rs` does), which is also why the test kit must
//! never run in production: whoever reaches the port gets a valid token
//! carrying any claims they ask for, and may change any demo user's roles.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{post, put},
    Json, Router,
};
use serde_json::{json, Value};

use super::loopback::Shared;
use super::{merge, TestIam, TestKey, TEST_AUDIENCE};

/// What only the development endpoints keep.
#[derive(Default)]
pub(super) struct DevState {
    /// Named demo users for `POST /token` and `GET /permissions`: name →
    /// claims.
    users: Mutex<HashMap<String, Value>>,
    /// Rotations so far, numbering the kids of the keys they publish.
    rotations: AtomicUsize,
    /// Where `POST /revoke` and `POST /invalidate` send what they are
    /// asked, and `PUT /users/{name}` and the catalogue endpoints their
    /// invalidations.
    pub(super) revoke: super::revoke::RevokeState,
    /// What `GET /permissions` keeps.
    pub(super) permissions: super::permissions::PermissionsState,
    /// The opaque tokens `POST /introspect` answers for.
    pub(super) opaque: super::opaque::OpaqueState,
}

/// The subject of tokens minted without one, as [`TestIam::mint`] and
/// `POST /token` default it.
const DEFAULT_SUB: &str = "user-1";

impl DevState {
    /// The claims of the demo user whose tokens carry `sub` (`user-1` when
    /// their claims have none), with `sub` filled in; the first by name
    /// when several do.
    pub(super) fn claims_of_sub(&self, sub: &str) -> Option<Value> {
        let users = self.users.lock().expect("lock");
        let mut names: Vec<&String> = users.keys().collect();
        names.sort();
        names.into_iter().find_map(|name| {
            let claims = with_default_sub(users[name].clone());
            (claims.get("sub").and_then(Value::as_str) == Some(sub)).then_some(claims)
        })
    }
}

/// `claims` over `{"sub": "user-1"}`, as tokens are minted.
fn with_default_sub(claims: Value) -> Value {
    merge(json!({ "sub": DEFAULT_SUB }), claims)
}

/// Whose cached permissions a change of `claims` concerns: their subject
/// (as minted) and tenant (the default claim mapping's `tenantId`, a
/// string or a number).
fn cache_subject(claims: &Value) -> Option<(String, Option<String>)> {
    let claims = with_default_sub(claims.clone());
    let sub = claims.get("sub").and_then(Value::as_str)?.to_owned();
    let tenant = match claims.get("tenantId") {
        Some(Value::String(t)) => Some(t.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Some((sub, tenant))
}

/// `POST /token`, `POST /rotate`, `PUT /users/{name}`, `POST /revoke`,
/// `POST /invalidate` and `GET /permissions`, merged into the loopback
/// IAM's router.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/token", post(token))
        .route("/rotate", post(rotate))
        .route("/users/{name}", put(put_user))
        .merge(super::revoke::routes())
        .merge(super::permissions::routes())
        .merge(super::opaque::routes())
}

impl TestIam {
    /// Registers a named demo user for `POST /token` and
    /// `GET /permissions` (replacing any user of that name): `claims` are
    /// merged over the default claims when a token is minted for `name`,
    /// and their `roles` (or `role_assignments`) are what
    /// [`permissions_url`](Self::permissions_url) compiles for their `sub`.
    ///
    /// `PUT /users/{name}` does the same over HTTP, and also invalidates
    /// the user's cached permissions on every replica when
    /// [`publish_to`](Self::publish_to) is set; this method publishes
    /// nothing.
    pub fn add_user(&self, name: &str, claims: Value) {
        self.shared
            .dev
            .users
            .lock()
            .expect("lock")
            .insert(name.to_owned(), claims);
    }

    /// Rotates to a fresh key of `alg` (`RS256`, `PS256`, `ES256` or
    /// `EdDSA`): it signs from now on, and the previous keys stay
    /// published so tokens already issued keep verifying.
    ///
    /// # Panics
    ///
    /// When `alg` is not one of those.
    pub fn rotate(&self, alg: &str) -> Arc<TestKey> {
        self.shared.rotate(alg).expect("a supported algorithm")
    }
}

impl Shared {
    fn rotate(&self, alg: &str) -> Option<Arc<TestKey>> {
        let n = self.dev.rotations.fetch_add(1, Ordering::SeqCst) + 2;
        let kid = format!("{}-{n}", alg.to_ascii_lowercase());
        let key = Arc::new(match alg {
            "RS256" => TestKey::rsa(&kid),
            "PS256" => TestKey::rsa_pss(&kid),
            "ES256" => TestKey::ec_p256(&kid),
            "EdDSA" => TestKey::ed25519(&kid),
            _ => return None,
        });
        self.keys.lock().expect("lock").insert(0, key.clone());
        Some(key)
    }

    fn mint_for(&self, patch: Value, ttl: u64) -> String {
        let claims = self.claims_for(patch, ttl);
        let key = self
            .keys
            .lock()
            .expect("lock")
            .first()
            .cloned()
            .expect("a published key");
        key.sign(&claims)
    }

    /// The claims of a token lasting `ttl`: the defaults with `patch`
    /// merged over them.
    fn claims_for(&self, patch: Value, ttl: u64) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let base = json!({
            "iss": self.issuer,
            "sub": DEFAULT_SUB,
            "aud": TEST_AUDIENCE,
            "iat": now,
            "exp": now + ttl,
        });
        merge(base, patch)
    }
}

/// `PUT /users/{name}` with a JSON object: the claims of the demo user
/// `name` from now on (created if new), answered 200 with those claims; 400
/// for a body that is not a JSON object. Development only, like
/// `POST /token`.
///
/// With [`TestIam::publish_to`], the user's cached permissions are then
/// invalidated on every replica, under this IAM's issuer, for their `sub`
/// in their `tenantId` (and in the tenant of their previous claims when
/// that differs), so the next request of any replica asks
/// `GET /permissions` again. When Redis refuses, the claims stay replaced
/// and the answer is 503: replicas may serve the old permissions until
/// their TTL.
async fn put_user(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let claims = match serde_json::from_slice::<Value>(&body) {
        Ok(claims @ Value::Object(_)) => claims,
        Ok(_) => return invalid_request("the body must be a JSON object of claims"),
        Err(e) => return invalid_request(&format!("the body is not JSON: {e}")),
    };
    let previous = shared
        .dev
        .users
        .lock()
        .expect("lock")
        .insert(name.clone(), claims.clone());
    // Invalidated after the change, so a replica that asks again learns
    // the new roles.
    let mut subjects: Vec<(String, Option<String>)> = Vec::new();
    for subject in [previous.as_ref(), Some(&claims)]
        .into_iter()
        .flatten()
        .filter_map(cache_subject)
    {
        if !subjects.contains(&subject) {
            subjects.push(subject);
        }
    }
    let published = shared
        .dev
        .revoke
        .invalidate_users(&shared.issuer, &subjects)
        .await;
    if let Err(why) = published {
        tracing::warn!(
            target: "iam_guard::test_util",
            user = %name,
            "the claims were replaced, but the invalidation was not published: {why}"
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": "temporarily_unavailable",
                "error_description": format!(
                    "the claims of {name:?} were replaced, but their cached permissions could \
                     not be invalidated: {why}"
                ),
            })),
        )
            .into_response();
    }
    Json(claims).into_response()
}

fn invalid_request(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "error_description": why})),
    )
        .into_response()
}

/// Lifetime of tokens minted by `POST /token`.
const DEV_TOKEN_TTL: u64 = 3600;

/// `POST /token` with `{"user": "<name>"}` (a user registered with
/// [`TestIam::add_user`]) or `{"claims": {...}}`: an access token, shaped
/// like an OAuth token response. Development only.
///
/// With `"jkt": "<RFC 7638 thumbprint>"` the token is bound to that DPoP
/// key (`cnf.jkt`, `token_type: DPoP`); with `"x5t#S256": "<certificate
/// thumbprint>"` to that client certificate (RFC 8705). Each must be a
/// base64url SHA-256 (43 characters). With `"format": "opaque"` the token
/// is a random string the IAM's `POST /introspect` answers for, instead of
/// a JWT.
async fn token(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let claims = match (request.get("user").and_then(Value::as_str), request.get("claims")) {
        (Some(user), _) => {
            // Look up and release the lock before answering: the 404 lists
            // the known users, which locks again.
            let found = shared.dev.users.lock().expect("lock").get(user).cloned();
            match found {
                Some(claims) => claims,
                None => {
                    let mut known: Vec<String> =
                        shared.dev.users.lock().expect("lock").keys().cloned().collect();
                    known.sort();
                    return (
                        StatusCode::NOT_FOUND,
                        Json(json!({"error": "unknown_user", "known_users": known})),
                    )
                        .into_response();
                }
            }
        }
        (None, Some(claims @ Value::Object(_))) => claims.clone(),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "error_description": "send {\"user\": name} or {\"claims\": {...}}"})),
            )
                .into_response()
        }
    };
    let mut claims = claims;
    let mut token_type = "Bearer";
    for method in ["jkt", "x5t#S256"] {
        match request.get(method) {
            None => {}
            Some(Value::String(thumbprint)) if is_sha256_base64url(thumbprint) => {
                claims["cnf"][method] = json!(thumbprint);
                if method == "jkt" {
                    token_type = "DPoP";
                }
            }
            Some(_) => {
                return invalid_request(&format!(
                    "{method} must be a base64url SHA-256 thumbprint (43 characters)"
                ))
            }
        }
    }
    let token = match request.get("format").and_then(Value::as_str) {
        None | Some("jwt") => shared.mint_for(claims, DEV_TOKEN_TTL),
        Some("opaque") => shared.issue_opaque(shared.claims_for(claims, DEV_TOKEN_TTL)),
        Some(_) => return invalid_request("format must be jwt or opaque"),
    };
    Json(json!({"access_token": token, "token_type": token_type, "expires_in": DEV_TOKEN_TTL}))
        .into_response()
}

fn is_sha256_base64url(text: &str) -> bool {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    text.len() == 43 && URL_SAFE_NO_PAD.decode(text).is_ok_and(|d| d.len() == 32)
}

/// `POST /rotate` with an optional `{"alg": "ES256"}`: publish a new
/// signing key (previous keys stay published). Development only.
async fn rotate(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let alg = request
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or("RS256");
    match shared.rotate(alg) {
        Some(key) => Json(json!({"kid": key.kid(), "alg": key.alg()})).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "alg must be RS256, PS256, ES256 or EdDSA"})),
        )
            .into_response(),
    }
}
