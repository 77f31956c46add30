//! Credit: balances, the ledger as the account holder sees it, mock top-ups, administrators'
//! grants and deductions, and the ledger check. Every change is a ledger entry first and an
//! in-memory wallet update second, under the wallet gate.

use crate::{internal, Engine};
use domain::{
    AccountId, ApiError, ErrorCode, LedgerEntry, LedgerKind, Money, NewLedgerEntry, UnixMillis,
};
use store::{LedgerMismatch, StoreError};

/// Amounts a mock top-up may add, in whole dollars (when card payments are off).
pub const MOCK_TOPUP_AMOUNTS: [i64; 5] = [10, 25, 50, 100, 500];

/// What `GET /api/billing/balance` shows.
#[derive(Debug, Clone)]
pub struct Balance {
    pub balance: Money,
    /// Held by requests in flight.
    pub reserved: Money,
    pub plan_name: String,
    pub monthly_spend: Money,
    pub monthly_cap: Money,
}

impl Engine {
    pub async fn balance(&self, account: &AccountId, plan: &str) -> Result<Balance, ApiError> {
        let wallet = self
            .wallets
            .wallet(self.store.as_ref(), account)
            .await
            .map_err(|e| internal("loading a balance", e))?;
        let view = wallet.view(UnixMillis::now());
        let plan = self.plan_of(plan)?;
        Ok(Balance {
            balance: view.balance,
            reserved: view.reserved,
            plan_name: plan.name.clone(),
            monthly_spend: view.month_spend,
            monthly_cap: plan.monthly_cap,
        })
    }

    pub async fn transactions(
        &self,
        account: &AccountId,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<LedgerEntry>, u64), ApiError> {
        self.store
            .list_ledger(account, limit, offset)
            .await
            .map_err(|e| internal("listing transactions", e))
    }

    /// Writes one entry and applies it to the account's wallet. A top-up whose reference was
    /// already credited returns `Ok(None)`: crediting a payment is idempotent.
    pub(crate) async fn post_entry(
        &self,
        entry: NewLedgerEntry,
    ) -> Result<Option<LedgerEntry>, ApiError> {
        let account = entry.account_id.clone();
        let amount = entry.amount;
        let result = self
            .wallets
            .credit(async {
                let written = self
                    .store
                    .append_ledger(std::slice::from_ref(&entry), UnixMillis::now())
                    .await?;
                Ok::<_, StoreError>((written.into_iter().next(), vec![(account, amount)]))
            })
            .await;
        match result {
            Ok(Some(entry)) => {
                self.publish(domain::ChangeKind::Credit {
                    account: entry.account_id.clone(),
                    amount: entry.amount,
                    version: entry.balance_version,
                })
                .await;
                Ok(Some(entry))
            }
            Ok(None) => Ok(None),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(internal("writing the ledger", e)),
        }
    }

    /// A mock top-up (payments off): one of the allowed amounts, credited at once.
    pub async fn mock_topup(
        &self,
        account: &AccountId,
        amount: Money,
    ) -> Result<LedgerEntry, ApiError> {
        if self.settings.stripe.is_some() {
            return Err(ApiError::new(
                ErrorCode::TopupNotAllowed,
                "card payments are enabled: use POST /api/billing/checkout",
            ));
        }
        if !MOCK_TOPUP_AMOUNTS
            .iter()
            .any(|usd| Money::from_usd(*usd) == amount)
        {
            return Err(ApiError::new(
                ErrorCode::TopupNotAllowed,
                format!("top-ups are 10, 25, 50, 100 or 500 USD, not {amount}"),
            ));
        }
        let entry = NewLedgerEntry {
            account_id: account.clone(),
            kind: LedgerKind::Topup,
            amount,
            reason: "top-up (payments off)".to_owned(),
            reference: Some(format!("mock:{}", domain::UsageId::generate())),
        };
        self.post_entry(entry)
            .await?
            .ok_or_else(|| internal("mock top-up", "reference collision"))
    }

    /// An administrator's grant (positive) or deduction (negative).
    pub async fn admin_credit(
        &self,
        account: &AccountId,
        amount: Money,
        reason: &str,
    ) -> Result<LedgerEntry, ApiError> {
        if amount == Money::ZERO {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "`amount_usd` must not be zero",
            ));
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "`reason` must be 1 to 500 characters",
            ));
        }
        self.account(account).await?;
        let entry = NewLedgerEntry {
            account_id: account.clone(),
            kind: if amount > Money::ZERO {
                LedgerKind::Grant
            } else {
                LedgerKind::Adjustment
            },
            amount,
            reason: reason.to_owned(),
            reference: None,
        };
        self.post_entry(entry)
            .await?
            .ok_or_else(|| internal("admin credit", "unexpected conflict"))
    }

    /// Accounts whose balance is not the sum of their ledger (empty when sound).
    pub async fn verify_ledger(&self) -> Result<Vec<LedgerMismatch>, ApiError> {
        self.store
            .ledger_mismatches()
            .await
            .map_err(|e| internal("verifying the ledger", e))
    }
}
