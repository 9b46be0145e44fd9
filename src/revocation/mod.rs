//! Token revocation: a token by its `jti`, every token of a user issued
//! before an instant (logout everywhere, a password change, a disabled
//! account), and a token-version claim compared with the user's current
//! version.
//!
//! [`Revocations`] is the view a replica checks on every request, cached
//! tokens included: give it to
//! [`JwtAuthGuardLayer::revocations`](crate::JwtAuthGuardLayer::revocations)
//! and a revoked token is a 401 `invalid_token` ("the token has been
//! revoked") from the next request on. The check does no I/O: while
//! nothing new was revoked since a token was last checked, it costs two
//! atomic loads.
//!
//! In one process, revoke through the handle itself. With several
//! replicas, the `redis` feature's `RedisReplicas` keeps every replica's
//! view current from Redis and publishes revocations to all of them; the
//! semantics are the same.
//!
//! | revocation | refuses | kept until |
//! |---|---|---|
//! | [`Revocation::Token`] | the token whose `jti` it names | the token's `exp` (else the longest token lifetime from now) |
//! | [`Revocation::User`] | the user's tokens with `iat` before `before` (and tokens without `iat`), in one tenant or all | `before` plus the longest token lifetime |
//! | [`Revocation::TokenVersion`] | the user's tokens whose version claim is below `version` (a token without the claim counts as version 0) | the longest token lifetime from now |
//!
//! Entries are forgotten once no token they cover can still be valid, so
//! the view stays bounded by what was revoked within one token lifetime.
//! That bound needs tokens to have one: with revocations on, a token living
//! longer than [`max_token_lifetime`](RevocationsBuilder::max_token_lifetime)
//! (default 24 h; `exp` minus `iat`, or minus now without `iat`) is
//! refused as `invalid_token`.
//!
//! A user id is compared as the guard maps it, under every trusted issuer
//! alike: with several issuers, revoking `user-1` revokes every issuer's
//! `user-1` (more, never less). Instants are whole unix seconds, and
//! `before` is exclusive: a token issued in the second `before` names is
//! not covered, so pass the second after the last token that must go.
//!
//! ```
//! use iam_guard::revocation::Revocations;
//!
//! let revocations = Revocations::builder().token_version_claim("ver").build();
//! revocations.revoke_token("0b6f4c1e-jti", Some(1_900_000_000));
//! revocations.revoke_user("user-1", None, 1_800_000_000);
//! revocations.set_token_version("user-2", 4);
//! assert_eq!(revocations.len(), 3);
//!
//! # fn guard() -> Result<(), Box<dyn std::error::Error>> {
//! # let revocations = Revocations::new();
//! let auth = iam_guard::JwtAuthGuardLayer::issuer("https://iam.example.com")?
//!     .revocations(revocations.clone());
//! # let _ = auth; Ok(()) }
//! ```

mod state;
pub(crate) mod trust;

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, PoisonError, RwLock,
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::{
    state::{RevocationState, TokenFacts},
    trust::Trust,
};
use crate::{
    principal::{ClaimPath, Identity},
    rejection::Rejection,
};

/// The current unix second: the `before` of a revocation meant to cover
/// every token issued so far is `unix_now() + 1`.
pub fn unix_now() -> u64 {
    crate::jwt::verify::unix_now()
}

/// Default longest token lifetime a revocation covers.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// One revocation. Serialized as JSON with a `type` tag, the form the
/// `redis` feature stores and publishes:
///
/// ```json
/// {"type": "revoke_token", "jti": "0b6f4c1e", "exp": 1900000000}
/// {"type": "revoke_user", "user": "user-1", "tenant": "school-1", "before": 1800000000}
/// {"type": "token_version", "user": "user-2", "version": 4}
/// ```
///
/// `exp` and `tenant` may be left out (or `null`); times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Revocation {
    /// The token whose `jti` is `jti`.
    #[serde(rename = "revoke_token")]
    Token {
        /// The token's `jti`.
        jti: String,
        /// The token's `exp`, when known: the revocation is kept until
        /// then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exp: Option<u64>,
    },
    /// Every token of `user` (in `tenant`, or in every tenant) issued
    /// before `before`.
    #[serde(rename = "revoke_user")]
    User {
        /// The user id, as the guard maps it (`sub` by default).
        user: String,
        /// Only tokens used in this tenant; `None` for all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
        /// Tokens with `iat` before this second are revoked.
        before: u64,
    },
    /// Every token of `user` whose version claim is below `version`.
    #[serde(rename = "token_version")]
    TokenVersion {
        /// The user id.
        user: String,
        /// The user's current token version.
        version: u64,
    },
}

impl Revocation {
    /// The unix second after which this revocation covers no token that is
    /// still valid, for tokens living at most `max_lifetime`.
    pub fn kept_until(&self, now: u64, max_lifetime: Duration) -> u64 {
        let lifetime = max_lifetime.as_secs();
        match self {
            Self::Token { exp: Some(exp), .. } => *exp,
            Self::Token { exp: None, .. } | Self::TokenVersion { .. } => {
                now.saturating_add(lifetime)
            }
            Self::User { before, .. } => before.saturating_add(lifetime),
        }
    }
}

/// Builds [`Revocations`].
#[derive(Debug, Clone)]
pub struct RevocationsBuilder {
    max_token_lifetime: Duration,
    version_claim: Option<ClaimPath>,
}

impl RevocationsBuilder {
    /// The longest lifetime (`exp - iat`) a token may have while
    /// revocations are on (default 24 h). Longer-lived tokens are refused:
    /// a revocation is forgotten one lifetime after it was made, and must
    /// not be forgotten while a token it covers is still valid. Every
    /// replica must use the same value.
    pub fn max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_token_lifetime = lifetime;
        self
    }

    /// The claim holding the token's version (for example `ver`), compared
    /// with [`Revocation::TokenVersion`]. Off by default.
    pub fn token_version_claim(mut self, claim: impl Into<ClaimPath>) -> Self {
        self.version_claim = Some(claim.into());
        self
    }

    /// Builds an empty view, trusted from the start (one process).
    pub fn build(self) -> Revocations {
        self.build_with(Trust::always())
    }

    pub(crate) fn build_with(self, trust: Trust) -> Revocations {
        Revocations {
            inner: Arc::new(Inner {
                state: RwLock::new(RevocationState::default()),
                generation: AtomicU64::new(1),
                trust: Arc::new(trust),
                max_token_lifetime: self.max_token_lifetime,
                version_claim: self.version_claim,
            }),
        }
    }
}

/// A replica's view of what is revoked. Cheap to clone; clones share the
/// view. See the [module docs](self).
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

struct Inner {
    state: RwLock<RevocationState>,
    /// Bumped by every change, so that a token checked clean at the current
    /// generation is not looked up again.
    generation: AtomicU64,
    trust: Arc<Trust>,
    max_token_lifetime: Duration,
    version_claim: Option<ClaimPath>,
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocations")
            .field("entries", &self.len())
            .field("trusted", &self.is_trusted())
            .field("max_token_lifetime", &self.inner.max_token_lifetime)
            .finish_non_exhaustive()
    }
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new()
    }
}

impl Revocations {
    /// An empty view with the default settings.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder.
    pub fn builder() -> RevocationsBuilder {
        RevocationsBuilder {
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
            version_claim: None,
        }
    }

    /// Revokes the token whose `jti` is `jti`; `exp` (unix seconds) is how
    /// long to keep the revocation, when known.
    pub fn revoke_token(&self, jti: &str, exp: Option<u64>) {
        self.apply(&Revocation::Token {
            jti: jti.to_owned(),
            exp,
        });
    }

    /// Revokes every token of `user` issued before `before` (unix
    /// seconds), in `tenant` only or in every tenant.
    pub fn revoke_user(&self, user: &str, tenant: Option<&str>, before: u64) {
        self.apply(&Revocation::User {
            user: user.to_owned(),
            tenant: tenant.map(str::to_owned),
            before,
        });
    }

    /// Sets the current token version of `user`: tokens with a lower
    /// version claim are revoked. A version lower than one already set
    /// changes nothing.
    pub fn set_token_version(&self, user: &str, version: u64) {
        self.apply(&Revocation::TokenVersion {
            user: user.to_owned(),
            version,
        });
    }

    /// Applies one revocation. Applying it again changes nothing.
    pub fn apply(&self, revocation: &Revocation) {
        let now = unix_now();
        let kept_until = revocation.kept_until(now, self.inner.max_token_lifetime);
        self.apply_kept_until(std::iter::once((revocation, kept_until)), now);
    }

    /// Applies revocations with the instants they may be forgotten (as
    /// stored in Redis), then forgets what has ended.
    pub(crate) fn apply_kept_until<'a>(
        &self,
        revocations: impl IntoIterator<Item = (&'a Revocation, u64)>,
        now: u64,
    ) {
        let mut state = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut changed = false;
        for (revocation, kept_until) in revocations {
            if kept_until > now {
                changed |= state.apply(revocation, kept_until);
            }
        }
        changed |= state.prune(now) > 0;
        if changed {
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Entries held now (after forgetting what has ended).
    pub fn len(&self) -> usize {
        let mut state = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        state.prune(unix_now());
        state.len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the view can be relied on now. Always in one process; with
    /// Redis, once loaded in full and while the subscription is live (or
    /// within the outage window after it was lost). Requests are answered
    /// 503 `IAM_UNAVAILABLE` while it cannot. Fit for a readiness probe.
    pub fn is_trusted(&self) -> bool {
        self.inner.trust.is_trusted()
    }

    /// The longest token lifetime revocations are kept for.
    pub fn max_token_lifetime(&self) -> Duration {
        self.inner.max_token_lifetime
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn trust(&self) -> &Arc<Trust> {
        &self.inner.trust
    }

    /// Refuses a verified token that is revoked, or any token while the
    /// view cannot be trusted. `checked` is the token's memo: the
    /// generation it was last found clean at.
    pub(crate) fn check(
        &self,
        identity: &Identity,
        active_tenant: Option<&str>,
        exp: u64,
        checked: &AtomicU64,
    ) -> Result<(), Rejection> {
        let inner = &*self.inner;
        if !inner.trust.is_trusted() {
            return Err(Rejection::iam_unavailable(
                "revocations cannot be confirmed right now",
            ));
        }
        let generation = inner.generation.load(Ordering::Acquire);
        // A tenant chosen per request (a header) may be revoked apart from
        // the token's own: only the token's own tenant is memoized.
        let memoizable = active_tenant == identity.tenant.as_deref();
        if memoizable && checked.load(Ordering::Relaxed) == generation {
            return Ok(());
        }
        let now = unix_now();
        let read = |claims: &serde_json::Map<String, Value>| {
            let issued_at = claims.get("iat").and_then(seconds);
            if exp.saturating_sub(issued_at.unwrap_or(now)) > inner.max_token_lifetime.as_secs() {
                return Err(Rejection::invalid_token(
                    "the token lives longer than revocations are kept",
                ));
            }
            let facts = TokenFacts {
                jti: claims.get("jti").and_then(Value::as_str),
                user: &identity.user_id,
                tenant: active_tenant,
                issued_at,
                version: inner
                    .version_claim
                    .as_ref()
                    .and_then(|claim| claim.lookup(claims))
                    .and_then(Value::as_u64),
            };
            Ok(inner
                .state
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .covers(&facts, now))
        };
        // A memoized token is checked again only after something new is
        // revoked: its claims are read without being kept parsed. One
        // checked on every request keeps them parsed rather than parse
        // them each time.
        let revoked = if memoizable {
            identity.claims.peek(read)
        } else {
            read(identity.claims.as_map())
        }?;
        if let Some(by) = revoked {
            tracing::debug!(target: "iam_guard::revocation", user = %identity.user_id, by = ?by, "revoked token");
            return Err(Rejection::invalid_token("the token has been revoked"));
        }
        if memoizable {
            checked.store(generation, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// A NumericDate as whole seconds (fractions dropped); `None` when it is
/// not a non-negative number.
fn seconds(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_round_trips_and_refuses_what_does_not_fit() {
        let user: Revocation = serde_json::from_str(
            r#"{"type":"revoke_user","user":"u1","tenant":"school-1","before":1800000000}"#,
        )
        .unwrap();
        assert_eq!(
            user,
            Revocation::User {
                user: "u1".into(),
                tenant: Some("school-1".into()),
                before: 1_800_000_000
            }
        );
        let token: Revocation =
            serde_json::from_str(r#"{"type":"revoke_token","jti":"j"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&token).unwrap(),
            r#"{"type":"revoke_token","jti":"j"}"#
        );
        for bad in [
            r#"{"type":"revoke_token"}"#,
            r#"{"type":"revoke_user","user":"u","before":-1}"#,
            r#"{"type":"revoke_user","user":"u","before":"soon"}"#,
            r#"{"type":"token_version","user":"u","version":1,"extra":true}"#,
            r#"{"type":"drop_tables"}"#,
        ] {
            assert!(serde_json::from_str::<Revocation>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kept_until_covers_every_token_a_revocation_can_reach() {
        let day = DEFAULT_MAX_TOKEN_LIFETIME;
        let now = 1_000_000;
        let token = |exp| Revocation::Token {
            jti: "j".into(),
            exp,
        };
        assert_eq!(token(Some(now + 60)).kept_until(now, day), now + 60);
        assert_eq!(token(None).kept_until(now, day), now + 86_400);
        let user = |before| Revocation::User {
            user: "u".into(),
            tenant: None,
            before,
        };
        assert_eq!(user(now - 10).kept_until(now, day), now - 10 + 86_400);
        // A `before` still to come covers the tokens issued until then,
        // each valid for up to a lifetime.
        assert_eq!(user(now + 500).kept_until(now, day), now + 500 + 86_400);
    }

    #[test]
    fn generation_moves_only_on_change() {
        let revocations = Revocations::new();
        let g0 = revocations.inner.generation.load(Ordering::Relaxed);
        revocations.revoke_token("j", Some(unix_now() + 100));
        let g1 = revocations.inner.generation.load(Ordering::Relaxed);
        assert!(g1 > g0);
        revocations.revoke_token("j", Some(unix_now() + 100));
        assert_eq!(revocations.inner.generation.load(Ordering::Relaxed), g1);
        // Already ended: not even recorded.
        revocations.revoke_token("old", Some(1));
        assert_eq!(revocations.len(), 1);
    }
}
