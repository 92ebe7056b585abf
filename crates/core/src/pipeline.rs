//! The pipeline engine: source pages → rules → events → ledger dedupe → sink
//! batches → commit (ledger + checkpoint) only after the sink acknowledged.
//!
//! Memory is bounded by a page and a batch: a reader task reads ahead at most
//! `read_ahead_pages` pages through a bounded channel, whatever the history size.

use crate::error::{ConnectorError, ErrorClass, StateError};
use crate::events::Subject;
use crate::events::{DeriveContext, Event, EventKind, derive_events};
use crate::failpoint::Failpoint;
use crate::keys::{IdempotencyKey, content_hash};
use crate::model::{OrderFact, Person, Record, SourceIdentity};
use crate::persist;
use crate::rules::Rules;
use crate::sink::{ItemOutcome, Sink};
use crate::source::{Page, Source, SourceItem};
use crate::state::{Commit, DeadLetterStage, LedgerEntry, LedgerRow, NewDeadLetter, Outcome, StateStore};
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Why a pass did not complete.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Credentials or configuration: the operator must act.
    #[error("configuration error: {0}")]
    Config(String),
    /// The platform failed; nothing unacknowledged was committed.
    #[error("{0}")]
    Transient(String),
    #[error(transparent)]
    State(#[from] StateError),
    /// Shutdown was requested; everything acknowledged so far is committed.
    #[error("interrupted by shutdown")]
    Interrupted,
}

impl From<ConnectorError> for PipelineError {
    fn from(error: ConnectorError) -> Self {
        match error.class {
            ErrorClass::Config => Self::Config(error.message),
            ErrorClass::Transient | ErrorClass::Permanent => Self::Transient(error.message),
        }
    }
}

/// Counts of one pass (or one replay).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub records_read: u64,
    pub delivered: BTreeMap<EventKind, u64>,
    pub skipped: BTreeMap<String, u64>,
    pub dead_lettered: u64,
    /// Events the ledger had already seen with the same content.
    pub unchanged: u64,
    pub elapsed: Duration,
}

impl PassReport {
    pub fn delivered_total(&self) -> u64 {
        self.delivered.values().sum()
    }
    fn merge(&mut self, other: &PassReport) {
        self.records_read += other.records_read;
        for (kind, count) in &other.delivered {
            *self.delivered.entry(*kind).or_default() += count;
        }
        for (reason, count) in &other.skipped {
            *self.skipped.entry(reason.clone()).or_default() += count;
        }
        self.dead_lettered += other.dead_lettered;
        self.unchanged += other.unchanged;
    }
}

/// Observes a pass, e.g. to draw progress bars.
pub trait Progress: Send + Sync {
    fn page(&self, _pipeline: &str, _stream: &str, _records: usize, _delivered: u64) {}
}

/// A progress observer that shows nothing.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

pub struct PipelineOptions {
    pub read_ahead_pages: usize,
    pub failpoint: Arc<Failpoint>,
    /// Flips to `true` when the process is asked to stop.
    pub shutdown: watch::Receiver<bool>,
    pub progress: Arc<dyn Progress>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        // A sender that is never used: the pipeline just never sees a shutdown.
        let (_sender, receiver) = watch::channel(false);
        Self {
            read_ahead_pages: 2,
            failpoint: Arc::new(Failpoint::disarmed()),
            shutdown: receiver,
            progress: Arc::new(NoProgress),
        }
    }
}

pub struct Pipeline {
    name: String,
    source_name: String,
    source: Option<Box<dyn Source>>,
    sink: Box<dyn Sink>,
    state: Arc<dyn StateStore>,
    rules: Rules,
    options: PipelineOptions,
}

impl Pipeline {
    pub fn new(
        name: impl Into<String>,
        source_name: impl Into<String>,
        source: Box<dyn Source>,
        sink: Box<dyn Sink>,
        state: Arc<dyn StateStore>,
        rules: Rules,
        options: PipelineOptions,
    ) -> Self {
        Self { name: name.into(), source_name: source_name.into(), source: Some(source), sink, state, rules, options }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One full pass: pending webhooks, then every stream from its checkpoint
    /// to the end.
    pub async fn run_pass(&mut self) -> Result<PassReport, PipelineError> {
        let started = Instant::now();
        let context = self.context().await?;
        let mut report = self.process_inbox(&context).await?;
        let streams = self.source_mut().streams();
        for stream in streams {
            let stream_report = self.run_stream(&stream, &context).await?;
            report.merge(&stream_report);
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Processes webhooks waiting in the durable inbox, without reading pages.
    pub async fn process_inbox_only(&mut self) -> Result<PassReport, PipelineError> {
        let started = Instant::now();
        let context = self.context().await?;
        let mut report = self.process_inbox(&context).await?;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    async fn context(&self) -> Result<DeriveContext, PipelineError> {
        // Whole seconds: platforms stamp records to the second, so anything
        // stamped in the second the pipeline first started counts as live.
        let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
        let pipeline_started_at = self.state.pipeline_started_at(&self.name, now).await?;
        Ok(DeriveContext { pipeline_started_at })
    }

    fn source_mut(&mut self) -> &mut Box<dyn Source> {
        self.source.as_mut().expect("the source is back after every stream")
    }

    async fn run_stream(&mut self, stream: &str, context: &DeriveContext) -> Result<PassReport, PipelineError> {
        let mut report = PassReport::default();
        let checkpoint = self.state.checkpoint(&self.name, stream).await?;
        let (pages_sender, mut pages) = mpsc::channel(self.options.read_ahead_pages.max(1));
        let mut source = self.source.take().expect("source present between streams");
        let stream_name = stream.to_owned();
        let reader = tokio::spawn(async move {
            let mut position = checkpoint;
            loop {
                let page = source.read(&stream_name, position.as_ref()).await;
                let stop = match &page {
                    Ok(page) => {
                        position = Some(page.checkpoint.clone());
                        page.last
                    }
                    Err(_) => true,
                };
                if pages_sender.send(page).await.is_err() || stop {
                    break;
                }
            }
            source
        });
        // History accumulates across pages so bulk endpoints get full batches;
        // what is still queued when the stream ends goes out then.
        let mut pending = Pending::default();
        let mut outcome = Ok(());
        while let Some(page) = pages.recv().await {
            let step = match page {
                Ok(Page { items, checkpoint, last: _ }) => {
                    let records = items.len();
                    let tail = Commit { checkpoint: Some((stream.to_owned(), checkpoint)), ..Commit::default() };
                    let result = self.process_items(items, tail, context, &mut report, &mut pending).await;
                    self.options.progress.page(&self.name, stream, records, report.delivered_total());
                    result
                }
                Err(error) => Err(PipelineError::from(error.context(format!("reading {stream}")))),
            };
            if let Err(error) = step {
                outcome = Err(error);
                break;
            }
        }
        if outcome.is_ok() {
            outcome = self.deliver_ready(&mut pending, true, &mut report).await;
        }
        // Dropping the receiver stops the reader at its next send.
        drop(pages);
        let source = reader.await.map_err(|e| PipelineError::Transient(format!("source reader task failed: {e}")))?;
        self.source = Some(source);
        outcome.map(|()| report)
    }

    async fn process_inbox(&mut self, context: &DeriveContext) -> Result<PassReport, PipelineError> {
        let mut report = PassReport::default();
        loop {
            let items = self.state.inbox_pending(&self.name, &self.source_name, 100).await?;
            if items.is_empty() {
                return Ok(report);
            }
            let mut records: Vec<SourceItem> = Vec::new();
            let mut done = Vec::new();
            for item in &items {
                match self.source_mut().parse_webhook(item).await {
                    Ok(parsed) => records.extend(parsed),
                    Err(error) if error.class == ErrorClass::Permanent => {
                        // Kept whole, headers included, so a replay parses it again.
                        records.push(Err(crate::source::BadRecord {
                            stream: crate::source::WEBHOOK_STREAM.into(),
                            reason: error.message,
                            raw: item.to_raw(),
                        }));
                    }
                    Err(error) => return Err(error.into()),
                }
                done.push(item.id);
            }
            let mut pending = Pending::default();
            let tail = Commit { inbox_done: done, ..Commit::default() };
            self.process_items(records, tail, context, &mut report, &mut pending).await?;
            self.deliver_ready(&mut pending, true, &mut report).await?;
        }
    }

    /// Derives and filters the events of `items` and queues them in
    /// `pending` with the page's commit (`checkpoint`, skips, source dead
    /// letters, `inbox_done`); delivers whatever full batches are ready.
    async fn process_items(
        &mut self,
        items: Vec<SourceItem>,
        mut tail: Commit,
        context: &DeriveContext,
        report: &mut PassReport,
        pending: &mut Pending,
    ) -> Result<(), PipelineError> {
        let mut records = Vec::new();
        for item in items {
            report.records_read += 1;
            match item {
                Ok(record) => records.push(record),
                Err(bad) => {
                    tracing::warn!(pipeline = %self.name, stream = %bad.stream, reason = %bad.reason, "record dead-lettered");
                    report.dead_lettered += 1;
                    tail.dead_letters.push(NewDeadLetter {
                        key: None,
                        stage: DeadLetterStage::Source,
                        reason: bad.reason.clone(),
                        payload: persist::bad_record_document(&bad),
                    });
                }
            }
        }
        // The store's own "orders per day" counts placed orders; the report
        // compares them with what was delivered.
        tail.orders_read = records
            .iter()
            .filter_map(|record| match record {
                Record::Order(order) if order.status.is_placed() => Some((order.identity.id.clone(), order.placed_at)),
                _ => None,
            })
            .collect();
        let mut events = if self.sink.wants_person_totals() {
            self.person_totals_events(&records, context).await?
        } else {
            Vec::new()
        };
        for record in records {
            events.extend(derive_events(record, context).into_iter().filter(|event| self.sink.accepts(event.kind)));
        }
        self.select(events, &mut tail, report, pending).await?;
        pending.close_page(tail);
        self.deliver_ready(pending, false, report).await
    }

    /// Records what this page's orders and refunds contribute to their people's
    /// totals, then proposes one totals event per person touched. They come
    /// first so a sink creates or updates the person before its order events.
    async fn person_totals_events(
        &self,
        records: &[Record],
        context: &DeriveContext,
    ) -> Result<Vec<Event>, PipelineError> {
        let mut facts = Vec::new();
        let mut people: BTreeMap<String, (&Person, &SourceIdentity, Timestamp)> = BTreeMap::new();
        for record in records {
            let Some(fact) = OrderFact::of(record) else { continue };
            let person = record.person().expect("orders and refunds have a person");
            let latest = people.entry(fact.person.clone()).or_insert((person, record.identity(), fact.at));
            if record.changed_at() >= latest.2 {
                *latest = (person, record.identity(), record.changed_at());
            }
            facts.push(fact);
        }
        if facts.is_empty() {
            return Ok(Vec::new());
        }
        self.state.record_facts(&self.name, &facts).await?;
        let keys: Vec<&str> = people.keys().map(String::as_str).collect();
        let mut totals = self.state.person_totals(&self.name, &keys).await?;
        let mut events = Vec::with_capacity(people.len());
        for (key, (person, identity, at)) in people {
            let Some(totals) = totals.remove(&key) else { continue };
            let subject = Subject::PersonTotals { person: Arc::new(person.clone()), totals };
            let person_identity =
                SourceIdentity { platform: identity.platform.clone(), source: identity.source.clone(), id: key };
            events.push(Event {
                key: IdempotencyKey::new(&person_identity, "person", "totals", None),
                kind: EventKind::ProfileUpdated,
                occurred_at: at,
                content_hash: content_hash(&subject),
                subject,
                history: at < context.pipeline_started_at,
                requires: None,
            });
        }
        Ok(events)
    }

    /// Drops what the ledger already has, applies the rules, and queues what
    /// must be sent in `pending`; skip rows go into `tail`.
    async fn select(
        &mut self,
        events: Vec<Event>,
        tail: &mut Commit,
        report: &mut PassReport,
        pending: &mut Pending,
    ) -> Result<(), PipelineError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<&IdempotencyKey> = events.iter().map(|e| &e.key).collect();
        keys.extend(events.iter().filter_map(|e| e.requires.as_ref()));
        let ledger = self.state.ledger_lookup(&self.name, &keys).await?;
        for event in events {
            if pending.is_planned(&event.key) {
                // Queued from an earlier page and not yet sent: a newer
                // version of a resendable event takes its place in the queue.
                if !pending.supersede(event) {
                    report.unchanged += 1;
                }
                continue;
            }
            if !needs_action(&event, ledger.get(&event.key)) {
                report.unchanged += 1;
                continue;
            }
            if let Some(required) = &event.requires {
                let delivered = ledger.get(required).is_some_and(|entry| entry.outcome == Outcome::Delivered);
                if !delivered && !pending.is_planned(required) {
                    continue;
                }
            }
            let identifies = self.sink.identifies(event.person());
            if let Some(reason) = self.rules.verdict(&event, identifies, self.sink.unidentified_reason()) {
                *report.skipped.entry(reason.as_str().to_owned()).or_default() += 1;
                let unchanged_skip = ledger.get(&event.key).is_some_and(|entry| {
                    entry.content_hash == event.content_hash
                        && entry.outcome == Outcome::Skipped(reason.as_str().to_owned())
                });
                if !unchanged_skip {
                    tail.ledger.push(ledger_row(&event, Outcome::Skipped(reason.as_str().to_owned())));
                }
                continue;
            }
            pending.push(event, None);
        }
        Ok(())
    }

    /// Delivers the batches `pending` has ready, oldest first: a full batch,
    /// or a run that cannot grow because a live event follows history (or the
    /// reverse); with `everything`, the rest too. Each acknowledged batch is
    /// committed with its outcomes and the commits of every page whose events
    /// are now all delivered, so a checkpoint never passes an unsent event.
    async fn deliver_ready(
        &mut self,
        pending: &mut Pending,
        everything: bool,
        report: &mut PassReport,
    ) -> Result<(), PipelineError> {
        let history_batch = self.sink.max_batch(true).max(1);
        let live_batch = self.sink.max_batch(false).max(1);
        while let Some((front, _)) = pending.events.front() {
            let is_history = front.history;
            let limit = if is_history { history_batch } else { live_batch };
            let run = pending.events.iter().take(limit).take_while(|(event, _)| event.history == is_history).count();
            if !everything && run < limit && run == pending.events.len() {
                break;
            }
            if *self.options.shutdown.borrow() {
                return Err(PipelineError::Interrupted);
            }
            self.options.failpoint.pass("before-deliver").await;
            let first_number = pending.first;
            let batch = pending.take(run);
            let events: Vec<Event> = batch.iter().map(|(event, _)| event.clone()).collect();
            let outcomes = match self.sink.deliver(&events, is_history).await {
                Ok(outcomes) => outcomes,
                Err(error) if error.class == ErrorClass::Permanent => {
                    // The sink refused the batch as a whole; each event is kept
                    // as a dead letter rather than retried forever or lost.
                    vec![ItemOutcome::Rejected { reason: error.message }; events.len()]
                }
                Err(error) => return Err(error.into()),
            };
            if outcomes.len() != events.len() {
                return Err(PipelineError::Transient(format!(
                    "sink {} answered {} outcomes for {} events",
                    self.sink.platform(),
                    outcomes.len(),
                    events.len()
                )));
            }
            self.options.failpoint.pass("after-ack").await;
            let mut rows = Vec::with_capacity(batch.len());
            let mut commit = Commit::default();
            for (offset, ((event, dead_letter_id), outcome)) in batch.into_iter().zip(outcomes).enumerate() {
                let number = first_number + offset as u64;
                commit.dead_letters_resolved.extend(dead_letter_id);
                match outcome {
                    ItemOutcome::Delivered => {
                        *report.delivered.entry(event.kind).or_default() += 1;
                        rows.push((number, ledger_row(&event, Outcome::Delivered)));
                    }
                    ItemOutcome::Skipped { reason } => {
                        *report.skipped.entry(reason.clone()).or_default() += 1;
                        rows.push((number, ledger_row(&event, Outcome::Skipped(reason))));
                    }
                    ItemOutcome::Rejected { reason } => {
                        tracing::warn!(pipeline = %self.name, key = %event.key, %reason, "event dead-lettered");
                        report.dead_lettered += 1;
                        rows.push((number, ledger_row(&event, Outcome::DeadLettered)));
                        commit.dead_letters.push(NewDeadLetter {
                            key: Some(event.key.clone()),
                            stage: DeadLetterStage::Sink,
                            reason,
                            payload: persist::event_document(&event),
                        });
                    }
                }
            }
            pending.attach_finished_pages(&mut commit, rows);
            self.state.commit(&self.name, commit).await?;
            self.options.failpoint.pass("after-batch-commit").await;
        }
        // Pages with nothing left to send before them commit now.
        let mut commit = Commit::default();
        pending.attach_finished_pages(&mut commit, Vec::new());
        if !commit.is_empty() {
            self.state.commit(&self.name, commit).await?;
        }
        Ok(())
    }

    /// Sends dead letters again: sink rejections are re-delivered as they
    /// were; source records are read again by the source and then take the
    /// same page path as a pass (facts and person totals, orders read, ledger
    /// dedupe), their letters resolved in that page's commit. What fails
    /// again stays a dead letter with the new reason.
    pub async fn replay_dead_letters(&mut self) -> Result<PassReport, PipelineError> {
        let started = Instant::now();
        let context = self.context().await?;
        let mut report = PassReport::default();
        let letters = self.state.dead_letters(Some(&self.name), u32::MAX).await?;
        let mut events = Pending::default();
        let mut records: Vec<SourceItem> = Vec::new();
        let mut resolved = Vec::new();
        for letter in letters {
            match letter.stage {
                DeadLetterStage::Sink => match persist::read_event_document(&letter.payload) {
                    Ok(event) => events.push(event, Some(letter.id)),
                    Err(reason) => tracing::warn!(id = letter.id, %reason, "dead letter cannot be read; kept"),
                },
                DeadLetterStage::Source => {
                    let bad = match persist::read_bad_record_document(&letter.payload) {
                        Ok(bad) => bad,
                        Err(reason) => {
                            tracing::warn!(id = letter.id, %reason, "dead letter cannot be read; kept");
                            continue;
                        }
                    };
                    let read = match crate::source::InboxItem::from_raw(&bad.raw) {
                        Some(webhook) if bad.stream == crate::source::WEBHOOK_STREAM => {
                            self.source_mut().parse_webhook(&webhook).await
                        }
                        _ => self.source_mut().reparse(&bad.stream, &bad.raw).await,
                    };
                    match read {
                        Ok(items) => {
                            records.extend(items);
                            resolved.push(letter.id);
                        }
                        Err(error) if error.class == ErrorClass::Permanent => {
                            tracing::warn!(id = letter.id, reason = %error.message, "record cannot be read again; kept")
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            }
        }
        self.deliver_ready(&mut events, true, &mut report).await?;
        if !resolved.is_empty() {
            let mut pending = Pending::default();
            let tail = Commit { dead_letters_resolved: resolved, ..Commit::default() };
            self.process_items(records, tail, &context, &mut report, &mut pending).await?;
            self.deliver_ready(&mut pending, true, &mut report).await?;
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }
}

/// An event to send and, when it is a replay, the dead letter it resolves.
type EventAndLetter = (Event, Option<i64>);

/// Events selected but not yet delivered, in order, across pages, and the
/// commits of the pages they came from. Events are numbered in the order they
/// were queued; a page's commit waits until every event queued before its end
/// is acknowledged, so its checkpoint never passes an unsent event.
#[derive(Default)]
struct Pending {
    events: VecDeque<EventAndLetter>,
    /// The number of the front event.
    first: u64,
    /// Each page's commit with the number one past its last event.
    pages: VecDeque<(u64, Commit)>,
    /// Queued keys and their numbers.
    planned: HashMap<IdempotencyKey, u64>,
}

impl Pending {
    fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    fn is_planned(&self, key: &IdempotencyKey) -> bool {
        self.planned.contains_key(key)
    }

    fn push(&mut self, event: Event, dead_letter: Option<i64>) {
        self.planned.insert(event.key.clone(), self.end());
        self.events.push_back((event, dead_letter));
    }

    /// Puts `event` in place of the queued event with its key when the kind is
    /// resent on change and the content changed; false when it is a repeat.
    fn supersede(&mut self, event: Event) -> bool {
        let Some(&number) = self.planned.get(&event.key) else { return false };
        let Some((queued, _)) = self.events.get_mut((number - self.first) as usize) else { return false };
        if !event.kind.resend_on_change() || queued.content_hash == event.content_hash {
            return false;
        }
        *queued = event;
        true
    }

    fn close_page(&mut self, commit: Commit) {
        if !commit.is_empty() {
            self.pages.push_back((self.end(), commit));
        }
    }

    /// Takes the first `count` events off the queue.
    fn take(&mut self, count: usize) -> Vec<EventAndLetter> {
        let batch: Vec<EventAndLetter> = self.events.drain(..count).collect();
        for (offset, (event, _)) in batch.iter().enumerate() {
            let number = self.first + offset as u64;
            if self.planned.get(&event.key) == Some(&number) {
                self.planned.remove(&event.key);
            }
        }
        self.first += count as u64;
        batch
    }

    /// Moves into `commit` the commits of pages whose events are all
    /// delivered, with the batch's ledger `rows`. Ledger rows go in the order
    /// they arose (a page's skips after its own events, before a later
    /// page's), so a newer outcome for a key is written last.
    fn attach_finished_pages(&mut self, commit: &mut Commit, rows: Vec<(u64, LedgerRow)>) {
        let mut ordered = rows;
        while self.pages.front().is_some_and(|(end, _)| *end <= self.first) {
            let (end, page) = self.pages.pop_front().expect("checked");
            ordered.extend(page.ledger.into_iter().map(|row| (end, row)));
            commit.dead_letters.extend(page.dead_letters);
            if page.checkpoint.is_some() {
                commit.checkpoint = page.checkpoint;
            }
            commit.inbox_done.extend(page.inbox_done);
            commit.dead_letters_resolved.extend(page.dead_letters_resolved);
            commit.orders_read.extend(page.orders_read);
        }
        ordered.sort_by_key(|(number, _)| *number);
        commit.ledger.extend(ordered.into_iter().map(|(_, row)| row));
    }
}

/// Whether an event must be (re)considered given its ledger entry.
fn needs_action(event: &Event, entry: Option<&LedgerEntry>) -> bool {
    let Some(entry) = entry else { return true };
    let changed = entry.content_hash != event.content_hash;
    match entry.outcome {
        Outcome::Delivered => changed && event.kind.resend_on_change(),
        // A skipped or dead-lettered event is looked at again once its record
        // changed: the change may be the fix (an email added, a total corrected).
        Outcome::Skipped(_) | Outcome::DeadLettered => changed,
    }
}

fn ledger_row(event: &Event, outcome: Outcome) -> LedgerRow {
    LedgerRow {
        key: event.key.clone(),
        kind: event.kind,
        content_hash: event.content_hash.clone(),
        outcome,
        occurred_at: event.occurred_at,
    }
}
