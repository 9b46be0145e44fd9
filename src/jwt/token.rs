//! Finding the access token in a request: `Authorization: Bearer` and an
//! optional named cookie, with the XSRF rule for cookie sessions.

use http::{header, HeaderMap, Method};
use subtle::ConstantTimeEq;

/// The default maximum token length: 8 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// The header a cookie session echoes its XSRF token in.
pub const XSRF_HEADER: &str = "x-xsrf-token";

/// Finding the token failed, or a cookie session's XSRF check did.
///
/// The guard layer answers [`Ambiguous`](Self::Ambiguous) and
/// [`UnreadableHeader`](Self::UnreadableHeader) with 400 `invalid_request`,
/// [`XsrfMismatch`](Self::XsrfMismatch) with 403 `XSRF_MISMATCH`, and the
/// rest with 401 `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Two tokens: two `Authorization` headers, a bearer token and the
    /// cookie, or the cookie twice.
    #[error("more than one access token was sent")]
    Ambiguous,
    /// An `Authorization` header that is not visible ASCII.
    #[error("authorization header is not visible ASCII")]
    UnreadableHeader,
    /// An `Authorization` scheme other than `Bearer` (`Basic`, say), or
    /// `DPoP` where DPoP is not turned on.
    #[error("the authorization scheme must be Bearer")]
    OtherScheme,
    /// `Bearer` with nothing after it, or an empty cookie.
    #[error("the access token is empty")]
    Empty,
    /// Longer than the configured maximum; not parsed.
    #[error("the access token is too large")]
    TooLarge,
    /// A cookie token on an unsafe method without the matching
    /// `X-XSRF-TOKEN` header.
    #[error("a cookie session needs a matching X-XSRF-TOKEN header on this method")]
    XsrfMismatch,
}

/// Where a token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The configured cookie.
    Cookie,
    /// `Authorization: DPoP <token>`, with a `DPoP` proof to check.
    Dpop,
}

impl TokenOrigin {
    /// The scheme, for challenges: a cookie token is a bearer token.
    pub(crate) fn scheme(self) -> AuthScheme {
        match self {
            Self::Dpop => AuthScheme::Dpop,
            Self::Bearer | Self::Cookie => AuthScheme::Bearer,
        }
    }
}

/// The scheme a request presented its access token with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthScheme {
    /// `Authorization: Bearer`, or a cookie: whoever holds the token can
    /// use it.
    Bearer,
    /// `Authorization: DPoP` with a proof (RFC 9449).
    Dpop,
}

/// How to find the token in a request.
#[derive(Debug, Clone)]
pub struct TokenLocator {
    bearer: bool,
    /// `Authorization: DPoP` is read too.
    dpop: bool,
    cookie: Option<Box<str>>,
    max_len: usize,
    xsrf: bool,
}

impl Default for TokenLocator {
    fn default() -> Self {
        Self {
            bearer: true,
            dpop: false,
            cookie: None,
            max_len: DEFAULT_MAX_TOKEN_LEN,
            xsrf: true,
        }
    }
}

impl TokenLocator {
    pub(crate) fn set_cookie(&mut self, name: &str) {
        self.cookie = Some(name.into());
    }

    pub(crate) fn set_bearer(&mut self, on: bool) {
        self.bearer = on;
    }

    pub(crate) fn set_dpop(&mut self, on: bool) {
        self.dpop = on;
    }

    pub(crate) fn set_max_len(&mut self, max: usize) {
        self.max_len = max;
    }

    pub(crate) fn set_xsrf(&mut self, on: bool) {
        self.xsrf = on;
    }

    /// Whether `Authorization: Bearer` is read.
    pub(crate) fn reads_bearer(&self) -> bool {
        self.bearer
    }

    /// Finds the single token of a request, as the bytes it was sent as.
    ///
    /// `Ok(None)` means no token was sent. Two tokens (two `Authorization`
    /// headers, a bearer and a cookie, the cookie twice) are a 400 because a
    /// server that picks one silently can be made to check one token and
    /// log another.
    ///
    /// A bearer token is not checked to be text here: a repeat token is
    /// found in the verified-token cache by its bytes, and only a token
    /// verified before can be there, so its bytes are text already. Any
    /// other token goes through [`token_text`] before it is read.
    pub(crate) fn locate<'a>(
        &self,
        headers: &'a HeaderMap,
    ) -> Result<Option<(&'a [u8], TokenOrigin)>, TokenError> {
        let mut found: Option<(&'a [u8], TokenOrigin)> = None;
        let mut take = |token: &'a [u8], origin| {
            if found.replace((token, origin)).is_some() {
                return Err(TokenError::Ambiguous);
            }
            Ok(())
        };
        if self.bearer {
            for value in headers.get_all(header::AUTHORIZATION) {
                let (token, origin) = authorization_token(value.as_bytes(), self.dpop)?;
                take(token, origin)?;
            }
        }
        if let Some(name) = &self.cookie {
            for value in headers.get_all(header::COOKIE) {
                // A cookie header that is not text cannot hold our cookie;
                // it may belong to someone else, so it is not our error.
                let Ok(value) = value.to_str() else { continue };
                for pair in value.split(';') {
                    let Some((k, v)) = pair.trim().split_once('=') else {
                        continue;
                    };
                    if k.trim() == &**name {
                        take(v.trim().trim_matches('"').as_bytes(), TokenOrigin::Cookie)?;
                    }
                }
            }
        }
        match found {
            Some(([], _)) => Err(TokenError::Empty),
            Some((token, _)) if token.len() > self.max_len => Err(TokenError::TooLarge),
            other => Ok(other),
        }
    }

    /// The XSRF rule of cookie sessions: a cookie token on an unsafe method must
    /// come with `X-XSRF-TOKEN` equal to the token's `xsrf_token` claim.
    /// Bearer tokens are immune to CSRF (a browser never attaches them on
    /// its own), so they are not checked.
    pub(crate) fn check_xsrf(
        &self,
        origin: TokenOrigin,
        method: &Method,
        headers: &HeaderMap,
        claim: Option<&str>,
    ) -> Result<(), TokenError> {
        if !self.xsrf || origin != TokenOrigin::Cookie || is_safe(method) {
            return Ok(());
        }
        let sent = headers.get(XSRF_HEADER).map(|v| v.as_bytes());
        // An empty claim is no secret: an empty header would match it, so
        // such a token fails closed like one without the claim.
        let expected = claim.filter(|c| !c.is_empty());
        match (sent, expected) {
            (Some(sent), Some(expected)) if bool::from(sent.ct_eq(expected.as_bytes())) => Ok(()),
            _ => Err(TokenError::XsrfMismatch),
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// A located token as text: what [`HeaderValue::to_str`](http::HeaderValue::to_str)
/// accepts (visible ASCII, tab included), or
/// [`UnreadableHeader`](TokenError::UnreadableHeader).
///
/// A `HeaderValue` holds no control byte but tab and no DEL (http and
/// hyper refuse them when one is made), so visible ASCII is plain ASCII
/// here, which the standard library checks a word at a time.
pub(crate) fn token_text(token: &[u8]) -> Result<&str, TokenError> {
    if !token.is_ascii() {
        return Err(TokenError::UnreadableHeader);
    }
    std::str::from_utf8(token).map_err(|_| TokenError::UnreadableHeader)
}

/// The token of an `Authorization` value: `Bearer`, or `DPoP` when it is
/// read (schemes are case-insensitive, RFC 9110 §11.1), as bytes (see
/// [`TokenLocator::locate`]).
fn authorization_token(value: &[u8], dpop: bool) -> Result<(&[u8], TokenOrigin), TokenError> {
    let value = value.trim_ascii();
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &[][..]),
    };
    let origin = if scheme.eq_ignore_ascii_case(b"bearer") {
        TokenOrigin::Bearer
    } else if dpop && scheme.eq_ignore_ascii_case(b"dpop") {
        TokenOrigin::Dpop
    } else if !value.is_ascii() {
        // Not text at all: a bad request, not merely another scheme (which
        // an optional guard would let through as anonymous).
        return Err(TokenError::UnreadableHeader);
    } else {
        return Err(TokenError::OtherScheme);
    };
    Ok((rest.trim_ascii(), origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn cookie_locator() -> TokenLocator {
        let mut l = TokenLocator::default();
        l.set_cookie("access_token");
        l
    }

    #[test]
    fn header_text_is_what_to_str_accepts() {
        let mut samples: Vec<Vec<u8>> = (0u8..=255).map(|b| vec![b'a', b, b'z']).collect();
        samples.push(b"Bearer eyJ.eyJ.sig".to_vec());
        samples.push(b"Bearer\tabc ".to_vec());
        samples.push("Bearer caf\u{e9}".as_bytes().to_vec());
        for bytes in samples {
            // Not a header value at all (CR, LF, NUL, DEL): no request
            // can carry it.
            let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                continue;
            };
            assert_eq!(token_text(&bytes).ok(), value.to_str().ok(), "{bytes:?}");
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let l = TokenLocator::default();
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let h = headers(&[("authorization", &format!("{scheme} abc"))]);
            assert_eq!(
                l.locate(&h).unwrap(),
                Some((&b"abc"[..], TokenOrigin::Bearer)),
                "{scheme}"
            );
        }
    }

    #[test]
    fn the_dpop_scheme_is_read_only_when_on() {
        let h = headers(&[("authorization", "DPoP abc")]);
        assert_eq!(
            TokenLocator::default().locate(&h).unwrap_err(),
            TokenError::OtherScheme
        );
        let mut l = TokenLocator::default();
        l.set_dpop(true);
        for scheme in ["DPoP", "dpop", "DPOP"] {
            let h = headers(&[("authorization", &format!("{scheme} abc"))]);
            assert_eq!(
                l.locate(&h).unwrap(),
                Some((&b"abc"[..], TokenOrigin::Dpop))
            );
        }
        let h = headers(&[("authorization", "Bearer a"), ("authorization", "DPoP b")]);
        assert_eq!(l.locate(&h).unwrap_err(), TokenError::Ambiguous);
    }

    #[test]
    fn a_bearer_token_that_is_not_text_is_located_but_never_read_as_text() {
        let l = TokenLocator::default();
        let mut h = HeaderMap::new();
        let value = HeaderValue::from_bytes(b"Bearer caf\xc3\xa9").unwrap();
        h.insert(header::AUTHORIZATION, value);
        let (token, origin) = l.locate(&h).unwrap().unwrap();
        assert_eq!((token, origin), (&b"caf\xc3\xa9"[..], TokenOrigin::Bearer));
        assert_eq!(token_text(token), Err(TokenError::UnreadableHeader));
        // A scheme that is not text is not "another scheme": an optional
        // guard must not take such a request for an anonymous one.
        let value = HeaderValue::from_bytes(b"B\xc3\xa9arer abc").unwrap();
        h.insert(header::AUTHORIZATION, value);
        assert_eq!(l.locate(&h).unwrap_err(), TokenError::UnreadableHeader);
    }

    #[test]
    fn no_token_is_none() {
        assert_eq!(
            TokenLocator::default().locate(&HeaderMap::new()).unwrap(),
            None
        );
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_invalid() {
        let l = TokenLocator::default();
        for v in ["Basic dXNlcjpwYXNz", "Token abc"] {
            let err = l.locate(&headers(&[("authorization", v)])).unwrap_err();
            assert_eq!(err, TokenError::OtherScheme, "{v}");
        }
        for v in ["Bearer", "Bearer   "] {
            let err = l.locate(&headers(&[("authorization", v)])).unwrap_err();
            assert_eq!(err, TokenError::Empty, "{v}");
        }
    }

    #[test]
    fn two_tokens_are_a_bad_request() {
        let l = cookie_locator();
        let cases = [
            headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
            headers(&[("authorization", "Bearer a"), ("cookie", "access_token=b")]),
            headers(&[("cookie", "access_token=a; access_token=b")]),
            headers(&[("cookie", "access_token=a"), ("cookie", "access_token=b")]),
        ];
        for h in cases {
            assert_eq!(l.locate(&h).unwrap_err(), TokenError::Ambiguous);
        }
    }

    #[test]
    fn cookie_token_is_found_among_others() {
        let l = cookie_locator();
        let h = headers(&[("cookie", "theme=dark; access_token=tok; lang=it")]);
        assert_eq!(
            l.locate(&h).unwrap(),
            Some((&b"tok"[..], TokenOrigin::Cookie))
        );
        // Not configured: the cookie is ignored.
        assert_eq!(TokenLocator::default().locate(&h).unwrap(), None);
    }

    #[test]
    fn oversized_token_is_rejected_before_parsing() {
        let mut l = TokenLocator::default();
        l.set_max_len(16);
        let h = headers(&[("authorization", &format!("Bearer {}", "a".repeat(17)))]);
        assert_eq!(l.locate(&h).unwrap_err(), TokenError::TooLarge);
        let h = headers(&[("authorization", &format!("Bearer {}", "a".repeat(16)))]);
        assert!(l.locate(&h).unwrap().is_some());
    }

    #[test]
    fn xsrf_only_for_cookie_tokens_on_unsafe_methods() {
        let l = cookie_locator();
        let none = HeaderMap::new();
        let good = headers(&[(XSRF_HEADER, "s3cret")]);
        let bad = headers(&[(XSRF_HEADER, "s3cre7")]);
        let claim = Some("s3cret");
        assert!(l
            .check_xsrf(TokenOrigin::Cookie, &Method::GET, &none, claim)
            .is_ok());
        assert!(l
            .check_xsrf(TokenOrigin::Bearer, &Method::POST, &none, claim)
            .is_ok());
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(l.check_xsrf(TokenOrigin::Cookie, &m, &good, claim).is_ok());
            let err = l
                .check_xsrf(TokenOrigin::Cookie, &m, &bad, claim)
                .unwrap_err();
            assert_eq!(err, TokenError::XsrfMismatch);
            assert!(l.check_xsrf(TokenOrigin::Cookie, &m, &none, claim).is_err());
            // A token without the claim, or with an empty one, can never pass.
            assert!(l.check_xsrf(TokenOrigin::Cookie, &m, &good, None).is_err());
            let empty = headers(&[(XSRF_HEADER, "")]);
            assert!(l
                .check_xsrf(TokenOrigin::Cookie, &m, &empty, Some(""))
                .is_err());
        }
        let mut off = cookie_locator();
        off.set_xsrf(false);
        assert!(off
            .check_xsrf(TokenOrigin::Cookie, &Method::POST, &none, claim)
            .is_ok());
    }
}
