//! API tokens: scoped, stored hashed, shown once.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Page, Result, Store, StoreError};
use lockstep_core::time::now_ms;

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, name, scopes, created_at, last_used_at, revoked_at";

fn from_row(row: &AnyRow) -> Result<ApiToken> {
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scopes: scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    pub async fn create_token(
        &self,
        id: &str,
        name: &str,
        token_hash: &str,
        scopes: &[String],
    ) -> Result<ApiToken> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, scopes, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(name)
        .bind(token_hash)
        .bind(scopes.join(","))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.token(id).await
    }

    pub async fn token(&self, id: &str) -> Result<ApiToken> {
        let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        from_row(&row.ok_or(StoreError::NotFound("token"))?)
    }

    /// The live token with this hash, marking it used. The lookup is by hash, so no stored
    /// secret is compared byte by byte.
    pub async fn authenticate(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let token = from_row(&row)?;
        let now = now_ms();
        // Last use is kept to the minute, so a busy token does not write on every call.
        if token.last_used_at.is_none_or(|at| now - at > 60_000) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&token.id)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(token))
    }

    pub async fn tokens(&self, after: Option<&str>, limit: i64) -> Result<Page<ApiToken>> {
        let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(""))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, limit, |t| t.id.clone()))
    }

    /// Revokes a token, unless it is the last live admin token: without one, nobody could
    /// ever manage tokens again.
    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        let token = self.token(id).await?;
        let is_admin = token.scopes.iter().any(|s| s == "admin");
        if is_admin && token.revoked_at.is_none() && self.live_admin_count().await? <= 1 {
            return Err(StoreError::Conflict(
                "this is the last admin token; create another admin token before revoking it"
                    .into(),
            ));
        }
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            self.token(id).await?;
        }
        Ok(())
    }

    async fn live_admin_count(&self) -> Result<i64> {
        let rows = sqlx::query("SELECT scopes FROM api_tokens WHERE revoked_at IS NULL")
            .fetch_all(&self.pool)
            .await?;
        let mut count = 0;
        for row in &rows {
            let scopes: String = row.try_get("scopes")?;
            count += i64::from(scopes.split(',').any(|s| s == "admin"));
        }
        Ok(count)
    }

    /// How many tokens exist at all; zero means a fresh database that needs an admin token.
    pub async fn token_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(&self.pool)
            .await?)
    }
}
