//! The gRPC rendering of a refusal: a trailers-only answer whose status
//! travels in `grpc-status` / `grpc-message` headers, and how a gRPC call
//! is recognised.

use bytes::Bytes;
use http::{header, HeaderValue, Response};

use super::{ErrorCode, Rejection};

impl ErrorCode {
    /// The gRPC status code this code is answered with by the gRPC
    /// renderer ([`ErrorRenderer::grpc`](crate::ErrorRenderer::grpc)):
    ///
    /// | HTTP status | gRPC status |
    /// |---|---|
    /// | 400, 413, 415 | `INVALID_ARGUMENT` (3) |
    /// | 401 | `UNAUTHENTICATED` (16) |
    /// | 403 | `PERMISSION_DENIED` (7) |
    /// | 500 | `INTERNAL` (13) |
    /// | 503 | `UNAVAILABLE` (14) |
    pub const fn grpc_code(self) -> i32 {
        match self {
            Self::InvalidRequest
            | Self::TenantRequired
            | Self::InvalidBody
            | Self::PayloadTooLarge
            | Self::UnsupportedMediaType => 3,
            Self::InvalidToken | Self::InvalidDpopProof | Self::UseDpopNonce => 16,
            Self::TenantNotPermitted
            | Self::XsrfMismatch
            | Self::InsufficientScope
            | Self::ActionNotPermitted
            | Self::PermissionDenied
            | Self::InsufficientOAuthScope
            | Self::RoleRequired
            | Self::ForbiddenFields => 7,
            Self::Internal => 13,
            Self::IamUnavailable => 14,
        }
    }
}

/// The `grpc-message` header name.
const GRPC_MESSAGE: &str = "grpc-message";
/// The header naming the rejection's [`ErrorCode`] in a gRPC answer.
const GRPC_ERROR_CODE: &str = "iam-guard-code";

/// A trailers-only gRPC answer: the status travels in the headers of an
/// HTTP 200 with no body, which gRPC clients read as the call's status.
pub(super) fn grpc_response(rejection: &Rejection) -> Response<Bytes> {
    let mut res = Response::new(Bytes::new());
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(rejection.code.grpc_code()));
    // Percent-encoding leaves only visible ASCII and spaces, which are
    // always a valid header value.
    if let Ok(message) = HeaderValue::from_str(&grpc_percent_encode(rejection.message())) {
        headers.insert(GRPC_MESSAGE, message);
    }
    headers.insert(
        GRPC_ERROR_CODE,
        HeaderValue::from_static(rejection.code.as_str()),
    );
    res
}

/// `grpc-message` encoding (gRPC over HTTP/2, "Responses"): UTF-8 bytes
/// outside `%x20-%x7E`, and `%` itself, become `%XX` with upper-case hex
/// digits; everything else stays as it is.
fn grpc_percent_encode(message: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7E).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    out
}

/// Whether `headers` declare a gRPC request: `application/grpc`, alone or
/// with a `+format` suffix or parameters (gRPC-Web's `application/grpc-web`
/// is another protocol, answered over its own translation layer).
pub(crate) fn is_grpc(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let value = value.as_bytes();
    const GRPC: &[u8] = b"application/grpc";
    value.len() >= GRPC.len()
        && value[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(value.get(GRPC.len()), None | Some(b'+' | b';' | b' '))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    use crate::rejection::ErrorRenderer;

    #[test]
    fn grpc_message_is_percent_encoded_as_the_grpc_spec_says() {
        assert_eq!(grpc_percent_encode("plain text, 100"), "plain text, 100");
        assert_eq!(grpc_percent_encode("50% off"), "50%25 off");
        assert_eq!(grpc_percent_encode("a\nb\tc"), "a%0Ab%09c");
        assert_eq!(grpc_percent_encode("caf\u{e9}"), "caf%C3%A9");
        assert_eq!(grpc_percent_encode("\u{7f}~ "), "%7F~ ");
        // What a client decodes is what was meant.
        let message = "the x-org header is required: 100% \u{2713}\r\n";
        let encoded = grpc_percent_encode(message);
        assert!(
            encoded.bytes().all(|b| (0x20..=0x7E).contains(&b)),
            "{encoded}"
        );
        assert_eq!(percent_decode(&encoded), message);
    }

    fn percent_decode(encoded: &str) -> String {
        let mut decoded = Vec::new();
        let mut bytes = encoded.bytes();
        while let Some(b) = bytes.next() {
            if b == b'%' {
                let hex = [bytes.next().unwrap(), bytes.next().unwrap()];
                decoded.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap(), 16).unwrap());
            } else {
                decoded.push(b);
            }
        }
        String::from_utf8(decoded).unwrap()
    }

    proptest::proptest! {
        /// Whatever a message holds, the gRPC answer carries it in a valid
        /// `grpc-message` that decodes back to it.
        #[test]
        fn every_message_survives_the_grpc_renderer(message in proptest::prelude::any::<String>()) {
            let res = ErrorRenderer::grpc().render(&Rejection::new(ErrorCode::PermissionDenied, message.clone()));
            let header = res.headers().get("grpc-message").expect("always set");
            proptest::prop_assert_eq!(percent_decode(header.to_str().unwrap()), message);
        }
    }

    #[test]
    fn grpc_renderer_answers_trailers_only_with_the_status_in_the_headers() {
        for (rejection, status) in [
            (Rejection::missing_token(), "16"),
            (Rejection::invalid_token("the token has expired"), "16"),
            (Rejection::new(ErrorCode::InsufficientScope, "no"), "7"),
            (Rejection::new(ErrorCode::ForbiddenFields, "no"), "7"),
            (Rejection::new(ErrorCode::InvalidRequest, "two"), "3"),
            (Rejection::new(ErrorCode::TenantRequired, "x-org"), "3"),
            (Rejection::new(ErrorCode::PayloadTooLarge, "big"), "3"),
            (Rejection::new(ErrorCode::UnsupportedMediaType, "xml"), "3"),
            (Rejection::new(ErrorCode::Internal, "wiring"), "13"),
            (Rejection::iam_unavailable("down"), "14"),
        ] {
            let res = ErrorRenderer::grpc().render(&rejection);
            let code = rejection.code();
            assert_eq!(res.status(), StatusCode::OK, "{code}");
            assert_eq!(res.headers()[header::CONTENT_TYPE], "application/grpc");
            assert_eq!(res.headers()["grpc-status"], status, "{code}");
            assert_eq!(code.grpc_code().to_string(), status);
            assert_eq!(res.headers()["grpc-message"], rejection.message());
            assert_eq!(res.headers()["iam-guard-code"], code.as_str());
            assert!(
                res.body().is_empty(),
                "{code}: a trailers-only answer has no body"
            );
            assert!(res.headers().get(header::CONTENT_LENGTH).is_none());
        }
    }

    #[test]
    fn grpc_renderer_keeps_the_challenges_and_retry_after() {
        let res = ErrorRenderer::grpc().render(&Rejection::missing_token());
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let res = ErrorRenderer::grpc().render(&Rejection::new(ErrorCode::PermissionDenied, "no"));
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_scope\""
        );
        let res = ErrorRenderer::grpc().render(&Rejection::iam_unavailable("down"));
        assert_eq!(res.headers()[header::RETRY_AFTER], "5");
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(
            format!("{:?}", ErrorRenderer::grpc()),
            "ErrorRenderer(\"grpc\")"
        );
        assert!(!ErrorRenderer::grpc().is_http_only());
        assert!(ErrorRenderer::json().is_http_only());
        assert!(ErrorRenderer::problem_json().is_http_only());
        assert!(!ErrorRenderer::custom(|_| Response::new(Bytes::new())).is_http_only());
    }

    #[test]
    fn grpc_content_types_are_recognised() {
        let with = |value: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_grpc(&headers)
        };
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC+json",
            "application/grpc; charset=utf-8",
        ] {
            assert!(with(yes), "{yes}");
        }
        for no in [
            "application/json",
            "application/grpc-web",
            "application/grpc-web+proto",
            "application/grpcx",
            "application/gr",
            "text/plain",
        ] {
            assert!(!with(no), "{no}");
        }
        assert!(!is_grpc(&http::HeaderMap::new()));
    }
}
