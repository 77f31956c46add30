//! OpenRouter's routing extensions to the OpenAI request: `models` with `route: "fallback"`,
//! and the `provider` preferences object. Read here and removed from the body, so upstreams
//! never see them; what the request needs of a model (tools, images, JSON) is read for
//! `model: "auto"`.

use crate::json::RawMap;
use serde::Deserialize;

/// Fallback models a request may list at most.
pub const MAX_FALLBACK_MODELS: usize = 10;

/// `provider.sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    Price,
    Latency,
}

/// USD per million tokens; a deployment priced above either is skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrice {
    pub prompt: Option<domain::JsonMoney>,
    pub completion: Option<domain::JsonMoney>,
}

/// `provider`: which deployments may serve the request, and in what order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPrefs {
    /// Providers to try first, in this order.
    #[serde(default)]
    pub order: Vec<String>,
    /// `false`: only the providers in `order` (or only the first choice when there is no
    /// `order`).
    #[serde(default = "yes")]
    pub allow_fallbacks: bool,
    /// Only these providers.
    pub only: Option<Vec<String>>,
    /// Never these providers.
    #[serde(default)]
    pub ignore: Vec<String>,
    pub sort: Option<SortBy>,
    pub max_price: Option<MaxPrice>,
}

fn yes() -> bool {
    true
}

impl Default for ProviderPrefs {
    fn default() -> Self {
        Self {
            order: Vec::new(),
            allow_fallbacks: true,
            only: None,
            ignore: Vec::new(),
            sort: None,
            max_price: None,
        }
    }
}

/// The routing fields of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteExtensions {
    /// Models to fall back to after the primary, in order (without the primary).
    pub fallbacks: Vec<String>,
    pub provider: ProviderPrefs,
}

impl RouteExtensions {
    /// Reads and removes `models`, `route` and `provider`. Returns the extensions and the
    /// primary model when `model` was absent and `models` named it.
    pub fn take(body: &mut RawMap<'_>) -> Result<(Self, Option<String>), String> {
        let models: Option<Vec<String>> = body
            .get_as("models")
            .map_err(|e| format!("field `models`: {e}"))?;
        let route: Option<String> = body
            .get_as("route")
            .map_err(|e| format!("field `route`: {e}"))?;
        if let Some(r) = &route {
            if r != "fallback" {
                return Err(format!(
                    "field `route`: only \"fallback\" is supported, got \"{r}\""
                ));
            }
        }
        let provider = match body.get("provider") {
            None => ProviderPrefs::default(),
            Some(raw) if raw.get().trim() == "null" => ProviderPrefs::default(),
            Some(raw) => serde_json::from_str::<ProviderPrefs>(raw.get())
                .map_err(|e| format!("field `provider`: {e}"))?,
        };
        body.remove("models");
        body.remove("route");
        body.remove("provider");
        let mut models = models.unwrap_or_default();
        if models.len() > MAX_FALLBACK_MODELS {
            return Err(format!(
                "field `models`: at most {MAX_FALLBACK_MODELS} models, got {}",
                models.len()
            ));
        }
        if models.iter().any(String::is_empty) {
            return Err("field `models`: model names must not be empty".to_owned());
        }
        let primary = if body.contains("model") || models.is_empty() {
            None
        } else {
            Some(models.remove(0))
        };
        let mut fallbacks: Vec<String> = Vec::new();
        for m in models {
            if !fallbacks.contains(&m) {
                fallbacks.push(m);
            }
        }
        Ok((
            Self {
                fallbacks,
                provider,
            },
            primary,
        ))
    }
}

/// What a request needs of the model that serves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestNeeds {
    pub tools: bool,
    pub vision: bool,
    pub json: bool,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

impl RequestNeeds {
    /// The same, of a request in canonical form (the other ingress protocols).
    pub fn of(req: &crate::canonical::ChatRequest) -> Self {
        use crate::canonical::{OutputFormat, Part};
        Self {
            tools: !req.tools.is_empty(),
            vision: req
                .messages
                .iter()
                .flat_map(|m| &m.parts)
                .any(|p| matches!(p, Part::Image(_))),
            json: req.output != OutputFormat::Text,
        }
    }

    pub fn read(body: &RawMap<'_>) -> Self {
        let non_empty = |key: &str| {
            body.get(key)
                .is_some_and(|v| !matches!(v.get().trim(), "null" | "[]"))
        };
        let tools = non_empty("tools") || non_empty("functions");
        let json = body
            .get_as::<ResponseFormat<'_>>("response_format")
            .ok()
            .flatten()
            .and_then(|f| f.kind)
            .is_some_and(|k| k == "json_object" || k == "json_schema");
        let vision = body
            .get_as::<Vec<Message<'_>>>("messages")
            .ok()
            .flatten()
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m.content)
            .filter_map(|c| serde_json::from_str::<Vec<Part<'_>>>(c.get()).ok())
            .flatten()
            .any(|p| {
                p.kind
                    .is_some_and(|k| k == "image_url" || k == "input_image")
            });
        Self {
            tools,
            vision,
            json,
        }
    }

    /// The needs by name, for messages.
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (on, name) in [
            (self.tools, "tools"),
            (self.vision, "images"),
            (self.json, "JSON output"),
        ] {
            if on {
                out.push(name);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> crate::RawObject {
        crate::RawObject::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn takes_models_route_and_provider_out_of_the_body() {
        let mut b = obj(
            r#"{"model":"a","models":["b","a","b","c"],"route":"fallback","provider":{"order":["x"],"allow_fallbacks":false,"sort":"price","max_price":{"prompt":1.5}},"messages":[]}"#,
        );
        let (ext, primary) = RouteExtensions::take(&mut b).unwrap();
        assert_eq!(primary, None);
        assert_eq!(ext.fallbacks, vec!["b", "a", "c"]);
        assert_eq!(ext.provider.order, vec!["x"]);
        assert!(!ext.provider.allow_fallbacks);
        assert_eq!(ext.provider.sort, Some(SortBy::Price));
        assert_eq!(
            ext.provider.max_price.unwrap().prompt.unwrap().0,
            "1.5".parse().unwrap()
        );
        assert_eq!(
            String::from_utf8(b.to_vec()).unwrap(),
            r#"{"model":"a","messages":[]}"#
        );
    }

    #[test]
    fn models_alone_names_the_primary() {
        let mut b = obj(r#"{"models":["p","q"],"messages":[]}"#);
        let (ext, primary) = RouteExtensions::take(&mut b).unwrap();
        assert_eq!(primary.as_deref(), Some("p"));
        assert_eq!(ext.fallbacks, vec!["q"]);
    }

    #[test]
    fn bad_extensions_are_named() {
        let e = RouteExtensions::take(&mut obj(r#"{"model":"a","route":"race"}"#)).unwrap_err();
        assert!(e.contains("route"), "{e}");
        let e = RouteExtensions::take(&mut obj(r#"{"model":"a","provider":{"sort":"speed"}}"#))
            .unwrap_err();
        assert!(e.contains("provider"), "{e}");
        let e = RouteExtensions::take(&mut obj(
            r#"{"model":"a","provider":{"data_collection":"deny"}}"#,
        ))
        .unwrap_err();
        assert!(e.contains("data_collection"), "{e}");
        let e = RouteExtensions::take(&mut obj(r#"{"model":"a","models":"b"}"#)).unwrap_err();
        assert!(e.contains("models"), "{e}");
    }

    #[test]
    fn needs_read_tools_images_and_json() {
        let n = RequestNeeds::read(&obj(
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:"}}]}],"tools":[{"type":"function"}],"response_format":{"type":"json_schema"}}"#,
        ));
        assert_eq!(
            n,
            RequestNeeds {
                tools: true,
                vision: true,
                json: true
            }
        );
        let n = RequestNeeds::read(&obj(
            r#"{"messages":[{"role":"user","content":"hi"}],"tools":[],"response_format":{"type":"text"}}"#,
        ));
        assert_eq!(n, RequestNeeds::default());
    }
}
