//! Wire → canonical model: a POS or eCom customer → a merge side; the
//! merged view → a customer with its group, its marketing-email preference
//! and where it is known; a closed sale → an order (its total is
//! `total_price + total_tax`: X-Series prices exclude tax), a void → a
//! cancelled order, a sale with `return_for` → a refund of the original.

use crate::ecom_wire;
use crate::merge::{Merged, Side, group_title};
use crate::wire::{self, first_text};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::HashMap;
use tillflow_core::model::{
    Address, ChangeKind, Channel, Currency, Customer, Location, Money, Order, OrderLine, OrderStatus, OrderTotals,
    Person, Properties, Record, Refund, RefundLine, Text,
};
use tillflow_kit::source::mapping::{decimal, identity, non_empty, timestamp_with_offset};

/// The statuses in which a sale is a finished order.
pub const CLOSED: [&str; 6] =
    ["CLOSED", "ONACCOUNT_CLOSED", "LAYBY_CLOSED", "DISPATCHED_CLOSED", "PICKED_UP_CLOSED", "SERVICE_CLOSED"];

/// What a sale line shows of its product.
#[derive(Clone, Debug, Default)]
pub struct ProductInfo {
    pub name: Text,
    pub sku: Option<Text>,
}

/// What an outlet gives its sales.
#[derive(Clone, Debug)]
pub struct OutletInfo {
    pub name: Option<Text>,
    pub currency: Option<Currency>,
    pub time_zone: Option<Text>,
}

/// An eCom time: `2024-06-04 21:15:10 +0000`, RFC 3339, or UNIX seconds.
pub fn ecom_time(text: &str, what: &str) -> Result<Option<Timestamp>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return Timestamp::from_second(seconds).map(Some).map_err(|e| format!("{what} `{text}`: {e}"));
    }
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(Some(at));
    }
    jiff::fmt::strtime::parse("%Y-%m-%d %H:%M:%S %z", text)
        .and_then(|parsed| parsed.to_timestamp())
        .map(Some)
        .map_err(|_| format!("{what} `{text}` is not an eCom time"))
}

/// A POS customer as the merge's POS side; the group by its title.
pub fn pos_side(customer: &wire::Customer, groups: &HashMap<Text, Text>) -> Result<Side, String> {
    let id = customer.id.id().ok_or("a customer without an id")?;
    Ok(Side {
        id,
        email: customer.email.text(),
        first_name: customer.first_name.text(),
        last_name: customer.last_name.text(),
        phone: first_text(&[&customer.phone, &customer.mobile]),
        company: customer.company_name.text(),
        address: Address {
            line1: customer.physical_address_1.text(),
            line2: customer.physical_address_2.text(),
            city: customer.physical_city.text(),
            region: customer.physical_state.text(),
            postcode: customer.physical_postcode.text(),
            country: customer.physical_country_id.text(),
        },
        group: group_title(customer.customer_group_id.id().and_then(|id| groups.get(&id).cloned())),
        marketing: Some(!customer.do_not_email.is_true()),
        created_at: timestamp_with_offset(customer.created_at.as_str(), "created_at")?,
        changed_at: timestamp_with_offset(customer.updated_at.as_str(), "updated_at")?,
    })
}

/// An eCom customer as the merge's eCom side. The group's title comes
/// from the store's groups (the customer's own `customerGroupName` when
/// the group is not listed); id 0 is the default.
pub fn ecom_side(customer: &ecom_wire::Customer, groups: &HashMap<Text, Text>) -> Result<Side, String> {
    let id = customer.id.id().ok_or("an eCom customer without an id")?;
    let billing = customer.billing_person.clone().unwrap_or_default();
    let (first, last) = match (billing.first_name.text(), billing.last_name.text()) {
        (None, None) => split_name(billing.name.text().or_else(|| customer.name.text())),
        names => names,
    };
    let group = match customer.customer_group_id.id() {
        None => None,
        Some(group_id) => groups.get(&group_id).cloned().or_else(|| customer.customer_group_name.text()),
    };
    Ok(Side {
        id,
        email: customer.email.text(),
        first_name: first,
        last_name: last,
        phone: billing.phone.text(),
        company: billing.company_name.text(),
        address: Address {
            line1: billing.street.text(),
            line2: None,
            city: billing.city.text(),
            region: billing.state_or_province_code.text(),
            postcode: billing.postal_code.text(),
            country: billing.country_code.text(),
        },
        group: group_title(group),
        // true or null: may be emailed; only false and true are statements.
        marketing: customer.accept_marketing,
        created_at: ecom_time(customer.registered.as_str(), "registered")?,
        changed_at: ecom_time(customer.updated.as_str(), "updated")?,
    })
}

/// Whether an eCom customer's own counters say they bought online.
pub fn ecom_has_orders(customer: &ecom_wire::Customer) -> bool {
    customer.total_order_count.unwrap_or(0) > 0
        || customer.stats.as_ref().and_then(|s| s.number_of_orders).unwrap_or(0) > 0
}

fn split_name(name: Option<Text>) -> (Option<Text>, Option<Text>) {
    match name {
        None => (None, None),
        Some(name) => match name.split_once(' ') {
            Some((first, last)) => (non_empty(first), non_empty(last)),
            None => (Some(name), None),
        },
    }
}

/// The merged view as a customer record: the group title, the preference
/// (`accepts_marketing_email`: eCom's null means they may be emailed) and
/// where the person is known, as properties every sink sends.
pub fn customer(source: &str, merged: &Merged) -> Customer {
    let mut properties = Properties::new();
    properties.insert("customer_group".into(), merged.group.clone().map_or(serde_json::Value::Null, |g| json!(g)));
    properties.insert("accepts_marketing_email".into(), json!(merged.marketing.unwrap_or(true)));
    properties.insert("known_in".into(), json!(merged.known.as_str()));
    let now = Timestamp::now();
    let changed = merged.changed_at.unwrap_or(now);
    Customer {
        identity: identity(crate::PLATFORM, source, &merged.external_id),
        change: ChangeKind::Updated,
        person: merged.person.clone(),
        accepts_marketing: merged.marketing,
        group: merged.group.clone(),
        created_at: merged.created_at.unwrap_or(changed),
        updated_at: changed,
        properties,
        consent_changed_at: merged.consent_changed_at,
        group_changed_at: merged.group_changed_at,
    }
}

/// What mapping a sale needs besides the sale.
pub struct SaleContext<'a> {
    pub source: &'a str,
    pub currency: &'a Currency,
    pub outlets: &'a HashMap<Text, OutletInfo>,
    pub products: &'a HashMap<Text, ProductInfo>,
    /// The buyer, when the sale names a customer.
    pub buyer: Option<Person>,
}

fn amount(
    text: &wire::LineItem,
    pick: fn(&wire::LineItem) -> [&tillflow_kit::source::Loose; 2],
    what: &str,
) -> Result<Decimal, String> {
    match first_text(&pick(text)) {
        Some(value) => decimal(&value, what),
        None => Ok(Decimal::ZERO),
    }
}

/// A sale → an order, a cancelled order (a void) or a refund (a return);
/// `None` for a return not yet closed, or voided.
pub fn sale(context: &SaleContext<'_>, sale: &wire::Sale) -> Result<Option<Record>, String> {
    let id = sale.id.id().ok_or("a sale without an id")?;
    let status = sale.status.as_str().trim().to_ascii_uppercase();
    let outlet = sale.outlet_id.id().and_then(|id| context.outlets.get(&id));
    let currency = outlet.and_then(|o| o.currency).unwrap_or(*context.currency);
    let money = |value: Decimal| Money::new(value, currency);
    let created_at =
        timestamp_with_offset(sale.created_at.as_str(), "created_at")?.ok_or("a sale without created_at")?;
    let updated_at = timestamp_with_offset(sale.updated_at.as_str(), "updated_at")?.unwrap_or(created_at);
    let sale_date = timestamp_with_offset(sale.sale_date.as_str(), "sale_date")?.unwrap_or(created_at);
    let total_price = decimal(sale.total_price.as_str(), "total_price")?;
    let total_tax = decimal(sale.total_tax.as_str(), "total_tax")?;
    let total = total_price + total_tax;
    let person =
        context.buyer.clone().unwrap_or_else(|| Person { customer_id: sale.customer_id.id(), ..Person::default() });
    let lines = sale
        .line_items
        .iter()
        .filter(|line| !line.status.as_str().eq_ignore_ascii_case("VOIDED"))
        .enumerate()
        .map(|(index, line)| {
            let product = line.product_id.id();
            let info = product.as_ref().and_then(|p| context.products.get(p));
            let quantity = decimal(line.quantity.as_str(), "line_items.quantity")?;
            let unit = amount(line, |l| [&l.unit_price, &l.price], "line_items.unit_price")?;
            let line_total = match first_text(&[&line.total_price, &line.price_total]) {
                Some(value) => decimal(&value, "line_items.total_price")?,
                None => unit * quantity,
            };
            Ok::<_, String>((index, line, product, info, quantity, unit, line_total))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if let Some(original) = sale.return_for.id() {
        if !CLOSED.contains(&status.as_str()) {
            return Ok(None);
        }
        return Ok(Some(Record::Refund(Refund {
            identity: identity(crate::PLATFORM, context.source, &id),
            order_id: original,
            person: person.into(),
            amount: money(total.abs()),
            reason: None,
            lines: lines
                .iter()
                .map(|(_, _, product, info, quantity, _, line_total)| RefundLine {
                    order_line_id: None,
                    product_id: product.clone(),
                    name: info.map(|i| i.name.clone()),
                    quantity: quantity.abs(),
                    amount: money(line_total.abs()),
                    categories: Vec::new(),
                })
                .collect(),
            created_at: sale_date,
        })));
    }
    let order_status = if CLOSED.contains(&status.as_str()) {
        OrderStatus::Completed
    } else if status == "VOIDED" {
        OrderStatus::Cancelled
    } else {
        OrderStatus::Pending
    };
    let discount: Decimal = sale
        .line_items
        .iter()
        .map(|line| amount(line, |l| [&l.discount_total, &l.total_discount], "line_items.discount_total"))
        .collect::<Result<Vec<_>, String>>()?
        .into_iter()
        .sum();
    let order_lines = lines
        .into_iter()
        .map(|(index, line, product, info, quantity, unit, line_total)| OrderLine {
            line_id: line.id.id().unwrap_or_else(|| Text::unsigned(index as u64)),
            product_id: product.clone(),
            variant_id: None,
            sku: info.and_then(|i| i.sku.clone()),
            name: info.map(|i| i.name.clone()).or(product).unwrap_or_else(|| "Item".into()),
            quantity,
            unit_price: money(unit),
            total: money(line_total),
            categories: Vec::new(),
            coupon: false,
            properties: Properties::new(),
        })
        .collect();
    let mut properties = Properties::new();
    if let Some(zone) = outlet.and_then(|o| o.time_zone.clone()) {
        properties.insert("outlet_time_zone".into(), json!(zone));
    }
    let closed = order_status == OrderStatus::Completed;
    Ok(Some(Record::Order(Order {
        identity: identity(crate::PLATFORM, context.source, &id),
        change: ChangeKind::Updated,
        number: sale.invoice_number.text(),
        person: person.into(),
        status: order_status.clone(),
        channel: if sale.source.as_str().eq_ignore_ascii_case("ECOMMERCE") {
            Channel::Online
        } else {
            Channel::InStore
        },
        location: sale.outlet_id.id().map(|id| Location { name: outlet.and_then(|o| o.name.clone()), id }),
        register_id: sale.register_id.id(),
        lines: order_lines,
        discounts: Vec::new(),
        totals: OrderTotals {
            subtotal: money(total_price),
            discount: money(discount),
            shipping: money(Decimal::ZERO),
            tax: money(total_tax),
            total: money(total),
        },
        payment_method: sale.payments.iter().find_map(|p| p.name.text()),
        refunded: None,
        created_at,
        placed_at: sale_date,
        updated_at,
        completed_at: closed.then_some(sale_date),
        cancelled_at: (order_status == OrderStatus::Cancelled).then_some(updated_at),
        excluded: None,
        properties,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecom_times_read_in_every_documented_form() {
        let expected = "2024-06-04T21:15:10Z";
        assert_eq!(ecom_time("2024-06-04 21:15:10 +0000", "t").unwrap().unwrap().to_string(), expected);
        assert_eq!(ecom_time("2024-06-04 23:15:10 +0200", "t").unwrap().unwrap().to_string(), expected);
        assert_eq!(ecom_time("1717535710", "t").unwrap().unwrap().to_string(), expected);
        assert!(ecom_time("June 4th", "t").is_err());
    }
}
