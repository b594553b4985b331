//! The dispatcher: claims deliveries that are due and sends each in its own task.
//!
//! It sleeps until the earliest due time, or until new deliveries or a freed slot nudge it;
//! it never polls in a tight loop. Each claim carries a lease longer than the attempt's
//! deadline, so a node that dies mid-attempt leaves work another node (or its own restart)
//! takes over.

use std::time::Duration;

use rand::Rng;
use tracing::{info, warn, Instrument};

use lockstep_core::payload::{redact_in, secret_of};
use lockstep_core::retry::Schedule;
use lockstep_core::time::now_ms;
use lockstep_store::deliveries::{AfterAttempt, Attempt, Delivery};

use crate::sender::{Answer, Failure, Outgoing};
use crate::Engine;

/// The longest the dispatcher sleeps with nothing due: a safety net, not what drives it.
const IDLE_SLEEP: Duration = Duration::from_secs(60);

pub(crate) async fn run(engine: Engine) {
    let mut shutdown = engine.inner.shutdown.subscribe();
    loop {
        if engine.is_shutting_down() {
            return;
        }
        let sleep = match dispatch_due(&engine).await {
            Ok(sleep) => sleep,
            Err(err) => {
                warn!(
                    error = format!("{err:#}"),
                    "dispatcher could not claim deliveries"
                );
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = engine.inner.dispatch.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Starts every due delivery there is room for; returns how long to sleep.
async fn dispatch_due(engine: &Engine) -> anyhow::Result<Duration> {
    let store = engine.store();
    loop {
        let room = engine.inner.in_flight.available_permits();
        if room == 0 {
            // A finishing attempt nudges the dispatcher when it frees its slot.
            return Ok(IDLE_SLEEP);
        }
        let lease = engine.config().lease_margin.as_millis() as i64;
        let now = now_ms();
        // The lease covers the longest deadline a webhook may have, plus the margin.
        let claimed = store
            .claim_due(&engine.config().node_id, now, room as i64, 300_000 + lease)
            .await?;
        let full = claimed.len() == room;
        for delivery in claimed {
            let Ok(permit) = engine.inner.in_flight.clone().try_acquire_owned() else {
                break;
            };
            let engine = engine.clone();
            let span = tracing::info_span!(
                "delivery",
                delivery_id = delivery.id,
                release_id = delivery.release_id
            );
            tokio::spawn(
                async move {
                    if let Err(err) = attempt(&engine, &delivery).await {
                        warn!(error = format!("{err:#}"), "could not record the attempt");
                    }
                    drop(permit);
                    engine.nudge_dispatcher();
                }
                .instrument(span),
            );
        }
        if !full {
            break;
        }
    }
    let next = store.next_due_at().await?;
    let wait = next.map_or(IDLE_SLEEP, |at| {
        Duration::from_millis((at - now_ms()).clamp(0, 60_000) as u64)
    });
    Ok(wait.min(IDLE_SLEEP))
}

/// Makes one attempt of a delivery, stores it with what follows, and wakes the release.
async fn attempt(engine: &Engine, delivery: &Delivery) -> anyhow::Result<()> {
    let store = engine.store();
    let secret = secret_of(&delivery.body);
    let webhook = store.webhook(&delivery.webhook_id).await.ok();
    let signing_keys = signing_keys(engine, &delivery.webhook_id).await?;
    let out = Outgoing {
        url: &delivery.url,
        body: delivery.body.clone(),
        event: &delivery.event,
        delivery_id: &delivery.id,
        secret: secret.as_deref(),
        deadline: Duration::from_secs(delivery.timeout_seconds.clamp(1, 300) as u64),
        ca_certificate: webhook.as_ref().and_then(|w| w.ca_certificate.as_deref()),
        signing_keys,
        headers: webhook
            .as_ref()
            .map(|w| w.headers.clone())
            .unwrap_or_default(),
    };
    let started_at = now_ms();
    let answer = redacted(engine.inner.sender.send(out).await, &delivery.body);
    let outcome = answer.failure.map_or("success", Failure::as_str);
    engine
        .metrics()
        .attempt(outcome, answer.duration.as_secs_f64());

    let schedule = webhook
        .as_ref()
        .and_then(|w| w.retry_schedule.as_deref())
        .and_then(|text| Schedule::parse(text, "retry_schedule").ok())
        .unwrap_or_else(|| engine.config().retry.clone());
    let after = next_step(&schedule, delivery.attempts as u32 + 1, &answer);
    let summary = summarise(delivery.attempts + 1, &answer, after);
    info!(
        outcome,
        status = answer.status,
        ms = answer.duration.as_millis() as u64,
        "attempt finished"
    );

    let record = Attempt {
        number: delivery.attempts + 1,
        started_at,
        duration_ms: answer.duration.as_millis() as i64,
        status_code: answer.status.map(i64::from),
        error_kind: answer.failure.map(|f| f.as_str().to_owned()),
        error: answer.error.clone(),
        location: answer.location.clone(),
        response_body: Some(answer.body.clone()).filter(|b| !b.is_empty()),
        response_truncated: answer.truncated,
    };
    store
        .record_attempt(delivery, &record, after, summary)
        .await?;
    match after {
        AfterAttempt::Succeeded => engine.metrics().delivery_finished("succeeded"),
        AfterAttempt::Failed => engine.metrics().delivery_finished("failed"),
        AfterAttempt::RetryAt(_) => {}
    }
    let failing = webhook.as_ref().is_some_and(|w| w.failing_since.is_some());
    check_health(engine, delivery, &answer, failing).await?;
    if let Some(release_id) = &delivery.release_id {
        engine.wake(release_id);
    }
    Ok(())
}

/// A 410 Gone, or nothing but failures for too long, disables the webhook; the releases
/// whose locks that settles are woken so their gates stop waiting. A success of a webhook
/// that was not failing (`failing`, as loaded before the attempt) has nothing to record.
async fn check_health(
    engine: &Engine,
    delivery: &Delivery,
    answer: &Answer,
    failing: bool,
) -> anyhow::Result<()> {
    if answer.failure.is_none() && !failing {
        return Ok(());
    }
    let store = engine.store();
    let webhook = &delivery.webhook_id;
    let disabled = if answer.status == Some(410) {
        let reason = format!("the endpoint answered 410 Gone to delivery {}", delivery.id);
        store
            .disable_webhook(webhook, &reason)
            .await?
            .map(|woken| (reason, woken))
    } else {
        let after = engine.config().disable_after.as_millis() as i64;
        store
            .record_webhook_health(webhook, answer.failure.is_none(), after)
            .await?
    };
    if let Some((reason, releases)) = disabled {
        warn!(webhook_id = webhook, reason, "webhook disabled");
        for release_id in releases {
            engine.wake(&release_id);
        }
    }
    Ok(())
}

/// The bytes of the keys that sign a request sent now. A deleted webhook signs with none.
pub(crate) async fn signing_keys(
    engine: &Engine,
    webhook_id: &str,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let keys = match engine.store().signing_keys(webhook_id).await {
        Ok(keys) => keys,
        Err(lockstep_store::StoreError::NotFound(_)) => return Ok(Vec::new()),
        Err(err) => return Err(err.into()),
    };
    let now = now_ms();
    let bytes = keys
        .signing_at(now)
        .into_iter()
        .map(lockstep_core::signature::key_bytes);
    Ok(bytes.collect::<Result<Vec<_>, _>>()?)
}

/// The answer with the delivery's secret and lock token hidden wherever the endpoint
/// echoed them, before anything of it is stored or logged.
fn redacted(answer: Answer, body: &[u8]) -> Answer {
    Answer {
        error: answer.error.as_deref().map(|e| redact_in(body, e)),
        location: answer.location.as_deref().map(|l| redact_in(body, l)),
        body: redact_in(body, &answer.body),
        ..answer
    }
}

/// What follows an attempt: done, another try at a time, or no more tries.
fn next_step(schedule: &Schedule, attempts: u32, answer: &Answer) -> AfterAttempt {
    if answer.failure.is_none() {
        return AfterAttempt::Succeeded;
    }
    if answer.status == Some(410) {
        return AfterAttempt::Failed;
    }
    let jitter = rand::rng().random_range(-1.0..=1.0);
    let Some(mut delay) = schedule.delay(attempts, jitter) else {
        return AfterAttempt::Failed;
    };
    if matches!(answer.status, Some(429 | 503)) {
        match answer.retry_after.as_deref().map(parse_retry_after) {
            Some(Some(asked)) => delay = schedule.honour_retry_after(delay, asked),
            Some(None) => warn!("ignoring a malformed Retry-After header"),
            None => {}
        }
    }
    AfterAttempt::RetryAt(now_ms() + delay.as_millis() as i64)
}

/// `Retry-After` as seconds or as an HTTP date; `None` when it is neither.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// One line for the action log: attempt number, outcome, status, time, what comes next.
fn summarise(number: i64, answer: &Answer, after: AfterAttempt) -> String {
    let ms = answer.duration.as_millis();
    let mut text = match (answer.failure, answer.status) {
        (None, Some(status)) => format!("attempt {number}: {status} in {ms} ms"),
        (Some(kind), Some(status)) => format!(
            "attempt {number} failed ({}): {status} in {ms} ms",
            kind.as_str()
        ),
        (Some(kind), None) => format!(
            "attempt {number} failed ({}) after {ms} ms: {}",
            kind.as_str(),
            answer.error.as_deref().unwrap_or("")
        ),
        (None, None) => format!("attempt {number} in {ms} ms"),
    };
    if let Some(location) = &answer.location {
        text.push_str(&format!("; redirect to {location} not followed"));
    }
    match after {
        AfterAttempt::RetryAt(at) => text.push_str(&format!(
            "; next try in {}s",
            ((at - now_ms()).max(0) + 999) / 1000
        )),
        AfterAttempt::Failed => text.push_str("; no more tries"),
        AfterAttempt::Succeeded => {}
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates_and_refuses_the_rest() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        let later = std::time::SystemTime::now() + Duration::from_secs(90);
        let asked = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(asked > Duration::from_secs(80) && asked <= Duration::from_secs(90));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-5"), None);
    }
}
