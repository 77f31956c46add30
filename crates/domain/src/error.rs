//! The one error vocabulary. Every failure a client can see is an `ErrorCode`; one exhaustive
//! mapping gives its HTTP status, OpenAI error `type` and `code`. Ingress protocols render it
//! in their own shape.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed JSON or a missing/invalid field.
    InvalidBody,
    /// Password below the policy.
    WeakPassword,
    /// Email not an address.
    InvalidEmail,
    /// Missing, malformed, unknown, disabled or expired API key.
    InvalidApiKey,
    /// No or bad session/access token on `/api`.
    Unauthenticated,
    /// Wrong email or password.
    InvalidCredentials,
    /// Balance below the floor.
    InsufficientCredits,
    /// The plan's monthly spend cap is reached.
    SpendCapReached,
    /// The key's monthly limit is reached.
    KeyLimitReached,
    /// Authenticated but not permitted (e.g. admin-only route, disabled account).
    Forbidden,
    /// The key or plan does not allow this model.
    ModelNotAllowed,
    /// No such public model.
    ModelNotFound,
    /// No such `/v1` endpoint.
    EndpointNotSupported,
    /// No such resource (key, route).
    NotFound,
    MethodNotAllowed,
    /// Email already registered.
    EmailTaken,
    BodyTooLarge,
    UnsupportedMediaType,
    RateLimitExceeded,
    /// The upstream rejected the request with a 4xx; carries that status.
    UpstreamRejected(u16),
    /// The upstream answered garbage, refused, or failed with a 5xx.
    UpstreamError,
    /// No deployment could take the request.
    UpstreamUnavailable,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The gateway is shutting down or a dependency is down.
    ServiceUnavailable,
    /// Mock top-ups are off because real payments are configured (or the amount is not one
    /// of the allowed ones).
    TopupNotAllowed,
    /// Card payments are not configured.
    PaymentsDisabled,
    /// A payment webhook failed signature verification.
    InvalidSignature,
    Internal,
}

impl ErrorCode {
    /// HTTP status, OpenAI `type`, and `code` — the single mapping.
    pub fn parts(self) -> (u16, &'static str, &'static str) {
        use ErrorCode::*;
        match self {
            InvalidBody => (400, "invalid_request_error", "invalid_body"),
            WeakPassword => (400, "invalid_request_error", "weak_password"),
            InvalidEmail => (400, "invalid_request_error", "invalid_email"),
            InvalidApiKey => (401, "authentication_error", "invalid_api_key"),
            Unauthenticated => (401, "authentication_error", "unauthenticated"),
            InvalidCredentials => (401, "authentication_error", "invalid_credentials"),
            InsufficientCredits => (402, "billing_error", "insufficient_credits"),
            SpendCapReached => (402, "billing_error", "spend_cap_reached"),
            KeyLimitReached => (402, "billing_error", "key_limit_reached"),
            Forbidden => (403, "permission_error", "forbidden"),
            ModelNotAllowed => (403, "permission_error", "model_not_allowed"),
            ModelNotFound => (404, "invalid_request_error", "model_not_found"),
            EndpointNotSupported => (404, "invalid_request_error", "endpoint_not_supported"),
            NotFound => (404, "invalid_request_error", "not_found"),
            MethodNotAllowed => (405, "invalid_request_error", "method_not_allowed"),
            EmailTaken => (409, "invalid_request_error", "email_taken"),
            BodyTooLarge => (413, "invalid_request_error", "body_too_large"),
            UnsupportedMediaType => (415, "invalid_request_error", "unsupported_media_type"),
            RateLimitExceeded => (429, "rate_limit_error", "rate_limit_exceeded"),
            UpstreamRejected(status) => (status, "invalid_request_error", "upstream_rejected"),
            UpstreamError => (502, "upstream_error", "upstream_error"),
            UpstreamUnavailable => (503, "upstream_error", "upstream_unavailable"),
            UpstreamTimeout => (504, "upstream_error", "upstream_timeout"),
            ServiceUnavailable => (503, "api_error", "service_unavailable"),
            TopupNotAllowed => (400, "invalid_request_error", "topup_not_allowed"),
            PaymentsDisabled => (400, "invalid_request_error", "payments_disabled"),
            InvalidSignature => (400, "invalid_request_error", "invalid_signature"),
            Internal => (500, "api_error", "internal_error"),
        }
    }

    pub fn status(self) -> u16 {
        self.parts().0
    }

    pub fn kind(self) -> &'static str {
        self.parts().1
    }

    pub fn as_str(self) -> &'static str {
        self.parts().2
    }
}

/// A client-visible failure: a code and a message for humans. `upstream_code` keeps the
/// upstream's own `code` when its error is relayed, so clients can still branch on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub upstream_code: Option<String>,
    /// Seconds the client should wait before retrying (sent as `Retry-After`).
    pub retry_after: Option<u64>,
    /// The key's request limit at the time, for `X-RateLimit-*` headers.
    pub rate: Option<crate::RateDecision>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            upstream_code: None,
            retry_after: None,
            rate: None,
        }
    }

    /// The `code` field clients see.
    pub fn code_str(&self) -> &str {
        self.upstream_code
            .as_deref()
            .unwrap_or_else(|| self.code.as_str())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}
