//! The `lockstep` binary's client subcommands and its demo, run as a user would: each test
//! starts a real `lockstep serve` on a free port with a fresh SQLite file, runs the built
//! binary against it, and checks what it printed and how it exited.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use rand::Rng;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_lockstep");
/// No command in these tests should take anywhere near this long.
const LIMIT: Duration = Duration::from_secs(60);

/// A directory of the test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let suffix: u64 = rand::rng().random();
        let dir = std::env::temp_dir().join(format!("lockstep-cli-test-{suffix:016x}"));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `lockstep serve`, killed when dropped.
struct Server {
    base: String,
    admin: String,
    dir: Scratch,
    _child: Child,
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

impl Server {
    async fn start() -> Server {
        let dir = Scratch::new();
        let admin = format!("lsk_cli_test_{:032x}", rand::rng().random::<u128>());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("finding a free port")
            .port();
        let log = std::fs::File::create(dir.0.join("server.log")).unwrap();
        let mut child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOCKSTEP_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "LOCKSTEP_DATABASE_URL",
                format!("sqlite://{}/x.db", dir.0.display()),
            )
            .env("LOCKSTEP_ADMIN_TOKEN", &admin)
            .env("LOCKSTEP_ALLOW_NETWORKS", "127.0.0.0/8")
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("starting lockstep serve");
        wait_until_listening(&mut child, &dir.0).await;
        Server {
            base: format!("http://127.0.0.1:{port}"),
            admin,
            dir,
            _child: child,
        }
    }

    /// Runs `lockstep ARGS…` against this server with the admin token.
    async fn run(&self, args: &[&str]) -> Run {
        self.run_as(&self.admin, args).await
    }

    async fn run_as(&self, token: &str, args: &[&str]) -> Run {
        let output = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOCKSTEP_SERVER", &self.base)
            .env("LOCKSTEP_TOKEN", token)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(LIMIT, output)
            .await
            .unwrap_or_else(|_| panic!("lockstep {args:?} did not finish; {}", self.log()))
            .expect("running lockstep");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed, and returns what it printed.
    async fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, Some(0), "lockstep {args:?} failed: {run:#?}");
        run
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.0.join("server.log")).unwrap_or_default();
        format!("server log:\n{log}")
    }

    /// An instance whose one step runs `step`.
    async fn instance(&self, id: &str, step: &str) {
        let step = format!("build={step}");
        let url = "https://shop.example.com";
        self.ok(&[
            "instance", "create", "--id", id, "--name", id, "--url", url, "--step", &step,
        ])
        .await;
    }
}

impl Server {
    /// Starts a release of `tag` to `instance` and returns its id.
    async fn start_release(&self, instance: &str, tag: &str) -> String {
        let args = [
            "release",
            "start",
            "--instance",
            instance,
            "--tag",
            tag,
            "--json",
        ];
        release_id(&self.ok(&args).await)
    }

    /// A webhook to `url` with `--event` or `--lock` subscriptions, as `flag_and_event`.
    async fn webhook(&self, url: &str, flag_and_event: [&str; 2]) {
        let [flag, event] = flag_and_event;
        self.ok(&["webhook", "create", "--url", url, flag, event])
            .await;
    }

    /// Starts `lockstep ARGS…` and returns it running, its stdout read line by line.
    fn spawn(&self, args: &[&str]) -> (Child, tokio::io::Lines<BufReader<ChildStdout>>) {
        let mut child = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOCKSTEP_SERVER", &self.base)
            .env("LOCKSTEP_TOKEN", &self.admin)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting lockstep");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        (child, lines)
    }
}

async fn wait_until_listening(child: &mut Child, dir: &Path) {
    let stdout = child.stdout.take().expect("the server's stdout");
    let mut lines = BufReader::new(stdout).lines();
    let listening = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("Listening on ") {
                return true;
            }
        }
        false
    };
    let ok = tokio::time::timeout(LIMIT, listening)
        .await
        .unwrap_or(false);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(
        ok,
        "lockstep serve never said where it listens; log:\n{log}"
    );
}

/// A receiver on loopback that answers 200 and keeps every body it was sent.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

/// What the test receiver was sent, in order.
type Bodies = Arc<Mutex<Vec<Value>>>;

impl Receiver {
    async fn start() -> Receiver {
        let bodies: Bodies = Arc::default();
        let app = Router::new()
            .route(
                "/hook",
                post(
                    |State(bodies): State<Bodies>, Json(body): Json<Value>| async move {
                        bodies.lock().unwrap().push(body);
                    },
                ),
            )
            .with_state(bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, bodies }
    }

    /// The first body sent for `event`, waiting for it to come.
    async fn body_of(&self, event: &str) -> Value {
        for _ in 0..400 {
            let found = self
                .bodies
                .lock()
                .unwrap()
                .iter()
                .find(|b| b["event"] == event)
                .cloned();
            if let Some(body) = found {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no {event} delivery came; got {:?}",
            self.bodies.lock().unwrap()
        );
    }
}

fn release_id(run: &Run) -> String {
    run.json()["id"].as_str().expect("a release id").to_owned()
}

#[tokio::test]
async fn instances_created_with_the_cli_are_listed_in_a_table_and_as_json() {
    let server = Server::start().await;
    server.instance("shop", "echo hi").await;

    let table = server.ok(&["instance", "list"]).await;
    let json = server.ok(&["instance", "list", "--json"]).await;
    let shown = server.ok(&["instance", "show", "shop"]).await;

    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STEPS"),
        "{table:#?}"
    );
    assert!(
        lines[1].starts_with("shop ") && lines[1].ends_with('1'),
        "{table:#?}"
    );
    let items = json.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["steps"][0]["run"], "echo hi");
    assert!(shown.stdout.contains("build  echo hi"), "{shown:#?}");
}

#[tokio::test]
async fn a_server_error_is_one_line_with_its_message_and_field_and_a_non_zero_exit() {
    let server = Server::start().await;
    server.instance("shop", "true").await;

    let run = server
        .run(&["release", "start", "--instance", "shop", "--tag", "v 1"])
        .await;

    assert_eq!(run.code, Some(1), "{run:#?}");
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{run:#?}");
    assert!(run.stderr.starts_with("lockstep: tag: "), "{run:#?}");
    assert!(
        run.stderr.contains("invalid_field, field \"tag\""),
        "{run:#?}"
    );
    let missing = server.run(&["release", "show", "rel_nope"]).await;
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .stderr
            .contains("release not found (HTTP 404 not_found)"),
        "{missing:#?}"
    );
}

#[tokio::test]
async fn a_missing_token_or_an_unreachable_server_is_said_plainly_in_one_line() {
    let server = Server::start().await;

    let no_token = server.run_as("", &["release", "list"]).await;
    let nowhere = server
        .run(&[
            "release",
            "list",
            "--server",
            "http://127.0.0.1:1",
            "--retries",
            "1",
        ])
        .await;
    let wrong_token = server.run_as("lsk_wrong", &["release", "list"]).await;

    assert_eq!(no_token.code, Some(1));
    assert_eq!(
        no_token.stderr,
        "lockstep: no API token: pass --token or set LOCKSTEP_TOKEN\n"
    );
    assert_eq!(nowhere.code, Some(1));
    assert_eq!(nowhere.stderr.lines().count(), 1, "{nowhere:#?}");
    assert!(nowhere
        .stderr
        .contains("cannot reach the server at http://127.0.0.1:1/"));
    assert!(nowhere.stderr.contains("LOCKSTEP_SERVER"), "{nowhere:#?}");
    assert_eq!(wrong_token.code, Some(1));
    assert!(
        wrong_token.stderr.contains("unauthenticated"),
        "{wrong_token:#?}"
    );
}

#[tokio::test]
async fn a_followed_release_shows_its_step_output_and_exits_zero_when_it_closes() {
    let server = Server::start().await;
    server
        .instance("shop", "echo \"building $LOCKSTEP_TAG\"; echo built")
        .await;

    let run = server
        .run(&[
            "release",
            "start",
            "--instance",
            "shop",
            "--tag",
            "v1.2.3",
            "--follow",
        ])
        .await;

    assert_eq!(run.code, Some(0), "{run:#?}");
    let out = &run.stdout;
    let building = out.find("building v1.2.3").expect("the step's output");
    let built = out.find("· built").expect("the step's second line");
    let closed = out
        .find("-- stage: closed (succeeded)")
        .expect("the closing stage");
    assert!(building < built && built < closed, "{out}");
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("succeeded in"),
        "{out}"
    );
    assert!(
        !out.contains('\r'),
        "piped output must be plain lines: {out:?}"
    );
}

#[tokio::test]
async fn a_watched_release_whose_step_fails_exits_three_and_says_why() {
    let server = Server::start().await;
    server.instance("shop", "echo trying; exit 7").await;
    let id = server.start_release("shop", "v1").await;

    let run = server.run(&["release", "watch", &id]).await;

    assert_eq!(run.code, Some(3), "{run:#?}");
    assert!(run.stdout.contains("trying"), "{run:#?}");
    let last = run.stdout.trim_end().lines().last().unwrap().to_owned();
    assert!(
        last.contains("failed: step \"build\" exited with code 7"),
        "{last}"
    );
}

#[tokio::test]
async fn a_release_cancelled_while_it_waits_on_a_lock_ends_its_watch_with_four() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.instance("shop", "true").await;
    server
        .webhook(&receiver.url, ["--lock", "before_release"])
        .await;
    let id = server.start_release("shop", "v1").await;
    let (mut watch, mut lines) = server.spawn(&["release", "watch", &id]);

    let mut seen = Vec::new();
    while let Ok(Ok(Some(line))) = tokio::time::timeout(LIMIT, lines.next_line()).await {
        let waiting = line.starts_with("-- waiting since ") && line.contains("on lock lck_");
        seen.push(line);
        if waiting {
            break;
        }
    }
    let cancel = server
        .run(&["release", "cancel", &id, "--message", "wrong tag"])
        .await;
    while let Ok(Ok(Some(line))) = tokio::time::timeout(LIMIT, lines.next_line()).await {
        seen.push(line);
    }
    let code = tokio::time::timeout(LIMIT, watch.wait())
        .await
        .unwrap()
        .unwrap()
        .code();

    assert!(
        seen.iter().any(|l| l.contains("on lock lck_")),
        "never waited: {seen:#?}"
    );
    assert_eq!(cancel.code, Some(0), "{cancel:#?}");
    assert_eq!(cancel.stdout, format!("Release {id} is cancelled.\n"));
    assert_eq!(code, Some(4), "{seen:#?}");
    let last = seen.last().unwrap();
    assert!(
        last.contains("was cancelled: cancelled by an operator: wrong tag"),
        "{last}"
    );
}

#[tokio::test]
async fn a_shell_script_appends_to_the_log_and_releases_the_lock_with_a_hook_token() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.instance("shop", "true").await;
    let url = &receiver.url;
    server
        .webhook(url, ["--lock", "before_release_complete"])
        .await;
    let created = server
        .ok(&["token", "create", "--name", "script", "--scope", "hook"])
        .await;
    let hook = created.stdout.trim().to_owned();
    assert!(
        hook.starts_with("lsk_") && !hook.contains(' '),
        "{created:#?}"
    );
    let id = server.start_release("shop", "v2").await;

    let body = receiver.body_of("before_release_complete").await;
    let parent = body["parent_log"].to_string();
    let lock = body["lock"].as_str().unwrap();
    let appended = server
        .run_as(
            &hook,
            &[
                "log",
                "append",
                &parent,
                "cache purged",
                "--status",
                "success",
            ],
        )
        .await;
    let released = server
        .run_as(
            &hook,
            &["lock", "release", lock, "--message", "script done"],
        )
        .await;
    let again = server
        .run_as(
            &hook,
            &[
                "lock",
                "release",
                lock,
                "--abort",
                "--message",
                "changed my mind",
            ],
        )
        .await;
    let watch = server.run(&["release", "watch", &id]).await;
    let log = server.ok(&["log", "show", &parent, "--json"]).await;

    assert_eq!(appended.code, Some(0), "{appended:#?}");
    assert!(
        appended.stdout.starts_with("Appended entry "),
        "{appended:#?}"
    );
    assert_eq!(released.code, Some(0), "{released:#?}");
    assert!(
        released.stdout.contains("is released (continue)"),
        "{released:#?}"
    );
    assert_eq!(
        again.code,
        Some(1),
        "a conflicting second release must fail: {again:#?}"
    );
    assert!(again.stderr.contains("HTTP 409 conflict"), "{again:#?}");
    assert_eq!(watch.code, Some(0), "{watch:#?}");
    let messages: Vec<String> = log.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        messages.iter().any(|m| m == "cache purged"),
        "{messages:#?}"
    );
    assert!(messages
        .iter()
        .any(|m| m.contains("released: continue: script done")));
}

#[tokio::test]
async fn a_lock_released_with_abort_fails_the_release() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.instance("shop", "true").await;
    server
        .webhook(&receiver.url, ["--lock", "before_release"])
        .await;
    let id = server.start_release("shop", "v3").await;
    let lock = receiver.body_of("before_release").await["lock"]
        .as_str()
        .unwrap()
        .to_owned();

    server
        .ok(&[
            "lock",
            "release",
            &lock,
            "--abort",
            "--message",
            "smoke test red",
        ])
        .await;
    let watch = server.run(&["release", "watch", &id]).await;

    assert_eq!(watch.code, Some(3), "{watch:#?}");
    assert!(watch.stdout.contains("smoke test red"), "{watch:#?}");
}

#[tokio::test]
async fn following_with_json_prints_one_update_a_line_ending_with_the_closed_release() {
    let server = Server::start().await;
    server.instance("shop", "echo one; echo two").await;

    let run = server
        .run(&[
            "release",
            "start",
            "--instance",
            "shop",
            "--tag",
            "v4",
            "--follow",
            "--json",
        ])
        .await;

    assert_eq!(run.code, Some(0), "{run:#?}");
    let updates: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let last = updates.last().unwrap();
    assert_eq!(last["release"]["stage"], "closed");
    let ids: Vec<i64> = updates
        .iter()
        .flat_map(|u| u["entries"].as_array().unwrap().clone())
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "entries repeat or go back: {ids:?}"
    );
    assert!(run.stdout.contains("\"message\":\"two\""), "{run:#?}");
}

#[tokio::test]
async fn the_event_stream_of_an_ended_release_sends_one_end_event_and_closes() {
    let server = Server::start().await;
    server.instance("shop", "true").await;
    let started = server
        .ok(&[
            "release",
            "start",
            "--instance",
            "shop",
            "--tag",
            "v5",
            "--follow",
            "--json",
        ])
        .await;
    let id = started
        .stdout
        .lines()
        .last()
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    let id = id.unwrap()["release"]["id"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/releases/{id}/events", server.base);

    let stream = http
        .get(&url)
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    let content_type = stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = tokio::time::timeout(LIMIT, stream.text())
        .await
        .unwrap()
        .unwrap();
    let later = http
        .get(format!("{url}?after=999999"))
        .bearer_auth(&server.admin)
        .send();
    let later = later.await.unwrap().text().await.unwrap();
    let missing = http.get(format!("{}/api/v1/releases/rel_x/events", server.base));
    let missing = missing.bearer_auth(&server.admin).send().await.unwrap();

    assert_eq!(content_type, "text/event-stream");
    assert_eq!(text.matches("event: end").count(), 1, "{text}");
    assert!(!text.contains("event: update"), "{text}");
    assert!(text.contains("release closed"), "{text}");
    assert!(
        later.contains("event: end") && later.contains("\"entries\":[]"),
        "{later}"
    );
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_demo_runs_all_three_events_releases_its_lock_and_leaves_no_files() {
    let scratch = Scratch::new();
    let output = Command::new(BIN)
        .args(["demo", "--job-seconds", "0.5"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", &scratch.0)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(LIMIT, output).await.unwrap().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);

    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    let (progress, log) = out
        .split_once("The whole action log")
        .expect("the log heading");
    for text in [progress, log] {
        let at = |needle: &str| {
            text.find(needle)
                .unwrap_or_else(|| panic!("{needle:?} missing from:\n{text}"))
        };
        let before = at("before_release: 1 delivery created");
        let said = at("middleware: v1.0.0 is about to go out to Demo shop");
        let step = at("building v1.0.0 for demo-shop");
        let locked = at("before_release_complete: 1 delivery created");
        let warmed = at("middleware: cache warmed in");
        let released = at("released: continue: middleware: cache warmed; go ahead");
        let after = at("after_release: 1 delivery created");
        let closed = at("after_release gate passed; release closed");
        assert!(before < said && said < step && step < locked, "{text}");
        assert!(
            locked < warmed && warmed < released && released < after,
            "{text}"
        );
        assert!(after < closed, "{text}");
        assert!(text.contains("is live on Demo shop"), "{text}");
    }
    assert!(progress.contains("succeeded in"), "{out}");
    let left: Vec<_> = std::fs::read_dir(&scratch.0).unwrap().collect();
    assert!(left.is_empty(), "the demo left files behind: {left:?}");
}
