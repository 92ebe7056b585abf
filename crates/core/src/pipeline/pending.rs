//! The queue between selection and delivery: events selected but not yet
//! acknowledged, across pages, and the commits of the pages they came from,
//! so a checkpoint never passes an unsent event.

use crate::events::Event;
use crate::keys::{IdempotencyKey, SeededHash};
use crate::state::{Commit, LedgerRow};
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use std::collections::VecDeque;
use std::hash::BuildHasher;

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
    /// The numbers of the queued events, found by their keys: a table of
    /// numbers whose keys are the queued events' own, where a map held a
    /// copy of every key (an allocation an event).
    planned: HashTable<u64>,
    hasher: SeededHash,
}

impl Pending {
    pub(super) fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// The key of the queued event numbered `number`.
    fn key_of(events: &VecDeque<EventAndLetter>, first: u64, number: u64) -> &IdempotencyKey {
        &events[(number - first) as usize].0.key
    }

    /// The number of the queued event with `key`.
    fn number_of(&self, key: &IdempotencyKey) -> Option<u64> {
        let hash = self.hasher.hash_one(key);
        self.planned.find(hash, |&number| Self::key_of(&self.events, self.first, number) == key).copied()
    }

    pub(super) fn is_planned(&self, key: &IdempotencyKey) -> bool {
        self.number_of(key).is_some()
    }

    pub(super) fn push(&mut self, event: Event, dead_letter: Option<i64>) {
        let number = self.end();
        let hash = self.hasher.hash_one(&event.key);
        self.events.push_back((event, dead_letter));
        let Self { events, first, planned, hasher, .. } = self;
        let key = &events.back().expect("just queued").0.key;
        let same_key = |&queued: &u64| Self::key_of(events, *first, queued) == key;
        let rehash = |&queued: &u64| hasher.hash_one(Self::key_of(events, *first, queued));
        match planned.entry(hash, same_key, rehash) {
            Entry::Occupied(mut entry) => *entry.get_mut() = number,
            Entry::Vacant(entry) => {
                entry.insert(number);
            }
        }
    }

    /// Puts `event` in place of the queued event with its key when the kind is
    /// resent on change and the content changed; false when it is a repeat.
    pub(super) fn supersede(&mut self, event: Event) -> bool {
        let Some(number) = self.number_of(&event.key) else { return false };
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
        // Each number leaves the table before its event leaves the queue:
        // the table finds a key through the queue.
        for (offset, (event, _)) in self.events.iter().take(count).enumerate() {
            let number = self.first + offset as u64;
            let hash = self.hasher.hash_one(&event.key);
            if let Ok(entry) = self.planned.find_entry(hash, |&planned| planned == number) {
                entry.remove();
            }
        }
        let batch: Vec<EventAndLetter> = self.events.drain(..count).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventKind, Subject};
    use crate::model::{Person, SourceIdentity};
    use crate::running_totals;
    use std::sync::Arc;

    fn event(id: &str, hash: &str) -> Event {
        let identity = SourceIdentity { platform: "woocommerce".into(), source: "shop".into(), id: id.into() };
        let subject = Subject::PersonTotals { person: Arc::new(Person::default()), totals: running_totals::zero() };
        let key = IdempotencyKey::new(&identity, "person", "totals", None);
        Event::new(key, EventKind::ProfileUpdated, jiff::Timestamp::UNIX_EPOCH, subject, hash.into(), false)
    }

    fn queued_hashes(pending: &Pending) -> Vec<&str> {
        pending.events.iter().map(|(event, _)| event.content_hash.as_str()).collect()
    }

    #[test]
    fn a_key_is_planned_while_its_event_is_queued_and_a_change_takes_its_place() {
        let mut pending = Pending::default();
        // Enough events that the table grows (and finds keys again) while filling.
        for n in 0..100 {
            pending.push(event(&n.to_string(), "a"), None);
        }
        assert!((0..100).all(|n| pending.is_planned(&event(&n.to_string(), "a").key)));
        assert!(!pending.is_planned(&event("100", "a").key));
        assert!(pending.supersede(event("7", "b")), "a changed totals event replaces the queued one");
        assert!(!pending.supersede(event("8", "a")), "an unchanged one is a repeat");
        assert!(!pending.supersede(event("100", "b")), "nothing queued under that key");
        assert_eq!(pending.events.len(), 100);
        assert_eq!(queued_hashes(&pending)[7], "b");

        let taken = pending.take(10);
        assert_eq!(taken.len(), 10);
        assert!((0..10).all(|n| !pending.is_planned(&event(&n.to_string(), "a").key)));
        assert!((10..100).all(|n| pending.is_planned(&event(&n.to_string(), "a").key)));
        assert!(pending.supersede(event("50", "c")));
        assert_eq!(queued_hashes(&pending)[40], "c", "numbers still point at the right events after a take");
    }

    #[test]
    fn a_key_queued_again_is_found_at_its_newest_event() {
        let mut pending = Pending::default();
        pending.push(event("1", "a"), None);
        pending.push(event("2", "a"), None);
        pending.push(event("1", "b"), None);
        assert!(pending.supersede(event("1", "c")));
        assert_eq!(queued_hashes(&pending), ["a", "a", "c"]);
        // Taking the older event leaves the newer one planned.
        pending.take(1);
        assert!(pending.is_planned(&event("1", "a").key));
        pending.take(2);
        assert!(!pending.is_planned(&event("1", "a").key));
    }
}
