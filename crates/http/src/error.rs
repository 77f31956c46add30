//! Rendering `ApiError` as an HTTP response in OpenAI's error shape
//! `{"error":{"message","type","param","code"}}`, with `Retry-After` when known.

use axum::http::{header, HeaderValue, StatusCode};
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
        resp
    }
}

/// `X-RateLimit-Limit` (requests per minute), `-Remaining` (requests that would be admitted
/// now) and `-Reset` (seconds until the allowance is whole again).
pub fn rate_headers(headers: &mut axum::http::HeaderMap, rate: &domain::RateDecision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(rate.reset_secs));
}

pub type ApiResult<T> = Result<T, ErrorResponse>;
