//! Request building for the Track API v2 batch (`POST /api/v2/batch`): one
//! event becomes one operation, serialized once, so a 207's `batch_index`
//! maps straight back to the event; operations are packed into requests of
//! at most 500 KB, and one over 32 KB is refused before it is sent.

use crate::operation;
use std::sync::atomic::{AtomicI64, Ordering};
use tillflow_core::{Event, EventKind};
use tillflow_kit::sink::{Envelope, Packing, RequestBuilder, RouteError};

/// Customer.io's limits for `/api/v2/batch`.
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;
pub const MAX_OPERATION_BYTES: usize = 32 * 1024;

/// The Track API has one request family here: the v2 batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackRoute {
    Batch,
}

/// Attribute-update timestamps only move forward: Customer.io silently drops
/// (with a 200) an update older than one it already applied. One clock per
/// account, so two pipelines into one workspace never go back either.
#[derive(Debug, Default)]
pub struct UpdateClock {
    last: AtomicI64,
}

impl UpdateClock {
    pub fn next(&self) -> i64 {
        let now = jiff::Timestamp::now().as_second();
        let previous = self.last.fetch_max(now, Ordering::SeqCst);
        previous.max(now)
    }
}

/// Events → batch operations, with the account's update clock.
#[derive(Debug, Default)]
pub struct TrackRequests {
    clock: UpdateClock,
    /// Preferences become `unsubscribed` (`marketing_consent = "sync"`).
    sync_consent: bool,
}

impl TrackRequests {
    pub fn new(sync_consent: bool) -> Self {
        Self { clock: UpdateClock::default(), sync_consent }
    }
}

impl RequestBuilder for TrackRequests {
    type Route = TrackRoute;

    fn accepts(&self, kind: EventKind) -> bool {
        kind != EventKind::ConsentChanged || self.sync_consent
    }

    fn route(&self, _event: &Event, _history: bool) -> Result<TrackRoute, RouteError> {
        Ok(TrackRoute::Batch)
    }

    fn encode(&self, event: &Event, _route: TrackRoute, _history: bool) -> Result<Vec<u8>, String> {
        let mut operation = Vec::with_capacity(1024);
        operation::write(event, || self.clock.next(), &mut operation)?;
        Ok(operation)
    }

    fn packing(&self, _route: TrackRoute) -> Packing {
        Packing {
            min_items: 1,
            max_items: usize::MAX,
            max_bytes: MAX_REQUEST_BYTES,
            max_item_bytes: MAX_OPERATION_BYTES,
            item_limit_name: "Customer.io's 32 KB",
            distinct_keys: false,
            envelope: Envelope::new(&b"{\"batch\":["[..], &b"]}"[..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_timestamps_never_go_back() {
        let clock = UpdateClock::default();
        let first = clock.next();
        clock.last.store(first + 100, Ordering::SeqCst);
        assert_eq!(clock.next(), first + 100);
    }
}
