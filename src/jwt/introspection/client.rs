//! The HTTP call to the introspection endpoint (RFC 7662 §2.1) and this
//! service's authentication to it.

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};

use crate::jwt::{
    http::{read_capped, transport_error},
    source::FetchError,
};

/// How this service authenticates to the introspection endpoint.
#[derive(Clone, Default)]
pub(super) enum ClientAuth {
    /// No credentials (some IAMs protect the endpoint by network alone).
    #[default]
    None,
    /// RFC 6749 §2.3.1 HTTP Basic.
    Basic { id: String, secret: String },
    /// RFC 6749 §2.3.1 credentials in the form body.
    Post { id: String, secret: String },
    /// A bearer token of this service's own (RFC 7662 §2.1 allows it).
    Bearer(String),
}

impl ClientAuth {
    /// The method's name, for `Debug` output that holds no secret.
    pub(super) fn method(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Basic { .. } => "client_secret_basic",
            Self::Post { .. } => "client_secret_post",
            Self::Bearer(_) => "bearer",
        }
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method())
    }
}

/// The endpoint, its client and the credentials, prepared once.
pub(super) struct Endpoint {
    url: reqwest::Url,
    client: reqwest::Client,
    /// The `Authorization` value for Basic and Bearer, marked sensitive.
    authorization: Option<HeaderValue>,
    /// The form suffix for `client_secret_post`, already encoded.
    post_credentials: Option<String>,
    timeout: Duration,
    max_bytes: usize,
    calls: AtomicU64,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url.as_str())
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// # Errors
    ///
    /// When `url` is not an absolute http(s) URL, a credential cannot be
    /// sent in a header, or the HTTP client cannot be built.
    pub(super) fn new(
        url: &str,
        auth: &ClientAuth,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Self, FetchError> {
        crate::jwt::http::check_url(url)?;
        let url = reqwest::Url::parse(url).map_err(|e| FetchError::Invalid(e.to_string()))?;
        let header = |value: String| {
            HeaderValue::try_from(value)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| {
                    FetchError::Invalid("the bearer credential is not a header value".into())
                })
        };
        let (authorization, post_credentials) = match auth {
            ClientAuth::None => (None, None),
            ClientAuth::Basic { id, secret } => (Some(header(basic(id, secret))?), None),
            ClientAuth::Post { id, secret } => {
                let mut form = String::from("&client_id=");
                form_encode(&mut form, id);
                form.push_str("&client_secret=");
                form_encode(&mut form, secret);
                (None, Some(form))
            }
            ClientAuth::Bearer(token) => (Some(header(format!("Bearer {token}"))?), None),
        };
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Idle connections are kept (the JWKS client keeps none): the
            // endpoint is called for every new token, and a kept
            // connection saves a handshake per call.
            //
            // An answer must come from the configured origin: a redirect
            // is a misconfiguration or an attack, never followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        Ok(Self {
            url,
            client,
            authorization,
            post_credentials,
            timeout,
            max_bytes,
            calls: AtomicU64::new(0),
        })
    }

    pub(super) fn url(&self) -> &str {
        self.url.as_str()
    }

    pub(super) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Asks about `token`: the raw body of a 2xx answer, at most the
    /// configured bytes.
    pub(super) async fn call(&self, token: &str) -> Result<Bytes, FetchError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut form = String::with_capacity(token.len() + 64);
        form.push_str("token=");
        form_encode(&mut form, token);
        form.push_str("&token_type_hint=access_token");
        if let Some(credentials) = &self.post_credentials {
            form.push_str(credentials);
        }
        let mut req = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(form);
        if let Some(authorization) = &self.authorization {
            req = req.header(AUTHORIZATION, authorization.clone());
        }
        let res = req
            .send()
            .await
            .map_err(|e| transport_error(e.without_url(), self.timeout))?;
        if !res.status().is_success() {
            return Err(FetchError::Status(res.status().as_u16()));
        }
        read_capped(res, self.max_bytes, self.timeout).await
    }
}

/// The `Authorization` value of RFC 6749 §2.3.1: the client id and secret
/// each form-urlencoded, joined by `:`, then base64. Encoding first is what
/// lets an id or secret hold `:` (many IAMs skip it and break on one).
fn basic(id: &str, secret: &str) -> String {
    let mut pair = String::with_capacity(id.len() + secret.len() + 8);
    form_encode(&mut pair, id);
    pair.push(':');
    form_encode(&mut pair, secret);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Appends `value` as `application/x-www-form-urlencoded` (the WHATWG URL
/// standard's byte serializer, which RFC 6749 Appendix B refers to):
/// alphanumerics and `*-._` as they are, space as `+`, every other byte
/// percent-encoded.
fn form_encode(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: &str) -> String {
        let mut out = String::new();
        form_encode(&mut out, value);
        out
    }

    #[test]
    fn form_encoding_keeps_only_the_safe_bytes() {
        assert_eq!(encoded("abcXYZ019*-._"), "abcXYZ019*-._");
        assert_eq!(
            encoded("a b+c/d=e&f%g~h:i"),
            "a+b%2Bc%2Fd%3De%26f%25g%7Eh%3Ai"
        );
        assert_eq!(encoded("é"), "%C3%A9");
        assert_eq!(encoded(""), "");
    }

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        // RFC 6749 §2.3.1: "client:1" / "s3cr:t" must stay two parts.
        let value = basic("client:1", "s3 cr:t");
        let raw = value.strip_prefix("Basic ").expect("a Basic value");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .expect("base64");
        assert_eq!(decoded, b"client%3A1:s3+cr%3At");
    }

    #[test]
    fn debug_names_the_method_never_the_secret() {
        let auth = ClientAuth::Post {
            id: "svc".into(),
            secret: "hunter2".into(),
        };
        assert_eq!(format!("{auth:?}"), "client_secret_post");
        let endpoint = Endpoint::new(
            "https://iam.example.com/introspect",
            &ClientAuth::Basic {
                id: "svc".into(),
                secret: "hunter2".into(),
            },
            Duration::from_secs(1),
            1024,
        )
        .expect("a valid endpoint");
        assert!(!format!("{endpoint:?}").contains("hunter2"));
    }

    #[test]
    fn a_bad_url_or_bearer_is_an_error_not_a_panic() {
        let none = ClientAuth::None;
        for url in ["", "ftp://iam/introspect", "/introspect", "http://"] {
            assert!(
                Endpoint::new(url, &none, Duration::from_secs(1), 1024).is_err(),
                "{url}"
            );
        }
        let newline = ClientAuth::Bearer("a\nb".into());
        assert!(Endpoint::new(
            "https://iam.example.com/introspect",
            &newline,
            Duration::from_secs(1),
            1024
        )
        .is_err());
    }
}
