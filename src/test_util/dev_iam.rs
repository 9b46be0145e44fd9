//! The development IAM endpoints: `POST /token` and `POST /rotate`.
//!
//! They let a frontend or `curl` get tokens from a locally running test IAM
//! (as `examples/dev_iam.rs` does), which is also why the test kit must
//! never run in production: whoever reaches the port gets a valid token
//! carrying any claims they ask for.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde_json::{json, Value};

use super::loopback::Shared;
use super::{merge, TestIam, TestKey, TEST_AUDIENCE};

/// What only the development endpoints keep.
#[derive(Default)]
pub(super) struct DevState {
    /// Named demo users for `POST /token`: name → claims.
    users: Mutex<HashMap<String, Value>>,
    /// Rotations so far, numbering the kids of the keys they publish.
    rotations: AtomicUsize,
}

/// `POST /token` and `POST /rotate`, merged into the loopback IAM's router.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/token", post(token))
        .route("/rotate", post(rotate))
}

impl TestIam {
    /// Registers a named demo user for `POST /token`: `claims` are merged
    /// over the default claims when a token is minted for `name`.
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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let base = json!({
            "iss": self.issuer,
            "sub": "user-1",
            "aud": TEST_AUDIENCE,
            "iat": now,
            "exp": now + ttl,
        });
        let key = self
            .keys
            .lock()
            .expect("lock")
            .first()
            .cloned()
            .expect("a published key");
        key.sign(&merge(base, patch))
    }
}

/// Lifetime of tokens minted by `POST /token`.
const DEV_TOKEN_TTL: u64 = 3600;

/// `POST /token` with `{"user": "<name>"}` (a user registered with
/// [`TestIam::add_user`]) or `{"claims": {...}}`: an access token, shaped
/// like an OAuth token response. Development only.
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
    let token = shared.mint_for(claims, DEV_TOKEN_TTL);
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": DEV_TOKEN_TTL}))
        .into_response()
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
