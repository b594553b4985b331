//! Instances: the environments releases deploy to, with their steps.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Page, Result, Store, StoreError};
use lockstep_core::time::now_ms;

/// One command of a release's core phase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepDef {
    pub name: String,
    pub run: String,
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub url: String,
    pub attributes: Value,
    pub steps: Vec<StepDef>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Instance {
    /// The instance as a payload carries it. Steps stay out: they are Lockstep's own
    /// commands, not something receivers need or should see.
    pub fn payload_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "attributes": self.attributes,
        })
    }
}

/// The fields of an instance that a create or an update sets.
#[derive(Debug, Clone)]
pub struct InstanceFields {
    pub name: String,
    pub url: String,
    pub attributes: Value,
    pub steps: Vec<StepDef>,
}

fn from_row(row: &AnyRow) -> Result<Instance> {
    let attributes: String = row.try_get("attributes")?;
    let steps: String = row.try_get("steps")?;
    Ok(Instance {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        attributes: serde_json::from_str(&attributes).unwrap_or(Value::Null),
        steps: serde_json::from_str(&steps).unwrap_or_default(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "id, name, url, attributes, steps, created_at, updated_at";

impl Store {
    pub async fn create_instance(&self, id: &str, fields: &InstanceFields) -> Result<Instance> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO instances (id, name, url, attributes, steps, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id)
        .bind(&fields.name)
        .bind(&fields.url)
        .bind(fields.attributes.to_string())
        .bind(steps_json(&fields.steps))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("instance {id:?} already exists"))
            }
            other => other,
        })?;
        self.instance(id).await
    }

    pub async fn instance(&self, id: &str) -> Result<Instance> {
        let sql = format!("SELECT {COLUMNS} FROM instances WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        from_row(&row.ok_or(StoreError::NotFound("instance"))?)
    }

    pub async fn instances(&self, after: Option<&str>, limit: i64) -> Result<Page<Instance>> {
        let sql = format!("SELECT {COLUMNS} FROM instances WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(""))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, limit, |i| i.id.clone()))
    }

    pub async fn update_instance(&self, id: &str, fields: &InstanceFields) -> Result<Instance> {
        let done = sqlx::query(
            "UPDATE instances SET name = $1, url = $2, attributes = $3, steps = $4,
             updated_at = $5 WHERE id = $6",
        )
        .bind(&fields.name)
        .bind(&fields.url)
        .bind(fields.attributes.to_string())
        .bind(steps_json(&fields.steps))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("instance"));
        }
        self.instance(id).await
    }

    /// Deletes an instance unless a release of it is still under way.
    pub async fn delete_instance(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM releases
             WHERE instance_id = $1 AND stage NOT IN ('closed', 'failed', 'cancelled')",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if active > 0 {
            return Err(StoreError::Conflict(format!(
                "instance {id:?} has {active} release(s) under way; cancel them first"
            )));
        }
        let done = sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("instance"));
        }
        tx.commit().await?;
        Ok(())
    }
}

fn steps_json(steps: &[StepDef]) -> String {
    serde_json::to_string(steps).unwrap_or_else(|_| "[]".into())
}
