//! Reading a response body FieldFilter filters, within its limit, and
//! sealing the filtered response: the body's frames gathered without a
//! copy when there is one, the view's buffer vouched for or the document
//! scanned, and the headers that described the unfiltered body put right.

use std::{
    borrow::Cow,
    cell::Cell,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use bytes::{Buf, Bytes};
use http::{header, HeaderValue, Response};
use http_body::Body;

use super::{
    prefiltered::{keeper, vouches_for},
    Pending,
};
use crate::{
    guard::body::{is_length_limit, BoxError},
    metrics::{self, FilterPass},
    model::{fields::filter_document_cow, CompiledPermissions},
};

/// Why a body could not be buffered (the reason for the 500's audit).
pub(super) const OVER_LIMIT: &str = "the response is over the filter's buffer limit";
const UNREADABLE: &str = "the response body could not be read";

/// A response body being buffered, and what filtering it needs.
pub(super) struct Reading {
    pub(super) pending: Pending,
    pub(super) parts: http::response::Parts,
    pub(super) perms: Arc<CompiledPermissions>,
    pub(super) head: bool,
    /// Whether the response has headers that describe the unfiltered
    /// body (see [`BodyHeaders::describes_body`](crate::guard::body::BodyHeaders::describes_body)).
    pub(super) describes_body: bool,
    /// Bytes buffered so far.
    pub(super) len: usize,
    pub(super) buffer: Buffer,
}

/// The body's data so far: nothing, the first frame's own buffer (no
/// copy), or, from the second frame on, one contiguous copy.
pub(super) enum Buffer {
    Empty,
    One(Bytes),
    Many(Vec<u8>),
}

impl Reading {
    /// Reads `body` to its end, within the limit (as `Limited` would: more
    /// than `limit` bytes is an error). Trailers are dropped, as
    /// `Collected::to_bytes` drops them.
    pub(super) fn poll_body<B>(
        &mut self,
        mut body: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, &'static str>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let limit = self.pending.config.limit;
        loop {
            match ready!(body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        let n = data.remaining();
                        if n > limit - self.len {
                            return Poll::Ready(Err(OVER_LIMIT));
                        }
                        self.len += n;
                        // Zero-copy when the frame is a `Bytes` already.
                        let chunk = data.copy_to_bytes(n);
                        self.buffer = match std::mem::replace(&mut self.buffer, Buffer::Empty) {
                            Buffer::Empty => Buffer::One(chunk),
                            Buffer::One(first) => {
                                let mut all = Vec::with_capacity(first.len() + chunk.len());
                                all.extend_from_slice(&first);
                                all.extend_from_slice(&chunk);
                                Buffer::Many(all)
                            }
                            Buffer::Many(mut all) => {
                                all.extend_from_slice(&chunk);
                                Buffer::Many(all)
                            }
                        };
                    }
                    // A body that knows it is done (a `Full`) is not
                    // polled again for the `None` it would answer.
                    if body.is_end_stream() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    let e: BoxError = e.into();
                    return Poll::Ready(Err(if is_length_limit(&*e) {
                        OVER_LIMIT
                    } else {
                        UNREADABLE
                    }));
                }
                None => break,
            }
        }
        Poll::Ready(Ok(
            match std::mem::replace(&mut self.buffer, Buffer::Empty) {
                Buffer::Empty => Bytes::new(),
                Buffer::One(bytes) => bytes,
                Buffer::Many(all) => Bytes::from(all),
            },
        ))
    }

    /// The filtered response, or the 500 that replaces it.
    pub(super) fn finish<B: From<Bytes>>(self, read: Result<Bytes, &'static str>) -> Response<B> {
        let Self {
            pending,
            mut parts,
            perms,
            head,
            describes_body,
            ..
        } = self;
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(why) => return pending.internal(why),
        };
        if head && bytes.is_empty() {
            parts.headers.remove(header::CONTENT_LENGTH);
            return Response::from_parts(parts, B::from(bytes));
        }
        let entity = pending.entity().expect("checked before reading the body");
        let context = pending
            .context
            .as_ref()
            .expect("checked before reading the body");
        let stamp = context.prefiltered().filter(|stamp| {
            vouches_for(
                stamp,
                &bytes,
                &perms,
                entity,
                &pending.config,
                context.requirement(),
            )
        });
        if let Some(stamp) = stamp {
            // Serialized already filtered, for this caller, by this rule:
            // another pass would find nothing to cut.
            metrics::response_filtered(FilterPass::Serialized);
            metrics::fields_removed(entity, stamp.removed);
            return sealed(parts, bytes, describes_body);
        }
        let removed = Cell::new(0u64);
        let keeps = keeper(&pending.config, &perms, entity);
        let keep = |key: &str| {
            let kept = keeps(key);
            if !kept {
                removed.set(removed.get() + 1);
            }
            kept
        };
        match filter_document_cow(&bytes, keep) {
            Ok(filtered) => {
                metrics::response_filtered(FilterPass::Scanned);
                metrics::fields_removed(entity, removed.get());
                // Nothing dropped: the handler's buffer goes on as is.
                let filtered = match filtered {
                    Cow::Borrowed(kept) => bytes.slice_ref(kept),
                    Cow::Owned(cut) => Bytes::from(cut),
                };
                sealed(parts, filtered, describes_body)
            }
            Err(e) => pending.internal(&e.to_string()),
        }
    }
}

/// The response with its filtered body, and the headers that described
/// the unfiltered one put right. `describes_body` is whether there are any
/// (read with the others in [`BodyHeaders::of`](crate::guard::body::BodyHeaders::of)).
fn sealed<B: From<Bytes>>(
    mut parts: http::response::Parts,
    filtered: Bytes,
    describes_body: bool,
) -> Response<B> {
    // Byte ranges of the unfiltered document mean nothing now, and the
    // body is one buffer, not a chunked stream. The validator may describe
    // the unfiltered document: a cache revalidating with it could get
    // another caller's view confirmed as fresh.
    if describes_body {
        for name in [
            header::ACCEPT_RANGES,
            header::TRANSFER_ENCODING,
            header::ETAG,
        ] {
            parts.headers.remove(name);
        }
    }
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(filtered.len()));
    Response::from_parts(parts, B::from(filtered))
}
