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
//! | [`CATALOGUE_FETCHES`] | `result` (`installed`: a new version is in force; `not_modified`: a 304 or the same document; `refused`: malformed, invalid or oversized, nothing replaced; `error`: the IAM could not be asked) | fetches of a catalogue that lives at the IAM |
//! | [`CATALOGUE_STALE_SERVED`] | — | permission loads answered from a catalogue past its freshness while no new version could be had (stale-if-error) |
//! | [`TOKEN_CACHE`] | `result` (`hit`, `miss`) | verified-token cache lookups |
//! | [`INTROSPECTIONS`] | `result` (`hit`: answered from the introspection cache, or by a call another request made; `active`, `inactive`, `invalid`: this request's call to the IAM and its answer, `invalid` an active answer this service refuses; `error`: the IAM could not be asked or answered garbage) | opaque-token introspections (RFC 7662) |
//! | [`PERMISSION_LOADS`] | `source` (`claims`, `catalogue`, `remote`, or your source's name), `level` (`local`: a cache of this replica answered; `source`: computed or fetched) | permission loads (at most one per request) |
//! | [`FIELDS_REMOVED`] | `entity` | top-level scope groups FieldFilter removed from responses |
//! | [`FILTERED_RESPONSES`] | `pass` (`scanned`: FieldFilter read the body's bytes and cut them; `serialized`: a [`ReadView`](crate::ReadView) wrote it already filtered, so nothing was scanned) | responses filtered for a caller |
//!
//! A [`PermissionSource`](crate::permissions::source::PermissionSource) of
//! your own can count its loads with [`permission_load`].

use std::fmt;

mod bound;

pub use bound::bind_request_counters;

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
/// Catalogue fetches by result.
pub const CATALOGUE_FETCHES: &str = "iam_guard_catalogue_fetches_total";
/// Loads answered from a catalogue past its freshness.
pub const CATALOGUE_STALE_SERVED: &str = "iam_guard_catalogue_stale_served_total";
/// Verified-token cache lookups by result.
pub const TOKEN_CACHE: &str = "iam_guard_token_cache_total";
/// Opaque-token introspections by result.
pub const INTROSPECTIONS: &str = "iam_guard_introspections_total";
/// Permission loads by source and cache level.
pub const PERMISSION_LOADS: &str = "iam_guard_permission_loads_total";
/// Scope groups removed from responses, by entity.
pub const FIELDS_REMOVED: &str = "iam_guard_field_filter_removed_total";
/// Responses filtered, by how: scanned or serialized already filtered.
pub const FILTERED_RESPONSES: &str = "iam_guard_field_filter_responses_total";

/// Counter: messages a replica read from the Redis channel (and stored
/// revocations it loaded), by `result` (`applied`, `ignored`).
pub const REPLICA_MESSAGES: &str = "iam_guard_replica_messages_total";
/// Counter: times a replica lost its Redis subscription.
pub const REPLICA_SUBSCRIPTIONS_LOST: &str = "iam_guard_replica_subscriptions_lost_total";

/// Where a permission load was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheLevel {
    /// A cache of this replica (moka) had the answer.
    Local,
    /// The cache the replicas share (Redis) had the answer.
    Shared,
    /// The answer was computed from the token or catalogue, or fetched from
    /// the IAM.
    Source,
}

impl CacheLevel {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Shared => "shared",
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

// The counters below name their metric with a literal, not the constants
// above: a literal name and literal labels make `counter!` build a static
// key whose hash is computed once, where a `const` name hashes the key on
// every call. The test at the end keeps the literals and constants equal.

/// The sources this crate ships, so their loads count with static keys
/// (the hot path of a memoized catalogue lookup allocates nothing).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Builtin {
    Claims,
    Catalogue,
    #[cfg(feature = "jwks-http")]
    Remote,
    /// A [`CachedSource`](crate::permissions::cache::CachedSource): its
    /// cache levels (the source it wraps counts its own loads).
    Cached,
}

impl Builtin {
    /// Every source this crate ships, in [`index`](Self::index) order.
    const ALL: &'static [Builtin] = &[
        Builtin::Claims,
        Builtin::Catalogue,
        #[cfg(feature = "jwks-http")]
        Builtin::Remote,
        Builtin::Cached,
    ];

    /// Its place in [`ALL`](Self::ALL).
    fn index(self) -> usize {
        match self {
            Builtin::Claims => 0,
            Builtin::Catalogue => 1,
            #[cfg(feature = "jwks-http")]
            Builtin::Remote => 2,
            Builtin::Cached => Builtin::ALL.len() - 1,
        }
    }
}

impl CacheLevel {
    const ALL: [CacheLevel; 3] = [CacheLevel::Local, CacheLevel::Shared, CacheLevel::Source];

    fn index(self) -> usize {
        match self {
            CacheLevel::Local => 0,
            CacheLevel::Shared => 1,
            CacheLevel::Source => 2,
        }
    }
}

macro_rules! load_counter {
    ($source:literal, $level:literal) => {
        ::metrics::counter!(
            "iam_guard_permission_loads_total",
            "source" => $source,
            "level" => $level
        )
    };
}

/// One increment of a counter of the request path: its bound handle once
/// [`bind_request_counters`] ran, else the current recorder's.
fn count(
    bound: impl FnOnce(&'static bound::RequestCounters) -> &'static ::metrics::Counter,
    current: impl FnOnce() -> ::metrics::Counter,
) {
    match bound::counters() {
        Some(counters) => bound(counters).increment(1),
        None => current().increment(1),
    }
}

pub(crate) fn builtin_load(source: Builtin, level: CacheLevel) {
    count(
        |bound| bound.load(source, level),
        || load_counter_of(source, level),
    );
}

/// The counter of a load by `source` at `level` in the current recorder.
fn load_counter_of(source: Builtin, level: CacheLevel) -> ::metrics::Counter {
    match (source, level) {
        (Builtin::Claims, CacheLevel::Local) => load_counter!("claims", "local"),
        (Builtin::Claims, CacheLevel::Shared) => load_counter!("claims", "shared"),
        (Builtin::Claims, CacheLevel::Source) => load_counter!("claims", "source"),
        (Builtin::Catalogue, CacheLevel::Local) => load_counter!("catalogue", "local"),
        (Builtin::Catalogue, CacheLevel::Shared) => load_counter!("catalogue", "shared"),
        (Builtin::Catalogue, CacheLevel::Source) => load_counter!("catalogue", "source"),
        #[cfg(feature = "jwks-http")]
        (Builtin::Remote, CacheLevel::Local) => load_counter!("remote", "local"),
        #[cfg(feature = "jwks-http")]
        (Builtin::Remote, CacheLevel::Shared) => load_counter!("remote", "shared"),
        #[cfg(feature = "jwks-http")]
        (Builtin::Remote, CacheLevel::Source) => load_counter!("remote", "source"),
        (Builtin::Cached, CacheLevel::Local) => load_counter!("cached", "local"),
        (Builtin::Cached, CacheLevel::Shared) => load_counter!("cached", "shared"),
        (Builtin::Cached, CacheLevel::Source) => load_counter!("cached", "source"),
    }
}

#[cfg(feature = "redis")]
pub(crate) fn replica_message(applied: bool) {
    let result = if applied { "applied" } else { "ignored" };
    ::metrics::counter!("iam_guard_replica_messages_total", "result" => result).increment(1);
}

#[cfg(feature = "redis")]
pub(crate) fn replica_subscription_lost() {
    ::metrics::counter!("iam_guard_replica_subscriptions_lost_total").increment(1);
}

pub(crate) fn token_cache(hit: bool) {
    count(|bound| bound.token_cache(hit), || token_cache_counter(hit));
}

fn token_cache_counter(hit: bool) -> ::metrics::Counter {
    if hit {
        ::metrics::counter!("iam_guard_token_cache_total", "result" => "hit")
    } else {
        ::metrics::counter!("iam_guard_token_cache_total", "result" => "miss")
    }
}

/// How an introspection ended, for [`INTROSPECTIONS`].
#[cfg(feature = "jwks-http")]
#[derive(Debug, Clone, Copy)]
pub(crate) enum IntrospectionResult {
    Hit,
    Active,
    Inactive,
    Invalid,
    Error,
}

#[cfg(feature = "jwks-http")]
pub(crate) fn introspection(result: IntrospectionResult) {
    match result {
        IntrospectionResult::Hit => {
            ::metrics::counter!("iam_guard_introspections_total", "result" => "hit").increment(1)
        }
        IntrospectionResult::Active => {
            ::metrics::counter!("iam_guard_introspections_total", "result" => "active").increment(1)
        }
        IntrospectionResult::Inactive => {
            ::metrics::counter!("iam_guard_introspections_total", "result" => "inactive")
                .increment(1)
        }
        IntrospectionResult::Invalid => {
            ::metrics::counter!("iam_guard_introspections_total", "result" => "invalid")
                .increment(1)
        }
        IntrospectionResult::Error => {
            ::metrics::counter!("iam_guard_introspections_total", "result" => "error").increment(1)
        }
    }
}

pub(crate) fn jwks_fetch(ok: bool) {
    if ok {
        ::metrics::counter!("iam_guard_jwks_fetches_total", "result" => "ok").increment(1);
    } else {
        ::metrics::counter!("iam_guard_jwks_fetches_total", "result" => "error").increment(1);
    }
}

/// How a catalogue fetch ended, for [`CATALOGUE_FETCHES`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum CatalogueFetchResult {
    Installed,
    NotModified,
    Refused,
    Error,
}

pub(crate) fn catalogue_fetch(result: CatalogueFetchResult) {
    match result {
        CatalogueFetchResult::Installed => {
            ::metrics::counter!("iam_guard_catalogue_fetches_total", "result" => "installed")
                .increment(1)
        }
        CatalogueFetchResult::NotModified => {
            ::metrics::counter!("iam_guard_catalogue_fetches_total", "result" => "not_modified")
                .increment(1)
        }
        CatalogueFetchResult::Refused => {
            ::metrics::counter!("iam_guard_catalogue_fetches_total", "result" => "refused")
                .increment(1)
        }
        CatalogueFetchResult::Error => {
            ::metrics::counter!("iam_guard_catalogue_fetches_total", "result" => "error")
                .increment(1)
        }
    }
}

pub(crate) fn catalogue_stale_served() {
    ::metrics::counter!("iam_guard_catalogue_stale_served_total").increment(1);
}

pub(crate) fn jwks_unknown_kid_refetch() {
    ::metrics::counter!("iam_guard_jwks_unknown_kid_refetches_total").increment(1);
}

pub(crate) fn jwks_cooldown_refusal() {
    ::metrics::counter!("iam_guard_jwks_cooldown_refusals_total").increment(1);
}

pub(crate) fn jwks_stale_key_served() {
    ::metrics::counter!("iam_guard_jwks_stale_keys_served_total").increment(1);
}

/// How a response came to carry only the readable groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterPass {
    /// FieldFilter scanned the bytes and cut them.
    Scanned,
    /// A ReadView serialized it with only those groups.
    Serialized,
}

/// Counts one response filtered by `pass`.
pub(crate) fn response_filtered(pass: FilterPass) {
    count(|bound| bound.filtered(pass), || filtered_counter(pass));
}

fn filtered_counter(pass: FilterPass) -> ::metrics::Counter {
    match pass {
        FilterPass::Scanned => {
            ::metrics::counter!("iam_guard_field_filter_responses_total", "pass" => "scanned")
        }
        FilterPass::Serialized => {
            ::metrics::counter!("iam_guard_field_filter_responses_total", "pass" => "serialized")
        }
    }
}

/// Counts `groups` removed from a response of `entity`.
pub(crate) fn fields_removed(entity: &str, groups: u64) {
    if groups == 0 {
        return;
    }
    static METADATA: ::metrics::Metadata<'static> =
        ::metrics::Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));
    let key = entity_key(entity);
    ::metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA))
        .increment(groups);
}

/// The counter key of `entity`, built once per entity: entities come from
/// route declarations, so there are few, and a response that had groups
/// removed pays a map lookup instead of building and hashing a key.
fn entity_key(entity: &str) -> &'static ::metrics::Key {
    use std::{
        collections::HashMap,
        sync::{OnceLock, RwLock},
    };
    /// Past this many entities something is minting names; they share one
    /// series rather than grow the map.
    const MAX_ENTITIES: usize = 256;
    static KEYS: OnceLock<RwLock<HashMap<Box<str>, &'static ::metrics::Key>>> = OnceLock::new();
    static OTHER: [::metrics::Label; 1] = [::metrics::Label::from_static_parts("entity", "other")];
    static OTHER_KEY: ::metrics::Key = ::metrics::Key::from_static_parts(FIELDS_REMOVED, &OTHER);
    let keys = KEYS.get_or_init(Default::default);
    // A poisoned lock only means a panic elsewhere mid-insert; the map is
    // still a valid map.
    if let Some(key) = keys.read().unwrap_or_else(|e| e.into_inner()).get(entity) {
        return key;
    }
    let mut keys = keys.write().unwrap_or_else(|e| e.into_inner());
    if let Some(key) = keys.get(entity) {
        return key;
    }
    if keys.len() >= MAX_ENTITIES {
        return &OTHER_KEY;
    }
    let labels: &'static [::metrics::Label] = Box::leak(Box::new([::metrics::Label::new(
        "entity",
        entity.to_owned(),
    )]));
    let key: &'static ::metrics::Key = Box::leak(Box::new(::metrics::Key::from_static_parts(
        FIELDS_REMOVED,
        labels,
    )));
    keys.insert(entity.into(), key);
    key
}

/// A refusal or bypass (the rare path: labels built per call).
pub(crate) fn decision(guard: &'static str, outcome: &'static str, code: &'static str) {
    ::metrics::counter!(DECISIONS, "guard" => guard, "outcome" => outcome, "code" => code)
        .increment(1);
}

/// The decisions every admitted request counts.
#[derive(Debug, Clone, Copy)]
enum Admitted {
    /// The auth layer admitted a token.
    Auth,
    /// An optional auth layer let a request without a token through.
    Anonymous,
    /// A route requirement held.
    Requirement,
}

fn admitted(decision: Admitted) {
    count(
        |bound| bound.admitted(decision),
        || admitted_counter(decision),
    );
}

fn admitted_counter(decision: Admitted) -> ::metrics::Counter {
    match decision {
        Admitted::Auth => ::metrics::counter!(
            "iam_guard_decisions_total",
            "guard" => "auth",
            "outcome" => "allow",
            "code" => ""
        ),
        Admitted::Anonymous => ::metrics::counter!(
            "iam_guard_decisions_total",
            "guard" => "auth",
            "outcome" => "anonymous",
            "code" => ""
        ),
        Admitted::Requirement => ::metrics::counter!(
            "iam_guard_decisions_total",
            "guard" => "requirement",
            "outcome" => "allow",
            "code" => ""
        ),
    }
}

/// A request the auth layer admitted with a token.
pub(crate) fn auth_allowed() {
    admitted(Admitted::Auth);
}

/// A request an optional auth layer let through without a token.
pub(crate) fn auth_anonymous() {
    admitted(Admitted::Anonymous);
}

/// A request whose route requirement held.
pub(crate) fn requirement_allowed() {
    admitted(Admitted::Requirement);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name a helper records, read back through a recorder.
    fn names_recorded(record: impl FnOnce()) -> std::collections::BTreeSet<String> {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        ::metrics::with_local_recorder(&recorder, record);
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, ..)| key.key().name().to_owned())
            .collect()
    }

    #[test]
    fn the_literal_names_are_the_documented_constants() {
        let names = names_recorded(|| {
            builtin_load(Builtin::Claims, CacheLevel::Source);
            builtin_load(Builtin::Catalogue, CacheLevel::Local);
            token_cache(true);
            token_cache(false);
            jwks_fetch(true);
            jwks_fetch(false);
            jwks_unknown_kid_refetch();
            jwks_cooldown_refusal();
            jwks_stale_key_served();
            catalogue_fetch(CatalogueFetchResult::Installed);
            catalogue_fetch(CatalogueFetchResult::NotModified);
            catalogue_fetch(CatalogueFetchResult::Refused);
            catalogue_fetch(CatalogueFetchResult::Error);
            catalogue_stale_served();
            fields_removed("students", 2);
            decision("auth", "deny", "invalid_token");
            auth_allowed();
            auth_anonymous();
            requirement_allowed();
            permission_load("ldap", CacheLevel::Local);
            #[cfg(feature = "redis")]
            {
                replica_message(true);
                replica_subscription_lost();
            }
            #[cfg(feature = "jwks-http")]
            for result in [
                IntrospectionResult::Hit,
                IntrospectionResult::Active,
                IntrospectionResult::Inactive,
                IntrospectionResult::Invalid,
                IntrospectionResult::Error,
            ] {
                introspection(result);
            }
        });
        #[cfg(feature = "redis")]
        let replicas = [REPLICA_MESSAGES, REPLICA_SUBSCRIPTIONS_LOST];
        #[cfg(not(feature = "redis"))]
        let replicas: [&str; 0] = [];
        #[cfg(feature = "jwks-http")]
        let introspection = [INTROSPECTIONS];
        #[cfg(not(feature = "jwks-http"))]
        let introspection: [&str; 0] = [];
        let documented = [
            DECISIONS,
            JWKS_FETCHES,
            JWKS_UNKNOWN_KID_REFETCHES,
            JWKS_COOLDOWN_REFUSALS,
            JWKS_STALE_KEYS_SERVED,
            CATALOGUE_FETCHES,
            CATALOGUE_STALE_SERVED,
            TOKEN_CACHE,
            PERMISSION_LOADS,
            FIELDS_REMOVED,
        ];
        assert_eq!(
            names,
            documented
                .iter()
                .chain(&replicas)
                .chain(&introspection)
                .map(|n| (*n).to_owned())
                .collect(),
            "a counter recorded under a name the docs do not list, or the reverse"
        );
    }

    #[test]
    fn an_entity_key_is_built_once_and_the_map_is_bounded() {
        let a = entity_key("bounded-test-a");
        assert!(std::ptr::eq(a, entity_key("bounded-test-a")));
        assert_eq!(a.name(), FIELDS_REMOVED);
        for i in 0..300 {
            let key = entity_key(&format!("bounded-test-{i}"));
            assert_eq!(key.name(), FIELDS_REMOVED);
        }
        let overflow = entity_key("bounded-test-overflow");
        assert_eq!(
            overflow.labels().next().map(|l| l.value().to_owned()),
            Some("other".to_owned())
        );
    }
}
