//! Usage log port on SQL: batched inserts in one transaction, paginated reads.

use super::{get_u64, to_i64, Cell, SqlStore};
use crate::ports::{Result, StoreError, UsageGroup, UsagePage, UsageStore, UsageTotal};
use async_trait::async_trait;
use domain::{
    AccountId, KeyId, LedgerKind, Money, NewLedgerEntry, UnixMillis, UsageEvent, UsageId,
    UsageStatus,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Executor as _, Row};

const COLUMNS: &str = "id, account_id, key_id, endpoint, public_model, upstream_model, provider, \
    input_tokens, output_tokens, cached_tokens, cost_nanos, estimated, latency_ms, status, \
    http_status, error_code, request_id, stream, created_at, attempts, ledger_entry_id";

fn event_from_row(row: &AnyRow) -> Result<UsageEvent> {
    let status: String = row.try_get("status")?;
    Ok(UsageEvent {
        id: UsageId(row.try_get("id")?),
        account_id: AccountId(row.try_get("account_id")?),
        key_id: KeyId(row.try_get("key_id")?),
        endpoint: row.try_get("endpoint")?,
        public_model: row.try_get("public_model")?,
        upstream_model: row.try_get("upstream_model")?,
        provider: row.try_get("provider")?,
        input_tokens: get_u64(row, "input_tokens")?,
        output_tokens: get_u64(row, "output_tokens")?,
        cached_tokens: get_u64(row, "cached_tokens")?,
        cost: Money::from_nanos(row.try_get("cost_nanos")?),
        estimated: row.try_get::<i64, _>("estimated")? != 0,
        latency_ms: get_u64(row, "latency_ms")?,
        status: UsageStatus::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("bad usage status {status}")))?,
        http_status: u16::try_from(row.try_get::<i64, _>("http_status")?).unwrap_or(0),
        error_code: row.try_get("error_code")?,
        request_id: row.try_get("request_id")?,
        stream: row.try_get::<i64, _>("stream")? != 0,
        created_at: UnixMillis(row.try_get("created_at")?),
        attempts: serde_json::from_str(&row.try_get::<String, _>("attempts")?)
            .map_err(|e| StoreError::Backend(format!("bad usage attempts: {e}")))?,
        ledger_entry_id: row.try_get("ledger_entry_id")?,
    })
}

/// A ledger debit with the id it is written under and the time it records.
type Debit = (String, NewLedgerEntry, UnixMillis);

/// A batch's debits: one per account and calendar month of the events' times (so monthly
/// spend stays exact), dated at its last event, and for each event the index of the debit
/// that pays for it (`None` when it cost nothing). A debit for one event reads as a
/// per-request entry would: the endpoint and model, referencing the event.
fn debits(events: &[UsageEvent]) -> (Vec<Debit>, Vec<Option<usize>>) {
    struct Group<'a> {
        first: &'a UsageEvent,
        month: UnixMillis,
        amount: Money,
        last: UnixMillis,
        events: usize,
    }
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut paid_by = Vec::with_capacity(events.len());
    for e in events {
        if e.cost <= Money::ZERO {
            paid_by.push(None);
            continue;
        }
        let month = e.created_at.month_start();
        let i = match groups
            .iter()
            .position(|g| g.first.account_id == e.account_id && g.month == month)
        {
            Some(i) => i,
            None => {
                groups.push(Group {
                    first: e,
                    month,
                    amount: Money::ZERO,
                    last: e.created_at,
                    events: 0,
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.amount += e.cost;
        g.last = g.last.max(e.created_at);
        g.events += 1;
        paid_by.push(Some(i));
    }
    let debits = groups
        .into_iter()
        .map(|g| {
            let (reason, reference) = if g.events == 1 {
                let e = g.first;
                (
                    format!("{} {}", e.endpoint, e.public_model),
                    Some(e.id.0.clone()),
                )
            } else {
                (format!("{} requests", g.events), None)
            };
            let entry = NewLedgerEntry {
                account_id: g.first.account_id.clone(),
                kind: LedgerKind::Usage,
                amount: -g.amount,
                reason,
                reference,
            };
            (super::ledger::new_entry_id(), entry, g.last)
        })
        .collect();
    (debits, paid_by)
}

/// What each key spent in each calendar month, over a batch's paying events.
fn key_spends(events: &[UsageEvent]) -> Vec<(&KeyId, UnixMillis, Money)> {
    let mut spends: Vec<(&KeyId, UnixMillis, Money)> = Vec::new();
    for e in events.iter().filter(|e| e.cost > Money::ZERO) {
        let month = e.created_at.month_start();
        match spends
            .iter_mut()
            .find(|(k, m, _)| *k == &e.key_id && *m == month)
        {
            Some(slot) => slot.2 += e.cost,
            None => spends.push((&e.key_id, month, e.cost)),
        }
    }
    spends
}

impl SqlStore {
    /// A batch's statements, run inside the transaction `insert_usage` holds open: the
    /// events, their debits, each key's month spend and each key's last use.
    async fn write_batch(
        &self,
        conn: &mut AnyConnection,
        events: &[UsageEvent],
        rows: &[Vec<Cell<'_>>],
        debits: &[Debit],
    ) -> std::result::Result<(), sqlx::Error> {
        self.insert_rows(conn, "usage_events", COLUMNS, "", rows)
            .await?;
        super::ledger::append_many_in(self, conn, debits).await?;
        // Each key's spend per month, added once per batch: a budget is checked against
        // it, where an index over every event's key cost a B-tree insert per event.
        let spends = key_spends(events);
        let spend_rows: Vec<Vec<Cell<'_>>> = spends
            .iter()
            .map(|(key, month, spent)| {
                vec![
                    Cell::Text(Some(key.as_str())),
                    Cell::Int(month.0),
                    Cell::Int(spent.nanos()),
                ]
            })
            .collect();
        self.insert_rows(
            conn,
            "key_spend",
            "key_id, month_start, spent_nanos",
            "ON CONFLICT (key_id, month_start) \
             DO UPDATE SET spent_nanos = key_spend.spent_nanos + excluded.spent_nanos",
            &spend_rows,
        )
        .await?;
        // One update per key in the batch, not per event.
        let mut last_used: Vec<(&KeyId, i64)> = Vec::new();
        for e in events {
            match last_used.iter_mut().find(|(k, _)| *k == &e.key_id) {
                Some(slot) => slot.1 = slot.1.max(e.created_at.0),
                None => last_used.push((&e.key_id, e.created_at.0)),
            }
        }
        for (key, at) in last_used {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(at)
            .bind(key.as_str())
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl UsageStore for SqlStore {
    async fn insert_usage(&self, events: &[UsageEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let attempts: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(&e.attempts).unwrap_or_else(|_| "[]".to_owned()))
            .collect();
        let (debits, paid_by) = debits(events);
        let rows: Vec<Vec<Cell<'_>>> = events
            .iter()
            .zip(&attempts)
            .zip(paid_by)
            .map(|((e, attempts), paid_by)| {
                vec![
                    Cell::Text(Some(e.id.as_str())),
                    Cell::Text(Some(e.account_id.as_str())),
                    Cell::Text(Some(e.key_id.as_str())),
                    Cell::Text(Some(&e.endpoint)),
                    Cell::Text(Some(&e.public_model)),
                    Cell::Text(Some(&e.upstream_model)),
                    Cell::Text(Some(&e.provider)),
                    Cell::Int(to_i64(e.input_tokens)),
                    Cell::Int(to_i64(e.output_tokens)),
                    Cell::Int(to_i64(e.cached_tokens)),
                    Cell::Int(e.cost.nanos()),
                    Cell::Int(i64::from(e.estimated)),
                    Cell::Int(to_i64(e.latency_ms)),
                    Cell::Text(Some(e.status.as_str())),
                    Cell::Int(i64::from(e.http_status)),
                    Cell::Text(e.error_code.as_deref()),
                    Cell::Text(Some(&e.request_id)),
                    Cell::Int(i64::from(e.stream)),
                    Cell::Int(e.created_at.0),
                    Cell::Text(Some(attempts)),
                    Cell::Text(paid_by.map(|i| debits[i].0.as_str())),
                ]
            })
            .collect();
        // The transaction is begun and ended by hand, not with sqlx's `Transaction`: after
        // an `INSERT OR ROLLBACK` fails, SQLite has already rolled back, sqlx's own ROLLBACK
        // would then fail and leave the connection believing it is still in a transaction.
        let mut conn = self.writer.acquire().await?;
        let begin = match self.backend {
            super::Backend::Sqlite { .. } => "BEGIN IMMEDIATE",
            super::Backend::Postgres { .. } => "BEGIN",
        };
        let mut result = conn.execute(begin).await.map(drop);
        if result.is_ok() {
            result = self.write_batch(&mut conn, events, &rows, &debits).await;
        }
        if result.is_ok() {
            result = conn.execute("COMMIT").await.map(drop);
        }
        if result.is_err() {
            // Fails harmlessly when SQLite has rolled back already; leaves the connection
            // outside any transaction for the writer's next attempt either way.
            let _ = conn.execute("ROLLBACK").await;
        }
        Ok(result?)
    }

    async fn list_usage(&self, account: &AccountId, limit: u32, offset: u64) -> Result<UsagePage> {
        let sql = format!(
            "SELECT {COLUMNS} FROM usage_events WHERE account_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(account.as_str())
            .bind(i64::from(limit))
            .bind(to_i64(offset))
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        let total_row = sqlx::query("SELECT COUNT(*) AS n FROM usage_events WHERE account_id = $1")
            .bind(account.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(UsagePage {
            items,
            total: get_u64(&total_row, "n")?,
        })
    }

    async fn usage_totals(
        &self,
        account: &AccountId,
        group: UsageGroup,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<Vec<UsageTotal>> {
        let (key, order) = match group {
            UsageGroup::Day => ("CAST(created_at / 86400000 AS TEXT)", "MIN(created_at)"),
            UsageGroup::Model => ("public_model", "SUM(cost_nanos) DESC, MIN(created_at)"),
            UsageGroup::Key => ("key_id", "SUM(cost_nanos) DESC, MIN(created_at)"),
        };
        let sql = format!(
            "SELECT {key} AS grp, CAST(COUNT(*) AS BIGINT) AS requests,
                    CAST(SUM(input_tokens) AS BIGINT) AS input_tokens,
                    CAST(SUM(output_tokens) AS BIGINT) AS output_tokens,
                    CAST(SUM(cost_nanos) AS BIGINT) AS cost
             FROM usage_events WHERE account_id = $1 AND created_at >= $2 AND created_at < $3
             GROUP BY {key} ORDER BY {order}"
        );
        let rows = sqlx::query(&sql)
            .bind(account.as_str())
            .bind(from.0)
            .bind(to.0)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let raw: String = r.try_get("grp")?;
            let group_name = match group {
                UsageGroup::Day => {
                    let day: i64 = raw
                        .parse()
                        .map_err(|_| StoreError::Backend(format!("bad day {raw}")))?;
                    UnixMillis(day * 86_400_000).to_rfc3339()[..10].to_owned()
                }
                _ => raw,
            };
            out.push(UsageTotal {
                group: group_name,
                requests: get_u64(r, "requests")?,
                input_tokens: get_u64(r, "input_tokens")?,
                output_tokens: get_u64(r, "output_tokens")?,
                cost: Money::from_nanos(r.try_get("cost")?),
            });
        }
        Ok(out)
    }
}
