//! The `StateStore` trait: checkpoints, the delivered-event ledger, dead letters,
//! the webhook inbox and connector secrets. Implemented by state-sqlite and
//! state-postgres; the engine only speaks this trait.

use crate::error::StateError;
use crate::events::EventKind;
use crate::keys::{IdempotencyKey, KeyMap};
use crate::model::{OrderFact, PersonTotals};
use crate::source::{Checkpoint, InboxItem};
use async_trait::async_trait;
use jiff::Timestamp;
use std::collections::{HashMap, HashSet};

/// What became of an event, as remembered by the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Skipped(String),
    DeadLettered,
}

impl Outcome {
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Self::Delivered => OutcomeKind::Delivered,
            Self::Skipped(_) => OutcomeKind::Skipped,
            Self::DeadLettered => OutcomeKind::DeadLettered,
        }
    }

    pub fn as_str(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The skip reason, "" for the other outcomes.
    pub fn reason(&self) -> &str {
        match self {
            Self::Skipped(reason) => reason,
            _ => "",
        }
    }

    /// An outcome read back from a store: its kind's name and the reason.
    pub fn from_stored(kind: &str, reason: &str) -> Option<Self> {
        Some(match OutcomeKind::parse(kind)? {
            OutcomeKind::Delivered => Self::Delivered,
            OutcomeKind::Skipped => Self::Skipped(reason.to_owned()),
            OutcomeKind::DeadLettered => Self::DeadLettered,
        })
    }
}

/// An outcome without its reason, for queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutcomeKind {
    Delivered,
    Skipped,
    DeadLettered,
}

impl OutcomeKind {
    pub const ALL: [OutcomeKind; 3] = [Self::Delivered, Self::Skipped, Self::DeadLettered];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Skipped => "skipped",
            Self::DeadLettered => "dead-lettered",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub content_hash: String,
    pub outcome: Outcome,
}

#[derive(Clone, Debug)]
pub struct LedgerRow {
    pub key: IdempotencyKey,
    pub kind: EventKind,
    pub content_hash: String,
    pub outcome: Outcome,
    pub occurred_at: Timestamp,
}

/// Where a dead letter came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterStage {
    /// The source could not parse the record; `payload` is a `BadRecord`.
    Source,
    /// The sink rejected the event; `payload` is a persisted event document.
    Sink,
}

impl DeadLetterStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Sink => "sink",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "source" => Some(Self::Source),
            "sink" => Some(Self::Sink),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewDeadLetter {
    pub key: Option<IdempotencyKey>,
    pub stage: DeadLetterStage,
    pub reason: String,
    pub payload: serde_json::Value,
}

#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub id: i64,
    pub pipeline: String,
    pub key: Option<IdempotencyKey>,
    pub stage: DeadLetterStage,
    pub reason: String,
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
}

/// Everything one acknowledged batch changes, written in one transaction.
#[derive(Clone, Debug, Default)]
pub struct Commit {
    pub ledger: Vec<LedgerRow>,
    pub dead_letters: Vec<NewDeadLetter>,
    /// Set on the batch that finishes a page.
    pub checkpoint: Option<(String, Checkpoint)>,
    /// Webhook inbox items this pipeline has now fully processed.
    pub inbox_done: Vec<i64>,
    /// Dead letters that a replay has now delivered or re-dead-lettered.
    pub dead_letters_resolved: Vec<i64>,
    /// Placed orders read from the source (id, time placed), for the
    /// reconciliation report; committed with the page's checkpoint.
    pub orders_read: Vec<(String, Timestamp)>,
    /// Order facts recorded with the commit, as
    /// [`record_facts`](StateStore::record_facts) records them: a webhook
    /// round fills its totals events from
    /// [`preview_facts`](StateStore::preview_facts) and records the facts
    /// with the commit that follows delivery, one write transaction a round
    /// where there were two.
    pub facts: Vec<OrderFact>,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self.ledger.is_empty()
            && self.dead_letters.is_empty()
            && self.checkpoint.is_none()
            && self.inbox_done.is_empty()
            && self.dead_letters_resolved.is_empty()
            && self.orders_read.is_empty()
            && self.facts.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct StreamStatus {
    pub stream: String,
    pub checkpoint: Checkpoint,
    pub updated_at: Timestamp,
}

/// How many events of one kind had one outcome (skips by reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventCount {
    pub kind: EventKind,
    pub outcome: Outcome,
    pub count: u64,
}

#[derive(Clone, Debug, Default)]
pub struct PipelineStatus {
    pub started_at: Option<Timestamp>,
    pub streams: Vec<StreamStatus>,
    /// By kind, then outcome and reason.
    pub counts: Vec<EventCount>,
    pub dead_letters: u64,
    pub last_delivery_at: Option<Timestamp>,
}

/// Held while a connector's secrets are rotated (see
/// [`StateStore::secret_lock`]); whatever the store needs to keep the lock.
#[derive(Default)]
pub struct SecretLock(Option<Box<dyn std::any::Any + Send>>);

impl SecretLock {
    pub fn holding(guard: impl std::any::Any + Send) -> Self {
        Self(Some(Box::new(guard)))
    }
}

impl std::fmt::Debug for SecretLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "SecretLock(held)" } else { "SecretLock(none needed)" })
    }
}

/// Source state keys under this prefix are notices for the operator (a
/// group conflict, two customers with one email): `tillflow status` lists
/// their non-empty values. A source writes an empty value to withdraw one.
pub const SOURCE_NOTICE_PREFIX: &str = "notice:";

#[async_trait]
pub trait StateStore: Send + Sync {
    /// The moment the pipeline first started, recorded on first call.
    async fn pipeline_started_at(&self, pipeline: &str, now: Timestamp) -> Result<Timestamp, StateError>;

    async fn checkpoint(&self, pipeline: &str, stream: &str) -> Result<Option<Checkpoint>, StateError>;

    /// Ledger entries for the keys that have one.
    async fn ledger_lookup(&self, pipeline: &str, keys: &[&IdempotencyKey]) -> Result<KeyMap<LedgerEntry>, StateError>;

    /// Writes ledger rows, dead letters, the checkpoint and inbox marks in one
    /// transaction.
    async fn commit(&self, pipeline: &str, commit: Commit) -> Result<(), StateError>;

    async fn dead_letters(&self, pipeline: Option<&str>, limit: u32) -> Result<Vec<DeadLetter>, StateError>;

    /// Deletes dead letters (all of the pipeline's when `ids` is `None`).
    async fn discard_dead_letters(&self, pipeline: &str, ids: Option<&[i64]>) -> Result<u64, StateError>;

    /// Stores a webhook durably; returns its id. Called before the 2xx.
    async fn inbox_push(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
        received_at: Timestamp,
    ) -> Result<i64, StateError>;

    /// Webhooks of `source` not yet processed by `pipeline`, oldest first.
    async fn inbox_pending(&self, pipeline: &str, source: &str, limit: u32) -> Result<Vec<InboxItem>, StateError>;

    /// How many webhooks of `source` `pipeline` has yet to process, counted
    /// without reading them (a backlog of large bodies is what a status view
    /// is looked at for).
    async fn inbox_pending_count(&self, pipeline: &str, source: &str) -> Result<u64, StateError>;

    /// Deletes the webhooks of `source` that every one of `pipelines` (all
    /// the configured pipelines reading it) has processed; returns how many.
    /// A listed pipeline that has processed none keeps them all, so the inbox
    /// only shrinks behind the slowest reader.
    async fn inbox_prune(&self, source: &str, pipelines: &[String]) -> Result<u64, StateError>;

    /// A connector secret such as a rotated OAuth refresh token.
    async fn secret_get(&self, connector: &str, name: &str) -> Result<Option<String>, StateError>;

    /// Persists a connector secret at once (its own transaction).
    async fn secret_put(&self, connector: &str, name: &str, value: &str) -> Result<(), StateError>;

    /// Keeps every other process sharing this state from rotating
    /// `connector`'s secrets until the lock is dropped: a rotating refresh
    /// token is good once, so two runners refreshing with it at once would
    /// burn it. One process alone needs nothing (its token manager is
    /// single-flight already).
    async fn secret_lock(&self, _connector: &str) -> Result<SecretLock, StateError> {
        Ok(SecretLock::default())
    }

    /// Records tombstones for people who asked to be forgotten (subjects of
    /// [`crate::forget`]); shared by every pipeline, kept for good, recording
    /// one twice changes nothing.
    async fn forget(&self, subjects: &[String], at: Timestamp) -> Result<(), StateError>;

    /// Which of `subjects` have a tombstone.
    async fn forgotten(&self, subjects: &[String]) -> Result<HashSet<String>, StateError>;

    /// Deletes what the state keeps that names the address `email`, as
    /// [`crate::forget::mentions`] finds it: dead letters, stored webhooks
    /// and sources' own entries, leaving no copy of them where the store can
    /// prevent one. Facts, totals and tombstones never hold an address (a
    /// guest is keyed by their email's subject), so they have nothing to give.
    async fn purge(&self, email: &str) -> Result<crate::forget::Purged, StateError>;

    /// What a source keeps of its own between runs, under keys it names
    /// (the Retail POS merge: who is who across POS and eCom). Shared by
    /// every pipeline reading the source; values are the source's own JSON.
    async fn source_state_get(&self, source: &str, keys: &[String]) -> Result<HashMap<String, String>, StateError>;

    /// Writes source state entries in one transaction.
    async fn source_state_put(&self, source: &str, entries: &[(String, String)]) -> Result<(), StateError>;

    /// Source state entries whose key starts with `prefix`, in key order, at
    /// most `limit` (what `tillflow status` lists of a source).
    async fn source_state_scan(
        &self,
        source: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StateError>;

    async fn status(&self, pipeline: &str) -> Result<PipelineStatus, StateError>;

    /// Lets go of the store at the end of a command: an embedded database
    /// folds its log back into its one file, so the file alone is the state
    /// (what an operator copies, backs up, or finds emptied is all there is).
    async fn close(&self) {}

    /// Forgets checkpoints, ledger and start time: the next run is a full re-sync.
    /// Dead letters and the inbox are kept.
    async fn reset(&self, pipeline: &str) -> Result<(), StateError>;

    /// Upserts what orders and refunds contribute to their people's totals;
    /// answers the totals, as they now stand, of every person the facts
    /// name (what [`person_totals`](Self::person_totals) would answer). The
    /// facts are given, not lent: a store may hand them to a writer that
    /// outlives the call's borrow (SQLite's group commit).
    async fn record_facts(
        &self,
        pipeline: &str,
        facts: Vec<OrderFact>,
    ) -> Result<HashMap<String, PersonTotals>, StateError>;

    /// What [`record_facts`](Self::record_facts) would answer for `facts`,
    /// without writing anything: the totals a commit carrying them
    /// ([`Commit::facts`]) makes, as long as no other facts of the pipeline
    /// are recorded between (its lease sees to that).
    async fn preview_facts(
        &self,
        pipeline: &str,
        facts: &[OrderFact],
    ) -> Result<HashMap<String, PersonTotals>, StateError>;

    /// Current totals of the given people (see [`crate::model::sum_facts`]).
    async fn person_totals(&self, pipeline: &str, people: &[&str])
    -> Result<HashMap<String, PersonTotals>, StateError>;

    /// Occurrence times of `kind` events whose ledger outcome is `outcome`,
    /// at or after `since`, oldest first: the reconciliation report's
    /// "delivered" and "skipped" sides.
    async fn event_times(
        &self,
        pipeline: &str,
        kind: EventKind,
        outcome: OutcomeKind,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StateError>;

    /// Times placed of the orders read from the source, at or after `since`:
    /// the reconciliation report's "read" side.
    async fn orders_read_times(&self, pipeline: &str, since: Timestamp) -> Result<Vec<Timestamp>, StateError>;
}
