//! `X-Request-Id` on every request and response: the client's own when it sent one, else a
//! new time-ordered id (UUIDv7, so logs sort by arrival). One layer does both halves, where
//! tower-http's pair would also file the id in the request's extensions and wrap one more
//! future around every request.

use axum::http::{HeaderName, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tower::{Layer, Service};

pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A new request id.
fn new_id() -> Option<HeaderValue> {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(id).ok()
}

#[derive(Clone, Copy)]
pub(crate) struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

#[derive(Clone)]
pub(crate) struct RequestIdService<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = match req.headers().get(&REQUEST_ID) {
            Some(v) => Some(v.clone()),
            None => new_id().inspect(|v| {
                req.headers_mut().insert(REQUEST_ID.clone(), v.clone());
            }),
        };
        RequestIdFuture {
            inner: self.inner.call(req),
            id,
        }
    }
}

pin_project! {
    /// Copies the request's id onto the response, unless the handler set one.
    pub(crate) struct RequestIdFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, R, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut resp = ready!(this.inner.poll(cx))?;
        if let Some(id) = this.id.take() {
            resp.headers_mut().entry(&REQUEST_ID).or_insert(id);
        }
        Poll::Ready(Ok(resp))
    }
}
