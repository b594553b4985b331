//! What one run creates and must leave nothing of: a temporary directory for SQLite files and
//! server logs, and PostgreSQL databases, all removed at the end even when a figure failed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A fresh database for one server (or several nodes sharing it).
#[derive(Debug, Clone)]
pub struct Database {
    pub backend: Backend,
    pub url: String,
}

impl Database {
    /// A connection pool of the bench's own, for what only the database can tell.
    pub async fn pool(&self) -> anyhow::Result<PgPool> {
        PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .context("connecting to the bench's PostgreSQL database")
    }
}

pub struct Scratch {
    dir: PathBuf,
    postgres: String,
    created: Mutex<Vec<String>>,
    files: AtomicUsize,
}

impl Scratch {
    pub fn new(postgres: &str) -> anyhow::Result<Scratch> {
        let suffix: u64 = rand::rng().random();
        let dir = std::env::temp_dir().join(format!("lockstep-bench-{suffix:016x}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the directory {}", dir.display()))?;
        Ok(Scratch {
            dir,
            postgres: postgres.trim_end_matches('/').to_owned(),
            created: Mutex::new(Vec::new()),
            files: AtomicUsize::new(0),
        })
    }

    /// A path of its own in the scratch directory, named after `what`.
    pub fn file(&self, what: &str) -> PathBuf {
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{n:03}-{what}"))
    }

    pub async fn database(&self, backend: Backend) -> anyhow::Result<Database> {
        match backend {
            Backend::Sqlite => {
                let path = self.file("lockstep.db");
                Ok(Database {
                    backend,
                    url: format!("sqlite://{}", path.display()),
                })
            }
            Backend::Postgres => self.postgres_database().await,
        }
    }

    async fn postgres_database(&self) -> anyhow::Result<Database> {
        let suffix: u64 = rand::rng().random();
        let name = format!("lockstep_bench_{suffix:016x}");
        let mut admin = admin_connection(&self.postgres).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating the database {name}"))?;
        self.created
            .lock()
            .expect("scratch list")
            .push(name.clone());
        Ok(Database {
            backend: Backend::Postgres,
            url: format!("{}/{name}", self.postgres),
        })
    }

    /// Drops every database this run created and removes the directory; what cannot be
    /// removed is reported, not fatal. With `keep`, says where they are instead.
    pub async fn clean(self, keep: bool) {
        let created = std::mem::take(&mut *self.created.lock().expect("scratch list"));
        if keep {
            eprintln!("lockstep-bench: kept {}", self.dir.display());
            for name in created {
                eprintln!("lockstep-bench: kept {}/{name}", self.postgres);
            }
            return;
        }
        if !created.is_empty() {
            if let Err(err) = drop_databases(&self.postgres, &created).await {
                eprintln!("lockstep-bench: could not drop the bench's databases: {err:#}");
            }
        }
        if let Err(err) = std::fs::remove_dir_all(&self.dir) {
            eprintln!(
                "lockstep-bench: could not remove {}: {err}",
                self.dir.display()
            );
        }
    }
}

async fn drop_databases(server: &str, names: &[String]) -> anyhow::Result<()> {
    let mut admin = admin_connection(server).await?;
    for name in names {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .with_context(|| format!("dropping the database {name}"))?;
    }
    Ok(())
}

async fn admin_connection(server: &str) -> anyhow::Result<PgConnection> {
    let url = format!("{server}/postgres");
    PgConnection::connect(&url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {server}"))
}

/// Whether the PostgreSQL server answers within a few seconds.
pub async fn postgres_reachable(server: &str) -> bool {
    let url = format!("{}/postgres", server.trim_end_matches('/'));
    let connecting = PgConnection::connect(&url);
    matches!(
        tokio::time::timeout(Duration::from_secs(3), connecting).await,
        Ok(Ok(_))
    )
}
