//! Endpoints, one file each, grouped by surface.

pub mod anthropic;
pub mod api;
pub mod gemini;
pub mod health;
pub mod v1;

use domain::UnixMillis;
use serde::Serialize;

/// Time as clients see it.
pub fn rfc3339(t: UnixMillis) -> String {
    t.to_rfc3339()
}

/// Query parameters for paginated listings.
#[derive(Debug, serde::Deserialize)]
pub struct Page {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// Items per page when none is asked for, and the most one page returns.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

impl Page {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
    }

    pub fn offset(&self) -> u64 {
        self.offset.unwrap_or(0)
    }
}

/// `{items, total, limit, offset}`.
#[derive(Serialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}
