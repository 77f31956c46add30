//! Rendering `ApiError` as an HTTP response in OpenAI's error shape
//! `{"error":{"message","type","param","code"}}`, with `Retry-After` when known. Routes of the
//! other ingress protocols re-render the same error in their own shape (`in_shape_of`).

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{ApiError, ErrorCode};

/// An `ApiError` on its way out.
#[derive(Debug)]
pub struct ErrorResponse(pub ApiError);

impl From<ApiError> for ErrorResponse {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl ErrorResponse {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ApiError::new(code, message))
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = protocol::openai::error_body(&e.message, e.code.kind(), e.code_str());
        let mut resp = (status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = e.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(rate) = &e.rate {
            rate_headers(headers, rate);
        }
        // Kept for routes that answer in another protocol's shape.
        resp.extensions_mut().insert(e);
        resp
    }
}

/// Rewrites an error response's body into `protocol`'s error shape; status and headers stay.
/// Used as a response layer on the Anthropic and Gemini routes, so extractor rejections,
/// fallbacks and handler errors all come out in the shape that protocol's SDK reads.
pub fn in_shape_of(protocol: protocol::Protocol, mut resp: Response) -> Response {
    let Some(e) = resp.extensions_mut().remove::<ApiError>() else {
        return resp;
    };
    let status = resp.status().as_u16();
    let body = match protocol {
        protocol::Protocol::OpenAi => return resp,
        protocol::Protocol::Anthropic => protocol::anthropic::error_body(&e.message, status),
        protocol::Protocol::Gemini => protocol::gemini::error_body(&e.message, status),
    };
    let (parts, _) = resp.into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// `X-RateLimit-Limit` (requests per minute), `-Remaining` (requests that would be admitted
/// now) and `-Reset` (seconds until the allowance is whole again).
pub fn rate_headers(headers: &mut axum::http::HeaderMap, rate: &domain::RateDecision) {
    static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    headers.insert(LIMIT.clone(), int_value(rate.limit.into()));
    headers.insert(REMAINING.clone(), int_value(rate.remaining.into()));
    headers.insert(RESET.clone(), int_value(rate.reset_secs));
}

/// A number as a header value, in one allocation (`HeaderValue::from(u64)` takes two).
fn int_value(n: u64) -> HeaderValue {
    let mut digits = itoa::Buffer::new();
    HeaderValue::from_str(digits.format(n)).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

pub type ApiResult<T> = Result<T, ErrorResponse>;
