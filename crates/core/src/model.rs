//! The canonical model every source maps into and every sink maps out of.
//!
//! Money is a [`Money`] (decimal + ISO currency), never a float. Every time is a
//! [`jiff::Timestamp`], i.e. UTC; sources parse with the offset or the platform's
//! documented zone before a value reaches this model.

use crate::subject::email_subject;
pub use crate::text::Text;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What a platform's own integrations show of a record, under the names
/// they use (Dutchie's `Dutchie customerId`, `strain`, `locationName`…):
/// sinks that reproduce such an integration send them as they are. Never
/// medical or identity data: the source leaves those out.
pub type Properties = BTreeMap<String, serde_json::Value>;

/// An ISO 4217 currency code, upper case ("USD", "EUR"). Three bytes kept
/// inline and copied, not a `String`: every amount carries one, and an
/// allocation per amount (and one more each time an amount was serialized,
/// through `into = "String"`) was a tenth of a history import's allocations.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Accepts three ASCII letters in any case.
    pub fn new(code: &str) -> Result<Self, String> {
        let code = code.trim();
        match code.as_bytes() {
            &[a, b, c] if code.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase(), c.to_ascii_uppercase()]))
            }
            _ => Err(format!("`{code}` is not an ISO 4217 currency code")),
        }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("three ASCII letters")
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Its three letters as bytes where no one reads them (the content
        // hash, format 4, as `exact_forms` does for times and amounts):
        // every amount carries a currency, and `as_str`'s UTF-8 check of
        // its letters, again for each, was a seventh of encoding an amount.
        if serializer.is_human_readable() {
            serializer.serialize_str(self.as_str())
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::new(&value)
    }
}
impl From<Currency> for String {
    fn from(value: Currency) -> String {
        value.as_str().to_owned()
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform's decimal text ("12.50", " -3 ", "1e2"); empty means zero.
/// `None` when it is not a number.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Some(Decimal::ZERO);
    }
    trimmed.parse::<Decimal>().or_else(|_| Decimal::from_scientific(trimmed)).ok()
}

/// A decimal as a JSON number for a platform's wire format: an integer when it
/// has no fraction, else the nearest double. Amounts stay decimals until here.
pub fn json_number(value: Decimal) -> serde_json::Value {
    serde_json::to_value(JsonNumber(value)).expect("a number serializes")
}

/// [`json_number`] written straight into a serializer, for encoders that do
/// not build a `serde_json::Value` first; the same text either way.
#[derive(Clone, Copy, Debug)]
pub struct JsonNumber(pub Decimal);

impl Serialize for JsonNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use rust_decimal::prelude::ToPrimitive;
        // Money nearly always has a mantissa below 2^53 and a few decimals:
        // then the mantissa and 10^scale are exact doubles, one division is
        // the nearest double to the decimal, and the whole test is integer
        // arithmetic. The general way (a 96-bit normalize, division by ten
        // at a time, and a conversion through u128 division) was a fifth of
        // the CPU of writing a Customer.io batch.
        let (mantissa, scale) = (self.0.mantissa(), self.0.scale());
        if scale <= MAX_EXACT_SCALE
            && let Ok(mantissa) = i64::try_from(mantissa)
            && mantissa.unsigned_abs() < EXACT_INTEGERS
        {
            let power = 10_i64.pow(scale);
            if mantissa % power == 0 {
                return serializer.serialize_i64(mantissa / power);
            }
            return serializer.serialize_f64(mantissa as f64 / power as f64);
        }
        let normalized = self.0.normalize();
        if normalized.scale() == 0
            && let Some(integer) = normalized.to_i64()
        {
            return serializer.serialize_i64(integer);
        }
        // Read from the decimal's own digits: Rust's parse gives the nearest
        // double, where rust_decimal's `to_f64` can miss it by one.
        match normalized.to_string().parse::<f64>().ok().filter(|float| float.is_finite()) {
            Some(float) => serializer.serialize_f64(float),
            None => serializer.serialize_unit(),
        }
    }
}

/// Integers below this are exact doubles (2^53).
const EXACT_INTEGERS: u64 = 1 << 53;

/// The largest scale whose power of ten is an exact double and an `i64`.
const MAX_EXACT_SCALE: u32 = 18;

/// An amount of money: a decimal with its currency.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(serialize_with = "crate::exact_forms::decimal")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }
    pub fn zero(currency: Currency) -> Self {
        Self { amount: Decimal::ZERO, currency }
    }
    /// Parses a platform's money string ("12.50", " -3 ") into a decimal.
    pub fn parse(amount: &str, currency: &Currency) -> Result<Self, String> {
        let amount = parse_decimal(amount).ok_or_else(|| format!("`{amount}` is not a decimal amount"))?;
        Ok(Self { amount, currency: *currency })
    }
    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// Where a record came from: the platform, the configured source name, and the
/// platform's own id. Idempotency keys are built from it, so it must be stable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// Platform name as in config `type`, e.g. "woocommerce".
    pub platform: Text,
    /// The configured source name, e.g. "shop" in `[sources.shop]`.
    pub source: Text,
    /// The platform's id of the record.
    pub id: Text,
}

/// What happened to a record at its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// A postal address; every field optional because platforms differ.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Address {
    pub line1: Option<Text>,
    pub line2: Option<Text>,
    pub city: Option<Text>,
    pub region: Option<Text>,
    pub postcode: Option<Text>,
    /// ISO 3166-1 alpha-2 when the platform gives one.
    pub country: Option<Text>,
}

/// The person a record is about, as far as the source knows them. A guest order
/// has a `Person` with an email and no `customer_id`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Person {
    /// The platform's customer id, absent for guests.
    pub customer_id: Option<Text>,
    pub email: Option<Text>,
    pub first_name: Option<Text>,
    pub last_name: Option<Text>,
    pub phone: Option<Text>,
    pub company: Option<Text>,
    pub title: Option<Text>,
    pub address: Address,
}

impl Person {
    /// The domain of the email address, lower case, if there is a valid-looking one.
    pub fn email_domain(&self) -> Option<String> {
        let email = self.email.as_deref()?;
        let (_, domain) = email.rsplit_once('@')?;
        (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
    }
    pub fn has_email(&self) -> bool {
        self.email.as_deref().is_some_and(|e| e.contains('@'))
    }
    /// The person's identity across records of one source: the customer id
    /// when there is one, else (a guest) their email's subject, a hash, so
    /// the facts and totals kept under it never hold the address.
    pub fn key(&self) -> Option<String> {
        if let Some(id) = self.customer_id.as_deref().filter(|id| !id.is_empty()) {
            // Joined, not formatted: a key is made for every order read.
            return Some(["id:", id].concat());
        }
        self.email.as_deref().filter(|_| self.has_email()).map(email_subject)
    }
}

/// What one person bought from one source, as the state store sums it up.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PersonTotals {
    /// Orders that count (processing, on-hold, completed) minus their refunds.
    #[serde(serialize_with = "crate::exact_forms::decimal")]
    pub revenue: Decimal,
    pub currency: Option<Currency>,
    /// How many orders count.
    pub orders: u64,
    /// When the newest counted order was placed.
    #[serde(serialize_with = "crate::exact_forms::optional_timestamp")]
    pub last_order_at: Option<Timestamp>,
}

/// One order or refund as it contributes to its person's totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderFact {
    pub order_id: String,
    /// `order` for the order itself, `refund:<id>` for each refund.
    pub fact_id: String,
    /// [`Person::key`] of the buyer.
    pub person: String,
    /// For an order: whether it counts toward the totals.
    pub counted: bool,
    /// Order total, or refunded amount (positive).
    pub amount: Decimal,
    pub currency: Currency,
    pub at: Timestamp,
}

impl OrderFact {
    /// The fact a record contributes, if any.
    pub fn of(record: &Record) -> Option<Self> {
        match record {
            Record::Order(order) => Some(Self {
                order_id: order.identity.id.to_string(),
                fact_id: "order".into(),
                person: order.person.key()?,
                counted: order.status.counts_toward_revenue() && order.change != ChangeKind::Deleted,
                amount: order.totals.total.amount,
                currency: *order.currency(),
                at: order.placed_at,
            }),
            Record::Refund(refund) => Some(Self {
                order_id: refund.order_id.to_string(),
                fact_id: format!("refund:{}", refund.identity.id),
                person: refund.person.key()?,
                counted: false,
                amount: refund.amount.amount.abs(),
                currency: refund.amount.currency,
                at: refund.created_at,
            }),
            _ => None,
        }
    }
}

/// Sums facts into totals: counted orders, minus the refunds of counted orders.
pub fn sum_facts<'a>(facts: impl IntoIterator<Item = &'a OrderFact>) -> PersonTotals {
    let facts: Vec<&OrderFact> = facts.into_iter().collect();
    let counted: std::collections::HashSet<&str> =
        facts.iter().filter(|f| f.fact_id == "order" && f.counted).map(|f| f.order_id.as_str()).collect();
    let mut totals = PersonTotals { revenue: Decimal::ZERO, currency: None, orders: 0, last_order_at: None };
    for fact in &facts {
        if fact.fact_id == "order" && fact.counted {
            totals.revenue += fact.amount;
            totals.orders += 1;
            if totals.last_order_at.is_none_or(|last| fact.at > last) {
                totals.last_order_at = Some(fact.at);
                totals.currency = Some(fact.currency);
            }
        } else if fact.fact_id != "order" && counted.contains(fact.order_id.as_str()) {
            totals.revenue -= fact.amount;
        }
    }
    totals
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Customer {
    pub identity: SourceIdentity,
    pub change: ChangeKind,
    pub person: Person,
    pub accepts_marketing: Option<bool>,
    /// The customer group / customer type name, when the platform has one.
    pub group: Option<Text>,
    #[serde(serialize_with = "crate::exact_forms::timestamp")]
    pub created_at: Timestamp,
    #[serde(serialize_with = "crate::exact_forms::timestamp")]
    pub updated_at: Timestamp,
    #[serde(default)]
    pub properties: Properties,
    /// When `accepts_marketing` last changed at the source, for sources that
    /// know it: a sink syncing consent applies each change once, so an
    /// unchanged record never re-subscribes someone who left since.
    #[serde(default)]
    #[serde(serialize_with = "crate::exact_forms::optional_timestamp")]
    pub consent_changed_at: Option<Timestamp>,
    /// When `group` last changed at the source, for sources that know it
    /// (a sink keeping group lists moves the person once per change).
    #[serde(default)]
    #[serde(serialize_with = "crate::exact_forms::optional_timestamp")]
    pub group_changed_at: Option<Timestamp>,
}

/// An order's status, normalised across platforms. `Other` keeps what a platform
/// invented so nothing is lost.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Processing,
    OnHold,
    Completed,
    Cancelled,
    Refunded,
    Failed,
    Draft,
    Trash,
    Other(String),
}

impl OrderStatus {
    /// Statuses in which an order counts as placed: money was taken or promised.
    pub fn is_placed(&self) -> bool {
        matches!(self, Self::Processing | Self::OnHold | Self::Completed | Self::Refunded)
    }
    /// Statuses whose orders count toward a person's revenue and order count.
    pub fn counts_toward_revenue(&self) -> bool {
        matches!(self, Self::Processing | Self::OnHold | Self::Completed)
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::OnHold => "on-hold",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
            Self::Failed => "failed",
            Self::Draft => "draft",
            Self::Trash => "trash",
            Self::Other(other) => other,
        }
    }
}

/// Where the sale happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    InStore,
    Online,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InStore => "in_store",
            Self::Online => "online",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    pub id: Text,
    pub name: Option<Text>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderLine {
    /// The line's own id at the source (stable within the order).
    pub line_id: Text,
    pub product_id: Option<Text>,
    pub variant_id: Option<Text>,
    pub sku: Option<Text>,
    pub name: Text,
    #[serde(serialize_with = "crate::exact_forms::decimal")]
    pub quantity: rust_decimal::Decimal,
    pub unit_price: Money,
    /// Line total after line discounts.
    pub total: Money,
    pub categories: Vec<Text>,
    /// A coupon rung up as a line: no product was ordered.
    #[serde(default)]
    pub coupon: bool,
    #[serde(default)]
    pub properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Discount {
    /// The coupon / discount code, when the discount came from one.
    pub code: Option<Text>,
    pub name: Option<Text>,
    pub amount: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderTotals {
    pub subtotal: Money,
    pub discount: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    pub identity: SourceIdentity,
    pub change: ChangeKind,
    /// The number a customer sees, when it differs from the id.
    pub number: Option<Text>,
    /// Shared, not copied, by the order's refunds and its buyer's totals
    /// event: a person is a dozen strings.
    pub person: Arc<Person>,
    pub status: OrderStatus,
    pub channel: Channel,
    pub location: Option<Location>,
    pub register_id: Option<Text>,
    pub lines: Vec<OrderLine>,
    pub discounts: Vec<Discount>,
    pub totals: OrderTotals,
    pub payment_method: Option<Text>,
    /// What was refunded of it so far, when the order itself says
    /// (WooCommerce lists its refunds); `None` when the source does not.
    #[serde(default)]
    pub refunded: Option<Money>,
    /// When the order was opened at the source (a till sale parked or on
    /// layaway is opened long before it is rung up).
    #[serde(serialize_with = "crate::exact_forms::timestamp")]
    pub created_at: Timestamp,
    /// When the customer placed the order: checkout online, the sale completed
    /// at the till. `Placed Order` carries this time, and it decides whether
    /// the order is history or live.
    #[serde(serialize_with = "crate::exact_forms::timestamp")]
    pub placed_at: Timestamp,
    #[serde(serialize_with = "crate::exact_forms::timestamp")]
    pub updated_at: Timestamp,
    #[serde(serialize_with = "crate::exact_forms::optional_timestamp")]
    pub completed_at: Option<Timestamp>,
    #[serde(serialize_with = "crate::exact_forms::optional_timestamp")]
    pub cancelled_at: Option<Timestamp>,
    /// The source says this order is not to be sent, and why (a
    /// transaction type the operator did not choose, an anonymous buyer):
    /// its events are skipped and counted under this reason.
    #[serde(default)]
    pub excluded: Option<String>,
    #[serde(default)]
    pub properties: Properties,
}

impl Order {
    pub fn currency(&self) -> &Currency {
        &self.totals.total.currency
    }
    /// Discount codes in order of appearance, without repeats.
    pub fn discount_codes(&self) -> Vec<Text> {
        let mut codes: Vec<Text> = Vec::new();
        for code in self.discounts.iter().filter_map(|d| d.code.clone()) {
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        codes
    }
    /// Every category of every line, without repeats.
    pub fn categories(&self) -> Vec<Text> {
        let mut all: Vec<Text> = Vec::new();
        for category in self.lines.iter().flat_map(|l| l.categories.iter()) {
            if !all.contains(category) {
                all.push(category.clone());
            }
        }
        all
    }
    /// The total less what was refunded (never below zero).
    pub fn net_total(&self) -> Money {
        let refunded = self.refunded.as_ref().map_or(Decimal::ZERO, |r| r.amount.abs());
        Money::new((self.totals.total.amount - refunded).max(Decimal::ZERO), *self.currency())
    }
    pub fn item_count(&self) -> Decimal {
        self.lines.iter().map(|l| l.quantity).sum()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RefundLine {
    pub order_line_id: Option<Text>,
    pub product_id: Option<Text>,
    pub name: Option<Text>,
    #[serde(serialize_with = "crate::exact_forms::decimal")]
    pub quantity: Decimal,
    pub amount: Money,
    pub categories: Vec<Text>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Refund {
    pub identity: SourceIdentity,
    pub order_id: Text,
    pub person: Arc<Person>,
    pub amount: Money,
    pub reason: Option<Text>,
    pub lines: Vec<RefundLine>,
    #[serde(serialize_with = "crate::exact_forms::timestamp")]
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shipment {
    pub identity: SourceIdentity,
    pub order_id: Text,
    pub person: Person,
    /// Names of the items shipped.
    pub items: Vec<Text>,
    pub categories: Vec<Text>,
    pub discount_codes: Vec<Text>,
    pub total_discounts: Option<Money>,
    pub carrier: Option<Text>,
    pub tracking_number: Option<Text>,
    #[serde(serialize_with = "crate::exact_forms::timestamp")]
    pub shipped_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Product {
    pub identity: SourceIdentity,
    pub change: ChangeKind,
    pub sku: Option<Text>,
    pub name: Text,
    #[serde(default)]
    pub description: Option<Text>,
    pub price: Option<Money>,
    pub categories: Vec<Text>,
    #[serde(default)]
    pub brand: Option<Text>,
    #[serde(default)]
    pub image_url: Option<Text>,
    /// On sale (not archived, not a test product).
    #[serde(default = "active_by_default")]
    pub active: bool,
    #[serde(serialize_with = "crate::exact_forms::timestamp")]
    pub updated_at: Timestamp,
    #[serde(default)]
    pub properties: Properties,
}

fn active_by_default() -> bool {
    true
}

/// Anything a source yields.
// Orders dominate every stream, so boxing them would cost an allocation per
// record for nothing: the size difference is the common case, not waste.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Customer(Customer),
    Order(Order),
    Refund(Refund),
    Shipment(Shipment),
    Product(Product),
}

impl Record {
    pub fn identity(&self) -> &SourceIdentity {
        match self {
            Self::Customer(r) => &r.identity,
            Self::Order(r) => &r.identity,
            Self::Refund(r) => &r.identity,
            Self::Shipment(r) => &r.identity,
            Self::Product(r) => &r.identity,
        }
    }
    /// The entity name used in idempotency keys.
    pub fn entity(&self) -> &'static str {
        match self {
            Self::Customer(_) => "customer",
            Self::Order(_) => "order",
            Self::Refund(_) => "refund",
            Self::Shipment(_) => "shipment",
            Self::Product(_) => "product",
        }
    }
    /// When the record last changed at its source; used for history vs live and
    /// for the reconciliation report.
    pub fn changed_at(&self) -> Timestamp {
        match self {
            Self::Customer(r) => r.updated_at,
            Self::Order(r) => r.updated_at,
            Self::Refund(r) => r.created_at,
            Self::Shipment(r) => r.shipped_at,
            Self::Product(r) => r.updated_at,
        }
    }
    /// The buyer of an order or refund, to share (not copy) into another
    /// event about them.
    pub fn buyer(&self) -> Option<&Arc<Person>> {
        match self {
            Self::Order(r) => Some(&r.person),
            Self::Refund(r) => Some(&r.person),
            Self::Customer(_) | Self::Shipment(_) | Self::Product(_) => None,
        }
    }

    pub fn person(&self) -> Option<&Person> {
        match self {
            Self::Customer(r) => Some(&r.person),
            Self::Order(r) => Some(&r.person),
            Self::Refund(r) => Some(&r.person),
            Self::Shipment(r) => Some(&r.person),
            Self::Product(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_become_exact_json_numbers_whichever_way_they_are_written() {
        for (decimal, expected) in [
            (Decimal::new(2935, 2), json!(29.35)),
            (Decimal::new(1000, 2), json!(10)),
            (Decimal::new(-5, 1), json!(-0.5)),
            (Decimal::MAX, json!(79228162514264337593543950335.0)),
        ] {
            assert_eq!(json_number(decimal), expected);
            assert_eq!(serde_json::to_string(&JsonNumber(decimal)).unwrap(), expected.to_string());
        }
    }

    /// What a decimal is written as: the integer when it has no fraction,
    /// else the double nearest to it, read from its own digits (Rust's
    /// parse rounds correctly).
    fn nearest(value: Decimal) -> String {
        let normalized = value.normalize();
        if normalized.scale() == 0 {
            return i64::try_from(normalized.mantissa()).unwrap().to_string();
        }
        serde_json::to_string(&normalized.to_string().parse::<f64>().unwrap()).unwrap()
    }

    /// Every decimal of the exact range is written as its nearest double,
    /// in the fewest digits that read back as it. (The general way, a
    /// 96-bit normalize and rust_decimal's `to_f64`, wrote 42810.49735353523
    /// as 42810.49735353524: one double off, for sixteen digits.)
    #[test]
    fn a_decimal_is_written_as_the_double_nearest_to_it() {
        let mut values: Vec<Decimal> = Vec::new();
        for scale in 0..=6 {
            values.extend((-20_000_i64..=20_000).map(|mantissa| Decimal::new(mantissa, scale)));
        }
        // Mantissas of every length up to 2^53, at every exact scale.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..100_000 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let sign = if state & 1 == 0 { 1 } else { -1 };
            let bits = (state >> 3) % 54;
            let mantissa = ((state >> 11) >> (53 - bits)) as i64 * sign;
            values.push(Decimal::new(mantissa, ((state >> 20) % 19) as u32));
        }
        for edge in [(1_i64 << 53) - 1, 1 << 53, (1 << 53) + 1, 999_999_999_999_999_999, 10_i64.pow(18)] {
            for scale in [0, 2, 17, 18, 19, 28] {
                values.extend([Decimal::new(edge, scale), Decimal::new(-edge, scale)]);
            }
        }
        for value in values {
            let written = serde_json::to_string(&JsonNumber(value)).unwrap();
            assert_eq!(written, nearest(value), "{value:?}");
        }
    }
}
