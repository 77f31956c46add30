//! Plans in memory: loaded at start, replaced on every admin edit, read on the hot path.

use crate::FastMap;
use crate::{internal, Engine};
use domain::{ApiError, ErrorCode, Plan, UnixMillis};
use std::sync::{Arc, RwLock};
use store::Store;

#[derive(Default)]
pub struct PlanBook {
    plans: RwLock<FastMap<String, Arc<Plan>>>,
}

impl PlanBook {
    pub async fn load(store: &dyn Store) -> Result<Self, store::StoreError> {
        let plans = store.list_plans().await?;
        let book = PlanBook::default();
        if let Ok(mut map) = book.plans.write() {
            map.extend(plans.into_iter().map(|p| (p.name.clone(), Arc::new(p))));
        }
        Ok(book)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Plan>> {
        self.plans.read().ok()?.get(name).cloned()
    }

    /// Takes over another book's plans (a reload).
    pub(crate) fn replace(&self, other: PlanBook) {
        let fresh = other.plans.into_inner().unwrap_or_default();
        if let Ok(mut map) = self.plans.write() {
            *map = fresh;
        }
    }

    fn put(&self, plan: Plan) {
        if let Ok(mut map) = self.plans.write() {
            map.insert(plan.name.clone(), Arc::new(plan));
        }
    }

    fn all(&self) -> Vec<Arc<Plan>> {
        let mut plans: Vec<_> = self
            .plans
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        plans.sort_by(|a, b| {
            a.monthly_price
                .cmp(&b.monthly_price)
                .then(a.name.cmp(&b.name))
        });
        plans
    }
}

impl Engine {
    pub fn plans(&self) -> Vec<Arc<Plan>> {
        self.plans.all()
    }

    /// The plan an account is on; an account on a deleted plan gets nothing rather than all.
    pub(crate) fn plan_of(&self, name: &str) -> Result<Arc<Plan>, ApiError> {
        self.plans.get(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Forbidden,
                format!("the account's plan `{name}` does not exist"),
            )
        })
    }

    /// Creates or replaces a plan; takes effect on the next request.
    pub async fn save_plan(&self, plan: Plan) -> Result<Arc<Plan>, ApiError> {
        if plan.name.trim().is_empty() || plan.name.len() > 64 {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "a plan needs a name of 1 to 64 characters",
            ));
        }
        if plan.rpm == 0 {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "`rpm` must be at least 1",
            ));
        }
        for m in plan.allowed_models.iter().flatten() {
            if self.catalog.get(m).is_none() {
                return Err(ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("`allowed_models` names `{m}`, which is not a model of this gateway"),
                ));
            }
        }
        for (field, v) in [
            ("monthly_price_usd", plan.monthly_price),
            ("included_credits_usd", plan.included_credits),
            ("monthly_cap_usd", plan.monthly_cap),
        ] {
            if v.is_negative() {
                return Err(ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("`{field}` must not be negative"),
                ));
            }
        }
        self.store
            .upsert_plan(&plan, UnixMillis::now())
            .await
            .map_err(|e| internal("saving a plan", e))?;
        let name = plan.name.clone();
        self.plans.put(plan);
        self.publish(domain::ChangeKind::Plans).await;
        self.plans
            .get(&name)
            .ok_or_else(|| internal("saving a plan", "vanished"))
    }
}
