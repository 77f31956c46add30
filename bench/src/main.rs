//! `switchyard-bench`: measures the gateway against a bare proxy hop and against calling the
//! upstream directly, in one run, on this machine. `bench/run` builds it and runs `run`.
//!
//! This is a measuring tool, not the product: it prints its results and spawns its load
//! workers directly.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

mod load;
mod proxy;
mod run;
mod upstream;
mod usage;

use anyhow::Result;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

#[derive(Parser)]
#[command(name = "switchyard-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The fast fake upstream.
    Upstream {
        #[arg(long)]
        listen: SocketAddr,
    },
    /// The bare reverse proxy (the baseline).
    Proxy {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        upstream: SocketAddr,
    },
    /// Every scenario; writes the JSON results and docs/BENCHMARKS.md.
    Run(run::Options),
    /// Only the usage-writer figure (for profiling the writer).
    Writer {
        #[arg(long, default_value_t = 50_000)]
        events: usize,
        #[arg(long)]
        postgres: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The runtime the gateway picks, so that the bare proxy is measured on the same footing:
    // each process is pinned to one core, which gets a current-thread runtime.
    let rt = switchyard::serve::runtime()?;
    rt.block_on(async move {
        match cli.command {
            Command::Upstream { listen } => upstream::run(listen).await,
            Command::Proxy { listen, upstream } => proxy::run(listen, upstream).await,
            Command::Run(opts) => run::run(opts).await,
            Command::Writer { events, postgres } => {
                let kind = if postgres {
                    testkit::db::Kind::Postgres
                } else {
                    testkit::db::Kind::Sqlite
                };
                match usage::measure(kind, events, 10_000).await? {
                    Some(w) => println!(
                        "{:.0} events/s; at {}/s the queue peaked at {}",
                        w.capacity_per_sec, w.steady_rate, w.steady_max_queued
                    ),
                    None => println!("database not reachable"),
                }
                Ok(())
            }
        }
    })
}

/// Serves HTTP/1.1 with keep-alive and TCP_NODELAY, one task per connection.
pub async fn serve_http1<F, Fut>(listen: SocketAddr, handler: F) -> Result<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(handler);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The repository root (the bench crate's parent).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}
