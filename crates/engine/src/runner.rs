//! The release runner: looks at one release, does the next thing it needs, and returns.
//!
//! Every move is stored before it is acted on (a stage change, the deliveries and locks of
//! an event), so a restart finds each release where it was and simply advances it again.

use anyhow::Context;
use tracing::{info, warn, Instrument};

use lockstep_core::ids::{DeliveryId, LockId};
use lockstep_core::payload::{Payload, ReleaseFacts};
use lockstep_core::secret::{generate_token, hash_token, LOCK_TOKEN_PREFIX};
use lockstep_core::{Event, Stage};
use lockstep_store::deliveries::{NewDelivery, NewLock};
use lockstep_store::releases::{Ending, GateItem, Release};

use crate::Engine;

/// What one look at a release came to.
pub(crate) enum Outcome {
    /// It moved; look again at once.
    Moved,
    /// Nothing to do until something wakes it.
    Parked,
}

/// Advances a release as far as it can go now.
pub async fn advance(engine: &Engine, release_id: &str) {
    let span = tracing::info_span!("release", release_id);
    async {
        match engine.own(release_id).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                warn!(
                    error = format!("{err:#}"),
                    "could not take the release's lease"
                );
                return;
            }
        }
        for _ in 0..32 {
            match advance_once(engine, release_id).await {
                Ok(Outcome::Moved) => continue,
                Ok(Outcome::Parked) => return,
                Err(err) => {
                    warn!(error = format!("{err:#}"), "could not advance the release");
                    return;
                }
            }
        }
    }
    .instrument(span)
    .await
}

async fn advance_once(engine: &Engine, release_id: &str) -> anyhow::Result<Outcome> {
    let store = engine.store();
    let release = store
        .release(release_id)
        .await
        .context("loading the release")?;
    match release.stage {
        Stage::Queued => start_if_first(engine, &release).await,
        Stage::BeforeRelease | Stage::BeforeReleaseComplete | Stage::AfterRelease => {
            check_gate(engine, &release).await
        }
        Stage::Steps => crate::steps::run_next(engine, &release).await,
        Stage::Completed => enter_event(engine, &release, Stage::AfterRelease).await,
        Stage::Closed | Stage::Failed | Stage::Cancelled => {
            // It may have ended on another node while its step ran here.
            engine.stop_step(&release.id);
            wake_next_in_queue(engine, &release).await?;
            Ok(Outcome::Parked)
        }
    }
}

/// A queued release starts once every earlier release of its instance has ended.
async fn start_if_first(engine: &Engine, release: &Release) -> anyhow::Result<Outcome> {
    let head = engine.store().head_of_queue(&release.instance_id).await?;
    if head.as_deref() != Some(release.id.as_str()) {
        return Ok(Outcome::Parked);
    }
    info!(
        tag = release.tag,
        instance = release.instance_id,
        "release starting"
    );
    enter_event(engine, release, Stage::BeforeRelease).await
}

/// Moves the release into an event stage, storing one delivery per subscribed, enabled
/// webhook (and a lock per locking one) before anything is sent.
pub(crate) async fn enter_event(
    engine: &Engine,
    release: &Release,
    to: Stage,
) -> anyhow::Result<Outcome> {
    let event = to.event().context("not an event stage")?;
    let (deliveries, notes) = build_deliveries(engine, release, event, None).await?;
    let store = engine.store();
    if store
        .enter_event(release, to, event, &deliveries, &notes)
        .await?
    {
        info!(%event, deliveries = deliveries.len(), "event fired");
        engine.metrics().deliveries_created(deliveries.len());
        engine.nudge_dispatcher();
        let expiring = |d: &NewDelivery| d.lock.as_ref().is_some_and(|l| l.timeout_ms.is_some());
        if deliveries.iter().any(expiring) {
            engine.nudge_expiry();
        }
    }
    Ok(Outcome::Moved)
}

/// One delivery per matching, enabled webhook, with its body serialised once, here; and a
/// note for each matching webhook that is disabled, saying the gate will not wait for it.
async fn build_deliveries(
    engine: &Engine,
    release: &Release,
    event: Event,
    reason: Option<&str>,
) -> anyhow::Result<(Vec<NewDelivery>, Vec<String>)> {
    let store = engine.store();
    let instance = store.instance(&release.instance_id).await?.payload_json();
    let mut deliveries = Vec::new();
    let mut notes = Vec::new();
    for webhook in store.all_webhooks().await? {
        let Some(subscription) = webhook.subscription(event, &release.instance_id) else {
            continue;
        };
        if !webhook.enabled {
            let why = webhook
                .disabled_reason
                .as_deref()
                .unwrap_or("by an operator");
            notes.push(format!(
                "webhook {} is disabled ({why}); nothing is sent to it",
                webhook.id
            ));
            continue;
        }
        let facts = ReleaseFacts {
            tag: &release.tag,
            zero_downtime: release.zero_downtime,
        };
        let mut payload = Payload::new(event, &instance, release.parent_log, facts);
        payload.secret = webhook.secret.as_deref();
        payload.reason = reason;
        let token =
            (subscription.locking && event.can_lock()).then(|| generate_token(LOCK_TOKEN_PREFIX));
        payload.lock = token.as_deref();
        deliveries.push(NewDelivery {
            id: DeliveryId::generate().to_string(),
            webhook_id: webhook.id.clone(),
            event,
            body: payload.to_bytes(),
            url: webhook.url.clone(),
            timeout_seconds: webhook.timeout_seconds,
            lock: token.map(|t| NewLock {
                id: LockId::generate().to_string(),
                token_hash: hash_token(&t),
                timeout_ms: webhook.lock_timeout_seconds.map(|s| s * 1000),
            }),
        });
    }
    Ok((deliveries, notes))
}

/// Holds the release at its event until every delivery has settled; an `abort` fails it.
async fn check_gate(engine: &Engine, release: &Release) -> anyhow::Result<Outcome> {
    let event = release.stage.event().context("not an event stage")?;
    let items = engine.store().gate(&release.id, event).await?;
    if let Some(abort) = items
        .iter()
        .find(|i| i.lock_outcome.as_deref() == Some("abort"))
    {
        let reason = abort_reason(event, abort);
        let actor = abort
            .lock_actor
            .clone()
            .unwrap_or_else(|| "receiver".into());
        end(engine, release, Ending::Failed, &reason, &actor).await?;
        return Ok(Outcome::Moved);
    }
    let waiting = items.iter().filter(|i| i.pending()).count();
    if waiting > 0 {
        info!(%event, waiting, "release waits at its gate");
        return Ok(Outcome::Parked);
    }
    let next = release
        .stage
        .next()
        .context("event stage without a next stage")?;
    match next {
        Stage::Steps => {
            let message = format!("{event} gate passed; running steps");
            engine
                .store()
                .advance(release, Stage::Steps, message)
                .await?;
        }
        Stage::Completed => {
            let message = format!("{event} gate passed; release completed");
            engine
                .store()
                .advance(release, Stage::Completed, message)
                .await?;
        }
        Stage::Closed => {
            let message = format!("{event} gate passed; release closed");
            if engine
                .store()
                .advance(release, Stage::Closed, message)
                .await?
            {
                info!("release closed");
                engine.metrics().release_ended("closed");
            }
        }
        other => anyhow::bail!("unexpected stage {other} after a gate"),
    }
    Ok(Outcome::Moved)
}

fn abort_reason(event: Event, item: &GateItem) -> String {
    let lock = item.lock_id.as_deref().unwrap_or("?");
    match item.lock_message.as_deref() {
        Some(message) if !message.is_empty() => {
            format!("lock {lock} at {event} aborted: {message}")
        }
        _ => format!("lock {lock} at {event} aborted"),
    }
}

/// Ends a release as failed or cancelled and tells `release_failed` subscribers why.
pub async fn end(
    engine: &Engine,
    release: &Release,
    ending: Ending,
    reason: &str,
    actor: &str,
) -> anyhow::Result<bool> {
    let (notices, _) =
        build_deliveries(engine, release, Event::ReleaseFailed, Some(reason)).await?;
    let ended = engine
        .store()
        .end_release(&release.id, ending, reason, actor, &notices)
        .await?;
    if ended {
        let state = match ending {
            Ending::Failed => "failed",
            Ending::Cancelled => "cancelled",
        };
        info!(state, reason, actor, "release ended");
        engine.metrics().release_ended(state);
        engine.metrics().deliveries_created(notices.len());
        engine.stop_step(&release.id);
        engine.nudge_dispatcher();
        engine.wake(&release.id);
    }
    Ok(ended)
}

/// An ended release frees its instance for the next one in line.
async fn wake_next_in_queue(engine: &Engine, release: &Release) -> anyhow::Result<()> {
    if let Some(next) = engine.store().head_of_queue(&release.instance_id).await? {
        engine.wake(&next);
    }
    Ok(())
}
