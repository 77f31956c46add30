//! Usage events: one per `/v1` request, whatever its outcome.

use crate::{AccountId, KeyId, Money, UnixMillis, UsageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageStatus {
    /// The upstream answered and the answer reached the client.
    Ok,
    /// The request failed (upstream error, timeout, gateway error).
    Error,
    /// A stream ended early (client went away or upstream died mid-stream).
    Partial,
}

impl UsageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageStatus::Ok => "ok",
            UsageStatus::Error => "error",
            UsageStatus::Partial => "partial",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(UsageStatus::Ok),
            "error" => Some(UsageStatus::Error),
            "partial" => Some(UsageStatus::Partial),
            _ => None,
        }
    }
}

/// One try at one deployment, in the order they were made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    /// `provider/upstream_model`.
    pub deployment: String,
    /// `ok`, an HTTP status (`http_503`), `timeout`, `connect_error`, `invalid_response`,
    /// `transport_error`, or `rejected` for a client error that is not retried.
    pub outcome: String,
    /// Time until the answer started (or the attempt failed).
    pub latency_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    pub id: UsageId,
    pub account_id: AccountId,
    pub key_id: KeyId,
    /// The endpoint, e.g. `chat.completions`.
    pub endpoint: String,
    pub public_model: String,
    pub upstream_model: String,
    pub provider: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub cost: Money,
    /// Token counts were estimated by the gateway, not reported by the upstream.
    pub estimated: bool,
    pub latency_ms: u64,
    pub status: UsageStatus,
    pub http_status: u16,
    pub error_code: Option<String>,
    pub request_id: String,
    pub stream: bool,
    pub created_at: UnixMillis,
    /// Every deployment tried, in order; the last one answered when `status` is not `error`.
    pub attempts: Vec<Attempt>,
    /// The ledger debit that paid for this event, set when it is stored: the usage writer
    /// debits a batch once per account and month. `None` when it cost nothing.
    pub ledger_entry_id: Option<String>,
}
