//! `model: "auto"`: pick, among the chat models the key may use, those that can serve the
//! request (tools, images, JSON output, context length), in preference order; the first
//! answers and the rest are its fallbacks.

use domain::catalog::ModelKind;
use domain::PublicModel;
use protocol::openai::RequestNeeds;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoPrefer {
    /// Cheapest first (input + output price per million tokens), then catalog order.
    #[default]
    Cheapest,
    /// The order of `models` (or the catalog's).
    Listed,
}

#[derive(Debug, Clone)]
pub struct AutoSettings {
    /// Model names that mean "choose for me"; empty turns the feature off.
    pub aliases: Vec<String>,
    /// The models auto may choose from, in preference order for `Listed`; empty = all.
    pub models: Vec<String>,
    pub prefer: AutoPrefer,
}

impl Default for AutoSettings {
    fn default() -> Self {
        Self {
            aliases: vec!["auto".to_owned()],
            models: Vec::new(),
            prefer: AutoPrefer::Cheapest,
        }
    }
}

impl AutoSettings {
    pub fn is_alias(&self, name: &str) -> bool {
        self.aliases.iter().any(|a| a == name)
    }

    /// The models to try for a request, best first. `usable` are the models the key may
    /// call, in catalog order; `tokens` is the prompt's size plus the output it asks for.
    pub fn choose(
        &self,
        usable: Vec<Arc<PublicModel>>,
        needs: RequestNeeds,
        tokens: u64,
    ) -> Result<Vec<Arc<PublicModel>>, String> {
        let mut chosen: Vec<Arc<PublicModel>> = usable
            .into_iter()
            .filter(|m| m.kind == ModelKind::Chat)
            .filter(|m| self.models.is_empty() || self.models.contains(&m.name))
            .filter(|m| {
                let c = m.capabilities;
                (!needs.tools || c.tools)
                    && (!needs.vision || c.vision)
                    && (!needs.json || c.json)
                    && tokens <= u64::from(m.context_length)
            })
            .collect();
        match self.prefer {
            AutoPrefer::Cheapest => chosen.sort_by_key(|m| m.price.input + m.price.output),
            AutoPrefer::Listed if !self.models.is_empty() => chosen.sort_by_key(|m| {
                self.models
                    .iter()
                    .position(|n| n == &m.name)
                    .unwrap_or(usize::MAX)
            }),
            AutoPrefer::Listed => {}
        }
        if chosen.is_empty() {
            let mut wants = needs.names();
            wants.push("the context length");
            return Err(format!(
                "no model this key may use can serve this request (it needs {} for about {tokens} tokens)",
                wants.join(", ")
            ));
        }
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::catalog::{Capabilities, ModelPrice};
    use domain::{Money, Strategy};

    fn model(name: &str, price: &str, ctx: u32, caps: Capabilities) -> Arc<PublicModel> {
        let p: Money = price.parse().unwrap();
        Arc::new(PublicModel {
            name: name.into(),
            family: String::new(),
            kind: ModelKind::Chat,
            context_length: ctx,
            dimensions: None,
            max_output_tokens: 100,
            price: ModelPrice {
                input: p,
                output: p,
                cached_input: None,
            },
            owned_by: String::new(),
            created: 0,
            strategy: Strategy::Priority,
            capabilities: caps,
            deployments: Vec::new(),
        })
    }

    fn names(v: &[Arc<PublicModel>]) -> Vec<&str> {
        v.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn cheapest_capable_models_first() {
        let plain = Capabilities {
            tools: false,
            vision: false,
            json: true,
        };
        let all = Capabilities {
            tools: true,
            vision: true,
            json: true,
        };
        let usable = vec![
            model("big", "2", 100_000, all),
            model("small", "0.1", 8_000, plain),
            model("mid", "0.5", 32_000, all),
        ];
        let s = AutoSettings::default();
        let r = s
            .choose(usable.clone(), RequestNeeds::default(), 100)
            .unwrap();
        assert_eq!(names(&r), ["small", "mid", "big"]);
        let tools = RequestNeeds {
            tools: true,
            ..Default::default()
        };
        assert_eq!(
            names(&s.choose(usable.clone(), tools, 100).unwrap()),
            ["mid", "big"]
        );
        assert_eq!(
            names(
                &s.choose(usable.clone(), RequestNeeds::default(), 50_000)
                    .unwrap()
            ),
            ["big"]
        );
        let e = s.choose(usable.clone(), tools, 500_000).unwrap_err();
        assert!(e.contains("tools") && e.contains("500000"), "{e}");
        let listed = AutoSettings {
            models: vec!["big".into(), "small".into()],
            prefer: AutoPrefer::Listed,
            ..AutoSettings::default()
        };
        assert_eq!(
            names(&listed.choose(usable, RequestNeeds::default(), 10).unwrap()),
            ["big", "small"]
        );
    }
}
