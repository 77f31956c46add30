//! The Gemini API: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`. Keys come as `x-goog-api-key` or `?key=`. Errors are in
//! Gemini's shape (the router layers `in_shape_of` on these routes).

use crate::error::{ApiResult, ErrorResponse};
use crate::extract::{ApiKeyAuth, JsonBytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use domain::ErrorCode;
use engine::relay::Ingress;
use engine::Engine;
use std::sync::Arc;

/// `{model}:{method}` from the path's last part.
fn target(tail: &str, query: Option<&str>) -> Result<Ingress, ErrorResponse> {
    let not_found = || {
        ErrorResponse::new(
            ErrorCode::EndpointNotSupported,
            format!("POST /v1beta/models/{tail} is not an endpoint of this gateway; use {{model}}:generateContent or {{model}}:streamGenerateContent?alt=sse"),
        )
    };
    let (model, method) = tail.rsplit_once(':').ok_or_else(not_found)?;
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
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
    if model.is_empty() {
        return Err(not_found());
    }
    Ok(Ingress::Gemini {
        model: model.to_owned(),
        stream,
    })
}

pub async fn generate(
    State(engine): State<Arc<Engine>>,
    Path(tail): Path<String>,
    RawQuery(query): RawQuery,
    auth: ApiKeyAuth,
    headers: HeaderMap,
    body: JsonBytes,
) -> ApiResult<Response> {
    let ingress = target(&tail, query.as_deref())?;
    super::v1::relay::relay(engine, auth, headers, body, ingress).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_model_and_method() {
        let t = target("fast:generateContent", None).unwrap();
        assert_eq!(
            t,
            Ingress::Gemini {
                model: "fast".into(),
                stream: false
            }
        );
        let t = target("gemma3:4b:streamGenerateContent", Some("key=x&alt=sse")).unwrap();
        assert_eq!(
            t,
            Ingress::Gemini {
                model: "gemma3:4b".into(),
                stream: true
            }
        );
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
