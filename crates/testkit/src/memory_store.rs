//! An in-memory `StateStore` for engine and connector tests (not for production:
//! it forgets everything when dropped).

use async_trait::async_trait;
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use tillflow_core::StateError;
use tillflow_core::events::EventKind;
use tillflow_core::forget::{Purge, Purged};
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::model::{OrderFact, PersonTotals, sum_facts};
use tillflow_core::source::{Checkpoint, InboxItem};
use tillflow_core::state::{
    Commit, DeadLetter, EventCount, LedgerEntry, LedgerRow, Outcome, OutcomeKind, PipelineStatus, StateStore,
    StreamStatus,
};

#[derive(Default)]
struct Inner {
    started: HashMap<String, Timestamp>,
    start_reads: u64,
    checkpoints: BTreeMap<(String, String), (Checkpoint, Timestamp)>,
    ledger: HashMap<(String, IdempotencyKey), LedgerRow>,
    dead_letters: Vec<DeadLetter>,
    next_id: i64,
    inbox: Vec<InboxItem>,
    inbox_done: HashSet<(String, i64)>,
    secrets: HashMap<(String, String), String>,
    source_state: std::collections::BTreeMap<(String, String), String>,
    facts: BTreeMap<(String, String, String), OrderFact>,
    orders_read: BTreeMap<(String, String), Timestamp>,
    last_delivery: HashMap<String, Timestamp>,
    forgotten: HashSet<String>,
    commits: u64,
}

impl Inner {
    /// The totals of `people` from the pipeline's facts with `page` put in
    /// place of those it replaces (the last of each, as a write keeps it).
    fn totals_with(&self, pipeline: &str, people: &[&str], page: &[OrderFact]) -> HashMap<String, PersonTotals> {
        let mut facts: BTreeMap<(&str, &str), &OrderFact> = self
            .facts
            .iter()
            .filter(|((p, _, _), _)| p == pipeline)
            .map(|((_, order, fact_id), fact)| ((order.as_str(), fact_id.as_str()), fact))
            .collect();
        for fact in page {
            facts.insert((&fact.order_id, &fact.fact_id), fact);
        }
        people
            .iter()
            .filter_map(|person| {
                let mine: Vec<&OrderFact> = facts.values().copied().filter(|fact| fact.person == *person).collect();
                (!mine.is_empty()).then(|| ((*person).to_owned(), sum_facts(mine)))
            })
            .collect()
    }

    /// The webhooks of `source` that `pipeline` has yet to process, oldest first.
    fn pending<'a>(&'a self, pipeline: &'a str, source: &'a str) -> impl Iterator<Item = &'a InboxItem> + 'a {
        self.inbox
            .iter()
            .filter(move |item| item.source == source && !self.inbox_done.contains(&(pipeline.to_owned(), item.id)))
    }
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Set by [`MemoryStore::with_facts_meeting_ledger_reads`].
    facts_and_reads: Option<tokio::sync::Barrier>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
    /// How many commits were written (to check batching in tests).
    pub fn commits(&self) -> u64 {
        self.inner.lock().unwrap().commits
    }
    /// A store where recording facts and reading the ledger each wait until
    /// the other is under way too: a pipeline that reads the ledger only
    /// once a page's facts are written (or the reverse) never finishes the
    /// page.
    pub fn with_facts_meeting_ledger_reads() -> Self {
        Self { facts_and_reads: Some(tokio::sync::Barrier::new(2)), ..Self::default() }
    }

    /// How many times a pipeline's first start was asked for.
    pub fn start_reads(&self) -> u64 {
        self.inner.lock().unwrap().start_reads
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn pipeline_started_at(&self, pipeline: &str, now: Timestamp) -> Result<Timestamp, StateError> {
        let mut inner = self.inner.lock().unwrap();
        inner.start_reads += 1;
        Ok(*inner.started.entry(pipeline.to_owned()).or_insert(now))
    }

    async fn checkpoint(&self, pipeline: &str, stream: &str) -> Result<Option<Checkpoint>, StateError> {
        let inner = self.inner.lock().unwrap();
        Ok(inner.checkpoints.get(&(pipeline.to_owned(), stream.to_owned())).map(|(c, _)| c.clone()))
    }

    async fn ledger_lookup(
        &self,
        pipeline: &str,
        keys: &[&IdempotencyKey],
    ) -> Result<tillflow_core::keys::KeyMap<LedgerEntry>, StateError> {
        if let Some(barrier) = &self.facts_and_reads {
            barrier.wait().await;
        }
        let inner = self.inner.lock().unwrap();
        Ok(keys
            .iter()
            .filter_map(|key| {
                inner.ledger.get(&(pipeline.to_owned(), (*key).clone())).map(|row| {
                    (
                        (*key).clone(),
                        LedgerEntry { content_hash: row.content_hash.clone(), outcome: row.outcome.clone() },
                    )
                })
            })
            .collect())
    }

    async fn commit(&self, pipeline: &str, commit: Commit) -> Result<(), StateError> {
        let mut inner = self.inner.lock().unwrap();
        inner.commits += 1;
        let now = Timestamp::now();
        for row in commit.ledger {
            if row.outcome == Outcome::Delivered {
                inner.last_delivery.insert(pipeline.to_owned(), now);
            }
            inner.ledger.insert((pipeline.to_owned(), row.key.clone()), row);
        }
        for letter in commit.dead_letters {
            inner.next_id += 1;
            let id = inner.next_id;
            inner.dead_letters.push(DeadLetter {
                id,
                pipeline: pipeline.to_owned(),
                key: letter.key,
                stage: letter.stage,
                reason: letter.reason,
                payload: letter.payload,
                created_at: now,
            });
        }
        for fact in commit.facts {
            inner.facts.insert((pipeline.to_owned(), fact.order_id.clone(), fact.fact_id.clone()), fact);
        }
        let resolved: HashSet<i64> = commit.dead_letters_resolved.into_iter().collect();
        inner.dead_letters.retain(|letter| !resolved.contains(&letter.id));
        for (id, at) in commit.orders_read {
            inner.orders_read.insert((pipeline.to_owned(), id), at);
        }
        for id in commit.inbox_done {
            inner.inbox_done.insert((pipeline.to_owned(), id));
        }
        if let Some((stream, checkpoint)) = commit.checkpoint {
            inner.checkpoints.insert((pipeline.to_owned(), stream), (checkpoint, now));
        }
        Ok(())
    }

    async fn dead_letters(&self, pipeline: Option<&str>, limit: u32) -> Result<Vec<DeadLetter>, StateError> {
        let inner = self.inner.lock().unwrap();
        Ok(inner
            .dead_letters
            .iter()
            .filter(|l| pipeline.is_none_or(|p| l.pipeline == p))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn discard_dead_letters(&self, pipeline: &str, ids: Option<&[i64]>) -> Result<u64, StateError> {
        let mut inner = self.inner.lock().unwrap();
        let before = inner.dead_letters.len();
        inner.dead_letters.retain(|l| !(l.pipeline == pipeline && ids.is_none_or(|ids| ids.contains(&l.id))));
        Ok((before - inner.dead_letters.len()) as u64)
    }

    async fn inbox_push(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
        received_at: Timestamp,
    ) -> Result<i64, StateError> {
        let mut inner = self.inner.lock().unwrap();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.inbox.push(InboxItem {
            id,
            source: source.to_owned(),
            received_at,
            headers: headers.to_vec(),
            body: body.to_vec(),
        });
        Ok(id)
    }

    async fn inbox_pending(&self, pipeline: &str, source: &str, limit: u32) -> Result<Vec<InboxItem>, StateError> {
        let inner = self.inner.lock().unwrap();
        Ok(inner.pending(pipeline, source).take(limit as usize).cloned().collect())
    }

    async fn inbox_pending_count(&self, pipeline: &str, source: &str) -> Result<u64, StateError> {
        Ok(self.inner.lock().unwrap().pending(pipeline, source).count() as u64)
    }

    async fn inbox_prune(&self, source: &str, pipelines: &[String]) -> Result<u64, StateError> {
        let mut inner = self.inner.lock().unwrap();
        let Inner { inbox, inbox_done, .. } = &mut *inner;
        let before = inbox.len();
        let mut pruned = Vec::new();
        inbox.retain(|item| {
            let done_by_all = !pipelines.is_empty()
                && pipelines.iter().all(|pipeline| inbox_done.contains(&(pipeline.clone(), item.id)));
            if item.source == source && done_by_all {
                pruned.push(item.id);
                return false;
            }
            true
        });
        inbox_done.retain(|(_, id)| !pruned.contains(id));
        Ok((before - inbox.len()) as u64)
    }

    async fn secret_get(&self, connector: &str, name: &str) -> Result<Option<String>, StateError> {
        Ok(self.inner.lock().unwrap().secrets.get(&(connector.to_owned(), name.to_owned())).cloned())
    }

    async fn secret_put(&self, connector: &str, name: &str, value: &str) -> Result<(), StateError> {
        self.inner.lock().unwrap().secrets.insert((connector.to_owned(), name.to_owned()), value.to_owned());
        Ok(())
    }

    async fn forget(&self, subjects: &[String], _at: Timestamp) -> Result<(), StateError> {
        self.inner.lock().unwrap().forgotten.extend(subjects.iter().cloned());
        Ok(())
    }

    async fn forgotten(&self, subjects: &[String]) -> Result<HashSet<String>, StateError> {
        let inner = self.inner.lock().unwrap();
        Ok(subjects.iter().filter(|subject| inner.forgotten.contains(*subject)).cloned().collect())
    }

    async fn purge(&self, email: &str) -> Result<Purged, StateError> {
        let mut inner = self.inner.lock().unwrap();
        let inner = &mut *inner;
        let mut purged = Purged::default();
        let Some(purge) = Purge::of(email) else { return Ok(purged) };
        inner.dead_letters.retain(|letter| {
            let keep = !purge.names(&[letter.payload.to_string().as_bytes(), letter.reason.as_bytes()]);
            purged.dead_letters += u64::from(!keep);
            keep
        });
        let mut gone = HashSet::new();
        inner.inbox.retain(|item| {
            let keep = !purge.names(&[&item.body]);
            if !keep {
                gone.insert(item.id);
            }
            keep
        });
        purged.webhooks = gone.len() as u64;
        inner.inbox_done.retain(|(_, id)| !gone.contains(id));
        inner.source_state.retain(|(_, key), value| {
            let keep = !purge.names(&[key.as_bytes(), value.as_bytes()]);
            purged.source_entries += u64::from(!keep);
            keep
        });
        Ok(purged)
    }

    async fn source_state_get(&self, source: &str, keys: &[String]) -> Result<HashMap<String, String>, StateError> {
        let inner = self.inner.lock().unwrap();
        Ok(keys
            .iter()
            .filter_map(|key| {
                inner.source_state.get(&(source.to_owned(), key.clone())).map(|value| (key.clone(), value.clone()))
            })
            .collect())
    }

    async fn source_state_put(&self, source: &str, entries: &[(String, String)]) -> Result<(), StateError> {
        let mut inner = self.inner.lock().unwrap();
        for (key, value) in entries {
            inner.source_state.insert((source.to_owned(), key.clone()), value.clone());
        }
        Ok(())
    }

    async fn source_state_scan(
        &self,
        source: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StateError> {
        let inner = self.inner.lock().unwrap();
        Ok(inner
            .source_state
            .range((source.to_owned(), prefix.to_owned())..)
            .take_while(|((s, key), _)| s == source && key.starts_with(prefix))
            .take(limit as usize)
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect())
    }

    async fn status(&self, pipeline: &str) -> Result<PipelineStatus, StateError> {
        let inner = self.inner.lock().unwrap();
        let mut counts: BTreeMap<(EventKind, OutcomeKind, String), u64> = BTreeMap::new();
        for ((p, _), row) in &inner.ledger {
            if p == pipeline {
                *counts.entry((row.kind, row.outcome.kind(), row.outcome.reason().to_owned())).or_default() += 1;
            }
        }
        Ok(PipelineStatus {
            started_at: inner.started.get(pipeline).copied(),
            streams: inner
                .checkpoints
                .iter()
                .filter(|((p, _), _)| p == pipeline)
                .map(|((_, stream), (checkpoint, at))| StreamStatus {
                    stream: stream.clone(),
                    checkpoint: checkpoint.clone(),
                    updated_at: *at,
                })
                .collect(),
            counts: counts
                .into_iter()
                .map(|((kind, outcome, reason), count)| EventCount {
                    kind,
                    outcome: Outcome::from_stored(outcome.as_str(), &reason).expect("an outcome's own name"),
                    count,
                })
                .collect(),
            dead_letters: inner.dead_letters.iter().filter(|l| l.pipeline == pipeline).count() as u64,
            last_delivery_at: inner.last_delivery.get(pipeline).copied(),
        })
    }

    async fn reset(&self, pipeline: &str) -> Result<(), StateError> {
        let mut inner = self.inner.lock().unwrap();
        inner.started.remove(pipeline);
        inner.checkpoints.retain(|(p, _), _| p != pipeline);
        inner.ledger.retain(|(p, _), _| p != pipeline);
        inner.facts.retain(|(p, _, _), _| p != pipeline);
        inner.orders_read.retain(|(p, _), _| p != pipeline);
        inner.last_delivery.remove(pipeline);
        Ok(())
    }

    async fn record_facts(
        &self,
        pipeline: &str,
        facts: Vec<OrderFact>,
    ) -> Result<HashMap<String, PersonTotals>, StateError> {
        if let Some(barrier) = &self.facts_and_reads {
            barrier.wait().await;
        }
        {
            let mut inner = self.inner.lock().unwrap();
            for fact in &facts {
                inner.facts.insert((pipeline.to_owned(), fact.order_id.clone(), fact.fact_id.clone()), fact.clone());
            }
        }
        let people: Vec<&str> = facts.iter().map(|fact| fact.person.as_str()).collect();
        self.person_totals(pipeline, &people).await
    }

    async fn preview_facts(
        &self,
        pipeline: &str,
        facts: &[OrderFact],
    ) -> Result<HashMap<String, PersonTotals>, StateError> {
        if let Some(barrier) = &self.facts_and_reads {
            barrier.wait().await;
        }
        let people: Vec<&str> = facts.iter().map(|fact| fact.person.as_str()).collect();
        Ok(self.inner.lock().unwrap().totals_with(pipeline, &people, facts))
    }

    async fn person_totals(
        &self,
        pipeline: &str,
        people: &[&str],
    ) -> Result<HashMap<String, PersonTotals>, StateError> {
        Ok(self.inner.lock().unwrap().totals_with(pipeline, people, &[]))
    }

    async fn event_times(
        &self,
        pipeline: &str,
        kind: EventKind,
        outcome: OutcomeKind,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StateError> {
        let inner = self.inner.lock().unwrap();
        let mut times: Vec<Timestamp> = inner
            .ledger
            .iter()
            .filter(|((p, _), row)| {
                p == pipeline && row.kind == kind && row.outcome.kind() == outcome && row.occurred_at >= since
            })
            .map(|(_, row)| row.occurred_at)
            .collect();
        times.sort();
        Ok(times)
    }

    async fn orders_read_times(&self, pipeline: &str, since: Timestamp) -> Result<Vec<Timestamp>, StateError> {
        let inner = self.inner.lock().unwrap();
        let mut times: Vec<Timestamp> =
            inner.orders_read.iter().filter(|((p, _), at)| p == pipeline && **at >= since).map(|(_, at)| *at).collect();
        times.sort();
        Ok(times)
    }
}
