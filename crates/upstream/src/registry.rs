//! The kind registry: one line per provider kind.

use crate::{ProviderSettings, Upstream};
use std::sync::Arc;

/// Builds the client for a provider, by its `kind`.
pub fn build(settings: &ProviderSettings) -> Result<Arc<dyn Upstream>, String> {
    match settings.kind.as_str() {
        "openai" => Ok(Arc::new(crate::openai::OpenAiUpstream::new(settings)?)),
        other => Err(format!("unknown provider kind `{other}` (known: openai)")),
    }
}
