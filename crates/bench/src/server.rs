//! `lockstep serve` as a child process on loopback, on a port the OS picks, with its log in
//! the scratch directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::scratch::Database;
use crate::usage;

/// Webhook attempts a server has in flight at once; the fan-out's ceiling uses as many.
pub const IN_FLIGHT: usize = 64;

/// How long a server may take to say where it listens.
const START_LIMIT: Duration = Duration::from_secs(60);

/// What a server is started with.
pub struct Launch<'a> {
    pub bin: &'a Path,
    pub database: &'a Database,
    pub admin_token: &'a str,
    /// The node's name; nodes sharing a database need different ones.
    pub node: &'a str,
    pub log: PathBuf,
}

/// A server that ended before the bench stopped it: how, and the end of its log.
#[derive(Debug)]
pub struct Ended(String);

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Ended {}

pub struct Server {
    pub base: String,
    pub pid: u32,
    log: PathBuf,
    child: Child,
}

impl Server {
    /// Starts the server and returns once it says where it listens.
    pub async fn start(launch: Launch<'_>) -> anyhow::Result<Server> {
        let mut child = command(&launch)?
            .spawn()
            .with_context(|| format!("starting {}", launch.bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let listening = tokio::time::timeout(START_LIMIT, address(stdout)).await;
        let base = match listening {
            Ok(Ok(base)) => base,
            Ok(Err(err)) => bail!("{err:#}; its log:\n{}", log_tail(&launch.log)),
            Err(_) => bail!("the server did not listen within {START_LIMIT:?}"),
        };
        Ok(Server {
            base,
            pid,
            log: launch.log,
            child,
        })
    }

    pub fn resident_bytes(&self) -> anyhow::Result<u64> {
        usage::resident_bytes(self.pid)
    }

    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        usage::cpu_time(self.pid)
    }

    /// Fails with the end of the server's log if it is no longer running.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        let Some(status) = self.child.try_wait()? else {
            return Ok(());
        };
        // Serve exits with success only after SIGTERM or Ctrl-C, which the bench never
        // sends: another process stopped it.
        let how = match status.success() {
            true => "was shut down by a signal from another process".to_owned(),
            false => format!("exited ({status})"),
        };
        let tail = log_tail(&self.log);
        Err(Ended(format!("the server {how}; the end of its log:\n{tail}")).into())
    }

    /// Adds to `err`, if the server has ended meanwhile and `err` does not say so yet, how it
    /// ended and its log's end: the likelier cause of the failure.
    pub async fn explain(&mut self, err: anyhow::Error) -> anyhow::Error {
        if err.downcast_ref::<Ended>().is_some() {
            return err;
        }
        // A server told to stop stops listening first and exits a moment later.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        match self.check_running() {
            Ok(()) => err,
            Err(ended) => match ended.downcast::<Ended>() {
                Ok(ended) => err.context(ended),
                Err(other) => err.context(format!("{other:#}")),
            },
        }
    }

    /// Kills the server; nothing it holds is needed afterwards.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn command(launch: &Launch<'_>) -> anyhow::Result<Command> {
    let log = std::fs::File::create(&launch.log)
        .with_context(|| format!("creating {}", launch.log.display()))?;
    let mut command = Command::new(launch.bin);
    // A cleared environment: serve refuses LOCKSTEP_* variables it does not know, and the
    // bench's own environment should not change what is measured.
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LOCKSTEP_LISTEN", "127.0.0.1:0")
        .env("LOCKSTEP_DATABASE_URL", &launch.database.url)
        .env("LOCKSTEP_ADMIN_TOKEN", launch.admin_token)
        .env("LOCKSTEP_ALLOW_NETWORKS", "127.0.0.0/8")
        .env("LOCKSTEP_NODE_ID", launch.node)
        .env("LOCKSTEP_MAX_IN_FLIGHT", IN_FLIGHT.to_string())
        // Plain text in the log file, for the error messages that quote it.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true);
    Ok(command)
}

/// Reads the server's stdout up to `Listening on http://ADDR`, then keeps draining it in the
/// background so a later line never meets a closed pipe.
async fn address(stdout: ChildStdout) -> anyhow::Result<String> {
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(base) = line.strip_prefix("Listening on ") {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(base.trim().to_owned());
        }
    }
    bail!("the server exited before it listened")
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
