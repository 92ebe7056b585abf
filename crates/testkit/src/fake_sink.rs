//! A deterministic in-memory `Sink` that records what it was sent and fails on
//! request.

use async_trait::async_trait;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tillflow_core::model::PersonTotals;
use tillflow_core::{ConnectorError, Event, EventKind, ItemOutcome, Sink, Subject};

#[derive(Default)]
pub struct FakeSinkLog {
    /// Every key acknowledged, in order, with its history flag.
    pub delivered: Vec<(String, bool)>,
    /// Sizes of the batches received.
    pub batches: Vec<usize>,
    /// What the next calls do, one entry per call: `None` delivers normally,
    /// `Some(error)` fails the whole call. Empty means deliver.
    pub script: VecDeque<Option<ConnectorError>>,
    /// Keys to reject individually (a partial failure).
    pub reject: HashSet<String>,
    /// Person totals received, in order: (person, revenue, orders).
    pub totals: Vec<(String, PersonTotals)>,
}

impl FakeSinkLog {
    pub fn keys(&self) -> Vec<String> {
        self.delivered.iter().map(|(k, _)| k.clone()).collect()
    }
}

pub struct FakeSink {
    pub log: Arc<Mutex<FakeSinkLog>>,
    pub batch_size: usize,
    /// Ask the engine for person totals (like Customer.io does).
    pub wants_totals: bool,
    /// Keep orders as states (like E-goi), each fingerprinted by this
    /// function of the order; `None`: order states are not accepted.
    pub order_states: Option<fn(&Event) -> String>,
}

impl FakeSink {
    pub fn new(batch_size: usize) -> (Self, Arc<Mutex<FakeSinkLog>>) {
        let log = Arc::new(Mutex::new(FakeSinkLog::default()));
        (Self { log: log.clone(), batch_size, wants_totals: false, order_states: None }, log)
    }
}

#[async_trait]
impl Sink for FakeSink {
    fn platform(&self) -> &'static str {
        "fake-sink"
    }

    fn max_batch(&self, _history: bool) -> usize {
        self.batch_size
    }

    fn wants_person_totals(&self) -> bool {
        self.wants_totals
    }

    fn accepts(&self, kind: EventKind) -> bool {
        kind != EventKind::OrderState || self.order_states.is_some()
    }

    fn fingerprint(&self, event: &Event) -> Option<String> {
        self.order_states.filter(|_| event.kind == EventKind::OrderState).map(|of| of(event))
    }

    async fn deliver(&mut self, batch: &[Event], history: bool) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut log = self.log.lock().unwrap();
        if let Some(Some(error)) = log.script.pop_front() {
            return Err(error);
        }
        log.batches.push(batch.len());
        let mut outcomes = Vec::with_capacity(batch.len());
        for event in batch {
            if log.reject.contains(event.key.as_str()) {
                outcomes.push(ItemOutcome::Rejected { reason: format!("fake sink rejects {}", event.key) });
            } else {
                log.delivered.push((event.key.to_string(), history));
                if let Subject::PersonTotals { totals, person } = &event.subject {
                    log.totals.push((person.key().unwrap_or_default(), totals.clone()));
                }
                outcomes.push(ItemOutcome::Delivered);
            }
        }
        Ok(outcomes)
    }
}
