//! The `lockstep` binary's library: configuration, the server's start-up, and the CLI.
//!
//! - [`config`]: flags, `LOCKSTEP_*` variables and the TOML file, validated.
//! - [`server`]: opens the store, seeds the admin token, starts the engine and serves the API.

pub mod config;
pub mod server;
