//! [`HttpCatalogueEndpoint`]: the catalogue over HTTP(S) with reqwest and
//! rustls, conditional on the ETag held, with a timeout and a size cap.

use std::{fmt, time::Duration};

use reqwest::{header, StatusCode};

use super::endpoint::{
    CatalogueDocument, CatalogueEndpoint, CatalogueFetchFuture, CatalogueResponse,
};
use crate::jwt::{
    http::{check_url, client, read_capped, transport_error, HttpConfig},
    source::{max_age, FetchError},
};

/// Fetches the catalogue document from a URL: `GET` with
/// `If-None-Match` when a version is held, no redirects followed, the body
/// read chunk by chunk up to the cap.
///
/// Built by [`CatalogueFetcherBuilder::url`](super::CatalogueFetcherBuilder::url).
pub struct HttpCatalogueEndpoint {
    client: reqwest::Client,
    url: String,
    config: HttpConfig,
    service_token: Option<String>,
}

impl fmt::Debug for HttpCatalogueEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCatalogueEndpoint")
            .field("url", &self.url)
            .field("timeout", &self.config.timeout)
            .field("max_bytes", &self.config.max_bytes)
            .field(
                "service_token",
                &self.service_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl HttpCatalogueEndpoint {
    pub(crate) fn new(
        url: &str,
        timeout: Duration,
        max_bytes: usize,
        service_token: Option<String>,
    ) -> Result<Self, FetchError> {
        check_url(url)?;
        let config = HttpConfig { timeout, max_bytes };
        Ok(Self {
            client: client(&config)?,
            url: url.to_owned(),
            config,
            service_token,
        })
    }

    async fn get(&self, etag: Option<&str>) -> Result<CatalogueResponse, FetchError> {
        let timeout = self.config.timeout;
        let map = |e| transport_error(e, timeout);
        let mut request = self
            .client
            .get(&self.url)
            .header(header::ACCEPT, "application/json");
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(token) = &self.service_token {
            request = request.bearer_auth(token);
        }
        let res = request.send().await.map_err(map)?;
        let max_age = res
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        if res.status() == StatusCode::NOT_MODIFIED {
            return Ok(CatalogueResponse::NotModified { max_age });
        }
        if !res.status().is_success() {
            return Err(FetchError::Status(res.status().as_u16()));
        }
        let etag = res
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_capped(res, self.config.max_bytes, timeout).await?;
        Ok(CatalogueResponse::Modified(CatalogueDocument {
            body,
            etag,
            max_age,
        }))
    }
}

impl CatalogueEndpoint for HttpCatalogueEndpoint {
    fn fetch<'a>(&'a self, etag: Option<&'a str>) -> CatalogueFetchFuture<'a> {
        Box::pin(self.get(etag))
    }
}
