//! The action log: a tree of entries per release, written by Lockstep and by receivers.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Result, Store, StoreError};
use lockstep_core::time::now_ms;

/// The longest message kept in one entry; longer ones are cut and marked.
pub const MAX_MESSAGE: usize = 4096;
/// How many entries one release's log may hold; appends past it are refused.
pub const MAX_ENTRIES_PER_RELEASE: i64 = 50_000;

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub id: i64,
    pub release_id: Option<String>,
    pub parent_id: Option<i64>,
    pub kind: String,
    pub status: String,
    pub message: String,
    pub actor: Option<String>,
    pub created_at: i64,
}

/// An entry to write: what kind of thing happened, how it went, and who did it.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub release_id: Option<&'a str>,
    pub parent_id: Option<i64>,
    pub kind: &'a str,
    pub status: &'a str,
    pub message: String,
    pub actor: Option<&'a str>,
}

impl<'a> NewEntry<'a> {
    pub fn under(release_id: &'a str, parent_id: i64, kind: &'a str, message: String) -> Self {
        NewEntry {
            release_id: Some(release_id),
            parent_id: Some(parent_id),
            kind,
            status: "info",
            message,
            actor: None,
        }
    }

    pub fn status(mut self, status: &'a str) -> Self {
        self.status = status;
        self
    }

    pub fn actor(mut self, actor: &'a str) -> Self {
        self.actor = Some(actor);
        self
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn from_row(row: &AnyRow) -> Result<LogEntry> {
    Ok(LogEntry {
        id: row.try_get("id")?,
        release_id: row.try_get("release_id")?,
        parent_id: row.try_get("parent_id")?,
        kind: row.try_get("kind")?,
        status: row.try_get("status")?,
        message: row.try_get("message")?,
        actor: row.try_get("actor")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Writes one entry inside the caller's transaction and returns its id.
pub(crate) async fn append_in(tx: &mut Transaction<'_, Any>, entry: &NewEntry<'_>) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO log_entries (release_id, parent_id, kind, status, message, actor, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(entry.release_id)
    .bind(entry.parent_id)
    .bind(entry.kind)
    .bind(entry.status)
    .bind(cap(&entry.message, MAX_MESSAGE))
    .bind(entry.actor)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

impl Store {
    pub async fn append_log(&self, entry: &NewEntry<'_>) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id = append_in(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Appends a receiver's entry under `parent_id`, within the release's cap.
    pub async fn append_receiver_log(
        &self,
        parent_id: i64,
        status: &str,
        message: &str,
        actor: &str,
    ) -> Result<LogEntry> {
        let mut tx = self.pool.begin().await?;
        let release_id: Option<Option<String>> =
            sqlx::query_scalar("SELECT release_id FROM log_entries WHERE id = $1")
                .bind(parent_id)
                .fetch_optional(&mut *tx)
                .await?;
        let release_id = release_id.ok_or(StoreError::NotFound("log entry"))?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM log_entries WHERE release_id = $1")
                .bind(&release_id)
                .fetch_one(&mut *tx)
                .await?;
        if count >= MAX_ENTRIES_PER_RELEASE {
            return Err(StoreError::Conflict(format!(
                "this release's log is full ({MAX_ENTRIES_PER_RELEASE} entries)"
            )));
        }
        let entry = NewEntry {
            release_id: release_id.as_deref(),
            parent_id: Some(parent_id),
            kind: "receiver",
            status,
            message: message.to_owned(),
            actor: Some(actor),
        };
        let id = append_in(&mut tx, &entry).await?;
        tx.commit().await?;
        self.log_entry(id).await
    }

    pub async fn log_entry(&self, id: i64) -> Result<LogEntry> {
        let row = sqlx::query(
            "SELECT id, release_id, parent_id, kind, status, message, actor, created_at
             FROM log_entries WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        from_row(&row.ok_or(StoreError::NotFound("log entry"))?)
    }

    /// A release's entries written after entry `after`, in order, at most `limit` of them.
    /// Every entry of a release's log carries its id, so this needs no walk of the tree.
    pub async fn release_log_after(
        &self,
        release_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogEntry>> {
        let rows = sqlx::query(
            "SELECT id, release_id, parent_id, kind, status, message, actor, created_at
             FROM log_entries WHERE release_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(release_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The entry `id` and everything under it, in the order it was written.
    pub async fn log_subtree(&self, id: i64) -> Result<Vec<LogEntry>> {
        let rows = sqlx::query(
            "WITH RECURSIVE subtree (id) AS (
                 SELECT id FROM log_entries WHERE id = $1
                 UNION ALL
                 SELECT e.id FROM log_entries e JOIN subtree s ON e.parent_id = s.id
             )
             SELECT e.id, e.release_id, e.parent_id, e.kind, e.status, e.message, e.actor,
                    e.created_at
             FROM log_entries e JOIN subtree s ON e.id = s.id
             ORDER BY e.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound("log entry"));
        }
        rows.iter().map(from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::cap;

    #[test]
    fn cap_cuts_on_a_character_boundary() {
        assert_eq!(cap("short", 10), "short");
        assert_eq!(cap("abcdefghij", 8), "abcde...");
        let cut = cap("ééééé", 6);
        assert!(cut.len() <= 6 && cut.ends_with("..."));
    }
}
