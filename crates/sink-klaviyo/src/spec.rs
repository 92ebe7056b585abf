//! The Klaviyo sink's declaration: the events it sends and the names the
//! platform shows them under, batch sizes, how it identifies people. Read by
//! `accepts`, the request builder and the demo's count check alike, with the
//! bulk limits the spec declares.

use tillflow_core::EventKind;
use tillflow_kit::sink::{Batches, Identity, SinkSpec};

/// Bulk limits from the spec's operation descriptions.
pub const MAX_PROFILES_PER_JOB: usize = 10_000;
pub const MAX_EVENTS_PER_JOB: usize = 1_000;
pub const MAX_PAYLOAD_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_CATALOG_ITEMS_PER_JOB: usize = 100;

pub static SPEC: SinkSpec = SinkSpec {
    platform: crate::PLATFORM,
    events: &[
        (EventKind::Placed, "Placed Order"),
        (EventKind::OrderedProduct, "Ordered Product"),
        (EventKind::Refunded, "Refunded Order"),
        (EventKind::Shipped, "Shipped Order"),
        // Not a metric: a profile upsert (live import or bulk import job).
        (EventKind::ProfileUpdated, "profile upsert"),
        // Not a metric: a catalog item (bulk create or update job), with
        // `catalog = true`.
        (EventKind::CatalogItem, "catalog item"),
        // Not metrics: email consent (subscribe / unsubscribe jobs), with
        // `marketing_consent = "sync"`; group list membership, with `group_lists`.
        (EventKind::ConsentChanged, "consent"),
        (EventKind::GroupChanged, "group lists"),
    ],
    // One bulk event job per history delivery: the next job's pages are read
    // and mapped while the job endpoint's rate limit makes the call wait.
    batches: Batches { live: 100, history: MAX_EVENTS_PER_JOB },
    identity: Identity::Email,
    person_totals: false,
    // Live events go one request each, many at once under the endpoint limits.
    in_flight: 16,
};
