//! The crash-safety harness: many releases with locking and non-locking webhooks run against
//! receivers on loopback while the server is SIGKILLed at random moments and started again;
//! then an audit checks that every release ended, every delivery arrived, repeats happened
//! only across kills with the same id and bytes, and no lock, log line or attempt was lost.
//!
//! The tests here run the short form (CI runs it on both backends). The long form is the
//! same test with bigger numbers; docs/crash-harness.md gives the command. The sizes come
//! from `LOCKSTEP_CRASH_RELEASES`, `LOCKSTEP_CRASH_KILLS`, `LOCKSTEP_CRASH_INSTANCES` and
//! `LOCKSTEP_CRASH_SEED`.
//!
//! - [`server`]: the `lockstep serve` process, killed and restarted.
//! - [`receiver`]: middleware on loopback that answers, releases locks and writes log lines.
//! - [`api`]: API calls that outlast the server's deaths.
//! - [`audit`]: the checks, and the counts printed at the end.

mod api;
mod audit;
mod receiver;
mod server;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};

use api::Api;
use audit::Audit;
use receiver::Receivers;
use server::Server;

/// How big a run is.
#[derive(Debug, Clone)]
struct Plan {
    releases: usize,
    kills: usize,
    instances: usize,
    seed: u64,
}

impl Plan {
    /// The short form unless the environment asks for more.
    fn from_env() -> Plan {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name} must be a number"))
                })
                .unwrap_or(default)
        };
        Plan {
            releases: number("LOCKSTEP_CRASH_RELEASES", 30) as usize,
            kills: number("LOCKSTEP_CRASH_KILLS", 5) as usize,
            instances: number("LOCKSTEP_CRASH_INSTANCES", 3).max(1) as usize,
            seed: number("LOCKSTEP_CRASH_SEED", rand::random()),
        }
    }

    /// How long the releases may take to settle after the last kill.
    fn patience(&self) -> Duration {
        Duration::from_secs(60 + 2 * self.releases as u64)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_survive_random_sigkills_with_nothing_lost_on_sqlite() {
    let dir = scratch_dir();
    let url = format!("sqlite://{}", dir.join("lockstep.db").display());
    run(url, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_survive_random_sigkills_with_nothing_lost_on_postgres() {
    let Some(server) = std::env::var("LOCKSTEP_TEST_DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"))
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but LOCKSTEP_TEST_DATABASE_URL names no PostgreSQL server"
        );
        let _ = writeln!(
            std::io::stderr(),
            "notice: crash harness on PostgreSQL skipped"
        );
        return;
    };
    let dir = scratch_dir();
    let name = format!("lockstep_test_crash_{:016x}", rand::random::<u64>());
    create_postgres_database(&server, &name).await;
    run(format!("{}/{name}", server.trim_end_matches('/')), dir).await;
}

async fn run(database_url: String, dir: PathBuf) {
    let plan = Plan::from_env();
    let started = Instant::now();
    let mut server = Server::new(database_url, &dir);
    server.start();
    let admin = Api::new(&server.base(), &server.admin);
    let receivers = set_up(&admin, &plan).await;

    let creating = tokio::spawn(create_releases(admin.clone(), plan.clone()));
    kill_repeatedly(&mut server, &plan).await;
    let releases = creating.await.expect("creating releases");
    let settled = wait_until_settled(&admin, &receivers, &releases, &mut server, &plan).await;

    let records = audit::gather(&admin, &releases).await;
    let mut audit = Audit::run(&records, &receivers, server.generation);
    if !settled {
        audit
            .violations
            .push(format!("work was still open after {:?}", plan.patience()));
    }
    let report = audit.report(server.kills, started.elapsed().as_secs());
    let _ = writeln!(std::io::stderr(), "seed {}\n{report}", plan.seed);
    assert!(
        audit.violations.is_empty(),
        "{report}\nthe whole server log is in {}; its tail:\n{}",
        dir.display(),
        server.log_tail()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Instances with a short step, and three webhooks: one plain on every event, one locking
/// at both events that lock, one that often fails and is retried.
async fn set_up(admin: &Api, plan: &Plan) -> Receivers {
    let hook = admin
        .post(
            "/api/v1/tokens",
            json!({"name": "crash receivers", "scopes": ["hook"]}),
        )
        .await;
    let receivers =
        Receivers::start(admin.with_token(hook["token"].as_str().unwrap()), plan.seed).await;

    for i in 0..plan.instances {
        let steps = json!([{"name": "deploy", "run": "sleep 0.1"}]);
        let body = json!({"id": format!("shop-{i}"), "name": format!("Shop {i}"),
            "url": "https://shop.example.com", "attributes": {}, "steps": steps});
        admin.post("/api/v1/instances", body).await;
    }
    let webhooks = [
        (
            "/plain",
            json!([{"event": "before_release"}, {"event": "before_release_complete"},
            {"event": "after_release"}]),
        ),
        (
            "/lock",
            json!([{"event": "before_release", "locking": true},
            {"event": "before_release_complete", "locking": true}]),
        ),
        (
            "/flaky",
            json!([{"event": "before_release_complete"}, {"event": "after_release"}]),
        ),
    ];
    for (path, events) in webhooks {
        let body = json!({"url": receivers.url(path), "events": events, "timeout_seconds": 10});
        admin.post("/api/v1/webhooks", body).await;
    }
    receivers
}

/// Starts every release, one after another across the instances, while kills go on.
async fn create_releases(admin: Api, plan: Plan) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut ids = Vec::new();
    for n in 0..plan.releases {
        let instance = format!("shop-{}", n % plan.instances);
        let tag = format!("v1.{n}.0");
        ids.push(create_release(&admin, &instance, &tag).await);
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..200))).await;
    }
    ids
}

/// Sends the release once at a time: when no answer comes, the release may exist anyway,
/// so it is looked up by its tag before it is sent again.
async fn create_release(admin: &Api, instance: &str, tag: &str) -> String {
    let body = json!({"instance": instance, "tag": tag, "zero_downtime": true});
    loop {
        if let Some(answer) = admin
            .send_once(Method::POST, "/api/v1/releases", &body)
            .await
        {
            assert_eq!(answer.status, 201, "starting a release: {}", answer.body);
            return answer.body["id"].as_str().unwrap().to_owned();
        }
        if let Some(id) = find_release(admin, instance, tag).await {
            return id;
        }
    }
}

async fn find_release(admin: &Api, instance: &str, tag: &str) -> Option<String> {
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/releases?instance={instance}&limit=500{cursor}");
        let page = admin.get(&path).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if let Some(found) = items.iter().find(|r| r["tag"] == tag) {
            return found["id"].as_str().map(str::to_owned);
        }
        let next = page["next_cursor"].as_str()?;
        cursor = format!("&cursor={next}");
    }
}

/// SIGKILLs the server at random moments and starts it again each time.
async fn kill_repeatedly(server: &mut Server, plan: &Plan) {
    let mut rng = StdRng::seed_from_u64(plan.seed.rotate_left(17));
    for _ in 0..plan.kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..3000))).await;
        server.assert_alive();
        server.kill();
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        tokio::task::block_in_place(|| server.start());
    }
}

/// Waits until every release has ended, every delivery is done and every receiver call is
/// answered; false if that takes longer than the plan allows.
async fn wait_until_settled(
    admin: &Api,
    receivers: &Receivers,
    releases: &[String],
    server: &mut Server,
    plan: &Plan,
) -> bool {
    let deadline = Instant::now() + plan.patience();
    let mut open = releases.to_vec();
    while Instant::now() < deadline {
        server.assert_alive();
        let mut still = Vec::new();
        for id in open {
            if !is_settled(admin, &id).await {
                still.push(id);
            }
        }
        open = still;
        if open.is_empty() && receivers.is_settled() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

async fn is_settled(admin: &Api, id: &str) -> bool {
    let release = admin.get(&format!("/api/v1/releases/{id}")).await;
    if !["closed", "failed", "cancelled"].contains(&release["stage"].as_str().unwrap_or("")) {
        return false;
    }
    let deliveries = admin
        .get(&format!("/api/v1/releases/{id}/deliveries"))
        .await;
    let items: &[Value] = deliveries["items"].as_array().map_or(&[], Vec::as_slice);
    items.iter().all(|d| d["status"] != "pending")
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lockstep-crash-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
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
