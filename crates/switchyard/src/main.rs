//! `switchyard`: the LLM API gateway. `switchyard serve` runs it; `switchyard admin …`
//! administers it.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use switchyard::{admin, config, logging, serve};

/// jemalloc gives freed memory back to the system within seconds (a password hash's 19 MiB
/// scratch buffer, a burst's buffers), where glibc's per-thread arenas keep it resident.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Move an account to another plan.
    SetPlan {
        #[arg(long)]
        email: String,
        #[arg(long)]
        plan: String,
    },
    /// Grant credit (or deduct it, with a negative amount), as a ledger entry.
    GrantCredits {
        #[arg(long)]
        email: String,
        /// USD, e.g. 25 or -0.50.
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        #[arg(long)]
        reason: String,
    },
    /// Override a key's limits (0 returns a limit to the plan's).
    SetKeyLimits {
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        rpm: Option<u32>,
        #[arg(long)]
        tpm: Option<u32>,
        #[arg(long)]
        concurrency: Option<u32>,
    },
    /// Check that every balance equals the sum of its ledger (exit 1 if not).
    VerifyLedger,
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
    let runtime = switchyard::serve::runtime().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .with_context(|| format!("binding {}", config.listen))?;
                serve::serve(config, listener, serve::os_signal()).await
            }
            Command::Admin { command } => {
                let message = match command {
                    AdminCommand::CreateUser {
                        email,
                        password,
                        name,
                        admin,
                    } => admin::create_user(&config, &email, &password, &name, admin).await?,
                    AdminCommand::SetPlan { email, plan } => {
                        admin::set_plan(&config, &email, &plan).await?
                    }
                    AdminCommand::GrantCredits {
                        email,
                        amount,
                        reason,
                    } => admin::grant_credits(&config, &email, &amount, &reason).await?,
                    AdminCommand::SetKeyLimits {
                        key_id,
                        rpm,
                        tpm,
                        concurrency,
                    } => admin::set_key_limits(&config, &key_id, rpm, tpm, concurrency).await?,
                    AdminCommand::VerifyLedger => admin::verify_ledger(&config).await?,
                };
                writeln!(std::io::stdout(), "{message}")?;
                Ok(())
            }
        }
    })
}
