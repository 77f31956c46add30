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
    let (addr, server, _) = serve_counting_connections(app).await;
    (addr, server)
}

/// `serve_on_loopback`, also counting the connections accepted.
pub async fn serve_counting_connections(
    app: axum::Router,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    let listener = listener.tap_io(move |_| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    #[allow(clippy::disallowed_methods)]
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server, accepted)
}
