//! Reading a Retail POS store for one pipeline: X-Series customers and
//! sales on the `version` cursor (`after` = the last page's `version.max`,
//! an empty page ends the pass), then, with an eCom store, its customers
//! and orders by `updatedFrom` (each pass reaching back `overlap`; pages
//! keyed on the last `updated` second, so a record changed mid-pass
//! cannot shift another out of the window). Customers of both go through
//! the merge; eCom orders only admit their buyers (they reach X-Series as
//! sales, and are sent from there). Webhooks of both are triggers: the
//! record they name is fetched again.

use crate::client::XSeriesClient;
use crate::ecom_client::EcomClient;
use crate::ecom_wire;
use crate::mapping::{self, SaleContext};
use crate::people::{Incoming, People};
use crate::reference::{Reference, page_end};
use crate::wire;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::model::{Currency, Record, Text};
use tillflow_core::source::{BadRecord, Checkpoint, InboxItem, Page, Source, SourceItem};
use tillflow_kit::source::{Cursor, decode, encode, plausible_seconds};

/// eCom pages (its maximum).
const ECOM_LIMIT: u64 = 100;
/// eCom ids remembered with their last `updated`, to drop re-reads; bounded.
const REMEMBERED: usize = 200_000;

/// What every pipeline reading the store shares.
pub struct Shared {
    pub name: String,
    pub x: XSeriesClient,
    pub ecom: Option<EcomClient>,
    pub ecom_overlap: Duration,
    pub currency: Currency,
    pub page_size: u32,
    pub people: People,
}

impl Shared {
    pub fn streams(&self) -> Vec<&'static str> {
        // The POS first: a person in both stores who bought online is then
        // never sent under `ecom:<id>` before their X-Series id is known (a
        // sink keyed by id, Customer.io, would keep two people). The price:
        // in a first run such a person's profile may go twice, the POS view
        // and then the merged one.
        if self.ecom.is_some() {
            vec!["customers", "ecom_customers", "ecom_orders", "sales"]
        } else {
            vec!["customers", "sales"]
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct VersionCursor {
    after: u64,
}

impl Cursor for VersionCursor {
    const VERSION: u32 = 1;
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct EcomCursor {
    /// Everything updated before this (UNIX seconds) was read.
    done: Option<i64>,
    /// Where this pass reads from and to; `None` between passes.
    from: Option<i64>,
    until: Option<i64>,
    /// Records at `from` already read (eCom pages by offset).
    offset: u64,
}

impl Cursor for EcomCursor {
    const VERSION: u32 = 1;

    fn check(&self) -> Result<(), String> {
        for (field, seconds) in [("done", self.done), ("from", self.from), ("until", self.until)] {
            seconds.map_or(Ok(()), |seconds| plausible_seconds(field, seconds))?;
        }
        Ok(())
    }
}

pub struct RetailPosSource {
    shared: Arc<Shared>,
    reference: Reference,
    /// A pass is under way (the reference data was refreshed for it).
    in_pass: bool,
    /// eCom customer id → the `updated` last read.
    ecom_read: HashMap<String, String>,
}

fn bad(stream: &str, reason: String, raw: &Value) -> SourceItem {
    Err(BadRecord { stream: stream.to_owned(), reason, raw: raw.clone() })
}

impl RetailPosSource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared, reference: Reference::default(), in_pass: false, ecom_read: HashMap::new() }
    }

    async fn ensure_reference(&mut self, refresh: bool) -> Result<(), ConnectorError> {
        if refresh || !self.reference.loaded {
            self.reference.refresh(&self.shared.x, self.shared.ecom.as_ref(), self.shared.page_size).await?;
        }
        Ok(())
    }

    fn ecom(&self) -> Result<&EcomClient, ConnectorError> {
        self.shared
            .ecom
            .as_ref()
            .ok_or_else(|| ConnectorError::config(format!("sources.{}.ecom is not configured", self.shared.name)))
    }

    /// POS customers → the merge → the customers whose view changed.
    async fn pos_customers(&mut self, records: &[Value]) -> Result<Vec<SourceItem>, ConnectorError> {
        let mut items = Vec::new();
        let mut incoming = Vec::new();
        for record in records {
            match serde_json::from_value::<wire::Customer>(record.clone()) {
                Ok(customer) if customer.deleted_at.text().is_some() => {}
                Ok(customer) => match mapping::pos_side(&customer, &self.reference.groups) {
                    Ok(side) => incoming.push(Incoming::Pos(side)),
                    Err(reason) => items.push(bad("customers", reason, record)),
                },
                Err(e) => items.push(bad("customers", format!("not X-Series customer JSON: {e}"), record)),
            }
        }
        items.extend(self.shared.people.apply(incoming).await?.into_iter().map(|c| Ok(Record::Customer(c))));
        Ok(items)
    }

    /// eCom customers → the merge (already-read unchanged ones dropped).
    async fn ecom_customers(&mut self, records: &[Value]) -> Result<Vec<SourceItem>, ConnectorError> {
        if self.ecom_read.len() > REMEMBERED {
            self.ecom_read.clear();
        }
        let mut items = Vec::new();
        let mut incoming = Vec::new();
        for record in records {
            match serde_json::from_value::<ecom_wire::Customer>(record.clone()) {
                Ok(customer) => {
                    let id = customer.id.as_str().to_owned();
                    if self.ecom_read.get(&id).is_some_and(|updated| *updated == customer.updated.as_str()) {
                        continue;
                    }
                    match mapping::ecom_side(&customer, &self.reference.ecom_groups) {
                        Ok(side) if side.email.is_some() => {
                            incoming.push(Incoming::Ecom(side, mapping::ecom_has_orders(&customer)));
                            self.ecom_read.insert(id, customer.updated.as_str().to_owned());
                        }
                        // Without an email nobody can be matched or reached.
                        Ok(_) => {}
                        Err(reason) => items.push(bad("ecom_customers", reason, record)),
                    }
                }
                Err(e) => items.push(bad("ecom_customers", format!("not eCom customer JSON: {e}"), record)),
            }
        }
        items.extend(self.shared.people.apply(incoming).await?.into_iter().map(|c| Ok(Record::Customer(c))));
        Ok(items)
    }

    /// eCom orders: their buyers have bought online.
    async fn ecom_orders(&mut self, records: &[Value]) -> Result<Vec<SourceItem>, ConnectorError> {
        let mut items = Vec::new();
        let mut incoming = Vec::new();
        for record in records {
            match serde_json::from_value::<ecom_wire::Order>(record.clone()) {
                Ok(order) => {
                    if let Some(email) = order.email.text() {
                        incoming.push(Incoming::BoughtOnline(email));
                    }
                }
                Err(e) => items.push(bad("ecom_orders", format!("not eCom order JSON: {e}"), record)),
            }
        }
        items.extend(self.shared.people.apply(incoming).await?.into_iter().map(|c| Ok(Record::Customer(c))));
        Ok(items)
    }

    /// Sales → orders and refunds; a buyer the merge has not seen yet is
    /// fetched (and their profile sent first).
    async fn sales(&mut self, records: &[Value]) -> Result<Vec<SourceItem>, ConnectorError> {
        let mut items = Vec::new();
        let mut sales = Vec::new();
        for record in records {
            match serde_json::from_value::<wire::Sale>(record.clone()) {
                Ok(sale) => sales.push((sale, record)),
                Err(e) => items.push(bad("sales", format!("not X-Series sale JSON: {e}"), record)),
            }
        }
        let mut ids: Vec<Text> = sales.iter().filter_map(|(sale, _)| sale.customer_id.id()).collect();
        ids.sort();
        ids.dedup();
        let mut buyers = self.shared.people.buyers(&ids).await?;
        let unknown: Vec<Text> = ids.iter().filter(|id| !buyers.contains_key(*id)).cloned().collect();
        if !unknown.is_empty() {
            let mut fetched = Vec::new();
            for id in &unknown {
                if let Some(one) = self.shared.x.get::<wire::One>(&format!("/customers/{id}"), &[]).await? {
                    fetched.push(one.data);
                }
            }
            items.extend(self.pos_customers(&fetched).await?);
            buyers.extend(self.shared.people.buyers(&unknown).await?);
        }
        for (sale, record) in sales {
            let context = SaleContext {
                source: &self.shared.name,
                currency: &self.shared.currency,
                outlets: &self.reference.outlets,
                products: &self.reference.products,
                buyer: sale.customer_id.id().and_then(|id| buyers.get(&id).cloned()),
            };
            match mapping::sale(&context, &sale) {
                Ok(Some(record)) => items.push(Ok(record)),
                Ok(None) => {}
                Err(reason) => items.push(bad("sales", reason, record)),
            }
        }
        Ok(items)
    }

    async fn read_x(
        &mut self,
        stream: &str,
        path: &str,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<Page, ConnectorError> {
        let cursor: VersionCursor = decode(checkpoint, stream)?;
        let query = [("after", cursor.after.to_string()), ("page_size", self.shared.page_size.to_string())];
        let page = self
            .shared
            .x
            .get::<wire::Page>(path, &query)
            .await?
            .ok_or_else(|| ConnectorError::permanent(format!("X-Series has no {path} (404)")))?;
        if page.data.is_empty() {
            return Ok(Page { items: Vec::new(), checkpoint: encode(&cursor), last: true });
        }
        let after = page_end(&page);
        if after <= cursor.after {
            return Err(ConnectorError::permanent(format!(
                "X-Series {path} did not move past version {}; stopping rather than reading it again",
                cursor.after
            )));
        }
        let items = match stream {
            "customers" => self.pos_customers(&page.data).await?,
            _ => self.sales(&page.data).await?,
        };
        Ok(Page { items, checkpoint: encode(&VersionCursor { after }), last: false })
    }

    async fn read_ecom(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        let mut cursor: EcomCursor = decode(checkpoint, stream)?;
        let overlap = i64::try_from(self.shared.ecom_overlap.as_secs()).unwrap_or(0);
        let from = cursor.from.unwrap_or_else(|| cursor.done.map_or(0, |done| (done - overlap).max(0)));
        let until = cursor.until.unwrap_or_else(|| jiff::Timestamp::now().as_second());
        let mut query = vec![
            ("updatedTo", until.to_string()),
            ("offset", cursor.offset.to_string()),
            ("limit", ECOM_LIMIT.to_string()),
        ];
        if from > 0 {
            query.push(("updatedFrom", from.to_string()));
        }
        let path = if stream == "ecom_customers" {
            query.push(("sortBy", "UPDATED_DATE_ASC".to_owned()));
            "/customers"
        } else {
            "/orders"
        };
        let page = self
            .ecom()?
            .get::<ecom_wire::Search>(path, &query)
            .await?
            .ok_or_else(|| ConnectorError::permanent(format!("eCom has no {path} (404)")))?;
        let count = page.items.len() as u64;
        let done = count == 0 || page.offset.saturating_add(count) >= page.total || count < ECOM_LIMIT;
        let items = if stream == "ecom_customers" {
            self.ecom_customers(&page.items).await?
        } else {
            self.ecom_orders(&page.items).await?
        };
        if done {
            let next = EcomCursor { done: Some(until), ..EcomCursor::default() };
            return Ok(Page { items, checkpoint: encode(&next), last: true });
        }
        // Customers come oldest change first: the next page starts at the
        // last one's second, past those of that second already read.
        let (next_from, next_offset) = match (stream, page.items.last().map(last_updated)) {
            ("ecom_customers", Some(Some(last))) if last > from => {
                let same = page.items.iter().filter(|item| last_updated(item) == Some(last)).count() as u64;
                (last, same)
            }
            _ => (from, cursor.offset.saturating_add(count)),
        };
        cursor = EcomCursor { done: cursor.done, from: Some(next_from), until: Some(until), offset: next_offset };
        Ok(Page { items, checkpoint: encode(&cursor), last: false })
    }

    /// Fetches the record a webhook names and reads it as a pass would.
    async fn webhook_items(&mut self, item: &InboxItem) -> Result<Vec<SourceItem>, ConnectorError> {
        self.ensure_reference(false).await?;
        match crate::webhook::trigger(item) {
            crate::webhook::Trigger::PosSale(id) => {
                let Some(one) = self.shared.x.get::<wire::One>(&format!("/sales/{id}"), &[]).await? else {
                    return Ok(Vec::new());
                };
                self.sales(&[one.data]).await
            }
            crate::webhook::Trigger::PosCustomer(id) => {
                let Some(one) = self.shared.x.get::<wire::One>(&format!("/customers/{id}"), &[]).await? else {
                    return Ok(Vec::new());
                };
                self.pos_customers(&[one.data]).await
            }
            crate::webhook::Trigger::EcomCustomer(id) => {
                let Some(customer) = self.ecom()?.get::<Value>(&format!("/customers/{id}"), &[]).await? else {
                    return Ok(Vec::new());
                };
                self.ecom_read.remove(id.as_str());
                self.ecom_customers(&[customer]).await
            }
            crate::webhook::Trigger::EcomOrder(id) => {
                let Some(order) = self.ecom()?.get::<Value>(&format!("/orders/{id}"), &[]).await? else {
                    return Ok(Vec::new());
                };
                self.ecom_orders(&[order]).await
            }
            crate::webhook::Trigger::Nothing => Ok(Vec::new()),
        }
    }
}

/// An eCom record's `updated` as UNIX seconds.
fn last_updated(record: &Value) -> Option<i64> {
    let text = match record.get("updated")? {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    mapping::ecom_time(&text, "updated").ok().flatten().map(|at| at.as_second())
}

#[async_trait]
impl Source for RetailPosSource {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn streams(&self) -> Vec<String> {
        self.shared.streams().into_iter().map(str::to_owned).collect()
    }

    async fn read(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        let streams = self.shared.streams();
        if !streams.contains(&stream) {
            return Err(ConnectorError::config(format!("retail-pos has no stream `{stream}`")));
        }
        if !self.in_pass {
            self.ensure_reference(true).await?;
            self.in_pass = true;
        }
        let page = match stream {
            "customers" => self.read_x(stream, "/customers", checkpoint).await,
            "sales" => self.read_x(stream, "/sales", checkpoint).await,
            _ => self.read_ecom(stream, checkpoint).await,
        }?;
        if page.last && streams.last() == Some(&stream) {
            self.in_pass = false;
        }
        Ok(page)
    }

    async fn parse_webhook(&mut self, item: &InboxItem) -> Result<Vec<SourceItem>, ConnectorError> {
        self.webhook_items(item).await
    }

    async fn reparse(&mut self, stream: &str, raw: &Value) -> Result<Vec<SourceItem>, ConnectorError> {
        self.ensure_reference(false).await?;
        let records = [raw.clone()];
        match stream {
            "customers" => self.pos_customers(&records).await,
            "sales" => self.sales(&records).await,
            "ecom_customers" => self.ecom_customers(&records).await,
            "ecom_orders" => self.ecom_orders(&records).await,
            other => Err(ConnectorError::permanent(format!("retail-pos has no stream `{other}`: {}", json!(other)))),
        }
    }
}
