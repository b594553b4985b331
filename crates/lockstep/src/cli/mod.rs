//! The client subcommands, one module per resource, all talking to a server through
//! `lockstep-client`.
//!
//! Output is a table for people or, with `--json`, JSON for scripts. A failure is one line
//! on stderr, with the server's message and field when it answered, and a non-zero exit
//! code: 1 for a failed command, 3 for a followed release that failed, 4 for one that was
//! cancelled (clap's own usage errors exit with 2).

pub mod instances;
pub mod locks;
pub mod logs;
pub mod progress;
pub mod releases;
pub mod table;
pub mod tokens;
pub mod webhooks;

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use lockstep_client::{Client, PageRequest, Retry};

/// A followed release failed.
pub const EXIT_RELEASE_FAILED: u8 = 3;
/// A followed release was cancelled.
pub const EXIT_RELEASE_CANCELLED: u8 = 4;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Instances: the environments releases deploy to
    #[command(alias = "instances")]
    Instance(instances::Args),
    /// Webhooks: who is told of which event, and which ones hold the release
    #[command(alias = "webhooks")]
    Webhook(webhooks::Args),
    /// Releases: start, follow, list, cancel
    #[command(alias = "releases")]
    Release(releases::Args),
    /// Locks: release one from a script, or force one as an operator
    #[command(alias = "locks")]
    Lock(locks::Args),
    /// A release's action log: read it, or append to it from a script
    #[command(alias = "logs")]
    Log(logs::Args),
    /// API tokens and their scopes
    #[command(alias = "tokens")]
    Token(tokens::Args),
}

/// Runs a client subcommand; the exit code says how it went.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let result = match command {
        Command::Instance(args) => instances::run(args).await,
        Command::Webhook(args) => webhooks::run(args).await,
        Command::Release(args) => releases::run(args).await,
        Command::Lock(args) => locks::run(args).await,
        Command::Log(args) => logs::run(args).await,
        Command::Token(args) => tokens::run(args).await,
    };
    result.map_err(one_line)
}

/// The error's context and the client's own sentence, without the transport's chain of
/// causes, which repeats it at length.
fn one_line(err: anyhow::Error) -> anyhow::Error {
    let mut parts = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        if let Some(client) = cause.downcast_ref::<lockstep_client::Error>() {
            if matches!(client, lockstep_client::Error::Unreachable { .. }) {
                parts.push(
                    "is `lockstep serve` running there? Set --server or LOCKSTEP_SERVER".into(),
                );
            }
            break;
        }
    }
    anyhow::anyhow!(parts.join(": "))
}

/// Where and as whom a client subcommand acts, and how it prints.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The Lockstep server
    #[arg(
        long,
        env = "LOCKSTEP_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// API token (the variable is safer: a flag shows in the process list)
    #[arg(long, env = "LOCKSTEP_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print JSON for scripts instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// How many times to try again while the server cannot be reached (about 36 s for 10)
    #[arg(
        long,
        global = true,
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(0..=100)
    )]
    pub retries: u32,
}

impl Connection {
    pub fn client(&self) -> anyhow::Result<Client> {
        let Some(token) = self.token.as_deref().filter(|t| !t.trim().is_empty()) else {
            bail!("no API token: pass --token or set LOCKSTEP_TOKEN");
        };
        let retry = Retry {
            attempts: self.retries + 1,
            ..Retry::default()
        };
        Ok(Client::new(&self.server, token.trim())?.with_retry(retry))
    }
}

/// Which page of a list to show.
#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// At most this many items (1 to 500)
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start after this cursor, printed under the page before
    #[arg(long)]
    pub cursor: Option<String>,
}

impl PageArgs {
    pub fn request(&self) -> PageRequest {
        PageRequest {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// Prints a value as indented JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("writing JSON")?;
    println!("{text}");
    Ok(())
}

/// Tells a person how to see the next page, on stderr so a table stays clean.
pub fn hint_next_page(next_cursor: Option<&str>) {
    if let Some(cursor) = next_cursor {
        eprintln!("More: add --cursor {cursor}");
    }
}

/// Splits `KEY=VALUE`, naming the flag when the text has no `=`.
pub fn key_value<'a>(text: &'a str, flag: &str) -> anyhow::Result<(&'a str, &'a str)> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim(), value)),
        _ => bail!("{flag}: expected KEY=VALUE, got {text:?}"),
    }
}
