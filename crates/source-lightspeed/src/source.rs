//! Reading Lightspeed R-Series: customers and sales by `timeStamp`, following
//! `@attributes.next` exactly as given; category and shop names looked up per
//! pass; refunds resolved to their original sale through its lines.

use crate::client::LightspeedClient;
use crate::mapping::{self, Lookups, Mapped};
use crate::wire;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;
use tillflow_core::model::{Record, Text};
use tillflow_core::source::{BadRecord, Checkpoint, Page, Source, SourceItem};
use tillflow_core::{ConnectorError, ErrorClass};
use tillflow_kit::source::{Cursor, decode, encode, raw_records, raw_value};

const SALE_RELATIONS: &str = r#"["SaleLines","SaleLines.Item","SaleLines.Discount","SalePayments","Customer","Customer.Contact","ShipTo","Discount"]"#;
const CUSTOMER_RELATIONS: &str = r#"["Contact","CustomerType"]"#;
/// Remembered line → sale pairs; bounded, so memory does not grow with the history.
const REMEMBERED_LINES: usize = 200_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct StreamCursor {
    /// The next page's URL exactly as Lightspeed gave it.
    next: Option<String>,
    /// Lower bound (inclusive) of this pass's `timeStamp` filter.
    since: Option<String>,
    /// The newest `timeStamp` seen this pass; the next pass starts there.
    max_seen: Option<String>,
}

impl Cursor for StreamCursor {
    const VERSION: u32 = 1;
}

/// A list response: `@attributes` and the records under the kind's name.
type Listing = HashMap<String, Box<RawValue>>;

#[derive(Deserialize)]
struct SaleLineAnswer {
    #[serde(rename = "SaleLine")]
    line: wire::SaleLine,
}

/// The `timeStamp` of a record, read leniently even when the record does not map.
#[derive(Deserialize)]
struct Stamped {
    #[serde(rename = "timeStamp", default)]
    time_stamp: tillflow_kit::source::Loose,
}

fn next_link(listing: &Listing) -> Option<String> {
    let attributes: wire::Attributes =
        listing.get("@attributes").and_then(|raw| serde_json::from_str(raw.get()).ok()).unwrap_or_default();
    attributes.next.text().map(String::from)
}

fn records_of(listing: &Listing, kind: &str) -> Result<Vec<Box<RawValue>>, ConnectorError> {
    match listing.get(kind) {
        Some(field) => raw_records(field)
            .map_err(|e| ConnectorError::transient(format!("Lightspeed's {kind} listing is not JSON records: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Reads one account for one pipeline: its own cursors, name lookups and
/// line → sale memory over the account's client and tokens.
pub struct LightspeedSource {
    client: Arc<LightspeedClient>,
    lookups: Option<Lookups>,
    /// saleLineID → saleID, so each refund line is looked up once.
    parents: HashMap<Text, Text>,
}

impl LightspeedSource {
    pub fn new(client: Arc<LightspeedClient>) -> Self {
        Self { client, lookups: None, parents: HashMap::new() }
    }

    /// Every page of a list endpoint, following `@attributes.next`.
    async fn get_all<T: serde::de::DeserializeOwned>(&self, path: &str, kind: &str) -> Result<Vec<T>, ConnectorError> {
        let mut all = Vec::new();
        let mut url = format!("{}/{path}", self.client.api);
        let mut query = vec![("limit", "100".to_owned())];
        loop {
            let listing: Listing = self.client.get(&url, &query).await?;
            for raw in records_of(&listing, kind)? {
                if let Ok(record) = serde_json::from_str(raw.get()) {
                    all.push(record);
                }
            }
            match next_link(&listing) {
                Some(next) => {
                    url = next;
                    query.clear();
                }
                None => return Ok(all),
            }
        }
    }

    async fn load_lookups(&mut self) -> Result<(), ConnectorError> {
        let categories: Vec<wire::Category> = self.get_all("Category.json", "Category").await?;
        let shops: Vec<wire::Shop> = self.get_all("Shop.json", "Shop").await?;
        self.lookups = Some(Lookups {
            categories: categories
                .into_iter()
                .filter_map(|c| Some((c.category_id.id()?, Text::new(c.name.as_str()))))
                .collect(),
            shops: shops.into_iter().filter_map(|s| Some((s.shop_id.id()?, Text::new(s.name.as_str())))).collect(),
        });
        Ok(())
    }

    async fn parent_sale(&mut self, line_ids: &[Text]) -> Result<Option<Text>, ConnectorError> {
        for line in line_ids {
            if let Some(sale) = self.parents.get(line) {
                return Ok(Some(sale.clone()));
            }
            let url = format!("{}/SaleLine/{line}.json", self.client.api);
            match self.client.get::<SaleLineAnswer>(&url, &[]).await {
                Ok(answer) => {
                    if let Some(sale) = answer.line.sale_id.id() {
                        self.parents.insert(line.clone(), sale.clone());
                        return Ok(Some(sale));
                    }
                }
                // A parent line that no longer exists: try the next one.
                Err(error) if error.class == ErrorClass::Permanent => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    async fn read_stream(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        let mut cursor: StreamCursor = decode(checkpoint, stream)?;
        let (path, kind, relations) = match stream {
            "sales" => ("Sale.json", "Sale", SALE_RELATIONS),
            "customers" => ("Customer.json", "Customer", CUSTOMER_RELATIONS),
            other => return Err(ConnectorError::config(format!("lightspeed has no stream `{other}`"))),
        };
        if stream == "sales" && (self.lookups.is_none() || cursor.next.is_none()) {
            self.load_lookups().await?;
        }
        let listing: Listing = match &cursor.next {
            Some(next) => self.client.get(next, &[]).await?,
            None => {
                let mut query = vec![
                    ("load_relations", relations.to_owned()),
                    ("sort", "timeStamp".to_owned()),
                    ("limit", "100".to_owned()),
                ];
                if let Some(since) = &cursor.since {
                    query.push(("timeStamp", format!(">=,{since}")));
                }
                self.client.get(&format!("{}/{path}", self.client.api), &query).await?
            }
        };
        let mut items = Vec::new();
        for raw in records_of(&listing, kind)? {
            if let Ok(Stamped { time_stamp }) = serde_json::from_str::<Stamped>(raw.get()) {
                let stamp = time_stamp.as_str();
                if !stamp.is_empty() && cursor.max_seen.as_deref().is_none_or(|max| stamp > max) {
                    cursor.max_seen = Some(stamp.to_owned());
                }
            }
            items.extend(self.map(stream, &raw).await?);
        }
        let next = next_link(&listing);
        let last = next.is_none();
        let cursor = if last {
            StreamCursor { next: None, since: cursor.max_seen.clone().or(cursor.since), max_seen: None }
        } else {
            StreamCursor { next, ..cursor }
        };
        Ok(Page { items, checkpoint: encode(&cursor), last })
    }

    /// One raw record of `stream` as the pass reads it (a refund's original
    /// sale looked up when needed).
    async fn map(&mut self, stream: &str, raw: &RawValue) -> Result<Vec<SourceItem>, ConnectorError> {
        let bad = |reason: String| vec![Err(BadRecord { stream: stream.to_owned(), reason, raw: raw_value(raw) })];
        if stream == "customers" {
            return Ok(match serde_json::from_str::<wire::Customer>(raw.get()) {
                Ok(wire) => match mapping::customer(&self.client.name, &wire) {
                    Ok(customer) => vec![Ok(Record::Customer(customer))],
                    Err(reason) => bad(reason),
                },
                Err(e) => bad(format!("customer is not Lightspeed customer JSON: {e}")),
            });
        }
        let sale: wire::Sale = match serde_json::from_str(raw.get()) {
            Ok(sale) => sale,
            Err(e) => return Ok(bad(format!("sale is not Lightspeed sale JSON: {e}"))),
        };
        // Remember which sale each line belongs to: a refund read later then
        // finds its original without an extra request.
        if self.parents.len() > REMEMBERED_LINES {
            self.parents.clear();
        }
        if let Some(sale_id) = sale.sale_id.id() {
            for line in sale.lines.iter() {
                if let Some(line_id) = line.sale_line_id.id() {
                    self.parents.insert(line_id, sale_id.clone());
                }
            }
        }
        let lookups = self.lookups.clone().unwrap_or_default();
        let client = self.client.clone();
        let currency = &client.currency;
        match mapping::sale(&client.name, &sale, &lookups, currency) {
            Ok(Mapped::Records(records)) => Ok(records.into_iter().map(Ok).collect()),
            Ok(Mapped::Open) => Ok(Vec::new()),
            Ok(Mapped::NeedsParent(lines)) => match self.parent_sale(&lines).await? {
                Some(original) => Ok(match mapping::refund(&client.name, &sale, &original, &lookups, currency) {
                    Ok(refund) => vec![Ok(Record::Refund(refund))],
                    Err(reason) => bad(reason),
                }),
                None => Ok(bad(format!(
                    "refund sale {}: none of its parent sale lines {lines:?} could be found",
                    sale.sale_id.as_str()
                ))),
            },
            Err(reason) => Ok(bad(reason)),
        }
    }
}

#[async_trait]
impl Source for LightspeedSource {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn streams(&self) -> Vec<String> {
        vec!["customers".into(), "sales".into()]
    }

    async fn read(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        self.read_stream(stream, checkpoint).await
    }

    async fn reparse(&mut self, stream: &str, raw: &serde_json::Value) -> Result<Vec<SourceItem>, ConnectorError> {
        if !matches!(stream, "sales" | "customers") {
            return Err(ConnectorError::permanent(format!("lightspeed has no stream `{stream}`")));
        }
        if stream == "sales" && self.lookups.is_none() {
            self.load_lookups().await?;
        }
        let raw = serde_json::value::to_raw_value(raw).expect("JSON values serialize");
        self.map(stream, &raw).await
    }
}
