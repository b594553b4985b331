//! Word that a release changed, for whoever watches it: the API's event streams.
//!
//! A broadcast of release ids, fired on every wake-up, after each look the runner takes, and
//! when a log entry is written outside the runner. It carries no state: a watcher that hears
//! its release's id reads the release again. Nothing waits on a watcher; one that falls
//! behind is told it lagged and simply reads again.

use std::sync::Arc;

use tokio::sync::broadcast;

/// How many changes a slow watcher may fall behind before it is told it lagged.
const CAPACITY: usize = 1024;

#[derive(Clone)]
pub struct Changes(broadcast::Sender<Arc<str>>);

impl Default for Changes {
    fn default() -> Self {
        Changes(broadcast::channel(CAPACITY).0)
    }
}

impl Changes {
    /// Says that `release_id` changed. Costs nothing while no one watches.
    pub fn fire(&self, release_id: &str) {
        if self.0.receiver_count() > 0 {
            let _ = self.0.send(Arc::from(release_id));
        }
    }

    /// Every change from now on, of every release; watchers filter by id.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watcher_hears_each_change_fired_after_it_subscribed() {
        let changes = Changes::default();
        changes.fire("rel_before");
        let mut watcher = changes.subscribe();
        changes.fire("rel_a");
        changes.fire("rel_b");
        assert_eq!(&*watcher.recv().await.unwrap(), "rel_a");
        assert_eq!(&*watcher.recv().await.unwrap(), "rel_b");
        assert!(watcher.try_recv().is_err());
    }
}
