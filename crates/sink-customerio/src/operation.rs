//! One event as one `/api/v2/batch` operation, serialized straight from the
//! event's fields: no `serde_json::Value` tree is built, so encoding costs no
//! allocation per attribute. Keys are written in the order a JSON object map
//! sorts them, the order Customer.io has always been sent.

use crate::spec::SPEC;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use tillflow_core::model::{Customer, JsonNumber, Order, OrderLine, Person, PersonTotals, Refund, Shipment};
use tillflow_core::{Event, EventKind, Subject};

/// Writes the operation for `event` into `out`, or says why it cannot be
/// sent. `identify_timestamp` is asked only for identify operations.
pub fn write(event: &Event, identify_timestamp: impl FnOnce() -> i64, out: &mut Vec<u8>) -> Result<(), String> {
    let identifiers = Identifiers::of(event.person()).ok_or_else(|| "no identifier".to_owned())?;
    match (&event.subject, event.kind) {
        (Subject::Customer { customer }, EventKind::ProfileUpdated) => {
            identify(out, identifiers, identify_timestamp(), &customer_attributes(customer))
        }
        // A preference changed at the source: Customer.io's own flag.
        (Subject::Customer { customer }, EventKind::ConsentChanged) => {
            let unsubscribed = [("unsubscribed", Attribute::Bool(customer.accepts_marketing == Some(false)))];
            identify(out, identifiers, identify_timestamp(), &Attributes(unsubscribed.to_vec()))
        }
        (Subject::PersonTotals { person, totals }, _) => {
            identify(out, identifiers, identify_timestamp(), &totals_attributes(person, totals))
        }
        (subject, kind) => {
            let name = SPEC
                .name(kind)
                .filter(|_| !matches!(kind, EventKind::ProfileUpdated | EventKind::ConsentChanged))
                .ok_or_else(|| format!("{} events are not sent to Customer.io", kind.as_str()))?;
            let id = event.key.ulid(event.occurred_at);
            let timestamp = event.occurred_at.as_second();
            let operation = |attributes| Operation {
                action: "event",
                attributes,
                id: Some(id.as_str()),
                identifiers,
                name: Some(name),
                timestamp,
                kind: "person",
            };
            match subject {
                Subject::Order { order } | Subject::OrderLine { order, .. } => {
                    to_writer(out, &operation(EventData::Order(OrderData::of(order))))
                }
                Subject::Refund { refund } => to_writer(out, &operation(EventData::Refund(RefundData::of(refund)))),
                Subject::Shipment { shipment } => {
                    to_writer(out, &operation(EventData::Shipment(ShipmentData::of(shipment))))
                }
                Subject::Customer { customer } => {
                    to_writer(out, &operation(EventData::Customer { customer_id: &customer.identity.id }))
                }
                Subject::PersonTotals { .. } => unreachable!("matched above"),
                Subject::Product { .. } => Err("catalog items are not sent to Customer.io".into()),
            }
        }
    }
}

fn to_writer(out: &mut Vec<u8>, value: &impl Serialize) -> Result<(), String> {
    serde_json::to_writer(out, value).map_err(|e| format!("cannot encode the operation: {e}"))
}

fn identify(
    out: &mut Vec<u8>,
    identifiers: Identifiers<'_>,
    timestamp: i64,
    attributes: &Attributes,
) -> Result<(), String> {
    to_writer(
        out,
        &Operation { action: "identify", attributes, id: None, identifiers, name: None, timestamp, kind: "person" },
    )
}

/// Fields in the order a sorted map writes them.
#[derive(Serialize)]
struct Operation<'a, A: Serialize> {
    action: &'static str,
    attributes: A,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    identifiers: Identifiers<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    timestamp: i64,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The person's identifier: the source's customer id when there is one (so
/// online and in-store purchases land on one person), else the email.
#[derive(Clone, Copy, Serialize)]
enum Identifiers<'a> {
    #[serde(rename = "id")]
    Id(&'a str),
    #[serde(rename = "email")]
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

impl Serialize for Attribute<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Integer(integer) => serializer.serialize_i64(*integer),
            Self::Count(count) => serializer.serialize_u64(*count),
            Self::Number(number) => number.serialize(serializer),
            Self::Bool(flag) => serializer.serialize_bool(*flag),
            Self::Json(value) => value.serialize(serializer),
        }
    }
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
}

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sorted: Vec<(usize, &(&str, Attribute<'_>))> = self.0.iter().enumerate().collect();
        // By key, and for one key the value added last first, so it is the
        // one kept.
        sorted.sort_by(|(a_at, (a, _)), (b_at, (b, _))| a.cmp(b).then(b_at.cmp(a_at)));
        sorted.dedup_by(|(_, (later, _)), (_, (kept, _))| later == kept);
        let mut map = serializer.serialize_map(Some(sorted.len()))?;
        for (_, (key, value)) in sorted {
            map.serialize_entry(key, value)?;
        }
        map.end()
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

#[derive(Serialize)]
#[serde(untagged)]
enum EventData<'a> {
    Order(OrderData<'a>),
    Refund(RefundData<'a>),
    Shipment(ShipmentData<'a>),
    Customer { customer_id: &'a str },
}

/// An order event's attributes, fields in key order.
#[derive(Serialize)]
struct OrderData<'a> {
    channel: &'a str,
    coupon_codes: Vec<String>,
    currency: &'a str,
    discount_total: JsonNumber,
    items: Vec<Item<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location_id: Option<&'a str>,
    order_id: &'a str,
    order_number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    register_id: Option<&'a str>,
    shipping_total: JsonNumber,
    status: &'a str,
    subtotal: JsonNumber,
    tax_total: JsonNumber,
    total: JsonNumber,
}

impl<'a> OrderData<'a> {
    fn of(order: &'a Order) -> Self {
        Self {
            channel: order.channel.as_str(),
            coupon_codes: order.discount_codes(),
            currency: order.currency().as_str(),
            discount_total: JsonNumber(order.totals.discount.amount),
            items: order.lines.iter().map(Item::of).collect(),
            location_id: order.location.as_ref().map(|location| location.id.as_str()),
            order_id: &order.identity.id,
            order_number: order.number.as_deref().unwrap_or(&order.identity.id),
            payment_method: order.payment_method.as_deref(),
            register_id: order.register_id.as_deref(),
            shipping_total: JsonNumber(order.totals.shipping.amount),
            status: order.status.as_str(),
            subtotal: JsonNumber(order.totals.subtotal.amount),
            tax_total: JsonNumber(order.totals.tax.amount),
            total: JsonNumber(order.totals.total.amount),
        }
    }
}

#[derive(Serialize)]
struct Item<'a> {
    name: &'a str,
    price: JsonNumber,
    product_id: Option<&'a str>,
    quantity: JsonNumber,
    sku: Option<&'a str>,
    total: JsonNumber,
}

impl<'a> Item<'a> {
    fn of(line: &'a OrderLine) -> Self {
        Self {
            name: &line.name,
            price: JsonNumber(line.unit_price.amount),
            product_id: line.product_id.as_deref(),
            quantity: JsonNumber(line.quantity),
            sku: line.sku.as_deref(),
            total: JsonNumber(line.total.amount),
        }
    }
}

#[derive(Serialize)]
struct RefundData<'a> {
    amount: JsonNumber,
    currency: &'a str,
    order_id: &'a str,
    reason: &'a str,
    refund_id: &'a str,
}

impl<'a> RefundData<'a> {
    fn of(refund: &'a Refund) -> Self {
        Self {
            amount: JsonNumber(refund.amount.amount),
            currency: refund.amount.currency.as_str(),
            order_id: &refund.order_id,
            reason: refund.reason.as_deref().unwrap_or_default(),
            refund_id: &refund.identity.id,
        }
    }
}

#[derive(Serialize)]
struct ShipmentData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    carrier: Option<&'a str>,
    items: &'a [String],
    order_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_number: Option<&'a str>,
}

impl<'a> ShipmentData<'a> {
    fn of(shipment: &'a Shipment) -> Self {
        Self {
            carrier: shipment.carrier.as_deref(),
            items: &shipment.items,
            order_id: &shipment.order_id,
            tracking_number: shipment.tracking_number.as_deref(),
        }
    }
}
