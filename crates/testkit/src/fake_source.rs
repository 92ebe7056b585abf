//! A deterministic in-memory `Source`: a world of customers and orders that a
//! test can change between passes, read in pages like a modified-after cursor.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use std::sync::{Arc, Mutex};
use tillflow_core::ConnectorError;
use tillflow_core::model::{
    Address, ChangeKind, Channel, Currency, Customer, Money, Order, OrderLine, OrderStatus, OrderTotals, Person,
    Record, Refund, SourceIdentity, Text,
};
use tillflow_core::source::{BadRecord, Checkpoint, InboxItem, Page, Source, SourceItem};

pub const PLATFORM: &str = "fake";
/// The moment sample data starts: far enough back to be history for any test.
pub fn epoch() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

fn identity(source: &str, id: impl std::fmt::Display) -> SourceIdentity {
    SourceIdentity { platform: PLATFORM.into(), source: source.into(), id: Text::display(id) }
}

fn usd(cents: i64) -> Money {
    Money::new(Decimal::new(cents, 2), Currency::new("USD").unwrap())
}

/// Order number `n` (1-based), for customer `n % customers + 1`, with 1–3 lines.
pub fn sample_order(source: &str, n: u64, customers: u64, at: Timestamp) -> Order {
    let customer = n % customers.max(1) + 1;
    let line_count = n % 3 + 1;
    let lines: Vec<OrderLine> = (1..=line_count)
        .map(|l| OrderLine {
            line_id: Text::display(format_args!("{n}-{l}")),
            product_id: Some(Text::display(format_args!("p{l}"))),
            variant_id: None,
            sku: Some(Text::display(format_args!("SKU-{l}"))),
            name: Text::display(format_args!("Product {l}")),
            quantity: Decimal::ONE,
            unit_price: usd(1000),
            total: usd(1000),
            categories: vec![Text::display(format_args!("Category {}", l % 2))],
            coupon: false,
            properties: Default::default(),
        })
        .collect();
    let total = usd(1000 * line_count as i64);
    Order {
        identity: identity(source, n),
        change: ChangeKind::Created,
        number: Some(Text::display(format_args!("#{n}"))),
        person: Person {
            customer_id: Some(Text::display(customer)),
            email: Some(Text::display(format_args!("customer{customer}@example.com"))),
            first_name: Some(Text::display(format_args!("First{customer}"))),
            last_name: Some("Last".into()),
            address: Address { country: Some("US".into()), ..Address::default() },
            ..Person::default()
        }
        .into(),
        status: OrderStatus::Processing,
        channel: if n.is_multiple_of(2) { Channel::InStore } else { Channel::Online },
        location: None,
        register_id: None,
        lines,
        discounts: Vec::new(),
        totals: OrderTotals { subtotal: total.clone(), discount: usd(0), shipping: usd(0), tax: usd(0), total },
        payment_method: Some("cash".into()),
        created_at: at,
        placed_at: at,
        updated_at: at,
        completed_at: None,
        refunded: None,
        excluded: None,
        properties: Default::default(),
        cancelled_at: None,
    }
}

pub fn sample_customer(source: &str, n: u64, at: Timestamp) -> Customer {
    Customer {
        identity: identity(source, n),
        change: ChangeKind::Created,
        person: Person {
            customer_id: Some(Text::display(n)),
            email: Some(Text::display(format_args!("customer{n}@example.com"))),
            first_name: Some(Text::display(format_args!("First{n}"))),
            last_name: Some("Last".into()),
            ..Person::default()
        },
        accepts_marketing: None,
        group: None,
        created_at: at,
        updated_at: at,
        properties: Default::default(),
        consent_changed_at: None,
        group_changed_at: None,
    }
}

/// What the fake platform holds. Each stream is ordered by modification, like a
/// `modified_after` + `orderby=modified` listing: a changed record moves to the end.
#[derive(Default)]
pub struct FakeWorld {
    pub source: String,
    pub streams: Vec<(String, Vec<SourceItem>)>,
    /// Pages served so far (all streams).
    pub pages_served: u64,
    /// Fail the next reads with this error (consumed one per read).
    pub fail_reads: Vec<ConnectorError>,
    /// Webhooks cannot be read (a parser bug) until this is set back.
    pub webhooks_unreadable: bool,
}

impl FakeWorld {
    /// `orders` orders over `customers` customers, one minute apart, history.
    pub fn sample(source: &str, customers: u64, orders: u64) -> Self {
        let customers_stream =
            (1..=customers).map(|n| Ok(Record::Customer(sample_customer(source, n, epoch())))).collect();
        let orders_stream = (1..=orders)
            .map(|n| {
                let at = epoch() + SignedDuration::from_mins(n as i64);
                Ok(Record::Order(sample_order(source, n, customers, at)))
            })
            .collect();
        Self {
            source: source.into(),
            streams: vec![("customers".into(), customers_stream), ("orders".into(), orders_stream)],
            ..Self::default()
        }
    }

    fn stream_mut(&mut self, name: &str) -> &mut Vec<SourceItem> {
        if let Some(index) = self.streams.iter().position(|(n, _)| n == name) {
            return &mut self.streams[index].1;
        }
        self.streams.push((name.to_owned(), Vec::new()));
        &mut self.streams.last_mut().unwrap().1
    }

    /// Appends a record (a new or a changed one) at the end of its stream.
    pub fn push(&mut self, stream: &str, item: SourceItem) {
        self.stream_mut(stream).push(item);
    }

    /// Changes order `id`: appends a modified copy of its latest version, as
    /// a modified-after listing shows it again after the cursor.
    pub fn update_order(&mut self, id: &str, change: impl FnOnce(&mut Order)) {
        let orders = self.stream_mut("orders");
        let mut order = orders
            .iter()
            .rev()
            .find_map(|item| match item {
                Ok(Record::Order(o)) if o.identity.id == id => Some(o.clone()),
                _ => None,
            })
            .expect("order exists");
        order.change = ChangeKind::Updated;
        order.updated_at += SignedDuration::from_secs(1);
        change(&mut order);
        orders.push(Ok(Record::Order(order)));
    }

    pub fn add_refund(&mut self, order_id: &str, refund_id: &str, cents: i64) {
        let source = self.source.clone();
        let person = self
            .streams
            .iter()
            .flat_map(|(_, items)| items.iter())
            .find_map(|item| match item {
                Ok(Record::Order(o)) if o.identity.id == order_id => Some(o.person.clone()),
                _ => None,
            })
            .unwrap_or_default();
        self.push(
            "refunds",
            Ok(Record::Refund(Refund {
                identity: identity(&source, refund_id),
                order_id: order_id.into(),
                person,
                amount: usd(cents),
                reason: Some("damaged".into()),
                lines: Vec::new(),
                created_at: epoch() + SignedDuration::from_hours(24 * 365),
            })),
        );
    }

    pub fn add_bad_record(&mut self, stream: &str, reason: &str) {
        self.push(
            stream,
            Err(BadRecord { stream: stream.into(), reason: reason.into(), raw: serde_json::json!({"broken": true}) }),
        );
    }
}

/// Reads a shared [`FakeWorld`]; the checkpoint is `{"v":1,"offset":N}`.
pub struct FakeSource {
    world: Arc<Mutex<FakeWorld>>,
    page_size: usize,
}

impl FakeSource {
    pub fn new(world: Arc<Mutex<FakeWorld>>, page_size: usize) -> Self {
        Self { world, page_size: page_size.max(1) }
    }
}

#[async_trait]
impl Source for FakeSource {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn streams(&self) -> Vec<String> {
        self.world.lock().unwrap().streams.iter().map(|(name, _)| name.clone()).collect()
    }

    async fn read(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        let mut world = self.world.lock().unwrap();
        if !world.fail_reads.is_empty() {
            return Err(world.fail_reads.remove(0));
        }
        world.pages_served += 1;
        let offset = checkpoint.and_then(|c| c.0.get("offset")).and_then(|o| o.as_u64()).unwrap_or(0) as usize;
        let items = world.stream_mut(stream);
        let end = (offset + self.page_size).min(items.len());
        let page: Vec<SourceItem> = items.get(offset..end).map(<[_]>::to_vec).unwrap_or_default();
        let last = end >= items.len();
        Ok(Page { items: page, checkpoint: Checkpoint(serde_json::json!({"v": 1, "offset": end.max(offset)})), last })
    }

    /// A webhook's body is a canonical `Record` in JSON.
    async fn parse_webhook(&mut self, item: &InboxItem) -> Result<Vec<SourceItem>, ConnectorError> {
        if self.world.lock().unwrap().webhooks_unreadable {
            return Err(ConnectorError::permanent("this webhook cannot be read"));
        }
        serde_json::from_slice::<Record>(&item.body)
            .map(|record| vec![Ok(record)])
            .map_err(|e| ConnectorError::permanent(format!("webhook body is not a record: {e}")))
    }

    /// A dead-lettered raw record is read as a canonical `Record` in JSON: a
    /// test "fixes" a bad record by dead-lettering one whose raw is valid.
    async fn reparse(&mut self, stream: &str, raw: &serde_json::Value) -> Result<Vec<SourceItem>, ConnectorError> {
        Ok(vec![serde_json::from_value::<Record>(raw.clone()).map_err(|e| BadRecord {
            stream: stream.to_owned(),
            reason: format!("still invalid: {e}"),
            raw: raw.clone(),
        })])
    }
}
