//! What every API test needs: a real `lockstep serve` process on a free port with a fresh
//! database, a client with typed request helpers, and receivers on loopback.

pub mod receiver;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub use receiver::{Answer, Receiver};

/// Which storage backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// The PostgreSQL server tests may create databases on, if one is configured.
fn postgres_server() -> Option<String> {
    std::env::var("LOCKSTEP_TEST_DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"))
}

/// Runs a test on `backend`. Without a configured PostgreSQL server its run is skipped with
/// a notice written past the test harness's capture, or fails when `CI` is set.
pub async fn run(backend: Backend, test: impl std::future::Future<Output = ()>) {
    if backend == Backend::Postgres && postgres_server().is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but LOCKSTEP_TEST_DATABASE_URL names no PostgreSQL server");
        }
        static NOTICE: std::sync::Once = std::sync::Once::new();
        NOTICE.call_once(|| {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "notice: PostgreSQL tests skipped: set \
                 LOCKSTEP_TEST_DATABASE_URL=postgres://USER@HOST:PORT to run them"
            );
        });
        return;
    }
    BACKEND.scope(backend, test).await
}

/// Where tests keep their databases: a fresh SQLite file, or a fresh PostgreSQL database
/// on the server `LOCKSTEP_TEST_DATABASE_URL` names (`postgres://user@host:port`).
pub struct Database {
    pub url: String,
    dir: PathBuf,
}

impl Database {
    pub async fn fresh() -> Database {
        let suffix: u64 = rand::rng().random();
        let dir = std::env::temp_dir().join(format!("lockstep-test-{suffix:016x}"));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        let backend = BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite);
        let server = postgres_server().filter(|_| backend == Backend::Postgres);
        let url = match server {
            Some(server) => {
                let name = format!("lockstep_test_{suffix:016x}");
                create_postgres_database(&server, &name).await;
                format!("{}/{name}", server.trim_end_matches('/'))
            }
            _ => format!("sqlite://{}", dir.join("lockstep.db").display()),
        };
        Database { url, dir }
    }
}

impl Database {
    /// Another handle on the same database, with a directory of its own for logs.
    pub fn shared(&self) -> Database {
        let suffix: u64 = rand::rng().random();
        let dir = std::env::temp_dir().join(format!("lockstep-test-{suffix:016x}"));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        Database {
            url: self.url.clone(),
            dir,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn create_postgres_database(server: &str, name: &str) {
    use sqlx::Connection;
    let admin = format!("{}/postgres", server.trim_end_matches('/'));
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connecting to the PostgreSQL server named by LOCKSTEP_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("creating a test database");
}

/// A running `lockstep serve` and a client for it, stopped when dropped.
pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub http: reqwest::Client,
    pub db: Database,
    pub extra_env: Vec<(String, String)>,
    child: Option<Child>,
    pub port: u16,
}

pub fn lockstep_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockstep")
}

impl TestApp {
    /// Starts the service on a fresh database, with loopback allowed as a webhook target
    /// and a short retry schedule.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    pub async fn spawn_with(env: &[(&str, &str)]) -> TestApp {
        let admin = format!("lsk_test_{:032x}", rand::rng().random::<u128>());
        let db = Database::fresh().await;
        let mut app = TestApp {
            base: String::new(),
            admin,
            http: reqwest::Client::new(),
            db,
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            port: 0,
        };
        app.start();
        app
    }

    /// Starts another node on this one's database, named `node`.
    pub fn join(&self, node: &str) -> TestApp {
        let mut extra_env = self.extra_env.clone();
        extra_env.push(("LOCKSTEP_NODE_ID".into(), node.into()));
        let mut app = TestApp {
            base: String::new(),
            admin: self.admin.clone(),
            http: reqwest::Client::new(),
            db: self.db.shared(),
            extra_env,
            child: None,
            port: 0,
        };
        app.start();
        app
    }

    /// The `lockstep serve` command this app runs, with its environment.
    fn command(&self, port: u16) -> Command {
        let mut command = Command::new(lockstep_bin());
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOCKSTEP_LISTEN", format!("127.0.0.1:{port}"))
            .env("LOCKSTEP_DATABASE_URL", &self.db.url)
            .env("LOCKSTEP_ADMIN_TOKEN", &self.admin)
            .env("LOCKSTEP_ALLOW_NETWORKS", "127.0.0.0/8")
            .env("LOCKSTEP_RETRY_SCHEDULE", "1s,1s")
            .env("LOCKSTEP_SHUTDOWN_GRACE", "10s")
            .env("LOCKSTEP_NODE_ID", "test-node")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("LOCKSTEP_RELEASE_LEASE", "3s");
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
        command
    }

    /// Runs the process expecting it to refuse to start; returns its exit code and stderr.
    pub fn start_refused(&self) -> (Option<i32>, String) {
        let output = self
            .command(free_port())
            .stdout(Stdio::null())
            .output()
            .expect("running lockstep serve");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Starts the process (again, after a kill, on the same database and port).
    pub fn start(&mut self) {
        let port = if self.port == 0 {
            free_port()
        } else {
            self.port
        };
        let mut command = self.command(port);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting lockstep serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log_path = self.db.dir.join("server.log");
        std::thread::spawn(move || copy_lines(stderr, log_path));
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("Listening on ") => break,
                Some(Ok(_)) => continue,
                _ => panic!(
                    "lockstep serve exited before listening; log:\n{}",
                    self.server_log()
                ),
            }
        }
        std::thread::spawn(move || for _ in lines {});
        self.port = port;
        self.base = format!("http://127.0.0.1:{port}");
        // Pooled connections to an earlier process would fail on first use.
        self.http = reqwest::Client::new();
        self.child = Some(child);
    }

    /// Everything the server wrote to stderr so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.db.dir.join("server.log")).unwrap_or_default()
    }

    /// Kills the process at once, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and returns the exit code. Waits without blocking the test's runtime,
    /// which also runs the receivers the server may still be talking to.
    pub async fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        loop {
            if let Some(status) = child.try_wait().ok()? {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("calling the API");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, &self.admin, None).await;
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call("POST", path, &self.admin, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }

    /// A token with the given scopes.
    pub async fn token(&self, scopes: &[&str]) -> String {
        let body = self
            .post("/api/v1/tokens", json!({"name": "test", "scopes": scopes}))
            .await;
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn instance(&self, id: &str, steps: Value) -> Value {
        let body = json!({"id": id, "name": format!("Instance {id}"),
            "url": "https://shop.example.com", "attributes": {"php": "8.3"}, "steps": steps});
        self.post("/api/v1/instances", body).await
    }

    pub async fn webhook(&self, url: &str, events: Value, extra: Value) -> Value {
        let mut body = json!({"url": url, "events": events});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.post("/api/v1/webhooks", body).await
    }

    pub async fn start_release(&self, instance: &str, tag: &str) -> Value {
        let body = json!({"instance": instance, "tag": tag, "zero_downtime": true});
        self.post("/api/v1/releases", body).await
    }

    pub async fn release(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/releases/{id}")).await
    }

    /// Waits until the release satisfies `check`, failing with its last state after `limit`.
    pub async fn wait_release(
        &self,
        id: &str,
        limit: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let release = self.release(id).await;
            if check(&release) {
                return release;
            }
            if Instant::now() > deadline {
                panic!(
                    "release never got there; last: {release}\nlog:\n{}",
                    self.server_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn wait_stage(&self, id: &str, stage: &str) -> Value {
        self.wait_release(id, Duration::from_secs(20), |r| r["stage"] == stage)
            .await
    }

    /// The release's whole action log.
    pub async fn log(&self, release: &Value) -> Vec<Value> {
        let log = self
            .get(&format!("/api/v1/logs/{}", release["parent_log"]))
            .await;
        log["entries"].as_array().unwrap().clone()
    }

    pub async fn release_lock(
        &self,
        token: &str,
        lock: &str,
        outcome: &str,
    ) -> (StatusCode, Value) {
        let body = json!({"lock": lock, "outcome": outcome, "message": "from the test"});
        self.call("POST", "/api/v1/locks/release", token, Some(body))
            .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().unwrap().port()
}

fn copy_lines(from: impl std::io::Read, to: PathBuf) {
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

/// Messages of a log, for assertions on what happened in which order.
pub fn messages(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The index of the first message containing `needle`, failing with the whole log if none.
pub fn position(messages: &[String], needle: &str) -> usize {
    messages
        .iter()
        .position(|m| m.contains(needle))
        .unwrap_or_else(|| panic!("no log message contains {needle:?}; log: {messages:#?}"))
}
