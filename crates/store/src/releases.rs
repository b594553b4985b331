//! Releases and their stage transitions.
//!
//! Every transition is a compare-and-set on the stage: it happens only if the release is
//! still where the caller saw it, so two wake-ups racing to move a release move it once.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::deliveries::{insert_delivery, NewDelivery};
use crate::logs::{append_in, NewEntry};
use crate::{flag, Page, Result, Store, StoreError};
use lockstep_core::time::now_ms;
use lockstep_core::{Event, Stage};

#[derive(Debug, Clone)]
pub struct Release {
    pub id: String,
    pub instance_id: String,
    pub tag: String,
    pub zero_downtime: bool,
    pub stage: Stage,
    pub parent_log: i64,
    pub step_index: i64,
    /// The process group of a step started and not yet seen to end.
    pub step_pid: Option<i64>,
    pub failure_reason: Option<String>,
    pub stage_since: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// One delivery at a gate, with its lock, as the gate and the API see it.
#[derive(Debug, Clone)]
pub struct GateItem {
    pub delivery_id: String,
    pub webhook_id: String,
    pub url: String,
    pub locking: bool,
    pub status: String,
    pub attempts: i64,
    pub since: i64,
    pub lock_id: Option<String>,
    pub lock_status: Option<String>,
    pub lock_outcome: Option<String>,
    pub lock_message: Option<String>,
    pub lock_actor: Option<String>,
}

impl GateItem {
    /// Whether the gate still waits on this delivery: a locking one until its lock is
    /// settled, any other until its first attempt has ended.
    pub fn pending(&self) -> bool {
        match &self.lock_status {
            Some(status) => status == "open",
            None => self.attempts == 0 && self.status == "pending",
        }
    }
}

/// How a release ends when it does not close normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Failed,
    Cancelled,
}

const COLUMNS: &str =
    "id, instance_id, tag, zero_downtime, stage, parent_log, step_index, step_pid,
    failure_reason, stage_since, created_by, created_at, updated_at, finished_at";

const ACTIVE: &str = "stage NOT IN ('closed', 'failed', 'cancelled')";

fn from_row(row: &AnyRow) -> Result<Release> {
    let stage: String = row.try_get("stage")?;
    Ok(Release {
        id: row.try_get("id")?,
        instance_id: row.try_get("instance_id")?,
        tag: row.try_get("tag")?,
        zero_downtime: row.try_get::<i64, _>("zero_downtime")? != 0,
        stage: Stage::parse(&stage).unwrap_or(Stage::Failed),
        parent_log: row.try_get("parent_log")?,
        step_index: row.try_get("step_index")?,
        step_pid: row.try_get("step_pid")?,
        failure_reason: row.try_get("failure_reason")?,
        stage_since: row.try_get("stage_since")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// Moves the release from `from` to `to` if it is still at `from`; says whether it moved.
async fn move_stage(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    from: Stage,
    to: Stage,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE releases SET stage = $1, stage_since = $2, updated_at = $2,
             finished_at = CASE WHEN $3 = 1 THEN $2 ELSE finished_at END
         WHERE id = $4 AND stage = $5",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(flag(to.is_terminal()))
    .bind(id)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    /// Queues a release of `tag` to `instance_id`, with its root log entry.
    pub async fn create_release(
        &self,
        id: &str,
        instance_id: &str,
        tag: &str,
        zero_downtime: bool,
        created_by: &str,
    ) -> Result<Release> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM instances WHERE id = $1")
            .bind(instance_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound("instance"));
        }
        let root = NewEntry {
            release_id: Some(id),
            parent_id: None,
            kind: "release",
            status: "info",
            message: format!("release {id} of {tag} to {instance_id} queued"),
            actor: Some(created_by),
        };
        let parent_log = append_in(&mut tx, &root).await?;
        sqlx::query(
            "INSERT INTO releases (id, instance_id, tag, zero_downtime, stage, parent_log,
                 stage_since, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $6, $6)",
        )
        .bind(id)
        .bind(instance_id)
        .bind(tag)
        .bind(flag(zero_downtime))
        .bind(parent_log)
        .bind(now)
        .bind(created_by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.release(id).await
    }

    pub async fn release(&self, id: &str) -> Result<Release> {
        let sql = format!("SELECT {COLUMNS} FROM releases WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        from_row(&row.ok_or(StoreError::NotFound("release"))?)
    }

    /// Releases newest first, optionally of one instance; `before` is the last id seen.
    pub async fn releases(
        &self,
        instance: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Page<Release>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM releases
             WHERE ($1 = '' OR instance_id = $1) AND ($2 = '' OR id < $2)
             ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(instance.unwrap_or(""))
            .bind(before.unwrap_or(""))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, limit, |r| r.id.clone()))
    }

    /// Ids of every release not yet at a terminal stage, oldest first.
    pub async fn active_release_ids(&self) -> Result<Vec<String>> {
        let sql = format!("SELECT id FROM releases WHERE {ACTIVE} ORDER BY parent_log");
        Ok(sqlx::query_scalar(&sql).fetch_all(&self.pool).await?)
    }

    /// The release of `instance_id` that may run now: the oldest one not yet finished.
    pub async fn head_of_queue(&self, instance_id: &str) -> Result<Option<String>> {
        let sql = format!(
            "SELECT id FROM releases WHERE instance_id = $1 AND {ACTIVE}
             ORDER BY parent_log LIMIT 1"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(instance_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Moves a release on to a stage that fires no event, logging the move.
    pub async fn advance(&self, release: &Release, to: Stage, message: String) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        if !move_stage(&mut tx, &release.id, release.stage, to, now).await? {
            return Ok(false);
        }
        let status = if to == Stage::Closed {
            "success"
        } else {
            "info"
        };
        let entry =
            NewEntry::under(&release.id, release.parent_log, "stage", message).status(status);
        append_in(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves a release into an event stage and writes, in the same transaction, the event's
    /// log entry, every delivery and every lock, so nothing is sent before all are stored.
    pub async fn enter_event(
        &self,
        release: &Release,
        to: Stage,
        event: Event,
        deliveries: &[NewDelivery],
        notes: &[String],
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        if !move_stage(&mut tx, &release.id, release.stage, to, now).await? {
            return Ok(false);
        }
        let message = match deliveries.len() {
            0 => format!("{event}: no webhook subscribed"),
            n => format!(
                "{event}: {n} deliver{} created",
                if n == 1 { "y" } else { "ies" }
            ),
        };
        let entry = NewEntry::under(&release.id, release.parent_log, "event", message);
        let event_log = append_in(&mut tx, &entry).await?;
        for note in notes {
            let entry = NewEntry::under(&release.id, event_log, "event", note.clone());
            append_in(&mut tx, &entry.status("warning")).await?;
        }
        for delivery in deliveries {
            insert_delivery(
                &mut tx,
                self.cipher(),
                Some(&release.id),
                event_log,
                delivery,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records the process group of the step now running, or `None` once it has ended.
    pub async fn set_step_pid(&self, id: &str, pid: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE releases SET step_pid = $1 WHERE id = $2")
            .bind(pid)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that the release's next step is `index`.
    pub async fn set_step_index(&self, id: &str, index: i64) -> Result<()> {
        sqlx::query("UPDATE releases SET step_index = $1, updated_at = $2 WHERE id = $3")
            .bind(index)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a release as failed or cancelled, from whatever non-terminal stage it is in:
    /// settles its open locks as cancelled, stops its pending deliveries, logs why and by
    /// whom, and stores the `release_failed` deliveries. Returns `false` if it had ended.
    pub async fn end_release(
        &self,
        id: &str,
        ending: Ending,
        reason: &str,
        actor: &str,
        notices: &[NewDelivery],
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let sql = format!("SELECT {COLUMNS} FROM releases WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await?;
        let release = from_row(&row.ok_or(StoreError::NotFound("release"))?)?;
        if release.stage.is_terminal() {
            return Ok(false);
        }
        let to = match ending {
            Ending::Failed => Stage::Failed,
            Ending::Cancelled => Stage::Cancelled,
        };
        move_stage(&mut tx, id, release.stage, to, now).await?;
        sqlx::query("UPDATE releases SET failure_reason = $1 WHERE id = $2")
            .bind(reason)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE locks SET status = 'cancelled', released_at = $1, released_by = $2,
                 message = $3
             WHERE release_id = $4 AND status = 'open'",
        )
        .bind(now)
        .bind(actor)
        .bind(format!("release {}", to.as_str()))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = $1
             WHERE release_id = $2 AND status = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let message = format!("release {}: {reason}", to.as_str());
        let entry = NewEntry::under(id, release.parent_log, "stage", message)
            .status("error")
            .actor(actor);
        let event_log = append_in(&mut tx, &entry).await?;
        for notice in notices {
            insert_delivery(&mut tx, self.cipher(), Some(id), event_log, notice, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Every delivery of one event of a release, with its lock, for the gate.
    pub async fn gate(&self, release_id: &str, event: Event) -> Result<Vec<GateItem>> {
        let rows = sqlx::query(
            "SELECT d.id, d.webhook_id, d.url, d.locking, d.status, d.attempts,
                    d.created_at,
                    l.id AS lock_id, l.status AS lock_status, l.outcome, l.message,
                    l.released_by
             FROM deliveries d LEFT JOIN locks l ON l.delivery_id = d.id
             WHERE d.release_id = $1 AND d.event = $2
             ORDER BY d.id",
        )
        .bind(release_id)
        .bind(event.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GateItem {
                    delivery_id: row.try_get("id")?,
                    webhook_id: row.try_get("webhook_id")?,
                    url: row.try_get("url")?,
                    locking: row.try_get::<i64, _>("locking")? != 0,
                    status: row.try_get("status")?,
                    attempts: row.try_get("attempts")?,
                    since: row.try_get("created_at")?,
                    lock_id: row.try_get("lock_id")?,
                    lock_status: row.try_get("lock_status")?,
                    lock_outcome: row.try_get("outcome")?,
                    lock_message: row.try_get("message")?,
                    lock_actor: row.try_get("released_by")?,
                })
            })
            .collect()
    }

    /// Counts of releases by stage, for metrics.
    pub async fn release_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT stage, COUNT(*) AS n FROM releases GROUP BY stage")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("stage")?, r.try_get("n")?)))
            .collect()
    }

    /// Takes or keeps ownership of a release for `node`. A node advances only releases it
    /// owns; another takes one over only once its owner's heartbeat has run out. Keeping a
    /// release already owned writes nothing.
    pub async fn own_release(&self, id: &str, node: &str, now: i64) -> Result<bool> {
        let owner: Option<Option<String>> =
            sqlx::query_scalar("SELECT owner FROM releases WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        if owner.flatten().as_deref() == Some(node) {
            return Ok(true);
        }
        let done = sqlx::query(
            "UPDATE releases SET owner = $1
             WHERE id = $2 AND (owner IS NULL OR owner = $1 OR NOT EXISTS (
                 SELECT 1 FROM nodes WHERE nodes.id = releases.owner
                     AND nodes.heartbeat_until >= $3))",
        )
        .bind(node)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Renews `node`'s lease on every release it owns, with one write whatever their number.
    pub async fn heartbeat(&self, node: &str, until: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (id, heartbeat_until) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET heartbeat_until = $2",
        )
        .bind(node)
        .bind(until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Unfinished releases whose owner's heartbeat ran out: their node is gone. Nodes gone
    /// and owning nothing are forgotten, so a look costs nothing while every node is alive.
    pub async fn orphaned_releases(&self, now: i64) -> Result<Vec<String>> {
        let forget = format!(
            "DELETE FROM nodes WHERE heartbeat_until < $1 AND NOT EXISTS (
                 SELECT 1 FROM releases WHERE releases.owner = nodes.id AND {ACTIVE})"
        );
        sqlx::query(&forget).bind(now).execute(&self.pool).await?;
        let gone: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM nodes WHERE heartbeat_until < $1")
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        if gone == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT r.id FROM releases r JOIN nodes n ON n.id = r.owner
             WHERE n.heartbeat_until < $1 AND r.{ACTIVE}
             ORDER BY r.parent_log"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(now)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Frees ownership left by an earlier run: all of it on SQLite, which one process owns,
    /// and on PostgreSQL that of `node`, whose id names this process's earlier life.
    pub async fn release_stale_ownership(&self, node: &str) -> Result<u64> {
        let all = self.backend == crate::Backend::Sqlite;
        let done = sqlx::query(
            "UPDATE releases SET owner = NULL
             WHERE owner IS NOT NULL AND ($1 = 1 OR owner = $2)",
        )
        .bind(flag(all))
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
