//! The `Sink` trait: batched delivery with a per-item outcome.

use crate::error::ConnectorError;
use crate::events::Event;
use crate::model::Person;
use async_trait::async_trait;

/// What happened to one event of a delivered batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// The sink acknowledged it.
    Delivered,
    /// The sink rejected it for good (a 4xx about this item): dead-letter it.
    Rejected { reason: String },
    /// The sink decided not to send it (e.g. a shipment without a customer).
    Skipped { reason: String },
}

/// What a sink would do with a batch, sending nothing (a dry run): the
/// outcome of each event as far as the sink can tell without the platform
/// (an event it cannot encode is rejected, one it routes nowhere skipped),
/// and the first requests it would send, built exactly as it builds them.
#[derive(Clone, Debug, Default)]
pub struct Preview {
    pub outcomes: Vec<ItemOutcome>,
    pub requests: Vec<PreviewRequest>,
}

/// One request a sink would send.
#[derive(Clone, Debug)]
pub struct PreviewRequest {
    /// The family of request (the sink's route), for the reader.
    pub route: String,
    /// How many events it carries.
    pub items: usize,
    pub body: Vec<u8>,
}

#[async_trait]
pub trait Sink: Send + Sync {
    fn platform(&self) -> &'static str;

    /// Most events per `deliver` call; history may use larger bulk batches.
    fn max_batch(&self, history: bool) -> usize;

    /// Whether this sink can tell who `person` is. Events about people it cannot
    /// identify are skipped with reason "no identifier".
    fn identifies(&self, person: &Person) -> bool {
        person.customer_id.is_some() || person.has_email()
    }

    /// The skip reason counted for people [`identifies`](Self::identifies) refuses.
    fn unidentified_reason(&self) -> &'static str {
        "no identifier"
    }

    /// Whether this sink sends events of `kind` at all; others are not derived
    /// for it (and not counted as skipped).
    fn accepts(&self, _kind: crate::events::EventKind) -> bool {
        true
    }

    /// Whether this sink wants `profile-updated` events carrying each person's
    /// purchase totals (revenue, order count, last order), kept current by
    /// the engine after every order or refund.
    fn wants_person_totals(&self) -> bool {
        false
    }

    /// What of `event` this sink actually sends, as a fingerprint that
    /// replaces the record's content hash: a changed record whose mapped
    /// content did not change (processing → on-hold where both map to one
    /// status) is then not sent again. `None`: the whole record counts.
    fn fingerprint(&self, _event: &Event) -> Option<String> {
        None
    }

    /// Delivers events of one mode (all history or all live). Returns one
    /// outcome per event, in order, or an error for the whole batch (nothing of
    /// it counts as delivered).
    async fn deliver(&mut self, batch: &[Event], history: bool) -> Result<Vec<ItemOutcome>, ConnectorError>;

    /// What [`deliver`](Self::deliver) would send for `batch`, sending
    /// nothing; `None` when this sink cannot tell.
    fn preview(&self, _batch: &[Event], _history: bool) -> Option<Preview> {
        None
    }
}
