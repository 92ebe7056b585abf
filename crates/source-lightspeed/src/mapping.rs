//! Lightspeed sales → canonical records.
//!
//! A completed, non-voided sale is an order; a voided one cancels it; a sale
//! whose lines have negative quantities pointing at `parentSaleLineID`s is a
//! refund of the sale those lines came from; a `ShipTo` marked shipped on a
//! sale tied to a customer is a shipment. Open sales are not orders yet.

use crate::json::{flag, id, many, text};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::HashMap;
use tillflow_core::model::{
    Address, ChangeKind, Channel, Currency, Customer, Discount, Location, Money, Order, OrderLine, OrderStatus,
    OrderTotals, Person, Record, Refund, RefundLine, Shipment, SourceIdentity, parse_decimal,
};

/// Names the mapping looks up: categories by id, shops by id.
#[derive(Debug, Default, Clone)]
pub struct Lookups {
    pub categories: HashMap<String, String>,
    pub shops: HashMap<String, String>,
}

/// What a sale turned into.
pub enum Mapped {
    Records(Vec<Record>),
    /// A refund whose original sale is not known yet: the source resolves
    /// these parent sale line ids to a sale id, then calls [`refund`].
    NeedsParent(Vec<String>),
    /// An open (not completed) sale: nothing to send yet.
    Open,
}

fn identity(source: &str, id: impl ToString) -> SourceIdentity {
    SourceIdentity { platform: crate::PLATFORM.into(), source: source.into(), id: id.to_string() }
}

pub fn timestamp(value: &Value, key: &str) -> Result<Option<Timestamp>, String> {
    let raw = text(value, key);
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<Timestamp>().map(Some).map_err(|_| format!("{key} `{raw}` is not a timestamp with an offset"))
}

fn decimal(value: &Value, key: &str, context: &str) -> Result<Decimal, String> {
    let raw = text(value, key);
    parse_decimal(&raw).ok_or_else(|| format!("{context} {key} `{raw}` is not a decimal number"))
}

fn non_empty(text: std::borrow::Cow<'_, str>) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A customer with its `Contact`: primary email, phones, address, company, title.
pub fn person(customer: Option<&Value>) -> Person {
    let Some(customer) = customer else { return Person::default() };
    let contact = customer.get("Contact").unwrap_or(&Value::Null);
    let emails = many(contact, "Emails", "ContactEmail");
    let email = emails
        .iter()
        .find(|e| text(e, "useType") == "Primary")
        .or(emails.first())
        .and_then(|e| non_empty(text(e, "address")));
    let phones = many(contact, "Phones", "ContactPhone");
    let phone = ["Mobile", "Home", "Work"]
        .iter()
        .find_map(|kind| phones.iter().find(|p| text(p, "useType") == *kind))
        .or(phones.first())
        .and_then(|p| non_empty(text(p, "number")));
    let address = many(contact, "Addresses", "ContactAddress").first().copied().map(|a| Address {
        line1: non_empty(text(a, "address1")),
        line2: non_empty(text(a, "address2")),
        city: non_empty(text(a, "city")),
        region: non_empty(text(a, "stateCode")).or_else(|| non_empty(text(a, "state"))),
        postcode: non_empty(text(a, "zip")),
        country: non_empty(text(a, "countryCode")).or_else(|| non_empty(text(a, "country"))),
    });
    Person {
        customer_id: id(customer, "customerID"),
        email,
        first_name: non_empty(text(customer, "firstName")),
        last_name: non_empty(text(customer, "lastName")),
        phone,
        company: non_empty(text(customer, "company")),
        title: non_empty(text(customer, "title")),
        address: address.unwrap_or_default(),
    }
}

pub fn customer(source: &str, raw: &Value) -> Result<Customer, String> {
    let customer_id = id(raw, "customerID").ok_or("customer without customerID")?;
    let created_at =
        timestamp(raw, "createTime")?.ok_or_else(|| format!("customer {customer_id}: createTime is missing"))?;
    let updated_at = timestamp(raw, "timeStamp")?.unwrap_or(created_at);
    let group = raw.get("CustomerType").map(|t| text(t, "name").into_owned()).filter(|n| !n.is_empty());
    Ok(Customer {
        identity: identity(source, &customer_id),
        change: if flag(raw, "archived") {
            ChangeKind::Deleted
        } else if updated_at == created_at {
            ChangeKind::Created
        } else {
            ChangeKind::Updated
        },
        person: person(Some(raw)),
        accepts_marketing: raw.get("Contact").map(|c| !flag(c, "noEmail")),
        group,
        created_at,
        updated_at,
    })
}

fn line_name(line: &Value) -> String {
    line.get("Item")
        .and_then(|item| non_empty(text(item, "description")))
        .or_else(|| id(line, "itemID").map(|item| format!("Item {item}")))
        .unwrap_or_else(|| "Miscellaneous".to_owned())
}

fn line_categories(line: &Value, lookups: &Lookups) -> Vec<String> {
    line.get("Item")
        .and_then(|item| id(item, "categoryID"))
        .and_then(|category| lookups.categories.get(&category).cloned())
        .into_iter()
        .collect()
}

/// Parent sale line ids when the sale is a refund (negative quantities
/// pointing at the lines they give back).
pub fn refund_parents(sale: &Value) -> Vec<String> {
    many(sale, "SaleLines", "SaleLine")
        .into_iter()
        .filter(|line| text(line, "unitQuantity").starts_with('-'))
        .filter_map(|line| id(line, "parentSaleLineID"))
        .collect()
}

pub fn sale(source: &str, sale: &Value, lookups: &Lookups, currency: &Currency) -> Result<Mapped, String> {
    let sale_id = id(sale, "saleID").ok_or("sale without saleID")?;
    let voided = flag(sale, "voided");
    if !flag(sale, "completed") && !voided {
        return Ok(Mapped::Open);
    }
    let parents = refund_parents(sale);
    if !parents.is_empty() && !voided {
        return Ok(Mapped::NeedsParent(parents));
    }
    let context = format!("sale {sale_id}");
    let money =
        |value: &Value, key: &str| decimal(value, key, &context).map(|amount| Money::new(amount, currency.clone()));
    let created_at = timestamp(sale, "createTime")?.ok_or_else(|| format!("{context}: createTime is missing"))?;
    let updated_at = timestamp(sale, "timeStamp")?.unwrap_or(created_at);
    let completed_at = timestamp(sale, "completeTime")?;
    // A sale is placed when it is completed at the till; a parked sale or a
    // layaway is created days or weeks earlier.
    let placed_at = completed_at.unwrap_or(created_at);
    let mut lines = Vec::new();
    let mut discounts = Vec::new();
    for line in many(sale, "SaleLines", "SaleLine") {
        let line_id = id(line, "saleLineID").ok_or_else(|| format!("{context}: a line has no saleLineID"))?;
        let quantity = decimal(line, "unitQuantity", &context)?;
        let total = money(line, "calcSubtotal")?.amount - decimal(line, "calcLineDiscount", &context)?;
        lines.push(OrderLine {
            line_id,
            product_id: id(line, "itemID"),
            variant_id: None,
            sku: line
                .get("Item")
                .and_then(|item| non_empty(text(item, "customSku")).or_else(|| non_empty(text(item, "systemSku")))),
            name: line_name(line),
            quantity,
            unit_price: money(line, "unitPrice")?,
            total: Money::new(total, currency.clone()),
            categories: line_categories(line, lookups),
        });
        if let Some(discount) = line.get("Discount").filter(|d| d.is_object()) {
            let amount = decimal(line, "calcLineDiscount", &context)?;
            if !amount.is_zero() {
                discounts.push(Discount {
                    code: non_empty(text(discount, "name")),
                    name: non_empty(text(discount, "name")),
                    amount: Money::new(amount, currency.clone()),
                });
            }
        }
    }
    if let Some(discount) = sale.get("Discount").filter(|d| d.is_object()) {
        let amount = decimal(sale, "calcDiscount", &context)?;
        discounts.push(Discount {
            code: non_empty(text(discount, "name")),
            name: non_empty(text(discount, "name")),
            amount: Money::new(amount, currency.clone()),
        });
    }
    let tax = decimal(sale, "calcTax1", &context)? + decimal(sale, "calcTax2", &context)?;
    let person = person(sale.get("Customer").filter(|c| c.is_object()));
    let shop_id = id(sale, "shopID");
    let shop_name = sale
        .get("Shop")
        .and_then(|shop| non_empty(text(shop, "name")))
        .or_else(|| shop_id.as_ref().and_then(|id| lookups.shops.get(id).cloned()));
    let order = Order {
        identity: identity(source, &sale_id),
        change: if updated_at == created_at { ChangeKind::Created } else { ChangeKind::Updated },
        number: non_empty(text(sale, "ticketNumber")),
        person: Person { customer_id: person.customer_id.clone().or_else(|| id(sale, "customerID")), ..person },
        status: if voided { OrderStatus::Cancelled } else { OrderStatus::Completed },
        channel: Channel::InStore,
        location: shop_id.map(|id| Location { id, name: shop_name }),
        register_id: id(sale, "registerID"),
        lines,
        discounts,
        totals: OrderTotals {
            subtotal: money(sale, "calcSubtotal")?,
            discount: money(sale, "calcDiscount")?,
            shipping: Money::zero(currency.clone()),
            tax: Money::new(tax, currency.clone()),
            total: money(sale, "calcTotal")?,
        },
        payment_method: many(sale, "SalePayments", "SalePayment")
            .first()
            .and_then(|payment| payment.get("PaymentType").and_then(|t| non_empty(text(t, "name")))),
        created_at,
        placed_at,
        updated_at,
        completed_at,
        cancelled_at: voided.then_some(updated_at),
    };
    let mut records = Vec::new();
    if let Some(ship_to) = sale.get("ShipTo").filter(|s| s.is_object())
        && flag(ship_to, "shipped")
        && order.person.customer_id.is_some()
    {
        records.push(Record::Shipment(Shipment {
            identity: identity(source, id(ship_to, "shipToID").unwrap_or_else(|| sale_id.clone())),
            order_id: sale_id.clone(),
            person: order.person.clone(),
            items: order.lines.iter().map(|l| l.name.clone()).collect(),
            categories: order.categories(),
            discount_codes: order.discount_codes(),
            total_discounts: Some(order.totals.discount.clone()),
            carrier: None,
            tracking_number: None,
            shipped_at: timestamp(ship_to, "timeStamp")?.unwrap_or(updated_at),
        }));
    }
    records.insert(0, Record::Order(order));
    Ok(Mapped::Records(records))
}

/// A refund sale as a refund of `original_sale_id`.
pub fn refund(
    source: &str,
    sale: &Value,
    original_sale_id: &str,
    lookups: &Lookups,
    currency: &Currency,
) -> Result<Refund, String> {
    let sale_id = id(sale, "saleID").ok_or("sale without saleID")?;
    let context = format!("refund sale {sale_id}");
    let created_at = timestamp(sale, "completeTime")?
        .or(timestamp(sale, "createTime")?)
        .ok_or_else(|| format!("{context}: no completeTime or createTime"))?;
    let lines = many(sale, "SaleLines", "SaleLine")
        .into_iter()
        .map(|line| {
            Ok(RefundLine {
                order_line_id: id(line, "parentSaleLineID"),
                product_id: id(line, "itemID"),
                name: Some(line_name(line)),
                quantity: decimal(line, "unitQuantity", &context)?.abs(),
                amount: Money::new(decimal(line, "calcTotal", &context)?.abs(), currency.clone()),
                categories: line_categories(line, lookups),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut person = person(sale.get("Customer").filter(|c| c.is_object()));
    person.customer_id = person.customer_id.or_else(|| id(sale, "customerID"));
    Ok(Refund {
        identity: identity(source, &sale_id),
        order_id: original_sale_id.to_owned(),
        person,
        amount: Money::new(decimal(sale, "calcTotal", &context)?.abs(), currency.clone()),
        reason: None,
        lines,
        created_at,
    })
}
