//! tillflow-state-sqlite: the embedded default `StateStore`, one SQLite file in
//! WAL mode.
//!
//! The schema is versioned with `PRAGMA user_version` and migrated forward on
//! open. A file written by a newer tillflow is refused before it is opened for
//! writing, so an old binary can never damage a newer state file. One concern
//! per module: `schema`, `commit`, `ledger`, `progress`, `inbox`,
//! `dead_letters`, `secrets`, `facts`, `reporting`, and `sql` (shared helpers).

mod commit;
mod dead_letters;
mod facts;
mod inbox;
mod ledger;
mod progress;
mod reporting;
mod schema;
mod secrets;
mod source_state;
mod sql;

use async_trait::async_trait;
use jiff::Timestamp;
use sql::error;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use tillflow_core::StateError;
use tillflow_core::events::EventKind;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::model::{OrderFact, PersonTotals};
use tillflow_core::source::{Checkpoint, InboxItem};
use tillflow_core::state::{Commit, DeadLetter, LedgerEntry, OutcomeKind, PipelineStatus, StateStore};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = schema::MIGRATIONS.len() as u32;

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens `sqlite://path` (or `sqlite:path`), creating and migrating it.
    pub async fn open_url(url: &str) -> Result<Self, StateError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StateError::new(format!("`{url}` is not a sqlite:// URL")))?;
        Self::open(Path::new(path)).await
    }

    pub async fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(version) = schema::header_schema_version(path)?
            && version > SCHEMA_VERSION
        {
            return Err(StateError::new(format!(
                "{} has state schema version {version}, but this tillflow understands up to {SCHEMA_VERSION}; \
                 it was written by a newer tillflow. Refusing to touch it: upgrade tillflow or point [state] url elsewhere",
                path.display()
            )));
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(error("state url"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives any process crash (SIGKILL included); only a
            // power loss can drop the last commits, which the sinks' idempotency
            // keys then absorb.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StateError::new(format!("cannot open {}: {e}", path.display())))?;
        let store = Self { pool, path: path.to_owned() };
        schema::migrate(&store.pool, &store.path).await?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection; SQLite then checkpoints the WAL into the file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn pipeline_started_at(&self, pipeline: &str, now: Timestamp) -> Result<Timestamp, StateError> {
        progress::pipeline_started_at(&self.pool, pipeline, now).await
    }

    async fn checkpoint(&self, pipeline: &str, stream: &str) -> Result<Option<Checkpoint>, StateError> {
        progress::checkpoint(&self.pool, pipeline, stream).await
    }

    async fn ledger_lookup(
        &self,
        pipeline: &str,
        keys: &[&IdempotencyKey],
    ) -> Result<HashMap<IdempotencyKey, LedgerEntry>, StateError> {
        ledger::lookup(&self.pool, pipeline, keys).await
    }

    async fn commit(&self, pipeline: &str, commit: Commit) -> Result<(), StateError> {
        commit::commit(&self.pool, pipeline, commit).await
    }

    async fn dead_letters(&self, pipeline: Option<&str>, limit: u32) -> Result<Vec<DeadLetter>, StateError> {
        dead_letters::list(&self.pool, pipeline, limit).await
    }

    async fn discard_dead_letters(&self, pipeline: &str, ids: Option<&[i64]>) -> Result<u64, StateError> {
        dead_letters::discard(&self.pool, pipeline, ids).await
    }

    async fn inbox_push(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
        received_at: Timestamp,
    ) -> Result<i64, StateError> {
        inbox::push(&self.pool, source, headers, body, received_at).await
    }

    async fn inbox_pending(&self, pipeline: &str, source: &str, limit: u32) -> Result<Vec<InboxItem>, StateError> {
        inbox::pending(&self.pool, pipeline, source, limit).await
    }

    async fn secret_get(&self, connector: &str, name: &str) -> Result<Option<String>, StateError> {
        secrets::get(&self.pool, connector, name).await
    }

    async fn secret_put(&self, connector: &str, name: &str, value: &str) -> Result<(), StateError> {
        secrets::put(&self.pool, connector, name, value).await
    }

    async fn source_state_get(&self, source: &str, keys: &[String]) -> Result<HashMap<String, String>, StateError> {
        source_state::get(&self.pool, source, keys).await
    }

    async fn source_state_put(&self, source: &str, entries: &[(String, String)]) -> Result<(), StateError> {
        source_state::put(&self.pool, source, entries).await
    }

    async fn source_state_scan(
        &self,
        source: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StateError> {
        source_state::scan(&self.pool, source, prefix, limit).await
    }

    async fn status(&self, pipeline: &str) -> Result<PipelineStatus, StateError> {
        reporting::status(&self.pool, pipeline).await
    }

    async fn reset(&self, pipeline: &str) -> Result<(), StateError> {
        progress::reset(&self.pool, pipeline).await
    }

    async fn record_facts(&self, pipeline: &str, facts: &[OrderFact]) -> Result<(), StateError> {
        facts::record_facts(&self.pool, pipeline, facts).await
    }

    async fn person_totals(
        &self,
        pipeline: &str,
        people: &[&str],
    ) -> Result<HashMap<String, PersonTotals>, StateError> {
        facts::person_totals(&self.pool, pipeline, people).await
    }

    async fn event_times(
        &self,
        pipeline: &str,
        kind: EventKind,
        outcome: OutcomeKind,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StateError> {
        reporting::event_times(&self.pool, pipeline, kind, outcome, since).await
    }

    async fn orders_read_times(&self, pipeline: &str, since: Timestamp) -> Result<Vec<Timestamp>, StateError> {
        reporting::orders_read_times(&self.pool, pipeline, since).await
    }
}
