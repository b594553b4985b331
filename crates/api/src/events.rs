//! `GET /api/v1/releases/{id}/events`: a release's progress, pushed as server-sent events.
//!
//! The stream sends an `update` whenever the release changes (its view, as
//! `GET /releases/{id}` shows it, and the log entries written since the last event) and an
//! `end` once the release has finished, then closes. Each event's id is the newest log entry
//! sent; `?after=ID`, or the `Last-Event-ID` header of a reconnecting browser, starts after
//! that entry. The first event comes at once, so a watcher sees where the release is
//! without waiting for it to move.
//!
//! Changes are heard through the engine's broadcast, so a quiet release costs its watcher a
//! timer and nothing more. The timer re-reads the release every few seconds all the same: a
//! release run by another node changes without this process hearing of it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

use lockstep_engine::Engine;

use crate::auth::Caller;
use crate::extract::Query;
use crate::{logs, releases, ApiError, ApiResult, AppState};

/// How often a watched release is read again when nothing was heard of it.
const RECHECK: Duration = Duration::from_secs(5);
/// Changes that come in a burst, such as a step's output, go out as one event.
const SETTLE: Duration = Duration::from_millis(50);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    after: Option<i64>,
}

pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.require_read()?;

    // Subscribed before the first read, so no change between the two goes unheard.
    let changes = state.engine.changes().subscribe();
    state.engine.store().release(&id).await?;

    let after = query.after.or_else(|| last_event_id(&headers)).unwrap_or(0);
    let watch = Watch {
        engine: state.engine.clone(),
        release_id: id,
        after,
        changes,
        sent: None,
        ended: false,
    };
    let events = futures_util::stream::unfold(watch, |mut watch| async move {
        let event = watch.next_event().await?;
        Some((Ok(event), watch))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One watcher of one release: what it has sent so far.
struct Watch {
    engine: Engine,
    release_id: String,
    /// The newest log entry sent.
    after: i64,
    changes: Receiver<Arc<str>>,
    /// The release's view as last sent, so an unchanged release sends nothing.
    sent: Option<Value>,
    ended: bool,
}

impl Watch {
    /// The next event worth sending; `None` once the end has been sent, or if the release
    /// can no longer be read (the client may reconnect and try again).
    async fn next_event(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        loop {
            if self.sent.is_some() {
                self.wait_for_change().await?;
            }
            match self.read().await {
                Ok(Some(event)) => return Some(event),
                Ok(None) => continue,
                Err(err) => {
                    let release_id = &self.release_id;
                    tracing::warn!(release_id, error = ?err, "event stream ended");
                    return None;
                }
            }
        }
    }

    /// Waits until the release is said to have changed, or until it is time to look anyway.
    async fn wait_for_change(&mut self) -> Option<()> {
        let recheck = tokio::time::sleep(RECHECK);
        tokio::pin!(recheck);
        loop {
            tokio::select! {
                heard = self.changes.recv() => match heard {
                    Ok(id) if *id == *self.release_id => break,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return None,
                },
                _ = &mut recheck => break,
            }
        }

        tokio::time::sleep(SETTLE).await;
        // The read that follows covers whatever else was heard meanwhile.
        loop {
            match self.changes.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => continue,
                Err(TryRecvError::Empty) => return Some(()),
                Err(TryRecvError::Closed) => return None,
            }
        }
    }

    /// Reads the release and its new log entries; `None` when nothing changed.
    async fn read(&mut self) -> Result<Option<Event>, ApiError> {
        let store = self.engine.store();
        let release = store.release(&self.release_id).await?;
        let view = releases::view(store, &release).await?;
        let entries: Vec<Value> = store
            .release_log_after(
                &release.id,
                self.after,
                lockstep_store::logs::MAX_ENTRIES_PER_RELEASE,
            )
            .await?
            .iter()
            .map(logs::view)
            .collect();
        let ended = release.stage.is_terminal();
        if entries.is_empty() && !ended && self.sent.as_ref() == Some(&view) {
            return Ok(None);
        }

        if let Some(newest) = entries.last().and_then(|e| e["id"].as_i64()) {
            self.after = newest;
        }
        self.ended = ended;
        let data = json!({"release": view, "entries": entries});
        self.sent = Some(view);
        let event = Event::default()
            .event(if ended { "end" } else { "update" })
            .id(self.after.to_string())
            .json_data(data)
            .map_err(|e| ApiError::Internal(format!("serialising a release event: {e}")))?;
        Ok(Some(event))
    }
}
