//! Dutchie records → canonical records, with the properties Klaviyo's own
//! Dutchie integration shows, by its names: the profile's `Dutchie …`
//! fields, `Placed Order`'s `OrderId`/`items`/`transactionType`/
//! `locationName`, `Ordered Product`'s line fields. Ids are unique only
//! within a location, so every record id carries the location's; a person
//! is the same person at every location of the parent (matched by email).
//! Times without an offset are UTC, as Dutchie documents.

use crate::wire;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::HashMap;
use tillflow_core::model::{
    Address, ChangeKind, Channel, Currency, Customer, Location, Money, Order, OrderLine, OrderStatus, OrderTotals,
    Person, Product, Properties, Record, Refund, RefundLine, Text,
};
use tillflow_kit::source::Loose;
use tillflow_kit::source::mapping::{decimal, timestamp_in_zone};

/// A child location as its key's `/whoami` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationInfo {
    pub id: Text,
    pub name: Text,
}

/// What an order line shows of its product.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProductInfo {
    pub name: Option<Text>,
    pub brand: Option<Text>,
    pub category: Option<Text>,
    pub strain: Option<Text>,
    pub strain_type: Option<Text>,
    pub image_url: Option<Text>,
}

/// A buyer as the customer cache keeps them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buyer {
    pub person: Person,
    pub anonymous: bool,
}

/// A Dutchie time: with its offset when it has one, else UTC.
pub fn timestamp(value: &Loose, what: &str) -> Result<Option<Timestamp>, String> {
    timestamp_in_zone(value.as_str(), &TimeZone::UTC, what)
}

/// A scalar as JSON: a number, a boolean, or text; `None` when empty.
pub fn loose_json(value: &Loose) -> Option<Value> {
    let text = value.as_str().trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(flag) = text.parse::<bool>() {
        return Some(json!(flag));
    }
    if let Ok(number) = text.parse::<i64>() {
        return Some(json!(number));
    }
    if let Ok(number) = text.parse::<Decimal>() {
        return Some(tillflow_core::model::json_number(number));
    }
    Some(json!(text))
}

fn id(value: &Loose) -> Option<Text> {
    value.id()
}

/// A US phone as E.164 (`+1` and ten digits); one already in E.164 kept;
/// anything else left out.
pub fn phone_e164(text: &str) -> Option<Text> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if text.trim_start().starts_with('+') {
        return (8..=15).contains(&digits.len()).then(|| Text::display(format_args!("+{digits}")));
    }
    match digits.len() {
        10 => Some(Text::display(format_args!("+1{digits}"))),
        11 if digits.starts_with('1') => Some(Text::display(format_args!("+{digits}"))),
        _ => None,
    }
}

fn identity(source: &str, id: impl std::fmt::Display) -> tillflow_core::model::SourceIdentity {
    tillflow_kit::source::mapping::identity(crate::PLATFORM, source, id)
}

/// The record id of `id` at `location` (ids are unique only within one).
pub fn local_id(location: &LocationInfo, id: &str) -> Text {
    Text::display(format_args!("{}-{id}", location.id))
}

/// A customer (`None` for an anonymous one): the person by email, and the
/// profile properties Klaviyo's integration shows.
pub fn customer(source: &str, location: &LocationInfo, wire: &wire::Customer) -> Result<Option<Customer>, String> {
    let customer_id = id(&wire.customer_id).ok_or("a customer without customerId")?;
    if wire.is_anonymous.is_true() {
        return Ok(None);
    }
    let what = |field: &str| format!("customer {customer_id} {field}");
    let modified = timestamp(&wire.last_modified, &what("lastModifiedDateUTC"))?;
    let created = timestamp(&wire.creation_date, &what("creationDate"))?;
    let updated_at = modified.or(created).ok_or_else(|| what("has neither lastModifiedDateUTC nor creationDate"))?;
    let mut properties = Properties::new();
    for (name, value) in [
        ("dateOfBirth", &wire.date_of_birth),
        ("Dutchie customerId", &wire.customer_id),
        ("Dutchie customerType", &wire.customer_type),
        ("Dutchie isLoyaltyMember", &wire.is_loyalty_member),
        ("Dutchie status", &wire.status),
        ("Dutchie createdAtLocation", &wire.created_at_location),
        ("Dutchie creationDate", &wire.creation_date),
        ("Dutchie lastModifiedDateUTC", &wire.last_modified),
    ] {
        if let Some(value) = loose_json(value) {
            properties.insert(name.to_owned(), value);
        }
    }
    Ok(Some(Customer {
        identity: identity(source, local_id(location, &customer_id)),
        change: if modified.is_some() && modified != created { ChangeKind::Updated } else { ChangeKind::Created },
        person: person(wire),
        accepts_marketing: None,
        group: wire.customer_type.text(),
        created_at: created.unwrap_or(updated_at),
        updated_at,
        properties,
        consent_changed_at: None,
        group_changed_at: None,
    }))
}

/// The person: matched by email across the parent's locations, so no
/// per-location customer id goes with it.
pub fn person(wire: &wire::Customer) -> Person {
    let phone = wire.cell_phone.text().or_else(|| wire.phone.text()).and_then(|p| phone_e164(&p));
    Person {
        customer_id: None,
        email: wire.email.text().map(|e| Text::from(e.to_lowercase())),
        first_name: wire.first_name.text(),
        last_name: wire.last_name.text(),
        phone,
        company: None,
        title: None,
        address: Address {
            line1: wire.address1.text(),
            line2: wire.address2.text(),
            city: wire.city.text(),
            region: wire.state.text(),
            postcode: wire.postal_code.text(),
            country: Some("US".into()),
        },
    }
}

pub fn product_info(wire: &wire::Product) -> ProductInfo {
    ProductInfo {
        name: wire.product_name.text().or_else(|| wire.internal_name.text()),
        brand: wire.brand_name.text(),
        category: wire.category.text().or_else(|| wire.master_category.text()),
        strain: wire.strain.text(),
        strain_type: wire.strain_type.text(),
        image_url: wire.image_url.text(),
    }
}

/// A product of the parent's catalog (ids are the parent's).
pub fn product(source: &str, wire: &wire::Product, currency: &Currency) -> Result<Product, String> {
    let product_id = id(&wire.product_id).ok_or("a product without productId")?;
    let what = |field: &str| format!("product {product_id} {field}");
    let updated_at = timestamp(&wire.last_modified, &what("lastModifiedDateUTC"))?.unwrap_or(Timestamp::UNIX_EPOCH);
    let price_text = wire.rec_price.text().or_else(|| wire.price.text());
    let price = match price_text {
        Some(text) => Some(Money::new(decimal(&text, format_args!("product {product_id} price"))?, *currency)),
        None => None,
    };
    let info = product_info(wire);
    let mut properties = Properties::new();
    for (name, value) in
        [("strain", &info.strain), ("strainType", &info.strain_type), ("vendor", &wire.vendor_name.text())]
    {
        if let Some(value) = value {
            properties.insert(name.to_owned(), json!(value));
        }
    }
    Ok(Product {
        identity: identity(source, product_id.clone()),
        change: ChangeKind::Updated,
        sku: wire.sku.text(),
        name: wire
            .online_title
            .text()
            .or(info.name.clone())
            .unwrap_or_else(|| Text::display(format_args!("Product {product_id}"))),
        description: wire.online_description.text().or_else(|| wire.description.text()),
        price,
        categories: info.category.clone().into_iter().collect(),
        brand: info.brand.clone(),
        image_url: info.image_url.clone(),
        active: !wire.is_active.as_str().eq_ignore_ascii_case("false") && !wire.is_test_product.is_true(),
        updated_at,
        properties,
    })
}

/// The transaction as the context knows it.
pub struct TransactionContext<'a> {
    pub source: &'a str,
    pub location: &'a LocationInfo,
    pub buyer: Option<&'a Buyer>,
    pub products: &'a HashMap<Text, ProductInfo>,
    pub transaction_types: &'a [String],
    pub currency: &'a Currency,
}

/// The `Ordered Product` properties Klaviyo's Dutchie integration lists,
/// read from the item as Dutchie names them (lower-cased).
const ITEM_PROPERTIES: [&str; 16] = [
    "unitCost",
    "packageId",
    "sourcePackageId",
    "unitId",
    "unitWeight",
    "unitWeightUnit",
    "flowerEquivalent",
    "flowerEquivalentUnit",
    "discounts",
    "taxes",
    "returnDate",
    "isReturned",
    "returnedByTransactionId",
    "batchName",
    "vendor",
    "transactionId",
];

fn put(properties: &mut Properties, name: &str, value: Option<Value>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        properties.insert(name.to_owned(), value);
    }
}

/// What a transaction becomes: an order (sold or voided), or a refund of
/// the original order (a return).
pub fn transaction(context: &TransactionContext<'_>, wire: &wire::Transaction) -> Result<Record, String> {
    let transaction_id = id(&wire.transaction_id).ok_or("a transaction without transactionId")?;
    let what = |field: &str| format!("transaction {transaction_id} {field}");
    let currency = context.currency;
    let money = |value: &Loose, field: &str| {
        decimal(value.as_str(), format_args!("transaction {transaction_id} {field}")).map(|d| Money::new(d, *currency))
    };
    let placed_at =
        timestamp(&wire.transaction_date, &what("transactionDate"))?.ok_or_else(|| what("has no transactionDate"))?;
    let updated_at = timestamp(&wire.last_modified, &what("lastModifiedDateUTC"))?.unwrap_or(placed_at);
    let person = context.buyer.map(|b| b.person.clone()).unwrap_or_default();
    let location_name = json!(context.location.name);
    let mut lines = Vec::with_capacity(wire.items.len());
    let mut items_summary = Vec::new();
    for item in &wire.items {
        let line_id = id(&item.transaction_item_id).ok_or_else(|| what("has an item without transactionItemId"))?;
        let product_id = id(&item.product_id);
        let info = product_id.as_ref().and_then(|p| context.products.get(p)).cloned().unwrap_or_default();
        let quantity = decimal(item.quantity.as_str(), format_args!("transaction {transaction_id} item quantity"))?;
        let unit_price = money(&item.unit_price, "item unitPrice")?;
        let total_price = money(&item.total_price, "item totalPrice")?;
        let line_discount =
            decimal(item.total_discount.as_str(), format_args!("transaction {transaction_id} item totalDiscount"))?;
        let name = info
            .name
            .clone()
            .unwrap_or_else(|| Text::display(format_args!("Product {}", product_id.as_deref().unwrap_or("?"))));
        let coupon = item.is_coupon.is_true();
        let mut properties = Properties::new();
        put(&mut properties, "strain", info.strain.as_ref().map(|v| json!(v)));
        put(&mut properties, "strainType", info.strain_type.as_ref().map(|v| json!(v)));
        put(&mut properties, "brandName", info.brand.as_ref().map(|v| json!(v)));
        put(&mut properties, "productId", loose_json(&item.product_id));
        put(&mut properties, "totalPrice", loose_json(&item.total_price));
        put(&mut properties, "quantity", loose_json(&item.quantity));
        put(&mut properties, "unitPrice", loose_json(&item.unit_price));
        put(&mut properties, "transactionItemId", loose_json(&item.transaction_item_id));
        put(&mut properties, "isCoupon", Some(json!(coupon)));
        for name in ITEM_PROPERTIES {
            put(&mut properties, name, item.fields.get(&name.to_lowercase()).cloned());
        }
        put(&mut properties, "returnReason", loose_json(&item.return_reason));
        put(&mut properties, "totalDiscount", loose_json(&item.total_discount));
        properties.entry("transactionId".to_owned()).or_insert_with(|| json!(transaction_id.parse::<i64>().ok()));
        put(&mut properties, "locationName", Some(location_name.clone()));
        put(&mut properties, "customerId", loose_json(&wire.customer_id));
        put(&mut properties, "transactionDate", loose_json(&wire.transaction_date));
        put(&mut properties, "productName", info.name.as_ref().map(|v| json!(v)));
        put(&mut properties, "category", info.category.as_ref().map(|v| json!(v)));
        put(&mut properties, "imageUrl", info.image_url.as_ref().map(|v| json!(v)));
        if !coupon {
            items_summary.push(json!({
                "productId": loose_json(&item.product_id),
                "productName": info.name,
                "brandName": info.brand,
                "category": info.category,
                "quantity": loose_json(&item.quantity),
                "unitPrice": loose_json(&item.unit_price),
                "totalPrice": loose_json(&item.total_price),
            }));
        }
        lines.push(OrderLine {
            line_id,
            product_id,
            variant_id: None,
            sku: None,
            name,
            quantity,
            unit_price,
            total: Money::new((total_price.amount - line_discount).max(Decimal::ZERO), *currency),
            categories: info.category.into_iter().collect(),
            coupon,
            properties,
        });
    }
    if wire.is_return.is_true() {
        let original =
            id(&wire.return_on_transaction_id).ok_or_else(|| what("is a return without returnOnTransactionId"))?;
        let amount = money(&wire.total, "total")?;
        return Ok(Record::Refund(Refund {
            identity: identity(context.source, local_id(context.location, &transaction_id)),
            order_id: local_id(context.location, &original),
            person: person.into(),
            amount: Money::new(amount.amount.abs(), *currency),
            reason: wire.items.iter().find_map(|item| item.return_reason.text()),
            lines: lines
                .iter()
                .map(|line| RefundLine {
                    order_line_id: None,
                    product_id: line.product_id.clone(),
                    name: Some(line.name.clone()),
                    quantity: line.quantity.abs(),
                    amount: Money::new(line.total.amount.abs(), *currency),
                    categories: line.categories.clone(),
                })
                .collect(),
            created_at: placed_at,
        }));
    }
    let transaction_type = wire.transaction_type.text().unwrap_or_else(|| "Retail".into());
    let excluded = if !context.transaction_types.iter().any(|t| t.eq_ignore_ascii_case(&transaction_type)) {
        Some("transaction type not configured".to_owned())
    } else if context.buyer.is_none_or(|buyer| buyer.anonymous) {
        Some("anonymous customer".to_owned())
    } else {
        None
    };
    let voided = wire.is_void.is_true();
    let online = [&wire.order_source, &wire.order_type].iter().any(|field| {
        ["online", "ecom", "delivery", "pickup"].iter().any(|w| field.as_str().to_lowercase().contains(w))
    });
    let mut properties = Properties::new();
    put(&mut properties, "OrderId", loose_json(&wire.transaction_id));
    properties.insert("items".into(), Value::Array(items_summary));
    properties.insert("transactionType".into(), json!(transaction_type));
    properties.insert("locationName".into(), location_name);
    let total = money(&wire.total, "total")?;
    Ok(Record::Order(Order {
        identity: identity(context.source, local_id(context.location, &transaction_id)),
        change: if updated_at > placed_at { ChangeKind::Updated } else { ChangeKind::Created },
        number: Some(transaction_id.clone()),
        person: person.into(),
        status: if voided { OrderStatus::Cancelled } else { OrderStatus::Completed },
        channel: if online { Channel::Online } else { Channel::InStore },
        location: Some(Location { id: context.location.id.clone(), name: Some(context.location.name.clone()) }),
        register_id: wire.terminal_name.text(),
        lines,
        discounts: Vec::new(),
        totals: OrderTotals {
            subtotal: money(&wire.subtotal, "subtotal")?,
            discount: money(&wire.total_discount, "totalDiscount")?,
            shipping: Money::zero(*currency),
            tax: money(&wire.tax, "tax")?,
            total,
        },
        payment_method: None,
        refunded: None,
        created_at: placed_at,
        placed_at,
        updated_at,
        completed_at: (!voided).then_some(placed_at),
        cancelled_at: if voided {
            Some(timestamp(&wire.void_date, &what("voidDate"))?.unwrap_or(updated_at))
        } else {
            None
        },
        excluded,
        properties,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_phones_become_e164_and_others_are_left_out() {
        assert_eq!(phone_e164("(555) 010-2030").as_deref(), Some("+15550102030"));
        assert_eq!(phone_e164("1-555-010-2030").as_deref(), Some("+15550102030"));
        assert_eq!(phone_e164("+44 20 7946 0018").as_deref(), Some("+442079460018"));
        assert_eq!(phone_e164("010-2030"), None);
    }

    #[test]
    fn scalars_keep_their_json_kind() {
        assert_eq!(loose_json(&Loose("12".into())), Some(json!(12)));
        assert_eq!(loose_json(&Loose("19.999999".into())), Some(json!(19.999999)));
        assert_eq!(loose_json(&Loose("true".into())), Some(json!(true)));
        assert_eq!(loose_json(&Loose("Indica".into())), Some(json!("Indica")));
        assert_eq!(loose_json(&Loose::default()), None);
    }
}
