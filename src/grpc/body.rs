//! [`ResponseBody`]: tonic's body, in a type refusals can be built in.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The response body of a tonic service behind
    /// [`GrpcMethods`](super::GrpcMethods): tonic's own
    /// [`Body`](tonic::body::Body), which the guards can also build their
    /// refusals in (they need a body made from bytes, which tonic's type
    /// cannot be made from outside tonic). A refusal is a trailers-only
    /// answer, so its body is empty.
    #[derive(Debug, Default)]
    pub struct ResponseBody {
        #[pin]
        inner: tonic::body::Body,
    }
}

impl ResponseBody {
    /// Wraps `body`. A tonic [`Body`](tonic::body::Body) is taken as it
    /// is, without boxing it again.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        Self {
            inner: tonic::body::Body::new(body),
        }
    }

    /// tonic's body.
    pub fn into_inner(self) -> tonic::body::Body {
        self.inner
    }
}

impl From<Bytes> for ResponseBody {
    fn from(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            // Empty from the start, so the server sends the headers with
            // END_STREAM: a trailers-only answer in one frame.
            return Self::default();
        }
        Self::new(http_body_util::Full::new(bytes))
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn bytes_become_a_body_and_empty_bytes_an_ended_one() {
        let empty = ResponseBody::from(Bytes::new());
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
        let full = ResponseBody::from(Bytes::from_static(b"{\"a\":1}"));
        assert!(!full.is_end_stream());
        assert_eq!(full.size_hint().exact(), Some(7));
        let collected = full.collect().await.unwrap().to_bytes();
        assert_eq!(collected, Bytes::from_static(b"{\"a\":1}"));
        let tonic_body = tonic::body::Body::new(http_body_util::Full::new(Bytes::from("x")));
        let wrapped = ResponseBody::new(tonic_body).into_inner();
        assert_eq!(wrapped.collect().await.unwrap().to_bytes(), "x");
    }
}
