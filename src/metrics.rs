//! Metrics, through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! The crate only records; it installs no recorder and no exporter. Install
//! one in your application (`metrics-exporter-prometheus`, an OpenTelemetry
//! bridge, …) and these counters appear. Without a recorder every call is a
//! no-op.
//!
//! Every label value comes from a fixed set or from your configuration
//! (entity names): never a user id, a token, a tenant or a raw path, so the
//! number of series stays bounded whatever callers send.
//!
//! | counter | labels | counts |
//! |---|---|---|
//! | [`DECISIONS`] | `guard` (`auth`, `requirement`, `field_write`, `field_filter`, `undeclared`, `extractor`), `outcome` (`allow`, `anonymous`, `deny`, `bypass`), `code` (the [`ErrorCode`](crate::ErrorCode) of a deny, else empty) | every decision a guard takes |
//! | [`JWKS_FETCHES`] | `result` (`ok`, `error`) | JWKS fetch attempts |
//! | [`JWKS_UNKNOWN_KID_REFETCHES`] | — | refetches caused by a token with a kid the cache did not hold |
//! | [`JWKS_COOLDOWN_REFUSALS`] | — | unknown kids answered from the negative cache or within the cooldown, without asking the IAM |
//! | [`JWKS_STALE_KEYS_SERVED`] | — | verifications that used keys past their freshness while the IAM could not be reached (stale-if-error) |
//! | [`TOKEN_CACHE`] | `result` (`hit`, `miss`) | verified-token cache lookups |
//! | [`PERMISSION_LOADS`] | `source` (`claims`, `catalogue`, `remote`, or your source's name), `level` (`local`: a cache of this replica answered; `source`: computed or fetched) | permission loads (at most one per request) |
//! | [`FIELDS_REMOVED`] | `entity` | top-level scope groups FieldFilter removed from responses |
//!
//! A [`PermissionSource`](crate::permissions::source::PermissionSource) of
//! your own can count its loads with [`permission_load`].

use std::fmt;

/// Decisions by guard, outcome and code.
pub const DECISIONS: &str = "iam_guard_decisions_total";
/// JWKS fetch attempts by result.
pub const JWKS_FETCHES: &str = "iam_guard_jwks_fetches_total";
/// Refetches triggered by an unknown kid.
pub const JWKS_UNKNOWN_KID_REFETCHES: &str = "iam_guard_jwks_unknown_kid_refetches_total";
/// Unknown kids refused without a fetch (negative cache, cooldown).
pub const JWKS_COOLDOWN_REFUSALS: &str = "iam_guard_jwks_cooldown_refusals_total";
/// Verifications served by keys past their freshness during an outage.
pub const JWKS_STALE_KEYS_SERVED: &str = "iam_guard_jwks_stale_keys_served_total";
/// Verified-token cache lookups by result.
pub const TOKEN_CACHE: &str = "iam_guard_token_cache_total";
/// Permission loads by source and cache level.
pub const PERMISSION_LOADS: &str = "iam_guard_permission_loads_total";
/// Scope groups removed from responses, by entity.
pub const FIELDS_REMOVED: &str = "iam_guard_field_filter_removed_total";

/// Where a permission load was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheLevel {
    /// A cache of this replica (moka) had the answer.
    Local,
    /// The answer was computed from the token or catalogue, or fetched from
    /// the IAM.
    Source,
}

impl CacheLevel {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Source => "source",
        }
    }
}

impl fmt::Display for CacheLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts one permission load of `source` answered at `level`.
///
/// `source` is a label value: name the kind of source (`"ldap"`), never
/// anything per caller.
pub fn permission_load(source: &'static str, level: CacheLevel) {
    ::metrics::counter!(PERMISSION_LOADS, "source" => source, "level" => level.as_str())
        .increment(1);
}

/// The sources this crate ships, so their loads count with static keys
/// (the hot path of a memoized catalogue lookup allocates nothing).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Builtin {
    Claims,
    Catalogue,
    #[cfg(feature = "jwks-http")]
    Remote,
}

macro_rules! load_counter {
    ($source:literal, $level:literal) => {
        ::metrics::counter!(PERMISSION_LOADS, "source" => $source, "level" => $level).increment(1)
    };
}

pub(crate) fn builtin_load(source: Builtin, level: CacheLevel) {
    match (source, level) {
        (Builtin::Claims, CacheLevel::Local) => load_counter!("claims", "local"),
        (Builtin::Claims, CacheLevel::Source) => load_counter!("claims", "source"),
        (Builtin::Catalogue, CacheLevel::Local) => load_counter!("catalogue", "local"),
        (Builtin::Catalogue, CacheLevel::Source) => load_counter!("catalogue", "source"),
        #[cfg(feature = "jwks-http")]
        (Builtin::Remote, CacheLevel::Local) => load_counter!("remote", "local"),
        #[cfg(feature = "jwks-http")]
        (Builtin::Remote, CacheLevel::Source) => load_counter!("remote", "source"),
    }
}

pub(crate) fn token_cache(hit: bool) {
    if hit {
        ::metrics::counter!(TOKEN_CACHE, "result" => "hit").increment(1);
    } else {
        ::metrics::counter!(TOKEN_CACHE, "result" => "miss").increment(1);
    }
}

pub(crate) fn jwks_fetch(ok: bool) {
    if ok {
        ::metrics::counter!(JWKS_FETCHES, "result" => "ok").increment(1);
    } else {
        ::metrics::counter!(JWKS_FETCHES, "result" => "error").increment(1);
    }
}

pub(crate) fn jwks_unknown_kid_refetch() {
    ::metrics::counter!(JWKS_UNKNOWN_KID_REFETCHES).increment(1);
}

pub(crate) fn jwks_cooldown_refusal() {
    ::metrics::counter!(JWKS_COOLDOWN_REFUSALS).increment(1);
}

pub(crate) fn jwks_stale_key_served() {
    ::metrics::counter!(JWKS_STALE_KEYS_SERVED).increment(1);
}

pub(crate) fn fields_removed(entity: &str, groups: u64) {
    if groups > 0 {
        // The entity comes from route declarations, so the set is bounded;
        // the label is owned because routes are configured at run time.
        ::metrics::counter!(FIELDS_REMOVED, "entity" => entity.to_owned()).increment(groups);
    }
}

/// A decision: the counters take label values from these fixed sets only.
pub(crate) fn decision(guard: &'static str, outcome: &'static str, code: &'static str) {
    ::metrics::counter!(DECISIONS, "guard" => guard, "outcome" => outcome, "code" => code)
        .increment(1);
}

/// A request an optional auth layer let through without a token.
pub(crate) fn anonymous() {
    ::metrics::counter!(DECISIONS, "guard" => "auth", "outcome" => "anonymous", "code" => "")
        .increment(1);
}

/// An admitted request on the hot path: static labels, no allocation.
pub(crate) fn allowed(guard: &'static str) {
    match guard {
        "auth" => {
            ::metrics::counter!(DECISIONS, "guard" => "auth", "outcome" => "allow", "code" => "")
                .increment(1);
        }
        "requirement" => ::metrics::counter!(
            DECISIONS,
            "guard" => "requirement",
            "outcome" => "allow",
            "code" => ""
        )
        .increment(1),
        other => decision(other, "allow", ""),
    }
}
