//! Event derivation: which behavioural events a record's current state implies.
//!
//! Derivation is a pure function of (record, context). It may propose an event
//! that was already delivered; the ledger, not this module, makes sure each key
//! takes effect once. That is what lets a status transition produce its event
//! exactly once however many times the record is re-read.

use crate::keys::{IdempotencyKey, content_hash, content_hash_v1, content_hash_v2, content_hash_v3, hash_format};
use crate::model::{Address, Customer, Order, OrderStatus, Person, PersonTotals, Product, Record, Refund, Shipment};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    Placed,
    OrderedProduct,
    Completed,
    Refunded,
    Shipped,
    Canceled,
    CustomerCreated,
    ProfileUpdated,
    /// An order's current state (status, totals, lines), for sinks that keep
    /// orders rather than events (E-goi): sent again whenever it changed.
    OrderState,
    /// A product as a catalog item (Klaviyo's catalog): sent again whenever
    /// it changed.
    CatalogItem,
    /// A person's marketing-email preference changed at the source (or was
    /// first stated): applied once per change by sinks syncing consent.
    ConsentChanged,
    /// A person's customer group changed at the source (or was first
    /// known): applied once per change by sinks keeping group lists or tags.
    GroupChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        Self::Placed,
        Self::OrderedProduct,
        Self::Completed,
        Self::Refunded,
        Self::Shipped,
        Self::Canceled,
        Self::CustomerCreated,
        Self::ProfileUpdated,
        Self::OrderState,
        Self::CatalogItem,
        Self::ConsentChanged,
        Self::GroupChanged,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::OrderedProduct => "ordered-product",
            Self::Completed => "completed",
            Self::Refunded => "refunded",
            Self::Shipped => "shipped",
            Self::Canceled => "canceled",
            Self::CustomerCreated => "customer-created",
            Self::ProfileUpdated => "profile-updated",
            Self::OrderState => "order-state",
            Self::CatalogItem => "catalog-item",
            Self::ConsentChanged => "consent",
            Self::GroupChanged => "group",
        }
    }
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
    /// A profile, an order's state or a catalog item carries the record's
    /// current state, so a changed record is sent again; every other event is
    /// a fact that happened once.
    pub fn resend_on_change(self) -> bool {
        matches!(self, Self::ProfileUpdated | Self::OrderState | Self::CatalogItem)
    }
}

/// What an event is about. Order-derived events share one `Arc<Order>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "subject", rename_all = "snake_case")]
pub enum Subject {
    Order {
        order: Arc<Order>,
    },
    OrderLine {
        order: Arc<Order>,
        line: usize,
    },
    Refund {
        refund: Arc<Refund>,
    },
    Shipment {
        shipment: Arc<Shipment>,
    },
    Customer {
        customer: Arc<Customer>,
    },
    /// A person's purchase totals, for sinks that keep them as attributes.
    PersonTotals {
        person: Arc<Person>,
        totals: PersonTotals,
    },
    Product {
        product: Arc<Product>,
    },
}

/// The person of an event about no one (a catalog item).
static NOBODY: Person = Person {
    customer_id: None,
    email: None,
    first_name: None,
    last_name: None,
    phone: None,
    company: None,
    title: None,
    address: Address { line1: None, line2: None, city: None, region: None, postcode: None, country: None },
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub key: IdempotencyKey,
    pub kind: EventKind,
    /// When it happened at the source (UTC).
    pub occurred_at: Timestamp,
    pub subject: Subject,
    /// Fingerprint of the record the event was derived from.
    pub content_hash: String,
    /// Older than the pipeline's first start: bulk endpoints, no flows.
    pub history: bool,
    /// Sent only if this key was delivered before (or earlier in the same pass):
    /// a cancellation means nothing for an order that was never placed.
    pub requires: Option<IdempotencyKey>,
    /// The sink took an earlier version of it (the ledger says so): a state
    /// sent again is an update of what the platform has.
    #[serde(default)]
    pub update: bool,
}

impl Event {
    pub fn person(&self) -> &Person {
        match &self.subject {
            Subject::Order { order } | Subject::OrderLine { order, .. } => &order.person,
            Subject::Refund { refund } => &refund.person,
            Subject::Shipment { shipment } => &shipment.person,
            Subject::Customer { customer } => &customer.person,
            Subject::PersonTotals { person, .. } => person,
            Subject::Product { .. } => &NOBODY,
        }
    }
    /// Whether the event is about a person (identity rules apply), not a
    /// catalog item.
    pub fn about_person(&self) -> bool {
        !matches!(self.subject, Subject::Product { .. })
    }
    pub fn order(&self) -> Option<&Order> {
        match &self.subject {
            Subject::Order { order } | Subject::OrderLine { order, .. } => Some(order),
            _ => None,
        }
    }
}

/// The record an event came from, borrowed, written as `Record` writes it:
/// what a hash of an older format (1 to 3) of the record is taken over.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum RecordRef<'a> {
    Customer(&'a Customer),
    Order(&'a Order),
    Refund(&'a Refund),
    Shipment(&'a Shipment),
    Product(&'a Product),
}

impl Event {
    /// Whether `stored` (a ledger row's hash) names this event's content.
    /// A row written in an older format is compared with that format's hash
    /// of what the event was derived from, so an upgrade resends nothing
    /// unchanged and misses no change. (A sink's own fingerprint, E-goi's,
    /// is format 1 and compared as it is.)
    pub fn has_content(&self, stored: &str) -> bool {
        let (stored_format, own_format) = (hash_format(stored), hash_format(&self.content_hash));
        if stored_format >= own_format {
            return stored == self.content_hash;
        }
        stored == self.older_hash(stored_format)
    }

    /// The hash an older format (1 to 3) took of what this event came from:
    /// its record (or, for a person's totals, its subject), as
    /// `derive_events` and the totals took them.
    fn older_hash(&self, format: u8) -> String {
        fn hash<T: Serialize + ?Sized>(format: u8, value: &T) -> String {
            match format {
                1 => content_hash_v1(value),
                2 => content_hash_v2(value),
                _ => content_hash_v3(value),
            }
        }
        match &self.subject {
            Subject::Order { order } | Subject::OrderLine { order, .. } => hash(format, &RecordRef::Order(order)),
            Subject::Refund { refund } => hash(format, &RecordRef::Refund(refund)),
            Subject::Shipment { shipment } => hash(format, &RecordRef::Shipment(shipment)),
            Subject::Customer { customer } => hash(format, &RecordRef::Customer(customer)),
            Subject::Product { product } => hash(format, &RecordRef::Product(product)),
            Subject::PersonTotals { .. } => hash(format, &self.subject),
        }
    }
}

impl Event {
    /// An event as derived: required to follow none, not yet known to the sink.
    pub fn new(
        key: IdempotencyKey,
        kind: EventKind,
        occurred_at: Timestamp,
        subject: Subject,
        content_hash: String,
        history: bool,
    ) -> Self {
        Self { key, kind, occurred_at, subject, content_hash, history, requires: None, update: false }
    }
}

/// What derivation needs to know beyond the record.
#[derive(Clone, Copy, Debug)]
pub struct DeriveContext {
    /// The moment this pipeline first started; earlier facts are history.
    pub pipeline_started_at: Timestamp,
}

/// The events a record's current state implies, in the order they happened.
pub fn derive_events(record: Record, context: &DeriveContext) -> Vec<Event> {
    derive_accepted(record, context, &|_| true)
}

/// [`derive_events`] for a sink: only the kinds it wants, so an event
/// it would drop (an order's state for a sink that keeps events) costs no
/// key and no copy of the record's hash.
pub fn derive_accepted(record: Record, context: &DeriveContext, wanted: &dyn Fn(EventKind) -> bool) -> Vec<Event> {
    let hash = content_hash(&record);
    let mut events = Vec::new();
    let history = |at: Timestamp| at < context.pipeline_started_at;
    match record {
        Record::Order(order) => {
            let order = Arc::new(order);
            if order.change == crate::model::ChangeKind::Deleted {
                return events;
            }
            // Placed, a line each, completed or canceled, the state.
            events.reserve_exact(order.lines.len() + 3);
            let placed_key = || IdempotencyKey::new(&order.identity, "order", "placed", None);
            if order.status.is_placed() {
                let at = order.placed_at;
                if wanted(EventKind::Placed) {
                    events.push(Event::new(
                        placed_key(),
                        EventKind::Placed,
                        at,
                        Subject::Order { order: order.clone() },
                        hash.clone(),
                        history(at),
                    ));
                }
                for (index, line) in order.lines.iter().enumerate() {
                    if wanted(EventKind::OrderedProduct) {
                        events.push(Event::new(
                            IdempotencyKey::new(&order.identity, "order", "ordered-product", Some(&line.line_id)),
                            EventKind::OrderedProduct,
                            at,
                            Subject::OrderLine { order: order.clone(), line: index },
                            hash.clone(),
                            history(at),
                        ));
                    }
                }
            }
            if order.status == OrderStatus::Completed {
                let at = order.completed_at.unwrap_or(order.updated_at);
                if wanted(EventKind::Completed) {
                    events.push(Event::new(
                        IdempotencyKey::new(&order.identity, "order", "completed", None),
                        EventKind::Completed,
                        at,
                        Subject::Order { order: order.clone() },
                        hash.clone(),
                        history(at),
                    ));
                }
            }
            if order.status == OrderStatus::Cancelled {
                let at = order.cancelled_at.unwrap_or(order.updated_at);
                if wanted(EventKind::Canceled) {
                    events.push(Event {
                        requires: Some(placed_key()),
                        ..Event::new(
                            IdempotencyKey::new(&order.identity, "order", "canceled", None),
                            EventKind::Canceled,
                            at,
                            Subject::Order { order: order.clone() },
                            hash.clone(),
                            history(at),
                        )
                    });
                }
            }
            // The order as it stands now (after its facts): its time is its
            // last change.
            if wanted(EventKind::OrderState) {
                events.push(Event::new(
                    IdempotencyKey::new(&order.identity, "order", "state", None),
                    EventKind::OrderState,
                    order.updated_at,
                    Subject::Order { order: order.clone() },
                    hash,
                    history(order.updated_at),
                ));
            }
        }
        Record::Refund(refund) => {
            let at = refund.created_at;
            if wanted(EventKind::Refunded) {
                events.push(Event::new(
                    IdempotencyKey::new(&refund.identity, "refund", "refunded", None),
                    EventKind::Refunded,
                    at,
                    Subject::Refund { refund: Arc::new(refund) },
                    hash,
                    history(at),
                ));
            }
        }
        Record::Shipment(shipment) => {
            let at = shipment.shipped_at;
            if wanted(EventKind::Shipped) {
                events.push(Event::new(
                    IdempotencyKey::new(&shipment.identity, "shipment", "shipped", None),
                    EventKind::Shipped,
                    at,
                    Subject::Shipment { shipment: Arc::new(shipment) },
                    hash,
                    history(at),
                ));
            }
        }
        Record::Customer(customer) => {
            if customer.change == crate::model::ChangeKind::Deleted {
                return events;
            }
            let customer = Arc::new(customer);
            if wanted(EventKind::ProfileUpdated) {
                events.push(Event::new(
                    IdempotencyKey::new(&customer.identity, "customer", "profile", None),
                    EventKind::ProfileUpdated,
                    customer.updated_at,
                    Subject::Customer { customer: customer.clone() },
                    hash.clone(),
                    history(customer.updated_at),
                ));
            }
            // A preference or group change is a fact of its own, keyed by
            // what it became and when: the same state read again is the same key.
            if let (Some(accepts), Some(at)) = (customer.accepts_marketing, customer.consent_changed_at)
                && wanted(EventKind::ConsentChanged)
            {
                events.push(Event::new(
                    IdempotencyKey::new(&customer.identity, "customer", "consent", Some(&format!("{accepts}@{at}"))),
                    EventKind::ConsentChanged,
                    at,
                    Subject::Customer { customer: customer.clone() },
                    hash.clone(),
                    history(at),
                ));
            }
            if let Some(at) = customer.group_changed_at {
                let group = customer.group.as_deref().unwrap_or("");
                if wanted(EventKind::GroupChanged) {
                    events.push(Event::new(
                        IdempotencyKey::new(&customer.identity, "customer", "group", Some(&format!("{group}@{at}"))),
                        EventKind::GroupChanged,
                        at,
                        Subject::Customer { customer: customer.clone() },
                        hash.clone(),
                        history(at),
                    ));
                }
            }
            // Customers that existed before the pipeline started are identified,
            // not announced: announcing them would fire every welcome flow at once.
            if !history(customer.created_at) && wanted(EventKind::CustomerCreated) {
                events.push(Event::new(
                    IdempotencyKey::new(&customer.identity, "customer", "created", None),
                    EventKind::CustomerCreated,
                    customer.created_at,
                    Subject::Customer { customer },
                    hash,
                    false,
                ));
            }
        }
        Record::Product(product) => {
            if product.change == crate::model::ChangeKind::Deleted {
                return events;
            }
            let at = product.updated_at;
            if wanted(EventKind::CatalogItem) {
                events.push(Event::new(
                    IdempotencyKey::new(&product.identity, "product", "catalog", None),
                    EventKind::CatalogItem,
                    at,
                    Subject::Product { product: Arc::new(product) },
                    hash,
                    history(at),
                ));
            }
        }
    }
    events
}
