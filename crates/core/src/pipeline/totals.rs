//! Person totals for sinks that keep purchase aggregates as attributes: each
//! page's order and refund facts upserted in the state store, which answers
//! the touched people's running totals in the same round trip, then one
//! totals event per person touched.

use super::{Pipeline, PipelineError};
use crate::events::{DeriveContext, Event, EventKind, Subject};
use crate::keys::{IdempotencyKey, content_hash};
use crate::model::{OrderFact, Person, Record, SourceIdentity};
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Pipeline {
    /// Records what this page's orders and refunds contribute to their people's
    /// totals, then proposes one totals event per person touched. They come
    /// first so a sink creates or updates the person before its order events.
    pub(super) async fn person_totals_events(
        &self,
        records: &[Record],
        context: &DeriveContext,
    ) -> Result<Vec<Event>, PipelineError> {
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
        if facts.is_empty() {
            return Ok(Vec::new());
        }
        let mut totals = self.state.record_facts(&self.name, facts).await?;
        let mut events = Vec::with_capacity(people.len());
        for (key, (person, identity, at)) in people {
            let Some(totals) = totals.remove(&key) else { continue };
            let subject = Subject::PersonTotals { person: Arc::clone(person), totals };
            let person_identity =
                SourceIdentity { platform: identity.platform.clone(), source: identity.source.clone(), id: key };
            let hash = content_hash(&subject);
            events.push(Event::new(
                IdempotencyKey::new(&person_identity, "person", "totals", None),
                EventKind::ProfileUpdated,
                at,
                subject,
                hash,
                at < context.pipeline_started_at,
            ));
        }
        Ok(events)
    }
}
