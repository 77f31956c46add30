//! Plans port on SQL.

use super::keys::{models_text, split_models};
use super::{get_opt_u32, SqlStore};
use crate::ports::{PlanStore, Result};
use async_trait::async_trait;
use domain::{Money, Plan, UnixMillis};
use sqlx::Row;

#[async_trait]
impl PlanStore for SqlStore {
    async fn list_plans(&self) -> Result<Vec<Plan>> {
        let rows = sqlx::query(
            "SELECT name, monthly_price_nanos, included_credits_nanos, monthly_cap_nanos, allowed_models,
                    rpm, tpm, concurrency
             FROM plans ORDER BY monthly_price_nanos, name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut plans = Vec::with_capacity(rows.len());
        for r in &rows {
            let allowed: Option<String> = r.try_get("allowed_models")?;
            plans.push(Plan {
                name: r.try_get("name")?,
                monthly_price: Money::from_nanos(r.try_get("monthly_price_nanos")?),
                included_credits: Money::from_nanos(r.try_get("included_credits_nanos")?),
                monthly_cap: Money::from_nanos(r.try_get("monthly_cap_nanos")?),
                allowed_models: allowed.and_then(|s| split_models(&s)),
                rpm: get_opt_u32(r, "rpm")?.unwrap_or(0),
                tpm: get_opt_u32(r, "tpm")?,
                concurrency: get_opt_u32(r, "concurrency")?,
            });
        }
        Ok(plans)
    }

    async fn upsert_plan(&self, p: &Plan, now: UnixMillis) -> Result<()> {
        sqlx::query(
            "INSERT INTO plans (name, monthly_price_nanos, included_credits_nanos, monthly_cap_nanos,
                allowed_models, rpm, tpm, concurrency, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (name) DO UPDATE SET
                monthly_price_nanos = excluded.monthly_price_nanos,
                included_credits_nanos = excluded.included_credits_nanos,
                monthly_cap_nanos = excluded.monthly_cap_nanos,
                allowed_models = excluded.allowed_models,
                rpm = excluded.rpm, tpm = excluded.tpm, concurrency = excluded.concurrency,
                updated_at = excluded.updated_at",
        )
        .bind(&p.name)
        .bind(p.monthly_price.nanos())
        .bind(p.included_credits.nanos())
        .bind(p.monthly_cap.nanos())
        .bind(models_text(&p.allowed_models))
        .bind(i64::from(p.rpm))
        .bind(p.tpm.map(i64::from))
        .bind(p.concurrency.map(i64::from))
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
