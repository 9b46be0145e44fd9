//! Where JWKS documents come from: the [`JwksSource`] trait, so the
//! fetcher's caching and resilience work with any HTTP client, and the
//! `Cache-Control` reading that sets how long a document stays fresh.

use std::{future::Future, pin::Pin, time::Duration};

use bytes::Bytes;

/// A boxed future returned by [`JwksSource::fetch`].
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<JwksDocument, FetchError>> + Send + 'a>>;

/// Fetches the raw JWKS document from the IAM.
///
/// Implement it to bring your own HTTP client; the crate ships
/// [`HttpJwksSource`](crate::jwt::http::HttpJwksSource) (feature
/// `jwks-http`). A source only fetches: caching, single-flight, cooldowns
/// and stale-if-error live in [`JwksFetcher`](crate::jwt::jwks::JwksFetcher).
pub trait JwksSource: Send + Sync + 'static {
    /// Fetches the current document.
    fn fetch(&self) -> FetchFuture<'_>;
}

/// A fetched JWKS document, not yet parsed.
#[derive(Debug, Clone)]
pub struct JwksDocument {
    /// The response body.
    pub body: Bytes,
    /// `Cache-Control: max-age`, if the IAM sent one; see [`max_age`].
    pub max_age: Option<Duration>,
}

/// Fetching a JWKS or discovery document failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The IAM could not be reached or the connection failed.
    #[error("the IAM could not be reached: {0}")]
    Connect(String),
    /// The IAM took longer than the configured timeout.
    #[error("the IAM did not answer within {0:?}")]
    Timeout(Duration),
    /// The IAM answered with a non-success status.
    #[error("the IAM answered {0}")]
    Status(u16),
    /// The document is larger than the configured cap.
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    /// The document is not what was expected.
    #[error("the document is invalid: {0}")]
    Invalid(String),
}

/// Reads the freshness lifetime from a `Cache-Control` value.
///
/// `no-cache`, `no-store` and `max-age=0` give `Some(ZERO)` (the fetcher
/// clamps it to its minimum TTL); `max-age=N` gives `N` seconds; anything
/// else gives `None` so the default TTL applies.
///
/// ```
/// use std::time::Duration;
/// use iam_guard::jwt::source::max_age;
///
/// assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
/// assert_eq!(max_age("no-store"), Some(Duration::ZERO));
/// assert_eq!(max_age("public"), None);
/// ```
pub fn max_age(cache_control: &str) -> Option<Duration> {
    let mut found = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = value
                .trim()
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_variants() {
        assert_eq!(max_age("max-age=60"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("MAX-AGE=60, public"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("max-age=\"7\""), Some(Duration::from_secs(7)));
        assert_eq!(max_age("max-age=0"), Some(Duration::ZERO));
        assert_eq!(max_age("no-cache, max-age=60"), Some(Duration::ZERO));
        assert_eq!(max_age("max-age=abc"), None);
        assert_eq!(max_age("max-age=-5"), None);
        assert_eq!(max_age(""), None);
    }
}
