//! The database: the farm's source of truth. SQLite is the embedded default; the same
//! SQL runs on PostgreSQL (`database = "postgres://…"`), so callers never see which
//! one is behind a [`Store`]. Queries use `$N` placeholders and types both accept;
//! only the migrations differ per back end (identity columns), in `migrations/`.
//!
//! Operations live in submodules by what they are about (`deliveries`, …), each a set
//! of `impl Store` methods, as thin as the SQL they wrap.

mod cron;
mod deliveries;
mod hosts;
mod metrics;
mod migrate;
mod outbox;
mod runs;
mod writer;

pub use cron::{CronKey, FiredTick};
pub use deliveries::{Delivery, DeliveryInsert};
pub use metrics::{DeliveryCounts, FarmCounts, JobWaits, QueuedJobs};
pub use outbox::{OutboxItem, PendingCheckRun};
pub use runs::{
    Annotation, Approval, CheckRunState, JobCheckRun, JobStatus, NewJob, NewRun, RequestedAction, RunIds,
    RunRow, Tx,
};

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}` (expected sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration {version} failed: {source}")]
    Migration { version: i64, source: sqlx::Error },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone (connection pools).
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads, and on PostgreSQL everything.
    pool: AnyPool,
    /// Writes. On SQLite one connection: SQLite has one writer at a time, and writers
    /// that meet its lock sleep and poll (milliseconds each), while writers queued on a
    /// pool of one are woken in order the moment the connection is free.
    writes: AnyPool,
    backend: Backend,
    /// The group-commit task webhook deliveries are stored through.
    delivery_writer: writer::DeliveryWriter,
}

impl Store {
    /// Connects, creating a SQLite file and its folder when missing, and runs the
    /// migrations that have not run yet.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url_creating_dir(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let (pool, writes) = match backend {
            Backend::Postgres => {
                let pool = connect(&options, backend, 16).await?;
                (pool.clone(), pool)
            }
            // An in-memory database exists once per connection: one pool for all.
            Backend::Sqlite if url.contains(":memory:") => {
                let pool = connect(&options, backend, 1).await?;
                (pool.clone(), pool)
            }
            Backend::Sqlite => (connect(&options, backend, 4).await?, connect(&options, backend, 1).await?),
        };
        let delivery_writer = writer::DeliveryWriter::spawn(writes.clone());
        let store = Store { pool, writes, backend, delivery_writer };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool for reads.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool every write goes through (on SQLite, one connection).
    pub(crate) fn writes(&self) -> &AnyPool {
        &self.writes
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writes.close().await;
    }
}

/// A pool with the farm's connection settings.
async fn connect(options: &AnyConnectOptions, backend: Backend, size: u32) -> Result<AnyPool, StoreError> {
    let pool = AnyPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the writer; FULL makes every commit
                    // durable before the webhook is answered; other processes' writers
                    // (an admin's sqlite3) are waited for rather than failed.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                }
                Ok(())
            })
        })
        .connect_with(options.clone())
        .await?;
    Ok(pool)
}

/// `sqlite://path` with `mode=rwc` (create when missing), after creating the folder.
fn sqlite_url_creating_dir(url: &str) -> Result<String, StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:" && !path.is_empty() {
        if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::CreateDir { path: dir.display().to_string(), source })?;
        }
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a/b/farm.db");
        let url = sqlite_url_creating_dir(&format!("sqlite://{}", db.display())).unwrap();
        assert_eq!(url, format!("sqlite://{}?mode=rwc", db.display()));
        assert!(dir.path().join("a/b").is_dir());
        assert_eq!(sqlite_url_creating_dir("sqlite://x.db?mode=ro").unwrap(), "sqlite://x.db?mode=ro");
    }

    #[tokio::test]
    async fn migrations_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("farm.db").display());
        let store = Store::open(&url).await.unwrap();
        store.close().await;
        // A second start finds the schema in place and changes nothing.
        let store = Store::open(&url).await.unwrap();
        assert_eq!(migrate::applied(&store).await.unwrap(), migrate::latest());
    }
}
