//! [`TrustedIssuer`]: one issuer a [`JwtAuthGuard`](super::JwtAuthGuard)
//! trusts, and the set of them the guard chooses from by the token's `iss`.
//!
//! Each issuer is a world of its own: its discovery document and JWKS
//! (with their own cooldown, negative-kid cache and stale-if-error
//! window), algorithms, audiences, claim checks, claim mapping,
//! verified-token cache and, optionally, permission source. A token is
//! matched to one issuer by the `iss` it claims before any key is looked
//! up or fetched; a token claiming an issuer that is not configured is a
//! 401 that costs no fetch anywhere, and no URL found in a token is ever
//! fetched. A kid-spray or an outage at one issuer therefore touches no
//! other issuer's keys.

use std::{collections::HashMap, fmt, sync::Arc};

use crate::{
    guard::context::Policy,
    jwt::{
        issuer::peek,
        secret::SharedSecret,
        verify::{
            Algorithm, Attempt, IssuerClaim, TokenValidation, VerifiedToken, Verifier, VerifyError,
        },
    },
    metrics,
    permissions::source::PermissionSource,
    principal::{ClaimMapping, ClaimPath},
};

/// One issuer a guard trusts: its [`Verifier`] and, optionally, a
/// permission source of its own (else the layer's
/// [`permissions`](super::JwtAuthGuardLayer::permissions) apply).
///
/// Give the first to [`JwtAuthGuardLayer::new`](super::JwtAuthGuardLayer::new)
/// and add more with [`trust`](super::JwtAuthGuardLayer::trust):
///
/// ```
/// # fn build() -> Result<(), Box<dyn std::error::Error>> {
/// use iam_guard::{preset::Preset, CatalogueSource, JwtAuthGuardLayer, TrustedIssuer};
/// # let catalogue = iam_guard::Catalogue::students_fixture();
///
/// // Moving from an in-house IAM to Keycloak: both are trusted meanwhile,
/// // each with its own keys, rules and claim mapping.
/// let old = TrustedIssuer::preset(Preset::in_house("https://auth.school.example", "students"))?
///     .audience(["students-api"]);
/// let new = TrustedIssuer::preset(Preset::keycloak(
///     "https://sso.school.example/realms/school",
///     "students-api",
/// ))?;
/// let auth = JwtAuthGuardLayer::new(old)
///     .trust(new)
///     .permissions(CatalogueSource::new(catalogue));
/// # let _ = auth; Ok(()) }
/// # build().unwrap();
/// ```
#[derive(Clone)]
pub struct TrustedIssuer {
    verifier: Verifier,
    source: Option<Arc<dyn PermissionSource>>,
}

impl fmt::Debug for TrustedIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedIssuer")
            .field("issuer", &self.issuer())
            .field("verifier", &self.verifier)
            .field("own_permissions", &self.source.is_some())
            .finish()
    }
}

impl From<Verifier> for TrustedIssuer {
    fn from(verifier: Verifier) -> Self {
        Self::new(verifier)
    }
}

impl TrustedIssuer {
    /// The issuer `verifier` checks tokens for, with its keys and rules.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            source: None,
        }
    }

    /// The IAM at `issuer`, keys found through its OIDC discovery, RS256
    /// accepted; refine with the builder methods. A `{tenantid}` template
    /// has no discovery document of its own: build its verifier with
    /// [`JwksFetcherBuilder::discovery_document`](crate::jwt::jwks::JwksFetcherBuilder::discovery_document)
    /// or use a preset.
    ///
    /// # Errors
    ///
    /// When `issuer` is not an absolute http(s) URL, is a template, or the
    /// HTTP client cannot be built.
    #[cfg(feature = "jwks-http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
    pub fn discover(issuer: &str) -> Result<Self, crate::jwt::source::FetchError> {
        let jwks = crate::JwksFetcher::discover(issuer)?;
        Ok(Self::new(Verifier::new(jwks, TokenValidation::new(issuer))))
    }

    /// The IdP a [`Preset`](crate::preset::Preset) describes, keys found
    /// through its discovery document.
    ///
    /// # Errors
    ///
    /// When the preset's discovery URL is not an absolute http(s) URL or
    /// the HTTP client cannot be built.
    #[cfg(feature = "jwks-http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
    pub fn preset(preset: crate::preset::Preset) -> Result<Self, crate::jwt::source::FetchError> {
        let jwks = crate::JwksFetcher::builder()
            .discovery_document(&preset.discovery_url(), preset.issuer_url())?;
        Ok(Self::new(preset.verifier(jwks)))
    }

    /// An in-house IAM at `issuer` signing with `secret`; see
    /// [`JwtAuthGuardLayer::shared_secret`](super::JwtAuthGuardLayer::shared_secret).
    pub fn shared_secret(issuer: &str, secret: SharedSecret) -> Self {
        Self::new(Verifier::with_shared_secret(
            secret,
            TokenValidation::new(issuer),
        ))
    }

    /// Where the permissions of this issuer's callers come from, instead of
    /// the layer's source. Callers of different issuers may share user ids
    /// (`sub` is only unique per issuer): a source that caches by user
    /// should not be shared by issuers that do not share users.
    pub fn permissions(mut self, source: impl PermissionSource) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The issuer as configured (the template itself for a template).
    pub fn issuer(&self) -> &str {
        self.verifier.validation().issuer()
    }

    /// The verifier: keys, rules, claim mapping and token cache.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Rebuilds the verifier with changed rules, keeping its key cache;
    /// its token cache starts empty.
    pub(super) fn rules(mut self, change: impl FnOnce(TokenValidation) -> TokenValidation) -> Self {
        let validation = change(self.verifier.validation().clone());
        self.verifier = self
            .verifier
            .with_rules(validation, self.verifier.claim_mapping().clone());
        self
    }

    /// Tokens must carry an `aud` that is one of `audiences`.
    pub fn audience<I, A>(self, audiences: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.rules(|v| v.audience(audiences))
    }

    /// The accepted asymmetric algorithms (default RS256).
    pub fn algorithms(self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.rules(|v| v.algorithms(algorithms))
    }

    /// The claim at `claim` must be (or, for an array, hold) one of
    /// `allowed`; see [`TokenValidation::claim_equals`].
    pub fn claim_equals<I, S>(self, claim: impl Into<ClaimPath>, allowed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let claim = claim.into();
        self.rules(|v| v.claim_equals(claim, allowed))
    }

    /// The tenants a `{tenantid}` template accepts; see
    /// [`TokenValidation::tenants`].
    pub fn tenants<I, S>(self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rules(|v| v.tenants(tenants))
    }

    /// A `{tenantid}` template accepts every tenant; see
    /// [`TokenValidation::any_tenant`].
    pub fn any_tenant(self) -> Self {
        self.rules(TokenValidation::any_tenant)
    }

    /// Which claims of this issuer's tokens carry user, tenant, roles and
    /// so on.
    pub fn claims(mut self, mapping: ClaimMapping) -> Self {
        let validation = self.verifier.validation().clone();
        self.verifier = self.verifier.with_rules(validation, mapping);
        self
    }
}

/// A trusted issuer and the policy its requests are admitted with (the
/// layer's, with the issuer's own source when it has one).
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) trusted: TrustedIssuer,
    pub(super) policy: Arc<Policy>,
}

/// The issuers of one guard, in the order they were added; never empty.
#[derive(Clone)]
pub(super) struct Issuers {
    entries: Vec<Entry>,
    /// Exact issuer → index.
    exact: HashMap<Box<str>, usize>,
    /// Indexes of templates, tried in order.
    templates: Vec<usize>,
    /// Whether some template reads its tenant from a claim other than the
    /// top-level `tid`, so an unverified payload must be read whole.
    full_peek: bool,
}

impl fmt::Debug for Issuers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.trusted))
            .finish()
    }
}

impl Issuers {
    pub(super) fn new(first: TrustedIssuer, policy: &Arc<Policy>) -> Self {
        let mut issuers = Self {
            entries: Vec::new(),
            exact: HashMap::new(),
            templates: Vec::new(),
            full_peek: false,
        };
        issuers.add(first, policy);
        issuers
    }

    /// Adds `trusted`; one that names the same issuer as an earlier one
    /// replaces it, so every `iss` selects exactly one configuration.
    pub(super) fn add(&mut self, trusted: TrustedIssuer, policy: &Arc<Policy>) {
        let entry = Entry {
            policy: policy_for(&trusted, policy),
            trusted,
        };
        match self
            .entries
            .iter()
            .position(|e| e.trusted.issuer() == entry.trusted.issuer())
        {
            Some(i) => self.entries[i] = entry,
            None => self.entries.push(entry),
        }
        self.index();
    }

    /// Applies `change` to every issuer.
    pub(super) fn change_all(
        &mut self,
        policy: &Arc<Policy>,
        change: impl Fn(TrustedIssuer) -> TrustedIssuer,
    ) {
        for entry in &mut self.entries {
            entry.trusted = change(entry.trusted.clone());
        }
        self.repolicy(policy);
        self.index();
    }

    /// Rederives each issuer's policy after the layer's changed.
    pub(super) fn repolicy(&mut self, policy: &Arc<Policy>) {
        for entry in &mut self.entries {
            entry.policy = policy_for(&entry.trusted, policy);
        }
    }

    fn index(&mut self) {
        self.exact.clear();
        self.templates.clear();
        self.full_peek = false;
        for (i, entry) in self.entries.iter().enumerate() {
            let pattern = entry.trusted.verifier.validation().issuer_pattern();
            if pattern.is_template() {
                self.templates.push(i);
                self.full_peek |= pattern.needs_full_peek();
            } else {
                self.exact.insert(pattern.as_str().into(), i);
            }
        }
    }

    pub(super) fn first(&self) -> &TrustedIssuer {
        &self.entries[0].trusted
    }

    pub(super) fn iter(&self) -> impl ExactSizeIterator<Item = &TrustedIssuer> {
        self.entries.iter().map(|e| &e.trusted)
    }

    pub(super) fn entry(&self, index: usize) -> &Entry {
        &self.entries[index]
    }

    /// The index of the issuer trusted under `issuer`, or the first: an
    /// introspected token is this issuer's, with its policy and source.
    #[cfg(feature = "jwks-http")]
    pub(super) fn index_of(&self, issuer: &str) -> usize {
        if let [_] = self.entries.as_slice() {
            return 0;
        }
        self.entries
            .iter()
            .position(|e| e.trusted.issuer() == issuer)
            .unwrap_or(0)
    }

    /// The cached verification of `token` (its bytes as sent) and the
    /// index of its issuer. A repeat token is found in its issuer's cache
    /// without reading the payload: a few hash lookups are cheaper than a
    /// base64 and JSON pass over a kilobyte. Records one hit or miss.
    pub(super) fn cached(&self, token: &[u8]) -> Option<(usize, Arc<VerifiedToken>)> {
        if let [only] = self.entries.as_slice() {
            return only.trusted.verifier.cached(token).map(|hit| (0, hit));
        }
        let hit = self.entries.iter().enumerate().find_map(|(i, entry)| {
            entry
                .trusted
                .verifier
                .cached_unrecorded(token)
                .map(|hit| (i, hit))
        });
        metrics::token_cache(hit.is_some());
        hit
    }

    /// Verifies a token [`cached`](Self::cached) did not find, if its key
    /// is cached, without awaiting; returns the index of the issuer it
    /// belongs to.
    pub(super) fn verify_uncached(&self, token: &str) -> Result<(usize, Attempt), VerifyError> {
        if let [only] = self.entries.as_slice() {
            return only
                .trusted
                .verifier
                .verify_uncached(token, IssuerClaim::Unchecked)
                .map(|a| (0, a));
        }
        let index = self.select(token)?;
        self.entries[index]
            .trusted
            .verifier
            .verify_uncached(token, IssuerClaim::Matched)
            .map(|a| (index, a))
    }

    /// The issuer whose keys may verify `token`, by the `iss` (and, for a
    /// template, the tenant) it claims.
    fn select(&self, token: &str) -> Result<usize, VerifyError> {
        let peeked = peek(token, self.full_peek)?;
        if let Some(&i) = peeked.iss.as_deref().and_then(|iss| self.exact.get(iss)) {
            return Ok(i);
        }
        self.templates
            .iter()
            .copied()
            .find(|&i| {
                self.entries[i]
                    .trusted
                    .verifier
                    .validation()
                    .issuer_pattern()
                    .admits_peeked(&peeked)
            })
            .ok_or_else(|| peeked.refusal())
    }
}

fn policy_for(trusted: &TrustedIssuer, layer: &Arc<Policy>) -> Arc<Policy> {
    match &trusted.source {
        None => layer.clone(),
        Some(source) => {
            let mut policy = (**layer).clone();
            policy.source = Some(source.clone());
            Arc::new(policy)
        }
    }
}
