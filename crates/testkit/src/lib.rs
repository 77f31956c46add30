//! Dev-only helpers: per-test databases on every backend, fake upstreams that speak the exact
//! wire formats with scripted failures, and a client for driving the gateway over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod db;
pub mod fake_anthropic;
pub mod fake_gemini;
pub mod fake_openai;
pub mod fake_stripe;

/// Serves `app` on a free loopback port until the returned handle is dropped with its test.
pub async fn serve_on_loopback(
    app: axum::Router,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    #[allow(clippy::disallowed_methods)]
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}
