//! Wake-ups: the queue of release ids the runner should look at.
//!
//! A release is advanced by at most one task at a time. A wake-up that arrives while its
//! release is being advanced marks it to be looked at once more, so nothing is missed and
//! nothing runs twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::Engine;

#[derive(Clone)]
pub struct WakeQueue(mpsc::UnboundedSender<String>);

impl WakeQueue {
    pub fn new() -> (WakeQueue, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (WakeQueue(tx), rx)
    }

    pub fn push(&self, release_id: &str) {
        let _ = self.0.send(release_id.to_owned());
    }
}

/// Busy releases, each with whether another wake-up came while it was being advanced.
type Busy = Arc<Mutex<HashMap<String, bool>>>;

/// Receives wake-ups for as long as the engine lives, advancing each named release.
pub(crate) async fn drive(engine: Engine, mut wakes: mpsc::UnboundedReceiver<String>) {
    let busy: Busy = Arc::default();
    while let Some(id) = wakes.recv().await {
        {
            let Ok(mut map) = busy.lock() else { return };
            if let Some(again) = map.get_mut(&id) {
                *again = true;
                continue;
            }
            map.insert(id.clone(), false);
        }
        tokio::spawn(advance_while_woken(engine.clone(), busy.clone(), id));
    }
}

async fn advance_while_woken(engine: Engine, busy: Busy, id: String) {
    loop {
        crate::runner::advance(&engine, &id).await;
        engine.changes().fire(&id);
        let Ok(mut map) = busy.lock() else { return };
        match map.get_mut(&id) {
            Some(again) if *again => *again = false,
            _ => {
                map.remove(&id);
                return;
            }
        }
    }
}
