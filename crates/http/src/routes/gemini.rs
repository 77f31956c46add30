//! The Gemini API: `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse` and `:countTokens`, and `GET /v1beta/models[/{model}]`.
//! Keys come as `x-goog-api-key` or `?key=`. Errors are in Gemini's shape (the router layers
//! `in_shape_of` on these routes).

use crate::error::{ApiResult, ErrorResponse};
use crate::extract::{ApiKeyAuth, JsonBytes, RequestIdHeader};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use domain::catalog::ModelKind;
use domain::ErrorCode;
use domain::PublicModel;
use engine::relay::Ingress;
use engine::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

/// What a `POST /v1beta/models/…` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Call {
    Generate(Ingress),
    CountTokens(String),
}

/// `{model}:{method}` from the path's last part.
fn target(tail: &str, query: Option<&str>) -> Result<Call, ErrorResponse> {
    let not_found = || {
        ErrorResponse::new(
            ErrorCode::EndpointNotSupported,
            format!("POST /v1beta/models/{tail} is not an endpoint of this gateway; use {{model}}:generateContent or {{model}}:streamGenerateContent?alt=sse"),
        )
    };
    let (model, method) = tail.rsplit_once(':').ok_or_else(not_found)?;
    if model.is_empty() {
        return Err(not_found());
    }
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        "countTokens" => return Ok(Call::CountTokens(model.to_owned())),
        _ => return Err(not_found()),
    };
    let sse = query
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair == "alt=sse");
    if stream && !sse {
        return Err(ErrorResponse::new(
            ErrorCode::InvalidBody,
            "streamGenerateContent is served as server-sent events only: add ?alt=sse",
        ));
    }
    Ok(Call::Generate(Ingress::Gemini {
        model: model.to_owned(),
        stream,
    }))
}

pub async fn generate(
    State(engine): State<Arc<Engine>>,
    Path(tail): Path<String>,
    RawQuery(query): RawQuery,
    auth: ApiKeyAuth,
    request_id: RequestIdHeader,
    body: JsonBytes,
) -> ApiResult<Response> {
    match target(&tail, query.as_deref())? {
        Call::Generate(ingress) => {
            super::v1::relay::relay(engine, auth, request_id, body, ingress).await
        }
        Call::CountTokens(model) => {
            let n = engine.count_tokens(&auth.0, &model, &body.0)?;
            Ok(axum::Json(json!({ "totalTokens": n })).into_response())
        }
    }
}

/// A model as Gemini's `models.get` describes one.
fn model_json(m: &PublicModel) -> Value {
    json!({
        "name": format!("models/{}", m.name),
        "baseModelId": m.name,
        "version": "001",
        "displayName": m.name,
        "inputTokenLimit": m.context_length,
        "outputTokenLimit": m.max_output_tokens,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    })
}

/// `GET /v1beta/models`: the chat models the key may use.
pub async fn list(State(engine): State<Arc<Engine>>, auth: ApiKeyAuth) -> Response {
    let models: Vec<Value> = engine
        .models_for(&auth.0)
        .iter()
        .filter(|m| m.kind == ModelKind::Chat)
        .map(|m| model_json(m))
        .collect();
    axum::Json(json!({ "models": models })).into_response()
}

/// `GET /v1beta/models/{model}`.
pub async fn get(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    auth: ApiKeyAuth,
) -> ApiResult<Response> {
    let model = engine.model_for(&auth.0, &name)?;
    Ok(axum::Json(model_json(&model)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_model_and_method() {
        let t = target("fast:generateContent", None).unwrap();
        assert_eq!(
            t,
            Call::Generate(Ingress::Gemini {
                model: "fast".into(),
                stream: false
            })
        );
        let t = target("gemma3:4b:streamGenerateContent", Some("key=x&alt=sse")).unwrap();
        assert_eq!(
            t,
            Call::Generate(Ingress::Gemini {
                model: "gemma3:4b".into(),
                stream: true
            })
        );
        let t = target("fast:countTokens", None).unwrap();
        assert_eq!(t, Call::CountTokens("fast".into()));
        assert_eq!(
            target("fast:streamGenerateContent", None)
                .unwrap_err()
                .0
                .code,
            ErrorCode::InvalidBody
        );
        assert_eq!(
            target("fast:embedContent", None).unwrap_err().0.code,
            ErrorCode::EndpointNotSupported
        );
        assert_eq!(
            target("fast", None).unwrap_err().0.code,
            ErrorCode::EndpointNotSupported
        );
    }
}
