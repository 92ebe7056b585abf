//! Events → Track API v2 batch operations (`POST /api/v2/batch`).
//!
//! One event becomes one operation, so a 207's `batch_index` maps straight
//! back to the event. Operations are packed into requests of at most 500 KB;
//! an operation over 32 KB is refused before it is sent.

use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicI64, Ordering};
use tillflow_core::model::{Customer, Money, Order, Person, PersonTotals};
use tillflow_core::{Event, EventKind, Subject};

/// Customer.io's limits for `/api/v2/batch`.
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;
pub const MAX_OPERATION_BYTES: usize = 32 * 1024;
/// `{"batch":[` + `]}`.
const ENVELOPE_BYTES: usize = 12;

/// The event name Customer.io sees, or `None` for kinds this sink does not send.
pub fn event_name(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::Placed => Some("Order Placed"),
        EventKind::Completed => Some("Order Completed"),
        EventKind::Canceled => Some("Order Cancelled"),
        EventKind::Refunded => Some("Order Refunded"),
        EventKind::Shipped => Some("Order Shipped"),
        EventKind::CustomerCreated => Some("Customer Created"),
        EventKind::OrderedProduct | EventKind::ProfileUpdated => None,
    }
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
/// (with a 200) an update older than one it already applied.
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
    let operation = match (&event.subject, event.kind) {
        (Subject::Customer { customer }, EventKind::ProfileUpdated) => json!({
            "type": "person",
            "identifiers": identifiers,
            "action": "identify",
            "timestamp": clock.next(),
            "attributes": customer_attributes(customer),
        }),
        (Subject::PersonTotals { person, totals }, _) => json!({
            "type": "person",
            "identifiers": identifiers,
            "action": "identify",
            "timestamp": clock.next(),
            "attributes": totals_attributes(person, totals),
        }),
        (subject, kind) => {
            let name =
                event_name(kind).ok_or_else(|| format!("{} events are not sent to Customer.io", kind.as_str()))?;
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
    };
    let size = serde_json::to_vec(&operation).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
    if size > MAX_OPERATION_BYTES {
        return Err(format!("operation is {size} bytes, more than Customer.io's 32 KB limit"));
    }
    Ok(operation)
}

/// A request body with the positions (in the delivered batch) of its operations.
pub struct BatchRequest {
    pub body: Vec<u8>,
    pub positions: Vec<usize>,
}

/// Packs operations into `{"batch":[…]}` bodies of at most 500 KB.
pub fn pack(operations: Vec<(usize, Value)>) -> Vec<BatchRequest> {
    let mut requests = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut positions = Vec::new();
    for (position, operation) in operations {
        let bytes = serde_json::to_vec(&operation).expect("operations serialize");
        if !positions.is_empty() && ENVELOPE_BYTES + current.len() + 1 + bytes.len() > MAX_REQUEST_BYTES {
            requests.push(finish(std::mem::take(&mut current), std::mem::take(&mut positions)));
        }
        if !current.is_empty() {
            current.push(b',');
        }
        current.extend_from_slice(&bytes);
        positions.push(position);
    }
    if !positions.is_empty() {
        requests.push(finish(current, positions));
    }
    requests
}

fn finish(operations: Vec<u8>, positions: Vec<usize>) -> BatchRequest {
    let mut body = Vec::with_capacity(operations.len() + ENVELOPE_BYTES);
    body.extend_from_slice(b"{\"batch\":[");
    body.extend_from_slice(&operations);
    body.extend_from_slice(b"]}");
    BatchRequest { body, positions }
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
    fn packing_respects_the_request_limit() {
        let big = json!({"x": "y".repeat(30_000)});
        let operations: Vec<(usize, Value)> = (0..40).map(|i| (i, big.clone())).collect();
        let requests = pack(operations);
        assert!(requests.len() >= 3);
        let mut seen = Vec::new();
        for request in &requests {
            assert!(request.body.len() <= MAX_REQUEST_BYTES, "{}", request.body.len());
            let parsed: Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(parsed["batch"].as_array().unwrap().len(), request.positions.len());
            seen.extend(request.positions.iter().copied());
        }
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn update_timestamps_never_go_back() {
        let clock = UpdateClock::default();
        let first = clock.next();
        clock.last.store(first + 100, Ordering::SeqCst);
        assert_eq!(clock.next(), first + 100);
    }
}
