//! The `lockstep serve` process under test: started, SIGKILLed and started again on the
//! same database and port. Each start is a new generation, and the process's requests
//! name theirs in their `User-Agent`, so the audit can tell which process sent what.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    pub port: u16,
    pub admin: String,
    database_url: String,
    log: PathBuf,
    child: Option<Child>,
    /// How many times the process was started; the current one's number.
    pub generation: u32,
    pub kills: usize,
}

impl Server {
    pub fn new(database_url: String, dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Server {
            port,
            admin: format!("lsk_crash_{:032x}", rand::random::<u128>()),
            database_url,
            log: dir.join("server.log"),
            child: None,
            generation: 0,
            kills: 0,
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the process and waits until it listens.
    pub fn start(&mut self) {
        self.generation += 1;
        let mut child = Command::new(env!("CARGO_BIN_EXE_lockstep"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOCKSTEP_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("LOCKSTEP_DATABASE_URL", &self.database_url)
            .env("LOCKSTEP_ADMIN_TOKEN", &self.admin)
            .env("LOCKSTEP_ALLOW_NETWORKS", "127.0.0.0/8")
            .env("LOCKSTEP_RETRY_SCHEDULE", "1s,1s,2s,2s,3s,3s,5s,5s")
            // One node name across restarts, so a restarted process takes back its claims.
            .env("LOCKSTEP_NODE_ID", "crash-node")
            .env("LOCKSTEP_USER_AGENT", user_agent(self.generation))
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting lockstep serve");

        let stderr = child.stderr.take().expect("stderr");
        let log = self.log.clone();
        std::thread::spawn(move || append_lines(stderr, &log));
        let (listening, heard) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("Listening on ") {
                    let _ = listening.send(());
                }
            }
        });
        if heard.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!("lockstep serve never listened; log:\n{}", self.log_text());
        }
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.kills += 1;
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Fails the harness if the process ended without being killed.
    pub fn assert_alive(&mut self) {
        let exited = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if let Some(status) = exited {
            panic!(
                "lockstep serve exited by itself ({status}); log tail:\n{}",
                self.log_tail()
            );
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `User-Agent` of the process started `generation`th.
pub fn user_agent(generation: u32) -> String {
    format!("lockstep-crash-harness/{generation}")
}

/// The generation a `User-Agent` names, if it is one of ours.
pub fn generation_of(user_agent: &str) -> Option<u32> {
    user_agent
        .strip_prefix("lockstep-crash-harness/")?
        .parse()
        .ok()
}

fn append_lines(from: impl std::io::Read, to: &Path) {
    use std::io::Write;
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(to)
    else {
        return;
    };
    for line in BufReader::new(from).lines().map_while(Result::ok) {
        let _ = writeln!(file, "{line}");
    }
}
