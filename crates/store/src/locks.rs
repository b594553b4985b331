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
    released_by, released_at, log_entry, created_at";

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
}
