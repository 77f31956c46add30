//! Wiring and the server's life: open the database, build upstream clients and the engine,
//! serve until told to stop, then drain in-flight requests and flush usage before exit.

use crate::config::Config;
use crate::secrets;
use anyhow::{anyhow, Context, Result};
use domain::{ProviderId, Role};
use engine::accounts::SignUp;
use engine::Engine;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The async runtime: with one core to run on (a 1-vCPU container, a process pinned to one
/// core), a current-thread runtime, which has no work-stealing queues to keep in step and
/// no other worker to wake; otherwise one worker thread per core, or as many as tokio's
/// `TOKIO_WORKER_THREADS` asks for (which also asks for the multi-threaded runtime on one core).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores == 1 && std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
}

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
    let runtime = tokio::runtime::Handle::current();
    tracing::info!(%addr, database = %store::Backend::from_url(&config.database_url).map(|b| b.name()).unwrap_or("?"), models = engine.catalog().iter().count(), runtime = ?runtime.runtime_flavor(), workers = runtime.metrics().num_workers(), "switchyard is listening");

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stopping_tx.send(());
    };
    let server = accept_loop(listener, app, signal);
    let grace = config.shutdown_grace;
    let deadline = async move {
        let _ = stopping_rx.await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = server => {}
        () = deadline => tracing::warn!(?grace, "in-flight requests outlasted the shutdown grace; stopping anyway"),
    }
    engine.shutdown().await;
    tracing::info!("stopped; all usage written");
    Ok(())
}

/// How long a client may take to send a request's head (slow-loris protection); a
/// keep-alive connection idle this long is closed too.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections and serves HTTP/1.1 on each until `signal` resolves; then stops
/// accepting, lets each connection finish the request it is on and returns once all are
/// closed.
///
/// Not `axum::serve`: its connections sniff for the HTTP/2 preface first, which hands hyper
/// the request in two reads and doubles each connection's read buffer to 16 KiB (a held
/// stream cost 46 KB of RSS with it, 35 KB without). Cleartext HTTP/2 is not offered;
/// HTTP/2 clients reach the gateway through the TLS-terminating proxy in front of it.
async fn accept_loop<A>(
    listener: TcpListener,
    app: A,
    signal: impl Future<Output = ()> + Send + 'static,
) where
    A: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut signal = std::pin::pin!(signal);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = signal.as_mut() => break,
        };
        // Streams are relayed event by event; Nagle's algorithm would hold small events back.
        let _ = tcp.set_nodelay(true);
        // A clone of the app shares its route table; it is not copied per connection.
        let service = hyper_util::service::TowerToHyperService::new(app.clone().map_request(
            |req: http::Request<hyper::body::Incoming>| req.map(axum::body::Body::new),
        ));
        let conn = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
        // Connections are not background work: `graceful` drains them below, and past the
        // shutdown grace they are dropped with the runtime.
        #[allow(clippy::disallowed_methods)]
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Accept errors: a connection that failed before it was accepted is the client's problem;
/// anything else (out of file descriptors) is logged and retried after a pause, as a tight
/// retry loop would only burn the core.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
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
