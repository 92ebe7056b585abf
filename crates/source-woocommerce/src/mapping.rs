//! WooCommerce JSON → canonical records. Only the `*_gmt` timestamps are read,
//! as UTC (they carry no offset); money strings become decimals; a value that
//! does not parse is an error naming the order and the field.

use crate::PLATFORM;
use crate::wire::{WooAddress, WooCustomer, WooLineItem, WooOrder, WooRefund};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use std::borrow::Cow;
use tillflow_core::model::{
    Address, ChangeKind, Channel, Currency, Customer, Discount, Location, Money, Order, OrderLine, OrderStatus,
    OrderTotals, Person, Refund, RefundLine, SourceIdentity, Text,
};
use tillflow_kit::source::Loose;
use tillflow_kit::source::mapping::{decimal, non_empty, timestamp_in_zone};

/// Parses a WooCommerce `*_gmt` timestamp ("2017-03-22T19:28:02") as UTC.
/// A value with an explicit offset or `Z` is honoured too.
pub fn parse_gmt(text: &str) -> Result<Timestamp, String> {
    timestamp_in_zone(text, &TimeZone::UTC, "a WooCommerce GMT timestamp")?
        .ok_or_else(|| "an empty WooCommerce GMT timestamp".to_owned())
}

/// Formats a timestamp the way `modified_after` with `dates_are_gmt=true` expects.
pub fn format_gmt(at: Timestamp) -> String {
    at.to_zoned(TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// WooCommerce's ids are integers: written digit by digit, not through the formatter.
fn identity(source: &str, id: u64) -> SourceIdentity {
    SourceIdentity { platform: PLATFORM.into(), source: source.into(), id: Text::unsigned(id) }
}

fn money(value: &Loose, currency: &Currency, what: impl std::fmt::Display) -> Result<Money, String> {
    tillflow_kit::source::mapping::money(value.as_str(), currency, what)
}

fn timestamp(value: &Option<Cow<'_, str>>, what: &str) -> Result<Option<Timestamp>, String> {
    timestamp_in_zone(value.as_deref().unwrap_or(""), &TimeZone::UTC, what)
}

fn address(billing: &WooAddress) -> Address {
    Address {
        line1: non_empty(&billing.address_1),
        line2: non_empty(&billing.address_2),
        city: non_empty(&billing.city),
        region: non_empty(&billing.state),
        postcode: non_empty(&billing.postcode),
        country: non_empty(&billing.country),
    }
}

pub fn order_status(status: &str) -> OrderStatus {
    match status.trim_start_matches("wc-") {
        "pending" => OrderStatus::Pending,
        "processing" => OrderStatus::Processing,
        "on-hold" => OrderStatus::OnHold,
        "completed" => OrderStatus::Completed,
        "cancelled" => OrderStatus::Cancelled,
        "refunded" => OrderStatus::Refunded,
        "failed" => OrderStatus::Failed,
        "checkout-draft" | "auto-draft" | "draft" => OrderStatus::Draft,
        "trash" => OrderStatus::Trash,
        other => OrderStatus::Other(other.to_owned()),
    }
}

/// The first `key` meta's value as text, where it is a string or a number.
fn meta_text(order: &WooOrder, key: &str) -> Option<Text> {
    let raw = order.meta_data.iter().find(|meta| meta.key == key)?.value?;
    match serde_json::from_str(raw.get()).ok()? {
        serde_json::Value::String(text) => non_empty(&text),
        serde_json::Value::Number(number) => Some(Text::display(number)),
        _ => None,
    }
}

/// Oliver POS writes `_oliver_pos_receipt_id` and a payment method ending in
/// " (POS)"; either one marks a register sale (the meta may be hidden on HPOS
/// sites, the suffix survives).
pub fn is_oliver_pos(order: &WooOrder) -> bool {
    order.meta_data.iter().any(|meta| meta.key == "_oliver_pos_receipt_id") || order.payment_method.ends_with(" (POS)")
}

pub fn person(customer_id: Option<Text>, billing: &WooAddress, email: Option<&str>) -> Person {
    Person {
        customer_id,
        email: email.and_then(non_empty).or_else(|| billing.email.as_deref().and_then(non_empty)),
        first_name: non_empty(&billing.first_name),
        last_name: non_empty(&billing.last_name),
        phone: billing.phone.as_deref().and_then(non_empty),
        company: non_empty(&billing.company),
        title: None,
        address: address(billing),
    }
}

fn line(item: &WooLineItem, currency: &Currency, order_id: u64) -> Result<OrderLine, String> {
    let line_id = item.id.id().ok_or_else(|| format!("order {order_id}: a line item has no id"))?;
    let quantity = decimal(item.quantity.as_str(), format_args!("order {order_id} line {line_id} quantity"))?;
    let total = money(&item.total, currency, format_args!("order {order_id} line {line_id} total"))?;
    let unit_price = if item.price.as_str().trim().is_empty() && !quantity.is_zero() {
        Money::new(total.amount / quantity, *currency)
    } else {
        money(&item.price, currency, format_args!("order {order_id} line {line_id} price"))?
    };
    Ok(OrderLine {
        line_id: line_id.clone(),
        product_id: item.product_id.id(),
        variant_id: item.variation_id.id(),
        sku: item.sku.as_deref().and_then(non_empty),
        name: item.name.to_string().into(),
        quantity,
        unit_price,
        total,
        categories: Vec::new(),
        coupon: false,
        properties: Default::default(),
    })
}

/// The sum of the refunds the order lists (each `total` is negative).
fn refunded(wire: &WooOrder, currency: &Currency) -> Result<Option<Money>, String> {
    if wire.refunds.is_empty() {
        return Ok(None);
    }
    let mut sum = Decimal::ZERO;
    for refund in &wire.refunds {
        sum += decimal(refund.total.as_str(), format_args!("order {} refund total", wire.id))?.abs();
    }
    Ok(Some(Money::new(sum, *currency)))
}

pub fn order(source: &str, wire: &WooOrder) -> Result<Order, String> {
    let id = wire.id;
    let currency = Currency::new(&wire.currency).map_err(|e| format!("order {id}: currency {e}"))?;
    let created_at = timestamp(&wire.date_created_gmt, "date_created_gmt")
        .map_err(|e| format!("order {id}: {e}"))?
        .ok_or_else(|| format!("order {id}: date_created_gmt is missing"))?;
    let updated_at = timestamp(&wire.date_modified_gmt, "date_modified_gmt")
        .map_err(|e| format!("order {id}: {e}"))?
        .unwrap_or(created_at);
    let completed_at =
        timestamp(&wire.date_completed_gmt, "date_completed_gmt").map_err(|e| format!("order {id}: {e}"))?;
    let lines = wire.line_items.iter().map(|item| line(item, &currency, id)).collect::<Result<Vec<_>, _>>()?;
    let field = |value: &Loose, name: &str| money(value, &currency, format_args!("order {id} {name}"));
    let subtotal = lines.iter().map(|l| l.total.amount).sum::<Decimal>();
    let subtotal = {
        let before_discounts = wire
            .line_items
            .iter()
            .map(|item| decimal(item.subtotal.as_str(), format_args!("order {id} line subtotal")))
            .sum::<Result<Decimal, String>>()?;
        Money::new(if before_discounts.is_zero() { subtotal } else { before_discounts }, currency)
    };
    let discounts = wire
        .coupon_lines
        .iter()
        .map(|coupon| {
            Ok(Discount {
                code: non_empty(&coupon.code),
                name: None,
                amount: money(&coupon.discount, &currency, format_args!("order {id} coupon {}", coupon.code))?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let channel = if is_oliver_pos(wire) { Channel::InStore } else { Channel::Online };
    let status = order_status(&wire.status);
    Ok(Order {
        identity: identity(source, id),
        change: if updated_at == created_at { ChangeKind::Created } else { ChangeKind::Updated },
        number: wire.number.as_deref().filter(|n| !n.is_empty()).map(Text::new),
        person: person(wire.customer_id.id(), &wire.billing, None).into(),
        cancelled_at: (status == OrderStatus::Cancelled).then_some(updated_at),
        status,
        channel,
        location: meta_text(wire, "location_id").map(|id| Location { id, name: None }),
        register_id: meta_text(wire, "register_id"),
        lines,
        discounts,
        totals: OrderTotals {
            subtotal,
            discount: field(&wire.discount_total, "discount_total")?,
            shipping: field(&wire.shipping_total, "shipping_total")?,
            tax: field(&wire.total_tax, "total_tax")?,
            total: field(&wire.total, "total")?,
        },
        payment_method: non_empty(&wire.payment_method),
        refunded: refunded(wire, &currency)?,
        excluded: None,
        properties: Default::default(),
        created_at,
        // Checkout online, the register sale for Oliver POS: both create the order.
        placed_at: created_at,
        updated_at,
        completed_at,
    })
}

/// A refund of `order` (refunds are read per order, so the buyer is known).
pub fn refund(source: &str, order: &Order, wire: &WooRefund) -> Result<Refund, String> {
    let currency = *order.currency();
    let id = wire.id;
    let created_at = timestamp(&wire.date_created_gmt, "date_created_gmt")
        .map_err(|e| format!("refund {id}: {e}"))?
        .ok_or_else(|| format!("refund {id}: date_created_gmt is missing"))?;
    let lines = wire
        .line_items
        .iter()
        .map(|item| {
            Ok(RefundLine {
                order_line_id: None,
                product_id: item.product_id.id(),
                name: non_empty(&item.name),
                quantity: decimal(item.quantity.as_str(), format_args!("refund {id} quantity"))?.abs(),
                amount: Money::new(
                    decimal(item.total.as_str(), format_args!("refund {id} line total"))?.abs(),
                    currency,
                ),
                categories: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Refund {
        identity: identity(source, id),
        order_id: order.identity.id.clone(),
        person: order.person.clone(),
        amount: Money::new(decimal(wire.amount.as_str(), format_args!("refund {id} amount"))?.abs(), currency),
        reason: non_empty(&wire.reason),
        lines,
        created_at,
    })
}

pub fn customer(source: &str, wire: &WooCustomer) -> Result<Customer, String> {
    let id = wire.id;
    let created_at = timestamp(&wire.date_created_gmt, "date_created_gmt")
        .map_err(|e| format!("customer {id}: {e}"))?
        .ok_or_else(|| format!("customer {id}: date_created_gmt is missing"))?;
    let updated_at = timestamp(&wire.date_modified_gmt, "date_modified_gmt")
        .map_err(|e| format!("customer {id}: {e}"))?
        .unwrap_or(created_at);
    let mut person = person(Some(Text::display(id)), &wire.billing, Some(&wire.email));
    person.first_name = non_empty(&wire.first_name).or(person.first_name);
    person.last_name = non_empty(&wire.last_name).or(person.last_name);
    Ok(Customer {
        identity: identity(source, id),
        change: if updated_at == created_at { ChangeKind::Created } else { ChangeKind::Updated },
        person,
        accepts_marketing: None,
        group: non_empty(&wire.role),
        created_at,
        updated_at,
        properties: Default::default(),
        consent_changed_at: None,
        group_changed_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmt_timestamps_are_utc_and_offsets_are_honoured() {
        assert_eq!(parse_gmt("2017-03-22T19:28:02").unwrap().to_string(), "2017-03-22T19:28:02Z");
        assert_eq!(parse_gmt("2017-03-22T19:28:02+02:00").unwrap().to_string(), "2017-03-22T17:28:02Z");
        assert!(parse_gmt("yesterday").unwrap_err().contains("yesterday"));
        assert_eq!(format_gmt(parse_gmt("2017-03-22T19:28:02").unwrap()), "2017-03-22T19:28:02");
    }

    #[test]
    fn register_metas_are_read_among_metas_of_any_shape() {
        let json = r#"{"id": 5, "status": "completed", "currency": "EUR", "date_created_gmt": "2024-05-01T10:00:00",
            "total": "12.50", "payment_method": "cash (POS)", "line_items": [],
            "meta_data": [
                {"id": 1, "key": "_wc_order_attribution_session", "value": {"pages": [1, 2], "agent": "Mozilla \"x\""}},
                {"id": 2, "key": "register_id", "value": 7},
                {"id": 3, "key": "_stripe_fee", "value": null},
                {"id": 4, "key": "location_id", "value": ["not", "text"]},
                {"id": 5, "key": "location_id", "value": "12"},
                {"id": 6, "key": "_note", "value": "Caf\u00e9"}
            ]}"#;
        let wire: WooOrder = serde_json::from_str(json).unwrap();
        assert_eq!(meta_text(&wire, "register_id").as_deref(), Some("7"));
        // The first meta of a key decides, as WooCommerce's own get_meta does.
        assert_eq!(meta_text(&wire, "location_id"), None);
        assert_eq!(meta_text(&wire, "_stripe_fee"), None);
        assert_eq!(meta_text(&wire, "_note").as_deref(), Some("Café"));
        assert_eq!(meta_text(&wire, "_wc_order_attribution_session"), None);
        let order = order("shop", &wire).unwrap();
        assert_eq!(order.register_id.as_deref(), Some("7"));
    }

    #[test]
    fn statuses_map_with_or_without_the_wc_prefix() {
        assert_eq!(order_status("wc-on-hold"), OrderStatus::OnHold);
        assert_eq!(order_status("checkout-draft"), OrderStatus::Draft);
        assert_eq!(order_status("wc-layaway"), OrderStatus::Other("layaway".into()));
    }
}
