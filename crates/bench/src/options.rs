//! The command line, and the sizes each mode runs at.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lockstep-bench",
    version,
    about = "Measures a built lockstep on this machine, each figure beside its ceiling"
)]
pub struct Options {
    /// Small and quick, for CI: keeps the tool working; its figures mean little
    #[arg(long, conflicts_with = "long")]
    pub short: bool,
    /// 100,000 parked releases and more samples everywhere; takes the better part of an hour
    #[arg(long)]
    pub long: bool,
    /// Print the report as JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Storage backends to measure [default: both when PostgreSQL is reachable, else sqlite]
    #[arg(long, value_enum)]
    pub backend: Option<BackendChoice>,
    /// PostgreSQL server on which the bench creates, and afterwards drops, its databases
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pub postgres: String,
    /// The `lockstep` binary to measure [default: the one next to this binary]
    #[arg(long)]
    pub lockstep_bin: Option<PathBuf>,
    /// Only these figures, e.g. `--figures 2,4`; 2 and 3 run together, as do 4 and 5 [default: all]
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=6))]
    pub figures: Vec<u8>,
    /// Keep the databases and server logs, and say where they are, instead of removing them
    #[arg(long)]
    pub keep: bool,
    /// Concurrent API clients where a figure has many (figures 1, 4 and 5)
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

/// How big each figure runs; the mode picks one set.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub mode: &'static str,
    /// Releases of the fan-out, one instance each.
    pub fan_out_releases: usize,
    /// Non-locking webhooks of the fan-out, each subscribed to all three release events.
    pub fan_out_webhooks: usize,
    /// Releases taken one at a time through a lock, for figures 2 and 3.
    pub resumed: usize,
    /// Releases left waiting on a lock at once, for figure 4.
    pub parked: usize,
    /// How long the parked releases wait while the server's CPU time is read.
    pub park_wait: Duration,
    /// How long each API throughput of figure 5 runs.
    pub api_time: Duration,
    /// Server starts timed for figure 6.
    pub starts: usize,
}

impl Options {
    /// Whether figure `n` is to run.
    pub fn wants(&self, n: u8) -> bool {
        self.figures.is_empty() || self.figures.contains(&n)
    }

    pub fn sizes(&self) -> Sizes {
        if self.short {
            return Sizes {
                mode: "short",
                fan_out_releases: 10,
                fan_out_webhooks: 5,
                resumed: 30,
                parked: 100,
                park_wait: Duration::from_secs(1),
                api_time: Duration::from_millis(500),
                starts: 2,
            };
        }
        if self.long {
            return Sizes {
                mode: "long",
                fan_out_releases: 300,
                fan_out_webhooks: 20,
                resumed: 5_000,
                parked: 100_000,
                park_wait: Duration::from_secs(30),
                api_time: Duration::from_secs(10),
                starts: 10,
            };
        }
        Sizes {
            mode: "default",
            fan_out_releases: 100,
            fan_out_webhooks: 10,
            resumed: 1_000,
            parked: 10_000,
            park_wait: Duration::from_secs(30),
            api_time: Duration::from_secs(5),
            starts: 5,
        }
    }
}
