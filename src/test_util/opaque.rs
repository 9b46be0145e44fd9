//! Opaque access tokens at the development IAM: `POST /token` with
//! `"format": "opaque"` issues a random token instead of a JWT, and
//! `POST /introspect` answers RFC 7662 introspection requests for the
//! tokens it issued, to the one client it knows
//! ([`DEV_CLIENT_ID`] / [`DEV_CLIENT_SECRET`], by HTTP Basic or in the
//! form).

use std::{collections::HashMap, sync::Mutex};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Form, Json, Router,
};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::{loopback::Shared, TestIam};
use crate::revocation::unix_now;

/// The client the development IAM answers introspection requests from.
pub const DEV_CLIENT_ID: &str = "students-api";
/// Its secret. Development only, like everything the test IAM serves.
pub const DEV_CLIENT_SECRET: &str = "dev-introspection-secret";

/// The opaque tokens issued so far: token → its claims (`exp` included).
#[derive(Default)]
pub(super) struct OpaqueState {
    tokens: Mutex<HashMap<String, Value>>,
}

pub(super) fn routes() -> Router<std::sync::Arc<Shared>> {
    Router::new().route("/introspect", post(introspect))
}

impl Shared {
    /// Issues an opaque token standing for `claims` (already complete).
    pub(super) fn issue_opaque(&self, claims: Value) -> String {
        let mut raw = [0u8; 32];
        SystemRandom::new()
            .fill(&mut raw)
            .expect("the system's random generator works");
        let token = URL_SAFE_NO_PAD.encode(raw);
        self.dev
            .opaque
            .tokens
            .lock()
            .expect("lock")
            .insert(token.clone(), claims);
        token
    }
}

impl TestIam {
    /// An opaque access token for the default claims with `patch` merged
    /// over them, as `POST /token` with `"format": "opaque"` issues: the
    /// IAM's `POST /introspect` answers it.
    pub fn mint_opaque(&self, patch: Value) -> String {
        let claims = super::merge(self.default_claims(), patch);
        self.shared.issue_opaque(claims)
    }

    /// Where the IAM answers RFC 7662 introspection (`POST /introspect`,
    /// client [`DEV_CLIENT_ID`] with [`DEV_CLIENT_SECRET`]).
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.issuer())
    }

    /// Makes an opaque token inactive, as a revocation at the IAM would.
    pub fn deactivate_opaque(&self, token: &str) {
        self.shared
            .dev
            .opaque
            .tokens
            .lock()
            .expect("lock")
            .remove(token);
    }
}

#[derive(Deserialize)]
struct IntrospectionRequest {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /introspect`: `{"active": true, …claims, "token_type"}` for a
/// token this IAM issued that has not expired, `{"active": false}` for
/// anything else; 401 `invalid_client` unless the caller authenticates.
async fn introspect(
    State(shared): State<std::sync::Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<IntrospectionRequest>,
) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, secret) = match (&basic, &form.client_id, &form.client_secret) {
        (Some(pair), _, _) => pair.split_once(':').unwrap_or((pair, "")),
        (None, Some(id), Some(secret)) => (id.as_str(), secret.as_str()),
        _ => ("", ""),
    };
    let authenticated =
        id == DEV_CLIENT_ID && bool::from(secret.as_bytes().ct_eq(DEV_CLIENT_SECRET.as_bytes()));
    if !authenticated {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"introspection\"")],
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "token is required"})),
        )
            .into_response();
    };
    let claims = shared
        .dev
        .opaque
        .tokens
        .lock()
        .expect("lock")
        .get(&token)
        .cloned();
    let live = claims.filter(|c| {
        c.get("exp")
            .and_then(Value::as_u64)
            .is_some_and(|exp| exp > unix_now())
    });
    match live {
        Some(mut claims) => {
            claims["active"] = json!(true);
            claims["client_id"] = json!(DEV_CLIENT_ID);
            let bound = claims.pointer("/cnf/jkt").is_some();
            claims["token_type"] = json!(if bound { "DPoP" } else { "Bearer" });
            Json(claims).into_response()
        }
        None => Json(json!({"active": false})).into_response(),
    }
}
