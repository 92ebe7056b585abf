//! Reading Dutchie: products (the parent's catalog, whole the first time),
//! customers and transactions, each location by last-modified windows of
//! its own (a page is one window of one location: Dutchie does not page
//! these endpoints, so the window bounds the answer). Every window starts
//! `overlap` before the last one ended — Dutchie's data is minutes behind
//! the till — and what was already read unchanged is dropped. A transaction
//! window that fails with a timeout or a 5xx is halved and read again.

use crate::client::{Class, LocationClient, ReadError};
use crate::locations::Shared;
use crate::mapping::{self, Buyer, LocationInfo, ProductInfo, TransactionContext};
use crate::wire;
use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tillflow_core::ConnectorError;
use tillflow_core::model::{Record, Text};
use tillflow_core::source::{BadRecord, Checkpoint, Page, Source, SourceItem};
use tillflow_kit::source::{Cursor, decode, encode, plausible_time};

pub const STREAMS: [&str; 3] = ["products", "customers", "transactions"];
/// The widest transaction window (the reporting endpoint does not page).
const TRANSACTION_WINDOW: SignedDuration = SignedDuration::from_hours(24);
/// Dutchie's default maximum customer date range.
const CUSTOMER_WINDOW: SignedDuration = SignedDuration::from_hours(24 * 90);
/// A transaction window is not halved below this.
const SMALLEST_WINDOW: SignedDuration = SignedDuration::from_mins(2);
/// Product changes can take an hour to show in Dutchie's API.
const PRODUCT_OVERLAP: SignedDuration = SignedDuration::from_hours(1);
/// Remembered (location, transaction) → last change; bounded.
const REMEMBERED: usize = 200_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct WindowCursor {
    /// Per location id: everything modified before this was read.
    done: BTreeMap<Text, Timestamp>,
    /// Where this pass ends (its start); `None` between passes.
    pass_end: Option<Timestamp>,
}

impl Cursor for WindowCursor {
    const VERSION: u32 = 1;

    fn check(&self) -> Result<(), String> {
        for (location, done) in &self.done {
            plausible_time(&format!("done.{location}"), *done)?;
        }
        self.pass_end.map_or(Ok(()), |end| plausible_time("pass_end", end))
    }
}

/// Reads the account for one pipeline, with its own caches.
pub struct DutchieSource {
    shared: Arc<Shared>,
    /// Per location: customers by id.
    buyers: HashMap<Text, HashMap<Text, Buyer>>,
    /// Per location: what an order line shows of each product.
    products: HashMap<Text, HashMap<Text, ProductInfo>>,
    /// Locations whose whole catalog this reader has read.
    whole_catalog: HashSet<Text>,
    /// Catalog products emitted this pass (the first location's wins).
    catalog_seen: HashSet<Text>,
    /// (location, transaction) → the last change already read.
    read: HashMap<(Text, Text), Text>,
}

/// A bad record keeps its location, so a replay maps it as the pass would.
fn bad(stream: &str, location: &LocationInfo, reason: String, record: &Value) -> SourceItem {
    Err(BadRecord { stream: stream.to_owned(), reason, raw: json!({"locationId": location.id, "record": record}) })
}

impl DutchieSource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            buyers: HashMap::new(),
            products: HashMap::new(),
            whole_catalog: HashSet::new(),
            catalog_seen: HashSet::new(),
            read: HashMap::new(),
        }
    }

    fn key(&self, index: usize) -> &LocationClient {
        &self.shared.keys[index]
    }

    /// Where a location's first window starts: the catalog whole, customers
    /// and transactions from `history_start` (else from this pass on).
    fn first_from(&self, stream: &str, pass_end: Timestamp) -> Option<Timestamp> {
        match stream {
            "products" => None,
            _ => Some(self.shared.history_start.unwrap_or(pass_end - self.overlap())),
        }
    }

    fn overlap(&self) -> SignedDuration {
        SignedDuration::try_from(self.shared.overlap).unwrap_or(SignedDuration::from_mins(10))
    }

    async fn read_stream(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        if !STREAMS.contains(&stream) {
            return Err(ConnectorError::config(format!("dutchie has no stream `{stream}`")));
        }
        let locations = self.shared.locations().await?.to_vec();
        let mut cursor: WindowCursor = decode(checkpoint, stream)?;
        let pass_end = match cursor.pass_end {
            Some(end) => end,
            None => {
                if stream == "products" {
                    self.catalog_seen.clear();
                }
                Timestamp::now()
            }
        };
        cursor.pass_end = Some(pass_end);
        let mut unique: HashSet<&str> = HashSet::new();
        let pending = locations.iter().enumerate().find(|(_, location)| {
            unique.insert(location.id.as_str()) && cursor.done.get(&location.id).is_none_or(|done| *done < pass_end)
        });
        let Some((index, location)) = pending else {
            return Ok(Page {
                items: Vec::new(),
                checkpoint: encode(&WindowCursor { done: cursor.done, pass_end: None }),
                last: true,
            });
        };
        let from = match cursor.done.get(&location.id) {
            Some(done) if stream == "products" => Some(*done - PRODUCT_OVERLAP.max(self.overlap())),
            Some(done) => Some(*done - self.overlap()),
            None => self.first_from(stream, pass_end),
        };
        let (items, to) = match stream {
            "products" => (self.read_products(index, location, from).await?, pass_end),
            "customers" => {
                let from = from.expect("customers have a start");
                let to = (from + CUSTOMER_WINDOW).min(pass_end);
                (self.read_customers(index, location, from, to).await?, to)
            }
            _ => {
                let from = from.expect("transactions have a start");
                self.read_transactions(index, location, from, (from + TRANSACTION_WINDOW).min(pass_end)).await?
            }
        };
        cursor.done.insert(location.id.clone(), to);
        let mut unique: HashSet<&str> = HashSet::new();
        let last = locations
            .iter()
            .all(|l| !unique.insert(l.id.as_str()) || cursor.done.get(&l.id).is_some_and(|d| *d >= pass_end));
        if last {
            cursor.pass_end = None;
        }
        Ok(Page { items, checkpoint: encode(&cursor), last })
    }

    async fn read_products(
        &mut self,
        index: usize,
        location: &LocationInfo,
        from: Option<Timestamp>,
    ) -> Result<Vec<SourceItem>, ConnectorError> {
        let query: Vec<(&str, String)> = from.map(|f| ("fromLastModifiedDateUTC", f.to_string())).into_iter().collect();
        let records = self
            .key(index)
            .records(Class::Reporting, "/reporting/products", &query)
            .await
            .map_err(|e| e.into_error())?;
        if from.is_none() {
            self.whole_catalog.insert(location.id.clone());
        }
        let mut items = Vec::new();
        let known = self.products.entry(location.id.clone()).or_default();
        for record in &records {
            match wire::decode::<wire::Product>(record) {
                Ok(product) => {
                    let Some(id) = product.product_id.id() else {
                        items.push(bad("products", location, "a product without productId".into(), record));
                        continue;
                    };
                    known.insert(id.clone(), mapping::product_info(&product));
                    // Coupons are not catalog items; the parent's catalog
                    // is emitted once, from the first location that has it.
                    let coupon = record_flag(record, "iscoupon");
                    if coupon || !self.catalog_seen.insert(id) {
                        continue;
                    }
                    items.push(match mapping::product(&self.shared.name, &product, &self.shared.currency) {
                        Ok(product) => Ok(Record::Product(product)),
                        Err(reason) => bad("products", location, reason, record),
                    });
                }
                Err(e) => items.push(bad("products", location, format!("not Dutchie product JSON: {e}"), record)),
            }
        }
        Ok(items)
    }

    /// The whole catalog of a location, once per reader, so order lines
    /// show their product's name, brand and strain.
    async fn ensure_products(&mut self, index: usize, location: &LocationInfo) -> Result<(), ConnectorError> {
        // A later pass reads only changed products: the rest of the
        // catalog is read once per reader all the same.
        if self.whole_catalog.contains(&location.id) {
            return Ok(());
        }
        let records =
            self.key(index).records(Class::Reporting, "/reporting/products", &[]).await.map_err(|e| e.into_error())?;
        self.whole_catalog.insert(location.id.clone());
        let known = self.products.entry(location.id.clone()).or_default();
        for record in &records {
            if let Ok(product) = wire::decode::<wire::Product>(record)
                && let Some(id) = product.product_id.id()
            {
                known.insert(id, mapping::product_info(&product));
            }
        }
        Ok(())
    }

    fn remember(&mut self, location: &LocationInfo, customer: &Customer) -> Buyer {
        let buyer = Buyer { person: customer.person.clone(), anonymous: false };
        self.buyers.entry(location.id.clone()).or_default().insert(customer.dutchie_id.clone(), buyer.clone());
        buyer
    }

    async fn read_customers(
        &mut self,
        index: usize,
        location: &LocationInfo,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SourceItem>, ConnectorError> {
        let query = [
            ("fromLastModifiedDateUTC", from.to_string()),
            ("toLastModifiedDateUTC", to.to_string()),
            ("includeAnonymous", "false".to_owned()),
        ];
        let records = self
            .key(index)
            .records(Class::Customers, "/customer/customers", &query)
            .await
            .map_err(|e| e.into_error())?;
        let mut items = Vec::new();
        for record in &records {
            items.extend(self.customer_items(location, record));
        }
        Ok(items)
    }

    fn customer_items(&mut self, location: &LocationInfo, record: &Value) -> Vec<SourceItem> {
        let wire = match wire::decode::<wire::Customer>(record) {
            Ok(wire) => wire,
            Err(e) => return vec![bad("customers", location, format!("not Dutchie customer JSON: {e}"), record)],
        };
        match mapping::customer(&self.shared.name, location, &wire) {
            Ok(Some(customer)) => {
                if let Some(id) = wire.customer_id.id() {
                    self.remember(location, &Customer { dutchie_id: id, person: customer.person.clone() });
                }
                vec![Ok(Record::Customer(customer))]
            }
            Ok(None) => {
                if let Some(id) = wire.customer_id.id() {
                    let buyer = Buyer { person: mapping::person(&wire), anonymous: true };
                    self.buyers.entry(location.id.clone()).or_default().insert(id, buyer);
                }
                Vec::new()
            }
            Err(reason) => vec![bad("customers", location, reason, record)],
        }
    }

    /// The buyer of a transaction: from the cache, else fetched by id (and
    /// then emitted as a customer too, so their profile follows).
    async fn buyer(
        &mut self,
        index: usize,
        location: &LocationInfo,
        customer_id: Option<Text>,
        items: &mut Vec<SourceItem>,
    ) -> Result<Option<Buyer>, ConnectorError> {
        let Some(customer_id) = customer_id else { return Ok(None) };
        if let Some(buyer) = self.buyers.get(&location.id).and_then(|known| known.get(&customer_id)) {
            return Ok(Some(buyer.clone()));
        }
        let query = [("customerID", customer_id.to_string()), ("includeAnonymous", "true".to_owned())];
        let records = self
            .key(index)
            .records(Class::Customers, "/customer/customers", &query)
            .await
            .map_err(|e| e.into_error())?;
        match records.first() {
            Some(record) => items.extend(self.customer_items(location, record)),
            None => {
                // Unknown to Dutchie: remembered without an email.
                self.buyers.entry(location.id.clone()).or_default().insert(customer_id.clone(), Buyer::default());
            }
        }
        Ok(self.buyers.get(&location.id).and_then(|known| known.get(&customer_id)).cloned())
    }

    async fn fetch_transactions(
        &self,
        index: usize,
        from: Timestamp,
        mut to: Timestamp,
    ) -> Result<(Vec<Value>, Timestamp), ConnectorError> {
        loop {
            let query = [
                ("FromLastModifiedDateUTC", from.to_string()),
                ("ToLastModifiedDateUTC", to.to_string()),
                ("IncludeDetail", "true".to_owned()),
                ("IncludeTaxes", "true".to_owned()),
            ];
            match self.key(index).records(Class::Reporting, "/reporting/transactions", &query).await {
                Ok(records) => return Ok((records, to)),
                Err(ReadError::Splittable(error)) if to.duration_since(from) > SMALLEST_WINDOW * 2 => {
                    let half = to.duration_since(from) / 2;
                    tracing::info!(%error, from = %from, to = %to, "halving a Dutchie transaction window");
                    to = from + half;
                }
                Err(error) => return Err(error.into_error()),
            }
        }
    }

    async fn read_transactions(
        &mut self,
        index: usize,
        location: &LocationInfo,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<(Vec<SourceItem>, Timestamp), ConnectorError> {
        let (records, to) = self.fetch_transactions(index, from, to).await?;
        self.ensure_products(index, location).await?;
        if self.read.len() > REMEMBERED {
            self.read.clear();
        }
        let mut items = Vec::new();
        for record in &records {
            items.extend(self.transaction_items(index, location, record).await?);
        }
        Ok((items, to))
    }

    async fn transaction_items(
        &mut self,
        index: usize,
        location: &LocationInfo,
        record: &Value,
    ) -> Result<Vec<SourceItem>, ConnectorError> {
        let wire = match wire::decode::<wire::Transaction>(record) {
            Ok(wire) => wire,
            Err(e) => {
                return Ok(vec![bad("transactions", location, format!("not Dutchie transaction JSON: {e}"), record)]);
            }
        };
        let Some(transaction_id) = wire.transaction_id.id() else {
            return Ok(vec![bad("transactions", location, "a transaction without transactionId".into(), record)]);
        };
        // Read again in an overlap, unchanged: nothing new.
        let seen_key = (location.id.clone(), transaction_id);
        let modified = Text::new(wire.last_modified.as_str());
        if self.read.get(&seen_key).is_some_and(|last| *last == modified) {
            return Ok(Vec::new());
        }
        let mut items = Vec::new();
        let buyer = self.buyer(index, location, wire.customer_id.id(), &mut items).await?;
        let empty = HashMap::new();
        let context = TransactionContext {
            source: &self.shared.name,
            location,
            buyer: buyer.as_ref(),
            products: self.products.get(&location.id).unwrap_or(&empty),
            transaction_types: &self.shared.transaction_types,
            currency: &self.shared.currency,
        };
        match mapping::transaction(&context, &wire) {
            Ok(record) => items.push(Ok(record)),
            Err(reason) => items.push(bad("transactions", location, reason, record)),
        }
        self.read.insert(seen_key, modified);
        Ok(items)
    }
}

/// A buyer to remember: their Dutchie id and person.
struct Customer {
    dutchie_id: Text,
    person: tillflow_core::model::Person,
}

/// A boolean field of a raw record, whatever its casing.
fn record_flag(record: &Value, lowercase_key: &str) -> bool {
    record.as_object().is_some_and(|object| {
        object.iter().any(|(key, value)| key.eq_ignore_ascii_case(lowercase_key) && value.as_bool() == Some(true))
    })
}

#[async_trait]
impl Source for DutchieSource {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn streams(&self) -> Vec<String> {
        STREAMS.iter().map(|s| (*s).to_owned()).collect()
    }

    async fn read(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        self.read_stream(stream, checkpoint).await
    }

    /// A dead letter carries its location: it is mapped as the pass would.
    async fn reparse(&mut self, stream: &str, raw: &Value) -> Result<Vec<SourceItem>, ConnectorError> {
        let locations = self.shared.locations().await?.to_vec();
        let location_id = raw["locationId"].as_str().unwrap_or_default();
        let Some((index, location)) = locations.iter().enumerate().find(|(_, l)| l.id == location_id) else {
            return Err(ConnectorError::permanent(format!("no configured key reads location `{location_id}`")));
        };
        let record = &raw["record"];
        match stream {
            "customers" => Ok(self.customer_items(location, record)),
            "transactions" => {
                self.ensure_products(index, location).await?;
                self.transaction_items(index, location, record).await
            }
            "products" => {
                self.catalog_seen.clear();
                let wire = wire::decode::<wire::Product>(record)
                    .map_err(|e| ConnectorError::permanent(format!("not Dutchie product JSON: {e}")))?;
                Ok(vec![match mapping::product(&self.shared.name, &wire, &self.shared.currency) {
                    Ok(product) => Ok(Record::Product(product)),
                    Err(reason) => bad("products", location, reason, record),
                }])
            }
            other => Err(ConnectorError::permanent(format!("dutchie has no stream `{other}`"))),
        }
    }
}
