//! [`ResourceMetadataUrl`] and the checks every URL of the metadata
//! document passes before it is published or put in a challenge.

use std::{fmt, sync::Arc};

use http::Uri;

use super::{ResourceMetadataError, WELL_KNOWN_PATH};

/// The URL of a protected resource metadata document, checked to be an
/// absolute http(s) URL whose characters can stand in a quoted
/// `WWW-Authenticate` attribute: no quote, backslash, space, control or
/// non-ASCII character can reach the header.
///
/// Usually taken from [`ProtectedResourceMetadata::metadata_url`](super::ProtectedResourceMetadata::metadata_url); build one
/// with [`new`](Self::new) when the document is served elsewhere (by a
/// gateway, say).
///
/// ```
/// use iam_guard::resource_metadata::ResourceMetadataUrl;
///
/// let url = ResourceMetadataUrl::new(
///     "https://api.example.com/.well-known/oauth-protected-resource",
/// )?;
/// assert_eq!(url.as_str(), "https://api.example.com/.well-known/oauth-protected-resource");
/// assert!(ResourceMetadataUrl::new("https://api.example.com/\", error=\"x").is_err());
/// # Ok::<(), iam_guard::resource_metadata::ResourceMetadataError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResourceMetadataUrl(Arc<str>);

impl ResourceMetadataUrl {
    /// Checks `url`.
    ///
    /// # Errors
    ///
    /// [`ResourceMetadataError::InvalidUrl`] when `url` is not an absolute
    /// http(s) URL, has a fragment or user credentials, or holds a
    /// character a URL cannot carry unencoded.
    pub fn new(url: &str) -> Result<Self, ResourceMetadataError> {
        check_url("resource_metadata", url)?;
        Ok(Self(url.into()))
    }

    /// A URL built from parts that were checked already.
    pub(super) fn checked(url: String) -> Self {
        Self(url.into())
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceMetadataUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceMetadataUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResourceMetadataUrl")
            .field(&&*self.0)
            .finish()
    }
}

/// `url` as an absolute http(s) URL fit to publish: only the characters
/// RFC 3986 allows unencoded (so it can also stand in a quoted header
/// attribute), no fragment (RFC 9728 §1.2), no user credentials.
pub(super) fn check_url(field: &'static str, url: &str) -> Result<Uri, ResourceMetadataError> {
    let invalid = |reason| ResourceMetadataError::InvalidUrl {
        field,
        url: url.to_owned(),
        reason,
    };
    if !is_uri_text(url) {
        return Err(invalid(
            "it holds a character a URL cannot carry unencoded \
             (space, quote, backslash, control, non-ASCII or a bad %-escape)",
        ));
    }
    // Checked before parsing: the http crate drops a fragment silently.
    if url.contains('#') {
        return Err(invalid("it has a fragment"));
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| invalid("it is not an absolute http(s) URL"))?;
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("http"));
    let Some(authority) = uri.authority().filter(|_| scheme_ok) else {
        return Err(invalid("it is not an absolute http(s) URL"));
    };
    if authority.as_str().contains('@') {
        return Err(invalid("it carries user credentials"));
    }
    if authority.host().is_empty() {
        return Err(invalid("it has no host"));
    }
    Ok(uri)
}

/// The well-known path of a resource whose path is `path` (RFC 9728 §3.1:
/// inserted between host and path; the lone `/` of a resource without a
/// path is dropped).
pub(super) fn well_known_path(resource: &str, path: &str) -> Result<String, ResourceMetadataError> {
    let invalid = |reason| ResourceMetadataError::InvalidUrl {
        field: "resource",
        url: resource.to_owned(),
        reason,
    };
    for segment in path.split('/') {
        if segment == "." || segment == ".." {
            return Err(invalid("a path segment is `.` or `..`"));
        }
        if segment.starts_with(':') || segment.starts_with('*') {
            return Err(invalid(
                "a path segment starts with `:` or `*`, which cannot be routed",
            ));
        }
    }
    Ok(match path {
        "" | "/" => WELL_KNOWN_PATH.to_owned(),
        path => format!("{WELL_KNOWN_PATH}{path}"),
    })
}

/// Only RFC 3986 characters (unreserved, reserved, and `%` followed by two
/// hex digits): none of them needs escaping inside a quoted-string.
fn is_uri_text(url: &str) -> bool {
    let bytes = url.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let escape = bytes.get(i + 1..i + 3);
                if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
                continue;
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => {}
            b'-' | b'.' | b'_' | b'~' => {}
            b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@' => {}
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_that_would_break_the_header_are_refused() {
        for bad in [
            "https://api.example.com/\", error=\"forged",
            "https://api.example.com/a\r\nSet-Cookie: x=1",
            "https://api.example.com/a\\",
            "not a url",
            "https://api.example.com/#frag",
        ] {
            let err = ResourceMetadataUrl::new(bad).expect_err(bad);
            assert!(
                err.to_string().starts_with("resource_metadata "),
                "{bad:?}: {err}"
            );
        }
    }
}
