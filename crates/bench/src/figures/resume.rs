//! Figures 2 and 3: how soon a release moves on once its lock is released, and how long an
//! event takes to reach the endpoint. Releases go one at a time, each left to finish before
//! the next starts, so these are latencies without queueing. The ceiling is one POST of the
//! same body by a plain client, from the call to its arrival at the sink, taken after each
//! release.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use axum::body::Bytes;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Bench, Session};
use crate::api::{Api, Started};
use crate::latency::Distribution;
use crate::report::{Row, Unit};
use crate::scratch::Backend;
use crate::sink::{Arrival, Sink};

/// How long any one move of a release may take before the run is called hung.
const STEP_LIMIT: Duration = Duration::from_secs(30);

const FLOOR_IS: &str = "one POST of the same body by a plain client, call to arrival";

/// A release waiting on the lock of its `before_release` delivery.
struct Parked {
    release: Started,
    lock: String,
    body: Bytes,
    /// From the release entering `before_release` to that delivery's arrival at the sink.
    event_overhead: Duration,
}

/// What figures 2 and 3 gathered, release by release.
#[derive(Default)]
struct Samples {
    resumes: Vec<Duration>,
    overheads: Vec<Duration>,
    floor: Vec<Duration>,
}

pub async fn measure(bench: &Bench, backend: Backend) -> anyhow::Result<Vec<Row>> {
    let mut session = Session::open(bench, backend, "bench-resume").await?;
    let measured = one_node(bench, &mut session).await;
    let samples = session.finish(measured).await?;

    let (name, floor) = (backend.name(), Distribution::new(samples.floor));
    let mut rows = resume_rows(name, "", &Distribution::new(samples.resumes), &floor);
    rows.extend(overhead_rows(
        name,
        &Distribution::new(samples.overheads),
        &floor,
    ));
    Ok(rows)
}

async fn one_node(bench: &Bench, session: &mut Session) -> anyhow::Result<Samples> {
    subscribe(session).await?;
    let instances = session
        .instances("res", bench.sizes.resumed, bench.clients)
        .await?;
    let plain = Plain::open(&mut session.sink).await?;

    let mut samples = Samples::default();
    for instance in &instances {
        let parked = park(&session.admin, &mut session.sink, instance).await?;
        let admin = &session.admin;
        let resumed = resume(&session.hook, admin, &mut session.sink, &parked).await?;
        samples.resumes.push(resumed);
        samples.overheads.push(parked.event_overhead);
        samples
            .floor
            .push(plain.post(&mut session.sink, parked.body).await?);
    }
    Ok(samples)
}

/// Figure 2 across two nodes on PostgreSQL: releases started through node B, which owns
/// them, and their locks released through node A.
pub async fn measure_across_nodes(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    let n = bench.sizes.resumed;
    let mut session = Session::open(bench, Backend::Postgres, "bench-a").await?;
    let measured = match bench.serve(&session.database, "bench-b").await {
        Ok(mut node_b) => {
            let measured = two_nodes(bench, &mut session, &node_b.base).await;
            let measured = match measured {
                Err(err) => Err(node_b.explain(err).await),
                ok => ok,
            };
            node_b.stop().await;
            measured
        }
        Err(err) => Err(err),
    };
    let samples = session.finish(measured).await?;

    let resumed = samples.resumes.len();
    ensure!(resumed > 0, "node B owned none of the releases it started");
    let note = format!(", {resumed} of {n} owned by B");
    let (resumes, floor) = (
        Distribution::new(samples.resumes),
        Distribution::new(samples.floor),
    );
    Ok(resume_rows("postgres, 2 nodes", &note, &resumes, &floor))
}

/// Releases started through node B, at `b_base`, and released through A, the session's;
/// a sample counts only when the database shows B holding the release's lease.
async fn two_nodes(bench: &Bench, session: &mut Session, b_base: &str) -> anyhow::Result<Samples> {
    let via_b = Api::new(b_base, &bench.admin_token);
    subscribe(session).await?;
    let instances = session
        .instances("two", bench.sizes.resumed, bench.clients)
        .await?;
    let pool = session.database.pool().await?;
    let plain = Plain::open(&mut session.sink).await?;

    let mut samples = Samples::default();
    for instance in &instances {
        let parked = park(&via_b, &mut session.sink, instance).await?;
        let owner: Option<String> = sqlx::query_scalar("SELECT owner FROM releases WHERE id = $1")
            .bind(&parked.release.id)
            .fetch_one(&pool)
            .await?;
        let resumed = resume(&session.hook, &via_b, &mut session.sink, &parked).await?;
        if owner.as_deref() == Some("bench-b") {
            samples.resumes.push(resumed);
            samples
                .floor
                .push(plain.post(&mut session.sink, parked.body).await?);
        }
    }
    pool.close().await;
    Ok(samples)
}

/// A locking webhook at `before_release` and a plain one at `before_release_complete`, the
/// event that follows once the lock is released (the instances have no steps).
async fn subscribe(session: &Session) -> anyhow::Result<()> {
    let lock_url = session.sink.url("/lock");
    let next_url = session.sink.url("/next");
    let admin = &session.admin;
    admin
        .create_webhook(&lock_url, &[("before_release", true)])
        .await?;
    admin
        .create_webhook(&next_url, &[("before_release_complete", false)])
        .await
}

/// Starts a release and returns once its lock's delivery arrived and its attempt is stored,
/// so nothing of it is still running on the server.
async fn park(api: &Api, sink: &mut Sink, instance: &str) -> anyhow::Result<Parked> {
    let release = api.start_release(instance).await?;
    let arrival = sink.next(STEP_LIMIT).await?;
    let payload = expect(&arrival, "before_release", release.parent_log)?;
    let lock = payload["lock"]
        .as_str()
        .context("a lock token in the body")?;
    let attempted = |r: &Value| r["waiting_on"][0]["attempts"].as_i64() >= Some(1);
    let view = api.wait_release(&release.id, STEP_LIMIT, attempted).await?;

    let since = view["stage_since"]
        .as_str()
        .context("the release's stage_since")?;
    let since = OffsetDateTime::parse(since, &Rfc3339).context("stage_since")?;
    let since_micros = (since.unix_timestamp_nanos() / 1000) as i64;
    let overhead = arrival.unix_micros.saturating_sub(since_micros).max(0) as u64;
    Ok(Parked {
        lock: lock.to_owned(),
        release,
        body: arrival.body,
        event_overhead: Duration::from_micros(overhead),
    })
}

/// Releases the lock and returns the time from the call's answer to the next event's
/// arrival (zero if it came first), once the release has closed.
async fn resume(
    hook: &Api,
    watcher: &Api,
    sink: &mut Sink,
    parked: &Parked,
) -> anyhow::Result<Duration> {
    hook.release_lock(&parked.lock).await?;
    let answered = Instant::now();
    let arrival = sink.next(STEP_LIMIT).await?;
    expect(
        &arrival,
        "before_release_complete",
        parked.release.parent_log,
    )?;
    let closed = |r: &Value| r["stage"] == "closed";
    watcher
        .wait_release(&parked.release.id, STEP_LIMIT, closed)
        .await?;
    Ok(arrival.at.saturating_duration_since(answered))
}

/// The arrival's body, if it is the `event` of the release whose root log is `parent_log`.
fn expect(arrival: &Arrival, event: &str, parent_log: i64) -> anyhow::Result<Value> {
    let payload = arrival.json()?;
    if arrival.event.as_deref() != Some(event) || payload["parent_log"] != parent_log {
        bail!(
            "expected {event} of the release with log {parent_log}, got {:?} of {}",
            arrival.event,
            payload["parent_log"]
        );
    }
    Ok(payload)
}

/// The ceiling's client: POSTs to the sink over a pooled connection, as the server's sender
/// makes them, each timed from the call to its arrival. Its samples are taken between the
/// releases', so both meet the same machine.
struct Plain {
    http: reqwest::Client,
    url: String,
}

impl Plain {
    /// Opens the connection with a first POST, which is not counted.
    async fn open(sink: &mut Sink) -> anyhow::Result<Plain> {
        let plain = Plain {
            http: reqwest::Client::new(),
            url: sink.url("/plain"),
        };
        plain.post(sink, Bytes::from_static(b"{}")).await?;
        Ok(plain)
    }

    async fn post(&self, sink: &mut Sink, body: Bytes) -> anyhow::Result<Duration> {
        let request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json");
        let sent = Instant::now();
        request.body(body).send().await?.error_for_status()?;
        let arrival = sink.next(STEP_LIMIT).await?;
        Ok(arrival.at.saturating_duration_since(sent))
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn resume_rows(
    backend: &str,
    note: &str,
    resumes: &Distribution,
    floor: &Distribution,
) -> Vec<Row> {
    let n = resumes.len();
    let row = |what: &str, value: Duration, ceiling: Duration| {
        let what = format!("lock-to-resume {what} ({n} releases{note})");
        Row::new(2, what, backend, Unit::Millis, millis(value)).against(millis(ceiling), FLOOR_IS)
    };
    vec![
        row("p50", resumes.p50(), floor.p50()),
        row("p99", resumes.p99(), floor.p99()),
        row("max", resumes.max(), floor.max()),
    ]
}

fn overhead_rows(backend: &str, overheads: &Distribution, floor: &Distribution) -> Vec<Row> {
    let n = overheads.len();
    let row = |what: &str, value: Duration, ceiling: Duration| {
        let what = format!("event to first byte {what} ({n} releases)");
        Row::new(3, what, backend, Unit::Millis, millis(value)).against(millis(ceiling), FLOOR_IS)
    };
    vec![
        row("p50", overheads.p50(), floor.p50()),
        row("p99", overheads.p99(), floor.p99()),
    ]
}
