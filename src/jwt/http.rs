//! [`HttpJwksSource`]: fetching the JWKS (and the discovery document) with
//! reqwest over rustls, with a timeout and a response size cap.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::OnceCell;

use super::{
    discovery::{discovery_url, jwks_uri_from},
    issuer::TENANT_PLACEHOLDER,
    source::{max_age, FetchError, FetchFuture, JwksDocument, JwksSource},
};

/// Default HTTP timeout for JWKS and discovery fetches.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on a JWKS or discovery document.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct HttpConfig {
    pub(crate) timeout: Duration,
    pub(crate) max_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_HTTP_TIMEOUT,
            max_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
        }
    }
}

/// Fetches the JWKS over HTTP(S), from an explicit `jwks_uri` or through
/// OIDC discovery of an issuer.
///
/// Built by [`JwksFetcherBuilder::jwks_uri`](super::jwks::JwksFetcherBuilder::jwks_uri)
/// and [`JwksFetcherBuilder::discover`](super::jwks::JwksFetcherBuilder::discover).
#[derive(Debug)]
pub struct HttpJwksSource {
    client: reqwest::Client,
    config: HttpConfig,
    /// The issuer the discovery document must name, and where that
    /// document is; `None` when `jwks_uri` was configured directly.
    discovery: Option<(String, String)>,
    jwks_uri: OnceCell<String>,
}

impl HttpJwksSource {
    pub(crate) fn jwks_uri(uri: &str, config: HttpConfig) -> Result<Self, FetchError> {
        check_url(uri)?;
        Ok(Self {
            client: client(&config)?,
            config,
            discovery: None,
            jwks_uri: OnceCell::new_with(Some(uri.to_owned())),
        })
    }

    pub(crate) fn discover(issuer: &str, config: HttpConfig) -> Result<Self, FetchError> {
        if issuer.contains(TENANT_PLACEHOLDER) {
            return Err(FetchError::Invalid(format!(
                "{issuer:?} is an issuer template: give the discovery document's URL \
                 (JwksFetcherBuilder::discovery_document)"
            )));
        }
        Self::discovery_document(&discovery_url(issuer), issuer, config)
    }

    pub(crate) fn discovery_document(
        url: &str,
        issuer: &str,
        config: HttpConfig,
    ) -> Result<Self, FetchError> {
        check_url(url)?;
        Ok(Self {
            client: client(&config)?,
            config,
            discovery: Some((url.to_owned(), issuer.to_owned())),
            jwks_uri: OnceCell::new(),
        })
    }

    async fn get(&self, url: &str) -> Result<(Bytes, Option<Duration>), FetchError> {
        let timeout = self.config.timeout;
        let map = |e| transport_error(e, timeout);
        let res = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(map)?;
        if !res.status().is_success() {
            return Err(FetchError::Status(res.status().as_u16()));
        }
        let max_age = res
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let body = read_capped(res, self.config.max_bytes, timeout).await?;
        Ok((body, max_age))
    }

    async fn resolve_jwks_uri(&self) -> Result<&str, FetchError> {
        let uri = self
            .jwks_uri
            .get_or_try_init(|| async {
                let (url, issuer) = self
                    .discovery
                    .as_ref()
                    .expect("a source without jwks_uri was built for discovery");
                let (doc, _) = self.get(url).await?;
                let uri = jwks_uri_from(&doc, issuer).map_err(FetchError::Invalid)?;
                check_url(&uri)?;
                Ok::<_, FetchError>(uri)
            })
            .await?;
        Ok(uri)
    }
}

impl JwksSource for HttpJwksSource {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let uri = self.resolve_jwks_uri().await?;
            let (body, max_age) = self.get(uri).await?;
            Ok(JwksDocument { body, max_age })
        })
    }
}

/// A reqwest failure as a [`FetchError`]: a timeout, or a connection
/// problem.
pub(crate) fn transport_error(e: reqwest::Error, timeout: Duration) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout(timeout)
    } else {
        FetchError::Connect(e.to_string())
    }
}

/// The body of `res`, refused beyond `max` bytes. Read chunk by chunk so
/// a lying or absent `Content-Length` cannot make us buffer more than the
/// cap.
pub(crate) async fn read_capped(
    mut res: reqwest::Response,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, FetchError> {
    if res.content_length().is_some_and(|len| len > max as u64) {
        return Err(FetchError::TooLarge(max));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| transport_error(e, timeout))? {
        if body.len() + chunk.len() > max {
            return Err(FetchError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

pub(crate) fn check_url(url: &str) -> Result<(), FetchError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        _ => Err(FetchError::Invalid(format!(
            "{url:?} is not an http(s) URL"
        ))),
    }
}

pub(crate) fn client(config: &HttpConfig) -> Result<reqwest::Client, FetchError> {
    reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        // Keys are fetched every few minutes at most: a pooled connection
        // buys nothing and could outlive the IAM instance it points at.
        .pool_max_idle_per_host(0)
        // A JWKS URL that redirects elsewhere is a misconfiguration or an
        // attack; the keys must come from the configured origin.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| FetchError::Connect(e.to_string()))
}
