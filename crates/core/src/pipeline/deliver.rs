//! Delivery and commit: full batches (or runs that cannot grow) go to the
//! sink; each acknowledged batch is committed in one transaction with its
//! ledger rows, dead letters and the commits of every page now fully sent.

use super::pending::Pending;
use super::{PassReport, Pipeline, PipelineError};
use crate::error::ErrorClass;
use crate::events::Event;
use crate::keys::IdempotencyKey;
use crate::persist;
use crate::sink::ItemOutcome;
use crate::state::{Commit, DeadLetterStage, LedgerRow, NewDeadLetter, Outcome};

impl Pipeline {
    /// Delivers the batches `pending` has ready, oldest first: a full batch,
    /// or a run that cannot grow because a live event follows history (or the
    /// reverse); with `everything`, the rest too. Each acknowledged batch is
    /// committed with its outcomes and the commits of every page whose events
    /// are now all delivered, so a checkpoint never passes an unsent event.
    pub(super) async fn deliver_ready(
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
            let (events, letters): (Vec<Event>, Vec<Option<i64>>) = pending.take(run).into_iter().unzip();
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
            let mut rows = Vec::with_capacity(events.len());
            let mut commit = Commit::default();
            let mut acknowledged = Vec::with_capacity(events.len());
            let mut events = events;
            for (offset, ((event, dead_letter_id), outcome)) in events.iter_mut().zip(letters).zip(outcomes).enumerate()
            {
                let number = first_number + offset as u64;
                commit.dead_letters_resolved.extend(dead_letter_id);
                match outcome {
                    ItemOutcome::Delivered => {
                        acknowledged.push(offset);
                        *report.delivered.entry(event.kind).or_default() += 1;
                        rows.push((number, ledger_row(event, Outcome::Delivered)));
                    }
                    ItemOutcome::Skipped { reason } => {
                        *report.skipped.entry(reason.clone()).or_default() += 1;
                        rows.push((number, ledger_row(event, Outcome::Skipped(reason))));
                    }
                    ItemOutcome::Rejected { reason } => {
                        tracing::warn!(pipeline = %self.name, key = %event.key, %reason, "event dead-lettered");
                        report.dead_lettered += 1;
                        commit.dead_letters.push(NewDeadLetter {
                            key: Some(event.key.clone()),
                            stage: DeadLetterStage::Sink,
                            reason,
                            payload: persist::event_document(event),
                        });
                        rows.push((number, ledger_row(event, Outcome::DeadLettered)));
                    }
                }
            }
            pending.attach_finished_pages(&mut commit, rows);
            self.state.commit(&self.name, commit).await?;
            let acknowledged: Vec<&Event> = acknowledged.into_iter().map(|offset| &events[offset]).collect();
            self.options.progress.delivered(&self.name, &acknowledged);
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
}

/// The ledger row of `event`, which gives its key and content hash up to it
/// (left empty): an event is done with once its row is written, and copying
/// both was two allocations an event. (Progress observers see events after
/// their commit: kind, times and subject, not keys.)
pub(super) fn ledger_row(event: &mut Event, outcome: Outcome) -> LedgerRow {
    LedgerRow {
        key: std::mem::replace(&mut event.key, IdempotencyKey::from_stored(String::new())),
        kind: event.kind,
        content_hash: std::mem::take(&mut event.content_hash),
        outcome,
        occurred_at: event.occurred_at,
    }
}
