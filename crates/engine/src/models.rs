//! Which public models a caller may see and use.

use crate::auth::Authenticated;
use crate::Engine;
use domain::{ApiError, ErrorCode, PublicModel};
use std::sync::Arc;

impl Engine {
    /// The models this key may call (its scope and its account's plan), in catalog order.
    pub fn models_for(&self, auth: &Authenticated) -> Vec<Arc<PublicModel>> {
        let Ok(plan) = self.plan_of(&auth.account().plan) else {
            return Vec::new();
        };
        self.catalog
            .iter()
            .filter(|m| auth.key().allows_model(&m.name) && plan.allows_model(&m.name))
            .cloned()
            .collect()
    }

    /// One model by public name, if it exists and this key may call it.
    pub fn model_for(
        &self,
        auth: &Authenticated,
        name: &str,
    ) -> Result<Arc<PublicModel>, ApiError> {
        let model = self.catalog.get(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::ModelNotFound,
                format!("the model `{name}` does not exist; GET /v1/models lists the models you can use"),
            )
        })?;
        if !auth.key().allows_model(name) {
            return Err(ApiError::new(
                ErrorCode::ModelNotAllowed,
                format!("this API key may not use the model `{name}`"),
            ));
        }
        let plan = self.plan_of(&auth.account().plan)?;
        if !plan.allows_model(name) {
            return Err(ApiError::new(
                ErrorCode::ModelNotAllowed,
                format!(
                    "the {} plan does not include the model `{name}`; upgrade to use it",
                    plan.name
                ),
            ));
        }
        Ok(model.clone())
    }
}
