//! Wiring and the server's life: open the database, build upstream clients and the engine,
//! serve until told to stop, then drain in-flight requests and flush usage before exit.

use crate::config::Config;
use crate::secrets;
use anyhow::{anyhow, Context, Result};
use axum::serve::ListenerExt;
use domain::{ProviderId, Role};
use engine::accounts::SignUp;
use engine::Engine;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Opens storage, runs migrations, bootstraps the first admin and builds the engine.
pub async fn build_engine(config: &Config) -> Result<Arc<Engine>> {
    let backend =
        store::Backend::from_url(&config.database_url).map_err(|e| anyhow!("database.url: {e}"))?;
    let store = store::connect(backend.clone())
        .await
        .with_context(|| format!("opening the {} database", backend.name()))?;
    let secret = match &config.secret_key {
        Some(s) => s.clone(),
        None => secrets::instance_secret(&config.data_dir)?,
    };
    let mut providers = Vec::new();
    for p in &config.providers {
        let client = upstream::build(p).map_err(|e| anyhow!("providers.{}: {e}", p.name))?;
        providers.push(engine::routing::Provider {
            id: ProviderId(p.name.clone()),
            upstream: client,
            api_keys: p.api_keys.clone(),
            max_concurrency: p.max_concurrency,
            health_check_interval: p.health_check_interval,
        });
    }
    let mut settings = config.engine.clone();
    settings.pepper = secret.into_bytes();
    let engine = Engine::start(Arc::new(store), config.catalog.clone(), providers, settings)
        .await
        .context("loading plans")?;
    if let Some((email, password)) = &config.admin {
        bootstrap_admin(&engine, email, password).await?;
    }
    Ok(engine)
}

/// Creates the configured admin when the database has no accounts yet.
async fn bootstrap_admin(engine: &Engine, email: &str, password: &str) -> Result<()> {
    if engine
        .account_count()
        .await
        .map_err(|e| anyhow!("{}", e.message))?
        > 0
    {
        return Ok(());
    }
    let signup = SignUp {
        email: email.to_owned(),
        password: password.to_owned(),
        name: "Administrator".to_owned(),
        role: Role::Admin,
    };
    let account = engine.sign_up(signup).await.map_err(|e| {
        anyhow!(
            "creating the first admin from bootstrap settings: {}",
            e.message
        )
    })?;
    tracing::info!(email = %account.email, "created the first admin account");
    Ok(())
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish (up to the configured grace), and flushes every queued usage event.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_with(config, listener, shutdown, axum::Router::new()).await
}

/// `serve` with extra routes merged under the same layers.
pub async fn serve_with(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    extra: axum::Router<Arc<Engine>>,
) -> Result<()> {
    let engine = build_engine(&config).await?;
    let app = http_api::router(engine.clone(), config.http.clone(), extra);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %store::Backend::from_url(&config.database_url).map(|b| b.name()).unwrap_or("?"), models = engine.catalog().iter().count(), "switchyard is listening");

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stopping_tx.send(());
    };
    // Streams are relayed event by event; Nagle's algorithm would hold small events back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // `into_make_service`: each connection shares the router. Serving the `Router` itself
    // would deep-clone its route table for every connection (~35 KB each).
    let server = axum::serve(listener, app.into_make_service()).with_graceful_shutdown(signal);
    let grace = config.shutdown_grace;
    let deadline = async move {
        let _ = stopping_rx.await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result.context("serving HTTP")?,
        () = deadline => tracing::warn!(?grace, "in-flight requests outlasted the shutdown grace; stopping anyway"),
    }
    engine.shutdown().await;
    tracing::info!("stopped; all usage written");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn os_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
