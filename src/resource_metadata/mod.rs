//! [`ProtectedResourceMetadata`]: the OAuth 2.0 protected resource metadata
//! document of RFC 9728, and where it is served.
//!
//! A client that meets this service's 401 learns from RFC 6750 only that
//! it needs a bearer token, not where to get one. The metadata document
//! says it: the authorization servers whose tokens this resource accepts,
//! the OAuth scopes it knows, how tokens are sent. It is served, without
//! authentication, at the resource's well-known URL (RFC 9728 §3.1): for
//! the resource `https://api.example.com/students` that is
//! `https://api.example.com/.well-known/oauth-protected-resource/students`.
//!
//! With [`JwtAuthGuardLayer::resource_metadata_url`] every
//! `WWW-Authenticate: Bearer` challenge of that layer, and of the guards and
//! extractors behind it, also names that URL (RFC 9728 §5.1), so a client
//! (an MCP-style agent, say) can go from a 401 to the authorization server
//! without any configuration of its own:
//!
//! ```text
//! WWW-Authenticate: Bearer resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/students"
//! ```
//!
//! # Example
//!
//! [`JwtAuthGuardLayer::protected_resource_metadata`] fills in the guard's
//! issuer and bearer methods. Merge the metadata router **outside** the
//! authenticated routes: the document must be readable without a token,
//! since it is how a client learns where to get one.
//!
//! ```
//! use axum::{http::Method, Router};
//! use iam_guard::{model::Requirement, JwtAuthGuardLayer, ProtectedResource};
//!
//! async fn list() -> &'static str { "[]" }
//! async fn archive() -> &'static str { "" }
//!
//! # fn build() -> Result<Router, Box<dyn std::error::Error>> {
//! let auth = JwtAuthGuardLayer::issuer("https://iam.example.com/realms/school")?
//!     .audience(["students-api"]);
//!
//! let students = ProtectedResource::new("students")
//!     .get("/students", list)
//!     .route_with(
//!         Method::POST,
//!         "/students/{id}/archive",
//!         Requirement::oauth_scopes(iam_guard::model::PermissionRule::AllOf(vec![
//!             "students:archive".into(),
//!         ])),
//!         archive,
//!     );
//!
//! let metadata = auth
//!     .protected_resource_metadata("https://api.example.com")
//!     .scopes_supported(["students:read"])
//!     // The OAuth scopes the bundle's routes require: students:archive.
//!     .scopes_supported(students.oauth_scopes())
//!     .resource_name("Students API")
//!     .build()?;
//! assert_eq!(metadata.well_known_path(), "/.well-known/oauth-protected-resource");
//!
//! // Every challenge of this layer and the guards behind it names the URL.
//! let auth = auth.resource_metadata_url(metadata.metadata_url());
//!
//! let app = Router::new()
//!     // The bundle authenticates its own routes (route layers), and
//!     // serves only the routes it declares: the metadata path stays open.
//!     .merge(students.authenticate(auth).into_router())
//!     .merge(metadata.router());
//! # Ok(app) }
//! # build().unwrap();
//! ```
//!
//! With the auth layer around a whole router (`Router::layer`), merge the
//! metadata router after it is applied, so it is not wrapped:
//! `Router::new().route(..).layer(auth).merge(metadata.router())`.
//!
//! Outside axum, [`ProtectedResourceMetadata::response`] is the complete
//! answer to serve at [`well_known_path`](ProtectedResourceMetadata::well_known_path).
//!
//! [`JwtAuthGuardLayer::resource_metadata_url`]: crate::JwtAuthGuardLayer::resource_metadata_url
//! [`JwtAuthGuardLayer::protected_resource_metadata`]: crate::JwtAuthGuardLayer::protected_resource_metadata

use std::{fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, HeaderValue, Response};
use serde::Serialize;

mod url;

use url::{check_url, well_known_path};

use crate::rejection::is_scope_token;
pub use url::ResourceMetadataUrl;

/// The well-known path of protected resource metadata (RFC 9728 §3.1), for
/// a resource identifier without a path.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// How long clients and caches may keep the document by default: one hour.
pub const DEFAULT_CACHE_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// Why a metadata document or a metadata URL cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceMetadataError {
    /// A URL field is not an absolute http(s) URL that can be published.
    #[error("{field} {url:?} is not usable: {reason}")]
    InvalidUrl {
        /// The field: `resource`, `authorization_servers`,
        /// `resource_documentation`, `resource_metadata`, …
        field: &'static str,
        /// The value as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A scope is not an OAuth scope token (RFC 6749 §3.3: no space, quote
    /// or backslash, printable ASCII).
    #[error("scopes_supported {scope:?} is not an OAuth scope token")]
    InvalidScope {
        /// The scope as given.
        scope: String,
    },
}

/// The document's members, in RFC 9728 §2's order and names. Empty lists
/// and absent strings are left out: an empty member would tell a client
/// something the resource never said.
#[derive(Debug, Clone, Default, Serialize)]
struct Fields {
    resource: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorization_servers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bearer_methods_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_tos_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_certificate_bound_access_tokens: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dpop_signing_alg_values_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_bound_access_tokens_required: Option<bool>,
}

/// Builds a [`ProtectedResourceMetadata`]; see the [module docs](self).
///
/// The methods only record what they are given; every value is checked by
/// [`build`](Self::build), which names the first one that is wrong.
#[derive(Debug, Clone)]
pub struct ProtectedResourceMetadataBuilder {
    fields: Fields,
    cache_max_age: Duration,
}

impl ProtectedResourceMetadataBuilder {
    /// The issuer identifiers of the authorization servers whose tokens
    /// this resource accepts (`authorization_servers`); replaces the list.
    /// [`JwtAuthGuardLayer::protected_resource_metadata`](crate::JwtAuthGuardLayer::protected_resource_metadata)
    /// fills it with the guard's issuers (a `{tenantid}` template as each
    /// tenant it allows; one open to any tenant cannot be listed).
    pub fn authorization_servers<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields.authorization_servers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// OAuth scopes a client may ask for to call this resource
    /// (`scopes_supported`); each call adds to the list, a scope named
    /// twice is listed once. A [`ProtectedResource`](crate::ProtectedResource)
    /// lists those its routes require with
    /// [`oauth_scopes`](crate::ProtectedResource::oauth_scopes).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for scope in scopes {
            push_unique(&mut self.fields.scopes_supported, scope.into());
        }
        self
    }

    /// How a client may send the access token (`bearer_methods_supported`:
    /// RFC 6750's `header`, `body`, `query`); replaces the list. Default
    /// `["header"]`, the only method JwtAuthGuard reads; an empty list
    /// leaves the member out.
    pub fn bearer_methods_supported<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields.bearer_methods_supported = Vec::new();
        for method in methods {
            push_unique(&mut self.fields.bearer_methods_supported, method.into());
        }
        self
    }

    /// A human-readable name of the resource (`resource_name`).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.fields.resource_name = Some(name.into());
        self
    }

    /// The URL of the resource's developer documentation
    /// (`resource_documentation`).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.fields.resource_documentation = Some(url.into());
        self
    }

    /// The URL of the resource's policy on data use (`resource_policy_uri`).
    pub fn resource_policy_uri(mut self, url: impl Into<String>) -> Self {
        self.fields.resource_policy_uri = Some(url.into());
        self
    }

    /// The URL of the resource's terms of service (`resource_tos_uri`).
    pub fn resource_tos_uri(mut self, url: impl Into<String>) -> Self {
        self.fields.resource_tos_uri = Some(url.into());
        self
    }

    /// Whether this resource supports certificate-bound access tokens
    /// (`tls_client_certificate_bound_access_tokens`, RFC 8705 §3.4).
    pub fn tls_client_certificate_bound_access_tokens(mut self, supported: bool) -> Self {
        self.fields.tls_client_certificate_bound_access_tokens = Some(supported);
        self
    }

    /// The algorithms this resource accepts DPoP proofs signed with
    /// (`dpop_signing_alg_values_supported`); replaces the list.
    /// [`JwtAuthGuardLayer::protected_resource_metadata`](crate::JwtAuthGuardLayer::protected_resource_metadata)
    /// fills it from the guard's [`Dpop`](crate::Dpop) configuration.
    pub fn dpop_signing_alg_values_supported<I, S>(mut self, algs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields.dpop_signing_alg_values_supported = Vec::new();
        for alg in algs {
            push_unique(
                &mut self.fields.dpop_signing_alg_values_supported,
                alg.into(),
            );
        }
        self
    }

    /// Whether this resource accepts DPoP-bound access tokens only
    /// (`dpop_bound_access_tokens_required`).
    pub fn dpop_bound_access_tokens_required(mut self, required: bool) -> Self {
        self.fields.dpop_bound_access_tokens_required = Some(required);
        self
    }

    /// How long clients and shared caches may keep the document
    /// (`Cache-Control: public, max-age=…`; default one hour).
    pub fn cache_max_age(mut self, max_age: Duration) -> Self {
        self.cache_max_age = max_age;
        self
    }

    /// Checks every value and renders the document.
    ///
    /// # Errors
    ///
    /// [`ResourceMetadataError::InvalidUrl`] naming the field when the
    /// resource identifier or another URL is not an absolute http(s) URL
    /// without fragment or user credentials (RFC 9728 §1.2: `https` is
    /// the rule, `http` is accepted for local development and tests), or
    /// holds a character a URL cannot carry unencoded; also when a path
    /// segment of the resource is `.` or `..` (clients resolve those away,
    /// and would ask for another well-known URL) or starts with `:` or
    /// `*` (axum reads those as route parameters).
    /// [`ResourceMetadataError::InvalidScope`] when a scope is not an OAuth
    /// scope token.
    pub fn build(self) -> Result<ProtectedResourceMetadata, ResourceMetadataError> {
        let mut fields = self.fields;
        let resource = check_url("resource", &fields.resource)?;
        let well_known_path = well_known_path(&fields.resource, resource.path())?;
        for issuer in &fields.authorization_servers {
            check_url("authorization_servers", issuer)?;
        }
        fields.authorization_servers = dedup(fields.authorization_servers);
        for (field, url) in [
            ("resource_documentation", &fields.resource_documentation),
            ("resource_policy_uri", &fields.resource_policy_uri),
            ("resource_tos_uri", &fields.resource_tos_uri),
        ] {
            if let Some(url) = url {
                check_url(field, url)?;
            }
        }
        if let Some(scope) = fields.scopes_supported.iter().find(|s| !is_scope_token(s)) {
            return Err(ResourceMetadataError::InvalidScope {
                scope: scope.clone(),
            });
        }
        fields.resource_name = fields.resource_name.filter(|name| !name.is_empty());

        // The scheme in lower case (it is case-insensitive); host, port,
        // path and query exactly as given, so the URL is the one a client
        // derives from the resource identifier itself.
        let scheme = resource
            .scheme_str()
            .unwrap_or("https")
            .to_ascii_lowercase();
        let authority = resource.authority().map_or("", |a| a.as_str());
        let query = resource.query().map_or(String::new(), |q| format!("?{q}"));
        let metadata_url = format!("{scheme}://{authority}{well_known_path}{query}");
        // Made of the resource's checked characters and fixed ASCII.
        let metadata_url = ResourceMetadataUrl::checked(metadata_url);

        let json = serde_json::to_vec(&fields)
            .expect("a document of strings and booleans always serializes");
        let cache_control =
            HeaderValue::from_str(&format!("public, max-age={}", self.cache_max_age.as_secs()))
                .expect("a number is a valid header value");
        Ok(ProtectedResourceMetadata {
            inner: Arc::new(Inner {
                fields,
                json: Bytes::from(json),
                well_known_path,
                metadata_url,
                cache_control,
            }),
        })
    }
}

/// An RFC 9728 protected resource metadata document, ready to serve. Cheap
/// to clone. See the [module docs](self) for an example.
#[derive(Clone)]
pub struct ProtectedResourceMetadata {
    inner: Arc<Inner>,
}

struct Inner {
    fields: Fields,
    json: Bytes,
    well_known_path: String,
    metadata_url: ResourceMetadataUrl,
    cache_control: HeaderValue,
}

impl fmt::Debug for ProtectedResourceMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedResourceMetadata")
            .field("resource", &self.resource())
            .field("authorization_servers", &self.authorization_servers())
            .field("metadata_url", &self.inner.metadata_url.as_str())
            .finish_non_exhaustive()
    }
}

impl ProtectedResourceMetadata {
    /// A builder for the resource identified by `resource`, an `https` URL
    /// such as `https://api.example.com` or
    /// `https://api.example.com/students` (checked by
    /// [`build`](ProtectedResourceMetadataBuilder::build)). Bearer methods
    /// default to `["header"]`; there is no authorization server until
    /// one is named.
    pub fn builder(resource: impl Into<String>) -> ProtectedResourceMetadataBuilder {
        ProtectedResourceMetadataBuilder {
            fields: Fields {
                resource: resource.into(),
                bearer_methods_supported: vec!["header".to_owned()],
                ..Fields::default()
            },
            cache_max_age: DEFAULT_CACHE_MAX_AGE,
        }
    }

    /// The resource identifier (`resource`), exactly as given.
    pub fn resource(&self) -> &str {
        &self.inner.fields.resource
    }

    /// The authorization servers (`authorization_servers`).
    pub fn authorization_servers(&self) -> &[String] {
        &self.inner.fields.authorization_servers
    }

    /// The OAuth scopes (`scopes_supported`).
    pub fn scopes_supported(&self) -> &[String] {
        &self.inner.fields.scopes_supported
    }

    /// The bearer methods (`bearer_methods_supported`).
    pub fn bearer_methods_supported(&self) -> &[String] {
        &self.inner.fields.bearer_methods_supported
    }

    /// The path the document is served at: [`WELL_KNOWN_PATH`] followed by
    /// the resource identifier's path, if it has one
    /// (`/.well-known/oauth-protected-resource/students` for
    /// `https://api.example.com/students`).
    pub fn well_known_path(&self) -> &str {
        &self.inner.well_known_path
    }

    /// The absolute URL of the document, as a client derives it from the
    /// resource identifier (RFC 9728 §3.1); pass it to
    /// [`JwtAuthGuardLayer::resource_metadata_url`](crate::JwtAuthGuardLayer::resource_metadata_url).
    pub fn metadata_url(&self) -> ResourceMetadataUrl {
        self.inner.metadata_url.clone()
    }

    /// The document as served: compact JSON.
    pub fn json(&self) -> &str {
        // Built by serde_json from strings.
        std::str::from_utf8(&self.inner.json).unwrap_or_default()
    }

    /// The answer to a `GET` of the document: 200, `application/json`,
    /// `Cache-Control: public, max-age=…`. For serving it without axum.
    pub fn response(&self) -> Response<Bytes> {
        let mut res = Response::new(self.inner.json.clone());
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, self.inner.cache_control.clone());
        res
    }

    /// A router answering `GET` (and `HEAD`) at
    /// [`well_known_path`](Self::well_known_path) with the document. It
    /// carries no guard: merge it **outside** the authenticated routes, as
    /// the [module docs](self) show.
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn router<S>(&self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let metadata = self.clone();
        axum::Router::new().route(
            &self.inner.well_known_path,
            axum::routing::get(move || {
                let res = metadata.response().map(axum::body::Body::from);
                async move { res }
            }),
        )
    }
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        push_unique(&mut out, item);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(resource: &str) -> ProtectedResourceMetadata {
        ProtectedResourceMetadata::builder(resource)
            .build()
            .unwrap_or_else(|e| panic!("{resource}: {e}"))
    }

    #[test]
    fn well_known_url_is_inserted_between_host_and_path() {
        for (resource, path, url) in [
            (
                "https://api.example.com",
                "/.well-known/oauth-protected-resource",
                "https://api.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example.com/",
                "/.well-known/oauth-protected-resource",
                "https://api.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example.com/students",
                "/.well-known/oauth-protected-resource/students",
                "https://api.example.com/.well-known/oauth-protected-resource/students",
            ),
            (
                "https://api.example.com:8443/v1/students/",
                "/.well-known/oauth-protected-resource/v1/students/",
                "https://api.example.com:8443/.well-known/oauth-protected-resource/v1/students/",
            ),
            (
                "https://api.example.com/students?tenant=a",
                "/.well-known/oauth-protected-resource/students",
                "https://api.example.com/.well-known/oauth-protected-resource/students?tenant=a",
            ),
            (
                "http://127.0.0.1:3000",
                "/.well-known/oauth-protected-resource",
                "http://127.0.0.1:3000/.well-known/oauth-protected-resource",
            ),
            (
                "HTTPS://api.example.com/a",
                "/.well-known/oauth-protected-resource/a",
                "https://api.example.com/.well-known/oauth-protected-resource/a",
            ),
        ] {
            let metadata = built(resource);
            assert_eq!(metadata.well_known_path(), path, "{resource}");
            assert_eq!(metadata.metadata_url().as_str(), url, "{resource}");
            assert_eq!(metadata.resource(), resource);
        }
    }

    #[test]
    fn unusable_resource_identifiers_are_refused_with_the_reason() {
        for (resource, reason) in [
            ("", "absolute"),
            ("api.example.com/students", "absolute"),
            ("/students", "absolute"),
            ("ftp://api.example.com", "absolute"),
            ("urn:example:students", "absolute"),
            ("https://api.example.com/students#top", "fragment"),
            ("https://user:pw@api.example.com", "credentials"),
            ("https://api.example.com/a b", "character"),
            ("https://api.example.com/\"", "character"),
            ("https://api.example.com/a\\b", "character"),
            ("https://api.example.com/é", "character"),
            ("https://api.example.com/%zz", "%-escape"),
            ("https://api.example.com/{id}", "character"),
            ("https://api.example.com/a/../b", "`..`"),
            ("https://api.example.com/:id", "routed"),
            ("https://api.example.com/*rest", "routed"),
        ] {
            let err = ProtectedResourceMetadata::builder(resource)
                .build()
                .expect_err(resource);
            let ResourceMetadataError::InvalidUrl { field, .. } = &err else {
                panic!("{resource}: {err:?}");
            };
            assert_eq!(*field, "resource");
            assert!(err.to_string().contains(reason), "{resource}: {err}");
        }
    }

    #[test]
    fn other_url_fields_and_scopes_are_checked_by_build() {
        let err = ProtectedResourceMetadata::builder("https://api.example.com")
            .authorization_servers(["iam.example.com"])
            .build()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("authorization_servers"),
            "{err}"
        );
        let err = ProtectedResourceMetadata::builder("https://api.example.com")
            .resource_documentation("https://docs.example.com/#intro")
            .build()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("resource_documentation"),
            "{err}"
        );
        let err = ProtectedResourceMetadata::builder("https://api.example.com")
            .scopes_supported(["students:read", "two words"])
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ResourceMetadataError::InvalidScope {
                scope: "two words".into()
            }
        );
    }

    #[test]
    fn empty_members_are_left_out() {
        let metadata = ProtectedResourceMetadata::builder("https://api.example.com")
            .bearer_methods_supported(Vec::<String>::new())
            .resource_name("")
            .build()
            .unwrap();
        assert_eq!(metadata.json(), r#"{"resource":"https://api.example.com"}"#);
    }

    #[test]
    fn lists_are_deduplicated_in_order() {
        let metadata = ProtectedResourceMetadata::builder("https://api.example.com")
            .authorization_servers([
                "https://a.example",
                "https://b.example",
                "https://a.example",
            ])
            .scopes_supported(["x", "y"])
            .scopes_supported(["y", "z"])
            .build()
            .unwrap();
        assert_eq!(
            metadata.authorization_servers(),
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(metadata.scopes_supported(), ["x", "y", "z"]);
    }

    #[test]
    fn the_response_is_json_and_cacheable() {
        let metadata = ProtectedResourceMetadata::builder("https://api.example.com")
            .cache_max_age(Duration::from_secs(600))
            .build()
            .unwrap();
        let res = metadata.response();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "public, max-age=600");
        assert_eq!(res.body().as_ref(), metadata.json().as_bytes());
    }
}
