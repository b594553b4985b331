//! The demo's middleware: a receiver such as a user would write, built on `lockstep-client`.
//!
//! It checks the shared secret and writes a line into the release's action log on each
//! event. At the locking `before_release_complete` it answers at once and does a short job
//! in the background, logs what came of it, and releases the lock, which lets the release
//! complete.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use lockstep_client::{Client, Event, LogStatus, Outcome, Payload, EVENT_HEADER, SECRET_HEADER};

/// A running middleware; it stops when dropped.
pub struct Middleware {
    /// Where Lockstep should send its webhooks.
    pub url: String,
    server: JoinHandle<()>,
}

impl Drop for Middleware {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct Receiver {
    client: Client,
    secret: Arc<str>,
    job: Duration,
}

/// Starts the middleware on a free loopback port. `client` acts with a `hook` token.
pub async fn start(client: Client, secret: &str, job: Duration) -> anyhow::Result<Middleware> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/lockstep", listener.local_addr()?);
    let receiver = Receiver {
        client,
        secret: Arc::from(secret),
        job,
    };
    let app = Router::new()
        .route("/lockstep", post(receive))
        .with_state(receiver);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Middleware { url, server })
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Ok(payload) = Payload::from_slice(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if payload
        .verify_secret(&receiver.secret, header(SECRET_HEADER))
        .is_err()
    {
        return StatusCode::UNAUTHORIZED;
    }
    let event = payload.event_or(header(EVENT_HEADER));

    // A line in the log is quick, so it is written before answering: the release moves on
    // only after it. The locking job may take longer than the request's 60 seconds, so it
    // runs after the answer and the release waits on the lock instead.
    if !payload.is_locking() {
        if let Err(err) = work(&receiver, &payload, event).await {
            tracing::warn!(error = %err, "the demo middleware's work failed");
        }
        return StatusCode::OK;
    }
    tokio::spawn(async move {
        if let Err(err) = work(&receiver, &payload, event).await {
            tracing::warn!(error = %err, "the demo middleware's work failed");
        }
    });
    StatusCode::ACCEPTED
}

async fn work(
    receiver: &Receiver,
    payload: &Payload,
    event: Option<Event>,
) -> Result<(), lockstep_client::Error> {
    let client = &receiver.client;
    let log = payload.parent_log;
    let tag = &payload.release.tag;
    let instance = payload.instance.name().unwrap_or("the instance");
    match event {
        Some(Event::BeforeRelease) => {
            let message = format!("middleware: {tag} is about to go out to {instance}");
            client.append_log(log, &message, LogStatus::Info).await?;
        }
        Some(Event::BeforeReleaseComplete) => warm_cache(receiver, payload).await?,
        Some(Event::AfterRelease) => {
            let message = format!("middleware: {tag} is live on {instance}; the team is told");
            client.append_log(log, &message, LogStatus::Success).await?;
        }
        Some(Event::ReleaseFailed) => {
            let reason = payload.reason.as_deref().unwrap_or("no reason given");
            let message = format!("middleware: {tag} did not go out: {reason}");
            client.append_log(log, &message, LogStatus::Warning).await?;
        }
        Some(Event::Unknown) | None => {}
    }
    Ok(())
}

/// The short job the release waits for: here, checksumming the instance's snapshot for a
/// while, standing in for warming a cache.
async fn warm_cache(receiver: &Receiver, payload: &Payload) -> Result<(), lockstep_client::Error> {
    let client = &receiver.client;
    let log = payload.parent_log;
    let seconds = receiver.job.as_secs_f64();
    let start = format!("middleware: warming the cache (a job of {seconds:.1}s)");
    client.append_log(log, &start, LogStatus::Info).await?;

    let started = Instant::now();
    let snapshot = serde_json::to_vec(&payload.instance).unwrap_or_default();
    let mut rounds = 0u64;
    let mut checksum = 0u64;
    while started.elapsed() < receiver.job {
        checksum = snapshot
            .iter()
            .fold(checksum, |sum, b| sum.rotate_left(5) ^ u64::from(*b));
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let done = format!("middleware: cache warmed in {rounds} rounds (checksum {checksum:016x})");
    client.append_log(log, &done, LogStatus::Success).await?;
    if let Some(lock) = &payload.lock {
        let message = "middleware: cache warmed; go ahead";
        client
            .release_lock(lock, Outcome::Continue, message)
            .await?;
    }
    Ok(())
}
