//! `switchyard`: the LLM API gateway. `switchyard serve` runs it; `switchyard admin …`
//! administers it.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use switchyard::{admin, config, logging, serve};

#[derive(Parser)]
#[command(name = "switchyard", version, about = "A self-hosted LLM API gateway")]
struct Cli {
    /// Configuration file (default: ./switchyard.toml if present).
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Administration commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account.
    CreateUser {
        #[arg(long)]
        email: String,
        /// The password (at least 10 characters).
        #[arg(long, env = "SWITCHYARD_NEW_USER_PASSWORD")]
        password: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
}

fn main() -> Result<()> {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut config = config::load(cli.config.as_deref(), &env)?;
    if cli.log_json {
        config.log_format = config::LogFormat::Json;
    }
    logging::init(config.log_format, &config.log_level);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .with_context(|| format!("binding {}", config.listen))?;
                serve::serve(config, listener, serve::os_signal()).await
            }
            Command::Admin {
                command:
                    AdminCommand::CreateUser {
                        email,
                        password,
                        name,
                        admin,
                    },
            } => {
                let message = admin::create_user(&config, &email, &password, &name, admin).await?;
                writeln!(std::io::stdout(), "{message}")?;
                Ok(())
            }
        }
    })
}
