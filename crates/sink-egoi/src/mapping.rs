//! Canonical records → E-goi's bodies: a contact (`base` and mapped
//! `extra` fields, never a consent or subscription status), an order as the
//! bulk import takes it and as the per-domain endpoint takes it, and the
//! fingerprint of what E-goi keeps of an order (status, total, items,
//! buyer), so an order is sent again exactly when that changed.

use crate::config::{CanonicalField, EgoiConfig, OrderIds, Revenue};
use crate::fields::ListShape;
use crate::phone::cellphone;
use crate::status::mapped_status;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tillflow_core::keys::content_hash_v1;
use tillflow_core::model::{Customer, Order, OrderStatus, Person, Text, json_number};

/// The buyer's email as E-goi matches contacts: trimmed, lower case.
pub fn email(person: &Person) -> Option<String> {
    person.has_email().then(|| person.email.as_deref().unwrap_or_default().trim().to_lowercase())
}

/// `2026-11-22T10:15:00+00:00`: RFC 3339 with its offset, as E-goi's SDKs
/// write a `date-time`.
pub fn date(at: Timestamp) -> String {
    at.to_zoned(TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// A contact's base fields: email, names, the cellphone when it can be made
/// valid. No `status`: tillflow never changes a subscription.
pub fn contact_base(person: &Person) -> Map<String, Value> {
    let mut base = Map::new();
    if let Some(email) = email(person) {
        base.insert("email".into(), json!(email));
    }
    for (key, value) in [("first_name", &person.first_name), ("last_name", &person.last_name)] {
        if let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            base.insert(key.into(), json!(value));
        }
    }
    if let Some(phone) = person.phone.as_deref().and_then(|p| cellphone(p, person.address.country.as_deref())) {
        base.insert("cellphone".into(), json!(phone));
    }
    base
}

fn canonical_value(field: CanonicalField, person: &Person, customer: Option<&Customer>) -> Option<String> {
    let address = &person.address;
    let value = match field {
        CanonicalField::CustomerId => person.customer_id.clone(),
        CanonicalField::Company => person.company.clone(),
        CanonicalField::Title => person.title.clone(),
        CanonicalField::AddressLine1 => address.line1.clone(),
        CanonicalField::AddressLine2 => address.line2.clone(),
        CanonicalField::City => address.city.clone(),
        CanonicalField::Region => address.region.clone(),
        CanonicalField::Postcode => address.postcode.clone(),
        CanonicalField::Country => address.country.clone(),
        CanonicalField::Phone => person.phone.clone(),
        CanonicalField::CustomerGroup => customer.and_then(|c| c.group.clone()),
    };
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A contact: base fields and the mapped extra fields that have a value.
pub fn contact(person: &Person, customer: Option<&Customer>, shape: &ListShape) -> Value {
    let extra: Vec<Value> = shape
        .extras
        .iter()
        .filter_map(|(field, id)| {
            canonical_value(*field, person, customer).map(|value| json!({"field_id": id, "value": value}))
        })
        .collect();
    let mut contact = json!({ "base": contact_base(person) });
    if !extra.is_empty() {
        contact["extra"] = Value::Array(extra);
    }
    contact
}

/// One ordered product as E-goi keeps it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Item {
    /// The variation's id when the line has one (as the plugin's history
    /// does), else the product's, else the line's.
    pub id: Text,
    pub name: Text,
    pub sku: Option<Text>,
    /// The price paid for one, line discounts included.
    pub unit_price: Decimal,
    pub quantity: Decimal,
    pub line_total: Decimal,
    pub categories: Vec<Text>,
}

/// What E-goi keeps of an order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrderFacts {
    pub order_id: Text,
    pub status: &'static str,
    pub revenue: Decimal,
    pub email: String,
    pub items: Vec<Item>,
}

/// Why an order is not sent (counted under this reason).
pub fn facts(order: &Order, config: &EgoiConfig) -> Result<OrderFacts, String> {
    let Some(status) = mapped_status(&order.status, &config.status_map).wire() else {
        return Err(if order.status == OrderStatus::Trash {
            "trashed".to_owned()
        } else {
            format!("status {} is not sent", order.status.as_str())
        });
    };
    let email = email(&order.person).ok_or("no email")?;
    let items: Vec<Item> = order
        .lines
        .iter()
        // Returned lines of a till sale carry a negative quantity: E-goi's
        // items take neither negative quantities nor negative prices.
        .filter(|line| line.quantity > Decimal::ZERO && line.total.amount >= Decimal::ZERO)
        .map(|line| Item {
            id: line.variant_id.clone().or_else(|| line.product_id.clone()).unwrap_or_else(|| line.line_id.clone()),
            name: line.name.clone(),
            sku: line.sku.clone(),
            unit_price: (line.total.amount / line.quantity).round_dp(4).normalize(),
            quantity: line.quantity.normalize(),
            line_total: line.total.amount.normalize(),
            categories: line.categories.clone(),
        })
        .collect();
    if items.is_empty() {
        return Err("no items".into());
    }
    let revenue = match config.revenue {
        Revenue::Gross => order.totals.total.amount,
        Revenue::Net => order.net_total().amount,
    };
    let order_id = match config.order_ids {
        OrderIds::Plain => order.identity.id.clone(),
        OrderIds::Prefixed => Text::display(format_args!("{}-{}", order.identity.source, order.identity.id)),
    };
    Ok(OrderFacts { order_id, status, revenue: revenue.normalize(), email, items })
}

/// The fingerprint the engine keeps instead of the record's hash: format 1,
/// the format every row E-goi's pipelines wrote holds (the engine compares
/// a stored hash with a new one of the same format).
pub fn fingerprint(facts: &OrderFacts) -> String {
    content_hash_v1(facts)
}

/// An element of `POST /lists/{list_id}/orders`. Quantities are integers
/// there: a fractional one (weighed goods) goes as one item at the line's
/// total.
pub fn bulk_order(facts: &OrderFacts, order: &Order, config: &EgoiConfig) -> Value {
    let items: Vec<Value> = facts
        .items
        .iter()
        .map(|item| {
            let (quantity, price) = if item.quantity.fract().is_zero() {
                (item.quantity, item.unit_price)
            } else {
                (Decimal::ONE, item.line_total)
            };
            let mut value = json!({
                "id": item.id,
                "name": item.name,
                "price": json_number(price),
                "quantity": json_number(quantity.trunc()),
            });
            if !item.categories.is_empty() {
                value["category"] =
                    json!(item.categories.iter().map(|c| c.replace(',', " ")).collect::<Vec<_>>().join(","));
            }
            value
        })
        .collect();
    json!({
        "order_id": facts.order_id,
        "order_status": facts.status,
        "contact_id": facts.email,
        "revenue": json_number(facts.revenue),
        "store_url": config.store_url.trim_end_matches('/'),
        "date": date(order.placed_at),
        "items": items,
    })
}

/// A body of `POST /{domain}/orders`: the order with its real date and its
/// buyer, whom E-goi matches (or creates) by the list's unique fields.
pub fn live_order(facts: &OrderFacts, order: &Order, contact: Value) -> Value {
    let products: Vec<Value> = facts
        .items
        .iter()
        .map(|item| {
            let mut product = json!({
                "product_identifier": item.id,
                "name": item.name,
                "price": json_number(item.unit_price),
                "quantity": json_number(item.quantity),
            });
            if let Some(sku) = &item.sku {
                product["sku"] = json!(sku);
            }
            if !item.categories.is_empty() {
                product["categories"] = json!(item.categories);
            }
            product
        })
        .collect();
    json!({
        "order_id": facts.order_id,
        "order_total": json_number(facts.revenue),
        "order_status": facts.status,
        "order_date": date(order.placed_at),
        "contact": contact,
        "products": products,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_carry_their_offset() {
        let at: Timestamp = "2026-11-22T10:15:00Z".parse().unwrap();
        assert_eq!(date(at), "2026-11-22T10:15:00+00:00");
    }
}
