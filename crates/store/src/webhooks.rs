//! Webhooks: who is told of which events, and whether they hold the release.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::cipher::{open_text, seal_text, Cipher};
use crate::{flag, Page, Result, Store, StoreError};
use lockstep_core::time::now_ms;
use lockstep_core::Event;

/// One event a webhook wants, and whether its deliveries lock the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    pub event: Event,
    pub locking: bool,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Write-only towards clients: the API shows only whether one is set.
    pub secret: Option<String>,
    pub events: Vec<Subscription>,
    /// `None` means every instance.
    pub instances: Option<Vec<String>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    pub timeout_seconds: i64,
    pub retry_schedule: Option<String>,
    pub description: String,
    /// How long a lock of this webhook may hold a release; `None` waits without end.
    pub lock_timeout_seconds: Option<i64>,
    /// The outcome applied when a lock expires: `continue` or `abort`.
    pub lock_default_outcome: Option<String>,
    /// When the current run of failed attempts began; `None` after a success.
    pub failing_since: Option<i64>,
    /// PEM of the CA the endpoint's certificate must chain to, instead of the public roots.
    pub ca_certificate: Option<String>,
    /// Extra request headers, in the order given.
    pub headers: Vec<(String, String)>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Webhook {
    /// The subscription to `event`, if this webhook wants it for `instance`.
    pub fn subscription(&self, event: Event, instance: &str) -> Option<Subscription> {
        if let Some(only) = &self.instances {
            if !only.iter().any(|i| i == instance) {
                return None;
            }
        }
        self.events.iter().copied().find(|s| s.event == event)
    }
}

/// What a create or an update sets. `secret` is `None` to keep the stored one on update.
#[derive(Debug, Clone)]
pub struct WebhookFields {
    pub url: String,
    pub secret: Option<Option<String>>,
    pub events: Vec<Subscription>,
    pub instances: Option<Vec<String>>,
    pub enabled: bool,
    pub timeout_seconds: i64,
    pub retry_schedule: Option<String>,
    pub description: String,
    pub lock_timeout_seconds: Option<i64>,
    pub lock_default_outcome: Option<String>,
    pub ca_certificate: Option<String>,
    /// Extra request headers, in the order given.
    pub headers: Vec<(String, String)>,
}

const COLUMNS: &str = "id, url, secret, events, instances, enabled, disabled_reason, disabled_at,
    timeout_seconds, retry_schedule, description, lock_timeout_seconds, lock_default_outcome,
    failing_since, ca_certificate, headers, created_at, updated_at";

fn events_json(events: &[Subscription]) -> String {
    let list: Vec<_> = events
        .iter()
        .map(|s| serde_json::json!({"event": s.event.as_str(), "locking": s.locking}))
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn events_from_json(text: &str) -> Vec<Subscription> {
    let list: Vec<serde_json::Value> = serde_json::from_str(text).unwrap_or_default();
    list.iter()
        .filter_map(|v| {
            Some(Subscription {
                event: Event::parse(v.get("event")?.as_str()?)?,
                locking: v.get("locking")?.as_bool()?,
            })
        })
        .collect()
}

/// Headers are kept as a JSON list of pairs, sealed when a key is configured, since their
/// values may be credentials.
fn headers_json(headers: &[(String, String)], cipher: Option<&Cipher>) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let text = serde_json::to_string(headers).unwrap_or_default();
    Some(seal_text(cipher, &text))
}

fn headers_from(stored: Option<String>, cipher: Option<&Cipher>) -> Result<Vec<(String, String)>> {
    let Some(stored) = stored else {
        return Ok(Vec::new());
    };
    let text = open_text(cipher, stored)?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

fn from_row(row: &AnyRow, cipher: Option<&Cipher>) -> Result<Webhook> {
    let events: String = row.try_get("events")?;
    let instances: Option<String> = row.try_get("instances")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        secret: row
            .try_get::<Option<String>, _>("secret")?
            .map(|s| open_text(cipher, s))
            .transpose()?,
        events: events_from_json(&events),
        instances: instances.and_then(|t| serde_json::from_str(&t).ok()),
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        disabled_reason: row.try_get("disabled_reason")?,
        disabled_at: row.try_get("disabled_at")?,
        timeout_seconds: row.try_get("timeout_seconds")?,
        retry_schedule: row.try_get("retry_schedule")?,
        description: row.try_get("description")?,
        lock_timeout_seconds: row.try_get("lock_timeout_seconds")?,
        lock_default_outcome: row.try_get("lock_default_outcome")?,
        failing_since: row.try_get("failing_since")?,
        ca_certificate: row.try_get("ca_certificate")?,
        headers: headers_from(row.try_get("headers")?, cipher)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn create_webhook(&self, id: &str, fields: &WebhookFields) -> Result<Webhook> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO webhooks (id, url, secret, events, instances, enabled, timeout_seconds,
                 retry_schedule, description, created_at, updated_at, lock_timeout_seconds,
                 lock_default_outcome, ca_certificate, headers)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14)",
        )
        .bind(id)
        .bind(&fields.url)
        .bind(
            fields
                .secret
                .clone()
                .flatten()
                .map(|s| seal_text(self.cipher(), &s)),
        )
        .bind(events_json(&fields.events))
        .bind(
            fields
                .instances
                .as_ref()
                .map(|i| serde_json::json!(i).to_string()),
        )
        .bind(flag(fields.enabled))
        .bind(fields.timeout_seconds)
        .bind(fields.retry_schedule.clone())
        .bind(&fields.description)
        .bind(now)
        .bind(fields.lock_timeout_seconds)
        .bind(fields.lock_default_outcome.clone())
        .bind(fields.ca_certificate.clone())
        .bind(headers_json(&fields.headers, self.cipher()))
        .execute(&self.pool)
        .await?;
        self.webhook(id).await
    }

    pub async fn webhook(&self, id: &str) -> Result<Webhook> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        from_row(&row.ok_or(StoreError::NotFound("webhook"))?, self.cipher())
    }

    pub async fn webhooks(&self, after: Option<&str>, limit: i64) -> Result<Page<Webhook>> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(""))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(|r| from_row(r, self.cipher()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, limit, |w| w.id.clone()))
    }

    /// Every webhook, enabled or not; the caller matches events and instances.
    pub async fn all_webhooks(&self) -> Result<Vec<Webhook>> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(|r| from_row(r, self.cipher())).collect()
    }

    /// Replaces a webhook's settings. Re-enabling clears the reason it was disabled.
    pub async fn update_webhook(&self, id: &str, fields: &WebhookFields) -> Result<Webhook> {
        let current = self.webhook(id).await?;
        let secret = match &fields.secret {
            Some(new) => new.clone(),
            None => current.secret.clone(),
        };
        let (reason, at) = if fields.enabled {
            (None, None)
        } else {
            (current.disabled_reason.clone(), current.disabled_at)
        };
        sqlx::query(
            "UPDATE webhooks SET url = $1, secret = $2, events = $3, instances = $4, enabled = $5,
                 disabled_reason = $6, disabled_at = $7, timeout_seconds = $8,
                 retry_schedule = $9, description = $10, updated_at = $11,
                 lock_timeout_seconds = $12, lock_default_outcome = $13, ca_certificate = $15,
                 headers = $16,
                 failing_since = CASE WHEN $5 = 1 AND enabled = 0 THEN NULL ELSE failing_since END
             WHERE id = $14",
        )
        .bind(&fields.url)
        .bind(secret.map(|s| seal_text(self.cipher(), &s)))
        .bind(events_json(&fields.events))
        .bind(
            fields
                .instances
                .as_ref()
                .map(|i| serde_json::json!(i).to_string()),
        )
        .bind(flag(fields.enabled))
        .bind(reason)
        .bind(at)
        .bind(fields.timeout_seconds)
        .bind(fields.retry_schedule.clone())
        .bind(&fields.description)
        .bind(now_ms())
        .bind(fields.lock_timeout_seconds)
        .bind(fields.lock_default_outcome.clone())
        .bind(id)
        .bind(fields.ca_certificate.clone())
        .bind(headers_json(&fields.headers, self.cipher()))
        .execute(&self.pool)
        .await?;
        self.webhook(id).await
    }

    /// Turns a webhook off with the reason, so no new delivery goes to it, and settles its
    /// open locks as cancelled so no gate waits on it. Returns the releases those locks held,
    /// which need waking; `None` if the webhook was already off.
    pub async fn disable_webhook(&self, id: &str, reason: &str) -> Result<Option<Vec<String>>> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET enabled = 0, disabled_reason = $1, disabled_at = $2,
                 updated_at = $2
             WHERE id = $3 AND enabled = 1",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let why = format!("was disabled ({reason})");
        let releases = stand_down(&mut tx, id, &why, now).await?;
        tx.commit().await?;
        Ok(Some(releases))
    }

    /// Stops what a webhook being switched off or deleted holds: its pending deliveries are
    /// cancelled and its open locks settled as cancelled, logged with `reason`. Returns the
    /// releases those locks held, which need waking.
    pub async fn stand_down_webhook(&self, id: &str, reason: &str) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let releases = stand_down(&mut tx, id, reason, now_ms()).await?;
        tx.commit().await?;
        Ok(releases)
    }

    /// Keeps track of a webhook's run of failures. A success ends it; a failure starts it,
    /// or, once it has lasted `disable_after_ms`, disables the webhook. Returns the reason
    /// when this call disabled it, with the releases whose locks it settled.
    pub async fn record_webhook_health(
        &self,
        id: &str,
        success: bool,
        disable_after_ms: i64,
    ) -> Result<Option<(String, Vec<String>)>> {
        let now = now_ms();
        if success {
            sqlx::query(
                "UPDATE webhooks SET failing_since = NULL
                 WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind(id)
            .execute(&self.pool)
            .await?;
            return Ok(None);
        }
        sqlx::query(
            "UPDATE webhooks SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        let since: Option<Option<i64>> =
            sqlx::query_scalar("SELECT failing_since FROM webhooks WHERE id = $1 AND enabled = 1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(Some(since)) = since else {
            return Ok(None);
        };
        if now - since < disable_after_ms {
            return Ok(None);
        }
        let hours = (now - since) / 3_600_000;
        let reason = format!("every attempt failed for {hours} hours");
        let releases = self.disable_webhook(id, &reason).await?;
        Ok(releases.map(|r| (reason, r)))
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("webhook"));
        }
        Ok(())
    }
}

async fn stand_down(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<Vec<String>> {
    let held = sqlx::query(
        "SELECT id, release_id, log_entry FROM locks WHERE webhook_id = $1 AND status = 'open'",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = $1
         WHERE webhook_id = $2 AND status = 'pending'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let mut releases = Vec::new();
    for row in &held {
        let lock_id: String = row.try_get("id")?;
        let release_id: String = row.try_get("release_id")?;
        sqlx::query(
            "UPDATE locks SET status = 'cancelled', released_at = $1, released_by = 'lockstep',
                 message = $2
             WHERE id = $3 AND status = 'open'",
        )
        .bind(now)
        .bind(format!("webhook {id}: {reason}"))
        .bind(&lock_id)
        .execute(&mut **tx)
        .await?;
        let entry = crate::logs::NewEntry {
            release_id: Some(&release_id),
            parent_id: row.try_get("log_entry")?,
            kind: "lock",
            status: "warning",
            message: format!("webhook {id} {reason}; the gate no longer waits on lock {lock_id}"),
            actor: Some("lockstep"),
        };
        crate::logs::append_in(tx, &entry).await?;
        releases.push(release_id);
    }
    Ok(releases)
}
