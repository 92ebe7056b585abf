//! Person totals for sinks that keep purchase aggregates as attributes: a
//! page's order and refund facts, the events they will fill (one per person
//! touched, proposed before the state has answered), and the filling once
//! the state store has recorded the facts and answered the touched people's
//! running totals.

use super::{Pipeline, PipelineError};
use crate::events::{DeriveContext, Event, EventKind, Subject};
use crate::keys::{IdempotencyKey, content_hash};
use crate::model::{OrderFact, Person, PersonTotals, Record, SourceIdentity};
use crate::running_totals;
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A page's facts and the totals events waiting for the totals they carry.
#[derive(Default)]
pub(super) struct TotalsPlan {
    pub(super) facts: Vec<OrderFact>,
    /// One event per person touched, its totals still zero, and the person's
    /// key in the totals the state answers.
    pub(super) events: Vec<Event>,
    pub(super) people: Vec<String>,
}

impl Pipeline {
    /// This page's facts and one totals event per person touched. The events
    /// come first in the page so a sink creates or updates the person before
    /// its order events; their keys are known before the totals, so the
    /// ledger can be asked while the facts are being written.
    pub(super) fn totals_plan(&self, records: &[Record], context: &DeriveContext) -> TotalsPlan {
        let mut facts = Vec::new();
        let mut people: BTreeMap<String, (&Arc<Person>, &SourceIdentity, Timestamp)> = BTreeMap::new();
        for record in records {
            let Some(fact) = OrderFact::of(record) else { continue };
            let person = record.buyer().expect("facts come of orders and refunds, which have a buyer");
            let latest = people.entry(fact.person.clone()).or_insert((person, record.identity(), fact.at));
            if record.changed_at() >= latest.2 {
                *latest = (person, record.identity(), record.changed_at());
            }
            facts.push(fact);
        }
        let mut events = Vec::with_capacity(people.len());
        let mut keys = Vec::with_capacity(people.len());
        for (key, (person, identity, at)) in people {
            let subject = Subject::PersonTotals { person: Arc::clone(person), totals: running_totals::zero() };
            let person_identity =
                SourceIdentity { platform: identity.platform.clone(), source: identity.source.clone(), id: key.into() };
            events.push(Event::new(
                IdempotencyKey::new(&person_identity, "person", "totals", None),
                EventKind::ProfileUpdated,
                at,
                subject,
                String::new(),
                at < context.pipeline_started_at,
            ));
            keys.push(person_identity.id.into());
        }
        TotalsPlan { facts, events, people: keys }
    }

    /// Records a page's facts, answering the touched people's running totals.
    pub(super) async fn record_facts(
        &self,
        facts: Vec<OrderFact>,
    ) -> Result<HashMap<String, PersonTotals>, PipelineError> {
        if facts.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self.state.record_facts(&self.name, facts).await?)
    }

    /// The totals recording a page's facts will answer, nothing written
    /// (see `FactsWritten::WithCommit`).
    pub(super) async fn preview_facts(
        &self,
        facts: &[OrderFact],
    ) -> Result<HashMap<String, PersonTotals>, PipelineError> {
        if facts.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self.state.preview_facts(&self.name, facts).await?)
    }
}

/// Gives each planned totals event the totals the state answered for its
/// person, and its content hash; true for each event kept. A person whose
/// facts did not change gets no answer, and no event.
pub(super) fn fill_totals(
    people: Vec<String>,
    events: &mut [Event],
    mut totals: HashMap<String, PersonTotals>,
) -> Vec<bool> {
    people
        .into_iter()
        .zip(events.iter_mut())
        .map(|(person, event)| {
            let Some(answered) = totals.remove(&person) else { return false };
            if let Subject::PersonTotals { totals, .. } = &mut event.subject {
                *totals = answered;
            }
            event.content_hash = content_hash(&event.subject);
            true
        })
        .collect()
}
