//! The counters every admitted request increments, bound once to the
//! recorder: see [`bind_request_counters`].

use std::sync::OnceLock;

use metrics::Counter;

use super::{
    admitted_counter, filtered_counter, load_counter_of, token_cache_counter, Admitted, Builtin,
    CacheLevel, FilterPass,
};

/// The handles, from the recorder that was current when they were bound.
pub(super) struct RequestCounters {
    auth: Counter,
    anonymous: Counter,
    requirement: Counter,
    token_hit: Counter,
    token_miss: Counter,
    scanned: Counter,
    serialized: Counter,
    /// By [`Builtin::index`], then [`CacheLevel::index`].
    loads: Vec<[Counter; 3]>,
}

static BOUND: OnceLock<RequestCounters> = OnceLock::new();

/// The bound handles, once [`bind_request_counters`] ran.
pub(super) fn counters() -> Option<&'static RequestCounters> {
    BOUND.get()
}

impl RequestCounters {
    fn resolve() -> Self {
        Self {
            auth: admitted_counter(Admitted::Auth),
            anonymous: admitted_counter(Admitted::Anonymous),
            requirement: admitted_counter(Admitted::Requirement),
            token_hit: token_cache_counter(true),
            token_miss: token_cache_counter(false),
            scanned: filtered_counter(FilterPass::Scanned),
            serialized: filtered_counter(FilterPass::Serialized),
            loads: Builtin::ALL
                .iter()
                .map(|&source| CacheLevel::ALL.map(|level| load_counter_of(source, level)))
                .collect(),
        }
    }

    pub(super) fn admitted(&self, decision: Admitted) -> &Counter {
        match decision {
            Admitted::Auth => &self.auth,
            Admitted::Anonymous => &self.anonymous,
            Admitted::Requirement => &self.requirement,
        }
    }

    pub(super) fn token_cache(&self, hit: bool) -> &Counter {
        if hit {
            &self.token_hit
        } else {
            &self.token_miss
        }
    }

    pub(super) fn filtered(&self, pass: FilterPass) -> &Counter {
        match pass {
            FilterPass::Scanned => &self.scanned,
            FilterPass::Serialized => &self.serialized,
        }
    }

    pub(super) fn load(&self, source: Builtin, level: CacheLevel) -> &Counter {
        &self.loads[source.index()][level.index()]
    }
}

/// Binds the counters every admitted request increments to the recorder
/// installed now, once, for the life of the process. Returns `false` (and
/// changes nothing) when they were bound already.
///
/// By default each increment asks the current recorder for its counter,
/// which for a registry-backed exporter such as
/// `metrics-exporter-prometheus` is a lookup of the key in its registry:
/// about 550 to 1,150 instructions each, and a request through the whole
/// stack counts five of them. Bound, each is an atomic add on a handle kept
/// here. Call it once, right after installing the global recorder:
///
/// ```
/// # fn install_your_recorder() {}
/// install_your_recorder(); // metrics_exporter_prometheus::PrometheusBuilder::install_recorder(), say
/// iam_guard::metrics::bind_request_counters();
/// ```
///
/// What is bound: the `allow` decisions of the auth and requirement guards
/// and the optional guard's `anonymous` ones ([`DECISIONS`](super::DECISIONS)),
/// [`TOKEN_CACHE`](super::TOKEN_CACHE) hits and misses,
/// [`PERMISSION_LOADS`](super::PERMISSION_LOADS) of the sources this crate
/// ships, and [`FILTERED_RESPONSES`](super::FILTERED_RESPONSES). Refusals,
/// [`FIELDS_REMOVED`](super::FIELDS_REMOVED) and the rest keep asking the
/// current recorder each time.
///
/// Bound counters stay with the recorder that was current when this ran:
/// a recorder installed afterwards, or a thread-local one a test sets
/// (`metrics::with_local_recorder`), does not see them. Without a recorder
/// at all they are bound to nothing, for good. So bind in the application
/// after its recorder, never in a library or in tests that swap recorders.
pub fn bind_request_counters() -> bool {
    let mut bound_now = false;
    BOUND.get_or_init(|| {
        bound_now = true;
        RequestCounters::resolve()
    });
    bound_now
}
