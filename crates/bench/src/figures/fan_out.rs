//! Figure 1: releases fanning out to many non-locking webhooks, from the first start call to
//! the last attempt stored, against the same bodies POSTed straight to the sink by a plain
//! client with the server's concurrency (the server idle meanwhile).

use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;

use super::{limit_for, Bench, Session, EVENTS};
use crate::clients;
use crate::report::{Row, Unit};
use crate::scratch::Backend;
use crate::server::IN_FLIGHT;
use crate::sink::Sink;

/// Counts each delivery once its successful attempt is stored.
const SUCCEEDED: &str = "lockstep_deliveries_finished_total{outcome=\"succeeded\"}";

pub async fn measure(bench: &Bench, backend: Backend) -> anyhow::Result<Vec<Row>> {
    let mut session = Session::open(bench, backend, "bench-fan-out").await?;
    let measured = measure_on(bench, &mut session).await;
    session.finish(measured).await
}

async fn measure_on(bench: &Bench, session: &mut Session) -> anyhow::Result<Vec<Row>> {
    let (releases, webhooks) = (bench.sizes.fan_out_releases, bench.sizes.fan_out_webhooks);
    let deliveries = releases * webhooks * EVENTS.len();
    let all_events: Vec<(&str, bool)> = EVENTS.iter().map(|e| (*e, false)).collect();
    for w in 0..webhooks {
        let url = session.sink.url(&format!("/hook-{w}"));
        session.admin.create_webhook(&url, &all_events).await?;
    }
    let instances = session.instances("fan", releases, bench.clients).await?;

    let (elapsed, bodies) = fan_out(session, instances, deliveries, bench.clients).await?;
    let ceiling = replay(&mut session.sink, bodies).await?;

    let what = format!("fan-out: {releases} releases × {webhooks} webhooks × 3 events");
    let rate = |time: Duration| deliveries as f64 / time.as_secs_f64();
    let row = Row::new(
        1,
        what,
        session.backend_name(),
        Unit::PerSecond,
        rate(elapsed),
    );
    let ceiling_is =
        format!("the same bodies POSTed to the sink by a plain client, {IN_FLIGHT} at once");
    Ok(vec![row.against(rate(ceiling), ceiling_is)])
}

/// Starts every release and waits until the sink has every delivery and the server has
/// stored every attempt; returns the time that took and the bodies that arrived.
async fn fan_out(
    session: &mut Session,
    instances: Vec<String>,
    deliveries: usize,
    clients: usize,
) -> anyhow::Result<(Duration, Vec<Bytes>)> {
    let started = Instant::now();
    session.start_releases(instances, clients).await?;

    let arrivals = session.arrivals(deliveries).await?;
    // Polled only now, and often: /metrics reads the database, and before the last request
    // arrived it would only compete with the work measured.
    let every = Duration::from_millis(5);
    let stored = session
        .admin
        .wait_metric(SUCCEEDED, deliveries, every, limit_for(deliveries));
    stored
        .await
        .context("waiting for every attempt to be stored")?;
    let elapsed = started.elapsed();
    Ok((elapsed, arrivals.into_iter().map(|a| a.body).collect()))
}

/// The ceiling: the same bodies POSTed to the same sink with the server's concurrency.
async fn replay(sink: &mut Sink, bodies: Vec<Bytes>) -> anyhow::Result<Duration> {
    let n = bodies.len();
    let http = reqwest::Client::new();
    let url = sink.url("/replay");
    let elapsed = clients::each(bodies, IN_FLIGHT, move |body| {
        let request = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        async move {
            request.send().await?.error_for_status()?;
            Ok(())
        }
    })
    .await?;
    sink.collect(n, limit_for(n)).await?;
    Ok(elapsed)
}
