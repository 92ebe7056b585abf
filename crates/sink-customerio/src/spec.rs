//! The Customer.io sink's declaration: the events it sends and the names the
//! platform shows them under, batch sizes, how it identifies people. Read by
//! `accepts`, the request builder and the demo's count check alike.

use tillflow_core::EventKind;
use tillflow_kit::sink::{Batches, Identity, SinkSpec};

pub static SPEC: SinkSpec = SinkSpec {
    platform: crate::PLATFORM,
    events: &[
        (EventKind::Placed, "Order Placed"),
        (EventKind::Completed, "Order Completed"),
        (EventKind::Canceled, "Order Cancelled"),
        (EventKind::Refunded, "Order Refunded"),
        (EventKind::Shipped, "Order Shipped"),
        (EventKind::CustomerCreated, "Customer Created"),
        // Not an event at Customer.io: an identify operation on the person.
        (EventKind::ProfileUpdated, "identify"),
        // Not an event: `unsubscribed` by identify, with `marketing_consent = "sync"`.
        (EventKind::ConsentChanged, "consent"),
    ],
    batches: Batches { live: 100, history: 1000 },
    identity: Identity::CustomerIdOrEmail,
    person_totals: true,
    // Sequential: a person's attribute updates keep their order.
    in_flight: 1,
};
