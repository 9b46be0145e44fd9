//! [`Introspector`]: opaque access tokens checked at the IAM's RFC 7662
//! token introspection endpoint, with the answers cached.
//!
//! An opaque token carries nothing to verify: only the IAM that issued it
//! can say whether it is active and whose it is. The introspector asks it
//! (`POST token=…&token_type_hint=access_token`, with this service's
//! client credentials) and remembers the answer:
//!
//! - **An active answer** becomes the caller's identity through the same
//!   [`ClaimMapping`] the JWT path uses. Every member of the answer is kept
//!   as a claim (`cnf` included, for DPoP- or certificate-bound tokens);
//!   `iss` is added when the answer has none. It is refused (401) when it
//!   names another issuer, another audience (with
//!   [`audience`](IntrospectorBuilder::audience)), is a refresh token, or
//!   its `nbf` is ahead; an `exp` that has passed makes it inactive.
//! - **Cached until `exp`, never longer than
//!   [`max_ttl`](IntrospectorBuilder::max_ttl)** (default 5 min), checked
//!   against the clock on every hit as well. `max_ttl` is how long a
//!   revocation at the IAM can go unnoticed here.
//! - **Refusals are cached too**, for
//!   [`inactive_ttl`](IntrospectorBuilder::inactive_ttl) (default 10 s):
//!   a flood of garbage tokens costs the IAM one call per token per TTL at
//!   most.
//! - **Single-flight:** concurrent requests with one uncached token make
//!   one call and share its answer.
//! - **Outages are never guessed at:** no answer, a timeout, a non-2xx
//!   status, a body over the cap or one that is not an RFC 7662 answer is
//!   [`IntrospectionError::Unavailable`] (503), logged at WARN with the
//!   endpoint and the reason, and never cached: the next request asks
//!   again.
//! - **The token is never kept or logged:** cache keys are its SHA-256,
//!   and no log line, error or `Debug` output contains it (or the client
//!   secret). A token that is empty, over 8 KiB or not visible ASCII is
//!   refused before any call.
//!
//! Each introspector has its own cache, so one trusted issuer's answers
//! never answer for another's: build one introspector per issuer.
//!
//! ```no_run
//! # async fn run(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use iam_guard::{jwt::introspection::Introspector, ClaimMapping};
//!
//! let introspector = Introspector::builder(
//!     "https://iam.example.com/oauth2/introspect",
//!     "https://iam.example.com",
//! )
//! .client_secret_basic("students-api", "s3cret-from-the-vault")
//! .audience(["students-api"])
//! .claims(ClaimMapping::default().tenant("org_id"))
//! .max_ttl(Duration::from_secs(60))
//! .build()?;
//!
//! let caller = introspector.check(token).await?;
//! println!("{} in {:?}", caller.user_id(), caller.tenant_id());
//! # Ok(()) }
//! ```
//!
//! The test kit has an endpoint to try it against,
//! `test_util::IntrospectionEndpoint` (feature `test-util`).

mod answer;
mod cache;
mod client;
mod error;

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

#[doc(inline)]
pub use error::IntrospectionError;

use self::{
    answer::{Judged, Rules},
    cache::{AnswerCache, Entry, Served},
    client::{ClientAuth, Endpoint},
};
use crate::{
    jwt::{
        source::FetchError,
        verify::{unix_now, unix_now_f64, VerifiedToken},
    },
    metrics::{self, IntrospectionResult},
    principal::{ClaimMapping, Principal},
};

/// Default bound on how long an active answer is reused.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(5 * 60);
/// Default time an inactive (or refused) token is remembered.
pub const DEFAULT_INACTIVE_TTL: Duration = Duration::from_secs(10);
/// Default bound of the cache, in entries.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;
/// Default bound of the cache, in bytes (16 MiB): 10,000 answers of about
/// 1.3 KiB each (the identity built from the answer, moka's bookkeeping;
/// the token itself is kept only as its SHA-256), fewer when answers carry
/// many claims.
pub const DEFAULT_MAX_CACHE_BYTES: u64 = 16 << 20;
/// Default HTTP timeout of a call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on an answer's body.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest token sent to the IAM (the JWT path's bound too).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Builds an [`Introspector`]. See the [module docs](self) for the
/// defaults and an example.
#[derive(Debug, Clone)]
pub struct IntrospectorBuilder {
    endpoint: String,
    issuer: String,
    auth: ClientAuth,
    claims: ClaimMapping,
    audiences: Vec<String>,
    max_ttl: Duration,
    inactive_ttl: Duration,
    max_entries: u64,
    max_cache_bytes: u64,
    timeout: Duration,
    max_answer_bytes: usize,
}

impl IntrospectorBuilder {
    /// Authenticates with HTTP Basic (RFC 6749 §2.3.1: the id and secret
    /// are form-urlencoded, then base64-encoded). Replaces any other
    /// client authentication.
    pub fn client_secret_basic(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.auth = ClientAuth::Basic {
            id: client_id.into(),
            secret: secret.into(),
        };
        self
    }

    /// Authenticates with `client_id` and `client_secret` in the form body
    /// (RFC 6749 §2.3.1). Replaces any other client authentication.
    pub fn client_secret_post(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.auth = ClientAuth::Post {
            id: client_id.into(),
            secret: secret.into(),
        };
        self
    }

    /// Authenticates with a bearer token of this service's own (RFC 7662
    /// §2.1). Replaces any other client authentication. The caller's
    /// token is never sent as a credential.
    pub fn bearer(mut self, service_token: impl Into<String>) -> Self {
        self.auth = ClientAuth::Bearer(service_token.into());
        self
    }

    /// Which answer members carry the user, tenant, roles and so on (the
    /// JWT path's [`ClaimMapping`]). A client-credentials token's answer
    /// often has no `sub`: map the user from `client_id` with
    /// `ClaimMapping::default().user_id("client_id")`.
    pub fn claims(mut self, mapping: ClaimMapping) -> Self {
        self.claims = mapping;
        self
    }

    /// Accepts an active answer only when its `aud` (a string or an array)
    /// holds one of `audiences`. Without this, `aud` is not checked.
    pub fn audience<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// The longest an active answer is reused (default 5 min), however
    /// far its `exp`; also how long a revocation at the IAM can go
    /// unnoticed.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// How long an inactive token, or an active answer this service
    /// refuses, is remembered (default 10 s).
    pub fn inactive_ttl(mut self, ttl: Duration) -> Self {
        self.inactive_ttl = ttl;
        self
    }

    /// Bound of the cache in entries (default [`DEFAULT_MAX_ENTRIES`],
    /// 10,000), beside its bound in bytes: whichever is reached first
    /// binds.
    pub fn max_entries(mut self, max: u64) -> Self {
        self.max_entries = max;
        self
    }

    /// Bound of the cache in bytes (default [`DEFAULT_MAX_CACHE_BYTES`],
    /// 16 MiB). An entry weighs the identity built from the answer (its
    /// claims as compact JSON, roles, scopes, memberships) and moka's
    /// bookkeeping, and at least `bytes / max_entries`, so that the entry
    /// bound holds too.
    pub fn max_cache_bytes(mut self, bytes: u64) -> Self {
        self.max_cache_bytes = bytes;
        self
    }

    /// HTTP timeout of a call, connecting included (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Cap on an answer's body (default 64 KiB).
    pub fn max_answer_bytes(mut self, max: usize) -> Self {
        self.max_answer_bytes = max;
        self
    }

    /// Builds the introspector. Nothing is fetched yet.
    ///
    /// # Errors
    ///
    /// [`FetchError::Invalid`] when the endpoint is not an absolute
    /// http(s) URL, the issuer is empty, or a bearer credential cannot be
    /// sent in a header; [`FetchError::Connect`] when the HTTP client
    /// cannot be built.
    pub fn build(self) -> Result<Introspector, FetchError> {
        if self.issuer.is_empty() {
            return Err(FetchError::Invalid("the issuer is empty".into()));
        }
        let endpoint = Endpoint::new(
            &self.endpoint,
            &self.auth,
            self.timeout,
            self.max_answer_bytes,
        )?;
        Ok(Introspector {
            inner: Arc::new(Inner {
                endpoint,
                auth: self.auth.method(),
                rules: Rules {
                    issuer: self.issuer,
                    audiences: self.audiences,
                    claims: self.claims,
                },
                max_ttl: self.max_ttl,
                inactive_ttl: self.inactive_ttl,
                cache: AnswerCache::new(self.max_entries, self.max_cache_bytes),
            }),
        })
    }
}

/// Checks opaque access tokens at the IAM's introspection endpoint and
/// caches the answers. Cheap to clone; clones share the cache and the
/// counters.
///
/// See the [module docs](self) for what is checked and an example.
#[derive(Clone)]
pub struct Introspector {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    /// The client authentication method's name (never the credential).
    auth: &'static str,
    rules: Rules,
    max_ttl: Duration,
    inactive_ttl: Duration,
    cache: AnswerCache,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("endpoint", &self.endpoint())
            .field("issuer", &self.issuer())
            .field("client_auth", &self.inner.auth)
            .field("audiences", &self.inner.rules.audiences)
            .field("max_ttl", &self.inner.max_ttl)
            .field("inactive_ttl", &self.inner.inactive_ttl)
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// A builder for the introspection endpoint at `endpoint`, of the
    /// IAM whose issuer identifier is `issuer`.
    pub fn builder(endpoint: &str, issuer: &str) -> IntrospectorBuilder {
        IntrospectorBuilder {
            endpoint: endpoint.to_owned(),
            issuer: issuer.to_owned(),
            auth: ClientAuth::None,
            claims: ClaimMapping::default(),
            audiences: Vec::new(),
            max_ttl: DEFAULT_MAX_TTL,
            inactive_ttl: DEFAULT_INACTIVE_TTL,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_cache_bytes: DEFAULT_MAX_CACHE_BYTES,
            timeout: DEFAULT_TIMEOUT,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
        }
    }

    /// The issuer whose tokens this introspector checks.
    pub fn issuer(&self) -> &str {
        &self.inner.rules.issuer
    }

    /// The introspection endpoint's URL.
    pub fn endpoint(&self) -> &str {
        self.inner.endpoint.url()
    }

    /// The claim mapping.
    pub fn claim_mapping(&self) -> &ClaimMapping {
        &self.inner.rules.claims
    }

    /// HTTP requests made to the endpoint so far (for metrics and tests):
    /// a cache hit, a request that waited for another's call and a token
    /// refused before asking make none.
    pub fn calls(&self) -> u64 {
        self.inner.endpoint.calls()
    }

    /// Entries in the cache (after pending maintenance).
    pub async fn cached_answers(&self) -> u64 {
        self.inner.cache.entry_count().await
    }

    /// The caller `token` belongs to: from the cache, else from the IAM.
    ///
    /// # Errors
    ///
    /// See [`IntrospectionError`]: a 401 for a verdict against the token,
    /// [`Unavailable`](IntrospectionError::Unavailable) (a 503) when the
    /// IAM could not be asked.
    pub async fn check(&self, token: &str) -> Result<Principal, IntrospectionError> {
        let verified = match self.cached(token) {
            Some(outcome) => outcome?,
            None => self.introspect(token).await?,
        };
        Ok(Principal::new(verified.identity.clone(), None))
    }

    /// The cached outcome for `token`, if any, without I/O or awaiting; a
    /// malformed token is refused here too. `None`: call
    /// [`introspect`](Self::introspect).
    pub(crate) fn cached(
        &self,
        token: &str,
    ) -> Option<Result<Arc<VerifiedToken>, IntrospectionError>> {
        if let Err(e) = check_token(token) {
            return Some(Err(e));
        }
        let entry = self.inner.cache.peek(&cache::key(token))?;
        match entry.serve(unix_now(), Instant::now()) {
            Served::Answer(outcome) => {
                metrics::introspection(IntrospectionResult::Hit);
                Some(outcome)
            }
            Served::Stale => None,
        }
    }

    /// The outcome for `token`: from the cache, else from one call to the
    /// IAM that concurrent requests for the same token share.
    pub(crate) async fn introspect(
        &self,
        token: &str,
    ) -> Result<Arc<VerifiedToken>, IntrospectionError> {
        check_token(token)?;
        let key = cache::key(token);
        let cache = &self.inner.cache;
        let (entry, asked) = self.get_or_ask(key, token).await?;
        let (outcome, asked) = if asked {
            // Judged against the clock a moment ago.
            (entry.outcome(), true)
        } else {
            match entry.serve(unix_now(), Instant::now()) {
                Served::Answer(outcome) => (outcome, false),
                Served::Stale => {
                    // Past its TTL but not yet evicted. Dropping it may
                    // drop a fresher answer another request just stored;
                    // that costs one more call, never a stale answer.
                    cache.invalidate(&key).await;
                    // Asked now, or by another request after ours missed:
                    // fresh either way.
                    let (fresh, asked) = self.get_or_ask(key, token).await?;
                    (fresh.outcome(), asked)
                }
            }
        };
        if !asked {
            metrics::introspection(IntrospectionResult::Hit);
        }
        outcome
    }

    /// [`AnswerCache::get_or_ask`] with a call to the IAM; counts a
    /// failure, of this request's call or of the one it waited for (an
    /// answer is counted by [`ask`](Self::ask), a hit by the caller).
    async fn get_or_ask(
        &self,
        key: cache::Key,
        token: &str,
    ) -> Result<(Arc<Entry>, bool), IntrospectionError> {
        let got = self.inner.cache.get_or_ask(key, self.ask(token)).await;
        if got.is_err() {
            metrics::introspection(IntrospectionResult::Error);
        }
        got
    }

    /// One call to the IAM and the entry its answer makes.
    async fn ask(&self, token: &str) -> Result<Entry, IntrospectionError> {
        let inner = &self.inner;
        let body = match inner.endpoint.call(token).await {
            Ok(body) => body,
            Err(e) => return Err(self.unavailable(e)),
        };
        let now = unix_now_f64();
        match answer::judge(&body, &inner.rules, now) {
            Judged::Active(active) => {
                metrics::introspection(IntrospectionResult::Active);
                let ttl = cache::active_ttl(active.exp, now, inner.max_ttl);
                // Without an `exp`, the token's end as far as this service
                // knows is the end of the cache bound (rounded up, so a
                // sub-second bound does not end at once).
                let exp = match active.exp {
                    Some(exp) => exp as u64,
                    None => (now + inner.max_ttl.as_secs_f64()).ceil() as u64,
                };
                let verified = VerifiedToken::introspected(active.identity, exp);
                Ok(Entry::active(verified, ttl, active.exp.is_some()))
            }
            Judged::Refused(refusal) => {
                metrics::introspection(match refusal.error {
                    IntrospectionError::Inactive => IntrospectionResult::Inactive,
                    _ => IntrospectionResult::Invalid,
                });
                tracing::debug!(
                    target: "iam_guard::introspection",
                    endpoint = inner.endpoint.url(),
                    reason = %refusal.error,
                    "token refused"
                );
                let ttl = refusal
                    .ttl_cap
                    .map_or(inner.inactive_ttl, |cap| cap.min(inner.inactive_ttl));
                Ok(Entry::refused(refusal.error, ttl))
            }
            Judged::Garbage(e) => Err(self.unavailable(e)),
        }
    }

    /// Logs a failed call and makes it the error every waiter gets.
    fn unavailable(&self, e: FetchError) -> IntrospectionError {
        let endpoint = self.inner.endpoint.url();
        if matches!(e, FetchError::Status(401 | 403)) {
            // The IAM refused us, not the caller: a configuration error
            // that every request will hit until it is fixed.
            tracing::warn!(
                target: "iam_guard::introspection",
                endpoint,
                error = %e,
                client_auth = self.inner.auth,
                "the IAM refused this service's client credentials at its introspection endpoint"
            );
        } else {
            tracing::warn!(
                target: "iam_guard::introspection",
                endpoint,
                error = %e,
                "token introspection failed"
            );
        }
        IntrospectionError::Unavailable(e)
    }
}

/// Refuses, before any call, what no IAM issues as an access token: empty,
/// over [`MAX_TOKEN_BYTES`], or anything but visible ASCII (which also
/// keeps control characters out of the request and the logs).
fn check_token(token: &str) -> Result<(), IntrospectionError> {
    if token.is_empty()
        || token.len() > MAX_TOKEN_BYTES
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(IntrospectionError::Malformed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_ascii_within_the_bound_is_sent() {
        assert!(check_token("2YotnFZFEjr1zCsicMWpAA").is_ok());
        assert!(check_token("a.b-c_d~e+f/g=").is_ok());
        assert!(check_token(&"a".repeat(MAX_TOKEN_BYTES)).is_ok());
        for bad in ["", "a b", "a\nb", "tok\u{7f}", "tökén", "a\tb"] {
            assert_eq!(
                check_token(bad),
                Err(IntrospectionError::Malformed),
                "{bad:?}"
            );
        }
        assert!(check_token(&"a".repeat(MAX_TOKEN_BYTES + 1)).is_err());
    }

    #[test]
    fn building_never_panics_on_bad_input() {
        assert!(Introspector::builder("not a url", "https://iam")
            .build()
            .is_err());
        assert!(Introspector::builder("https://iam/introspect", "")
            .build()
            .is_err());
        assert!(
            Introspector::builder("https://iam/introspect", "https://iam")
                .bearer("line\nbreak")
                .build()
                .is_err()
        );
        let builder = Introspector::builder("https://iam/introspect", "https://iam")
            .client_secret_basic("svc", "hunter2");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let built = Introspector::builder("https://iam/introspect", "https://iam")
            .client_secret_post("svc", "hunter2")
            .max_ttl(Duration::ZERO)
            .inactive_ttl(Duration::ZERO)
            .max_entries(0)
            .timeout(Duration::from_millis(1))
            .max_answer_bytes(0)
            .build()
            .expect("odd but valid settings");
        assert!(!format!("{built:?}").contains("hunter2"));
    }

    #[test]
    fn a_malformed_token_is_refused_from_the_cache_path_without_a_call() {
        let introspector = Introspector::builder("https://iam/introspect", "https://iam")
            .build()
            .expect("valid");
        assert!(matches!(
            introspector.cached("bad token"),
            Some(Err(IntrospectionError::Malformed))
        ));
        assert!(introspector.cached("good-token").is_none());
        assert_eq!(introspector.calls(), 0);
    }
}
