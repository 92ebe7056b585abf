//! Reading WooCommerce: the orders stream (with each order's refunds), the
//! customers scan, webhooks, and dead-lettered records read again.
//!
//! Orders are listed by `modified_after` + `orderby=modified&order=asc` with
//! `offset` paging. An order modified while a pass pages moves to the end of
//! the listing and shifts the ones after it back, so each page re-reads a few
//! records before its position and resumes after the last record it emitted
//! (an *anchor*, `id@date_modified_gmt`); if the shift was larger it looks
//! further back. The next pass starts at this pass's start minus the overlap
//! window. Re-reading is harmless (the ledger drops what was delivered);
//! skipping would lose data.

use crate::client::WooClient;
use crate::mapping;
use crate::wire::{CUSTOMER_FIELDS, ORDER_FIELDS, REFUND_FIELDS, WooCustomer, WooOrder, WooRefund};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;
use tillflow_core::ConnectorError;
use tillflow_core::model::Record;
use tillflow_core::model::Text;
use tillflow_core::source::{BadRecord, Checkpoint, InboxItem, Page, Source, SourceItem};
use tillflow_http::json_array::Element;
use tillflow_kit::source::{Cursor, Loose, decode, encode, plausible_time};

pub const PER_PAGE: usize = 100;
/// Records re-read before the position on each page.
const LOOK_BACK: usize = 10;
/// Anchors remembered from the end of the previous page.
const ANCHORS: usize = 10;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct OrdersCursor {
    /// Lower bound of the pass (GMT, as WooCommerce expects it).
    modified_after: Option<String>,
    /// When the pass began: the next pass starts here minus the overlap.
    pass_started_at: Option<jiff::Timestamp>,
    /// Records of this pass's listing already consumed.
    offset: usize,
    /// `id@date_modified_gmt` of the last records seen.
    anchors: Vec<String>,
}

impl Cursor for OrdersCursor {
    const VERSION: u32 = 1;

    fn check(&self) -> Result<(), String> {
        self.pass_started_at.map_or(Ok(()), |at| plausible_time("pass_started_at", at))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct CustomersCursor {
    page: u32,
}

impl Cursor for CustomersCursor {
    const VERSION: u32 = 1;
}

/// What an anchor is made of, read leniently even from an order that does
/// not map.
#[derive(Deserialize)]
struct AnchorFields {
    #[serde(default)]
    id: Loose,
    #[serde(default)]
    date_modified_gmt: Loose,
}

/// `id@date_modified_gmt`: from the order already decoded, else read
/// leniently from its JSON (the same text either way).
fn anchor(raw: Element<'_>, decoded: Option<&WooOrder>) -> String {
    if let Some(order) = decoded {
        // Joined, not formatted: an anchor is made for every order read.
        let id = Text::unsigned(order.id);
        return [id.as_str(), "@", order.date_modified_gmt.as_deref().unwrap_or_default()].concat();
    }
    match serde_json::from_str::<AnchorFields>(raw.text()) {
        Ok(fields) => [fields.id.as_str(), "@", fields.date_modified_gmt.as_str()].concat(),
        Err(_) => String::from("?"),
    }
}

/// A record that could not be read, kept whole for the dead letter.
fn bad(stream: &str, reason: String, raw: Element<'_>) -> SourceItem {
    let raw = raw.text();
    let raw = serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()));
    Err(BadRecord { stream: stream.to_owned(), reason, raw })
}

/// Reads one shop for one pipeline.
pub struct WooCommerceSource {
    client: Arc<WooClient>,
}

impl WooCommerceSource {
    pub fn new(client: Arc<WooClient>) -> Self {
        Self { client }
    }

    /// Maps one order and fetches its refunds when it has any.
    async fn order_items(
        &self,
        raw: Element<'_>,
        decoded: serde_json::Result<WooOrder<'_>>,
        stream: &str,
    ) -> Result<Vec<SourceItem>, ConnectorError> {
        let mut items = Vec::with_capacity(1);
        self.push_order_items(raw, decoded, stream, &mut items).await?;
        Ok(items)
    }

    /// [`Self::order_items`] onto the end of a page's `items`: a listing's
    /// orders go straight into the page, not each through a vector of its own.
    async fn push_order_items(
        &self,
        raw: Element<'_>,
        decoded: serde_json::Result<WooOrder<'_>>,
        stream: &str,
        items: &mut Vec<SourceItem>,
    ) -> Result<(), ConnectorError> {
        let wire = match decoded {
            Ok(wire) => wire,
            Err(e) => {
                items.push(bad(stream, format!("order is not WooCommerce order JSON: {e}"), raw));
                return Ok(());
            }
        };
        let order = match mapping::order(&self.client.name, &wire) {
            Ok(order) => order,
            Err(reason) => {
                items.push(bad(stream, reason, raw));
                return Ok(());
            }
        };
        if wire.refunds.is_empty() {
            items.push(Ok(Record::Order(order)));
            return Ok(());
        }
        let query = [("per_page", PER_PAGE.to_string()), ("_fields", REFUND_FIELDS.clone())];
        let (_, listing) = self.client.list(&format!("/orders/{}/refunds", wire.id), &query).await?;
        let mut refunds = Vec::with_capacity(wire.refunds.len());
        for (raw_refund, refund) in self.client.decode_each::<WooRefund>(&listing)? {
            let item = refund
                .map_err(|e| format!("refund of order {} is not refund JSON: {e}", wire.id))
                .and_then(|refund| mapping::refund(&self.client.name, &order, &refund));
            refunds.push(match item {
                Ok(refund) => Ok(Record::Refund(refund)),
                Err(reason) => bad(stream, reason, raw_refund),
            });
        }
        items.push(Ok(Record::Order(order)));
        items.extend(refunds);
        Ok(())
    }

    fn customer_item(
        &self,
        raw: Element<'_>,
        decoded: serde_json::Result<WooCustomer<'_>>,
        stream: &str,
    ) -> SourceItem {
        match decoded
            .map_err(|e| format!("customer is not WooCommerce customer JSON: {e}"))
            .and_then(|wire| mapping::customer(&self.client.name, &wire))
        {
            Ok(customer) => Ok(Record::Customer(customer)),
            Err(reason) => bad(stream, reason, raw),
        }
    }

    async fn read_orders(&mut self, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        let mut cursor: OrdersCursor = decode(checkpoint, "orders")?;
        let pass_started_at = *cursor.pass_started_at.get_or_insert_with(jiff::Timestamp::now);
        let mut back = if cursor.anchors.is_empty() { 0 } else { LOOK_BACK.min(cursor.offset) };
        loop {
            let offset = cursor.offset - back;
            let mut query = vec![
                ("dates_are_gmt", "true".to_owned()),
                ("orderby", "modified".to_owned()),
                ("order", "asc".to_owned()),
                ("per_page", PER_PAGE.to_string()),
                ("status", "any".to_owned()),
                ("offset", offset.to_string()),
                ("_fields", ORDER_FIELDS.clone()),
            ];
            if let Some(after) = &cursor.modified_after {
                query.push(("modified_after", after.clone()));
            }
            let (headers, listing) = self.client.list("/orders", &query).await?;
            // Each order is decoded once, for its anchor and its record.
            let listed = self.client.decode_each::<WooOrder>(&listing)?;
            let anchors: Vec<String> = listed.iter().map(|(raw, order)| anchor(*raw, order.as_ref().ok())).collect();
            let start = if cursor.anchors.is_empty() {
                0
            } else {
                match anchors.iter().rposition(|seen| cursor.anchors.contains(seen)) {
                    Some(index) => index + 1,
                    // The listing shifted further than we looked back: look further.
                    None if back < cursor.offset => {
                        back = back.max(1).saturating_mul(4).min(cursor.offset);
                        tracing::debug!(source = %self.client.name, back, "order listing shifted; looking further back");
                        continue;
                    }
                    None => 0,
                }
            };
            let total: usize = headers
                .get("x-wp-total")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(usize::MAX);
            cursor.offset = offset.saturating_add(listed.len());
            cursor.anchors = anchors.iter().rev().take(ANCHORS).cloned().collect();
            let last = listed.len() < PER_PAGE || cursor.offset >= total;
            let mut items = Vec::with_capacity(listed.len());
            for (raw, order) in listed.into_iter().skip(start) {
                self.push_order_items(raw, order, "orders", &mut items).await?;
            }
            let next = if last {
                let overlap = jiff::SignedDuration::try_from(self.client.overlap).unwrap_or_default();
                OrdersCursor {
                    modified_after: Some(mapping::format_gmt(pass_started_at - overlap)),
                    ..OrdersCursor::default()
                }
            } else {
                cursor
            };
            return Ok(Page { items, checkpoint: encode(&next), last });
        }
    }

    async fn read_customers(&mut self, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        let cursor: CustomersCursor = decode(checkpoint, "customers")?;
        let page = cursor.page.max(1);
        let query = [
            ("orderby", "id".to_owned()),
            ("order", "asc".to_owned()),
            ("per_page", PER_PAGE.to_string()),
            ("page", page.to_string()),
            ("role", "all".to_owned()),
            ("_fields", CUSTOMER_FIELDS.clone()),
        ];
        let (headers, listing) = self.client.list("/customers", &query).await?;
        let listed = self.client.decode_each::<WooCustomer>(&listing)?;
        let total_pages: u32 = headers
            .get("x-wp-totalpages")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(u32::MAX);
        let last = listed.len() < PER_PAGE || page >= total_pages;
        let items = listed.into_iter().map(|(raw, customer)| self.customer_item(raw, customer, "customers")).collect();
        // Customers have no modified filter: every pass scans them all and the
        // ledger's content hashes tell which changed.
        let next = CustomersCursor { page: if last { 1 } else { page.saturating_add(1) } };
        Ok(Page { items, checkpoint: encode(&next), last })
    }
}

#[async_trait]
impl Source for WooCommerceSource {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn streams(&self) -> Vec<String> {
        vec!["customers".into(), "orders".into()]
    }

    async fn read(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        match stream {
            "orders" => self.read_orders(checkpoint).await,
            "customers" => self.read_customers(checkpoint).await,
            other => Err(ConnectorError::config(format!("woocommerce has no stream `{other}`"))),
        }
    }

    async fn parse_webhook(&mut self, item: &InboxItem) -> Result<Vec<SourceItem>, ConnectorError> {
        let topic = item.header("x-wc-webhook-topic").unwrap_or("");
        let body: Box<RawValue> = serde_json::from_slice(&item.body)
            .map_err(|e| ConnectorError::permanent(format!("webhook {topic} body is not JSON: {e}")))?;
        match topic {
            // Deletions carry only {"id": N}; nothing to send for them.
            "order.deleted" | "customer.deleted" => Ok(Vec::new()),
            topic if topic.starts_with("order.") => {
                self.order_items(Element::alone(body.get()), serde_json::from_str(body.get()), "orders").await
            }
            topic if topic.starts_with("customer.") => {
                Ok(vec![self.customer_item(Element::alone(body.get()), serde_json::from_str(body.get()), "customers")])
            }
            other => Err(ConnectorError::permanent(format!("webhook topic `{other}` is not synced"))),
        }
    }

    async fn reparse(&mut self, stream: &str, raw: &serde_json::Value) -> Result<Vec<SourceItem>, ConnectorError> {
        let raw = serde_json::value::to_raw_value(raw).expect("JSON values serialize");
        match stream {
            "customers" => {
                Ok(vec![self.customer_item(Element::alone(raw.get()), serde_json::from_str(raw.get()), stream)])
            }
            "orders" => self.order_items(Element::alone(raw.get()), serde_json::from_str(raw.get()), stream).await,
            other => Err(ConnectorError::permanent(format!("woocommerce has no stream `{other}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anchor_from_the_decoded_order_is_the_one_read_from_its_json() {
        // Checkpoints hold anchors written either way; they must match.
        for json in [
            r#"{"id": 727, "date_modified_gmt": "2026-03-01T10:00:00"}"#,
            r#"{"id": 728, "date_modified_gmt": null}"#,
            r#"{"id": 729}"#,
        ] {
            let order: WooOrder = serde_json::from_str(json).unwrap();
            assert_eq!(anchor(Element::alone(json), Some(&order)), anchor(Element::alone(json), None), "{json}");
        }
        assert_eq!(anchor(Element::alone(r#"{"id": "730", "total": []}"#), None), "730@");
    }
}
