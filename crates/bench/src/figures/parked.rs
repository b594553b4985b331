//! Figure 4: many releases, each waiting on a lock, at once: the server's memory before and
//! after they park, its CPU while they wait, and the time to let them all go. Figure 5's
//! rate of lock releases is taken as they are let go.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;

use super::{limit_for, Bench, Session};
use crate::clients;
use crate::report::{Row, Unit};
use crate::scratch::Backend;
use crate::usage;

const SUCCEEDED: &str = "lockstep_deliveries_finished_total{outcome=\"succeeded\"}";
const CLOSED: &str = "lockstep_releases_ended_total{state=\"closed\"}";

/// How often /metrics is read while the server works: it reads the database, so often
/// enough to time whole seconds, rarely enough not to compete with what is timed.
const POLL: Duration = Duration::from_millis(100);

/// What the parked releases left for figure 5: their root log entries.
pub struct Parked {
    pub rows: Vec<Row>,
    pub parent_logs: Vec<i64>,
}

/// What figure 4 measured on one server.
struct Costs {
    idle_rss: u64,
    parked_rss: u64,
    idle_cpu: Duration,
    parked_cpu: Duration,
    /// From the first lock-release call to the last answer.
    calls: Duration,
    /// From the first lock-release call to the last release closed.
    all_closed: Duration,
    /// The same calls made again.
    replayed: Duration,
}

pub async fn measure(bench: &Bench, session: &mut Session) -> anyhow::Result<Parked> {
    let (n, wait) = (bench.sizes.parked, bench.sizes.park_wait);
    let lock_url = session.sink.url("/lock");
    session
        .admin
        .create_webhook(&lock_url, &[("before_release", true)])
        .await?;
    let idle_rss = session.server.resident_bytes()?;
    let idle_cpu = cpu_over(session, wait).await?;

    let (locks, parent_logs) = park_all(bench, session, n).await?;
    let parked_rss = session.server.resident_bytes()?;
    let parked_cpu = cpu_over(session, wait).await?;

    let (calls, all_closed) = release_all(bench, session, locks.clone()).await?;
    let replayed = replay(bench, session, locks).await?;
    session.server.check_running()?;
    let costs = Costs {
        idle_rss,
        parked_rss,
        idle_cpu,
        parked_cpu,
        calls,
        all_closed,
        replayed,
    };
    let rows = rows(bench, session, &costs);
    Ok(Parked { rows, parent_logs })
}

fn rows(bench: &Bench, session: &Session, costs: &Costs) -> Vec<Row> {
    let (n, backend) = (bench.sizes.parked, session.backend_name());
    let mib = |bytes: u64| bytes as f64 / (1u64 << 20) as f64;
    let each_kib = (costs.parked_rss as f64 - costs.idle_rss as f64) / 1024.0 / n as f64;
    let what = format!("resident memory, {n} releases parked ({each_kib:+.1} KiB each)");
    let memory = Row::new(4, what, backend, Unit::MiB, mib(costs.parked_rss))
        .against(mib(costs.idle_rss), "the same server before any release");

    let replayed_is = "the same calls replayed: nothing left to settle";
    let what = format!("time to let {n} parked releases go, until all closed");
    let let_go = Row::new(
        4,
        what,
        backend,
        Unit::Seconds,
        costs.all_closed.as_secs_f64(),
    )
    .against(costs.replayed.as_secs_f64(), replayed_is);

    let rate = |time: Duration| n as f64 / time.as_secs_f64();
    let what = format!("lock releases/s, {} clients", bench.clients);
    let releases = Row::new(5, what, backend, Unit::PerSecond, rate(costs.calls))
        .against(rate(costs.replayed), replayed_is);
    let cpu = cpu_row(session, n, bench.sizes.park_wait, costs);
    vec![memory, cpu, let_go, releases]
}

fn cpu_row(session: &Session, n: usize, wait: Duration, costs: &Costs) -> Row {
    let whose = match session.database.backend {
        Backend::Sqlite => "server",
        Backend::Postgres => "server and its PostgreSQL backends",
    };
    let what = format!("CPU of the {whose}, {n} parked releases waiting {wait:?}");
    let millis = |d: Duration| d.as_secs_f64() * 1000.0;
    Row::new(
        4,
        what,
        session.backend_name(),
        Unit::CpuMillis,
        millis(costs.parked_cpu),
    )
    .against(
        millis(costs.idle_cpu),
        "the same server idle as long, before any release",
    )
}

/// Starts `n` releases on instances of their own and returns, once each waits on its lock
/// with its attempt stored, their lock tokens and root log entries.
async fn park_all(
    bench: &Bench,
    session: &mut Session,
    n: usize,
) -> anyhow::Result<(Vec<String>, Vec<i64>)> {
    let instances = session.instances("park", n, bench.clients).await?;
    session.start_releases(instances, bench.clients).await?;

    let arrivals = session.arrivals(n).await?;
    session
        .admin
        .wait_metric(SUCCEEDED, n, POLL, limit_for(n))
        .await?;
    let (mut locks, mut parent_logs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for arrival in &arrivals {
        let payload = arrival.json()?;
        let lock = payload["lock"]
            .as_str()
            .context("a lock token in the body")?;
        locks.push(lock.to_owned());
        parent_logs.push(payload["parent_log"].as_i64().context("a parent_log")?);
    }
    Ok((locks, parent_logs))
}

/// Lets every release go; returns the time until the last call was answered and until the
/// last release closed.
async fn release_all(
    bench: &Bench,
    session: &Session,
    locks: Vec<String>,
) -> anyhow::Result<(Duration, Duration)> {
    let n = locks.len();
    let started = Instant::now();
    let calls = release_each(bench, session, locks).await?;
    session
        .admin
        .wait_metric(CLOSED, n, POLL, limit_for(n))
        .await?;
    Ok((calls, started.elapsed()))
}

/// The ceiling: the same calls again, which the server answers as it did the first time
/// without anything left to settle or resume.
async fn replay(bench: &Bench, session: &Session, locks: Vec<String>) -> anyhow::Result<Duration> {
    release_each(bench, session, locks).await
}

/// Releases each lock, `clients` calls at once, as the receivers holding them would.
async fn release_each(
    bench: &Bench,
    session: &Session,
    locks: Vec<String>,
) -> anyhow::Result<Duration> {
    let hook = session.hook.clone();
    clients::each(locks, bench.clients, move |lock| {
        let hook = hook.clone();
        async move { hook.release_lock(&lock).await }
    })
    .await
}

/// CPU time the server, and on PostgreSQL its database's backend processes, use over `wait`.
async fn cpu_over(session: &Session, wait: Duration) -> anyhow::Result<Duration> {
    let pool = match session.database.backend {
        Backend::Postgres => Some(session.database.pool().await?),
        Backend::Sqlite => None,
    };
    let before = cpu_now(session, pool.as_ref()).await?;
    tokio::time::sleep(wait).await;
    let after = cpu_now(session, pool.as_ref()).await?;
    if let Some(pool) = pool {
        pool.close().await;
    }
    Ok(after.saturating_sub(before))
}

async fn cpu_now(session: &Session, pool: Option<&PgPool>) -> anyhow::Result<Duration> {
    let mut total = session.server.cpu_time()?;
    let Some(pool) = pool else {
        return Ok(total);
    };
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
         AND pid <> pg_backend_pid()",
    )
    .fetch_all(pool)
    .await
    .context("listing the database's backend processes")?;
    for pid in pids {
        // A backend that ended since the list was read has nothing more to count.
        total += usage::cpu_time(pid as u32).unwrap_or_default();
    }
    Ok(total)
}
