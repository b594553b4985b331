//! Many clients at once: a fixed number of tasks working through a list of calls, or calling
//! for a fixed time. The first failure stops them all.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinSet;

/// Makes `call` once for every item, with at most `clients` calls in flight; returns the
/// time from the first call to the last answer.
pub async fn each<T, F, Fut>(items: Vec<T>, clients: usize, call: F) -> anyhow::Result<Duration>
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let items = Arc::new(items);
    let next = Arc::new(AtomicUsize::new(0));
    let call = Arc::new(call);
    let mut workers = JoinSet::new();
    for _ in 0..clients.max(1) {
        let (items, next, call) = (items.clone(), next.clone(), call.clone());
        workers.spawn(async move {
            while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                call(item.clone()).await?;
            }
            anyhow::Ok(())
        });
    }

    join(workers).await?;
    Ok(started.elapsed())
}

/// Calls for `time` with `clients` calls in flight, passing each call its number; returns
/// the calls answered per second.
pub async fn for_time<F, Fut>(clients: usize, time: Duration, call: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + time;
    let next = Arc::new(AtomicUsize::new(0));
    let call = Arc::new(call);
    let mut workers = JoinSet::new();
    for _ in 0..clients.max(1) {
        let (next, call) = (next.clone(), call.clone());
        workers.spawn(async move {
            while Instant::now() < deadline {
                call(next.fetch_add(1, Ordering::Relaxed)).await?;
            }
            anyhow::Ok(())
        });
    }

    join(workers).await?;
    let calls = next.load(Ordering::Relaxed);
    Ok(calls as f64 / started.elapsed().as_secs_f64())
}

async fn join(mut workers: JoinSet<anyhow::Result<()>>) -> anyhow::Result<()> {
    while let Some(done) = workers.join_next().await {
        done.context("a client task panicked")??;
    }
    Ok(())
}
