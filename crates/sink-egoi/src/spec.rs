//! The E-goi sink's declaration: it keeps contacts and orders, not events,
//! so it takes profiles and order states only; people by email; history in
//! the bulk endpoints' batches.

use tillflow_core::EventKind;
use tillflow_kit::sink::{Batches, Identity, SinkSpec};

/// E-goi's stream limit is 20 MB a body; a margin stays under it.
pub const MAX_BODY_BYTES: usize = 19 * 1024 * 1024;
/// Contacts per bulk import (E-goi's plugins send up to 10 000).
pub const MAX_CONTACTS_PER_IMPORT: usize = 1000;
/// Contacts the bulk import takes at least ("Minimum of 2 contacts").
pub const MIN_CONTACTS_PER_IMPORT: usize = 2;

pub static SPEC: SinkSpec = SinkSpec {
    platform: crate::PLATFORM,
    events: &[
        // Re-posting an order id replaces the order: a state, not an event.
        (EventKind::OrderState, "order"),
        (EventKind::ProfileUpdated, "contact"),
        // The contact's status, with `marketing_consent = "sync"`; its
        // group tag, with `group_tags`.
        (EventKind::ConsentChanged, "consent"),
        (EventKind::GroupChanged, "group tags"),
    ],
    batches: Batches { live: 50, history: crate::config::MAX_HISTORY_BATCH },
    identity: Identity::Email,
    person_totals: false,
    in_flight: 4,
};
