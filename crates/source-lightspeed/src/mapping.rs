//! Lightspeed sales → canonical records.
//!
//! A completed, non-voided sale is an order; a voided one cancels it; a sale
//! whose lines have negative quantities pointing at `parentSaleLineID`s is a
//! refund of the sale those lines came from; a `ShipTo` marked shipped on a
//! sale tied to a customer is a shipment. Open sales are not orders yet.

use crate::wire;
use jiff::Timestamp;
use std::collections::HashMap;
use tillflow_core::model::{
    Address, ChangeKind, Channel, Currency, Customer, Discount, Location, Money, Order, OrderLine, OrderStatus,
    OrderTotals, Person, Record, Refund, RefundLine, Shipment, SourceIdentity, Text,
};
use tillflow_kit::source::Loose;
use tillflow_kit::source::mapping::{decimal, timestamp_with_offset};

/// Names the mapping looks up: categories by id, shops by id.
#[derive(Debug, Default, Clone)]
pub struct Lookups {
    pub categories: HashMap<Text, Text>,
    pub shops: HashMap<Text, Text>,
}

/// What a sale turned into.
pub enum Mapped {
    Records(Vec<Record>),
    /// A refund whose original sale is not known yet: the source resolves
    /// these parent sale line ids to a sale id, then calls [`refund`].
    NeedsParent(Vec<Text>),
    /// An open (not completed) sale: nothing to send yet.
    Open,
}

fn identity(source: &str, id: impl std::fmt::Display) -> SourceIdentity {
    tillflow_kit::source::mapping::identity(crate::PLATFORM, source, id)
}

/// A timestamp field (with its offset); `None` when empty.
pub fn timestamp(value: &Loose, key: &str) -> Result<Option<Timestamp>, String> {
    timestamp_with_offset(value.as_str(), key)
}

fn amount(value: &Loose, key: &str, context: &str) -> Result<rust_decimal::Decimal, String> {
    decimal(value.as_str(), format_args!("{context} {key}"))
}

/// A customer with its `Contact`: primary email, phones, address, company, title.
pub fn person(customer: Option<&wire::Customer>) -> Person {
    let Some(customer) = customer else { return Person::default() };
    let contact = customer.contact.as_ref();
    let email = contact.and_then(|contact| {
        let emails = &contact.emails;
        emails.iter().find(|e| e.use_type.as_str() == "Primary").or(emails.first()).and_then(|e| e.address.text())
    });
    let phone = contact.and_then(|contact| {
        let phones = &contact.phones;
        ["Mobile", "Home", "Work"]
            .iter()
            .find_map(|kind| phones.iter().find(|p| p.use_type.as_str() == *kind))
            .or(phones.first())
            .and_then(|p| p.number.text())
    });
    let address = contact.and_then(|c| c.addresses.first()).map(|a| Address {
        line1: a.address1.text(),
        line2: a.address2.text(),
        city: a.city.text(),
        region: a.state_code.text().or_else(|| a.state.text()),
        postcode: a.zip.text(),
        country: a.country_code.text().or_else(|| a.country.text()),
    });
    Person {
        customer_id: customer.customer_id.id(),
        email,
        first_name: customer.first_name.text(),
        last_name: customer.last_name.text(),
        phone,
        company: customer.company.text(),
        title: customer.title.text(),
        address: address.unwrap_or_default(),
    }
}

pub fn customer(source: &str, raw: &wire::Customer) -> Result<Customer, String> {
    let customer_id = raw.customer_id.id().ok_or("customer without customerID")?;
    let created_at = timestamp(&raw.create_time, "createTime")?
        .ok_or_else(|| format!("customer {customer_id}: createTime is missing"))?;
    let updated_at = timestamp(&raw.time_stamp, "timeStamp")?.unwrap_or(created_at);
    Ok(Customer {
        identity: identity(source, &customer_id),
        change: if raw.archived.is_true() {
            ChangeKind::Deleted
        } else if updated_at == created_at {
            ChangeKind::Created
        } else {
            ChangeKind::Updated
        },
        person: person(Some(raw)),
        accepts_marketing: raw.contact.as_ref().map(|c| !c.no_email.is_true()),
        group: raw.customer_type.as_ref().and_then(|t| t.name.text()),
        created_at,
        updated_at,
        properties: Default::default(),
        consent_changed_at: None,
        group_changed_at: None,
    })
}

fn line_name(line: &wire::SaleLine) -> Text {
    line.item
        .as_ref()
        .and_then(|item| item.description.text())
        .or_else(|| line.item_id.id().map(|item| Text::display(format_args!("Item {item}"))))
        .unwrap_or_else(|| Text::new("Miscellaneous"))
}

fn line_categories(line: &wire::SaleLine, lookups: &Lookups) -> Vec<Text> {
    line.item
        .as_ref()
        .and_then(|item| item.category_id.id())
        .and_then(|category| lookups.categories.get(&category).cloned())
        .into_iter()
        .collect()
}

/// Parent sale line ids when the sale is a refund (negative quantities
/// pointing at the lines they give back).
pub fn refund_parents(sale: &wire::Sale) -> Vec<Text> {
    sale.lines
        .iter()
        .filter(|line| line.unit_quantity.as_str().trim_start().starts_with('-'))
        .filter_map(|line| line.parent_sale_line_id.id())
        .collect()
}

pub fn sale(source: &str, sale: &wire::Sale, lookups: &Lookups, currency: &Currency) -> Result<Mapped, String> {
    let sale_id = sale.sale_id.id().ok_or("sale without saleID")?;
    let voided = sale.voided.is_true();
    if !sale.completed.is_true() && !voided {
        return Ok(Mapped::Open);
    }
    let parents = refund_parents(sale);
    if !parents.is_empty() && !voided {
        return Ok(Mapped::NeedsParent(parents));
    }
    let context = format!("sale {sale_id}");
    let money = |value: &Loose, key: &str| amount(value, key, &context).map(|a| Money::new(a, *currency));
    let created_at =
        timestamp(&sale.create_time, "createTime")?.ok_or_else(|| format!("{context}: createTime is missing"))?;
    let updated_at = timestamp(&sale.time_stamp, "timeStamp")?.unwrap_or(created_at);
    let completed_at = timestamp(&sale.complete_time, "completeTime")?;
    // A sale is placed when it is completed at the till; a parked sale or a
    // layaway is created days or weeks earlier.
    let placed_at = completed_at.unwrap_or(created_at);
    let mut lines = Vec::new();
    let mut discounts = Vec::new();
    for line in sale.lines.iter() {
        let line_id = line.sale_line_id.id().ok_or_else(|| format!("{context}: a line has no saleLineID"))?;
        let quantity = amount(&line.unit_quantity, "unitQuantity", &context)?;
        let line_discount = amount(&line.calc_line_discount, "calcLineDiscount", &context)?;
        let total = amount(&line.calc_subtotal, "calcSubtotal", &context)? - line_discount;
        lines.push(OrderLine {
            line_id,
            product_id: line.item_id.id(),
            variant_id: None,
            sku: line.item.as_ref().and_then(|item| item.custom_sku.text().or_else(|| item.system_sku.text())),
            name: line_name(line),
            quantity,
            unit_price: money(&line.unit_price, "unitPrice")?,
            total: Money::new(total, *currency),
            categories: line_categories(line, lookups),
            coupon: false,
            properties: Default::default(),
        });
        if let Some(discount) = line.discount.as_ref()
            && !line_discount.is_zero()
        {
            discounts.push(Discount {
                code: discount.name.text(),
                name: discount.name.text(),
                amount: Money::new(line_discount, *currency),
            });
        }
    }
    if let Some(discount) = sale.discount.as_ref() {
        discounts.push(Discount {
            code: discount.name.text(),
            name: discount.name.text(),
            amount: money(&sale.calc_discount, "calcDiscount")?,
        });
    }
    let tax = amount(&sale.calc_tax1, "calcTax1", &context)? + amount(&sale.calc_tax2, "calcTax2", &context)?;
    let person = person(sale.customer.as_ref());
    let shop_id = sale.shop_id.id();
    let shop_name = sale
        .shop
        .as_ref()
        .and_then(|shop| shop.name.text())
        .or_else(|| shop_id.as_ref().and_then(|id| lookups.shops.get(id).cloned()));
    let order = Order {
        identity: identity(source, &sale_id),
        change: if updated_at == created_at { ChangeKind::Created } else { ChangeKind::Updated },
        number: sale.ticket_number.text(),
        person: Person { customer_id: person.customer_id.clone().or_else(|| sale.customer_id.id()), ..person }.into(),
        status: if voided { OrderStatus::Cancelled } else { OrderStatus::Completed },
        channel: Channel::InStore,
        location: shop_id.map(|id| Location { id, name: shop_name }),
        register_id: sale.register_id.id(),
        lines,
        discounts,
        totals: OrderTotals {
            subtotal: money(&sale.calc_subtotal, "calcSubtotal")?,
            discount: money(&sale.calc_discount, "calcDiscount")?,
            shipping: Money::zero(*currency),
            tax: Money::new(tax, *currency),
            total: money(&sale.calc_total, "calcTotal")?,
        },
        payment_method: sale
            .payments
            .first()
            .and_then(|payment| payment.payment_type.as_ref())
            .and_then(|kind| kind.name.text()),
        created_at,
        placed_at,
        updated_at,
        completed_at,
        refunded: None,
        excluded: None,
        properties: Default::default(),
        cancelled_at: voided.then_some(updated_at),
    };
    let mut records = Vec::new();
    if let Some(ship_to) = sale.ship_to.as_ref()
        && ship_to.shipped.is_true()
        && order.person.customer_id.is_some()
    {
        records.push(Record::Shipment(Shipment {
            identity: identity(source, ship_to.ship_to_id.id().unwrap_or_else(|| sale_id.clone())),
            order_id: sale_id.clone(),
            person: (*order.person).clone(),
            items: order.lines.iter().map(|l| l.name.clone()).collect(),
            categories: order.categories(),
            discount_codes: order.discount_codes(),
            total_discounts: Some(order.totals.discount.clone()),
            carrier: None,
            tracking_number: None,
            shipped_at: timestamp(&ship_to.time_stamp, "ShipTo timeStamp")?.unwrap_or(updated_at),
        }));
    }
    records.insert(0, Record::Order(order));
    Ok(Mapped::Records(records))
}

/// A refund sale as a refund of `original_sale_id`.
pub fn refund(
    source: &str,
    sale: &wire::Sale,
    original_sale_id: &str,
    lookups: &Lookups,
    currency: &Currency,
) -> Result<Refund, String> {
    let sale_id = sale.sale_id.id().ok_or("sale without saleID")?;
    let context = format!("refund sale {sale_id}");
    let created_at = timestamp(&sale.complete_time, "completeTime")?
        .or(timestamp(&sale.create_time, "createTime")?)
        .ok_or_else(|| format!("{context}: no completeTime or createTime"))?;
    let lines = sale
        .lines
        .iter()
        .map(|line| {
            Ok(RefundLine {
                order_line_id: line.parent_sale_line_id.id(),
                product_id: line.item_id.id(),
                name: Some(line_name(line)),
                quantity: amount(&line.unit_quantity, "unitQuantity", &context)?.abs(),
                amount: Money::new(amount(&line.calc_total, "calcTotal", &context)?.abs(), *currency),
                categories: line_categories(line, lookups),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut person = person(sale.customer.as_ref());
    person.customer_id = person.customer_id.or_else(|| sale.customer_id.id());
    Ok(Refund {
        identity: identity(source, &sale_id),
        order_id: original_sale_id.into(),
        person: person.into(),
        amount: Money::new(amount(&sale.calc_total, "calcTotal", &context)?.abs(), *currency),
        reason: None,
        lines,
        created_at,
    })
}
