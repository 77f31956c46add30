//! Plans: what an account may use and spend, and how fast.

use crate::Money;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    /// What the plan costs per month (informational until subscriptions are billed).
    pub monthly_price: Money,
    /// Credit granted when an account joins the plan.
    pub included_credits: Money,
    /// Most an account on this plan may spend per calendar month (UTC).
    pub monthly_cap: Money,
    /// Public model names the plan allows; `None` means all.
    pub allowed_models: Option<Vec<String>>,
    /// Requests per minute per key.
    pub rpm: u32,
    /// Tokens per minute per key, if limited.
    pub tpm: Option<u32>,
    /// Requests in flight per key, if limited.
    pub concurrency: Option<u32>,
}

impl Plan {
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models
            .as_ref()
            .is_none_or(|list| list.iter().any(|m| m == model))
    }
}
