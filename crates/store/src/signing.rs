//! Webhook signing keys: generated on first use, sealed at rest, rotated with an overlap.

use sqlx::Row;

use crate::cipher::{open_text, seal_text};
use crate::{Result, Store, StoreError};
use lockstep_core::signature::generate_key;
use lockstep_core::time::now_ms;

/// A webhook's keys: the current one, and the one it replaced while that still signs.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub current: String,
    pub previous: Option<String>,
    pub previous_until: Option<i64>,
}

impl SigningKeys {
    /// The keys that sign a request sent at `now`: the current one, and the previous one
    /// until its overlap ends.
    pub fn signing_at(&self, now: i64) -> Vec<&str> {
        let mut keys = vec![self.current.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous, self.previous_until) {
            if now < until {
                keys.push(previous);
            }
        }
        keys
    }
}

impl Store {
    /// The webhook's signing keys, creating its first key if it has none yet.
    pub async fn signing_keys(&self, webhook_id: &str) -> Result<SigningKeys> {
        match self.stored_keys(webhook_id).await? {
            Some(keys) => Ok(keys),
            None => self.rotate_signing_key(webhook_id, 0).await,
        }
    }

    async fn stored_keys(&self, webhook_id: &str) -> Result<Option<SigningKeys>> {
        let row = sqlx::query(
            "SELECT signing_key, previous_signing_key, previous_key_until
             FROM webhooks WHERE id = $1",
        )
        .bind(webhook_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("webhook"))?;
        let current: Option<String> = row.try_get("signing_key")?;
        let Some(current) = current else {
            return Ok(None);
        };
        let previous: Option<String> = row.try_get("previous_signing_key")?;
        Ok(Some(SigningKeys {
            current: open_text(self.cipher(), current)?,
            previous: previous.map(|p| open_text(self.cipher(), p)).transpose()?,
            previous_until: row.try_get("previous_key_until")?,
        }))
    }

    /// Replaces the signing key; the old one keeps signing for `overlap_ms`.
    pub async fn rotate_signing_key(
        &self,
        webhook_id: &str,
        overlap_ms: i64,
    ) -> Result<SigningKeys> {
        let now = now_ms();
        let fresh = generate_key();
        let done = sqlx::query(
            "UPDATE webhooks SET previous_signing_key = signing_key,
                 previous_key_until = CASE WHEN signing_key IS NULL THEN NULL ELSE $1 END,
                 signing_key = $2, updated_at = $3
             WHERE id = $4",
        )
        .bind(now + overlap_ms)
        .bind(seal_text(self.cipher(), &fresh))
        .bind(now)
        .bind(webhook_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("webhook"));
        }
        let keys = self.stored_keys(webhook_id).await?;
        keys.ok_or(StoreError::NotFound("webhook"))
    }
}
