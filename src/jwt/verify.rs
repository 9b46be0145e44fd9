//! [`Verifier`]: RFC 8725 validation of access tokens against the JWKS, and
//! the verified-token cache that lets a repeat request skip the signature
//! check.
//!
//! Checks, in order (each failure is a 401 `invalid_token`):
//!
//! 1. length (default 8 KiB, before anything is parsed), exactly three
//!    segments, strict unpadded base64url, a header that is a JSON object;
//! 2. header: `alg` on the allow-list (default RS256; `none` and HMAC can
//!    never be listed), no duplicate header members, no `crit` (we
//!    implement no extension, RFC 7515 §4.1.11), no `b64`, no nested token
//!    (`cty: JWT`), `typ` when the `at+jwt` profile is on, a `kid`;
//!    `jku`, `x5u` and `jwk` are never followed: keys only come from the
//!    configured JWKS;
//! 3. key: the kid must be in the JWKS, and the key's type (and `alg`, if it
//!    pins one) must agree with the token's `alg`;
//! 4. signature, then claims: `exp` required and numeric, `nbf`, leeway
//!    (default 60 s), exact `iss`, `aud` (any of a list) when configured,
//!    and the required claims you list.
//!
//! Tokens without a `kid` are rejected: picking "the only key" or trying
//! every key makes key selection depend on the JWKS contents, which an
//! attacker may learn to exploit during a rotation.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;
use jsonwebtoken::{errors::ErrorKind, Algorithm, Validation};
use moka::sync::Cache;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    jwks::{JwksFetcher, KeyError},
    keys::VerifyingKey,
    token_cache::{SignatureTail, UntilExp},
};
use crate::{
    metrics,
    principal::{ClaimMapping, Identity},
};

/// Default leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Longest `kid` accepted (real IAMs use UUIDs or thumbprints).
const MAX_KID_LEN: usize = 256;

/// Default bound of the verified-token cache.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: u64 = 10_000;

/// What a valid token must look like. See the [module docs](self).
///
/// ```
/// use iam_guard::jwt::verify::TokenValidation;
/// use jsonwebtoken::Algorithm;
///
/// let validation = TokenValidation::new("https://iam.example.com")
///     .audience(["students-api"])
///     .algorithms([Algorithm::RS256, Algorithm::ES256])
///     .access_token_profile();
/// # let _ = validation;
/// ```
#[derive(Debug, Clone)]
pub struct TokenValidation {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    at_jwt: bool,
    required_claims: Vec<String>,
}

impl TokenValidation {
    /// Tokens must carry `iss` equal to `issuer`, byte for byte.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: Vec::new(),
            algorithms: vec![Algorithm::RS256],
            leeway: DEFAULT_LEEWAY,
            at_jwt: false,
            required_claims: Vec::new(),
        }
    }

    /// Tokens must carry an `aud` that is one of `audiences`.
    pub fn audience<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// The accepted signature algorithms (default RS256). HMAC algorithms
    /// are dropped: a shared secret has no place in a public JWKS.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms
            .into_iter()
            .filter(|a| !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
            .collect();
        self
    }

    /// Clock-skew allowance for `exp` and `nbf` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Require the RFC 9068 access-token profile: `typ` must be `at+jwt`
    /// (or `application/at+jwt`), so ID tokens cannot be replayed as
    /// access tokens.
    pub fn access_token_profile(mut self) -> Self {
        self.at_jwt = true;
        self
    }

    /// Claims that must be present and not `null`.
    pub fn required_claims<I, S>(mut self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_claims = claims.into_iter().map(Into::into).collect();
        self
    }

    fn jsonwebtoken_validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway.as_secs();
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_issuer(&[&self.issuer]);
        let mut required: Vec<&str> = vec!["exp", "iss"];
        if self.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audiences);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        v
    }
}

/// Why a token was rejected. Every variant but
/// [`KeysUnavailable`](VerifyError::KeysUnavailable) is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Longer than the configured maximum.
    #[error("the access token is too large")]
    TooLarge,
    /// Not three base64url segments with a JSON header.
    #[error("the access token is malformed")]
    Malformed,
    /// `alg` is not on the allow-list.
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// The header has a member we must not or cannot honour.
    #[error("the token header is not accepted: {0}")]
    Header(&'static str),
    /// No key in the JWKS has the token's kid.
    #[error("the token's signing key is unknown")]
    UnknownKey,
    /// The key's type or pinned algorithm disagrees with the token's `alg`.
    #[error("the token's algorithm does not match its key")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    Signature,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not accepted")]
    Issuer,
    /// `aud` names none of the configured audiences.
    #[error("the token's audience is not accepted")]
    Audience,
    /// A required claim is missing or has the wrong type.
    #[error("the token's claims are invalid: {0}")]
    Claims(String),
    /// No keys could be obtained from the IAM: 503, not 401.
    #[error("signing keys are unavailable")]
    KeysUnavailable,
}

/// The outcome of [`Verifier::verify_now`].
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Verified, from the token cache or with a cached key.
    Verified(Arc<VerifiedToken>),
    /// The header passed, but its kid is not cached: the JWKS must be asked.
    NeedsKey(PendingKey),
}

/// A token whose header passed every check, waiting for its key.
#[derive(Debug)]
pub(crate) struct PendingKey {
    kid: String,
    alg: Algorithm,
}

/// A verified token: its identity, the key that verified it, its expiry.
pub(crate) struct VerifiedToken {
    pub(crate) identity: Arc<Identity>,
    key: Arc<VerifyingKey>,
    /// Whole seconds, rounded down from the token's NumericDate.
    pub(super) exp: u64,
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("user_id", &self.identity.user_id)
            .field("kid", &self.key.kid)
            .field("exp", &self.exp)
            .finish()
    }
}

/// Verifies access tokens. Cheap to clone; clones share the key cache, the
/// token cache and the counters.
///
/// See the [module docs](self) for what is checked.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    jwks: JwksFetcher,
    validation: TokenValidation,
    /// Per accepted algorithm: its registered name and a prebuilt
    /// jsonwebtoken `Validation`.
    per_alg: Vec<(Algorithm, String, Validation)>,
    claims: ClaimMapping,
    cache_entries: Option<u64>,
    cache: Option<Cache<Box<str>, Arc<VerifiedToken>, SignatureTail>>,
    signature_checks: AtomicU64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("validation", &self.inner.validation)
            .field(
                "token_cache",
                &self.inner.cache.as_ref().map(|c| c.entry_count()),
            )
            .finish_non_exhaustive()
    }
}

/// Builds a [`Verifier`].
#[derive(Debug)]
pub struct VerifierBuilder {
    jwks: JwksFetcher,
    validation: TokenValidation,
    claims: ClaimMapping,
    cache_entries: Option<u64>,
}

impl VerifierBuilder {
    /// Which claims carry user, tenant, roles and so on.
    pub fn claims(mut self, mapping: ClaimMapping) -> Self {
        self.claims = mapping;
        self
    }

    /// Bound of the verified-token cache (default 10,000 entries).
    pub fn token_cache(mut self, max_entries: u64) -> Self {
        self.cache_entries = Some(max_entries);
        self
    }

    /// Turns the verified-token cache off: every request checks the
    /// signature.
    pub fn no_token_cache(mut self) -> Self {
        self.cache_entries = None;
        self
    }

    /// Builds the verifier.
    pub fn build(self) -> Verifier {
        let per_alg = self
            .validation
            .algorithms
            .iter()
            .map(|&a| (a, alg_name(a), self.validation.jsonwebtoken_validation(a)))
            .collect();
        let cache = self.cache_entries.map(|max| {
            Cache::builder()
                .name("iam_guard.verified_tokens")
                .max_capacity(max)
                .expire_after(UntilExp)
                .build_with_hasher(SignatureTail)
        });
        Verifier {
            inner: Arc::new(Inner {
                jwks: self.jwks,
                validation: self.validation,
                per_alg,
                claims: self.claims,
                cache_entries: self.cache_entries,
                cache,
                signature_checks: AtomicU64::new(0),
            }),
        }
    }
}

/// The parts of the header we act on. Deserializing into a struct makes
/// serde reject a duplicate member (two `alg`s), which a map would silently
/// resolve to one of them.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    cty: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
    #[serde(default)]
    b64: Option<Value>,
}

impl Verifier {
    /// A verifier with default claim mapping and token cache.
    pub fn new(jwks: JwksFetcher, validation: TokenValidation) -> Self {
        Self::builder(jwks, validation).build()
    }

    /// A builder for a verifier over `jwks` checking `validation`.
    pub fn builder(jwks: JwksFetcher, validation: TokenValidation) -> VerifierBuilder {
        VerifierBuilder {
            jwks,
            validation,
            claims: ClaimMapping::default(),
            cache_entries: Some(DEFAULT_TOKEN_CACHE_ENTRIES),
        }
    }

    /// The JWKS fetcher.
    pub fn jwks(&self) -> &JwksFetcher {
        &self.inner.jwks
    }

    /// What tokens must look like.
    pub fn validation(&self) -> &TokenValidation {
        &self.inner.validation
    }

    /// A verifier over the same JWKS fetcher (and so the same key cache)
    /// with `validation` and `claims` instead, and an empty token cache of
    /// the same bound: tokens verified under the old rules are not carried
    /// over.
    pub fn with_rules(&self, validation: TokenValidation, claims: ClaimMapping) -> Self {
        VerifierBuilder {
            jwks: self.inner.jwks.clone(),
            validation,
            claims,
            cache_entries: self.inner.cache_entries,
        }
        .build()
    }

    /// The claim mapping.
    pub fn claim_mapping(&self) -> &ClaimMapping {
        &self.inner.claims
    }

    /// How many signature checks have run (a cache hit runs none).
    pub fn signature_checks(&self) -> u64 {
        self.inner.signature_checks.load(Ordering::Relaxed)
    }

    /// Entries in the verified-token cache (after pending maintenance).
    pub fn cached_tokens(&self) -> u64 {
        self.inner.cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
    }

    /// The cached verification of `token`, if any: no parsing, no crypto.
    pub(crate) fn cached(&self, token: &str) -> Option<Arc<VerifiedToken>> {
        let cache = self.inner.cache.as_ref()?;
        let Some(hit) = cache.get(token) else {
            metrics::token_cache(false);
            return None;
        };
        // moka expires at `exp` too; the clock check keeps "never past exp"
        // independent of its housekeeping. A key that left the JWKS takes
        // its tokens with it, and so does the end of the stale-if-error
        // window: a cached verification is never worth more than the keys.
        if hit.exp <= unix_now() || hit.key.is_revoked() || !self.inner.jwks.keys_usable() {
            cache.invalidate(token);
            metrics::token_cache(false);
            return None;
        }
        metrics::token_cache(true);
        Some(hit)
    }

    /// Verifies `token` if it is cached or its key is, without awaiting.
    /// [`Attempt::NeedsKey`] carries the checked header to
    /// [`Verifier::verify_fetched`], so a token with a new kid is parsed once.
    pub(crate) fn verify_now(&self, token: &str) -> Result<Attempt, VerifyError> {
        if let Some(hit) = self.cached(token) {
            return Ok(Attempt::Verified(hit));
        }
        let (kid, alg) = self.check_header(token)?;
        match self.inner.jwks.cached(&kid) {
            Some(key) => self.finish(token, alg, key).map(Attempt::Verified),
            None => Ok(Attempt::NeedsKey(PendingKey { kid, alg })),
        }
    }

    /// Finishes a verification that [`Verifier::verify_now`] left waiting
    /// for its key: fetches the JWKS (single-flight, cooldown) and checks.
    ///
    /// # Errors
    ///
    /// See [`VerifyError`].
    pub(crate) async fn verify_fetched(
        &self,
        token: &str,
        pending: PendingKey,
    ) -> Result<Arc<VerifiedToken>, VerifyError> {
        let key = self
            .inner
            .jwks
            .key(&pending.kid)
            .await
            .map_err(|e| match e {
                KeyError::UnknownKid => VerifyError::UnknownKey,
                KeyError::Unavailable(_) => VerifyError::KeysUnavailable,
            })?;
        self.finish(token, pending.alg, key)
    }

    /// The header checks; returns the kid and the accepted algorithm.
    fn check_header(&self, token: &str) -> Result<(String, Algorithm), VerifyError> {
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| VerifyError::Malformed)?;
        // serde reads a struct from a JSON array too, by position, so
        // `["RS256","k"]` would pass our checks; a JOSE header is an object
        // (RFC 7515 §4), the only shape our checks and jsonwebtoken agree on.
        if raw.trim_ascii_start().first() != Some(&b'{') {
            return Err(VerifyError::Malformed);
        }
        let header: Header = serde_json::from_slice(&raw).map_err(|_| VerifyError::Malformed)?;
        // Exact, case-sensitive names (RFC 7518 §3.1): "None", "nOnE" and
        // "rs256" are not algorithms.
        let alg = self
            .inner
            .per_alg
            .iter()
            .find(|(_, name, _)| *name == header.alg)
            .map(|(a, _, _)| *a)
            .ok_or(VerifyError::Algorithm)?;
        if header.crit.is_some() {
            return Err(VerifyError::Header("crit names an unsupported extension"));
        }
        if header.b64.is_some() {
            return Err(VerifyError::Header("unencoded payloads are not accepted"));
        }
        if header
            .cty
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("jwt"))
        {
            return Err(VerifyError::Header("nested tokens are not accepted"));
        }
        if self.inner.validation.at_jwt
            && !header.typ.as_deref().is_some_and(|t| {
                t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
            })
        {
            return Err(VerifyError::Header("typ must be at+jwt"));
        }
        let kid = header.kid.ok_or(VerifyError::Header("no kid"))?;
        // Unknown kids are remembered in a bounded negative cache; a bound
        // on their length keeps that cache small in bytes too.
        if kid.is_empty() || kid.len() > MAX_KID_LEN {
            return Err(VerifyError::Header("kid is empty or too long"));
        }
        Ok((kid, alg))
    }

    fn finish(
        &self,
        token: &str,
        alg: Algorithm,
        key: Arc<VerifyingKey>,
    ) -> Result<Arc<VerifiedToken>, VerifyError> {
        if !key.accepts(alg) {
            return Err(VerifyError::KeyMismatch);
        }
        let validation = &self
            .inner
            .per_alg
            .iter()
            .find(|(a, _, _)| *a == alg)
            .expect("alg was found on the allow-list")
            .2;
        self.inner.signature_checks.fetch_add(1, Ordering::Relaxed);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, validation)
            .map_err(|e| map_jwt_error(e.kind()))?;
        let claims = data.claims;
        // jsonwebtoken also accepts an `iss` array that merely contains the
        // issuer; RFC 7519 §4.1.1 makes `iss` one string, and that string
        // must be ours.
        let issuer = self.inner.validation.issuer.as_str();
        if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
            return Err(VerifyError::Issuer);
        }
        // A NumericDate may carry a fraction (RFC 7519 §2): compared as a
        // number, never refused or rounded up for it.
        let exp = match claims.get("exp").and_then(numeric_date) {
            Some(exp) => exp,
            None => return Err(VerifyError::Claims("exp is missing or not valid".into())),
        };
        // RFC 7519 §4.1.4: the token must not be accepted on or after
        // `exp`; jsonwebtoken still accepts the `exp` second itself.
        if exp + self.inner.validation.leeway.as_secs_f64() <= unix_now_f64() {
            return Err(VerifyError::Expired);
        }
        // Cached no later than `exp`, so a fraction rounds down.
        let exp = exp as u64;
        if matches!(claims.get("nbf"), Some(v) if !v.is_number()) {
            return Err(VerifyError::Claims("nbf".into()));
        }
        for required in &self.inner.validation.required_claims {
            if matches!(claims.get(required), None | Some(Value::Null)) {
                return Err(VerifyError::Claims(format!("{required} is required")));
            }
        }
        let identity = self
            .inner
            .claims
            .identity(claims)
            .map_err(|m| VerifyError::Claims(m.into()))?;
        let verified = Arc::new(VerifiedToken {
            identity: Arc::new(identity),
            key,
            exp,
        });
        if let Some(cache) = &self.inner.cache {
            if exp > unix_now() {
                cache.insert(token.into(), verified.clone());
            }
        }
        Ok(verified)
    }
}

fn map_jwt_error(kind: &ErrorKind) -> VerifyError {
    match kind {
        ErrorKind::InvalidSignature => VerifyError::Signature,
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        ErrorKind::InvalidIssuer => VerifyError::Issuer,
        ErrorKind::InvalidAudience => VerifyError::Audience,
        // jsonwebtoken reports a registered claim it cannot parse (a string
        // `exp`) as missing.
        ErrorKind::MissingRequiredClaim(c) => {
            VerifyError::Claims(format!("{c} is missing or not valid"))
        }
        ErrorKind::InvalidClaimFormat(c) => VerifyError::Claims(format!("{c} has the wrong type")),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => VerifyError::Algorithm,
        ErrorKind::InvalidKeyFormat | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
            VerifyError::KeyMismatch
        }
        _ => VerifyError::Malformed,
    }
}

/// The registered name of `alg` (RFC 7518 §3.1), as serde writes it.
fn alg_name(alg: Algorithm) -> String {
    match serde_json::to_value(alg) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

/// A NumericDate: a non-negative JSON number of seconds, fraction allowed.
fn numeric_date(value: &Value) -> Option<f64> {
    let n = value.as_number()?;
    match n.as_u64() {
        // Exact for every integer a clock will reach.
        Some(secs) => Some(secs as f64),
        None => n.as_f64().filter(|secs| secs.is_finite() && *secs >= 0.0),
    }
}

fn unix_now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
