//! `lockstep-bench`: measures a built `lockstep` on this machine and prints each figure beside
//! a ceiling taken in the same run, so a ratio survives a noisy machine.
//!
//! - [`options`]: the command line and the sizes each mode runs at.
//! - [`suite`]: which figures run on which backend, and the report they make.
//! - [`figures`]: one module per figure, each starting what it needs on loopback.
//! - [`server`]: `lockstep serve` as a child process; [`scratch`]: the databases it runs on.
//! - [`sink`]: the webhook endpoint that answers 200 at once and notes what arrived when.
//! - [`api`]: the calls the bench makes to Lockstep; [`clients`]: making many at once.
//! - [`usage`]: a process's memory and CPU; [`machine`]: what the run ran on.
//! - [`latency`]: samples and their percentiles; [`report`]: the table and its JSON form.

mod api;
mod clients;
mod figures;
mod latency;
mod machine;
mod options;
mod report;
mod scratch;
mod server;
mod sink;
mod suite;
mod usage;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let options = options::Options::parse();
    match suite::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lockstep-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}
