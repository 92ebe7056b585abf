//! Request building for the Track API v2 batch (`POST /api/v2/batch`): one
//! event becomes one operation, serialized once, so a 207's `batch_index`
//! maps straight back to the event; operations are packed into requests of
//! at most 500 KB, and one over 32 KB is refused before it is sent.

use crate::spec::SPEC;
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicI64, Ordering};
use tillflow_core::model::{Customer, Money, Order, Person, PersonTotals};
use tillflow_core::{Event, EventKind, Subject};
use tillflow_kit::sink::{Envelope, Packing, RequestBuilder, RouteError};

/// Customer.io's limits for `/api/v2/batch`.
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;
pub const MAX_OPERATION_BYTES: usize = 32 * 1024;

/// The Track API has one request family here: the v2 batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackRoute {
    Batch,
}

pub use tillflow_core::model::json_number as number;

fn money(value: &Money) -> Value {
    number(value.amount)
}

/// The person's identifier: the source's customer id when there is one (so
/// online and in-store purchases land on one person), else the email.
pub fn identifiers(person: &Person) -> Option<Value> {
    if let Some(id) = person.customer_id.as_deref().filter(|id| !id.is_empty()) {
        return Some(json!({ "id": id }));
    }
    person.email.as_deref().filter(|_| person.has_email()).map(|email| json!({ "email": email }))
}

fn insert(attributes: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        attributes.insert(key.to_owned(), json!(value));
    }
}

fn person_attributes(person: &Person) -> Map<String, Value> {
    let mut attributes = Map::new();
    insert(&mut attributes, "email", person.email.as_deref());
    insert(&mut attributes, "first_name", person.first_name.as_deref());
    insert(&mut attributes, "last_name", person.last_name.as_deref());
    insert(&mut attributes, "phone", person.phone.as_deref());
    insert(&mut attributes, "city", person.address.city.as_deref());
    insert(&mut attributes, "state", person.address.region.as_deref());
    insert(&mut attributes, "postcode", person.address.postcode.as_deref());
    insert(&mut attributes, "country", person.address.country.as_deref());
    attributes
}

fn customer_attributes(customer: &Customer) -> Map<String, Value> {
    let mut attributes = person_attributes(&customer.person);
    attributes.insert("created_at".into(), json!(customer.created_at.as_second()));
    // What the source's own integrations show of the customer, as attributes.
    attributes.extend(customer.properties.iter().map(|(key, value)| (key.clone(), value.clone())));
    attributes
}

fn totals_attributes(person: &Person, totals: &PersonTotals) -> Map<String, Value> {
    // A registered customer's name and address come from their account (the
    // customer record); billing details of one order must not overwrite them.
    let mut attributes = if person.customer_id.is_some() {
        let mut only_email = Map::new();
        insert(&mut only_email, "email", person.email.as_deref());
        only_email
    } else {
        person_attributes(person)
    };
    attributes.insert("total_revenue".into(), number(totals.revenue));
    attributes.insert("lifetime_orders".into(), json!(totals.orders));
    if let Some(last) = totals.last_order_at {
        attributes.insert("last_order_date".into(), json!(last.as_second()));
    }
    attributes
}

fn order_data(order: &Order) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("order_id".into(), json!(order.identity.id));
    data.insert("order_number".into(), json!(order.number.clone().unwrap_or_else(|| order.identity.id.clone())));
    data.insert("total".into(), money(&order.totals.total));
    data.insert("subtotal".into(), money(&order.totals.subtotal));
    data.insert("discount_total".into(), money(&order.totals.discount));
    data.insert("shipping_total".into(), money(&order.totals.shipping));
    data.insert("tax_total".into(), money(&order.totals.tax));
    data.insert("currency".into(), json!(order.currency().as_str()));
    data.insert("status".into(), json!(order.status.as_str()));
    data.insert("channel".into(), json!(order.channel.as_str()));
    if let Some(location) = &order.location {
        data.insert("location_id".into(), json!(location.id));
    }
    if let Some(register) = &order.register_id {
        data.insert("register_id".into(), json!(register));
    }
    data.insert("coupon_codes".into(), json!(order.discount_codes()));
    if let Some(method) = &order.payment_method {
        data.insert("payment_method".into(), json!(method));
    }
    let items: Vec<Value> = order
        .lines
        .iter()
        .map(|line| {
            json!({
                "product_id": line.product_id,
                "sku": line.sku,
                "name": line.name,
                "quantity": number(line.quantity),
                "price": money(&line.unit_price),
                "total": money(&line.total),
            })
        })
        .collect();
    data.insert("items".into(), Value::Array(items));
    data
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

/// The batch operation for one event, or why it cannot be sent.
pub fn operation(event: &Event, clock: &UpdateClock) -> Result<Value, String> {
    let identifiers = identifiers(event.person()).ok_or_else(|| "no identifier".to_owned())?;
    Ok(match (&event.subject, event.kind) {
        (Subject::Customer { customer }, EventKind::ProfileUpdated) => json!({
            "type": "person",
            "identifiers": identifiers,
            "action": "identify",
            "timestamp": clock.next(),
            "attributes": customer_attributes(customer),
        }),
        // A preference changed at the source: Customer.io's own flag.
        (Subject::Customer { customer }, EventKind::ConsentChanged) => json!({
            "type": "person",
            "identifiers": identifiers,
            "action": "identify",
            "timestamp": clock.next(),
            "attributes": {"unsubscribed": customer.accepts_marketing == Some(false)},
        }),
        (Subject::PersonTotals { person, totals }, _) => json!({
            "type": "person",
            "identifiers": identifiers,
            "action": "identify",
            "timestamp": clock.next(),
            "attributes": totals_attributes(person, totals),
        }),
        (subject, kind) => {
            let name = SPEC
                .name(kind)
                .filter(|_| !matches!(kind, EventKind::ProfileUpdated | EventKind::ConsentChanged))
                .ok_or_else(|| format!("{} events are not sent to Customer.io", kind.as_str()))?;
            let attributes = match subject {
                Subject::Order { order } | Subject::OrderLine { order, .. } => order_data(order),
                Subject::Refund { refund } => {
                    let mut data = Map::new();
                    data.insert("order_id".into(), json!(refund.order_id));
                    data.insert("refund_id".into(), json!(refund.identity.id));
                    data.insert("amount".into(), money(&refund.amount));
                    data.insert("currency".into(), json!(refund.amount.currency.as_str()));
                    data.insert("reason".into(), json!(refund.reason.clone().unwrap_or_default()));
                    data
                }
                Subject::Shipment { shipment } => {
                    let mut data = Map::new();
                    data.insert("order_id".into(), json!(shipment.order_id));
                    data.insert("items".into(), json!(shipment.items));
                    if let Some(carrier) = &shipment.carrier {
                        data.insert("carrier".into(), json!(carrier));
                    }
                    if let Some(tracking) = &shipment.tracking_number {
                        data.insert("tracking_number".into(), json!(tracking));
                    }
                    data
                }
                Subject::Customer { customer } => {
                    let mut data = Map::new();
                    data.insert("customer_id".into(), json!(customer.identity.id));
                    data
                }
                Subject::PersonTotals { .. } => unreachable!("matched above"),
                Subject::Product { .. } => return Err("catalog items are not sent to Customer.io".into()),
            };
            json!({
                "type": "person",
                "identifiers": identifiers,
                "action": "event",
                "name": name,
                "id": event.key.ulid(event.occurred_at),
                "timestamp": event.occurred_at.as_second(),
                "attributes": attributes,
            })
        }
    })
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
        operation(event, &self.clock).map(|operation| serde_json::to_vec(&operation).expect("operations serialize"))
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
    use rust_decimal::Decimal;

    #[test]
    fn decimals_become_exact_json_numbers() {
        assert_eq!(number(Decimal::new(2935, 2)), json!(29.35));
        assert_eq!(number(Decimal::new(1000, 2)), json!(10));
        assert_eq!(number(Decimal::new(-5, 1)), json!(-0.5));
    }

    #[test]
    fn update_timestamps_never_go_back() {
        let clock = UpdateClock::default();
        let first = clock.next();
        clock.last.store(first + 100, Ordering::SeqCst);
        assert_eq!(clock.next(), first + 100);
    }
}
