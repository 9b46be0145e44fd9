//! [`JwtAuthGuardLayer`]: the configuration of JwtAuthGuard, set once where
//! the layer is built.

use std::{fmt, sync::Arc, time::Duration};

use http::HeaderName;
use tower_layer::Layer;

use super::{
    issuers::{Issuers, TrustedIssuer},
    service::JwtAuthGuard,
};
#[cfg(feature = "jwks-http")]
use crate::jwt::introspection::Introspector;
use crate::{
    guard::context::Policy,
    jwt::{
        dpop::Dpop,
        secret::SharedSecret,
        token::TokenLocator,
        verify::{Algorithm, TokenValidation, Verifier},
    },
    permissions::source::PermissionSource,
    principal::{ClaimMapping, ClaimPath},
    rejection::{ErrorRenderer, Schemes},
    revocation::Revocations,
};

/// Applies [`JwtAuthGuard`]. See the [module docs](super) for an example.
///
/// Builder methods consume the layer and never panic: a layer that was
/// cloned before it was configured is copied, not shared, by the next
/// builder call.
#[derive(Clone)]
pub struct JwtAuthGuardLayer {
    pub(super) config: Arc<Config>,
}

#[derive(Clone)]
pub(super) struct Config {
    /// The issuers this guard trusts; never empty.
    pub(super) issuers: Issuers,
    pub(super) locator: TokenLocator,
    pub(super) tenant_header: Option<HeaderName>,
    pub(super) optional: bool,
    /// Checked on every admitted request, cached tokens included.
    pub(super) revocations: Option<Revocations>,
    /// DPoP proofs are checked; `None`: the `DPoP` scheme is not read.
    pub(super) dpop: Option<Dpop>,
    /// Opaque tokens (or every token) are introspected.
    #[cfg(feature = "jwks-http")]
    pub(super) introspection: Option<Introspection>,
    /// Shared by the context of every request this layer admits.
    pub(super) policy: Arc<Policy>,
}

impl fmt::Debug for JwtAuthGuardLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &*self.config;
        let mut debug = f.debug_struct("JwtAuthGuardLayer");
        debug
            .field("issuers", &config.issuers)
            .field("locator", &config.locator)
            .field("tenant_header", &config.tenant_header)
            .field("optional", &config.optional)
            .field("revocations", &config.revocations)
            .field("dpop", &config.dpop);
        #[cfg(feature = "jwks-http")]
        debug.field(
            "introspection",
            &config
                .introspection
                .as_ref()
                .map(|i| i.introspector.endpoint()),
        );
        debug.field("policy", &config.policy).finish()
    }
}

impl JwtAuthGuardLayer {
    /// Authenticates with `issuer` (a [`Verifier`] or a
    /// [`TrustedIssuer`]), reading `Authorization: Bearer`. Trust more
    /// issuers with [`trust`](Self::trust).
    pub fn new(issuer: impl Into<TrustedIssuer>) -> Self {
        let policy = Arc::new(Policy::default());
        Self {
            config: Arc::new(Config {
                issuers: Issuers::new(issuer.into(), &policy),
                locator: TokenLocator::default(),
                tenant_header: None,
                optional: false,
                revocations: None,
                dpop: None,
                #[cfg(feature = "jwks-http")]
                introspection: None,
                policy,
            }),
        }
    }

    /// Also trusts `issuer`, with its own keys, rules, claim mapping,
    /// caches and (optionally) permission source; see [`TrustedIssuer`].
    ///
    /// A token is matched to one issuer by the `iss` it claims before any
    /// key is looked up, so a token of one issuer is only ever checked
    /// with that issuer's keys, and a token claiming an issuer that is not
    /// trusted is a 401 `invalid_token` that fetches nothing. An issuer
    /// given twice (the same issuer URL or template) keeps the later
    /// configuration.
    ///
    /// The builder methods that change token rules
    /// ([`audience`](Self::audience), [`algorithms`](Self::algorithms),
    /// [`claims`](Self::claims), …) apply to every issuer trusted when
    /// they are called; configure one issuer alone on its
    /// [`TrustedIssuer`].
    pub fn trust(mut self, issuer: impl Into<TrustedIssuer>) -> Self {
        let config = self.config_mut();
        config.issuers.add(issuer.into(), &config.policy);
        self
    }

    /// Trusts the IAM at `issuer`: its keys come from OIDC discovery
    /// (`{issuer}/.well-known/openid-configuration`, fetched on the first
    /// request or at [`warm_up`](crate::JwksFetcher::warm_up)), tokens must
    /// carry `iss` equal to `issuer`, and RS256 is accepted. Refine with
    /// [`audience`](Self::audience), [`algorithms`](Self::algorithms) and
    /// the other builder methods.
    ///
    /// # Errors
    ///
    /// When `issuer` is not an absolute http(s) URL or the HTTP client
    /// cannot be built.
    #[cfg(feature = "jwks-http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
    pub fn issuer(issuer: &str) -> Result<Self, crate::jwt::source::FetchError> {
        let jwks = crate::JwksFetcher::discover(issuer)?;
        Ok(Self::new(Verifier::new(jwks, TokenValidation::new(issuer))))
    }

    /// Trusts an in-house IAM at `issuer` that signs with `secret` (HS256,
    /// HS384 or HS512): tokens must carry `iss` equal to `issuer` and an
    /// HMAC signature of exactly the secret's algorithm. There is no JWKS:
    /// asymmetric tokens are a 401 and nothing is ever fetched. Refine
    /// with [`audience`](Self::audience) and the other builder methods.
    ///
    /// This is the weaker choice: any holder of the secret can mint
    /// tokens this service accepts. Prefer [`issuer`](Self::issuer) with
    /// asymmetric keys where the IAM offers them; see [`SharedSecret`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use iam_guard::{Algorithm, JwtAuthGuardLayer, SharedSecret};
    ///
    /// # let from_secret_store = vec![7u8; 32];
    /// let secret = SharedSecret::new(Algorithm::HS256, from_secret_store)?;
    /// let auth = JwtAuthGuardLayer::shared_secret("https://auth.internal", secret)
    ///     .audience(["students-api"]);
    /// # let _ = auth; Ok(()) }
    /// ```
    pub fn shared_secret(issuer: &str, secret: SharedSecret) -> Self {
        Self::new(Verifier::with_shared_secret(
            secret,
            TokenValidation::new(issuer),
        ))
    }

    /// Trusts the IdP a [`Preset`](crate::preset::Preset) describes: keys
    /// from its OIDC discovery, its issuer, audience, claim checks and
    /// claim mapping. Refine with the other builder methods as usual.
    ///
    /// # Errors
    ///
    /// When the preset's issuer is not an absolute http(s) URL or the HTTP
    /// client cannot be built.
    #[cfg(feature = "jwks-http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
    pub fn preset(preset: crate::preset::Preset) -> Result<Self, crate::jwt::source::FetchError> {
        Ok(Self::new(TrustedIssuer::preset(preset)?))
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Changes the layer's policy, and so each issuer's.
    fn with_policy(mut self, change: impl FnOnce(&mut Policy)) -> Self {
        let config = self.config_mut();
        change(Arc::make_mut(&mut config.policy));
        config.issuers.repolicy(&config.policy);
        self
    }

    /// Rebuilds every issuer's verifier with changed rules. Key caches are
    /// kept; token caches start empty, so nothing verified under the old
    /// rules survives.
    fn rules(mut self, change: impl Fn(TokenValidation) -> TokenValidation) -> Self {
        let config = self.config_mut();
        config
            .issuers
            .change_all(&config.policy, |issuer| issuer.rules(&change));
        self
    }

    /// Tokens must carry an `aud` that is one of `audiences`.
    pub fn audience<I, A>(self, audiences: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        let audiences: Vec<String> = audiences.into_iter().map(Into::into).collect();
        self.rules(|v| v.audience(audiences.iter().cloned()))
    }

    /// The tenants a `{tenantid}` issuer template accepts; see
    /// [`TokenValidation::tenants`].
    pub fn tenants<I, S>(self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tenants: Vec<String> = tenants.into_iter().map(Into::into).collect();
        self.rules(|v| v.tenants(tenants.iter().cloned()))
    }

    /// A `{tenantid}` issuer template accepts every tenant; see
    /// [`TokenValidation::any_tenant`].
    pub fn any_tenant(self) -> Self {
        self.rules(TokenValidation::any_tenant)
    }

    /// The accepted signature algorithms (default RS256); HMAC algorithms
    /// are dropped, see [`TokenValidation::algorithms`].
    pub fn algorithms(self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        let algorithms: Vec<Algorithm> = algorithms.into_iter().collect();
        self.rules(|v| v.algorithms(algorithms.iter().copied()))
    }

    /// Clock-skew allowance for `exp` and `nbf` (default 60 s).
    pub fn leeway(self, leeway: Duration) -> Self {
        self.rules(|v| v.leeway(leeway))
    }

    /// Require the RFC 9068 access-token profile (`typ: at+jwt`).
    pub fn access_token_profile(self) -> Self {
        self.rules(TokenValidation::access_token_profile)
    }

    /// The claim at `claim` must be (or, for an array, hold) one of
    /// `allowed`; each call adds a check. See
    /// [`TokenValidation::claim_equals`].
    pub fn claim_equals<I, S>(self, claim: impl Into<ClaimPath>, allowed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let claim = claim.into();
        let allowed: Vec<String> = allowed.into_iter().map(Into::into).collect();
        self.rules(|v| v.claim_equals(claim.clone(), allowed.iter().cloned()))
    }

    /// Run without `aud`: the claim at `claim` must be one of
    /// `client_ids` instead (AWS Cognito access tokens carry `client_id`
    /// and no `aud`). See [`TokenValidation::client_id_instead_of_audience`].
    pub fn client_id_instead_of_audience<I, S>(
        self,
        claim: impl Into<ClaimPath>,
        client_ids: I,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let claim = claim.into();
        let client_ids: Vec<String> = client_ids.into_iter().map(Into::into).collect();
        self.rules(|v| v.client_id_instead_of_audience(claim.clone(), client_ids.iter().cloned()))
    }

    /// Which claims carry user, tenant, roles and so on.
    pub fn claims(mut self, mapping: ClaimMapping) -> Self {
        let config = self.config_mut();
        config
            .issuers
            .change_all(&config.policy, |issuer| issuer.claims(mapping.clone()));
        self
    }

    /// Also accept the token from cookie `name`. A request carrying both a
    /// bearer token and the cookie is a 400.
    pub fn cookie(mut self, name: &str) -> Self {
        self.config_mut().locator.set_cookie(name);
        self
    }

    /// Do not read `Authorization` (cookie-only sessions).
    pub fn no_bearer(mut self) -> Self {
        self.config_mut().locator.set_bearer(false);
        self
    }

    /// Require `X-XSRF-TOKEN` equal to the `xsrf_token` claim for cookie
    /// tokens on unsafe methods (default on; only applies with a cookie).
    pub fn xsrf(mut self, on: bool) -> Self {
        self.config_mut().locator.set_xsrf(on);
        self
    }

    /// Maximum token length in bytes (default 8 KiB); longer is a 401
    /// without parsing.
    pub fn max_token_len(mut self, max: usize) -> Self {
        self.config_mut().locator.set_max_len(max);
        self
    }

    /// Require an active-tenant header such as `x-org`: missing or empty
    /// is a 400 `TENANT_REQUIRED`, sent twice a 400 `invalid_request`, a
    /// tenant that is not among the caller's memberships a 403
    /// `TENANT_NOT_PERMITTED`.
    pub fn tenant_header(mut self, name: HeaderName) -> Self {
        self.config_mut().tenant_header = Some(name);
        self
    }

    /// How refusals are rendered (default JSON) — by this layer and by
    /// every guard and extractor behind it. A gRPC call (`content-type:
    /// application/grpc…`) is answered as a gRPC status instead, unless
    /// the renderer is [custom](ErrorRenderer::custom): see
    /// [`ErrorRenderer`].
    pub fn error_renderer(self, renderer: ErrorRenderer) -> Self {
        self.with_policy(|p| p.renderer = renderer)
    }

    /// Where the caller's permissions come from. Each admitted request gets
    /// a lazy, request-scoped cell: the source is called at most once per
    /// request, and only if a guard or extractor asks. An issuer with a
    /// source of its own ([`TrustedIssuer::permissions`]) uses that one.
    pub fn permissions(self, source: impl PermissionSource) -> Self {
        let source: Arc<dyn PermissionSource> = Arc::new(source);
        self.with_policy(|p| p.source = Some(source))
    }

    /// Let callers whose token flags them as super users (the
    /// `is_super_user` claim by default) pass every requirement and field
    /// guard, and see every record. Off by default; every use is an audit
    /// event.
    pub fn super_user_bypass(self, on: bool) -> Self {
        self.with_policy(|p| p.super_user_bypass = on)
    }

    /// How far the [`RecordAccess`](crate::RecordAccess) of the requests
    /// this layer admits reaches. Set once here, it costs a request
    /// nothing to carry; a request that carries a policy of its own (an
    /// `axum::Extension(policy)` on a route, say) uses that one instead.
    /// Without either, the default policy applies.
    pub fn record_access(self, policy: crate::RecordAccessPolicy) -> Self {
        self.with_policy(|p| p.record_access = Some(policy))
    }

    /// Let requests without a bearer token through as anonymous (handlers
    /// take `Option<Principal>`; requirement guards still answer 401). An
    /// `Authorization` header with another scheme (`Basic`, say) counts as
    /// no token here: it is not ours to judge. A bearer token that is sent
    /// must still be valid.
    pub fn optional(mut self) -> Self {
        self.config_mut().optional = true;
        self
    }

    /// Refuse revoked tokens: every admitted request, a cached token's too,
    /// is checked against `revocations` (see the
    /// [`revocation`](crate::revocation) module). A revoked token is a 401
    /// `invalid_token`; while the view cannot be trusted (a replica cut off
    /// from Redis past its outage window) every token is a 503
    /// `IAM_UNAVAILABLE`.
    pub fn revocations(mut self, revocations: Revocations) -> Self {
        self.config_mut().revocations = Some(revocations);
        self
    }

    /// Also accepts opaque access tokens, asking `introspector` (RFC 7662)
    /// what they are: a token that is not shaped like a JWT (three
    /// dot-separated segments) is introspected, a JWT is verified locally
    /// as before. The answer becomes the same [`Principal`](crate::Principal)
    /// through the introspector's claim mapping, with the permission
    /// source of the trusted issuer named like the introspector's issuer
    /// (else the first); revocations, DPoP and certificate bindings apply
    /// to it as to a JWT. Answers are cached (see
    /// [`Introspector`](crate::jwt::introspection::Introspector)); an IAM
    /// that cannot answer is a 503, never a guess.
    #[cfg(feature = "jwks-http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
    pub fn introspection(mut self, introspector: Introspector) -> Self {
        self.config_mut().introspection = Some(Introspection {
            introspector,
            all_tokens: false,
        });
        self
    }

    /// A guard for an IAM that issues opaque tokens only: every token, JWT
    /// shaped or not, is introspected with `introspector` and none is
    /// verified locally. Configure the permission source and the rest as
    /// for any guard.
    #[cfg(feature = "jwks-http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks-http")))]
    pub fn introspect_only(introspector: Introspector) -> Self {
        // The trusted issuer holds the policy and permission source; with
        // no keys it could verify nothing, and is never asked to.
        let issuer = Verifier::new(
            crate::JwksFetcher::no_keys(),
            TokenValidation::new(introspector.issuer()),
        );
        let mut layer = Self::new(issuer);
        layer.config_mut().introspection = Some(Introspection {
            introspector,
            all_tokens: true,
        });
        layer
    }

    /// Accepts DPoP-bound tokens (RFC 9449): `Authorization: DPoP <token>`
    /// with a `DPoP` proof, checked as the [`dpop`](crate::jwt::dpop)
    /// module describes. [`Dpop::allowed`] keeps bearer tokens working
    /// beside them, [`Dpop::required`] refuses them. Either way a token
    /// bound to a key (`cnf.jkt`) is only accepted with a valid proof of
    /// that key, and challenges name the `DPoP` scheme and its algorithms.
    ///
    /// Without this, the `DPoP` scheme is not read (401, or anonymous to
    /// an [`optional`](Self::optional) guard) and a DPoP-bound token sent
    /// as `Bearer` is still refused: a bound token is never accepted
    /// without its proof.
    pub fn dpop(mut self, dpop: Dpop) -> Self {
        let bearer = !dpop.is_required();
        let algs: std::sync::Arc<str> = dpop.algs().into();
        let config = self.config_mut();
        config.locator.set_dpop(true);
        config.dpop = Some(dpop);
        self.with_policy(|p| {
            p.schemes = Some(Schemes {
                bearer,
                dpop_algs: Some(algs),
            })
        })
    }

    /// How many bytes of a refused request's unread body are read and
    /// discarded so the connection can carry the next request (default
    /// 64 KiB; 0 closes the connection after every refusal with a body).
    pub fn drain_limit(self, bytes: usize) -> Self {
        self.with_policy(|p| p.drain_limit = bytes)
    }

    /// The verifier of the first issuer, for metrics and tests.
    pub fn verifier(&self) -> &Verifier {
        self.config.issuers.first().verifier()
    }

    /// Every trusted issuer, in the order they were added.
    pub fn issuers(&self) -> impl ExactSizeIterator<Item = &TrustedIssuer> {
        self.config.issuers.iter()
    }

    // RFC 9728 protected resource metadata.

    /// A [protected resource metadata](crate::resource_metadata) document
    /// for `resource` (this service's resource identifier, an `https`
    /// URL), prefilled from this guard: its issuers as
    /// `authorization_servers` (a `{tenantid}` template as each tenant it
    /// allows) and `["header"]` as
    /// `bearer_methods_supported` (nothing when
    /// [`no_bearer`](Self::no_bearer) is set). The token
    /// [`cookie`](Self::cookie) is not listed: RFC 9728 names only the
    /// RFC 6750 methods (`header`, `body`, `query`), and a cookie is a
    /// browser session, not a way an OAuth client sends its token. With
    /// [`dpop`](Self::dpop), `dpop_signing_alg_values_supported` and
    /// `dpop_bound_access_tokens_required` say how. Certificate-bound
    /// tokens depend on your TLS acceptor, so
    /// `tls_client_certificate_bound_access_tokens` is yours to set. Add
    /// `scopes_supported` and the rest, then
    /// [`build`](crate::resource_metadata::ProtectedResourceMetadataBuilder::build);
    /// see the [module docs](crate::resource_metadata) for an example.
    pub fn protected_resource_metadata(
        &self,
        resource: &str,
    ) -> crate::resource_metadata::ProtectedResourceMetadataBuilder {
        let bearer: &[&str] = if self.config.locator.reads_bearer() {
            &["header"]
        } else {
            &[]
        };
        let metadata = crate::ProtectedResourceMetadata::builder(resource)
            .authorization_servers(self.issuer_urls())
            .bearer_methods_supported(bearer.iter().copied());
        match &self.config.dpop {
            Some(dpop) => metadata
                .dpop_signing_alg_values_supported(dpop.algs().split(' '))
                .dpop_bound_access_tokens_required(dpop.is_required()),
            None => metadata,
        }
    }

    /// Name `url` in every `WWW-Authenticate` challenge this layer sends,
    /// and the guards and extractors behind it send, as
    /// `resource_metadata="<url>"` (RFC 9728 §5.1): a client that gets a
    /// 401 (`Bearer resource_metadata="…"` when it sent no token) or a 403
    /// learns where the metadata document is, and from it which
    /// authorization server to ask. Off by default; challenges are then
    /// `Bearer`, `Bearer error="invalid_token"` and so on, unchanged.
    /// Usually [`ProtectedResourceMetadata::metadata_url`](crate::ProtectedResourceMetadata::metadata_url).
    pub fn resource_metadata_url(self, url: crate::resource_metadata::ResourceMetadataUrl) -> Self {
        self.with_policy(|p| p.resource_metadata = Some(url))
    }

    /// The issuers this guard trusts, as published in its protected
    /// resource metadata: every one, since a client may get its token from
    /// any of them; a template as each tenant it allows (one open to any
    /// tenant cannot be listed).
    pub(crate) fn issuer_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = Vec::new();
        for issuer in self.config.issuers.iter() {
            for url in issuer.verifier().validation().accepted_issuers() {
                if !urls.contains(&url) {
                    urls.push(url);
                }
            }
        }
        urls
    }
}

/// Which tokens a guard introspects, and with what.
#[cfg(feature = "jwks-http")]
#[derive(Debug, Clone)]
pub(super) struct Introspection {
    pub(super) introspector: Introspector,
    /// Every token, not only those that are not shaped like a JWT.
    all_tokens: bool,
}

#[cfg(feature = "jwks-http")]
impl Introspection {
    /// Whether `token` goes to the IAM rather than to local verification.
    pub(super) fn takes(&self, token: &str) -> bool {
        // A JWS compact serialization has exactly two dots; an opaque
        // token (random base64url, a UUID, a hex string) has none or
        // some other count. A token that merely looks like a JWT is
        // verified locally and refused there if it is not one.
        self.all_tokens || !is_jws_shaped(token)
    }
}

/// Exactly two dots. `str::find` runs memchr over the token: this is on
/// every request of a guard that introspects, cached JWTs included.
#[cfg(feature = "jwks-http")]
fn is_jws_shaped(token: &str) -> bool {
    let Some(first) = token.find('.') else {
        return false;
    };
    let rest = &token[first + 1..];
    match rest.find('.') {
        Some(second) => !rest[second + 1..].contains('.'),
        None => false,
    }
}

impl<S> Layer<S> for JwtAuthGuardLayer {
    type Service = JwtAuthGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuthGuard::from_config(inner, self.config.clone())
    }
}

#[cfg(all(test, feature = "jwks-http"))]
mod tests {
    use super::is_jws_shaped;

    #[test]
    fn only_three_segments_are_jws_shaped() {
        for jws in ["a.b.c", "eyJ.eyJ.sig", "..", "a..c"] {
            assert!(is_jws_shaped(jws), "{jws}");
        }
        for other in [
            "",
            "opaque",
            "a.b",
            "a.b.c.d",
            "a.b.c.d.e",
            ".",
            "2YotnFZFEjr1zCsicMWpAA",
        ] {
            assert!(!is_jws_shaped(other), "{other}");
        }
    }
}
