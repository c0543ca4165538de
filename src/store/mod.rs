//! The database: the farm's source of truth. SQLite is the embedded default; the same
//! SQL runs on PostgreSQL (`database = "postgres://…"`), so callers never see which
//! one is behind a [`Store`]. Queries use `$N` placeholders and types both accept;
//! only the migrations differ per back end (identity columns), in `migrations/`.
//!
//! Operations live in submodules by what they are about (`deliveries`, …), each a set
//! of `impl Store` methods, as thin as the SQL they wrap.

mod cron;
mod deliveries;
mod execution;
mod hosts;
mod jobs;
mod jobs_read;
mod logs;
mod metrics;
mod migrate;
mod outbox;
mod runs;
mod writer;

pub use cron::{CronKey, FiredTick};
pub use deliveries::{Delivery, DeliveryInsert, DISPATCH_ID_PREFIX};
pub use execution::{JobToRun, NeededJob, StepState};
pub use jobs::{JobCheck, SchedulingJob};
pub use jobs_read::{JobCheckRunRecord, JobQuery, JobRecord, RunQuery, RunRecord, StepRecord};
pub use logs::{JobLog, JobLogs, LogError, LogFollower, LogLine};
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
                let pool = connect(&options, backend, 16, Checkpoints::Automatic).await?;
                (pool.clone(), pool)
            }
            // An in-memory database exists once per connection: one pool for all.
            Backend::Sqlite if url.contains(":memory:") => {
                let pool = connect(&options, backend, 1, Checkpoints::Automatic).await?;
                (pool.clone(), pool)
            }
            Backend::Sqlite => {
                let reads = connect(&options, backend, 4, Checkpoints::Automatic).await?;
                let writes = connect(&options, backend, 1, Checkpoints::Background).await?;
                tokio::spawn(checkpoint_forever(reads.clone()));
                (reads, writes)
            }
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

/// Who copies SQLite's write-ahead log into the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checkpoints {
    /// SQLite, in the commit that fills the log past its limit.
    Automatic,
    /// [`checkpoint_forever`], beside the writer: a checkpoint flushes the whole
    /// database file, and the commit that ran it (and every write queued behind it)
    /// would wait for that flush; webhooks must be answered in milliseconds.
    Background,
}

/// How often the background checkpoint runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Checkpoints the write-ahead log from a reader connection until the pool closes. A
/// passive checkpoint never blocks the writer; the writer starts the log over once a
/// checkpoint has copied all of it.
async fn checkpoint_forever(reads: AnyPool) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if reads.is_closed() {
            return;
        }
        if let Err(err) = reads.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            if reads.is_closed() {
                return;
            }
            tracing::warn!(%err, "checkpointing the database's write-ahead log failed");
        }
    }
}

/// A pool with the farm's connection settings.
async fn connect(
    options: &AnyConnectOptions,
    backend: Backend,
    size: u32,
    checkpoints: Checkpoints,
) -> Result<AnyPool, StoreError> {
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
                    if checkpoints == Checkpoints::Background {
                        conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                    }
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
    async fn the_write_ahead_log_reaches_the_database_file_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("farm.db");
        let store = Store::open(&format!("sqlite://{}", db.display())).await.unwrap();
        for n in 0..200 {
            store.insert_delivery(&format!("d-{n}"), "push", "{}").await.unwrap();
        }
        // `immutable=1` reads the database file alone, never the log: rows show there
        // only once a checkpoint has copied them.
        let file_only = format!("sqlite://{}?mode=ro&immutable=1", db.display());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&file_only).await.unwrap();
            let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries").fetch_one(&mut conn).await;
            let in_file: i64 = row.map(|r| sqlx::Row::get(&r, "n")).unwrap_or(0);
            if in_file == 200 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "only {in_file} of 200 rows reached the file");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        store.close().await;
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
