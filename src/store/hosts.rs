//! The inventory's hosts and their history. Writes are compare-and-set on the host's
//! `version`: the rules of what may change live in `farm::hosts`.

use sqlx::Row;

use super::{Store, StoreError};
use crate::config::Arch;
use crate::farm::hosts::{Host, HostHistoryEntry, HostSource, HostState};

const HOST_COLUMNS: &str = "name, address, port, cobbler_system, arch, labels, source, state, state_reason, \
                            pending_lock, consecutive_failures, job_id, lease_expires_at, version, created_at, updated_at";

impl Store {
    /// Every host, by name.
    pub async fn hosts(&self) -> Result<Vec<Host>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {HOST_COLUMNS} FROM hosts ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(host_row).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }

    pub async fn host(&self, name: &str) -> Result<Option<Host>, StoreError> {
        let row = sqlx::query(&format!("SELECT {HOST_COLUMNS} FROM hosts WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(host_row).transpose()?)
    }

    /// Adds `host` and the first entry of its history; false when the name is taken.
    pub async fn insert_host(&self, host: &Host, entry: &HostHistoryEntry) -> Result<bool, StoreError> {
        let mut tx = self.writes().begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO hosts ({HOST_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15) \
             ON CONFLICT (name) DO NOTHING"
        ))
        .bind(&host.name)
        .bind(&host.address)
        .bind(i64::from(host.port))
        .bind(&host.cobbler_system)
        .bind(host.arch.label())
        .bind(labels_json(&host.labels))
        .bind(host.source.as_str())
        .bind(host.state.as_str())
        .bind(&host.state_reason)
        .bind(host.pending_lock.as_deref())
        .bind(host.consecutive_failures)
        .bind(host.job_id)
        .bind(host.lease_expires_at)
        .bind(host.created_at)
        .bind(host.updated_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            insert_history(&mut tx, &host.name, entry).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Writes every field of `host` if its stored version is still `host.version`
    /// (bumping it), with `entry` in its history. False when another change came first.
    pub async fn update_host(
        &self,
        host: &Host,
        entry: Option<&HostHistoryEntry>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writes().begin().await?;
        let updated = sqlx::query(
            "UPDATE hosts SET address = $1, port = $2, cobbler_system = $3, arch = $4, labels = $5, source = $6, \
             state = $7, state_reason = $8, pending_lock = $9, consecutive_failures = $10, job_id = $11, \
             lease_expires_at = $12, updated_at = $13, version = version + 1 \
             WHERE name = $14 AND version = $15",
        )
        .bind(&host.address)
        .bind(i64::from(host.port))
        .bind(&host.cobbler_system)
        .bind(host.arch.label())
        .bind(labels_json(&host.labels))
        .bind(host.source.as_str())
        .bind(host.state.as_str())
        .bind(&host.state_reason)
        .bind(host.pending_lock.as_deref())
        .bind(host.consecutive_failures)
        .bind(host.job_id)
        .bind(host.lease_expires_at)
        .bind(host.updated_at)
        .bind(&host.name)
        .bind(host.version)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !updated {
            return Ok(false);
        }
        if let Some(entry) = entry {
            insert_history(&mut tx, &host.name, entry).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a host (and its history) if it is still at `version`.
    pub async fn delete_host(&self, name: &str, version: i64) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM hosts WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(self.writes())
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    /// The newest `limit` entries of a host's history, oldest first.
    pub async fn host_history(&self, name: &str, limit: i64) -> Result<Vec<HostHistoryEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, from_state, to_state, reason, actor FROM host_history \
             WHERE host = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(name)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut entries = rows
            .iter()
            .map(|row| {
                let from: Option<String> = row.try_get("from_state")?;
                Ok(HostHistoryEntry {
                    at: row.try_get("at")?,
                    from: from.as_deref().map(state).transpose()?,
                    to: state(&row.try_get::<String, _>("to_state")?)?,
                    reason: row.try_get("reason")?,
                    actor: row.try_get("actor")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        entries.reverse();
        Ok(entries)
    }
}

async fn insert_history(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    host: &str,
    entry: &HostHistoryEntry,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO host_history (host, at, from_state, to_state, reason, actor) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(host)
    .bind(entry.at)
    .bind(entry.from.map(HostState::as_str))
    .bind(entry.to.as_str())
    .bind(&entry.reason)
    .bind(&entry.actor)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn labels_json(labels: &[String]) -> String {
    serde_json::to_string(labels).expect("string lists serialise")
}

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn state(text: &str) -> Result<HostState, sqlx::Error> {
    HostState::parse(text).ok_or_else(|| decode_error(format!("unknown host state `{text}`")))
}

fn host_row(row: &sqlx::any::AnyRow) -> Result<Host, sqlx::Error> {
    let arch: String = row.try_get("arch")?;
    let source: String = row.try_get("source")?;
    let labels: String = row.try_get("labels")?;
    let port: i64 = row.try_get("port")?;
    Ok(Host {
        name: row.try_get("name")?,
        address: row.try_get("address")?,
        port: u16::try_from(port).map_err(|_| decode_error(format!("port {port} out of range")))?,
        cobbler_system: row.try_get("cobbler_system")?,
        arch: match arch.as_str() {
            "x64" => Arch::X64,
            "arm64" => Arch::Arm64,
            other => return Err(decode_error(format!("unknown arch `{other}`"))),
        },
        labels: serde_json::from_str(&labels).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        source: HostSource::parse(&source)
            .ok_or_else(|| decode_error(format!("unknown host source `{source}`")))?,
        state: state(&row.try_get::<String, _>("state")?)?,
        state_reason: row.try_get("state_reason")?,
        pending_lock: row.try_get("pending_lock")?,
        consecutive_failures: row.try_get("consecutive_failures")?,
        job_id: row.try_get("job_id")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
