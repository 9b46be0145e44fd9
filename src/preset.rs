//! [`Preset`]: one call that configures the guard for a mainstream IdP's
//! access tokens — issuer, audience, claim checks and claim mapping.
//!
//! | preset | issuer | audience / client | user · tenant | roles | OAuth scopes |
//! |---|---|---|---|---|---|
//! | [`keycloak`](Preset::keycloak)`(realm_url, client)` | the realm URL | `aud` ∋ client | `sub` · `organization` memberships | `realm_access.roles` (qualifier `realm`) and `resource_access.<client>.roles` (qualifier: the client id) — never another client's | `scope` string |
//! | [`auth0`](Preset::auth0)`(domain, api, namespace)` | `https://<domain>/` | `aud` ∋ the API identifier | `sub` · `org_id` | the namespaced claim `<namespace>/roles`; flat `permissions` stay for [`ClaimsSource`](crate::ClaimsSource) | `scope` string |
//! | [`entra`](Preset::entra)`(tenant, client)` | `https://login.microsoftonline.com/<tenant>/v2.0` | `aud` is the client id (or `api://<client id>`), `tid` = tenant | `oid` · `tid` | app roles in `roles` | `scp` string |
//! | [`entra_multi_tenant`](Preset::entra_multi_tenant)`(client)` + [`tenants`](Preset::tenants) / [`any_tenant`](Preset::any_tenant) | the template `https://login.microsoftonline.com/{tenantid}/v2.0`, filled with the token's `tid`; keys from the `organizations` discovery document | as `entra`, `tid` one of the allowed tenants | `oid` · `tid` | app roles in `roles` | `scp` string |
//! | [`cognito`](Preset::cognito)`(region, pool, clients)` | `https://cognito-idp.<region>.amazonaws.com/<pool>` | no `aud`: `client_id` ∈ clients and `token_use` = `access` | `sub` | `cognito:groups` | `scope` string |
//! | [`okta`](Preset::okta)`(issuer, audience)` | the authorization server URL | `aud` ∋ audience | `sub` | `groups` | `scp` array |
//! | [`in_house`](Preset::in_house)`(issuer, system)` | as given | — | `sub` · `tenantId` | `roles` as `{system, role, department}`, this system's only | `scope` |
//!
//! Every preset can be refined: [`issuer`](Preset::issuer) for a custom
//! domain or a sovereign cloud, [`audience`](Preset::audience),
//! [`algorithms`](Preset::algorithms), [`claims`](Preset::claims).
//!
//! ```
//! use iam_guard::{preset::Preset, JwtAuthGuardLayer, RoleGuard};
//!
//! # fn build() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = JwtAuthGuardLayer::preset(Preset::keycloak(
//!     "https://sso.example.com/realms/school",
//!     "students-api",
//! ))?;
//! // The client role `admin` of students-api, not a realm role of that name.
//! let admins_only = RoleGuard::any_of(["students-api:admin"]);
//! # let _ = (auth, admins_only); Ok(()) }
//! # build().unwrap();
//! ```

use crate::{
    jwt::{
        issuer::Tenants,
        jwks::JwksFetcher,
        verify::{TokenValidation, Verifier},
    },
    principal::{ClaimMapping, ClaimPath},
    Algorithm,
};

/// A claim that must hold one of some values.
#[derive(Debug, Clone)]
struct ClaimCheck {
    claim: &'static str,
    allowed: Vec<String>,
}

/// The configuration of one IdP's access tokens. See the
/// [module docs](self) for what each preset expects.
#[derive(Debug, Clone)]
pub struct Preset {
    idp: &'static str,
    issuer: String,
    audiences: Vec<String>,
    checks: Vec<ClaimCheck>,
    client_ids: Option<ClaimCheck>,
    algorithms: Vec<Algorithm>,
    mapping: ClaimMapping,
    /// Where the discovery document is, when not under the issuer.
    discovery: Option<String>,
    /// For a `{tenantid}` issuer: which tenants it admits.
    tenants: Tenants,
}

/// A JSON Pointer segment for a name that may hold `/` or `~` (RFC 6901
/// §3), such as a client id.
fn pointer_segment(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

impl Preset {
    fn new(idp: &'static str, issuer: String, mapping: ClaimMapping) -> Self {
        Self {
            idp,
            issuer,
            audiences: Vec::new(),
            checks: Vec::new(),
            client_ids: None,
            algorithms: vec![Algorithm::RS256],
            mapping,
            discovery: None,
            tenants: Tenants::Undecided,
        }
    }

    /// Keycloak: `realm_url` is the realm's issuer
    /// (`https://sso.example.com/realms/school`), `client_id` this
    /// service's client. Tokens must name the client in `aud` (Keycloak's
    /// audience mapper). Realm roles carry the qualifier `realm`, this
    /// client's roles the client id (so a client literally called `realm`
    /// is better guarded by role names alone); other clients' roles are
    /// never read.
    pub fn keycloak(realm_url: &str, client_id: &str) -> Self {
        let client_roles = format!("/resource_access/{}/roles", pointer_segment(client_id));
        let mapping = ClaimMapping::default()
            .no_roles()
            .qualified_roles("realm_access.roles", "realm")
            .qualified_roles(client_roles.as_str(), client_id)
            .memberships("organization");
        let mut preset = Self::new("keycloak", realm_url.to_owned(), mapping);
        preset.audiences = vec![client_id.to_owned()];
        preset
    }

    /// Auth0: `domain` is the tenant or custom domain (`school.eu.auth0.com`;
    /// the issuer is `https://<domain>/`, trailing slash included),
    /// `api_identifier` the API's audience, `namespace` the prefix of the
    /// custom claims an Action adds (`https://school.example.com`, giving
    /// the roles claim `https://school.example.com/roles`).
    pub fn auth0(domain: &str, api_identifier: &str, namespace: &str) -> Self {
        let host = domain.trim_start_matches("https://").trim_end_matches('/');
        let roles = format!("{}/roles", namespace.trim_end_matches('/'));
        let mapping = ClaimMapping::default()
            .roles(ClaimPath::name(&roles))
            .tenant("org_id");
        let mut preset = Self::new("auth0", format!("https://{host}/"), mapping);
        preset.audiences = vec![api_identifier.to_owned()];
        preset
    }

    /// Microsoft Entra ID, v2.0 access tokens: `tenant_id` the directory
    /// (GUID), `client_id` this API's application id. `tid` must be the
    /// tenant; the user is `oid` (stable across applications, unlike
    /// `sub`); app roles come from `roles`, delegated scopes from `scp`.
    ///
    /// Entra issues v2.0 tokens to an API whose app registration sets
    /// `accessTokenAcceptedVersion` to 2; with the default it issues v1.0
    /// tokens, whose issuer is `https://sts.windows.net/<tenant>/`: set the
    /// registration to 2 (recommended) or give that issuer with
    /// [`issuer`](Self::issuer).
    pub fn entra(tenant_id: &str, client_id: &str) -> Self {
        let mapping = ClaimMapping::default()
            .user_id("oid")
            .tenant("tid")
            .roles("roles");
        let issuer = format!("https://login.microsoftonline.com/{tenant_id}/v2.0");
        let mut preset = Self::new("entra", issuer, mapping);
        preset.audiences = vec![client_id.to_owned(), format!("api://{client_id}")];
        preset.checks.push(ClaimCheck {
            claim: "tid",
            allowed: vec![tenant_id.to_owned()],
        });
        preset
    }

    /// Microsoft Entra ID for a multi-tenant application: tokens of many
    /// directories, each with its own issuer
    /// `https://login.microsoftonline.com/<tid>/v2.0`, matched against the
    /// template `https://login.microsoftonline.com/{tenantid}/v2.0` with
    /// the token's `tid`. Keys come from the `organizations` discovery
    /// document, which publishes that template as its issuer. Claims as in
    /// [`entra`](Self::entra).
    ///
    /// Which directories may sign in must be said: with
    /// [`tenants`](Self::tenants), or [`any_tenant`](Self::any_tenant) for
    /// every directory in the world. Until then no token is accepted.
    ///
    /// ```
    /// use iam_guard::preset::Preset;
    ///
    /// let customers = Preset::entra_multi_tenant("0f2c8f5e-0000-4000-8000-5c4d2a1b9e10")
    ///     .tenants(["72f988bf-86f1-41af-91ab-2d7cd011db47", "c1a2b3c4-0000-4000-8000-000000000002"]);
    /// assert_eq!(customers.issuer_url(), "https://login.microsoftonline.com/{tenantid}/v2.0");
    /// ```
    pub fn entra_multi_tenant(client_id: &str) -> Self {
        let mapping = ClaimMapping::default()
            .user_id("oid")
            .tenant("tid")
            .roles("roles");
        let issuer = "https://login.microsoftonline.com/{tenantid}/v2.0".to_owned();
        let mut preset = Self::new("entra", issuer, mapping);
        preset.audiences = vec![client_id.to_owned(), format!("api://{client_id}")];
        preset.discovery = Some(
            "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"
                .to_owned(),
        );
        preset
    }

    /// For a preset whose issuer is a `{tenantid}` template: the tenants
    /// whose tokens are accepted.
    pub fn tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tenants = Tenants::Only(tenants.into_iter().map(Into::into).collect());
        self
    }

    /// For a preset whose issuer is a `{tenantid}` template: tokens of
    /// every tenant are accepted.
    pub fn any_tenant(mut self) -> Self {
        self.tenants = Tenants::Any;
        self
    }

    /// Where the discovery document is, for an issuer that has none of its
    /// own (a template) or keeps it elsewhere. The document must name
    /// [`issuer_url`](Self::issuer_url) as its issuer.
    pub fn discovery(mut self, url: &str) -> Self {
        self.discovery = Some(url.to_owned());
        self
    }

    /// Amazon Cognito user pools: access tokens carry no `aud`, so the
    /// `client_id` claim must be one of `client_ids` (the app clients
    /// allowed to call this service) and `token_use` must be `access` (an
    /// ID token is refused). Groups come from `cognito:groups`.
    pub fn cognito<I, S>(region: &str, user_pool_id: &str, client_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mapping = ClaimMapping::default().roles("cognito:groups");
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}");
        let mut preset = Self::new("cognito", issuer, mapping);
        preset.checks.push(ClaimCheck {
            claim: "token_use",
            allowed: vec!["access".to_owned()],
        });
        preset.client_ids = Some(ClaimCheck {
            claim: "client_id",
            allowed: client_ids.into_iter().map(Into::into).collect(),
        });
        preset
    }

    /// Okta custom authorization servers: `issuer` is the server's URL
    /// (`https://school.okta.com/oauth2/default`), `audience` its audience
    /// (`api://default`). Scopes arrive as the `scp` array; groups from a
    /// `groups` claim. The user is `sub` (the login for user tokens, the
    /// client id for client-credentials tokens); for Okta's immutable user
    /// id use `.claims(|m| m.user_id("uid"))`.
    pub fn okta(issuer: &str, audience: &str) -> Self {
        let mapping = ClaimMapping::default().roles("groups");
        let mut preset = Self::new("okta", issuer.to_owned(), mapping);
        preset.audiences = vec![audience.to_owned()];
        preset
    }

    /// An in-house IAM issuing `{system, role, department}` roles:
    /// `system` is this service's system; roles of other systems are
    /// dropped, department-limited roles reach
    /// [`RecordAccess`](crate::RecordAccess) per department. No audience is
    /// checked unless [`audience`](Self::audience) sets one.
    pub fn in_house(issuer: &str, system: &str) -> Self {
        Self::new(
            "in-house",
            issuer.to_owned(),
            ClaimMapping::default().system(system),
        )
    }

    /// Another issuer URL: a custom domain, a sovereign cloud
    /// (`login.microsoftonline.us`), a test server. A preset whose
    /// discovery document is not under its issuer
    /// ([`entra_multi_tenant`](Self::entra_multi_tenant)) needs
    /// [`discovery`](Self::discovery) moved with it.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = issuer.to_owned();
        self
    }

    /// Other accepted audiences, replacing the preset's.
    pub fn audience<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Other accepted signature algorithms (default RS256).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Adjusts the preset's claim mapping.
    pub fn claims(mut self, adjust: impl FnOnce(ClaimMapping) -> ClaimMapping) -> Self {
        self.mapping = adjust(self.mapping);
        self
    }

    /// Which IdP the preset is for (`"keycloak"`, `"entra"`, …).
    pub fn idp(&self) -> &'static str {
        self.idp
    }

    /// The issuer tokens must carry, byte for byte.
    pub fn issuer_url(&self) -> &str {
        &self.issuer
    }

    /// Where the IdP's OIDC discovery document is: under the issuer, or
    /// where a multi-tenant preset says.
    pub fn discovery_url(&self) -> String {
        self.discovery
            .clone()
            .unwrap_or_else(|| crate::jwt::discovery::discovery_url(&self.issuer))
    }

    /// What a valid token looks like under this preset.
    pub fn validation(&self) -> TokenValidation {
        let mut validation =
            TokenValidation::new(self.issuer.as_str()).algorithms(self.algorithms.iter().copied());
        if !self.audiences.is_empty() {
            validation = validation.audience(self.audiences.iter().cloned());
        }
        for check in &self.checks {
            validation = validation.claim_equals(check.claim, check.allowed.iter().cloned());
        }
        validation.set_tenants(self.tenants.clone());
        if let Some(clients) = &self.client_ids {
            validation = validation
                .client_id_instead_of_audience(clients.claim, clients.allowed.iter().cloned());
        }
        validation
    }

    /// Which claims carry what under this preset.
    pub fn claim_mapping(&self) -> &ClaimMapping {
        &self.mapping
    }

    /// A verifier over `jwks` with this preset's rules.
    pub fn verifier(&self, jwks: JwksFetcher) -> Verifier {
        Verifier::builder(jwks, self.validation())
            .claims(self.mapping.clone())
            .build()
    }
}
