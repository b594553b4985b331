//! Deliveries, their attempts, and the claims that let one node at a time send each.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::cipher::{open_bytes, seal_bytes, Cipher};
use crate::logs::{append_in, NewEntry};
use crate::{flag, Backend, Page, Result, Store, StoreError};
use lockstep_core::time::now_ms;
use lockstep_core::Event;

/// A delivery to store, with its lock when it is a locking one.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub webhook_id: String,
    pub event: Event,
    pub body: Vec<u8>,
    pub url: String,
    pub timeout_seconds: i64,
    pub lock: Option<NewLock>,
}

#[derive(Debug, Clone)]
pub struct NewLock {
    pub id: String,
    pub token_hash: String,
    /// How long the lock may hold the release before its default outcome applies.
    pub timeout_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub release_id: Option<String>,
    pub webhook_id: String,
    pub event: String,
    pub locking: bool,
    pub body: Vec<u8>,
    pub url: String,
    pub timeout_seconds: i64,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub log_entry: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub number: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub location: Option<String>,
    pub response_body: Option<String>,
    pub response_truncated: bool,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter<'a> {
    pub status: Option<&'a str>,
    pub webhook: Option<&'a str>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// The last id of the previous page.
    pub before: Option<&'a str>,
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Succeeded,
    /// Failed; try again at this time.
    RetryAt(i64),
    /// Failed with no attempt left, or in a way retrying cannot fix.
    Failed,
}

const COLUMNS: &str = "id, release_id, webhook_id, event, locking, body, url, timeout_seconds,
    status, attempts, next_attempt_at, log_entry, created_at, updated_at";

fn from_row(row: &AnyRow, cipher: Option<&Cipher>) -> Result<Delivery> {
    Ok(Delivery {
        id: row.try_get("id")?,
        release_id: row.try_get("release_id")?,
        webhook_id: row.try_get("webhook_id")?,
        event: row.try_get("event")?,
        locking: row.try_get::<i64, _>("locking")? != 0,
        body: open_bytes(cipher, row.try_get("body")?)?,
        url: row.try_get("url")?,
        timeout_seconds: row.try_get("timeout_seconds")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        log_entry: row.try_get("log_entry")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn attempt_from_row(row: &AnyRow) -> Result<Attempt> {
    Ok(Attempt {
        number: row.try_get("number")?,
        started_at: row.try_get("started_at")?,
        duration_ms: row.try_get("duration_ms")?,
        status_code: row.try_get("status_code")?,
        error_kind: row.try_get("error_kind")?,
        error: row.try_get("error")?,
        location: row.try_get("location")?,
        response_body: row.try_get("response_body")?,
        response_truncated: row.try_get::<i64, _>("response_truncated")? != 0,
    })
}

/// Stores a delivery (and its lock) due now, with their log entries under `parent_log`.
pub(crate) async fn insert_delivery(
    tx: &mut Transaction<'_, Any>,
    cipher: Option<&Cipher>,
    release_id: Option<&str>,
    parent_log: i64,
    delivery: &NewDelivery,
    now: i64,
) -> Result<()> {
    let release = release_id.unwrap_or("");
    let kind = if delivery.lock.is_some() {
        "locking delivery"
    } else {
        "delivery"
    };
    let message = format!("{kind} {} to {}", delivery.id, delivery.url);
    let entry = NewEntry {
        release_id,
        parent_id: Some(parent_log),
        kind: "delivery",
        status: "info",
        message,
        actor: None,
    };
    let log_entry = append_in(tx, &entry).await?;
    sqlx::query(
        "INSERT INTO deliveries (id, release_id, webhook_id, event, locking, body, url,
             timeout_seconds, status, next_attempt_at, log_entry, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $9, $9)",
    )
    .bind(&delivery.id)
    .bind(release_id)
    .bind(&delivery.webhook_id)
    .bind(delivery.event.as_str())
    .bind(flag(delivery.lock.is_some()))
    .bind(seal_bytes(cipher, &delivery.body))
    .bind(&delivery.url)
    .bind(delivery.timeout_seconds)
    .bind(now)
    .bind(log_entry)
    .execute(&mut **tx)
    .await?;
    if let Some(lock) = &delivery.lock {
        let entry = NewEntry {
            release_id,
            parent_id: Some(log_entry),
            kind: "lock",
            status: "info",
            message: format!("lock {} created; the release waits for it", lock.id),
            actor: None,
        };
        let lock_log = append_in(tx, &entry).await?;
        sqlx::query(
            "INSERT INTO locks (id, token_hash, release_id, delivery_id, event, status, log_entry,
                 created_at, webhook_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9)",
        )
        .bind(&lock.id)
        .bind(&lock.token_hash)
        .bind(release)
        .bind(&delivery.id)
        .bind(delivery.event.as_str())
        .bind(lock_log)
        .bind(now)
        .bind(&delivery.webhook_id)
        .bind(lock.timeout_ms.map(|ms| now + ms))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Claims up to `limit` deliveries that are due, for `node`. Each claim lasts the
    /// delivery's own deadline plus `margin_ms`, so it never ends while its attempt runs.
    /// A claim whose lease ran out (its node died) is taken over like an unclaimed one.
    pub async fn claim_due(
        &self,
        node: &str,
        now: i64,
        limit: i64,
        margin_ms: i64,
    ) -> Result<Vec<Delivery>> {
        let skip_locked = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE deliveries SET claimed_by = $1, claim_until = $2 + timeout_seconds * 1000
             WHERE id IN (
                 SELECT id FROM deliveries
                 WHERE status = 'pending' AND next_attempt_at <= $3
                   AND (claim_until IS NULL OR claim_until < $3)
                 ORDER BY next_attempt_at LIMIT $4 {skip_locked}
             )
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(node)
            .bind(now + margin_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| from_row(r, self.cipher())).collect()
    }

    /// When the dispatcher next has something to do: the earliest due time or lease end.
    pub async fn next_due_at(&self) -> Result<Option<i64>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN claim_until IS NULL OR claim_until < next_attempt_at
                             THEN next_attempt_at ELSE claim_until END)
             FROM deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next)
    }

    /// Frees claims left by an earlier run: all of them on SQLite, which one process owns,
    /// and on PostgreSQL those of `node`, whose id names this process's earlier life.
    pub async fn release_stale_claims(&self, node: &str) -> Result<u64> {
        let all = self.backend == Backend::Sqlite;
        let done = sqlx::query(
            "UPDATE deliveries SET claimed_by = NULL, claim_until = NULL
             WHERE status = 'pending' AND claimed_by IS NOT NULL AND ($1 = 1 OR claimed_by = $2)",
        )
        .bind(flag(all))
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Stores an attempt and what it means for its delivery, and logs it, in one transaction.
    pub async fn record_attempt(
        &self,
        delivery: &Delivery,
        attempt: &Attempt,
        after: AfterAttempt,
        summary: String,
    ) -> Result<()> {
        let now = now_ms();
        let (status, next) = match after {
            AfterAttempt::Succeeded => ("succeeded", None),
            AfterAttempt::RetryAt(at) => ("pending", Some(at)),
            AfterAttempt::Failed => ("failed", None),
        };
        let mut tx = self.pool.begin().await?;
        let number: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE delivery_id = $1",
        )
        .bind(&delivery.id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code,
                 error_kind, error, location, response_body, response_truncated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&delivery.id)
        .bind(number)
        .bind(attempt.started_at)
        .bind(attempt.duration_ms)
        .bind(attempt.status_code)
        .bind(attempt.error_kind.clone())
        .bind(attempt.error.clone())
        .bind(attempt.location.clone())
        .bind(attempt.response_body.clone())
        .bind(flag(attempt.response_truncated))
        .execute(&mut *tx)
        .await?;
        // A delivery cancelled while its attempt was in flight stays cancelled; one whose
        // redelivery was asked for meanwhile (its due time moved past the one claimed) keeps
        // that request.
        sqlx::query(
            "UPDATE deliveries SET attempts = $1,
                 status = CASE WHEN status = 'cancelled' THEN status
                               WHEN next_attempt_at > $6 THEN 'pending' ELSE $2 END,
                 next_attempt_at = CASE WHEN status <> 'cancelled' AND next_attempt_at > $6
                                        THEN next_attempt_at ELSE $3 END,
                 claimed_by = NULL, claim_until = NULL, updated_at = $4
             WHERE id = $5",
        )
        .bind(number)
        .bind(status)
        .bind(next)
        .bind(now)
        .bind(&delivery.id)
        .bind(delivery.next_attempt_at.unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        let entry = NewEntry {
            release_id: delivery.release_id.as_deref(),
            parent_id: delivery.log_entry,
            kind: "attempt",
            status: if after == AfterAttempt::Succeeded {
                "success"
            } else {
                "error"
            },
            message: summary,
            actor: None,
        };
        if delivery.log_entry.is_some() {
            append_in(&mut tx, &entry).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delivery(&self, id: &str) -> Result<Delivery> {
        let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        from_row(&row.ok_or(StoreError::NotFound("delivery"))?, self.cipher())
    }

    pub async fn release_deliveries(&self, release_id: &str) -> Result<Vec<Delivery>> {
        let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE release_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(release_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| from_row(r, self.cipher())).collect()
    }

    pub async fn attempts(&self, delivery_id: &str) -> Result<Vec<Attempt>> {
        let rows = sqlx::query(
            "SELECT number, started_at, duration_ms, status_code, error_kind, error, location,
                    response_body, response_truncated
             FROM attempts WHERE delivery_id = $1 ORDER BY number",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    /// Makes a delivery due again now: a new attempt with the same id and bytes.
    pub async fn redeliver(&self, id: &str, actor: &str) -> Result<Delivery> {
        let delivery = self.delivery(id).await?;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if delivery.log_entry.is_some() {
            let entry = NewEntry {
                release_id: delivery.release_id.as_deref(),
                parent_id: delivery.log_entry,
                kind: "operator",
                status: "info",
                message: format!("redelivery of {id} requested"),
                actor: Some(actor),
            };
            append_in(&mut tx, &entry).await?;
        }
        tx.commit().await?;
        self.delivery(id).await
    }

    /// Deliveries newest first, filtered by status, webhook and creation time.
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter<'_>,
        limit: i64,
    ) -> Result<Page<Delivery>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deliveries
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR webhook_id = $2)
               AND created_at >= $3 AND created_at < $4 AND ($5 = '' OR id < $5)
             ORDER BY id DESC LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(filter.status.unwrap_or(""))
            .bind(filter.webhook.unwrap_or(""))
            .bind(filter.since.unwrap_or(0))
            .bind(filter.until.unwrap_or(i64::MAX))
            .bind(filter.before.unwrap_or(""))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(|r| from_row(r, self.cipher()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, limit, |d| d.id.clone()))
    }

    /// Counts of deliveries by status, for metrics.
    pub async fn delivery_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }
}
