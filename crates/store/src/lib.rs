//! Lockstep's storage: one interface over SQLite (the embedded default) and PostgreSQL.
//!
//! Both backends run the same SQL through sqlx's `Any` driver; the few statements whose
//! dialects differ branch on [`Backend`]. Every method that changes more than one row does
//! so in one transaction, so a crash leaves either all of a transition or none of it.
//!
//! - [`instances`], [`webhooks`], [`tokens`]: what operators configure.
//! - [`releases`]: releases and their stage transitions.
//! - [`deliveries`]: deliveries, their attempts and the claims that share them out.
//! - [`locks`]: locks and their settlement.
//! - [`logs`]: the action log.
//! - [`signing`]: webhook signing keys.
//! - [`cipher`]: secrets sealed at rest.

pub mod cipher;
pub mod deliveries;
pub mod instances;
pub mod locks;
pub mod logs;
pub mod releases;
pub mod signing;
pub mod tokens;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

pub use lockstep_core::Invalid;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named resource does not exist (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change clashes with what is stored, such as a duplicate id (409).
    #[error("{0}")]
    Conflict(String),
    /// The input breaks a rule only the stored state can tell (422).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The database failed; details are for the log, never for the client (500).
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A sealed value could not be opened: no key, or the wrong one (500).
    #[error("encrypted data: {0}")]
    Sealed(&'static str),
    /// Migrations could not be applied at start.
    #[error("could not migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    /// The one place where constraint violations become conflicts.
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return StoreError::Conflict("a resource with that id already exists".into());
            }
            // PostgreSQL refuses text it cannot store (a NUL character), as a client error.
            if db.code().as_deref() == Some("22021") {
                return StoreError::Invalid(Invalid::new(
                    "text",
                    "must not contain the NUL character",
                ));
            }
        }
        StoreError::Database(err)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A page of a list, ordered by id, with the cursor for the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says there is more.
    fn from_rows(mut items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(cursor_of)
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

/// The handle every layer above uses to read and write Lockstep's state.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Kept to open PostgreSQL's notification connection; it may hold a password, so it is
    /// never logged.
    url: String,
    /// Seals secrets and bodies at rest, when the operator configured a key.
    cipher: Option<cipher::Cipher>,
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `postgres://…`), creating a SQLite
    /// file if it is missing, applies pending migrations, and checks that `cipher` is the
    /// key the database's secrets were sealed with (or that none were, without one).
    pub async fn connect(url: &str, cipher: Option<cipher::Cipher>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url).ok_or_else(|| {
            Invalid::new(
                "database_url",
                "must start with sqlite:// or postgres:// (or postgresql://)",
            )
        })?;
        let pool = match backend {
            Backend::Sqlite => open_sqlite(url).await?,
            Backend::Postgres => open_postgres(url).await?,
        };
        let store = Store {
            pool,
            backend,
            url: url.to_owned(),
            cipher,
        };
        store.migrate().await?;
        store.check_key().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn cipher(&self) -> Option<&cipher::Cipher> {
        self.cipher.as_ref()
    }

    /// Refuses a key other than the one the database was sealed with, and a database with
    /// sealed data but no key. The first start with a key records its check value and
    /// seals the webhook secrets stored before.
    async fn check_key(&self) -> Result<()> {
        let check: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'key_check'")
                .fetch_optional(&self.pool)
                .await?;
        match (&self.cipher, check) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(Invalid::new(
                "encryption_key",
                "this database holds encrypted secrets: set LOCKSTEP_ENCRYPTION_KEY to its key",
            )
            .into()),
            (Some(cipher), Some(check)) => match cipher.open_text(&check) {
                Ok(_) => Ok(()),
                Err(_) => Err(Invalid::new(
                    "encryption_key",
                    "does not match the key this database's secrets were encrypted with",
                )
                .into()),
            },
            (Some(cipher), None) => self.seal_existing(cipher).await,
        }
    }

    async fn seal_existing(&self, cipher: &cipher::Cipher) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for column in ["secret", "signing_key", "previous_signing_key", "headers"] {
            let select = format!("SELECT id, {column} FROM webhooks WHERE {column} IS NOT NULL");
            let rows = sqlx::query(&select).fetch_all(&mut *tx).await?;
            for row in &rows {
                use sqlx::Row;
                let id: String = row.try_get(0)?;
                let value: String = row.try_get(1)?;
                if value.as_bytes().starts_with(cipher::SEALED) {
                    continue;
                }
                let update = format!("UPDATE webhooks SET {column} = $1 WHERE id = $2");
                sqlx::query(&update)
                    .bind(cipher.seal_text(&value))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let bodies = sqlx::query("SELECT id, body FROM deliveries")
            .fetch_all(&mut *tx)
            .await?;
        for row in &bodies {
            use sqlx::Row;
            let id: String = row.try_get(0)?;
            let body: Vec<u8> = row.try_get(1)?;
            if body.starts_with(cipher::SEALED) {
                continue;
            }
            sqlx::query("UPDATE deliveries SET body = $1 WHERE id = $2")
                .bind(cipher.seal(&body))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO settings (key, value) VALUES ('key_check', $1)")
            .bind(cipher.seal_text("lockstep"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if self.backend == Backend::Sqlite {
            // Fold the write-ahead log into the file, so the old plaintext pages (zeroed by
            // secure_delete) leave the log too.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        tracing::info!(
            deliveries = bodies.len(),
            "sealed the secrets, keys and delivery bodies stored before the key was set"
        );
        Ok(())
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Tells every node listening that `payload` happened on `channel`. Only PostgreSQL has
    /// other nodes; on SQLite this does nothing.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// A connection listening on `channel`, on PostgreSQL; `None` on SQLite.
    pub async fn listen(&self, channel: &str) -> Result<Option<sqlx::postgres::PgListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(channel).await?;
        Ok(Some(listener))
    }

    /// Answers whether the database is reachable, for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

pub fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else {
        None
    }
}

/// SQLite runs on one connection. SQLite has one writer at a time anyway, and a single
/// connection rules out the busy errors that deferred transactions meet under contention;
/// statements are short and no transaction spans a network call.
async fn open_sqlite(url: &str) -> Result<AnyPool> {
    let url = if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    };
    let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
    // A first connection tells at once whether another process holds the file; the pool
    // would only retry until its timeout.
    let mut probe = sqlx::AnyConnection::connect_with(&options).await?;
    probe.execute(SQLITE_SETUP).await.map_err(held_elsewhere)?;
    probe.close().await?;
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_SETUP).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Exclusive locking keeps a second process off the file while this one runs (the write
/// takes the lock at once); secure_delete overwrites what is deleted or replaced, such as
/// secrets sealed after a key was configured.
const SQLITE_SETUP: &str = "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; \
    PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; \
    PRAGMA busy_timeout = 2000; BEGIN IMMEDIATE; COMMIT;";

fn held_elsewhere(err: sqlx::Error) -> StoreError {
    if !err.to_string().contains("database is locked") {
        return err.into();
    }
    StoreError::Invalid(Invalid::new(
        "database_url",
        "another process holds this SQLite file: one lockstep process owns a SQLite \
         database (several nodes need PostgreSQL)",
    ))
}

async fn open_postgres(url: &str) -> Result<AnyPool> {
    let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
    // One connection first, so a wrong address or password is reported as itself rather
    // than as the pool's timeout.
    sqlx::AnyConnection::connect_with(&options)
        .await?
        .close()
        .await?;
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Flags are stored as 0 or 1 in both backends.
pub(crate) fn flag(value: bool) -> i64 {
    i64::from(value)
}
