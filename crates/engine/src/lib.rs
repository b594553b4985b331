//! Lockstep's engine: it moves releases through their stages and delivers webhooks.
//!
//! - [`runner`]: the release state machine, run once per wake-up, never parked in memory.
//! - [`wake`]: the queue of wake-ups that drives the runner.
//! - [`changes`]: word that a release changed, for the API's event streams.
//! - [`cluster`]: release leases and wake-ups across nodes on one PostgreSQL.
//! - [`expiry`]: applies the default outcome of locks whose time ran out.
//! - [`dispatcher`]: claims due deliveries and sends them, within a concurrency limit.
//! - [`sender`]: one HTTP attempt under a hard deadline, with a capped response read.
//! - [`steps`]: runs a release's commands and logs their output.
//! - [`metrics`]: the counters `/metrics` shows.
//!
//! A waiting release costs a row: nothing runs for it until a wake-up names it (a lock
//! settled, an attempt finished, a step ended, a release ahead of it ended).

pub mod changes;
pub mod cluster;
pub mod dispatcher;
pub mod expiry;
pub mod guard;
pub mod metrics;
pub mod runner;
pub mod sender;
pub mod steps;
pub mod wake;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify, Semaphore};

use lockstep_core::retry::Schedule;
use lockstep_store::Store;

pub use metrics::Metrics;

/// The contract's default `User-Agent`.
pub const DEFAULT_USER_AGENT: &str = "MDOQ Webhook (https://www.mdoq.io)";

/// How the engine runs; built from the service's configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This process's name in claims and leases.
    pub node_id: String,
    pub user_agent: String,
    /// The retry schedule for webhooks that set none of their own.
    pub retry: Schedule,
    /// How many attempts may be in flight at once.
    pub max_in_flight: usize,
    /// How far a delivery claim outlives its request deadline, so a slow attempt is never
    /// taken over while it still runs.
    pub lease_margin: Duration,
    /// Networks webhooks may reach besides public addresses.
    pub allow_networks: Vec<ipnet::IpNet>,
    /// How long a node's ownership of a release lasts unless renewed; another node takes
    /// the release over once it runs out.
    pub release_lease: Duration,
    /// A webhook whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node_id: format!("node-{}", std::process::id()),
            user_agent: DEFAULT_USER_AGENT.into(),
            retry: Schedule::default(),
            max_in_flight: 64,
            lease_margin: Duration::from_secs(30),
            allow_networks: Vec::new(),
            release_lease: Duration::from_secs(30),
            disable_after: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

/// The running engine, shared by the API and its own tasks.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: EngineConfig,
    wake: wake::WakeQueue,
    changes: changes::Changes,
    dispatch: Notify,
    expiry: Notify,
    in_flight: Arc<Semaphore>,
    sender: sender::Sender,
    guard: guard::Guard,
    /// Releases whose step runs in this process, with the handle that stops it.
    /// The handle says why the step is stopped, for its log.
    running_steps: Mutex<HashMap<String, tokio::sync::oneshot::Sender<&'static str>>>,
    /// Step tasks still winding up, so shutdown can wait for their last log lines.
    step_tasks: std::sync::atomic::AtomicUsize,
    metrics: Metrics,
    shutdown: watch::Sender<bool>,
}

impl Engine {
    /// Builds the engine and starts its tasks: the wake-up driver and the dispatcher.
    /// Releases left under way by an earlier run are woken, so each resumes at its stage.
    pub async fn start(store: Store, config: EngineConfig) -> anyhow::Result<Engine> {
        let guard = guard::Guard::new(config.allow_networks.clone());
        let sender = sender::Sender::new(&config.user_agent, guard.clone())?;
        let (wake, wake_rx) = wake::WakeQueue::new();
        let engine = Engine {
            inner: Arc::new(Inner {
                in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
                store,
                config,
                wake,
                changes: changes::Changes::default(),
                dispatch: Notify::new(),
                expiry: Notify::new(),
                sender,
                guard,
                running_steps: Mutex::new(HashMap::new()),
                step_tasks: Default::default(),
                metrics: Metrics::default(),
                shutdown: watch::channel(false).0,
            }),
        };
        let node = engine.config().node_id.clone();
        engine.store().release_stale_claims(&node).await?;
        engine.store().release_stale_ownership(&node).await?;
        engine.heartbeat().await?;
        tokio::spawn(wake::drive(engine.clone(), wake_rx));
        tokio::spawn(dispatcher::run(engine.clone()));
        tokio::spawn(expiry::run(engine.clone()));
        tokio::spawn(cluster::keep_leases(engine.clone()));
        tokio::spawn(cluster::listen_for_wakes(engine.clone()));
        for id in engine.store().active_release_ids().await? {
            engine.wake_local(&id);
        }
        Ok(engine)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The outbound address policy, for checking URLs when they are saved.
    pub fn guard(&self) -> &guard::Guard {
        &self.inner.guard
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Asks the runner, on whichever node owns the release, to look at it again.
    pub fn wake(&self, release_id: &str) {
        self.wake_local(release_id);
        self.publish_wake(release_id);
    }

    /// Asks this node's runner to look at a release again.
    pub(crate) fn wake_local(&self, release_id: &str) {
        self.inner.wake.push(release_id);
        self.inner.changes.fire(release_id);
    }

    /// Tells the expiry timer that a lock's time limit was set or moved.
    pub fn nudge_expiry(&self) {
        self.inner.expiry.notify_one();
    }

    /// Word of releases that changed, for watchers.
    pub fn changes(&self) -> &changes::Changes {
        &self.inner.changes
    }

    /// Tells the dispatcher that deliveries may be due.
    pub fn nudge_dispatcher(&self) {
        self.inner.dispatch.notify_one();
    }

    /// Stops taking new work and waits, up to `grace`, for attempts in flight to finish and
    /// be stored. Whatever is left is picked up by the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.send_replace(true);
        self.inner.dispatch.notify_one();
        self.inner.expiry.notify_one();
        self.stop_all_steps().await;
        let all = self.inner.config.max_in_flight as u32;
        let drained = tokio::time::timeout(grace, self.inner.in_flight.acquire_many(all)).await;
        if drained.is_err() {
            tracing::warn!("shutdown grace ran out with attempts still in flight");
        }
    }

    fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Stops the step running for `release_id` in this process, if there is one.
    pub fn stop_step(&self, release_id: &str) {
        let stop = self
            .inner
            .running_steps
            .lock()
            .ok()
            .and_then(|mut m| m.remove(release_id));
        if let Some(stop) = stop {
            let _ = stop.send("the release ended");
        }
    }

    /// Stops every step running here, for shutdown: each is killed with its process group
    /// and logged as interrupted, and runs again when its release resumes.
    async fn stop_all_steps(&self) {
        let stops: Vec<_> = match self.inner.running_steps.lock() {
            Ok(mut running) => running.drain().map(|(_, stop)| stop).collect(),
            Err(_) => return,
        };
        for stop in stops {
            let _ = stop.send("the service is shutting down; it runs again on restart");
        }
        use std::sync::atomic::Ordering;
        for _ in 0..100 {
            if self.inner.step_tasks.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Engine {
    /// Sends a sample delivery of the webhook's first event now, without storing anything.
    pub async fn test_webhook(
        &self,
        webhook: &lockstep_store::webhooks::Webhook,
    ) -> sender::Answer {
        use lockstep_core::payload::{Payload, ReleaseFacts};
        let event = webhook
            .events
            .first()
            .map_or(lockstep_core::Event::BeforeRelease, |s| s.event);
        let instance = serde_json::json!({
            "id": "example", "name": "Example instance", "url": "https://example.com",
            "attributes": {}
        });
        let facts = ReleaseFacts {
            tag: "v0.0.0-test",
            zero_downtime: false,
        };
        let mut payload = Payload::new(event, &instance, 0, facts);
        payload.secret = webhook.secret.as_deref();
        let delivery_id = lockstep_core::ids::DeliveryId::generate();
        let out = sender::Outgoing {
            url: &webhook.url,
            body: payload.to_bytes(),
            event: event.as_str(),
            delivery_id: delivery_id.as_str(),
            secret: webhook.secret.as_deref(),
            deadline: Duration::from_secs(webhook.timeout_seconds.clamp(1, 300) as u64),
            ca_certificate: webhook.ca_certificate.as_deref(),
            signing_keys: dispatcher::signing_keys(self, &webhook.id)
                .await
                .unwrap_or_default(),
            headers: webhook.headers.clone(),
        };
        self.inner.sender.send(out).await
    }
}
