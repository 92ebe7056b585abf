//! The queue between selection and delivery: events selected but not yet
//! acknowledged, across pages, and the commits of the pages they came from,
//! so a checkpoint never passes an unsent event.

use crate::events::Event;
use crate::keys::{IdempotencyKey, KeyMap};
use crate::state::{Commit, LedgerRow};
use std::collections::VecDeque;

/// An event to send and, when it is a replay, the dead letter it resolves.
pub(super) type EventAndLetter = (Event, Option<i64>);

/// Events selected but not yet delivered, in order, across pages, and the
/// commits of the pages they came from. Events are numbered in the order they
/// were queued; a page's commit waits until every event queued before its end
/// is acknowledged, so its checkpoint never passes an unsent event.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) events: VecDeque<EventAndLetter>,
    /// The number of the front event.
    pub(super) first: u64,
    /// Each page's commit with the number one past its last event.
    pages: VecDeque<(u64, Commit)>,
    /// Queued keys and their numbers.
    planned: KeyMap<u64>,
}

impl Pending {
    pub(super) fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    pub(super) fn is_planned(&self, key: &IdempotencyKey) -> bool {
        self.planned.contains_key(key)
    }

    pub(super) fn push(&mut self, event: Event, dead_letter: Option<i64>) {
        self.planned.insert(event.key.clone(), self.end());
        self.events.push_back((event, dead_letter));
    }

    /// Puts `event` in place of the queued event with its key when the kind is
    /// resent on change and the content changed; false when it is a repeat.
    pub(super) fn supersede(&mut self, event: Event) -> bool {
        let Some(&number) = self.planned.get(&event.key) else { return false };
        let Some((queued, _)) = self.events.get_mut((number - self.first) as usize) else { return false };
        if !event.kind.resend_on_change() || queued.content_hash == event.content_hash {
            return false;
        }
        let update = queued.update;
        *queued = Event { update, ..event };
        true
    }

    pub(super) fn close_page(&mut self, commit: Commit) {
        if !commit.is_empty() {
            self.pages.push_back((self.end(), commit));
        }
    }

    /// Takes the first `count` events off the queue.
    pub(super) fn take(&mut self, count: usize) -> Vec<EventAndLetter> {
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
    pub(super) fn attach_finished_pages(&mut self, commit: &mut Commit, rows: Vec<(u64, LedgerRow)>) {
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
            commit.facts.extend(page.facts);
        }
        ordered.sort_by_key(|(number, _)| *number);
        commit.ledger.extend(ordered.into_iter().map(|(_, row)| row));
    }
}
