//! What a pass did (counts for the operator), and the progress observer.

use crate::events::EventKind;
use std::collections::BTreeMap;
use std::time::Duration;

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
    /// The round stopped at its limit with webhooks still waiting: the
    /// pipeline goes round again at once.
    pub webhooks_left: bool,
}

impl PassReport {
    pub fn delivered_total(&self) -> u64 {
        self.delivered.values().sum()
    }
    /// Adds `other`'s counts (not its time) to these.
    pub fn merge(&mut self, other: &PassReport) {
        self.records_read += other.records_read;
        for (kind, count) in &other.delivered {
            *self.delivered.entry(*kind).or_default() += count;
        }
        for (reason, count) in &other.skipped {
            *self.skipped.entry(reason.clone()).or_default() += count;
        }
        self.dead_lettered += other.dead_lettered;
        self.unchanged += other.unchanged;
        self.webhooks_left |= other.webhooks_left;
    }
}

/// Observes a pass, e.g. to draw progress bars.
pub trait Progress: Send + Sync {
    fn page(&self, _pipeline: &str, _stream: &str, _records: usize, _delivered: u64) {}

    /// Events the sink acknowledged, once their batch is committed. Their
    /// keys and content hashes have gone into the committed ledger rows and
    /// are empty here: an observer reads kinds, times and subjects.
    fn delivered(&self, _pipeline: &str, _events: &[&crate::events::Event]) {}
}

/// A progress observer that shows nothing.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}
