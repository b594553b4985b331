//! Lockstep's client: for middleware that receives Lockstep's webhooks, and for the CLI.
//!
//! - [`payload`]: the bodies of `before_release`, `before_release_complete`, `after_release`
//!   and `release_failed` requests, parsed leniently.
//! - [`secret`]: a constant-time check of the webhook's shared secret, from the
//!   `X-MDOQ-Secret` header or the body.
//! - [`signature`]: the Standard Webhooks signature (`webhook-signature`), checked with the
//!   webhook's `whsec_…` signing key.
//! - [`Client`]: the API, to release a lock, append to a release's action log, and everything
//!   else the `lockstep` CLI does, retrying while the server cannot be reached.
//! - [`events`]: a release's progress as the server pushes it.
//! - [`Error`]: what went wrong, with the server's code, message and field when it answered.
//!
//! # A receiver
//!
//! A webhook subscribed to `before_release_complete` with locking: the receiver checks the
//! secret, answers at once, then does its job in the background, writes what it did into the
//! release's action log, and releases the lock. The release waits until then, however long
//! the job takes. The API token needs the `hook` scope.
//!
//! ```no_run
//! use axum::body::Bytes;
//! use axum::http::{HeaderMap, StatusCode};
//! use axum::routing::post;
//! use axum::Router;
//! use lockstep_client::{Client, LogStatus, Outcome, Payload, SECRET_HEADER};
//!
//! #[derive(Clone)]
//! struct Receiver {
//!     client: Client,
//!     secret: String,
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = Client::new(
//!         &std::env::var("LOCKSTEP_SERVER")?,
//!         std::env::var("LOCKSTEP_TOKEN")?,
//!     )?;
//!     let receiver = Receiver { client, secret: std::env::var("WEBHOOK_SECRET")? };
//!     let app = Router::new()
//!         .route("/lockstep", post(receive))
//!         .with_state(receiver);
//!     let listener = tokio::net::TcpListener::bind("0.0.0.0:9000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//!
//! async fn receive(
//!     axum::extract::State(receiver): axum::extract::State<Receiver>,
//!     headers: HeaderMap,
//!     body: Bytes,
//! ) -> StatusCode {
//!     let Ok(payload) = Payload::from_slice(&body) else {
//!         return StatusCode::BAD_REQUEST;
//!     };
//!     let header = headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok());
//!     if payload.verify_secret(&receiver.secret, header).is_err() {
//!         return StatusCode::UNAUTHORIZED;
//!     }
//!     // Answer within the 60 seconds a request has; the release waits on the lock instead.
//!     tokio::spawn(purge_cache(receiver.client, payload));
//!     StatusCode::ACCEPTED
//! }
//!
//! async fn purge_cache(client: Client, payload: Payload) {
//!     let log = payload.parent_log;
//!     let tag = &payload.release.tag;
//!     let started = format!("purging the CDN for {tag}");
//!     let _ = client.append_log(log, &started, LogStatus::Info).await;
//!     let purged = true; // the real work goes here
//!     let (outcome, message) = if purged {
//!         (Outcome::Continue, "CDN purged")
//!     } else {
//!         (Outcome::Abort, "the CDN purge failed")
//!     };
//!     if let Some(lock) = &payload.lock {
//!         if let Err(err) = client.release_lock(lock, outcome, message).await {
//!             eprintln!("could not release the lock: {err}");
//!         }
//!     }
//! }
//! ```

pub mod client;
pub mod error;
pub mod events;
pub mod payload;
pub mod resources;
pub mod secret;
pub mod signature;

pub use client::{Client, Retry};
pub use error::{ApiError, Error};
pub use events::{ReleaseEvents, ReleaseUpdate};
pub use payload::{Event, InstanceSnapshot, Payload, PayloadError, ReleaseFacts};
pub use resources::{
    Attempt, CreatedToken, Delivery, Instance, Lock, LogEntry, LogStatus, NewInstance, NewWebhook,
    Outcome, Page, PageRequest, Release, Step, Subscription, Token, Waiting, Webhook, WebhookTest,
};
pub use secret::{verify_secret, SecretError, DELIVERY_HEADER, EVENT_HEADER, SECRET_HEADER};
pub use signature::{SignatureError, Verifier};
