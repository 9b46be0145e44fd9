//! [`Verifier`]: RFC 8725 validation of access tokens against the JWKS (or
//! an explicitly configured [`SharedSecret`]), and the verified-token cache
//! that lets a repeat request skip the signature check.
//!
//! Checks, in order (each failure is a 401 `invalid_token`):
//!
//! 1. length (default 8 KiB, before anything is parsed), exactly three
//!    segments, strict unpadded base64url, a header that is a JSON object;
//! 2. header: `alg` on the allow-list (default RS256; `none` can never be
//!    listed, HMAC only by configuring a [`SharedSecret`]), no duplicate
//!    header members, no `crit` (we implement no extension, RFC 7515
//!    §4.1.11), no `b64`, no nested token (`cty: JWT`), `typ` when the
//!    `at+jwt` profile is on, a `kid` (optional for HMAC); `jku`, `x5u`
//!    and `jwk` are never followed: keys only come from the configured
//!    JWKS;
//! 3. key: the token's `alg` decides the family. An asymmetric token's kid
//!    must be in the JWKS, and the key's type (and `alg`, if it pins one)
//!    must agree with the token's `alg`; an HMAC token is checked with the
//!    configured secret of exactly its algorithm and never with a JWKS key;
//! 4. signature, then claims: `exp` required and numeric, `nbf`, leeway
//!    (default 60 s), exact `iss`, `aud` (any of a list) when configured,
//!    the required claims you list, and the claim values you constrain
//!    ([`TokenValidation::claim_equals`]).
//!
//! Asymmetric tokens without a `kid` are rejected: picking "the only key"
//! or trying every key makes key selection depend on the JWKS contents,
//! which an attacker may learn to exploit during a rotation.

use std::{
    borrow::Cow,
    fmt,
    hash::BuildHasher as _,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

#[doc(inline)]
pub use super::algorithm::{Algorithm, UnknownAlgorithm};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use moka::sync::Cache;
use serde::{de::IgnoredAny, Deserialize};
use serde_json::Value;

pub(crate) use super::jose::unix_now;
pub(super) use super::jose::{json_object_segment, unix_now_f64};
use super::jose::{nesting_within, object_segment_in, segments, Segments};
#[doc(inline)]
pub use super::validation::{TokenValidation, VerifyError};
pub(crate) use super::verified::VerifiedToken;
use super::{
    hot_tokens,
    issuer::peek,
    jwks::{JwksFetcher, KeyError},
    keys::VerifyingKey,
    registered_claims,
    secret::{is_hmac, Secrets, SharedSecret},
    token_cache::{SignatureTail, UntilExp},
    verified::Signer,
};
use crate::{
    cache_bound::{alloc_bytes, Bound},
    metrics,
    principal::{ClaimLookup, ClaimMapping, ClaimSet},
};

/// Default leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Longest `kid` accepted (real IAMs use UUIDs or thumbprints).
const MAX_KID_LEN: usize = 256;
/// Deepest nesting of a header's members (a `jwk` or `x5c` member is two
/// deep; nothing we read is deeper).
const MAX_HEADER_NESTING: usize = 16;

/// Headers up to this many decoded bytes are decoded on the stack (a
/// JOSE header is usually under 200).
const HEADER_ON_STACK: usize = 512;

/// Claims sets up to this many decoded bytes are decoded on the stack:
/// the claims of the mainstream IdPs' access tokens fit.
const PAYLOAD_ON_STACK: usize = 2048;

/// Default bound of the verified-token cache, in entries.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: u64 = 10_000;
/// Default bound of the verified-token cache, in bytes (32 MiB): at about
/// 2.1 KiB per entry for a typical token 10,000 of them fit, so the entry
/// bound is the one that binds; long tokens (near the 8 KiB
/// `max_token_len`) are held to fewer.
pub const DEFAULT_TOKEN_CACHE_BYTES: u64 = 32 << 20;

/// Hands each verifier its id in the per-thread hot tokens.
static NEXT_VERIFIER_ID: AtomicU64 = AtomicU64::new(1);

/// The outcome of [`Verifier::verify_uncached`].
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Verified, from the token cache or with a cached key.
    Verified(Arc<VerifiedToken>),
    /// The header passed, but its kid is not cached: the JWKS must be asked.
    NeedsKey(PendingKey),
}

/// Whether a token's unverified `iss` has been matched to the verifier
/// before it is asked to verify the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IssuerClaim {
    /// Not yet: checked before any key is fetched.
    Unchecked,
    /// The caller chose this verifier by it.
    Matched,
}

/// A token whose header passed every check, waiting for its key.
#[derive(Debug)]
pub(crate) struct PendingKey {
    kid: String,
    alg: Algorithm,
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
    secrets: Secrets,
    validation: TokenValidation,
    /// The allow-list: the validation's asymmetric algorithms and the
    /// algorithm of each configured secret.
    algorithms: Vec<Algorithm>,
    claims: ClaimMapping,
    cache_entries: Option<u64>,
    cache_bytes: u64,
    /// Keyed by the token's bytes, one allocation with [`VerifiedToken::token`].
    cache: Option<Cache<Arc<[u8]>, Arc<VerifiedToken>, SignatureTail>>,
    /// Names this verifier's slots in the per-thread hot tokens; never
    /// reused, so a new verifier never sees an old one's entries.
    id: u64,
    signature_checks: AtomicU64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("validation", &self.inner.validation)
            .field("has_jwks", &!self.inner.jwks.has_no_keys())
            .field("shared_secrets", &self.inner.secrets)
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
    secrets: Secrets,
    validation: TokenValidation,
    claims: ClaimMapping,
    cache_entries: Option<u64>,
    cache_bytes: u64,
}

impl VerifierBuilder {
    /// Also accepts HMAC tokens signed with `secret`, beside the JWKS's
    /// asymmetric keys. A token's `alg` decides which applies: an HMAC
    /// token is checked only with the secret of exactly its algorithm, an
    /// asymmetric token only with the JWKS. Several secrets may be added
    /// (one per algorithm and kid; a second with the same algorithm and
    /// kid replaces the first). See [`SharedSecret`] for why asymmetric
    /// keys are the stronger choice.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use iam_guard::{Algorithm, JwksFetcher, SharedSecret, TokenValidation, Verifier};
    ///
    /// let jwks = JwksFetcher::discover("https://iam.example.com")?;
    /// let legacy = SharedSecret::new(Algorithm::HS256, *b"0123456789abcdef0123456789abcdef")?;
    /// let verifier = Verifier::builder(jwks, TokenValidation::new("https://iam.example.com"))
    ///     .shared_secret(legacy)
    ///     .build();
    /// # let _ = verifier; Ok(()) }
    /// ```
    pub fn shared_secret(mut self, secret: SharedSecret) -> Self {
        self.secrets.add(secret);
        self
    }

    /// Which claims carry user, tenant, roles and so on.
    pub fn claims(mut self, mapping: ClaimMapping) -> Self {
        self.claims = mapping;
        self
    }

    /// Bound of the verified-token cache in entries (default
    /// [`DEFAULT_TOKEN_CACHE_ENTRIES`], 10,000), beside its bound in
    /// bytes ([`token_cache_bytes`](Self::token_cache_bytes)): whichever
    /// is reached first binds. 0 caches nothing.
    ///
    /// In front of it each thread keeps the 16 tokens it served last: the
    /// same entries, given the same checks (expiry, keys, revocations) on
    /// every request, so a repeat request skips the shared cache's
    /// bookkeeping. They hold at most 16 entries per thread beyond the
    /// bounds.
    pub fn token_cache(mut self, max_entries: u64) -> Self {
        self.cache_entries = Some(max_entries);
        self
    }

    /// Bound of the verified-token cache in bytes (default
    /// [`DEFAULT_TOKEN_CACHE_BYTES`], 32 MiB), beside its bound in entries.
    ///
    /// An entry weighs its token, its verified identity (user, tenant,
    /// roles, scopes, memberships, the claims as compact JSON, and the
    /// parsed claims once a handler has read them) and moka's own
    /// bookkeeping, estimated at about 2.1 KiB for a 550-byte token with a
    /// tenant and two roles (`benches/memory.rs`). Each entry weighs at
    /// least `bytes / max_entries`, so that the entry bound holds too.
    /// 0 caches nothing. Has no effect with
    /// [`no_token_cache`](Self::no_token_cache).
    pub fn token_cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
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
        // The allow-list: the validation's asymmetric algorithms (HMAC was
        // dropped from them) and the algorithm of each configured secret.
        let mut algs: Vec<Algorithm> = Vec::new();
        for alg in self
            .validation
            .algorithms
            .iter()
            .copied()
            .chain(self.secrets.algorithms())
        {
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        let cache =
            self.cache_entries.map(|max| {
                let bound = Bound::new(max, self.cache_bytes);
                Cache::builder()
                    .name("iam_guard.verified_tokens")
                    .max_capacity(bound.capacity())
                    .weigher(bound.weigher::<Arc<[u8]>, Arc<VerifiedToken>, _>(
                        |token, verified| alloc_bytes(token.len() + 16) + verified.heap_bytes(),
                    ))
                    .expire_after(UntilExp)
                    .build_with_hasher(SignatureTail)
            });
        Verifier {
            inner: Arc::new(Inner {
                jwks: self.jwks,
                secrets: self.secrets,
                validation: self.validation,
                algorithms: algs,
                claims: self.claims,
                cache_entries: self.cache_entries,
                cache_bytes: self.cache_bytes,
                cache,
                id: NEXT_VERIFIER_ID.fetch_add(1, Ordering::Relaxed),
                signature_checks: AtomicU64::new(0),
            }),
        }
    }
}

/// The parts of the header we act on, borrowed from the decoded header
/// where they hold no escapes. Deserializing into a struct makes serde
/// reject a duplicate member (two `alg`s), which a map would silently
/// resolve to one of them.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    cty: Option<Cow<'a, str>>,
    /// Only whether it is there matters.
    #[serde(default)]
    crit: Option<IgnoredAny>,
    #[serde(default)]
    b64: Option<IgnoredAny>,
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
            secrets: Secrets::default(),
            validation,
            claims: ClaimMapping::default(),
            cache_entries: Some(DEFAULT_TOKEN_CACHE_ENTRIES),
            cache_bytes: DEFAULT_TOKEN_CACHE_BYTES,
        }
    }

    /// A verifier that trusts only `secret`: HMAC tokens of its algorithm,
    /// with the default claim mapping and token cache, and no JWKS at all.
    /// An asymmetric token is then a 401 (unknown key), never a 503, and
    /// nothing is ever fetched. Every check of `validation` applies.
    ///
    /// Any holder of the secret can mint tokens this service accepts:
    /// prefer asymmetric keys where the issuer offers them (see
    /// [`SharedSecret`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use iam_guard::{Algorithm, SharedSecret, TokenValidation, Verifier};
    ///
    /// # let from_secret_store = vec![42u8; 48];
    /// let secret = SharedSecret::new(Algorithm::HS384, from_secret_store)?;
    /// let verifier = Verifier::with_shared_secret(
    ///     secret,
    ///     TokenValidation::new("https://auth.internal").audience(["students-api"]),
    /// );
    /// # let _ = verifier; Ok(()) }
    /// ```
    pub fn with_shared_secret(secret: SharedSecret, validation: TokenValidation) -> Self {
        Self::builder(JwksFetcher::no_keys(), validation)
            .shared_secret(secret)
            .build()
    }

    /// The JWKS fetcher. A verifier built by
    /// [`with_shared_secret`](Self::with_shared_secret) has one over a
    /// fixed empty key set, which never fetches.
    pub fn jwks(&self) -> &JwksFetcher {
        &self.inner.jwks
    }

    /// What tokens must look like.
    pub fn validation(&self) -> &TokenValidation {
        &self.inner.validation
    }

    /// A verifier over the same JWKS fetcher (and so the same key cache)
    /// and the same shared secrets, with `validation` and `claims` instead,
    /// and an empty token cache of the same bound: tokens verified under
    /// the old rules are not carried over.
    pub fn with_rules(&self, validation: TokenValidation, claims: ClaimMapping) -> Self {
        VerifierBuilder {
            jwks: self.inner.jwks.clone(),
            secrets: self.inner.secrets.clone(),
            validation,
            claims,
            cache_entries: self.inner.cache_entries,
            cache_bytes: self.inner.cache_bytes,
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
    /// The token is looked up by its bytes as sent, text or not: only
    /// verified tokens are ever cached.
    pub(crate) fn cached(&self, token: &[u8]) -> Option<Arc<VerifiedToken>> {
        let hit = self.cached_unrecorded(token);
        metrics::token_cache(hit.is_some());
        hit
    }

    /// [`cached`](Self::cached) without the hit/miss metric, for a guard
    /// that asks several verifiers and records one outcome.
    pub(crate) fn cached_unrecorded(&self, token: &[u8]) -> Option<Arc<VerifiedToken>> {
        let cache = self.inner.cache.as_ref()?;
        let hash = SignatureTail.hash_one(token);
        let id = self.inner.id;
        let hit = match hot_tokens::get(id, hash, token) {
            Some(hit) => hit,
            None => {
                let hit = cache.get(token)?;
                hot_tokens::put(id, hash, &hit);
                hit
            }
        };
        // moka expires at `exp` too; the clock check keeps "never past exp"
        // independent of its housekeeping. A key that left the JWKS takes
        // its tokens with it, and so does the end of the stale-if-error
        // window: a cached verification is never worth more than the keys.
        // A secret is fixed for the verifier's life and outlives no JWKS.
        let keys_gone = match &hit.signer {
            Signer::Jwks(key) => key.is_revoked() || !self.inner.jwks.keys_usable(),
            Signer::Secret(_) => false,
            // An introspected token never enters this cache.
            #[cfg(feature = "jwks-http")]
            Signer::Introspection => false,
        };
        if hit.exp <= unix_now() || keys_gone {
            cache.invalidate(token);
            hot_tokens::forget(id, hash);
            return None;
        }
        Some(hit)
    }

    /// Verifies a token [`cached`](Self::cached) did not find, if its key is
    /// cached, without awaiting. [`Attempt::NeedsKey`] carries the checked
    /// header to [`Verifier::verify_fetched`], so a token with a new kid is
    /// parsed once.
    /// `issuer` says whether the token's unverified `iss` is already known
    /// to be this verifier's (a guard trusting several issuers chose this
    /// one by it), so the payload is not read twice before a fetch.
    pub(crate) fn verify_uncached(
        &self,
        token: &str,
        issuer: IssuerClaim,
    ) -> Result<Attempt, VerifyError> {
        // Split once: the header is read now, the rest after the key.
        let parts = segments(token)?;
        let (kid, alg) = self.check_header(parts.header)?;
        // The token's alg decides the family, before any key is looked up:
        // an HMAC token never reaches the JWKS, an asymmetric one never a
        // secret.
        if is_hmac(alg) {
            return self
                .verify_with_secret(token, parts, alg, kid.as_deref())
                .map(Attempt::Verified);
        }
        // check_header lets a token without kid through only for HMAC.
        let Some(kid) = kid else {
            return Err(VerifyError::Header("no kid"));
        };
        match self.inner.jwks.cached(&kid) {
            Some(key) => self
                .finish_with_key(token, parts, alg, key)
                .map(Attempt::Verified),
            // Nothing to fetch: answer now, without a boxed future.
            None if self.inner.jwks.has_no_keys() => Err(VerifyError::UnknownKey),
            // A fetch is only ever made for a token that claims this
            // issuer: whatever else a token names, it never makes us ask
            // anyone for keys. (What it claims is checked again, verified,
            // after the signature.)
            None => {
                if issuer == IssuerClaim::Unchecked {
                    self.claims_our_issuer(token)?;
                }
                Ok(Attempt::NeedsKey(PendingKey { kid, alg }))
            }
        }
    }

    /// `Ok` when the unverified payload of `token` claims an issuer this
    /// verifier accepts.
    fn claims_our_issuer(&self, token: &str) -> Result<(), VerifyError> {
        let pattern = self.inner.validation.issuer_pattern();
        let peeked = peek(token, pattern.needs_full_peek())?;
        if pattern.admits_peeked(&peeked) {
            Ok(())
        } else {
            Err(peeked.refusal())
        }
    }

    /// An HMAC token: checked with the one configured secret of exactly its
    /// algorithm (and kid), never with a JWKS key.
    fn verify_with_secret(
        &self,
        token: &str,
        parts: Segments<'_>,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Arc<VerifiedToken>, VerifyError> {
        let secret = self
            .inner
            .secrets
            .select(alg, kid)
            .ok_or(VerifyError::UnknownKey)?;
        // The tag is compared in constant time (`SharedSecret::verify`).
        self.finish(token, parts, alg, Signer::Secret(secret.clone()))
    }

    /// Finishes a verification that [`Verifier::verify_uncached`] left waiting
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
        self.finish_with_key(token, segments(token)?, pending.alg, key)
    }

    /// The header checks; returns the kid (always present unless the
    /// algorithm is HMAC) and the accepted algorithm.
    fn check_header(&self, segment: &str) -> Result<(Option<String>, Algorithm), VerifyError> {
        let (mut stack, mut heap) = ([0u8; HEADER_ON_STACK], Vec::new());
        let raw =
            object_segment_in(segment, &mut stack, &mut heap).ok_or(VerifyError::Malformed)?;
        if !nesting_within(raw, MAX_HEADER_NESTING) {
            return Err(VerifyError::Malformed);
        }
        // Checked as UTF-8 once, so that serde need not check each string.
        let raw = std::str::from_utf8(raw).map_err(|_| VerifyError::Malformed)?;
        let header: Header<'_> = serde_json::from_str(raw).map_err(|_| VerifyError::Malformed)?;
        // Exact, case-sensitive names (RFC 7518 §3.1): "None", "nOnE" and
        // "rs256" are not algorithms.
        let alg = self
            .inner
            .algorithms
            .iter()
            .copied()
            .find(|alg| alg.as_str() == &*header.alg)
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
        match header.kid.as_deref() {
            // In-house auth servers signing with a shared secret often send
            // no kid; the secret is then chosen by the algorithm alone.
            None if is_hmac(alg) => {}
            None => return Err(VerifyError::Header("no kid")),
            // Unknown kids are remembered in a bounded negative cache; a
            // bound on their length keeps that cache small in bytes too.
            Some(kid) if kid.is_empty() || kid.len() > MAX_KID_LEN => {
                return Err(VerifyError::Header("kid is empty or too long"));
            }
            Some(_) => {}
        }
        Ok((header.kid, alg))
    }

    fn finish_with_key(
        &self,
        token: &str,
        parts: Segments<'_>,
        alg: Algorithm,
        key: Arc<VerifyingKey>,
    ) -> Result<Arc<VerifiedToken>, VerifyError> {
        if !key.accepts(alg) {
            return Err(VerifyError::KeyMismatch);
        }
        self.finish(token, parts, alg, Signer::Jwks(key))
    }

    /// The signature with `signer`, then the claims.
    ///
    /// The key was parsed when it entered the key cache, so this is the
    /// signature check itself, one base64url decoding of the signature and
    /// of the payload (on the stack, for the usual sizes), and one JSON
    /// parse of the claims' top level, which the registered-claim checks
    /// and the principal both read.
    fn finish(
        &self,
        token: &str,
        parts: Segments<'_>,
        alg: Algorithm,
        signer: Signer,
    ) -> Result<Arc<VerifiedToken>, VerifyError> {
        let Segments {
            signing_input,
            payload,
            signature,
            ..
        } = parts;
        // The largest signature is RSA-8192's 1 KiB: decoded on the stack.
        let mut raw_signature = [0u8; 1024];
        let len = URL_SAFE_NO_PAD
            .decode_slice(signature, &mut raw_signature)
            .map_err(|_| VerifyError::Malformed)?;
        self.inner.signature_checks.fetch_add(1, Ordering::Relaxed);
        signer.check(alg, signing_input.as_bytes(), &raw_signature[..len])?;
        let (mut stack, mut heap) = ([0u8; PAYLOAD_ON_STACK], Vec::new());
        let payload =
            object_segment_in(payload, &mut stack, &mut heap).ok_or(VerifyError::Malformed)?;
        let payload = std::str::from_utf8(payload).map_err(|_| VerifyError::Malformed)?;
        // A claims set is a JSON object (RFC 7519 §7.2): `ClaimSet` refuses
        // an array, which a struct would read by position.
        let claims: ClaimSet<'_> =
            serde_json::from_str(payload).map_err(|_| VerifyError::Malformed)?;
        let exp = registered_claims::check(&self.inner.validation, &claims, unix_now_f64())?;
        // RFC 7519 §4.1.1 makes `iss` one string (the registered-claim
        // check also lets an array of strings through), and that string
        // must be ours: equal to the issuer, or to a template filled with
        // the token's allowed tenant.
        if !self.inner.validation.issuer.admits_claims(&claims) {
            return Err(VerifyError::Issuer);
        }
        if matches!(claims.claim("nbf"), Some(v) if !v.is_number()) {
            return Err(VerifyError::Claims("nbf".into()));
        }
        for required in &self.inner.validation.required_claims {
            if matches!(claims.claim(required), None | Some(Value::Null)) {
                return Err(VerifyError::Claims(format!("{required} is required")));
            }
        }
        for check in &self.inner.validation.claim_checks {
            if !check.admits(&claims) {
                return Err(VerifyError::ClaimValue(check.name().to_owned()));
            }
        }
        // The principal reads its claims from the token itself, if a
        // handler ever asks: the token is kept anyway, as the cache's key.
        let token: Arc<str> = Arc::from(token);
        let identity = self
            .inner
            .claims
            .identity_of_token(&claims, token.clone())
            .map_err(|m| VerifyError::Claims(m.into()))?;
        let verified = Arc::new(VerifiedToken {
            token: token.clone(),
            identity: Arc::new(identity),
            signer,
            exp,
            revocation_checked: AtomicU64::new(0),
        });
        if let Some(cache) = &self.inner.cache {
            if exp > unix_now() {
                cache.insert(Arc::<[u8]>::from(token), verified.clone());
            }
        }
        Ok(verified)
    }
}
