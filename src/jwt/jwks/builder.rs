//! [`JwksFetcherBuilder`]: the settings of a [`JwksFetcher`] and where it
//! reads the JWKS from, set once where the fetcher is built; and the bounds
//! and weights of its two caches.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64},
        Arc, Mutex,
    },
    time::Duration,
};

use moka::sync::Cache;

use super::{
    Inner, JwksFetcher, DEFAULT_COOLDOWN, DEFAULT_RETRY_AFTER_FAILURE, DEFAULT_STALE_IF_ERROR,
    DEFAULT_TTL,
};
#[cfg(feature = "jwks-http")]
use crate::jwt::source::FetchError;
use crate::{
    cache_bound::{alloc_bytes, Bound},
    freshness::{Freshness, Windows, NEVER},
    jwt::{keys::VerifyingKey, source::JwksSource},
};

/// Builds a [`JwksFetcher`]. See the [module docs](super) for the defaults.
#[derive(Debug, Clone)]
pub struct JwksFetcherBuilder {
    pub(super) windows: Windows,
    pub(super) cooldown: Duration,
    max_negative_entries: u64,
    max_negative_bytes: u64,
    max_keys: u64,
    max_key_bytes: u64,
    #[cfg(feature = "jwks-http")]
    http: crate::jwt::http::HttpConfig,
}

/// Default bound of the key cache, in entries.
pub const DEFAULT_MAX_KEYS: u64 = 10_000;
/// Default bound of the key cache, in bytes (8 MiB): some 2,800 parsed
/// RSA keys, more than a JWKS within the 1 MiB document cap can publish.
pub const DEFAULT_MAX_KEY_BYTES: u64 = 8 << 20;
/// Default bound of the negative (unknown kid) cache, in entries.
pub const DEFAULT_MAX_NEGATIVE_ENTRIES: u64 = 10_000;
/// Default bound of the negative cache, in bytes (5 MiB): 10,000 UUID-long
/// kids fit (about 430 bytes each, moka's bookkeeping included); kids near
/// the 256-byte limit are held to some 8,000.
pub const DEFAULT_MAX_NEGATIVE_BYTES: u64 = 5 << 20;

/// Estimated heap bytes of one parsed public key beyond the fields counted
/// one by one: an RSA-4096 modulus with its precomputed context in
/// aws-lc-rs, the largest key a JWKS may carry; EC and Ed25519 keys take
/// less.
const KEY_MATERIAL: usize = 2048;

/// The weight of a cached key, in bytes.
fn key_bytes(kid: &Arc<str>, key: &Arc<VerifyingKey>) -> usize {
    // The kid is shared with the key's own; the key lives in an `Arc`.
    alloc_bytes(kid.len() + 16)
        + alloc_bytes(std::mem::size_of::<VerifyingKey>() + 16)
        + alloc_bytes(key.fingerprint.len())
        + KEY_MATERIAL
}

impl Default for JwksFetcherBuilder {
    fn default() -> Self {
        Self {
            windows: Windows::new(
                DEFAULT_TTL,
                DEFAULT_STALE_IF_ERROR,
                DEFAULT_RETRY_AFTER_FAILURE,
            ),
            cooldown: DEFAULT_COOLDOWN,
            max_negative_entries: DEFAULT_MAX_NEGATIVE_ENTRIES,
            max_negative_bytes: DEFAULT_MAX_NEGATIVE_BYTES,
            max_keys: DEFAULT_MAX_KEYS,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            #[cfg(feature = "jwks-http")]
            http: crate::jwt::http::HttpConfig::default(),
        }
    }
}

impl JwksFetcherBuilder {
    /// Freshness when the IAM sends no `max-age` (default 10 min).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.windows.ttl = ttl;
        self
    }

    /// Bounds applied to the IAM's `max-age` (default 10 s to 24 h).
    pub fn ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.windows.bound_ttl(min, max);
        self
    }

    /// Minimum time between refetches caused by unknown kids (default 30 s).
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How long keys keep verifying once they are stale (their TTL is over)
    /// while the IAM cannot be reached (default 24 h).
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.windows.stale_if_error = window;
        self
    }

    /// Pause after a failed fetch before another is tried (default 1 s), so
    /// an outage cannot become a retry storm against the IAM.
    pub fn retry_after_failure(mut self, pause: Duration) -> Self {
        self.windows.retry_after_failure = pause;
        self
    }

    /// Bound of the negative (unknown kid) cache in entries (default
    /// [`DEFAULT_MAX_NEGATIVE_ENTRIES`], 10,000), beside its bound in
    /// bytes: whichever is reached first binds.
    pub fn max_negative_entries(mut self, max: u64) -> Self {
        self.max_negative_entries = max;
        self
    }

    /// Bound of the negative cache in bytes (default
    /// [`DEFAULT_MAX_NEGATIVE_BYTES`], 5 MiB). An entry weighs its kid and
    /// moka's bookkeeping (about 380 bytes), and at least
    /// `bytes / max_negative_entries` so that the entry bound holds too.
    pub fn max_negative_bytes(mut self, bytes: u64) -> Self {
        self.max_negative_bytes = bytes;
        self
    }

    /// Bound of the key cache in entries (default [`DEFAULT_MAX_KEYS`],
    /// 10,000). Keys beyond it are not held, so tokens signed with them
    /// are refused as unknown: the bound is a safety net against a JWKS
    /// that publishes thousands of keys, not a tuning knob.
    pub fn max_keys(mut self, max: u64) -> Self {
        self.max_keys = max;
        self
    }

    /// Bound of the key cache in bytes (default [`DEFAULT_MAX_KEY_BYTES`],
    /// 8 MiB). A key weighs its kid, its JWK as published (kept to notice
    /// a kid re-published with new material), an estimated 2 KiB for the
    /// parsed key and moka's bookkeeping; at least `bytes / max_keys`.
    pub fn max_key_bytes(mut self, bytes: u64) -> Self {
        self.max_key_bytes = bytes;
        self
    }

    /// HTTP timeout for JWKS and discovery fetches (default 5 s).
    #[cfg(feature = "jwks-http")]
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http.timeout = timeout;
        self
    }

    /// Response size cap for JWKS and discovery documents (default 1 MiB).
    #[cfg(feature = "jwks-http")]
    pub fn max_document_bytes(mut self, max: usize) -> Self {
        self.http.max_bytes = max;
        self
    }

    /// A fetcher reading `jwks_uri` directly.
    ///
    /// # Errors
    ///
    /// When `jwks_uri` is not an absolute http(s) URL or the HTTP client
    /// cannot be built.
    #[cfg(feature = "jwks-http")]
    pub fn jwks_uri(self, jwks_uri: &str) -> Result<JwksFetcher, FetchError> {
        let source = crate::jwt::http::HttpJwksSource::jwks_uri(jwks_uri, self.http.clone())?;
        Ok(self.source(source))
    }

    /// A fetcher that finds `jwks_uri` through OIDC discovery
    /// (`{issuer}/.well-known/openid-configuration`). Discovery happens on
    /// the first fetch, so a service can start while the IAM is down.
    ///
    /// # Errors
    ///
    /// When `issuer` is not an absolute http(s) URL, is a `{tenantid}`
    /// template (see [`discovery_document`](Self::discovery_document)), or
    /// the HTTP client cannot be built.
    #[cfg(feature = "jwks-http")]
    pub fn discover(self, issuer: &str) -> Result<JwksFetcher, FetchError> {
        let source = crate::jwt::http::HttpJwksSource::discover(issuer, self.http.clone())?;
        Ok(self.source(source))
    }

    /// A fetcher that reads `jwks_uri` from the discovery document at
    /// `url`, which must name `issuer` exactly. For a multi-tenant
    /// template, whose discovery document is not under the template: give
    /// Entra's
    /// `https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration`
    /// with the issuer it publishes,
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`.
    ///
    /// # Errors
    ///
    /// When `url` is not an absolute http(s) URL or the HTTP client cannot
    /// be built.
    #[cfg(feature = "jwks-http")]
    pub fn discovery_document(self, url: &str, issuer: &str) -> Result<JwksFetcher, FetchError> {
        let source =
            crate::jwt::http::HttpJwksSource::discovery_document(url, issuer, self.http.clone())?;
        Ok(self.source(source))
    }

    /// A fetcher over a [`JwksSource`] of your own.
    pub fn source(self, source: impl JwksSource) -> JwksFetcher {
        self.build(Box::new(source), false)
    }

    pub(super) fn build(self, source: Box<dyn JwksSource>, no_keys: bool) -> JwksFetcher {
        // A fixed empty set is always usable and never due for a refresh,
        // so nothing on the request path or in the background fetches.
        let freshness = if no_keys {
            Freshness::forever()
        } else {
            Freshness::unfetched()
        };
        let keys = Bound::new(self.max_keys, self.max_key_bytes);
        let unknown = Bound::new(self.max_negative_entries, self.max_negative_bytes);
        JwksFetcher {
            inner: Arc::new(Inner {
                source,
                no_keys,
                keys: Cache::builder()
                    .name("iam_guard.jwks.keys")
                    // Whether keys may verify is decided by the freshness;
                    // this only bounds how long moka keeps the memory of a
                    // key that no good fetch re-confirmed.
                    .time_to_live(
                        self.windows
                            .max_ttl
                            .saturating_add(self.windows.stale_if_error),
                    )
                    .max_capacity(keys.capacity())
                    .weigher(keys.weigher(key_bytes))
                    .build(),
                unknown: Cache::builder()
                    .name("iam_guard.jwks.unknown_kids")
                    .time_to_live(self.cooldown.max(Duration::from_millis(1)))
                    .max_capacity(unknown.capacity())
                    .weigher(unknown.weigher::<Box<str>, (), _>(|kid, _| alloc_bytes(kid.len())))
                    .build(),
                published: Mutex::new(HashMap::new()),
                refresh: tokio::sync::Mutex::new(()),
                freshness,
                generation: AtomicU64::new(0),
                last_forced: AtomicU64::new(NEVER),
                last_error: Mutex::new(None),
                in_flight: AtomicBool::new(false),
                fetches: AtomicU64::new(0),
                config: self,
            }),
        }
    }
}
