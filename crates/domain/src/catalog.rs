//! The model catalog: public model names, what they cost, and the upstream deployments that
//! serve them. Built once from configuration; read-only on the request path.

use crate::Money;
use std::collections::HashMap;
use std::sync::Arc;

/// A configured provider's name (e.g. `ollama`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(pub String);

/// Prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelPrice {
    pub input: Money,
    pub output: Money,
    /// Price of prompt tokens served from the upstream's cache; `None` bills them as input.
    pub cached_input: Option<Money>,
}

impl ModelPrice {
    /// The cost of a request. `cached` tokens are a subset of `input` (OpenAI's convention:
    /// `prompt_tokens` includes cached ones), billed at the cached price when there is one.
    pub fn cost(&self, input: u64, cached: u64, output: u64) -> Money {
        let cached = cached.min(input);
        let (full, discounted) = match self.cached_input {
            Some(_) => (input - cached, cached),
            None => (input, 0),
        };
        Money::per_million_tokens(self.input, full)
            + Money::per_million_tokens(self.cached_input.unwrap_or_default(), discounted)
            + Money::per_million_tokens(self.output, output)
    }
}

/// What a model can be called for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Chat and text completions.
    Chat,
    /// Embeddings only.
    Embedding,
}

/// How a model orders its deployments for each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Lowest `priority` first; ties shuffled by weight. Ordered failover.
    #[default]
    Priority,
    /// Random order drawn by weight.
    Weighted,
    /// Fastest recent time to first byte first (untried deployments before measured ones).
    LeastLatency,
    /// Cheapest price first.
    LowestCost,
}

impl Strategy {
    pub const NAMES: &'static str = "priority, weighted, least-latency, lowest-cost";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "priority" => Some(Strategy::Priority),
            "weighted" => Some(Strategy::Weighted),
            "least-latency" => Some(Strategy::LeastLatency),
            "lowest-cost" => Some(Strategy::LowestCost),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::Weighted => "weighted",
            Strategy::LeastLatency => "least-latency",
            Strategy::LowestCost => "lowest-cost",
        }
    }
}

/// What a chat model can do, for `model: "auto"` to match requests against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Function/tool calling.
    pub tools: bool,
    /// Image inputs.
    pub vision: bool,
    /// `response_format` JSON mode and JSON schema.
    pub json: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            tools: true,
            vision: false,
            json: true,
        }
    }
}

/// One upstream place that can serve a public model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub provider: ProviderId,
    /// The model name the upstream knows.
    pub upstream_model: String,
    /// Overrides the public model's price for this deployment.
    pub price: Option<ModelPrice>,
    /// Lower runs first under the `priority` strategy.
    pub priority: u32,
    pub weight: u32,
}

impl Deployment {
    /// The deployment's name in health reports and usage attempts: `provider/upstream_model`.
    pub fn key(&self) -> String {
        // Concatenated, not `format!`: this is made for every relayed request's attempt.
        let (provider, model) = (&self.provider.0, &self.upstream_model);
        let mut key = String::with_capacity(provider.len() + 1 + model.len());
        key.push_str(provider);
        key.push('/');
        key.push_str(model);
        key
    }

    /// A single comparable figure for `lowest-cost` and `sort: "price"`: input plus output
    /// price per million tokens.
    pub fn price_rank(&self, model: &PublicModel) -> Money {
        let p = model.price_for(self);
        p.input + p.output
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicModel {
    pub name: String,
    pub family: String,
    pub kind: ModelKind,
    pub context_length: u32,
    /// Embedding dimensions, for embedding models.
    pub dimensions: Option<u32>,
    /// Output tokens assumed for the credit reservation when a request sets no `max_tokens`.
    pub max_output_tokens: u32,
    pub price: ModelPrice,
    pub owned_by: String,
    pub created: i64,
    pub strategy: Strategy,
    pub capabilities: Capabilities,
    pub deployments: Vec<Deployment>,
}

impl PublicModel {
    pub fn price_for(&self, deployment: &Deployment) -> ModelPrice {
        deployment.price.unwrap_or(self.price)
    }
}

/// All public models, by name, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    order: Vec<Arc<PublicModel>>,
    by_name: HashMap<String, Arc<PublicModel>>,
}

impl Catalog {
    /// Builds a catalog; a duplicate name is an error naming it.
    pub fn new(models: Vec<PublicModel>) -> Result<Self, String> {
        let mut catalog = Catalog::default();
        for m in models {
            if catalog.by_name.contains_key(&m.name) {
                return Err(format!("model `{}` is declared twice", m.name));
            }
            let m = Arc::new(m);
            catalog.by_name.insert(m.name.clone(), m.clone());
            catalog.order.push(m);
        }
        Ok(catalog)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<PublicModel>> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<PublicModel>> {
        self.order.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }

    #[test]
    fn cost_uses_input_output_and_cached_prices() {
        let p = ModelPrice {
            input: m("0.50"),
            output: m("1.50"),
            cached_input: None,
        };
        // 1000 × 0.5/M + 500 × 1.5/M = 0.0005 + 0.00075
        assert_eq!(p.cost(1000, 0, 500), m("0.00125"));
        assert_eq!(
            p.cost(1000, 400, 500),
            m("0.00125"),
            "no cached price: cached billed as input"
        );
        let c = ModelPrice {
            cached_input: Some(m("0.05")),
            ..p
        };
        // 600 × 0.5/M + 400 × 0.05/M + 500 × 1.5/M
        assert_eq!(c.cost(1000, 400, 500), m("0.00107"));
        assert_eq!(
            c.cost(10, 400, 0),
            m("0.0000005"),
            "cached never exceeds input"
        );
    }
}
