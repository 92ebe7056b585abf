//! Request building: which request family ("route") each event travels in,
//! and its item in that family's body, serialized once.

use crate::sink::pack::Packing;
use std::fmt::Debug;
use std::hash::Hash;
use tillflow_core::Event;

/// Why an event is not sent at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The platform cannot take it: dead-lettered with the reason.
    Reject(String),
    /// The sink chooses not to send it: counted as skipped with the reason.
    Skip(String),
}

pub trait RequestBuilder: Send + Sync + 'static {
    /// A request family: one endpoint and body shape (a bulk job, a single
    /// event, a batch of operations…).
    /// It may carry what its path needs (the id an update goes to).
    type Route: Clone + Eq + Hash + Debug + Send + Sync + 'static;

    /// Whether this account sends `kind` at all, beyond the sink's
    /// declaration (a catalog the operator switched on); others are not
    /// derived for it.
    fn accepts(&self, _kind: tillflow_core::EventKind) -> bool {
        true
    }

    /// Which family `event` goes in; `history` (the delivery's mode: older
    /// than the pipeline's first start) may go to bulk endpoints.
    fn route(&self, event: &Event, history: bool) -> Result<Self::Route, RouteError>;

    /// The event's item in `route`'s body, serialized once.
    fn encode(&self, event: &Event, route: Self::Route, history: bool) -> Result<Vec<u8>, String>;

    /// The family's limits and envelope.
    fn packing(&self, route: Self::Route) -> Packing;

    /// Where the items of a request refused as a whole are sent again one
    /// at a time, so only the bad one is dead-lettered, and where a request
    /// with fewer items than the family's `min_items` goes instead; `None`:
    /// every item of the refused request takes the refusal.
    fn isolate(&self, _route: Self::Route) -> Option<Self::Route> {
        None
    }

    /// What of `event` this sink sends, when less than the whole record: the
    /// engine sends a changed record again only when this changed.
    fn fingerprint(&self, _event: &Event) -> Option<String> {
        None
    }

    /// An item the platform says already exists (`detail` is what its answer
    /// said, e.g. the existing id): the family and whole request body that
    /// update it instead; `None` dead-letters it with the detail.
    fn on_conflict(
        &self,
        _route: Self::Route,
        _event: &Event,
        _history: bool,
        _detail: &str,
    ) -> Option<(Self::Route, Vec<u8>)> {
        None
    }
}
