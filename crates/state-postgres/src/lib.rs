//! tillflow-state-postgres: the `StateStore` for several runners on one
//! Postgres database (DESIGN §5), with the pipeline leases and fencing
//! tokens that let them share the pipelines (`leases`).
//!
//! The schema is versioned (`tillflow_schema`) and migrated forward on open
//! under an advisory lock; a database from a newer tillflow is refused
//! untouched. The same atomic commit as SQLite: ledger rows, dead letters,
//! the checkpoint and inbox marks in one transaction — for a runner, only
//! while its lease still stands. One concern per module: `schema`, `commit`,
//! `leases`, `ledger`, `progress`, `inbox`, `dead_letters`, `secrets`,
//! `facts`, `source_state`, `forgotten`, `purge` (what names a forgotten
//! address), `reporting`, and `sql` (shared helpers).

mod commit;
mod dead_letters;
mod facts;
mod forgotten;
mod inbox;
pub mod leases;
mod ledger;
mod progress;
mod purge;
mod reporting;
mod schema;
mod secrets;
mod source_state;
mod sql;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::StateError;
use tillflow_core::events::EventKind;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::model::{OrderFact, PersonTotals};
use tillflow_core::source::{Checkpoint, InboxItem};
use tillflow_core::state::{Commit, DeadLetter, LedgerEntry, OutcomeKind, PipelineStatus, SecretLock, StateStore};

pub use leases::{Claimed, Fencing, LeaseHolder};
pub use schema::SCHEMA_VERSION;

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The database, for messages: host, port and name, never the password.
    place: String,
    /// Set for a runner: its writes are fenced by its leases.
    fencing: Option<Arc<Fencing>>,
}

/// Where `url` points, without its credentials.
fn place_of(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default database)")
    )
}

impl PgStore {
    /// Connects to `postgres://…` and migrates the schema forward.
    pub async fn open(url: &str) -> Result<Self, StateError> {
        Self::connect(url, None).await
    }

    /// [`PgStore::open`] for a store that takes leases of `lease_ttl`: the
    /// server ends any of its sessions left idle inside a transaction for
    /// half a lease. A runner paused (or cut off with its socket still open)
    /// in the middle of a commit holds its lease row share-locked, and the
    /// takeover skips locked rows: without this its successor could not take
    /// the pipeline over until the paused process woke, however long after
    /// its lease had ended. Of the store's transactions only the secret lock
    /// waits on anything but the database, and it lifts the limit for itself.
    pub async fn open_leasing(url: &str, lease_ttl: Duration) -> Result<Self, StateError> {
        Self::connect(url, Some(lease_ttl / 2)).await
    }

    async fn connect(url: &str, idle_in_transaction_limit: Option<Duration>) -> Result<Self, StateError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| StateError::new(format!("state.url is not a Postgres URL: {e}")))?;
        if let Some(limit) = idle_in_transaction_limit {
            let millis = limit.as_millis().max(1).to_string();
            options = options.options([("idle_in_transaction_session_timeout", millis.as_str())]);
        }
        let place = place_of(&options);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| StateError::new(format!("cannot open {place}: {}", sql::describe(&e))))?;
        schema::migrate(&pool, &place).await?;
        Ok(Self { pool, place, fencing: None })
    }

    /// The same database for runner `runner`: from now on its commits and
    /// facts go through only for pipelines it holds the lease of.
    pub fn for_runner(&self, runner: &str) -> Self {
        Self { fencing: Some(Arc::new(Fencing::new(runner.to_owned()))), ..self.clone() }
    }

    pub fn place(&self) -> &str {
        &self.place
    }

    /// This runner's leases (`None` unless opened `for_runner`).
    pub fn fencing(&self) -> Option<&Arc<Fencing>> {
        self.fencing.as_ref()
    }

    fn runner(&self) -> Result<&Fencing, StateError> {
        self.fencing.as_deref().ok_or_else(|| StateError::new("leases are taken by a runner (PgStore::for_runner)"))
    }

    /// Takes free or expired pipelines up to this runner's fair share.
    pub async fn claim(&self, pipelines: &[String], ttl: Duration) -> Result<Claimed, StateError> {
        leases::claim(&self.pool, self.runner()?, pipelines, ttl).await
    }

    /// Takes the leases of `pipelines` all at once, or none (a one-off command).
    pub async fn take_all(&self, pipelines: &[String], ttl: Duration) -> Result<(), StateError> {
        leases::take_all(&self.pool, self.runner()?, pipelines, ttl).await
    }

    /// Extends the leases still held; returns those found lost.
    pub async fn renew(&self, ttl: Duration) -> Result<Vec<String>, StateError> {
        leases::renew(&self.pool, self.runner()?, ttl).await
    }

    /// Gives one lease back.
    pub async fn release(&self, pipeline: &str) -> Result<(), StateError> {
        leases::release(&self.pool, self.runner()?, pipeline).await
    }

    /// Gives every lease back and leaves (a clean stop).
    pub async fn leave(&self) -> Result<(), StateError> {
        leases::leave(&self.pool, self.runner()?).await
    }

    /// Who holds each pipeline.
    pub async fn holders(&self) -> Result<Vec<LeaseHolder>, StateError> {
        leases::holders(&self.pool).await
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl StateStore for PgStore {
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
        commit::commit(&self.pool, self.fencing.as_deref(), pipeline, commit).await
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

    async fn inbox_pending_count(&self, pipeline: &str, source: &str) -> Result<u64, StateError> {
        inbox::pending_count(&self.pool, pipeline, source).await
    }

    async fn inbox_prune(&self, source: &str, pipelines: &[String]) -> Result<u64, StateError> {
        inbox::prune(&self.pool, source, pipelines).await
    }

    async fn secret_get(&self, connector: &str, name: &str) -> Result<Option<String>, StateError> {
        secrets::get(&self.pool, connector, name).await
    }

    async fn secret_put(&self, connector: &str, name: &str, value: &str) -> Result<(), StateError> {
        secrets::put(&self.pool, connector, name, value).await
    }

    async fn secret_lock(&self, connector: &str) -> Result<SecretLock, StateError> {
        secrets::lock(&self.pool, connector).await
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
        if self.fencing.is_some()
            && let Err(error) = self.leave().await
        {
            tracing::warn!(%error, "could not give the leases back; they expire on their own");
        }
        self.pool.close().await;
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
        commit::record_facts(&self.pool, self.fencing.as_deref(), pipeline, &facts).await
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
