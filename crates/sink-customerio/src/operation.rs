//! One event as one `/api/v2/batch` operation, written straight from the
//! event's fields by the kit's `JsonObject`: no `serde_json::Value` tree is
//! built, and keys and texts are copied as they are unless they need an
//! escape (serde's derive sent every one through serde_json's escaping, a
//! byte at a time: 5% of a history import's instructions). Keys are
//! written in the order a JSON object map sorts them, the order Customer.io
//! has always been sent.

use crate::spec::SPEC;
use serde_json::Value;
use tillflow_core::model::{Customer, JsonNumber, Order, OrderLine, Person, PersonTotals, Refund, Shipment, Text};
use tillflow_core::{Event, EventKind, Subject};
use tillflow_kit::sink::JsonObject;

/// Writes the operation for `event` into `out`, or says why it cannot be
/// sent. `identify_timestamp` is asked only for identify operations.
pub fn write(event: &Event, identify_timestamp: impl FnOnce() -> i64, out: &mut Vec<u8>) -> Result<(), String> {
    let identifiers = Identifiers::of(event.person()).ok_or_else(|| "no identifier".to_owned())?;
    match (&event.subject, event.kind) {
        (Subject::Customer { customer }, EventKind::ProfileUpdated) => {
            identify(out, identifiers, identify_timestamp(), &customer_attributes(customer));
        }
        // A preference changed at the source: Customer.io's own flag.
        (Subject::Customer { customer }, EventKind::ConsentChanged) => {
            let unsubscribed = ("unsubscribed", Attribute::Bool(customer.accepts_marketing == Some(false)));
            identify(out, identifiers, identify_timestamp(), &Attributes(vec![unsubscribed]));
        }
        (Subject::PersonTotals { person, totals }, _) => {
            identify(out, identifiers, identify_timestamp(), &totals_attributes(person, totals));
        }
        (subject, kind) => {
            let name = SPEC
                .name(kind)
                .filter(|_| !matches!(kind, EventKind::ProfileUpdated | EventKind::ConsentChanged))
                .ok_or_else(|| format!("{} events are not sent to Customer.io", kind.as_str()))?;
            let data: &dyn Fn(&mut JsonObject) = match subject {
                Subject::Order { order } | Subject::OrderLine { order, .. } => &|data| order_data(data, order),
                Subject::Refund { refund } => &|data| refund_data(data, refund),
                Subject::Shipment { shipment } => &|data| shipment_data(data, shipment),
                Subject::Customer { customer } => &|data| data.text("customer_id", &customer.identity.id),
                Subject::PersonTotals { .. } => unreachable!("matched above"),
                Subject::Product { .. } => return Err("catalog items are not sent to Customer.io".into()),
            };
            let id = event.key.ulid(event.occurred_at);
            let operation = Operation {
                action: "event",
                id: Some(id.as_str()),
                identifiers,
                name: Some(name),
                timestamp: event.occurred_at.as_second(),
            };
            operation.write(out, data);
        }
    }
    Ok(())
}

fn identify(out: &mut Vec<u8>, identifiers: Identifiers<'_>, timestamp: i64, attributes: &Attributes) {
    let operation = Operation { action: "identify", id: None, identifiers, name: None, timestamp };
    operation.write(out, &|object| attributes.write(object));
}

/// An operation's fields but its attributes.
struct Operation<'a> {
    action: &'static str,
    id: Option<&'a str>,
    identifiers: Identifiers<'a>,
    name: Option<&'a str>,
    timestamp: i64,
}

impl Operation<'_> {
    /// Writes the operation, its attributes written by `attributes`; fields
    /// in key order.
    fn write(&self, out: &mut Vec<u8>, attributes: &dyn Fn(&mut JsonObject)) {
        let mut operation = JsonObject::begin(out);
        operation.text("action", self.action);
        let mut object = operation.object("attributes");
        attributes(&mut object);
        object.end();
        operation.text_if_some("id", self.id);
        let mut identifiers = operation.object("identifiers");
        match self.identifiers {
            Identifiers::Id(id) => identifiers.text("id", id),
            Identifiers::Email(email) => identifiers.text("email", email),
        }
        identifiers.end();
        operation.text_if_some("name", self.name);
        operation.value("timestamp", &self.timestamp);
        operation.text("type", "person");
        operation.end();
    }
}

/// The person's identifier: the source's customer id when there is one (so
/// online and in-store purchases land on one person), else the email.
#[derive(Clone, Copy)]
enum Identifiers<'a> {
    Id(&'a str),
    Email(&'a str),
}

impl<'a> Identifiers<'a> {
    fn of(person: &'a Person) -> Option<Self> {
        if let Some(id) = person.customer_id.as_deref().filter(|id| !id.is_empty()) {
            return Some(Self::Id(id));
        }
        person.email.as_deref().filter(|_| person.has_email()).map(Self::Email)
    }
}

/// One attribute's value, borrowed from the event.
#[derive(Clone, Copy)]
enum Attribute<'a> {
    Text(&'a str),
    Integer(i64),
    Count(u64),
    Number(JsonNumber),
    Bool(bool),
    Json(&'a Value),
}

/// A person's attributes: fixed ones and a source's own properties, written
/// in key order, a later value for a key replacing an earlier one (a
/// property named like a fixed attribute wins, as it always has).
struct Attributes<'a>(Vec<(&'a str, Attribute<'a>)>);

impl<'a> Attributes<'a> {
    fn text(&mut self, key: &'a str, value: Option<&'a str>) {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            self.0.push((key, Attribute::Text(value)));
        }
    }

    fn write(&self, object: &mut JsonObject) {
        let mut sorted: Vec<(usize, &(&str, Attribute<'_>))> = self.0.iter().enumerate().collect();
        // By key, and for one key the value added last first, so it is the
        // one kept.
        sorted.sort_by(|(a_at, (a, _)), (b_at, (b, _))| a.cmp(b).then(b_at.cmp(a_at)));
        sorted.dedup_by(|(_, (later, _)), (_, (kept, _))| later == kept);
        for (_, (key, value)) in sorted {
            match value {
                Attribute::Text(text) => object.text(key, text),
                Attribute::Integer(integer) => object.value(key, integer),
                Attribute::Count(count) => object.value(key, count),
                Attribute::Number(number) => object.value(key, number),
                Attribute::Bool(flag) => object.value(key, flag),
                Attribute::Json(value) => object.value(key, *value),
            }
        }
    }
}

fn person_attributes(person: &Person) -> Attributes<'_> {
    let mut attributes = Attributes(Vec::with_capacity(12));
    attributes.text("email", person.email.as_deref());
    attributes.text("first_name", person.first_name.as_deref());
    attributes.text("last_name", person.last_name.as_deref());
    attributes.text("phone", person.phone.as_deref());
    attributes.text("city", person.address.city.as_deref());
    attributes.text("state", person.address.region.as_deref());
    attributes.text("postcode", person.address.postcode.as_deref());
    attributes.text("country", person.address.country.as_deref());
    attributes
}

fn customer_attributes(customer: &Customer) -> Attributes<'_> {
    let mut attributes = person_attributes(&customer.person);
    attributes.0.push(("created_at", Attribute::Integer(customer.created_at.as_second())));
    // What the source's own integrations show of the customer, as attributes.
    attributes.0.extend(customer.properties.iter().map(|(key, value)| (key.as_str(), Attribute::Json(value))));
    attributes
}

fn totals_attributes<'a>(person: &'a Person, totals: &PersonTotals) -> Attributes<'a> {
    // A registered customer's name and address come from their account (the
    // customer record); billing details of one order must not overwrite them.
    let mut attributes = if person.customer_id.is_some() {
        let mut only_email = Attributes(Vec::with_capacity(4));
        only_email.text("email", person.email.as_deref());
        only_email
    } else {
        person_attributes(person)
    };
    attributes.0.push(("total_revenue", Attribute::Number(JsonNumber(totals.revenue))));
    attributes.0.push(("lifetime_orders", Attribute::Count(totals.orders)));
    if let Some(last) = totals.last_order_at {
        attributes.0.push(("last_order_date", Attribute::Integer(last.as_second())));
    }
    attributes
}

/// An order event's attributes, fields in key order.
fn order_data(data: &mut JsonObject, order: &Order) {
    data.text("channel", order.channel.as_str());
    data.texts("coupon_codes", order.discount_codes().iter().map(Text::as_str));
    data.text("currency", order.currency().as_str());
    data.value("discount_total", &JsonNumber(order.totals.discount.amount));
    data.array("items", &order.lines, item);
    data.text_if_some("location_id", order.location.as_ref().map(|location| location.id.as_str()));
    data.text("order_id", &order.identity.id);
    data.text("order_number", order.number.as_deref().unwrap_or(&order.identity.id));
    data.text_if_some("payment_method", order.payment_method.as_deref());
    data.text_if_some("register_id", order.register_id.as_deref());
    data.value("shipping_total", &JsonNumber(order.totals.shipping.amount));
    data.text("status", order.status.as_str());
    data.value("subtotal", &JsonNumber(order.totals.subtotal.amount));
    data.value("tax_total", &JsonNumber(order.totals.tax.amount));
    data.value("total", &JsonNumber(order.totals.total.amount));
}

/// One of an order's items, fields in key order.
fn item(out: &mut Vec<u8>, line: &OrderLine) {
    let mut item = JsonObject::begin(out);
    item.text("name", &line.name);
    item.value("price", &JsonNumber(line.unit_price.amount));
    item.text_or_null("product_id", line.product_id.as_deref());
    item.value("quantity", &JsonNumber(line.quantity));
    item.text_or_null("sku", line.sku.as_deref());
    item.value("total", &JsonNumber(line.total.amount));
    item.end();
}

fn refund_data(data: &mut JsonObject, refund: &Refund) {
    data.value("amount", &JsonNumber(refund.amount.amount));
    data.text("currency", refund.amount.currency.as_str());
    data.text("order_id", &refund.order_id);
    data.text("reason", refund.reason.as_deref().unwrap_or_default());
    data.text("refund_id", &refund.identity.id);
}

fn shipment_data(data: &mut JsonObject, shipment: &Shipment) {
    data.text_if_some("carrier", shipment.carrier.as_deref());
    data.texts("items", shipment.items.iter().map(Text::as_str));
    data.text("order_id", &shipment.order_id);
    data.text_if_some("tracking_number", shipment.tracking_number.as_deref());
}
