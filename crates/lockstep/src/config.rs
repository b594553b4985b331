//! The service's configuration: flags, then `LOCKSTEP_*` variables, then an optional TOML
//! file, then defaults — in that order of precedence — validated before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

use lockstep_core::retry::Schedule;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://lockstep.db";

/// Every `LOCKSTEP_*` variable Lockstep reads; any other is refused as a likely typo.
pub const KNOWN_VARIABLES: &[&str] = &[
    "LOCKSTEP_CONFIG",
    "LOCKSTEP_LISTEN",
    "LOCKSTEP_DATABASE_URL",
    "LOCKSTEP_ADMIN_TOKEN",
    "LOCKSTEP_ALLOW_NETWORKS",
    "LOCKSTEP_ENCRYPTION_KEY",
    "LOCKSTEP_USER_AGENT",
    "LOCKSTEP_RETRY_SCHEDULE",
    "LOCKSTEP_MAX_IN_FLIGHT",
    "LOCKSTEP_SHUTDOWN_GRACE",
    "LOCKSTEP_NODE_ID",
    "LOCKSTEP_RELEASE_LEASE",
    "LOCKSTEP_LEASE_MARGIN",
    "LOCKSTEP_DISABLE_AFTER",
    "LOCKSTEP_SERVER",
    "LOCKSTEP_TOKEN",
];

/// `lockstep serve` options. Each may also come from its variable or the TOML file.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys in snake_case)
    #[arg(long, env = "LOCKSTEP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address the API listens on [default: 127.0.0.1:8080]
    #[arg(long, env = "LOCKSTEP_LISTEN")]
    pub listen: Option<String>,
    /// `sqlite://PATH` or `postgres://…` [default: sqlite://lockstep.db]
    #[arg(long, env = "LOCKSTEP_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Admin token to create on an empty database (otherwise one is generated and printed)
    #[arg(long, env = "LOCKSTEP_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Comma-separated CIDRs that webhooks may target besides public addresses
    #[arg(long, env = "LOCKSTEP_ALLOW_NETWORKS")]
    pub allow_networks: Option<String>,
    /// Key for webhook secrets at rest (32 bytes, base64)
    #[arg(long, env = "LOCKSTEP_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    /// User-Agent of webhook requests [default: MDOQ Webhook (https://www.mdoq.io)]
    #[arg(long, env = "LOCKSTEP_USER_AGENT")]
    pub user_agent: Option<String>,
    /// Waits between attempts of a failed delivery, e.g. `5s,1m,5m`
    /// [default: 5s,1m,5m,30m,2h,5h,10h,10h]
    #[arg(long, env = "LOCKSTEP_RETRY_SCHEDULE")]
    pub retry_schedule: Option<String>,
    /// Most webhook attempts in flight at once [default: 64]
    #[arg(long, env = "LOCKSTEP_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// How long SIGTERM waits for attempts in flight, e.g. `60s` [default: 60s]
    #[arg(long, env = "LOCKSTEP_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<String>,
    /// This node's name in claims and logs [default: host name and process id]
    #[arg(long, env = "LOCKSTEP_NODE_ID")]
    pub node_id: Option<String>,
    /// How long a node owns a release unless it renews; then another node takes over [default: 30s]
    #[arg(long, env = "LOCKSTEP_RELEASE_LEASE")]
    pub release_lease: Option<String>,
    /// How far a delivery claim outlives the webhook's deadline [default: 30s]
    #[arg(long, env = "LOCKSTEP_LEASE_MARGIN")]
    pub lease_margin: Option<String>,
    /// Disable a webhook whose every attempt failed for this long [default: 5d]
    #[arg(long, env = "LOCKSTEP_DISABLE_AFTER")]
    pub disable_after: Option<String>,
}

/// The TOML file: the same settings, all optional; unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    admin_token: Option<String>,
    allow_networks: Option<Vec<String>>,
    encryption_key: Option<String>,
    user_agent: Option<String>,
    retry_schedule: Option<String>,
    max_in_flight: Option<usize>,
    shutdown_grace: Option<String>,
    node_id: Option<String>,
    release_lease: Option<String>,
    lease_margin: Option<String>,
    disable_after: Option<String>,
}

/// Validated settings for `serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub admin_token: Option<String>,
    pub allow_networks: Vec<String>,
    pub encryption_key: Option<String>,
    pub user_agent: String,
    pub retry: Schedule,
    pub max_in_flight: usize,
    pub shutdown_grace: Duration,
    pub node_id: String,
    pub release_lease: Duration,
    pub lease_margin: Duration,
    pub disable_after: Duration,
}

impl Config {
    /// Merges flags and variables (already in `args`) over the file and the defaults.
    pub fn load(args: ServeArgs) -> anyhow::Result<Config> {
        refuse_unknown_variables(std::env::vars().map(|(k, _)| k))?;
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("reading the configuration file {}", path.display())
                })?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("in the configuration file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen_text = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text.parse().with_context(|| {
            format!("listen: {listen_text:?} is not an address like 127.0.0.1:8080")
        })?;
        let database_url = args
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if lockstep_store::backend_of(&database_url).is_none() {
            bail!("database_url: must start with sqlite:// or postgres://");
        }
        let admin_token = args.admin_token.or(file.admin_token);
        if let Some(token) = &admin_token {
            if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_graphic()) {
                bail!("admin_token: must be at least 32 printable characters without spaces");
            }
        }
        let allow_networks = match args.allow_networks {
            Some(text) => text
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            None => file.allow_networks.unwrap_or_default(),
        };
        for network in &allow_networks {
            lockstep_engine::guard::parse_network(network)
                .with_context(|| format!("allow_networks: {network:?}"))?;
        }
        let encryption_key = args.encryption_key.or(file.encryption_key);
        if let Some(key) = &encryption_key {
            lockstep_store::cipher::Cipher::from_base64(key)?;
        }
        let user_agent = args
            .user_agent
            .or(file.user_agent)
            .unwrap_or_else(|| lockstep_engine::DEFAULT_USER_AGENT.into());
        if user_agent.is_empty()
            || user_agent.len() > 256
            || !user_agent.bytes().all(|b| (32..127).contains(&b))
        {
            bail!("user_agent: must be 1 to 256 printable ASCII characters");
        }
        let retry = match args.retry_schedule.or(file.retry_schedule) {
            Some(text) => Schedule::parse(&text, "retry_schedule")?,
            None => Schedule::default(),
        };
        let max_in_flight = args.max_in_flight.or(file.max_in_flight).unwrap_or(64);
        if !(1..=10_000).contains(&max_in_flight) {
            bail!("max_in_flight: must be between 1 and 10000");
        }
        let grace = args.shutdown_grace.or(file.shutdown_grace);
        let shutdown_grace = duration("shutdown_grace", grace, "60s", (0, 3600))?;
        let lease = args.release_lease.or(file.release_lease);
        let release_lease = duration("release_lease", lease, "30s", (3, 600))?;
        // A claim lasts the webhook's deadline plus this margin, so it always outlives the
        // request; a margin too small to cover a slow database write is refused.
        let margin = args.lease_margin.or(file.lease_margin);
        let lease_margin = duration("lease_margin", margin, "30s", (5, 3600))?;
        let disable = args.disable_after.or(file.disable_after);
        let disable_after = duration("disable_after", disable, "5d", (1, 365 * 86_400))?;
        let node_id = args
            .node_id
            .or(file.node_id)
            .unwrap_or_else(default_node_id);
        let node_ok = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
        if node_id.is_empty() || node_id.len() > 100 || !node_id.bytes().all(node_ok) {
            bail!("node_id: must be 1 to 100 letters, digits, '-', '_' or '.'");
        }
        Ok(Config {
            listen,
            database_url,
            admin_token,
            allow_networks,
            encryption_key,
            user_agent,
            retry,
            max_in_flight,
            shutdown_grace,
            node_id,
            release_lease,
            lease_margin,
            disable_after,
        })
    }
}

/// A duration setting (`30s`, `5m`, `2h`, `5d`) within `bounds` in seconds.
fn duration(
    key: &str,
    value: Option<String>,
    default: &str,
    (min, max): (u64, u64),
) -> anyhow::Result<Duration> {
    let text = value.unwrap_or_else(|| default.to_owned());
    lockstep_core::retry::parse_duration(&text)
        .filter(|d| (min..=max).contains(&d.as_secs()))
        .with_context(|| format!("{key}: {text:?} is not a duration from {min}s to {max}s"))
}

fn refuse_unknown_variables(names: impl Iterator<Item = String>) -> anyhow::Result<()> {
    for name in names {
        if name.starts_with("LOCKSTEP_") && !KNOWN_VARIABLES.contains(&name.as_str()) {
            bail!(
                "unknown variable {name}; known ones are {}",
                KNOWN_VARIABLES.join(", ")
            );
        }
    }
    Ok(())
}

fn default_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    let host = if host.is_empty() { "lockstep" } else { host };
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_variable_is_refused_by_name() {
        let err = refuse_unknown_variables(["LOCKSTEP_LISTN".to_owned()].into_iter()).unwrap_err();
        assert!(err.to_string().contains("LOCKSTEP_LISTN"));
        assert!(refuse_unknown_variables(
            ["LOCKSTEP_LISTEN".to_owned(), "PATH".to_owned()].into_iter()
        )
        .is_ok());
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let err = toml::from_str::<FileConfig>("lissen = \"x\"").unwrap_err();
        assert!(err.to_string().contains("lissen"));
        let ok: FileConfig =
            toml::from_str("listen = \"127.0.0.1:9\"\nallow_networks = [\"127.0.0.0/8\"]").unwrap();
        assert_eq!(ok.allow_networks.unwrap(), ["127.0.0.0/8"]);
    }
}
