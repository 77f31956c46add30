//! The kind registry: one line per provider kind.

use crate::{ProviderSettings, Upstream};
use std::sync::Arc;

/// Builds the client for a provider, by its `kind`.
pub fn build(settings: &ProviderSettings) -> Result<Arc<dyn Upstream>, String> {
    match protocol::Protocol::from_kind(&settings.kind) {
        Some(p) => Ok(Arc::new(crate::client::HttpUpstream::new(settings, p)?)),
        None => Err(format!(
            "unknown provider kind `{}` (known: openai, anthropic, gemini)",
            settings.kind
        )),
    }
}
