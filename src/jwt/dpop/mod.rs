//! DPoP (RFC 9449): access tokens bound to a key the client proves it
//! holds, with a fresh signed proof on every request.
//!
//! A client sends `Authorization: DPoP <token>` and a `DPoP` header with a
//! proof: a JWT of type `dpop+jwt`, signed with its private key, carrying
//! the public key (`jwk`), the request's method (`htm`) and URL (`htu`),
//! when it was made (`iat`), a unique id (`jti`) and the hash of the access
//! token (`ath`). The token names the key in `cnf.jkt` (its RFC 7638
//! thumbprint). A stolen token is useless without the key, and a stolen
//! proof is good for one request, once.
//!
//! Turn it on with [`JwtAuthGuardLayer::dpop`](crate::JwtAuthGuardLayer::dpop):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use iam_guard::{jwt::dpop::Dpop, JwtAuthGuardLayer};
//!
//! let auth = JwtAuthGuardLayer::issuer("https://iam.example.com")?
//!     .audience(["students-api"])
//!     // Bearer tokens still work; DPoP-bound ones must come with a proof.
//!     .dpop(Dpop::allowed().public_url("https://api.example.com")?);
//! # let _ = auth; Ok(()) }
//! ```
//!
//! What is checked, in order (each failure a 401 with
//! `WWW-Authenticate: DPoP error="invalid_dpop_proof"` unless said
//! otherwise):
//!
//! 1. the scheme against the policy: [`Dpop::required`] refuses bearer
//!    tokens; a token with `cnf.jkt` sent as `Bearer` is refused, and so is
//!    a token without it sent as `DPoP` (both `invalid_token`);
//! 2. exactly one `DPoP` header, at most 8 KiB, a compact JWS of strict
//!    base64url segments whose header and payload are JSON objects;
//! 3. `typ` is `dpop+jwt`, `alg` is on the allow-list (asymmetric only:
//!    `none` and MACs cannot be listed), no `crit`, a `jwk` that is a
//!    public key of the `alg`'s type and curve (a private key is refused);
//! 4. the signature, with that key;
//! 5. `jti` present, `htm` equal to the method, `htu` equal to the
//!    request's URL without query and fragment (both normalized; see
//!    [`public_url`](Dpop::public_url) behind a proxy), `iat` within
//!    [`max_age`](Dpop::max_age) and [`leeway`](Dpop::leeway) of now,
//!    `ath` the SHA-256 of the access token;
//! 6. the proof's key thumbprint equal to the token's `cnf.jkt`;
//! 7. with [`nonces`](Dpop::nonces), a current server nonce (else 401
//!    `use_dpop_nonce` with a fresh `DPoP-Nonce` header);
//! 8. the `jti` not seen before with this key within the window (the
//!    [replay cache](replay); shared across replicas with the `redis`
//!    feature). A cache that cannot answer is a 503, never a guess.

mod error;
mod htu;
mod jwk;
pub mod nonce;
mod proof;
pub mod replay;

use std::{fmt, sync::Arc, time::Duration};

use http::{HeaderMap, Method, Uri};

pub use error::DpopError;
pub use nonce::DpopNonces;
pub use replay::{
    DpopReplayCache, LocalReplayCache, ProofId, ReplayAnswer, ReplayCacheError, ReplayFuture,
};

use self::{htu::PublicUrl, proof::ProofRules};
use crate::revocation::unix_now;

/// The default window a proof's `iat` may be old: 60 seconds.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
/// The default clock tolerance either side of the window: 10 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(10);
/// The default maximum size of a proof: 8 KiB.
pub const DEFAULT_MAX_PROOF_LEN: usize = 8 * 1024;

/// The header a proof travels in.
pub const DPOP_HEADER: &str = "dpop";
/// The header a server nonce travels in.
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";

/// An algorithm a DPoP proof may be signed with: asymmetric only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DpopAlgorithm {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// Ed25519 under its RFC 8037 name, `EdDSA`.
    EdDsa,
    /// Ed25519 under its fully specified RFC 9864 name, `Ed25519`, which
    /// newer clients (and Node's WebCrypto key export) use.
    Ed25519,
    /// RSASSA-PSS with SHA-256 (2048 to 8192 bits).
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048 to 8192 bits).
    Rs256,
}

impl DpopAlgorithm {
    /// The registered name (RFC 7518 §3.1, RFC 8037 §3.1).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
            Self::Ed25519 => "Ed25519",
            Self::Ps256 => "PS256",
            Self::Rs256 => "RS256",
        }
    }
}

/// How a guard treats DPoP. See the [module docs](self).
///
/// Builder methods consume `self` and never panic.
#[derive(Clone)]
pub struct Dpop {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    required: bool,
    algorithms: Vec<DpopAlgorithm>,
    /// `algs="…"` of the challenge, built once.
    algs: Box<str>,
    max_age: u64,
    leeway: u64,
    max_len: usize,
    public_url: Option<PublicUrl>,
    replay: Arc<dyn DpopReplayCache>,
    nonces: Option<DpopNonces>,
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        f.debug_struct("Dpop")
            .field("required", &i.required)
            .field("algorithms", &i.algorithms)
            .field("max_age_secs", &i.max_age)
            .field("leeway_secs", &i.leeway)
            .field("public_url", &i.public_url.as_ref().map(PublicUrl::as_str))
            .field("replay", &i.replay)
            .field("nonces", &i.nonces)
            .finish()
    }
}

/// A URL given to [`Dpop::public_url`] that is not a plain absolute
/// `http(s)` URL without query or fragment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the DPoP public URL must be an absolute http(s) URL without query or fragment")]
pub struct InvalidPublicUrl;

impl Dpop {
    /// Bearer and DPoP tokens are both accepted; a DPoP-bound token must
    /// come with a valid proof.
    pub fn allowed() -> Self {
        Self::with(false)
    }

    /// Only DPoP: a bearer token (header or cookie) is refused.
    pub fn required() -> Self {
        Self::with(true)
    }

    fn with(required: bool) -> Self {
        let algorithms = vec![
            DpopAlgorithm::Es256,
            DpopAlgorithm::Es384,
            DpopAlgorithm::EdDsa,
            DpopAlgorithm::Ed25519,
            DpopAlgorithm::Ps256,
            DpopAlgorithm::Rs256,
        ];
        Self {
            inner: Arc::new(Inner {
                required,
                algs: algs_text(&algorithms),
                algorithms,
                max_age: DEFAULT_MAX_AGE.as_secs(),
                leeway: DEFAULT_LEEWAY.as_secs(),
                max_len: DEFAULT_MAX_PROOF_LEN,
                public_url: None,
                replay: Arc::new(LocalReplayCache::default()),
                nonces: None,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// The algorithms a proof may use (default ES256, ES384, EdDSA,
    /// Ed25519, PS256, RS256), named in the challenge's `algs`. An empty list keeps the
    /// current one: a guard that accepts no proof would be `required`
    /// with nothing acceptable.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = DpopAlgorithm>) -> Self {
        let mut list: Vec<DpopAlgorithm> = Vec::new();
        for alg in algorithms {
            if !list.contains(&alg) {
                list.push(alg);
            }
        }
        if !list.is_empty() {
            let inner = self.inner_mut();
            inner.algs = algs_text(&list);
            inner.algorithms = list;
        }
        self
    }

    /// How old a proof's `iat` may be (default 60 s). The replay cache
    /// keeps each proof this long plus the leeway.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.inner_mut().max_age = max_age.as_secs();
        self
    }

    /// Clock tolerance either side of the `iat` window (default 10 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.inner_mut().leeway = leeway.as_secs();
        self
    }

    /// The URL clients address this service by (scheme, host, port, and a
    /// path prefix a proxy strips), which a proof's `htu` is compared
    /// with: this URL followed by the path the guard sees. Without it the
    /// request's own authority (`Host`) over `https` is used: set it
    /// behind a proxy, on plain `http`, or whenever the `Host` header is
    /// not one you control. A guard inside `Router::nest("/api", ..)` sees
    /// paths without `/api`: put the prefix here
    /// (`https://api.example.com/api`).
    ///
    /// # Errors
    ///
    /// [`InvalidPublicUrl`] for anything but an absolute `http(s)` URL
    /// without query or fragment.
    pub fn public_url(mut self, url: &str) -> Result<Self, InvalidPublicUrl> {
        let url = PublicUrl::parse(url).ok_or(InvalidPublicUrl)?;
        self.inner_mut().public_url = Some(url);
        Ok(self)
    }

    /// Where seen proofs are remembered (default: a [`LocalReplayCache`]
    /// of 100,000 entries, this process only).
    pub fn replay_cache(mut self, cache: impl DpopReplayCache) -> Self {
        self.inner_mut().replay = Arc::new(cache);
        self
    }

    /// [`replay_cache`](Self::replay_cache) with a cache already shared.
    pub fn shared_replay_cache(mut self, cache: Arc<dyn DpopReplayCache>) -> Self {
        self.inner_mut().replay = cache;
        self
    }

    /// Requires server nonces (RFC 9449 §9): a proof without a current
    /// one is answered 401 `use_dpop_nonce` with a fresh nonce in
    /// `DPoP-Nonce`, for the client to retry with.
    pub fn nonces(mut self, nonces: DpopNonces) -> Self {
        self.inner_mut().nonces = Some(nonces);
        self
    }

    /// Largest proof accepted (default 8 KiB).
    pub fn max_proof_len(mut self, max: usize) -> Self {
        self.inner_mut().max_len = max;
        self
    }

    /// Whether bearer tokens are refused.
    pub fn is_required(&self) -> bool {
        self.inner.required
    }

    /// The accepted algorithms, space-separated, for `algs="…"`.
    pub(crate) fn algs(&self) -> &str {
        &self.inner.algs
    }

    /// A fresh server nonce, when nonces are on.
    pub(crate) fn fresh_nonce(&self) -> Option<String> {
        self.inner.nonces.as_ref().map(|n| n.issue(unix_now()))
    }

    /// The checks of a token sent with the `DPoP` scheme, up to the replay
    /// cache: a [`ReplayFuture`] comes back when the cache must be
    /// awaited.
    pub(crate) fn check(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        token: &str,
        jkt: Option<&str>,
    ) -> Result<Option<ReplayFuture>, DpopError> {
        let inner = &*self.inner;
        let Some(jkt) = jkt else {
            return Err(DpopError::NotBound);
        };
        let mut proofs = headers.get_all(DPOP_HEADER).iter();
        let proof = match (proofs.next(), proofs.next()) {
            (None, _) => return Err(DpopError::Missing),
            (Some(_), Some(_)) => return Err(DpopError::Multiple),
            (Some(proof), None) => proof.to_str().map_err(|_| DpopError::Malformed)?,
        };
        let url =
            htu::request_url(inner.public_url.as_ref(), uri, headers).ok_or(DpopError::Url)?;
        let now = unix_now();
        let rules = ProofRules {
            algorithms: &inner.algorithms,
            max_age: inner.max_age,
            leeway: inner.leeway,
            max_len: inner.max_len,
        };
        let request = proof::ProofRequest {
            method: method.as_str(),
            url: &url,
            access_token: token,
            now,
        };
        let checked = proof::check(proof, &rules, &request)?;
        if checked.thumbprint != jkt {
            return Err(DpopError::KeyMismatch);
        }
        if let Some(nonces) = &inner.nonces {
            if !checked
                .nonce
                .as_deref()
                .is_some_and(|n| nonces.accepts(n, now))
            {
                return Err(DpopError::NonceRequired);
            }
        }
        // Last, so that only proofs that passed every other check take a
        // place in the cache.
        match inner.replay.first_use(checked.id, checked.until) {
            ReplayAnswer::Ready(Ok(true)) => Ok(None),
            ReplayAnswer::Ready(Ok(false)) => Err(DpopError::Replayed),
            ReplayAnswer::Ready(Err(e)) => {
                tracing::warn!(target: "iam_guard::dpop", error = %e, "DPoP replay cache failed");
                Err(DpopError::ReplayCacheUnavailable)
            }
            ReplayAnswer::Pending(pending) => Ok(Some(pending)),
        }
    }
}

fn algs_text(algorithms: &[DpopAlgorithm]) -> Box<str> {
    algorithms
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(" ")
        .into()
}
