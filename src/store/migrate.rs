//! Schema migrations, run at every start: numbered SQL files per back end, each applied
//! once in its own transaction and recorded in `metalfarm_migrations`.

use sqlx::{Executor, Row};

use super::{now_ms, Backend, Store, StoreError};

struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("migrations/sqlite/0002_hosts.sql"),
        postgres: include_str!("migrations/postgres/0002_hosts.sql"),
    },
    Migration {
        version: 3,
        sqlite: include_str!("migrations/sqlite/0003_cron.sql"),
        postgres: include_str!("migrations/postgres/0003_cron.sql"),
    },
    Migration {
        version: 4,
        sqlite: include_str!("migrations/sqlite/0004_scheduling.sql"),
        postgres: include_str!("migrations/postgres/0004_scheduling.sql"),
    },
    Migration {
        version: 5,
        sqlite: include_str!("migrations/sqlite/0005_runner.sql"),
        postgres: include_str!("migrations/postgres/0005_runner.sql"),
    },
    Migration {
        version: 6,
        sqlite: include_str!("migrations/sqlite/0006_check_run_creation.sql"),
        postgres: include_str!("migrations/postgres/0006_check_run_creation.sql"),
    },
];

#[cfg(test)]
pub(super) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(super) async fn applied(store: &Store) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM metalfarm_migrations")
        .fetch_one(store.pool())
        .await?;
    Ok(row.try_get::<i64, _>("v")?)
}

pub(super) async fn run(store: &Store) -> Result<(), StoreError> {
    store
        .writes()
        .execute(
            "CREATE TABLE IF NOT EXISTS metalfarm_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
    let current = applied(store).await?;
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let sql = match store.backend() {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        };
        let apply = async {
            let mut tx = store.writes().begin().await?;
            tx.execute(sql).await?;
            sqlx::query("INSERT INTO metalfarm_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(migration.version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        };
        apply.await.map_err(|source| StoreError::Migration { version: migration.version, source })?;
        tracing::info!(version = migration.version, "applied database migration");
    }
    Ok(())
}
