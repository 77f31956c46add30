//! Ledger port on SQL. Every entry moves its account's `balance_nanos` in the same
//! transaction, so a balance is always the sum of its ledger.

use super::accounts::{account_from_row, ACCOUNT_COLUMNS};
use super::{get_u64, Cell, SqlStore};
use crate::ports::{LedgerMismatch, LedgerStore, MoneySnapshot, Result, StoreError};
use async_trait::async_trait;
use domain::{
    Account, AccountId, KeyId, LedgerEntry, LedgerKind, Money, NewLedgerEntry, UnixMillis,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

fn entry_from_row(row: &AnyRow) -> Result<LedgerEntry> {
    let kind: String = row.try_get("kind")?;
    Ok(LedgerEntry {
        id: row.try_get("id")?,
        account_id: AccountId(row.try_get("account_id")?),
        kind: LedgerKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("bad ledger kind {kind}")))?,
        amount: Money::from_nanos(row.try_get("amount_nanos")?),
        balance_after: Money::from_nanos(row.try_get("balance_after_nanos")?),
        // Not stored per entry; only the write path reports it.
        balance_version: 0,
        reason: row.try_get("reason")?,
        reference: row.try_get("reference")?,
        created_at: UnixMillis(row.try_get("created_at")?),
    })
}

/// Appends one entry inside the caller's transaction: moves the balance, records the entry.
pub(super) async fn append_in(
    conn: &mut AnyConnection,
    e: &NewLedgerEntry,
    id: String,
    now: UnixMillis,
) -> std::result::Result<LedgerEntry, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE accounts SET balance_nanos = balance_nanos + $1, balance_version = balance_version + 1
         WHERE id = $2 RETURNING balance_nanos, balance_version",
    )
    .bind(e.amount.nanos())
    .bind(e.account_id.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let balance_after = Money::from_nanos(row.try_get("balance_nanos")?);
    let balance_version: i64 = row.try_get("balance_version")?;
    sqlx::query(
        "INSERT INTO ledger_entries (id, account_id, kind, amount_nanos, balance_after_nanos, reason, reference, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(e.account_id.as_str())
    .bind(e.kind.as_str())
    .bind(e.amount.nanos())
    .bind(balance_after.nanos())
    .bind(&e.reason)
    .bind(e.reference.as_deref())
    .bind(now.0)
    .execute(&mut *conn)
    .await?;
    Ok(LedgerEntry {
        id,
        account_id: e.account_id.clone(),
        kind: e.kind,
        amount: e.amount,
        balance_after,
        balance_version,
        reason: e.reason.clone(),
        reference: e.reference.clone(),
        created_at: now,
    })
}

const LEDGER_COLUMNS: &str =
    "id, account_id, kind, amount_nanos, balance_after_nanos, reason, reference, created_at";

/// Appends many entries inside the caller's transaction, in order: one balance update per
/// account and multi-row inserts, so a batch of usage debits costs a few statements, not two
/// per entry. Each entry's `balance_after` is what one-by-one appends would have recorded.
pub(super) async fn append_many_in(
    store: &SqlStore,
    conn: &mut AnyConnection,
    entries: &[(String, NewLedgerEntry, UnixMillis)],
) -> std::result::Result<(), sqlx::Error> {
    // (account, sum of amounts, entries) in order of first appearance.
    let mut accounts: Vec<(&AccountId, i64, i64)> = Vec::new();
    for (_, e, _) in entries {
        match accounts.iter_mut().find(|(a, _, _)| *a == &e.account_id) {
            Some(slot) => {
                slot.1 += e.amount.nanos();
                slot.2 += 1;
            }
            None => accounts.push((&e.account_id, e.amount.nanos(), 1)),
        }
    }
    // The balance each account had before this batch.
    let mut running: Vec<(&AccountId, i64)> = Vec::with_capacity(accounts.len());
    for (account, sum, count) in accounts {
        let row = sqlx::query(
            "UPDATE accounts SET balance_nanos = balance_nanos + $1, balance_version = balance_version + $2
             WHERE id = $3 RETURNING balance_nanos",
        )
        .bind(sum)
        .bind(count)
        .bind(account.as_str())
        .fetch_one(&mut *conn)
        .await?;
        let after: i64 = row.try_get("balance_nanos")?;
        running.push((account, after - sum));
    }
    let rows: Vec<Vec<Cell<'_>>> = entries
        .iter()
        .map(|(id, e, at)| {
            let balance = running
                .iter_mut()
                .find(|(a, _)| *a == &e.account_id)
                .map_or(0, |(_, b)| {
                    *b += e.amount.nanos();
                    *b
                });
            vec![
                Cell::Text(Some(id)),
                Cell::Text(Some(e.account_id.as_str())),
                Cell::Text(Some(e.kind.as_str())),
                Cell::Int(e.amount.nanos()),
                Cell::Int(balance),
                Cell::Text(Some(&e.reason)),
                Cell::Text(e.reference.as_deref()),
                Cell::Int(at.0),
            ]
        })
        .collect();
    store
        .insert_rows(conn, "ledger_entries", LEDGER_COLUMNS, "", &rows)
        .await?;
    Ok(())
}

/// Ledger entry ids: time-ordered UUIDv7, like every other id.
pub(super) fn new_entry_id() -> String {
    domain::UsageId::generate().0
}

#[async_trait]
impl LedgerStore for SqlStore {
    async fn append_ledger(
        &self,
        entries: &[NewLedgerEntry],
        now: UnixMillis,
    ) -> Result<Vec<LedgerEntry>> {
        let mut tx = self.pool.begin().await?;
        let mut written = Vec::with_capacity(entries.len());
        for e in entries {
            let entry = append_in(&mut tx, e, new_entry_id(), now)
                .await
                .map_err(|err| super::conflict_or(err, "reference"))?;
            written.push(entry);
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn list_ledger(
        &self,
        account: &AccountId,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<LedgerEntry>, u64)> {
        let rows = sqlx::query(
            "SELECT id, account_id, kind, amount_nanos, balance_after_nanos, reason, reference, created_at
             FROM ledger_entries WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(account.as_str())
        .bind(i64::from(limit))
        .bind(super::to_i64(offset))
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(entry_from_row)
            .collect::<Result<Vec<_>>>()?;
        let total = sqlx::query("SELECT COUNT(*) AS n FROM ledger_entries WHERE account_id = $1")
            .bind(account.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok((items, get_u64(&total, "n")?))
    }

    async fn account_money(
        &self,
        account: &AccountId,
        month_start: UnixMillis,
    ) -> Result<MoneySnapshot> {
        let row = sqlx::query(
            "SELECT a.balance_nanos AS balance, a.balance_version AS version,
                    (SELECT CAST(COALESCE(SUM(l.amount_nanos), 0) AS BIGINT) FROM ledger_entries l
                     WHERE l.account_id = a.id AND l.kind = 'usage' AND l.created_at >= $2) AS spent
             FROM accounts a WHERE a.id = $1",
        )
        .bind(account.as_str())
        .bind(month_start.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::Backend(format!("no account {account}")))?;
        Ok(MoneySnapshot {
            version: row.try_get("version")?,
            balance: Money::from_nanos(row.try_get("balance")?),
            month_spend: -Money::from_nanos(row.try_get::<i64, _>("spent")?),
        })
    }

    async fn key_month_spend(&self, key: &KeyId, month_start: UnixMillis) -> Result<Money> {
        let row =
            sqlx::query("SELECT spent_nanos FROM key_spend WHERE key_id = $1 AND month_start = $2")
                .bind(key.as_str())
                .bind(month_start.month_start().0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(r) => Money::from_nanos(r.try_get::<i64, _>("spent_nanos")?),
            None => Money::ZERO,
        })
    }

    async fn ledger_mismatches(&self) -> Result<Vec<LedgerMismatch>> {
        let rows = sqlx::query(
            "SELECT a.id AS id, a.balance_nanos AS balance,
                    (SELECT CAST(COALESCE(SUM(l.amount_nanos), 0) AS BIGINT) FROM ledger_entries l WHERE l.account_id = a.id) AS ledger_sum
             FROM accounts a",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let balance = Money::from_nanos(r.try_get("balance")?);
            let ledger_sum = Money::from_nanos(r.try_get::<i64, _>("ledger_sum")?);
            if balance != ledger_sum {
                out.push(LedgerMismatch {
                    account: AccountId(r.try_get("id")?),
                    balance,
                    ledger_sum,
                });
            }
        }
        Ok(out)
    }

    async fn set_account_plan(&self, account: &AccountId, plan: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE accounts SET plan = $1 WHERE id = $2")
            .bind(plan)
            .bind(account.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_accounts(&self, limit: u32, offset: u64) -> Result<(Vec<(Account, Money)>, u64)> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS}, a.balance_nanos FROM accounts a ORDER BY a.created_at, a.id LIMIT $1 OFFSET $2"
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .bind(super::to_i64(offset))
            .fetch_all(&self.pool)
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push((
                account_from_row(r)?,
                Money::from_nanos(r.try_get("balance_nanos")?),
            ));
        }
        let total = sqlx::query("SELECT COUNT(*) AS n FROM accounts")
            .fetch_one(&self.pool)
            .await?;
        Ok((items, get_u64(&total, "n")?))
    }
}
