//! The append-only ledger: every change to a balance is one entry, and a balance is always the
//! sum of its entries.

use crate::{AccountId, Money, UnixMillis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// Credit included with a plan.
    Grant,
    /// Credit bought (mock top-up or Stripe).
    Topup,
    /// A request's cost (negative).
    Usage,
    /// Money given back.
    Refund,
    /// An administrator's correction, either sign.
    Adjustment,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Grant => "grant",
            LedgerKind::Topup => "topup",
            LedgerKind::Usage => "usage",
            LedgerKind::Refund => "refund",
            LedgerKind::Adjustment => "adjustment",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "grant" => LedgerKind::Grant,
            "topup" => LedgerKind::Topup,
            "usage" => LedgerKind::Usage,
            "refund" => LedgerKind::Refund,
            "adjustment" => LedgerKind::Adjustment,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: String,
    pub account_id: AccountId,
    pub kind: LedgerKind,
    /// Positive credits, negative debits.
    pub amount: Money,
    /// The balance right after this entry.
    pub balance_after: Money,
    /// The account's balance version right after this entry (it counts balance changes).
    pub balance_version: i64,
    pub reason: String,
    /// What the entry is about: a usage event id, a payment id. Top-up references are unique,
    /// which makes crediting a payment idempotent.
    pub reference: Option<String>,
    pub created_at: UnixMillis,
}

/// An entry to append; its id, balance and time are assigned on writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLedgerEntry {
    pub account_id: AccountId,
    pub kind: LedgerKind,
    pub amount: Money,
    pub reason: String,
    pub reference: Option<String>,
}
