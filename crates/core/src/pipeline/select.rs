//! Selection: a page's ledger entries and forgotten people looked up in one
//! go; then what the ledger already has is dropped, events about a forgotten
//! person and what the pipeline's rules refuse are skipped (counted by
//! reason), the rest is queued.

use super::deliver::ledger_row;
use super::pending::Pending;
use super::{PassReport, Pipeline, PipelineError};
use crate::events::Event;
use crate::forget;
use crate::keys::{IdempotencyKey, KeyMap};
use crate::rules::SkipReason;
use crate::state::{Commit, LedgerEntry, Outcome};

impl Pipeline {
    /// The ledger entries of `events` (and of the events they require) and,
    /// for each event, whether it is about a forgotten person.
    pub(super) async fn lookups(&self, events: &[Event]) -> Result<(KeyMap<LedgerEntry>, Vec<bool>), PipelineError> {
        if events.is_empty() {
            return Ok((KeyMap::default(), Vec::new()));
        }
        let mut keys: Vec<&IdempotencyKey> = events.iter().map(|e| &e.key).collect();
        keys.extend(events.iter().filter_map(|e| e.requires.as_ref()));
        // Asked together: on a store with one connection (SQLite) the second
        // question then follows the first instead of waiting for whatever
        // write (a webhook's) took the connection in between.
        let (ledger, forgotten) =
            tokio::join!(self.state.ledger_lookup(&self.name, &keys), self.forgotten_people(events));
        Ok((ledger?, forgotten?))
    }

    /// Drops what the ledger already has, applies the rules, and queues what
    /// must be sent in `pending`; skip rows go into `tail`. `forgotten` says
    /// for each event whether it is about a forgotten person.
    pub(super) fn select(
        &self,
        events: Vec<Event>,
        ledger: &KeyMap<LedgerEntry>,
        forgotten: Vec<bool>,
        tail: &mut Commit,
        report: &mut PassReport,
        pending: &mut Pending,
    ) {
        for (event, forgotten) in events.into_iter().zip(forgotten) {
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
            let verdict = if forgotten {
                Some(SkipReason::Other(forget::FORGOTTEN.to_owned()))
            } else {
                self.rules.verdict(&event, identifies, self.sink.unidentified_reason())
            };
            if let Some(reason) = verdict {
                *report.skipped.entry(reason.as_str().to_owned()).or_default() += 1;
                let unchanged_skip = ledger.get(&event.key).is_some_and(|entry| {
                    entry.outcome == Outcome::Skipped(reason.as_str().to_owned())
                        && event.has_content(&entry.content_hash)
                });
                if !unchanged_skip {
                    let mut event = event;
                    tail.ledger.push(ledger_row(&mut event, Outcome::Skipped(reason.as_str().to_owned())));
                }
                continue;
            }
            let mut event = event;
            event.update = ledger.get(&event.key).is_some_and(|entry| entry.outcome == Outcome::Delivered);
            pending.push(event, None);
        }
    }
}

/// Whether an event must be (re)considered given its ledger entry.
fn needs_action(event: &Event, entry: Option<&LedgerEntry>) -> bool {
    let Some(entry) = entry else { return true };
    // Asked only where it matters: a format-1 row makes the answer cost a
    // second hash of the record.
    let changed = || !event.has_content(&entry.content_hash);
    match entry.outcome {
        Outcome::Delivered => event.kind.resend_on_change() && changed(),
        // A skipped or dead-lettered event is looked at again once its record
        // changed: the change may be the fix (an email added, a total corrected).
        Outcome::Skipped(_) | Outcome::DeadLettered => changed(),
    }
}
