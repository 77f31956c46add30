//! A fake Stripe API: `POST /v1/checkout/sessions` (form-encoded, Bearer secret key) answers
//! a session with an id and a checkout URL, and records what it was sent.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Shared {
    sessions: Mutex<Vec<HashMap<String, String>>>,
}

pub struct FakeStripe {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _server: tokio::task::JoinHandle<()>,
}

/// The secret key the fake accepts.
pub const SECRET_KEY: &str = "sk_test_switchyard";

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .with_state(shared.clone());
        let (addr, server) = crate::serve_on_loopback(app).await;
        FakeStripe {
            addr,
            shared,
            _server: server,
        }
    }

    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The form fields of every session created, in order.
    pub fn sessions(&self) -> Vec<HashMap<String, String>> {
        self.shared.sessions.lock().unwrap().clone()
    }
}

async fn create_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {SECRET_KEY}") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": { "message": "Invalid API Key provided" } })),
        )
            .into_response();
    }
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let mut sessions = shared.sessions.lock().unwrap();
    sessions.push(form);
    let id = format!("cs_test_{}", sessions.len());
    axum::Json(json!({ "id": id, "object": "checkout.session", "url": format!("https://checkout.stripe.com/c/pay/{id}") })).into_response()
}

/// Percent-decoding of form fields (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
