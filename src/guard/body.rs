//! Body and media-type helpers shared by the guards: what is JSON, what is
//! content-encoded, whether a body error is a length limit, and what to do
//! with a body nobody read when a request is refused.

use std::error::Error as StdError;

use bytes::Buf;
use http::{header, HeaderMap, HeaderValue, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError};

use super::future::ResponseFuture;

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// Whether `headers` declare exactly one JSON media type:
/// `application/json` or `application/<anything>+json`, parameters allowed.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    is_json_media_type(value.as_bytes())
}

/// Whether one `Content-Type` value is a JSON media type.
fn is_json_media_type(value: &[u8]) -> bool {
    // What serializers write, compared whole before it is parsed.
    if value == b"application/json" {
        return true;
    }
    let essence = value.split(|b| *b == b';').next().unwrap_or_default();
    let essence = essence.trim_ascii();
    let Some(slash) = essence.iter().position(|b| *b == b'/') else {
        return false;
    };
    let (kind, subtype) = (&essence[..slash], &essence[slash + 1..]);
    kind.eq_ignore_ascii_case(b"application")
        && (subtype.eq_ignore_ascii_case(b"json")
            || (subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json")))
}

/// Whether `headers` declare a content coding other than `identity`.
pub(crate) fn is_encoded(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|v| is_coded(v.as_bytes()))
}

/// Whether one `Content-Encoding` value names a coding but `identity`.
fn is_coded(value: &[u8]) -> bool {
    value.split(|b| *b == b',').any(|coding| {
        let coding = coding.trim_ascii();
        !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity")
    })
}

/// What a response's headers say about its body, read in one pass over
/// them: a response usually carries a few headers, and each lookup by
/// name hashes the name whether or not the header is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyHeaders {
    /// Exactly one `Content-Type`, and it is JSON (as [`is_json`]).
    pub(crate) json: bool,
    /// A content coding other than `identity` (as [`is_encoded`]).
    pub(crate) encoded: bool,
    /// The first `Content-Length` (as [`content_length`]).
    pub(crate) length: Result<Option<u64>, ()>,
    /// `Content-Length`, `Accept-Ranges`, `Transfer-Encoding` or `ETag`
    /// is present: headers that describe the body as it was.
    pub(crate) describes_body: bool,
}

impl BodyHeaders {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut content_types = 0u32;
        let mut json = false;
        let mut encoded = false;
        let mut length = None;
        let mut describes_body = false;
        for (name, value) in headers {
            if name == header::CONTENT_TYPE {
                content_types += 1;
                json = is_json_media_type(value.as_bytes());
            } else if name == header::CONTENT_ENCODING {
                encoded |= is_coded(value.as_bytes());
            } else if name == header::CONTENT_LENGTH {
                length = length.or(Some(value));
                describes_body = true;
            } else if name == header::ACCEPT_RANGES
                || name == header::TRANSFER_ENCODING
                || name == header::ETAG
            {
                describes_body = true;
            }
        }
        Self {
            json: json && content_types == 1,
            encoded,
            length: length.map_or(Ok(None), parse_length),
            describes_body,
        }
    }
}

fn parse_length(value: &HeaderValue) -> Result<Option<u64>, ()> {
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or(())
}

/// `Content-Length`: `Ok(None)` when absent, `Err(())` when malformed.
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ()> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => parse_length(v),
    }
}

/// Whether `e` or anything in its source chain is a body length limit:
/// an outer `Limited` (tower-http's `RequestBodyLimit`) reaches us wrapped
/// in the framework's body error.
pub(crate) fn is_length_limit(e: &(dyn StdError + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Tells the client the connection closes after this response.
pub(crate) fn close_connection<B>(res: &mut Response<B>) {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// What to do with a refused request's unread body.
pub(crate) enum Unread<B, R> {
    /// Nothing to read, or the connection closes: answer now.
    Answer(Response<R>),
    /// Read and discard the body first (see [`drained`]).
    Drain(B, Response<R>),
}

/// Decides how `res` answers `req`, a request refused before its body was
/// read.
///
/// An HTTP/1.1 server must read the rest of a request before the
/// connection can carry the next one; hyper gives up on a body that has
/// not fully arrived and drops the connection without saying so, and the
/// client's next request on it fails. So the unread body is read and
/// discarded, up to `limit` bytes, and the connection stays usable. Past
/// the limit, on a read error, or when the client waits for `100 Continue`
/// (it has not sent the body and should not), the answer says
/// `Connection: close` instead, so the client knows.
///
/// A request without a body costs nothing more than the check.
///
/// Over HTTP/2 (and later) a request is one stream of many on the
/// connection: the server answers and resets the stream's unread rest
/// without touching the others, so nothing is drained. Draining there
/// would even be wrong: a client-streaming or bidirectional gRPC call
/// keeps its request stream open while it waits for the answer, so the
/// refusal would never be sent.
pub(crate) fn unread<B: Body, R>(
    req: Request<B>,
    mut res: Response<R>,
    limit: usize,
) -> Unread<B, R> {
    if req.body().is_end_stream() || req.version() >= http::Version::HTTP_2 {
        return Unread::Answer(res);
    }
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let too_long =
        content_length(req.headers()).map_or(true, |n| n.is_some_and(|n| n > limit as u64));
    if expects_continue || too_long {
        close_connection(&mut res);
        return Unread::Answer(res);
    }
    Unread::Drain(req.into_body(), res)
}

/// `res` once `body` is drained, or with `Connection: close` when it could
/// not be within `limit`.
pub(crate) async fn drained<B, R>(body: B, mut res: Response<R>, limit: usize) -> Response<R>
where
    B: Body + Send,
    B::Data: Send,
{
    if !drain(body, limit).await {
        close_connection(&mut res);
    }
    res
}

/// [`unread`] then [`drained`], from inside a future.
pub(crate) async fn refuse_async<B, R>(
    req: Request<B>,
    res: Response<R>,
    limit: usize,
) -> Response<R>
where
    B: Body + Send,
    B::Data: Send,
{
    match unread(req, res, limit) {
        Unread::Answer(res) => res,
        Unread::Drain(body, res) => drained(body, res, limit).await,
    }
}

/// [`unread`] then [`drained`], as a guard's response future.
pub(crate) fn refused<ReqBody, ResBody, F, E>(
    req: Request<ReqBody>,
    res: Response<ResBody>,
    limit: usize,
) -> ResponseFuture<F, ResBody, E>
where
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ResBody: Send + 'static,
    E: 'static,
{
    match unread(req, res, limit) {
        Unread::Answer(res) => ResponseFuture::ready(res),
        Unread::Drain(body, res) => {
            ResponseFuture::boxed(Box::pin(async move { Ok(drained(body, res, limit).await) }))
        }
    }
}

/// Reads and discards `body` up to `limit` bytes; `true` when it ended
/// within them.
async fn drain<B>(body: B, limit: usize) -> bool
where
    B: Body + Send,
    B::Data: Send,
{
    let mut body = std::pin::pin!(body);
    let mut read = 0usize;
    loop {
        match body.frame().await {
            None => return true,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read = read.saturating_add(data.remaining());
                    if read > limit {
                        return false;
                    }
                }
            }
            Some(Err(_)) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use bytes::Bytes;
    use http_body_util::{Full, Limited};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            "application/vnd.api+json ;x=y",
        ] {
            assert!(is_json(&headers(&[("content-type", ok)])), "{ok}");
        }
        for bad in [
            "text/json",
            "application/jsonx",
            "application/+json",
            "text/plain",
            "json",
            "",
        ] {
            assert!(!is_json(&headers(&[("content-type", bad)])), "{bad}");
        }
        assert!(!is_json(&headers(&[])));
        assert!(!is_json(&headers(&[
            ("content-type", "application/json"),
            ("content-type", "text/plain")
        ])));
    }

    proptest::proptest! {
        /// One pass over the headers answers as the lookups by name do.
        #[test]
        fn one_pass_agrees_with_the_lookups(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "content-type", "content-encoding", "content-length",
                        "etag", "accept-ranges", "transfer-encoding", "x-other",
                    ]),
                    proptest::sample::select(vec![
                        "application/json", "application/problem+json; a=b", "text/plain",
                        "gzip", "identity", "identity, br", "12", " 7 ", "-1", "", "\"v1\"",
                    ]),
                ),
                0..6,
            )
        ) {
            let h = headers(&pairs);
            let seen = BodyHeaders::of(&h);
            proptest::prop_assert_eq!(seen.json, is_json(&h));
            proptest::prop_assert_eq!(seen.encoded, is_encoded(&h));
            proptest::prop_assert_eq!(seen.length, content_length(&h));
            let describes = [
                header::CONTENT_LENGTH,
                header::ACCEPT_RANGES,
                header::TRANSFER_ENCODING,
                header::ETAG,
            ]
            .iter()
            .any(|name| h.contains_key(name));
            proptest::prop_assert_eq!(seen.describes_body, describes);
        }
    }

    #[test]
    fn content_codings() {
        assert!(!is_encoded(&headers(&[])));
        assert!(!is_encoded(&headers(&[("content-encoding", "identity")])));
        assert!(is_encoded(&headers(&[("content-encoding", "gzip")])));
        assert!(is_encoded(&headers(&[(
            "content-encoding",
            "identity, br"
        )])));
    }

    #[test]
    fn content_length_values() {
        assert_eq!(content_length(&headers(&[])), Ok(None));
        assert_eq!(
            content_length(&headers(&[("content-length", " 12 ")])),
            Ok(Some(12))
        );
        assert_eq!(
            content_length(&headers(&[("content-length", "-1")])),
            Err(())
        );
        assert_eq!(
            content_length(&headers(&[("content-length", "1e3")])),
            Err(())
        );
    }

    #[test]
    fn length_limit_is_found_through_wrappers() {
        #[derive(Debug)]
        struct Wrapper(LengthLimitError);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("wrapped")
            }
        }
        impl StdError for Wrapper {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let limited = Limited::new(Full::new(Bytes::from_static(b"abc")), 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt.block_on(limited.collect()).unwrap_err();
        assert!(is_length_limit(&*err));
        let inner = *err.downcast::<LengthLimitError>().unwrap();
        assert!(is_length_limit(&Wrapper(inner)));
        assert!(!is_length_limit(&std::io::Error::other("reset")));
    }

    #[test]
    fn drain_reads_up_to_its_limit() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let body = || Full::new(Bytes::from_static(b"0123456789"));
        assert!(rt.block_on(drain(body(), 10)));
        assert!(!rt.block_on(drain(body(), 9)));
        assert!(rt.block_on(drain(Full::new(Bytes::new()), 0)));
    }
}
