//! The state of a dry run: a throwaway copy of the real state takes every
//! write (checkpoints, ledger, facts, dead letters), so the pass runs exactly
//! as a real one would — dedupe, person totals and all — and the real state
//! is never written. Connector secrets are the exception: a rotating refresh
//! token the dry run spends is replaced at the platform, so the new one must
//! reach the real state, or the next real run would start from a revoked one.

use async_trait::async_trait;
use jiff::Timestamp;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use tillflow_core::events::EventKind;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::model::{OrderFact, PersonTotals};
use tillflow_core::source::{Checkpoint, InboxItem};
use tillflow_core::state::{Commit, DeadLetter, LedgerEntry, OutcomeKind, PipelineStatus, SecretLock};
use tillflow_core::{StateError, StateStore};
use tillflow_state_sqlite::SqliteStore;
use tokio::sync::OnceCell;

pub struct DryRunStore {
    copy: Arc<dyn StateStore>,
    /// The real state, opened (made, when there is none yet) only when a
    /// secret must be kept.
    real: OnceCell<Arc<SqliteStore>>,
    real_path: PathBuf,
}

impl DryRunStore {
    pub fn new(copy: Arc<dyn StateStore>, real: Option<SqliteStore>, real_path: PathBuf) -> Self {
        Self { copy, real: OnceCell::new_with(real.map(Arc::new)), real_path }
    }

    async fn real(&self) -> Result<&Arc<SqliteStore>, StateError> {
        self.real
            .get_or_try_init(|| async {
                // Opened on a blocking thread: the opening future is not one
                // the compiler can prove `Send` inside this trait's methods.
                let (path, runtime) = (self.real_path.clone(), tokio::runtime::Handle::current());
                let opened = tokio::task::spawn_blocking(move || runtime.block_on(SqliteStore::open(&path)))
                    .await
                    .map_err(|e| StateError::new(format!("opening the state: {e}")))?;
                opened.map(Arc::new)
            })
            .await
    }
}

#[async_trait]
impl StateStore for DryRunStore {
    async fn pipeline_started_at(&self, pipeline: &str, now: Timestamp) -> Result<Timestamp, StateError> {
        self.copy.pipeline_started_at(pipeline, now).await
    }

    async fn checkpoint(&self, pipeline: &str, stream: &str) -> Result<Option<Checkpoint>, StateError> {
        self.copy.checkpoint(pipeline, stream).await
    }

    async fn ledger_lookup(
        &self,
        pipeline: &str,
        keys: &[&IdempotencyKey],
    ) -> Result<tillflow_core::keys::KeyMap<LedgerEntry>, StateError> {
        self.copy.ledger_lookup(pipeline, keys).await
    }

    async fn commit(&self, pipeline: &str, commit: Commit) -> Result<(), StateError> {
        self.copy.commit(pipeline, commit).await
    }

    async fn dead_letters(&self, pipeline: Option<&str>, limit: u32) -> Result<Vec<DeadLetter>, StateError> {
        self.copy.dead_letters(pipeline, limit).await
    }

    async fn discard_dead_letters(&self, pipeline: &str, ids: Option<&[i64]>) -> Result<u64, StateError> {
        self.copy.discard_dead_letters(pipeline, ids).await
    }

    async fn inbox_push(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
        received_at: Timestamp,
    ) -> Result<i64, StateError> {
        self.copy.inbox_push(source, headers, body, received_at).await
    }

    async fn inbox_pending(&self, pipeline: &str, source: &str, limit: u32) -> Result<Vec<InboxItem>, StateError> {
        self.copy.inbox_pending(pipeline, source, limit).await
    }

    async fn inbox_pending_count(&self, pipeline: &str, source: &str) -> Result<u64, StateError> {
        self.copy.inbox_pending_count(pipeline, source).await
    }

    async fn inbox_prune(&self, source: &str, pipelines: &[String]) -> Result<u64, StateError> {
        self.copy.inbox_prune(source, pipelines).await
    }

    async fn secret_get(&self, connector: &str, name: &str) -> Result<Option<String>, StateError> {
        self.real().await?.secret_get(connector, name).await
    }

    async fn secret_put(&self, connector: &str, name: &str, value: &str) -> Result<(), StateError> {
        self.real().await?.secret_put(connector, name, value).await
    }

    async fn secret_lock(&self, connector: &str) -> Result<SecretLock, StateError> {
        self.real().await?.secret_lock(connector).await
    }

    async fn forget(&self, subjects: &[String], at: Timestamp) -> Result<(), StateError> {
        self.copy.forget(subjects, at).await
    }

    async fn forgotten(&self, subjects: &[String]) -> Result<HashSet<String>, StateError> {
        self.copy.forgotten(subjects).await
    }

    async fn purge(&self, email: &str) -> Result<tillflow_core::forget::Purged, StateError> {
        self.copy.purge(email).await
    }

    async fn source_state_get(&self, source: &str, keys: &[String]) -> Result<HashMap<String, String>, StateError> {
        self.copy.source_state_get(source, keys).await
    }

    async fn source_state_put(&self, source: &str, entries: &[(String, String)]) -> Result<(), StateError> {
        self.copy.source_state_put(source, entries).await
    }

    async fn source_state_scan(
        &self,
        source: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StateError> {
        self.copy.source_state_scan(source, prefix, limit).await
    }

    async fn status(&self, pipeline: &str) -> Result<PipelineStatus, StateError> {
        self.copy.status(pipeline).await
    }

    async fn reset(&self, pipeline: &str) -> Result<(), StateError> {
        self.copy.reset(pipeline).await
    }

    async fn record_facts(
        &self,
        pipeline: &str,
        facts: Vec<OrderFact>,
    ) -> Result<HashMap<String, PersonTotals>, StateError> {
        self.copy.record_facts(pipeline, facts).await
    }

    async fn preview_facts(
        &self,
        pipeline: &str,
        facts: &[OrderFact],
    ) -> Result<HashMap<String, PersonTotals>, StateError> {
        self.copy.preview_facts(pipeline, facts).await
    }

    async fn person_totals(
        &self,
        pipeline: &str,
        people: &[&str],
    ) -> Result<HashMap<String, PersonTotals>, StateError> {
        self.copy.person_totals(pipeline, people).await
    }

    async fn event_times(
        &self,
        pipeline: &str,
        kind: EventKind,
        outcome: OutcomeKind,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StateError> {
        self.copy.event_times(pipeline, kind, outcome, since).await
    }

    async fn orders_read_times(&self, pipeline: &str, since: Timestamp) -> Result<Vec<Timestamp>, StateError> {
        self.copy.orders_read_times(pipeline, since).await
    }
}
