//! Several nodes on one database: who advances which release, and how a wake-up on one node
//! reaches the node that owns the release.
//!
//! A node advances only releases it owns, under a lease it renews for all of them by
//! writing one heartbeat row. When a node dies its heartbeat runs out and the others take
//! its releases over.
//! Wake-ups cross nodes through PostgreSQL's LISTEN/NOTIFY, so a lock released through any
//! node moves its release at once; the periodic sweep below only finds orphaned releases and
//! covers notifications lost while a listener reconnected.

use std::time::Duration;

use lockstep_core::time::now_ms;
use tracing::{info, warn};

use crate::Engine;

/// The channel wake-ups travel on, as `NODE RELEASE_ID`.
pub const WAKE_CHANNEL: &str = "lockstep_wake";

impl Engine {
    /// Takes or keeps this node's lease on a release; `false` if another node owns it.
    pub(crate) async fn own(&self, release_id: &str) -> anyhow::Result<bool> {
        let node = &self.config().node_id;
        Ok(self.store().own_release(release_id, node, now_ms()).await?)
    }

    /// Renews this node's lease on all the releases it owns.
    pub(crate) async fn heartbeat(&self) -> anyhow::Result<()> {
        let until = now_ms() + self.config().release_lease.as_millis() as i64;
        Ok(self
            .store()
            .heartbeat(&self.config().node_id, until)
            .await?)
    }

    /// Tells the other nodes to look at a release.
    pub(crate) fn publish_wake(&self, release_id: &str) {
        if self.store().backend() != lockstep_store::Backend::Postgres {
            return;
        }
        let payload = format!("{} {release_id}", self.config().node_id);
        let store = self.store().clone();
        tokio::spawn(async move {
            if let Err(err) = store.notify(WAKE_CHANNEL, &payload).await {
                warn!(error = %err, "could not tell other nodes of a wake-up");
            }
        });
    }
}

/// Renews this node's leases and takes over releases whose owner is gone.
pub(crate) async fn keep_leases(engine: Engine) {
    let lease = engine.config().release_lease;
    let mut tick = tokio::time::interval(lease / 3);
    loop {
        tick.tick().await;
        if engine.is_shutting_down() {
            return;
        }
        if let Err(err) = engine.heartbeat().await {
            warn!(
                error = format!("{err:#}"),
                "could not renew this node's lease"
            );
        }
        match engine.store().orphaned_releases(now_ms()).await {
            Ok(orphans) => {
                for id in orphans {
                    info!(release_id = id, "taking over a release whose node is gone");
                    engine.wake_local(&id);
                }
            }
            Err(err) => warn!(error = %err, "could not look for orphaned releases"),
        }
    }
}

/// Listens for other nodes' wake-ups. After the connection drops and comes back, every
/// unfinished release is woken, since notifications sent meanwhile are lost.
pub(crate) async fn listen_for_wakes(engine: Engine) {
    loop {
        match engine.store().listen(WAKE_CHANNEL).await {
            Ok(Some(mut listener)) => {
                wake_all(&engine).await;
                loop {
                    match listener.recv().await {
                        Ok(note) => on_notification(&engine, note.payload()),
                        Err(err) => {
                            warn!(error = %err, "wake-up listener lost its connection");
                            break;
                        }
                    }
                }
            }
            Ok(None) => return,
            Err(err) => warn!(error = %err, "could not listen for wake-ups"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn on_notification(engine: &Engine, payload: &str) {
    if let Some((node, release_id)) = payload.split_once(' ') {
        if node != engine.config().node_id {
            engine.wake_local(release_id);
        }
    }
}

async fn wake_all(engine: &Engine) {
    match engine.store().active_release_ids().await {
        Ok(ids) => ids.iter().for_each(|id| engine.wake_local(id)),
        Err(err) => warn!(error = %err, "could not list releases to wake"),
    }
}
