//! Lock expiry: one timer per node, set to the earliest expiry among open locks.
//!
//! Most locks never expire (waiting is unbounded unless a webhook sets a limit), and then
//! this task sleeps until a new lock with a limit is created.

use std::time::Duration;

use lockstep_core::time::now_ms;
use tracing::{info, warn};

use crate::Engine;

/// The longest sleep between looks, should a nudge be missed.
const IDLE: Duration = Duration::from_secs(300);

pub(crate) async fn run(engine: Engine) {
    let mut shutdown = engine.inner.shutdown.subscribe();
    loop {
        if engine.is_shutting_down() {
            return;
        }
        let sleep = match expire_due(&engine).await {
            Ok(sleep) => sleep,
            Err(err) => {
                warn!(error = format!("{err:#}"), "could not expire locks");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            _ = engine.inner.expiry.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Applies the default outcome of every lock whose time ran out; returns how long to sleep.
async fn expire_due(engine: &Engine) -> anyhow::Result<Duration> {
    let store = engine.store();
    for lock in store.expire_due_locks(now_ms()).await? {
        info!(
            lock_id = lock.id,
            release_id = lock.release_id,
            outcome = lock.outcome,
            "lock expired"
        );
        engine.wake(&lock.release_id);
    }
    let next = store.next_lock_expiry().await?;
    let wait = next.map_or(IDLE, |at| {
        Duration::from_millis((at - now_ms()).max(0) as u64)
    });
    Ok(wait.min(IDLE))
}
