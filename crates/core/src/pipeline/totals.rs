//! Person totals for sinks that keep purchase aggregates as attributes: each
//! page's order and refund facts upserted in the state store (while the
//! page's events are derived), which answers the touched people's running
//! totals in the same round trip, then one totals event per person touched.

use super::{Pipeline, PipelineError};
use crate::events::{DeriveContext, Event, EventKind, Subject};
use crate::keys::{IdempotencyKey, content_hash};
use crate::model::{OrderFact, Person, Record, SourceIdentity};
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

/// What a page asks of the person totals: its orders' and refunds' facts, and
/// for each person they name, the latest record about them (its person, the
/// platform and source it came from, when it changed).
pub(super) struct TotalsAsked {
    facts: Vec<OrderFact>,
    people: BTreeMap<String, Latest>,
}

struct Latest {
    person: Arc<Person>,
    platform: String,
    source: String,
    at: Timestamp,
}

/// The facts of `records` and the people they name; none when no record is an
/// order or a refund. Taken before the records are turned into events, so the
/// facts are written while the events are derived.
pub(super) fn asked(records: &[Record]) -> Option<TotalsAsked> {
    let mut facts = Vec::new();
    let mut people: BTreeMap<String, Latest> = BTreeMap::new();
    for record in records {
        let Some(fact) = OrderFact::of(record) else { continue };
        let person = record.buyer().expect("facts come of orders and refunds, which have a buyer");
        let identity = record.identity();
        match people.entry(fact.person.clone()) {
            Entry::Vacant(vacant) => {
                vacant.insert(Latest {
                    person: Arc::clone(person),
                    platform: identity.platform.clone(),
                    source: identity.source.clone(),
                    at: fact.at,
                });
            }
            Entry::Occupied(mut occupied) => {
                let latest = occupied.get_mut();
                if record.changed_at() >= latest.at {
                    latest.person = Arc::clone(person);
                    latest.at = record.changed_at();
                    if latest.platform != identity.platform || latest.source != identity.source {
                        latest.platform.clone_from(&identity.platform);
                        latest.source.clone_from(&identity.source);
                    }
                }
            }
        }
        facts.push(fact);
    }
    (!facts.is_empty()).then_some(TotalsAsked { facts, people })
}

impl Pipeline {
    /// Records what a page's orders and refunds contribute to their people's
    /// totals, then proposes one totals event per person touched. They go
    /// before the page's other events, so a sink creates or updates the person
    /// before its order events.
    pub(super) async fn person_totals_events(
        &self,
        asked: Option<TotalsAsked>,
        context: &DeriveContext,
    ) -> Result<Vec<Event>, PipelineError> {
        let Some(TotalsAsked { facts, people }) = asked else { return Ok(Vec::new()) };
        let mut totals = self.state.record_facts(&self.name, facts).await?;
        let mut events = Vec::with_capacity(people.len());
        for (key, Latest { person, platform, source, at }) in people {
            let Some(totals) = totals.remove(&key) else { continue };
            let subject = Subject::PersonTotals { person, totals };
            let person_identity = SourceIdentity { platform, source, id: key };
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
