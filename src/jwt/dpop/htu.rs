//! The `htu` comparison: the proof's URL and the request's, both without
//! query and fragment and normalized as RFC 9449 §4.3 asks (RFC 3986
//! §6.2.2 syntax-based and §6.2.3 scheme-based normalization).
//!
//! Normalized: scheme and host to lower case, the default port dropped,
//! an empty path as `/`, percent-encodings in upper case with unreserved
//! characters decoded, dot segments removed. Anything that is not a plain
//! absolute `http(s)` URL (user info, spaces, non-ASCII, a bad
//! percent-encoding, a port that is not a number) does not normalize and
//! so matches nothing.

use http::{header, HeaderMap, Uri};

/// The external origin (and path prefix) of this resource, as clients
/// address it: `https://api.example.com` or
/// `https://gateway.example.com/students`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PublicUrl {
    /// Normalized, without a trailing `/`.
    base: String,
}

impl PublicUrl {
    pub(super) fn parse(url: &str) -> Option<Self> {
        if url.contains(['?', '#']) {
            return None;
        }
        let mut base = normalize(url)?;
        if base.ends_with('/') {
            base.pop();
        }
        Some(Self { base })
    }

    pub(super) fn as_str(&self) -> &str {
        &self.base
    }
}

/// The URL a proof for this request must name, normalized; `None` when
/// the request does not say enough (no host) or its path is not valid.
pub(super) fn request_url(
    public: Option<&PublicUrl>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<String> {
    let path = uri.path();
    match public {
        Some(public) => normalize(&format!("{}{path}", public.as_str())),
        None => {
            // Without a configured URL: the authority the request names,
            // over https unless the request line itself says otherwise.
            let scheme = uri.scheme_str().unwrap_or("https");
            let authority = match uri.authority() {
                Some(authority) => authority.as_str(),
                None => headers.get(header::HOST)?.to_str().ok()?,
            };
            normalize(&format!("{scheme}://{authority}{path}"))
        }
    }
}

/// The normalized form of `url` without query and fragment.
pub(super) fn normalize(url: &str) -> Option<String> {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let url = url.split_once('?').map_or(url, |(u, _)| u);
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let (host, port) = split_host_port(authority)?;
    let mut out = String::with_capacity(url.len());
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host);
    if let Some(port) = port.filter(|p| *p != default_port) {
        out.push(':');
        out.push_str(port);
    }
    out.push_str(&normalize_path(path)?);
    Some(out)
}

/// Host in lower case (an IPv6 literal kept in brackets) and the port,
/// with leading zeros dropped; `None` for user info or bad characters.
fn split_host_port(authority: &str) -> Option<(String, Option<&str>)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (literal, after) = rest.split_once(']')?;
        if literal.is_empty()
            || !literal
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", literal.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if host.is_empty() || !host.bytes().all(valid) {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        // "host:" means the default port (RFC 3986 §6.2.3).
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 5 => {
            let trimmed = p.trim_start_matches('0');
            p.parse::<u16>().ok()?;
            Some(if trimmed.is_empty() { "0" } else { trimmed })
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// Percent-encodings normalized and dot segments removed; `/` for empty.
fn normalize_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len() + 1);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                    decoded.push(value as char);
                } else {
                    decoded.push('%');
                    decoded.push_str(&format!("{value:02X}"));
                }
                i += 3;
            }
            // Visible ASCII, less what RFC 3986 never allows unencoded.
            0x21..=0x7e
                if !matches!(
                    b,
                    b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
                ) =>
            {
                decoded.push(b as char);
                i += 1;
            }
            _ => return None,
        }
    }
    if decoded.is_empty() {
        return Some("/".to_owned());
    }
    if !decoded.starts_with('/') {
        return None;
    }
    Some(remove_dot_segments(&decoded))
}

/// RFC 3986 §5.2.4 for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate().skip(1) {
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        // A dot segment at the end leaves the path ending in `/`.
        if i == last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_urls_normalize_alike() {
        let base = normalize("https://api.example.com/students/1").unwrap();
        assert_eq!(base, "https://api.example.com/students/1");
        for same in [
            "HTTPS://API.Example.COM/students/1",
            "https://api.example.com:443/students/1",
            "https://api.example.com:/students/1",
            "https://api.example.com/students/1?page=2",
            "https://api.example.com/students/1#top",
            "https://api.example.com/%73tudents/1",
            "https://api.example.com/students/./1",
            "https://api.example.com/x/../students/1",
        ] {
            assert_eq!(normalize(same).as_deref(), Some(base.as_str()), "{same}");
        }
        assert_eq!(normalize("http://h:80").unwrap(), "http://h/");
        assert_eq!(
            normalize("http://h:8080/a/b/..").unwrap(),
            "http://h:8080/a/"
        );
        assert_eq!(normalize("http://h/a%2fb").unwrap(), "http://h/a%2Fb");
        assert_eq!(
            normalize("http://[::1]:3000/").unwrap(),
            "http://[::1]:3000/"
        );
    }

    #[test]
    fn different_urls_stay_different() {
        let base = normalize("https://api.example.com/students/1").unwrap();
        for other in [
            "http://api.example.com/students/1",
            "https://api.example.com:8443/students/1",
            "https://api.example.com/students/1/",
            "https://api.example.com/Students/1",
            "https://api.example.com/students%2F1",
            "https://evil.example.com/students/1",
        ] {
            assert_ne!(normalize(other).as_deref(), Some(base.as_str()), "{other}");
        }
    }

    #[test]
    fn what_is_not_a_plain_http_url_does_not_normalize() {
        for bad in [
            "api.example.com/students",
            "ftp://api.example.com/",
            "https://user@api.example.com/",
            "https:///students",
            "https://api.example.com/stu dents",
            "https://api.example.com/é",
            "https://api.example.com/%zz",
            "https://api.example.com/%4",
            "https://api.example.com:99999/",
            "https://api.example.com:8x/",
            "https://[::1/",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn normalizing_never_panics_and_is_idempotent(url in "\\PC{0,60}") {
            if let Some(once) = normalize(&url) {
                proptest::prop_assert_eq!(normalize(&once), Some(once.clone()));
            }
        }

        #[test]
        fn urls_of_one_shape_normalize_idempotently(
            scheme in "(?i)https?",
            host in "[a-zA-Z0-9.-]{1,12}",
            port in proptest::option::of(0u16..),
            path in "(/([a-zA-Z0-9._~-]|%[0-9a-fA-F]{2}|\\.|\\.\\.){0,6}){0,5}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            if let Some(once) = normalize(&format!("{scheme}://{host}{port}{path}")) {
                proptest::prop_assert_eq!(normalize(&once), Some(once.clone()));
                let after_scheme = &once[once.find("://").unwrap() + 3..];
                let path = &after_scheme[after_scheme.find('/').unwrap()..];
                let dots = path.split('/').any(|segment| segment == "." || segment == "..");
                proptest::prop_assert!(!dots, "{}", once);
            }
        }
    }

    #[test]
    fn the_request_url_comes_from_the_public_url_or_the_host() {
        let uri: Uri = "/students/1?x=1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "API.example.com".parse().unwrap());
        assert_eq!(
            request_url(None, &uri, &headers).unwrap(),
            "https://api.example.com/students/1"
        );
        let public = PublicUrl::parse("http://127.0.0.1:8080/api/").unwrap();
        assert_eq!(
            request_url(Some(&public), &uri, &headers).unwrap(),
            "http://127.0.0.1:8080/api/students/1"
        );
        assert_eq!(request_url(None, &uri, &HeaderMap::new()), None);
        assert!(PublicUrl::parse("https://a.example/?q").is_none());
    }
}
