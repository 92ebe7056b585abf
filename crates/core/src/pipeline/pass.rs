//! A pass: pending webhooks first, then every stream from its checkpoint to
//! its end, pages read ahead by a task of their own (bounded, so memory does
//! not grow with the history), the pages waiting (up to 1,000 records) taken
//! together, their records turned into events and queued with one commit.

use super::pending::Pending;
use super::totals::{TotalsPlan, fill_totals};
use super::{PassReport, Pipeline, PipelineError};
use crate::error::ErrorClass;
use crate::events::{DeriveContext, derive_accepted};
use crate::forget;
use crate::model::Record;
use crate::persist;
use crate::source::{BadRecord, Page, SourceItem, WEBHOOK_STREAM};
use crate::state::{Commit, DeadLetterStage, NewDeadLetter};
use std::time::Instant;
use tokio::sync::mpsc;

/// Records processed together when pages are already waiting: enough to
/// spread a transaction's fixed cost (its fsyncs, the pages every commit
/// rewrites) thin, few enough to keep a pass's memory small.
const MERGED_RECORDS: usize = 1000;

/// Webhooks taken from the inbox at a time.
const INBOX_PAGE: u32 = 100;

/// Full pages of webhooks a round takes at most before it lets the pipeline
/// poll, prune and report.
const INBOX_PAGES_PER_ROUND: usize = 10;

/// When a page's order facts are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FactsWritten {
    /// In a write of their own, before the page's events go out: a stream's
    /// pages queue behind one another, and each page's totals build on the
    /// facts of the pages before it, written or not yet delivered.
    BeforeDelivery,
    /// With the page's commit, once its events are delivered, the totals
    /// previewed: a page that is delivered and committed before the next is
    /// read (a webhook round's, a replay's) needs no write of its own. At
    /// 1,000 webhooks a second that write was a third of a round, waiting
    /// its turn on the state's writer; and a round that fails to deliver
    /// now leaves the state as it found it.
    WithCommit,
}

impl Pipeline {
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

    pub(super) async fn run_stream(
        &mut self,
        stream: &str,
        context: &DeriveContext,
    ) -> Result<PassReport, PipelineError> {
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
                Ok(Page { mut items, mut checkpoint, last: _ }) => {
                    // Pages already read wait together: one state round trip
                    // and one facts transaction for all of them, not one each.
                    let mut read_error = None;
                    while items.len() < MERGED_RECORDS {
                        match pages.try_recv() {
                            Ok(Ok(next)) => {
                                // Room for the whole merge at the first page
                                // merged: growing by doubling moved the
                                // records already there again and again.
                                items.reserve(MERGED_RECORDS.saturating_sub(items.len()) + next.items.len());
                                items.extend(next.items);
                                checkpoint = next.checkpoint;
                            }
                            Ok(Err(error)) => {
                                read_error = Some(PipelineError::from(error.context(format!("reading {stream}"))));
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let records = items.len();
                    let tail = Commit { checkpoint: Some((stream.to_owned(), checkpoint)), ..Commit::default() };
                    let result = self
                        .process_items(items, tail, context, &mut report, &mut pending, FactsWritten::BeforeDelivery)
                        .await;
                    self.options.progress.page(&self.name, stream, records, report.delivered_total());
                    result.and(read_error.map_or(Ok(()), Err))
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

    /// Processes the webhooks waiting in the inbox, a page at a time, while
    /// the pages come back full and at most `INBOX_PAGES_PER_ROUND` of them.
    /// Not until the inbox is empty: under a steady stream it never is, and
    /// a round waiting for that never ended — no pages read, no poll, no
    /// prune, no report. Every webhook stored meanwhile has woken the
    /// pipeline again, and a round that stopped at its limit says so
    /// (`webhooks_left`), so what is left gets the next round.
    pub(super) async fn process_inbox(&mut self, context: &DeriveContext) -> Result<PassReport, PipelineError> {
        let mut report = PassReport::default();
        for _ in 0..INBOX_PAGES_PER_ROUND {
            let items = self.state.inbox_pending(&self.name, &self.source_name, INBOX_PAGE).await?;
            report.webhooks_left = items.len() == INBOX_PAGE as usize;
            if items.is_empty() {
                break;
            }
            let mut records: Vec<SourceItem> = Vec::new();
            let mut done = Vec::new();
            for item in &items {
                match self.source_mut().parse_webhook(item).await {
                    Ok(parsed) => records.extend(parsed),
                    Err(error) if error.class == ErrorClass::Permanent => {
                        // Kept whole, headers included, so a replay parses it again.
                        records.push(Err(BadRecord {
                            stream: WEBHOOK_STREAM.into(),
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
            self.process_items(records, tail, context, &mut report, &mut pending, FactsWritten::WithCommit).await?;
            self.deliver_ready(&mut pending, true, &mut report).await?;
            if !report.webhooks_left {
                break;
            }
        }
        Ok(report)
    }

    /// Derives and filters the events of `items` and queues them in
    /// `pending` with the page's commit (`checkpoint`, skips, source dead
    /// letters, `inbox_done`, and the facts when `written` says so);
    /// delivers whatever full batches are ready.
    pub(super) async fn process_items(
        &mut self,
        items: Vec<SourceItem>,
        mut tail: Commit,
        context: &DeriveContext,
        report: &mut PassReport,
        pending: &mut Pending,
        written: FactsWritten,
    ) -> Result<(), PipelineError> {
        let mut records = Vec::with_capacity(items.len());
        let mut bad_records = Vec::new();
        for item in items {
            report.records_read += 1;
            match item {
                Ok(record) => records.push(record),
                Err(bad) => bad_records.push(bad),
            }
        }
        if !bad_records.is_empty() {
            let forgotten = self.forgotten_bad_records(&bad_records).await?;
            for (bad, forgotten) in bad_records.into_iter().zip(forgotten) {
                if forgotten {
                    tracing::info!(pipeline = %self.name, stream = %bad.stream, "a record that could not be read names a forgotten person: skipped, not kept");
                    *report.skipped.entry(forget::FORGOTTEN.to_owned()).or_default() += 1;
                    continue;
                }
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
        // The store's own "orders per day" counts placed orders; the report
        // compares them with what was delivered.
        tail.orders_read = records
            .iter()
            .filter_map(|record| match record {
                Record::Order(order) if order.status.is_placed() => {
                    Some((order.identity.id.to_string(), order.placed_at))
                }
                _ => None,
            })
            .collect();
        let TotalsPlan { facts, mut events, people } =
            if self.sink.wants_person_totals() { self.totals_plan(&records, context) } else { TotalsPlan::default() };
        let planned = events.len();
        // Most records make two or three events (an order: placed, a line
        // or two, its state); growing one by one copied the list again and again.
        events.reserve(records.len() * 3);
        for record in records {
            for mut event in derive_accepted(record, context, &|kind| self.sink.accepts(kind)) {
                if let Some(fingerprint) = self.sink.fingerprint(&event) {
                    event.content_hash = fingerprint;
                }
                events.push(event);
            }
        }
        // The facts are written while the ledger and the tombstones are read:
        // neither read depends on the facts, and on a store with one
        // connection (SQLite) the three then follow each other instead of
        // each waiting again behind whatever write (a webhook's) came between.
        let (totals, lookups) = match written {
            FactsWritten::BeforeDelivery => tokio::join!(self.record_facts(facts), self.lookups(&events)),
            FactsWritten::WithCommit => {
                let answered = tokio::join!(self.preview_facts(&facts), self.lookups(&events));
                tail.facts = facts;
                answered
            }
        };
        let (totals, (ledger, mut forgotten)) = (totals?, lookups?);
        let kept = fill_totals(people, &mut events[..planned], totals);
        if kept.contains(&false) {
            let keep = kept.into_iter().chain(std::iter::repeat(true));
            (events, forgotten) =
                events.into_iter().zip(forgotten).zip(keep).filter_map(|(pair, keep)| keep.then_some(pair)).unzip();
        }
        self.select(events, &ledger, forgotten, &mut tail, report, pending);
        pending.close_page(tail);
        self.deliver_ready(pending, false, report).await
    }
}
