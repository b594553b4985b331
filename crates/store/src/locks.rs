//! Locks and their settlement.
//!
//! A lock settles once. The settling `UPDATE … WHERE status = 'open'` lets exactly one of
//! any number of racing calls win; the others read back the settled lock and are answered
//! as the first was, or with a conflict if they asked for another outcome.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::logs::{append_in, NewEntry};
use crate::{Page, Result, Store, StoreError};
use lockstep_core::time::now_ms;

#[derive(Debug, Clone)]
pub struct Lock {
    pub id: String,
    pub release_id: String,
    pub delivery_id: String,
    pub event: String,
    pub status: String,
    pub outcome: Option<String>,
    pub message: Option<String>,
    pub released_by: Option<String>,
    pub released_at: Option<i64>,
    pub log_entry: Option<i64>,
    pub webhook_id: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

/// Whether a settle call changed the lock or found it settled the same way already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Now,
    Already,
}

/// Which lock to settle: by the receiver's token (hashed) or by the operator's public id.
#[derive(Debug, Clone, Copy)]
pub enum LockKey<'a> {
    TokenHash(&'a str),
    Id(&'a str),
}

const COLUMNS: &str = "id, release_id, delivery_id, event, status, outcome, message,
    released_by, released_at, log_entry, webhook_id, expires_at, created_at";

fn from_row(row: &AnyRow) -> Result<Lock> {
    Ok(Lock {
        id: row.try_get("id")?,
        release_id: row.try_get("release_id")?,
        delivery_id: row.try_get("delivery_id")?,
        event: row.try_get("event")?,
        status: row.try_get("status")?,
        outcome: row.try_get("outcome")?,
        message: row.try_get("message")?,
        released_by: row.try_get("released_by")?,
        released_at: row.try_get("released_at")?,
        log_entry: row.try_get("log_entry")?,
        webhook_id: row.try_get("webhook_id")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    async fn find_lock(&self, key: LockKey<'_>) -> Result<Lock> {
        let (column, value) = match key {
            LockKey::TokenHash(hash) => ("token_hash", hash),
            LockKey::Id(id) => ("id", id),
        };
        let sql = format!("SELECT {COLUMNS} FROM locks WHERE {column} = $1");
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        from_row(&row.ok_or(StoreError::NotFound("lock"))?)
    }

    /// Settles a lock with `outcome` (`continue` or `abort`), logging who did it and why.
    pub async fn settle_lock(
        &self,
        key: LockKey<'_>,
        outcome: &str,
        message: &str,
        actor: &str,
    ) -> Result<(Lock, Settled)> {
        let lock = self.find_lock(key).await?;
        if lock.status == "open" {
            let now = now_ms();
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(
                "UPDATE locks SET status = 'released', outcome = $1, message = $2,
                     released_by = $3, released_at = $4
                 WHERE id = $5 AND status = 'open'",
            )
            .bind(outcome)
            .bind(message)
            .bind(actor)
            .bind(now)
            .bind(&lock.id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                let text = match message {
                    "" => format!("lock {} released: {outcome}", lock.id),
                    _ => format!("lock {} released: {outcome}: {message}", lock.id),
                };
                let status = if outcome == "abort" {
                    "error"
                } else {
                    "success"
                };
                let entry = NewEntry {
                    release_id: Some(&lock.release_id),
                    parent_id: lock.log_entry,
                    kind: "lock",
                    status,
                    message: text,
                    actor: Some(actor),
                };
                append_in(&mut tx, &entry).await?;
                tx.commit().await?;
                return Ok((self.lock(&lock.id).await?, Settled::Now));
            }
        }
        let lock = self.lock(&lock.id).await?;
        match (lock.status.as_str(), lock.outcome.as_deref()) {
            ("released", Some(settled)) if settled == outcome => Ok((lock, Settled::Already)),
            ("released", Some(settled)) => Err(StoreError::Conflict(format!(
                "lock was already released with outcome {settled:?}"
            ))),
            ("expired", settled) => Err(StoreError::Conflict(format!(
                "lock expired at {} and its default outcome {:?} was applied",
                lockstep_core::time::rfc3339(
                    lock.expires_at.or(lock.released_at).unwrap_or_default()
                ),
                settled.unwrap_or("continue")
            ))),
            _ => Err(StoreError::Conflict(
                "lock no longer holds anything: its release has ended".into(),
            )),
        }
    }

    pub async fn lock(&self, id: &str) -> Result<Lock> {
        self.find_lock(LockKey::Id(id)).await
    }

    /// Locks, newest first, optionally only those with `status`.
    pub async fn locks(
        &self,
        status: Option<&str>,
        release: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Page<Lock>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM locks
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR release_id = $2)
               AND ($3 = '' OR id < $3)
             ORDER BY id DESC LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(status.unwrap_or(""))
            .bind(release.unwrap_or(""))
            .bind(before.unwrap_or(""))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, limit, |l| l.id.clone()))
    }

    pub async fn open_lock_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM locks WHERE status = 'open'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Settles every open lock whose time ran out with its webhook's default outcome, logging
    /// each, and returns them.
    pub async fn expire_due_locks(&self, now: i64) -> Result<Vec<Lock>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM locks
             WHERE status = 'open' AND expires_at IS NOT NULL AND expires_at <= $1"
        );
        let due = sqlx::query(&sql).bind(now).fetch_all(&self.pool).await?;
        let mut expired = Vec::new();
        for row in &due {
            let lock = from_row(row)?;
            let outcome = self.default_outcome(lock.webhook_id.as_deref()).await?;
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(
                "UPDATE locks SET status = 'expired', outcome = $1, released_by = 'lockstep',
                     released_at = $2, message = 'lock expired'
                 WHERE id = $3 AND status = 'open' AND expires_at <= $2",
            )
            .bind(&outcome)
            .bind(now)
            .bind(&lock.id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                continue;
            }
            let status = if outcome == "abort" {
                "error"
            } else {
                "warning"
            };
            let entry = NewEntry {
                release_id: Some(&lock.release_id),
                parent_id: lock.log_entry,
                kind: "lock",
                status,
                message: format!(
                    "lock {} expired; default outcome {outcome} applied",
                    lock.id
                ),
                actor: Some("lockstep"),
            };
            append_in(&mut tx, &entry).await?;
            tx.commit().await?;
            expired.push(self.lock(&lock.id).await?);
        }
        Ok(expired)
    }

    async fn default_outcome(&self, webhook_id: Option<&str>) -> Result<String> {
        let outcome: Option<Option<String>> =
            sqlx::query_scalar("SELECT lock_default_outcome FROM webhooks WHERE id = $1")
                .bind(webhook_id.unwrap_or(""))
                .fetch_optional(&self.pool)
                .await?;
        Ok(outcome.flatten().unwrap_or_else(|| "continue".into()))
    }

    /// When the next open lock expires, for the expiry timer.
    pub async fn next_lock_expiry(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(expires_at) FROM locks WHERE status = 'open' AND expires_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Moves an open lock's expiry to `seconds` from now, for the receiver holding it.
    pub async fn extend_lock(&self, token_hash: &str, seconds: i64, actor: &str) -> Result<Lock> {
        let lock = self.find_lock(LockKey::TokenHash(token_hash)).await?;
        if lock.status != "open" {
            return Err(StoreError::Conflict(format!(
                "lock is {}, not open",
                lock.status
            )));
        }
        if lock.expires_at.is_none() {
            return Err(StoreError::Conflict(
                "lock has no expiry: it waits until it is released".into(),
            ));
        }
        let now = now_ms();
        let until = now + seconds * 1000;
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE locks SET expires_at = $1 WHERE id = $2 AND status = 'open'")
                .bind(until)
                .bind(&lock.id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("lock was settled meanwhile".into()));
        }
        let entry = NewEntry {
            release_id: Some(&lock.release_id),
            parent_id: lock.log_entry,
            kind: "lock",
            status: "info",
            message: format!("lock {} now expires {seconds}s from now", lock.id),
            actor: Some(actor),
        };
        append_in(&mut tx, &entry).await?;
        tx.commit().await?;
        self.lock(&lock.id).await
    }
}
