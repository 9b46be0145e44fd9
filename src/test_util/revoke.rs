//! The development IAM's revocation endpoints: `POST /revoke` and
//! `POST /invalidate`.
//!
//! A real IAM revokes tokens and invalidates cached permissions when a
//! user logs out, is locked or changes roles; these endpoints let `curl`
//! do the same against a locally running test IAM. Where they send what
//! they are asked is set on the [`TestIam`]:
//!
//! - [`TestIam::publish_to`] (feature `redis`): through a
//!   [`RedisReplicas`](crate::replicas::RedisReplicas), so every replica
//!   connected to the same Redis enforces it;
//! - [`TestIam::revoke_into`]: into one process's
//!   [`Revocations`], with no Redis.
//!
//! With `publish_to`, the IAM also invalidates on its own what it changes:
//! a demo user's cached permissions after `PUT /users/{name}`, every
//! cached permission set after a change through the catalogue endpoints.
//!
//! | request | body | answer |
//! |---|---|---|
//! | `POST /revoke` | `{"user": u}`, optionally `"tenant": t` and `"before": s` | every token of `u` issued before `s` (default: the second after now), in `t` or every tenant |
//! | `POST /revoke` | `{"jti": j}`, optionally `"exp": s` | the token whose `jti` is `j` |
//! | `POST /revoke` | `{"user": u, "version": n}` | every token of `u` whose version claim is below `n` |
//! | `POST /invalidate` | `{"user": u}`, optionally `"tenant": t` | the cached permissions of `u` (in `t`) under this IAM's issuer, on every replica |
//! | `POST /invalidate` | `{"all": true}` | every cached permission set, on every replica |
//!
//! A success is 200 with what was applied: the [`Revocation`] in its wire
//! form (`{"type": "revoke_user", "user": "u-teacher", "before":
//! 1767225601}`), or the invalidation (`{"type": "invalidate", "issuer":
//! …, "tenant": …, "user": …}`, `{"type": "invalidate_all"}`). A body that
//! is not one of these (not JSON, a value of the wrong type, an unknown
//! field, fields that do not go together) is 400 `{"error":
//! "invalid_request", "error_description": …}` and nothing is applied;
//! 503 `{"error": "temporarily_unavailable", "error_description": …}`
//! when there is nowhere to send it or Redis fails.

use std::sync::{Arc, Mutex, PoisonError};

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{loopback::Shared, TestIam};
use crate::revocation::{Revocation, Revocations};

/// Where the revocation endpoints send what they are asked.
#[derive(Default)]
pub(super) struct RevokeState {
    target: Mutex<Option<Target>>,
}

#[derive(Clone)]
enum Target {
    /// One process, no Redis: revocations are applied here; there is no
    /// cache to invalidate.
    Local(Revocations),
    /// Every replica on one Redis.
    #[cfg(feature = "redis")]
    Replicas(crate::replicas::RedisReplicas),
}

/// `POST /revoke` and `POST /invalidate`, merged into the development
/// endpoints.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/revoke", post(revoke))
        .route("/invalidate", post(invalidate))
}

impl TestIam {
    /// Makes `POST /revoke` and `POST /invalidate` publish through
    /// `replicas`: every replica connected to the same Redis enforces the
    /// revocation and drops the invalidated permissions, as when a real
    /// IAM writes to Redis. `PUT /users/{name}` then invalidates that
    /// user's cached permissions, and a change through the catalogue
    /// endpoints every cached permission set, on every replica. Replaces
    /// any earlier [`revoke_into`](Self::revoke_into) or `publish_to`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use iam_guard::{replicas::RedisReplicas, test_util::TestIam};
    ///
    /// let iam = TestIam::start().await;
    /// iam.publish_to(RedisReplicas::builder("redis://127.0.0.1:6379/").connect().await?);
    /// // curl -X POST "$ISSUER/revoke" -d '{"user": "user-1"}'
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn publish_to(&self, replicas: crate::replicas::RedisReplicas) {
        self.shared.dev.revoke.set(Target::Replicas(replicas));
    }

    /// Makes `POST /revoke` apply revocations to `revocations`: one process
    /// without Redis, whose guard was given the same view
    /// ([`JwtAuthGuardLayer::revocations`](crate::JwtAuthGuardLayer::revocations)).
    /// `POST /invalidate` then answers 503 (there are no replicas to
    /// reach), and `PUT /users/{name}` and the catalogue endpoints publish
    /// no invalidation.
    /// Replaces any earlier `revoke_into` or `publish_to`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use iam_guard::{revocation::Revocations, test_util::TestIam, JwtAuthGuardLayer};
    ///
    /// let iam = TestIam::start().await;
    /// let revocations = Revocations::new();
    /// iam.revoke_into(revocations.clone());
    /// let auth = JwtAuthGuardLayer::new(iam.verifier()).revocations(revocations);
    /// # let _ = auth;
    /// # }
    /// ```
    pub fn revoke_into(&self, revocations: Revocations) {
        self.shared.dev.revoke.set(Target::Local(revocations));
    }
}

impl RevokeState {
    fn set(&self, target: Target) {
        *self.target.lock().unwrap_or_else(PoisonError::into_inner) = Some(target);
    }

    fn target(&self) -> Option<Target> {
        self.target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// After a demo user's roles changed (`PUT /users/{name}`): with
    /// [`TestIam::publish_to`], invalidates the cached permissions of each
    /// `(user, tenant)` under `issuer` on every replica. `Ok(false)` when
    /// there are no replicas to reach (nothing set, or
    /// [`TestIam::revoke_into`]: no cache is shared then).
    pub(super) async fn invalidate_users(
        &self,
        issuer: &str,
        subjects: &[(String, Option<String>)],
    ) -> Result<bool, String> {
        match self.target() {
            None | Some(Target::Local(_)) => {
                let _ = (issuer, subjects);
                Ok(false)
            }
            #[cfg(feature = "redis")]
            Some(Target::Replicas(replicas)) => {
                for (user, tenant) in subjects {
                    replicas
                        .invalidate(issuer, user, tenant.as_deref())
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(true)
            }
        }
    }

    /// After a catalogue change: with [`TestIam::publish_to`], invalidates
    /// every cached permission set on every replica. `Ok(false)` when
    /// there are no replicas to reach.
    pub(super) async fn invalidate_all(&self) -> Result<bool, String> {
        match self.target() {
            None | Some(Target::Local(_)) => Ok(false),
            #[cfg(feature = "redis")]
            Some(Target::Replicas(replicas)) => replicas
                .invalidate_all()
                .await
                .map(|()| true)
                .map_err(|e| e.to_string()),
        }
    }
}

/// The body of `POST /revoke`: which fields are set picks the revocation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    user: Option<String>,
    tenant: Option<String>,
    before: Option<u64>,
    version: Option<u64>,
    jti: Option<String>,
    exp: Option<u64>,
}

impl RevokeRequest {
    fn revocation(self, now: u64) -> Result<Revocation, String> {
        match self {
            Self {
                jti: Some(jti),
                user: None,
                tenant: None,
                before: None,
                version: None,
                exp,
            } => Ok(Revocation::Token {
                jti: non_empty("jti", jti)?,
                exp,
            }),
            Self { jti: Some(_), .. } => {
                Err("a jti revocation takes only \"jti\" and \"exp\"".into())
            }
            Self { exp: Some(_), .. } => Err("\"exp\" goes with \"jti\" only".into()),
            Self {
                user: Some(user),
                version: Some(version),
                tenant: None,
                before: None,
                ..
            } => Ok(Revocation::TokenVersion {
                user: non_empty("user", user)?,
                version,
            }),
            Self {
                version: Some(_), ..
            } => Err(
                "a token version takes only \"user\" and \"version\", no \"tenant\" or \"before\""
                    .into(),
            ),
            Self {
                user: Some(user),
                tenant,
                before,
                ..
            } => Ok(Revocation::User {
                user: non_empty("user", user)?,
                tenant: tenant.map(|t| non_empty("tenant", t)).transpose()?,
                // `before` is exclusive: the tokens issued this very
                // second are covered too.
                before: before.unwrap_or(now + 1),
            }),
            Self { .. } => Err("send {\"user\": ...} or {\"jti\": ...}".into()),
        }
    }
}

/// The body of `POST /invalidate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidateRequest {
    user: Option<String>,
    tenant: Option<String>,
    all: Option<bool>,
}

/// What `POST /invalidate` was asked to drop.
#[derive(Debug)]
enum Invalidation {
    One {
        user: String,
        tenant: Option<String>,
    },
    All,
}

impl InvalidateRequest {
    fn invalidation(self) -> Result<Invalidation, String> {
        match self {
            Self {
                all: Some(true),
                user: None,
                tenant: None,
            } => Ok(Invalidation::All),
            Self {
                all: Some(true), ..
            } => Err("\"all\" takes no \"user\" or \"tenant\"".into()),
            Self {
                all: Some(false), ..
            } => Err("\"all\" must be true when given".into()),
            Self {
                user: Some(user),
                tenant,
                all: None,
            } => Ok(Invalidation::One {
                user: non_empty("user", user)?,
                tenant: tenant.map(|t| non_empty("tenant", t)).transpose()?,
            }),
            Self { .. } => Err("send {\"user\": ...} or {\"all\": true}".into()),
        }
    }
}

impl Invalidation {
    /// The answer: the invalidation as published, without the version.
    fn answer<'a>(&'a self, issuer: &'a str) -> InvalidationAnswer<'a> {
        match self {
            Self::One { user, tenant } => InvalidationAnswer {
                kind: "invalidate",
                issuer: Some(issuer),
                tenant: tenant.as_deref(),
                user: Some(user),
            },
            Self::All => InvalidationAnswer {
                kind: "invalidate_all",
                issuer: None,
                tenant: None,
                user: None,
            },
        }
    }
}

/// The body of a `POST /invalidate` success, fields in the order of the
/// published message.
#[derive(Debug, Serialize)]
struct InvalidationAnswer<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

fn non_empty(field: &str, value: String) -> Result<String, String> {
    match value.trim().is_empty() {
        true => Err(format!("\"{field}\" must not be empty")),
        false => Ok(value),
    }
}

/// Reads a JSON object body into `T`, or says why it is refused.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => serde_json::from_slice(body).map_err(|e| e.to_string()),
        Ok(_) => Err("the body must be a JSON object".into()),
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}

fn bad_request(why: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "error_description": why})),
    )
        .into_response()
}

fn unavailable(why: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "temporarily_unavailable", "error_description": why})),
    )
        .into_response()
}

/// `POST /revoke`: see the [module docs](self).
async fn revoke(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let now = crate::jwt::verify::unix_now();
    let revocation = match parse::<RevokeRequest>(&body).and_then(|r| r.revocation(now)) {
        Ok(revocation) => revocation,
        Err(why) => return bad_request(why),
    };
    match shared.dev.revoke.target() {
        None => {
            return unavailable(
                "no revocation target: see TestIam::publish_to and TestIam::revoke_into".into(),
            )
        }
        Some(Target::Local(revocations)) => revocations.apply(&revocation),
        #[cfg(feature = "redis")]
        Some(Target::Replicas(replicas)) => {
            if let Err(e) = replicas.revoke(&revocation).await {
                return unavailable(e.to_string());
            }
        }
    }
    Json(revocation).into_response()
}

/// `POST /invalidate`: see the [module docs](self).
async fn invalidate(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let invalidation = match parse::<InvalidateRequest>(&body).and_then(|r| r.invalidation()) {
        Ok(invalidation) => invalidation,
        Err(why) => return bad_request(why),
    };
    let sent: Result<(), String> = match shared.dev.revoke.target() {
        None | Some(Target::Local(_)) => {
            Err("no replicas configured: invalidations need TestIam::publish_to (Redis)".into())
        }
        #[cfg(feature = "redis")]
        Some(Target::Replicas(replicas)) => match &invalidation {
            Invalidation::One { user, tenant } => {
                replicas
                    .invalidate(&shared.issuer, user, tenant.as_deref())
                    .await
            }
            Invalidation::All => replicas.invalidate_all().await,
        }
        .map_err(|e| e.to_string()),
    };
    match sent {
        Ok(()) => Json(invalidation.answer(&shared.issuer)).into_response(),
        Err(why) => unavailable(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocation(body: &str) -> Result<Revocation, String> {
        parse::<RevokeRequest>(body.as_bytes()).and_then(|r| r.revocation(1_000))
    }

    fn invalidation(body: &str) -> Result<Invalidation, String> {
        parse::<InvalidateRequest>(body.as_bytes()).and_then(InvalidateRequest::invalidation)
    }

    #[test]
    fn each_shape_of_revoke_body_picks_its_revocation() {
        let user = |user: &str, tenant: Option<&str>, before| Revocation::User {
            user: user.into(),
            tenant: tenant.map(Into::into),
            before,
        };
        assert_eq!(revocation(r#"{"user":"u"}"#), Ok(user("u", None, 1_001)));
        assert_eq!(
            revocation(r#"{"user":"u","tenant":"t","before":5}"#),
            Ok(user("u", Some("t"), 5))
        );
        assert_eq!(
            revocation(r#"{"user":"u","tenant":null}"#),
            Ok(user("u", None, 1_001))
        );
        assert_eq!(
            revocation(r#"{"jti":"j","exp":7}"#),
            Ok(Revocation::Token {
                jti: "j".into(),
                exp: Some(7)
            })
        );
        assert_eq!(
            revocation(r#"{"user":"u","version":3}"#),
            Ok(Revocation::TokenVersion {
                user: "u".into(),
                version: 3
            })
        );
    }

    #[test]
    fn a_revoke_body_that_is_not_one_shape_is_refused_with_a_reason() {
        for (body, reason) in [
            ("", "not JSON"),
            ("[]", "JSON object"),
            ("{}", "send"),
            (r#"{"tenant":"t"}"#, "send"),
            (r#"{"user":7}"#, "invalid type"),
            (r#"{"user":"u","before":-1}"#, "invalid value"),
            (r#"{"user":"u","before":"soon"}"#, "invalid type"),
            (r#"{"user":"u","role":"x"}"#, "unknown field"),
            (r#"{"user":""}"#, "must not be empty"),
            (r#"{"user":"u","tenant":" "}"#, "must not be empty"),
            (r#"{"jti":""}"#, "must not be empty"),
            (r#"{"jti":"j","user":"u"}"#, "only \"jti\""),
            (r#"{"user":"u","exp":5}"#, "\"exp\" goes with"),
            (r#"{"user":"u","version":1,"before":5}"#, "token version"),
            (r#"{"version":1}"#, "token version"),
        ] {
            let error = revocation(body).expect_err(body);
            assert!(error.contains(reason), "{body}: {error}");
        }
    }

    #[test]
    fn invalidate_takes_a_user_or_all() {
        assert!(matches!(
            invalidation(r#"{"user":"u","tenant":"t"}"#),
            Ok(Invalidation::One { user, tenant: Some(t) }) if user == "u" && t == "t"
        ));
        assert!(matches!(
            invalidation(r#"{"all":true}"#),
            Ok(Invalidation::All)
        ));
        for (body, reason) in [
            ("{}", "send"),
            ("null", "JSON object"),
            (r#"{"all":false}"#, "must be true"),
            (r#"{"all":"yes"}"#, "invalid type"),
            (r#"{"all":true,"user":"u"}"#, "takes no"),
            (r#"{"user":"u","jti":"j"}"#, "unknown field"),
            (r#"{"tenant":"t"}"#, "send"),
            (r#"{"user":""}"#, "must not be empty"),
        ] {
            let error = invalidation(body).expect_err(body);
            assert!(error.contains(reason), "{body}: {error}");
        }
    }
}
