//! Webhooks: who is told of which events, and whether they hold the release.

use sqlx::any::AnyRow;
use sqlx::Row;

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
}

const COLUMNS: &str = "id, url, secret, events, instances, enabled, disabled_reason, disabled_at,
    timeout_seconds, retry_schedule, description, created_at, updated_at";

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

fn from_row(row: &AnyRow) -> Result<Webhook> {
    let events: String = row.try_get("events")?;
    let instances: Option<String> = row.try_get("instances")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        events: events_from_json(&events),
        instances: instances.and_then(|t| serde_json::from_str(&t).ok()),
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        disabled_reason: row.try_get("disabled_reason")?,
        disabled_at: row.try_get("disabled_at")?,
        timeout_seconds: row.try_get("timeout_seconds")?,
        retry_schedule: row.try_get("retry_schedule")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn create_webhook(&self, id: &str, fields: &WebhookFields) -> Result<Webhook> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO webhooks (id, url, secret, events, instances, enabled, timeout_seconds,
                 retry_schedule, description, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(id)
        .bind(&fields.url)
        .bind(fields.secret.clone().flatten())
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
        from_row(&row.ok_or(StoreError::NotFound("webhook"))?)
    }

    pub async fn webhooks(&self, after: Option<&str>, limit: i64) -> Result<Page<Webhook>> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(""))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, limit, |w| w.id.clone()))
    }

    /// Every enabled webhook; the caller matches events and instances.
    pub async fn enabled_webhooks(&self) -> Result<Vec<Webhook>> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE enabled = 1 ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
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
                 retry_schedule = $9, description = $10, updated_at = $11
             WHERE id = $12",
        )
        .bind(&fields.url)
        .bind(secret)
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
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.webhook(id).await
    }

    /// Turns a webhook off with the reason, so no new delivery goes to it.
    pub async fn disable_webhook(&self, id: &str, reason: &str) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE webhooks SET enabled = 0, disabled_reason = $1, disabled_at = $2,
                 updated_at = $2
             WHERE id = $3 AND enabled = 1",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
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
