//! The `lockstep` binary's library: configuration, the server's start-up, and the CLI.
//!
//! - [`config`]: flags, `LOCKSTEP_*` variables and the TOML file, validated.
//! - [`server`]: opens the store, seeds the admin token, starts the engine and serves the API.
//! - [`demo`]: `lockstep demo`, the service and an example middleware on a throwaway database.
//! - [`cli`]: the client subcommands (`instance`, `webhook`, `release`, `lock`, `log`, `token`).

pub mod cli;
pub mod config;
pub mod demo;
pub mod server;
