//! tillflow-state-sqlite: the embedded default `StateStore`, one SQLite file
//! with a rollback journal (why not WAL: see `connect`).
//!
//! The schema is versioned with `PRAGMA user_version` and migrated forward on
//! open. A file written by a newer tillflow is refused before it is opened for
//! writing, so an old binary can never damage a newer state file; an empty or
//! truncated file is refused, never taken for a new state, and a new state is
//! built under a temporary name and renamed into place whole. A process that
//! writes (`open_exclusive`) holds the file's writer lock. One concern per
//! module: `file`, `writer_lock`, `schema`, `commit`, `ledger`, `ledger_codes`
//! (how a ledger row is packed), `progress`,
//! `inbox`, `group_writer` (webhooks, facts and commits that arrive together
//! written in one transaction), `dead_letters`, `secrets`, `facts`,
//! `source_state`, `forgotten`, `purge` (what names a forgotten address),
//! `reporting`, `integrity`, and `sql` (shared helpers).

mod commit;
mod dead_letters;
mod facts;
mod file;
mod forgotten;
mod group_writer;
mod inbox;
mod insert_chunks;
mod integrity;
mod ledger;
mod ledger_codes;
mod progress;
mod purge;
mod reporting;
mod schema;
mod secrets;
mod source_state;
mod sql;
mod writer_lock;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::StateError;
use tillflow_core::events::EventKind;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::model::{OrderFact, PersonTotals};
use tillflow_core::source::{Checkpoint, InboxItem};
use tillflow_core::state::{Commit, DeadLetter, LedgerEntry, OutcomeKind, PipelineStatus, StateStore};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = schema::MIGRATIONS.len() as u32;

/// The view that shows the ledger as its rows' names and hex (the table
/// packs them, `ledger_codes`): what `tillflow state migrate` copies and an
/// operator reads.
pub const LEDGER_NAMED: &str = "ledger_named";

pub use writer_lock::WriterLock;

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    /// Held by a writing process for as long as any clone of the store lives.
    _writer: Option<Arc<WriterLock>>,
    /// Every webhook, facts and commit write goes through it (see `group_writer`).
    writer: group_writer::GroupWriter,
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

    /// Opens the state at `path` for a process that writes it (a run): takes
    /// its writer lock first, so a second such process is refused.
    pub async fn open_exclusive(path: &Path) -> Result<Self, StateError> {
        let lock = Arc::new(WriterLock::acquire(path)?);
        Self::open_holding(path, Some(lock)).await
    }

    /// Opens the state at `path`, making a new one when nothing is there.
    /// Migrating it takes the writer lock for that time: refused while a run
    /// of an older tillflow has the file.
    pub async fn open(path: &Path) -> Result<Self, StateError> {
        Self::open_holding(path, None).await
    }

    async fn open_holding(path: &Path, writer: Option<Arc<WriterLock>>) -> Result<Self, StateError> {
        match file::inspect(path)? {
            file::StateFile::Missing => create(path).await?,
            file::StateFile::Database { schema_version } if schema_version > SCHEMA_VERSION => {
                return Err(schema::newer_refused(path, schema_version));
            }
            file::StateFile::Database { .. } => {}
        }
        let pool = connect(path, false).await?;
        let held = writer.is_some();
        let store = Self { pool, path: path.to_owned(), _writer: writer, writer: Default::default() };
        schema::migrate(&store.pool, &store.path, held).await?;
        Ok(store)
    }

    /// Runs SQLite's integrity check over the whole file: the problems it
    /// found (empty when the file is sound), or why it could not run.
    pub async fn integrity_check(&self) -> Result<Vec<String>, String> {
        integrity::check(&self.pool).await
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A consistent copy of the whole state written to `copy` (a new file),
    /// in one read transaction: what a dry run works on, so the state itself
    /// is never written.
    pub async fn snapshot_to(&self, copy: &Path) -> Result<(), StateError> {
        sqlx::query("VACUUM INTO ?")
            .bind(copy.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await
            .map_err(|e| StateError::new(format!("cannot copy {}: {}", self.path.display(), sql::describe(&e))))?;
        Ok(())
    }

    /// Closes every connection: nothing of the state is left outside its file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn connect(path: &Path, create: bool) -> Result<SqlitePool, StateError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        // A rollback journal, not WAL: WAL's index is a memory-mapped `-shm`
        // file, and a write to that mapping once the file is made immutable
        // (or its disk fails) is a SIGBUS that kills the process with no
        // message — nothing safe Rust can catch. A journal is written with
        // plain writes, so every such failure comes back as an error; the
        // commit rolls back and the pass stops saying why. Persisted (its
        // header zeroed, not unlinked) so a commit does not create and delete
        // a file; a state being built uses one it deletes, so the finished
        // file is all there is when it is renamed into place. Measured with
        // `tillflow-bench --only alone`: WAL 11.0k–11.5k orders/s, this
        // 11.2k–13.8k on the 2-core CI machine (fsync is cheap there).
        .journal_mode(if create { SqliteJournalMode::Delete } else { SqliteJournalMode::Persist })
        // FULL: with a rollback journal, NORMAL can corrupt the file on a
        // power loss at the wrong moment; FULL cannot (any process crash,
        // SIGKILL included, is safe in both).
        .synchronous(SqliteSynchronous::Full)
        // Statement undo logs (a multi-row insert that is not a transaction's
        // first write keeps one) and sorts in memory, not in temporary files:
        // in files they more than doubled a history import's page writes once
        // inserts went in chunks.
        .pragma("temp_store", "memory")
        // What is deleted is overwritten with zeros, not left in free space
        // and free pages where the file's bytes still show it: a forgotten
        // person's address (`purge`), webhooks pruned once done.
        .pragma("secure_delete", "on")
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    // One connection: the process's readers and writers take turns on it
    // (an async queue) instead of meeting at the file's locks, where with a
    // rollback journal a reader holds off a committing writer and SQLite's
    // busy handler sleeps in steps of up to 100 ms — seconds of latency for
    // webhooks stored while a pass commits. Other processes (`status`) still
    // read through the file's locks.
    SqlitePoolOptions::new()
        .max_connections(1)
        // sqlx pings a connection each time it hands it out, by default: on
        // SQLite one more round trip to the connection's thread before every
        // read and every transaction, checking a file handle that cannot go
        // stale. Its lifetime limits would likewise close the one connection
        // every half hour and drop its page cache and prepared statements.
        .test_before_acquire(false)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options)
        .await
        .map_err(|e| StateError::new(format!("cannot open {}: {}", path.display(), sql::describe(&e))))
}

/// Builds a new state beside `path` and renames it into place once its schema
/// is written, so a process killed while creating it leaves no empty or
/// half-made file at `path` (which the next start would refuse).
async fn create(path: &Path) -> Result<(), StateError> {
    let mut building = path.as_os_str().to_owned();
    building.push(".new");
    let building = PathBuf::from(building);
    for leftover in [building.clone(), file::beside(&building, "-journal")] {
        let _ = std::fs::remove_file(leftover);
    }
    let pool = connect(&building, true).await?;
    // A file nobody else can have opened yet: no lock to take.
    schema::migrate(&pool, &building, true).await?;
    pool.close().await;
    std::fs::rename(&building, path).map_err(|e| StateError::new(format!("cannot create {}: {e}", path.display())))
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
    ) -> Result<tillflow_core::keys::KeyMap<LedgerEntry>, StateError> {
        ledger::lookup(&self.pool, pipeline, keys).await
    }

    async fn commit(&self, pipeline: &str, commit: Commit) -> Result<(), StateError> {
        let pipeline = pipeline.to_owned();
        self.writer
            .write(&self.pool, "commit", move |connection| {
                Box::pin(async move { commit::commit(connection, &pipeline, commit).await })
            })
            .await
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
        let headers = serde_json::to_string(headers).expect("headers serialize");
        let (source, body) = (source.to_owned(), body.to_vec());
        self.writer
            .write_statement(&self.pool, "store webhook", move |connection| {
                Box::pin(async move { inbox::store(connection, &source, &headers, &body, received_at).await })
            })
            .await
    }

    async fn inbox_pending(&self, pipeline: &str, source: &str, limit: u32) -> Result<Vec<InboxItem>, StateError> {
        inbox::pending(&self.pool, pipeline, source, limit).await
    }

    async fn inbox_pending_count(&self, pipeline: &str, source: &str) -> Result<u64, StateError> {
        inbox::pending_count(&self.pool, pipeline, source).await
    }

    async fn inbox_prune(&self, source: &str, pipelines: &[String]) -> Result<u64, StateError> {
        // Through the group writer, a chunk a write: a webhook stored while
        // it runs shares its transaction instead of waiting for a commit of
        // its own, and waits for one chunk at most, never for a whole backlog.
        let mut deleted = 0;
        loop {
            let (source, pipelines) = (source.to_owned(), pipelines.to_vec());
            let chunk = self
                .writer
                .write(&self.pool, "prune inbox", move |connection| {
                    Box::pin(async move { inbox::prune(connection, &source, &pipelines, inbox::PRUNE_CHUNK).await })
                })
                .await?;
            deleted += chunk;
            if chunk < u64::from(inbox::PRUNE_CHUNK) {
                return Ok(deleted);
            }
        }
    }

    async fn secret_get(&self, connector: &str, name: &str) -> Result<Option<String>, StateError> {
        secrets::get(&self.pool, connector, name).await
    }

    async fn secret_put(&self, connector: &str, name: &str, value: &str) -> Result<(), StateError> {
        secrets::put(&self.pool, connector, name, value).await
    }

    async fn forget(&self, subjects: &[String], at: Timestamp) -> Result<(), StateError> {
        forgotten::record(&self.pool, subjects, at).await
    }

    async fn forgotten(&self, subjects: &[String]) -> Result<HashSet<String>, StateError> {
        forgotten::lookup(&self.pool, subjects).await
    }

    async fn purge(&self, email: &str) -> Result<tillflow_core::forget::Purged, StateError> {
        purge::purge(&self.pool, email).await
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

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    async fn status(&self, pipeline: &str) -> Result<PipelineStatus, StateError> {
        reporting::status(&self.pool, pipeline).await
    }

    async fn reset(&self, pipeline: &str) -> Result<(), StateError> {
        progress::reset(&self.pool, pipeline).await
    }

    async fn record_facts(
        &self,
        pipeline: &str,
        facts: Vec<OrderFact>,
    ) -> Result<HashMap<String, PersonTotals>, StateError> {
        if facts.is_empty() {
            return Ok(HashMap::new());
        }
        let pipeline = pipeline.to_owned();
        self.writer
            .write(&self.pool, "record facts", move |connection| {
                Box::pin(async move { facts::record_facts(connection, &pipeline, facts).await })
            })
            .await
    }

    async fn preview_facts(
        &self,
        pipeline: &str,
        facts: &[OrderFact],
    ) -> Result<HashMap<String, PersonTotals>, StateError> {
        facts::preview_facts(&self.pool, pipeline, facts).await
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
