//! What a fresh install serves with no configuration: one Ollama on 127.0.0.1:11434 and six
//! public models over it.

use crate::config::{ModelFile, ProviderFile};
use domain::Money;
use indexmap::IndexMap;

/// `created` reported for configured models (2026-01-01T00:00:00Z): catalog entries have no
/// creation time of their own, and a fixed one keeps `/v1/models` stable across restarts.
pub const CATALOG_CREATED: i64 = 1_767_225_600;

pub fn providers() -> IndexMap<String, ProviderFile> {
    let mut p = IndexMap::new();
    p.insert(
        "ollama".to_owned(),
        ProviderFile {
            kind: "openai".to_owned(),
            base_url: "http://127.0.0.1:11434/v1".to_owned(),
            ..ProviderFile::default()
        },
    );
    p
}

fn usd(s: &str) -> Money {
    s.parse().unwrap_or(Money::ZERO)
}

/// One default model: public name, upstream model, family, type, context length,
/// embedding dimensions, input and output USD per million tokens.
struct Row(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u32,
    Option<u32>,
    &'static str,
    &'static str,
);

const DEFAULT_MODELS: [Row; 6] = [
    Row(
        "fast", "gemma3", "gemma", "chat", 32_768, None, "0.10", "0.30",
    ),
    Row(
        "qwen-fast",
        "qwen3",
        "qwen",
        "chat",
        40_960,
        None,
        "0.10",
        "0.30",
    ),
    Row(
        "qwen-pro",
        "qwen3:32b",
        "qwen",
        "chat",
        40_960,
        None,
        "0.50",
        "1.50",
    ),
    Row(
        "deepseek-code",
        "qwen3-coder",
        "qwen",
        "chat",
        262_144,
        None,
        "0.60",
        "1.80",
    ),
    Row(
        "deepseek-reason",
        "deepseek-r1",
        "deepseek",
        "chat",
        131_072,
        None,
        "0.30",
        "0.90",
    ),
    Row(
        "embed",
        "nomic-embed-text",
        "nomic-bert",
        "embedding",
        8_192,
        Some(768),
        "0.05",
        "0.00",
    ),
];

pub fn models() -> IndexMap<String, ModelFile> {
    DEFAULT_MODELS
        .into_iter()
        .map(
            |Row(name, upstream, family, kind, ctx, dims, input, output)| {
                (
                    name.to_owned(),
                    ModelFile {
                        provider: Some("ollama".to_owned()),
                        upstream_model: Some(upstream.to_owned()),
                        deployments: Vec::new(),
                        family: Some(family.to_owned()),
                        kind: Some(kind.to_owned()),
                        context_length: Some(ctx),
                        dimensions: dims,
                        max_output_tokens: None,
                        input_price: usd(input),
                        output_price: usd(output),
                        // What the Ollama builds of these models can do, for `auto`.
                        supports_tools: Some(!matches!(name, "fast" | "deepseek-reason")),
                        supports_vision: Some(name == "fast"),
                        ..ModelFile::default()
                    },
                )
            },
        )
        .collect()
}
