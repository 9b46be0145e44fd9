//! [`TokenValidation`], what a valid token must look like, and
//! [`VerifyError`], why one was refused. Both are re-exported from
//! [`verify`](super::verify), whose module docs list every check in order.

use std::time::Duration;

use super::{
    algorithm::Algorithm,
    claim_check::{CheckKind, ClaimCheck},
    issuer::{IssuerPattern, Tenants},
    verify::DEFAULT_LEEWAY,
};
use crate::principal::ClaimPath;

/// What a valid token must look like. See the [module docs](super::verify)
/// for what is checked.
///
/// ```
/// use iam_guard::{Algorithm, TokenValidation};
///
/// let validation = TokenValidation::new("https://iam.example.com")
///     .audience(["students-api"])
///     .algorithms([Algorithm::RS256, Algorithm::ES256])
///     .access_token_profile()
///     .claim_equals("azp", ["students-web"]);
/// # let _ = validation;
/// ```
#[derive(Debug, Clone)]
pub struct TokenValidation {
    pub(super) issuer: IssuerPattern,
    pub(super) audiences: Vec<String>,
    pub(super) algorithms: Vec<Algorithm>,
    pub(super) leeway: Duration,
    pub(super) at_jwt: bool,
    pub(super) required_claims: Vec<String>,
    pub(super) claim_checks: Vec<ClaimCheck>,
}

impl TokenValidation {
    /// Tokens must carry `iss` equal to `issuer`, byte for byte.
    ///
    /// An issuer holding `{tenantid}` is a multi-tenant template
    /// (`https://login.microsoftonline.com/{tenantid}/v2.0`): a token's
    /// `iss` must be the template filled with the token's own `tid`, and
    /// that tenant must be allowed with [`tenants`](Self::tenants) or
    /// [`any_tenant`](Self::any_tenant). A template with neither accepts
    /// no token.
    ///
    /// ```
    /// use iam_guard::TokenValidation;
    ///
    /// let validation =
    ///     TokenValidation::new("https://login.microsoftonline.com/{tenantid}/v2.0")
    ///         .tenants(["72f988bf-86f1-41af-91ab-2d7cd011db47"])
    ///         .audience(["api://students"]);
    /// assert!(validation.is_template());
    /// ```
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: IssuerPattern::new(issuer.into()),
            audiences: Vec::new(),
            algorithms: vec![Algorithm::RS256],
            leeway: DEFAULT_LEEWAY,
            at_jwt: false,
            required_claims: Vec::new(),
            claim_checks: Vec::new(),
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

    /// The accepted asymmetric signature algorithms (default RS256). HMAC
    /// algorithms are dropped: a shared secret has no place in a public
    /// JWKS. HMAC is enabled only by configuring a [`SharedSecret`](super::secret::SharedSecret)
    /// ([`VerifierBuilder::shared_secret`](super::verify::VerifierBuilder::shared_secret),
    /// [`Verifier::with_shared_secret`](super::verify::Verifier::with_shared_secret)), which allows exactly its own
    /// algorithm.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().filter(|a| !a.is_hmac()).collect();
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

    /// The claim at `claim` (a name or a path such as `"ext.token_use"`)
    /// must be a string equal to one of `allowed`, or an array holding at
    /// least one such string; comparison is exact and case-sensitive.
    /// Each call adds a check, and every check must pass. A token whose
    /// claim is missing, of another shape or not allowed is a 401
    /// `invalid_token` ([`VerifyError::ClaimValue`](super::verify::VerifyError::ClaimValue)) naming the claim,
    /// never its value. An empty `allowed` refuses every token.
    ///
    /// ```
    /// use iam_guard::TokenValidation;
    ///
    /// // Only access tokens, only from this tenant.
    /// let validation = TokenValidation::new("https://login.example.com/t1/v2.0")
    ///     .audience(["api://students"])
    ///     .claim_equals("tid", ["t1"])
    ///     .claim_equals("ext.token_use", ["access"]);
    /// # let _ = validation;
    /// ```
    pub fn claim_equals<I, S>(mut self, claim: impl Into<ClaimPath>, allowed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.claim_checks
            .push(ClaimCheck::new(claim.into(), allowed, CheckKind::Equals));
        self
    }

    /// The explicit way to run without `aud`, for IdPs whose access tokens
    /// name the client instead (AWS Cognito access tokens carry no `aud`,
    /// but `client_id`): the claim at `claim` must equal one of
    /// `client_ids`, matched as in [`claim_equals`](Self::claim_equals).
    ///
    /// With no [`audience`](Self::audience) configured, `aud` is neither
    /// required nor checked. If audiences are configured as well, both
    /// checks apply: `aud` is still required and must be one of them.
    ///
    /// ```
    /// use iam_guard::TokenValidation;
    ///
    /// let validation = TokenValidation::new(
    ///     "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example",
    /// )
    /// .client_id_instead_of_audience("client_id", ["4f1b2c3d5e6f7a8b9c0d1e2f3a"])
    /// .claim_equals("token_use", ["access"]);
    /// # let _ = validation;
    /// ```
    pub fn client_id_instead_of_audience<I, S>(
        mut self,
        claim: impl Into<ClaimPath>,
        client_ids: I,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.claim_checks.push(ClaimCheck::new(
            claim.into(),
            client_ids,
            CheckKind::ClientId,
        ));
        self
    }

    /// The tenants an issuer template accepts: a token's tenant claim
    /// (`tid`, see [`tenant_claim`](Self::tenant_claim)) must be one of
    /// them, and its `iss` the template filled with it. No effect on an
    /// exact issuer.
    pub fn tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.issuer
            .set_tenants(Tenants::Only(tenants.into_iter().map(Into::into).collect()));
        self
    }

    /// An issuer template accepts every tenant: any directory of a
    /// multi-tenant IdP can then sign in, so pair it with an audience and
    /// with authorization that does not trust the tenant blindly. No
    /// effect on an exact issuer.
    pub fn any_tenant(mut self) -> Self {
        self.issuer.set_tenants(Tenants::Any);
        self
    }

    /// The claim an issuer template reads the tenant from (default `tid`).
    pub fn tenant_claim(mut self, claim: impl Into<ClaimPath>) -> Self {
        self.issuer.set_tenant_claim(claim.into());
        self
    }

    /// The issuer as configured (the template itself for a template).
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// Whether the issuer is a `{tenantid}` template.
    pub fn is_template(&self) -> bool {
        self.issuer.is_template()
    }

    /// The concrete issuers this validation accepts, for what a guard
    /// publishes about itself (protected resource metadata): the issuer,
    /// or a template filled with each allowed tenant. A template open to
    /// any tenant names none, as no list of them exists.
    pub fn accepted_issuers(&self) -> Vec<String> {
        self.issuer.concrete()
    }

    /// Which tenants an issuer template admits, as a preset records it.
    pub(crate) fn set_tenants(&mut self, tenants: Tenants) {
        self.issuer.set_tenants(tenants);
    }

    pub(crate) fn issuer_pattern(&self) -> &IssuerPattern {
        &self.issuer
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
    /// No key in the JWKS has the token's kid, or (for an HMAC token) no
    /// configured secret of its algorithm has its kid.
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
    /// A claim constrained by [`TokenValidation::claim_equals`] (or
    /// [`TokenValidation::client_id_instead_of_audience`]) is missing or
    /// not allowed. Carries the claim's configured name, never its value.
    #[error("the token's `{0}` claim is not accepted")]
    ClaimValue(String),
    /// No keys could be obtained from the IAM: 503, not 401.
    #[error("signing keys are unavailable")]
    KeysUnavailable,
}
