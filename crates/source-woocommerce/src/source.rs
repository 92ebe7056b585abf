//! Reading WooCommerce: the orders stream (with each order's refunds), the
//! customers scan, and webhooks.
//!
//! Orders are listed by `modified_after` + `orderby=modified&order=asc` with
//! `offset` paging. An order modified while a pass pages moves to the end of
//! the listing and shifts the ones after it back, so each page re-reads a few
//! records before its position and resumes after the last record it emitted
//! (an *anchor*, `id@date_modified_gmt`); if the shift was larger it looks
//! further back. The next pass starts at this pass's start minus the overlap
//! window. Re-reading is harmless (the ledger drops what was delivered);
//! skipping would lose data.

use crate::config::{AuthMode, WooCommerceConfig};
use crate::mapping;
use crate::wire::{WooCustomer, WooOrder, WooRefund};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::model::Record;
use tillflow_core::source::{
    BadRecord, Checkpoint, InboxItem, Page, Source, SourceItem, WebhookRequest, WebhookVerdict,
};
use tillflow_http::webhook::verify_hmac_sha256_base64;
use tillflow_http::{HttpClient, HttpConfig, Tier};

pub const PER_PAGE: usize = 100;
/// Records re-read before the position on each page.
const LOOK_BACK: usize = 10;
/// Anchors remembered from the end of the previous page.
const ANCHORS: usize = 10;

const TOPICS: [&str; 7] = [
    "order.created",
    "order.updated",
    "order.deleted",
    "order.restored",
    "customer.created",
    "customer.updated",
    "customer.deleted",
];

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct OrdersCursor {
    v: u32,
    /// Lower bound of the pass (GMT, as WooCommerce expects it).
    modified_after: Option<String>,
    /// When the pass began: the next pass starts here minus the overlap.
    pass_started_at: Option<jiff::Timestamp>,
    /// Records of this pass's listing already consumed.
    offset: usize,
    /// `id@date_modified_gmt` of the last records seen.
    anchors: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct CustomersCursor {
    v: u32,
    page: u32,
}

fn cursor<T: for<'de> Deserialize<'de> + Default>(
    checkpoint: Option<&Checkpoint>,
    stream: &str,
) -> Result<T, ConnectorError> {
    match checkpoint {
        None => Ok(T::default()),
        Some(checkpoint) => {
            let version = checkpoint.0.get("v").and_then(serde_json::Value::as_u64).unwrap_or(0);
            if version > 1 {
                return Err(ConnectorError::config(format!(
                    "the {stream} checkpoint has format {version}, newer than this tillflow understands"
                )));
            }
            serde_json::from_value(checkpoint.0.clone())
                .map_err(|e| ConnectorError::config(format!("the {stream} checkpoint is unreadable: {e}")))
        }
    }
}

fn anchor(order: &serde_json::Value) -> String {
    format!(
        "{}@{}",
        order.get("id").map(|v| v.to_string()).unwrap_or_default(),
        order.get("date_modified_gmt").and_then(|v| v.as_str()).unwrap_or("")
    )
}

pub struct WooCommerceSource {
    name: String,
    client: HttpClient,
    api: String,
    consumer_key: SecretString,
    consumer_secret: SecretString,
    webhook_secret: Option<SecretString>,
    auth: AuthMode,
    overlap: Duration,
    tier: Tier,
}

impl WooCommerceSource {
    /// `name` is the configured source name (`shop` in `[sources.shop]`).
    pub fn new(name: &str, config: WooCommerceConfig) -> Self {
        let mut http = HttpConfig::new(crate::PLATFORM);
        http.max_concurrency = 4;
        Self::with_http(name, config, http)
    }

    /// As [`new`](Self::new) with a custom HTTP configuration (tests shorten timeouts).
    pub fn with_http(name: &str, config: WooCommerceConfig, http: HttpConfig) -> Self {
        Self {
            name: name.to_owned(),
            client: HttpClient::new(http),
            api: format!("{}/wp-json/wc/v3", config.base_url.trim_end_matches('/')),
            consumer_key: config.consumer_key,
            consumer_secret: config.consumer_secret,
            webhook_secret: config.webhook_secret,
            auth: config.auth,
            overlap: config.overlap.0,
            tier: Tier::new("wc-api", config.requests_per_second.max(1)),
        }
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(reqwest_headers::HeaderMap, serde_json::Value), ConnectorError> {
        let mut request = self.client.reqwest().get(format!("{}{path}", self.api)).query(query);
        request = match self.auth {
            AuthMode::Basic => {
                request.basic_auth(self.consumer_key.expose_secret(), Some(self.consumer_secret.expose_secret()))
            }
            AuthMode::Query => request.query(&[
                ("consumer_key", self.consumer_key.expose_secret()),
                ("consumer_secret", self.consumer_secret.expose_secret()),
            ]),
        };
        let request = request.build().map_err(|e| ConnectorError::permanent(format!("building a request: {e}")))?;
        Ok(self.client.send_json(&self.tier, request).await?)
    }

    fn bad(stream: &str, reason: String, raw: serde_json::Value) -> SourceItem {
        Err(BadRecord { stream: stream.to_owned(), reason, raw })
    }

    /// Maps one order and fetches its refunds when it has any.
    async fn order_items(&self, raw: serde_json::Value, stream: &str) -> Result<Vec<SourceItem>, ConnectorError> {
        let wire: WooOrder = match serde_json::from_value(raw.clone()) {
            Ok(wire) => wire,
            Err(e) => return Ok(vec![Self::bad(stream, format!("order is not WooCommerce order JSON: {e}"), raw)]),
        };
        let order = match mapping::order(&self.name, &wire) {
            Ok(order) => order,
            Err(reason) => return Ok(vec![Self::bad(stream, reason, raw)]),
        };
        let mut items = Vec::with_capacity(1 + wire.refunds.len());
        if !wire.refunds.is_empty() {
            let (_, refunds) =
                self.get(&format!("/orders/{}/refunds", wire.id), &[("per_page", PER_PAGE.to_string())]).await?;
            for raw_refund in refunds.as_array().cloned().unwrap_or_default() {
                let item = serde_json::from_value::<WooRefund>(raw_refund.clone())
                    .map_err(|e| format!("refund of order {} is not refund JSON: {e}", wire.id))
                    .and_then(|refund| mapping::refund(&self.name, &order, &refund));
                items.push(match item {
                    Ok(refund) => Ok(Record::Refund(refund)),
                    Err(reason) => Self::bad(stream, reason, raw_refund),
                });
            }
        }
        items.insert(0, Ok(Record::Order(order)));
        Ok(items)
    }

    fn customer_item(&self, raw: serde_json::Value, stream: &str) -> SourceItem {
        match serde_json::from_value::<WooCustomer>(raw.clone())
            .map_err(|e| format!("customer is not WooCommerce customer JSON: {e}"))
            .and_then(|wire| mapping::customer(&self.name, &wire))
        {
            Ok(customer) => Ok(Record::Customer(customer)),
            Err(reason) => Self::bad(stream, reason, raw),
        }
    }

    async fn read_orders(&mut self, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        let mut cursor: OrdersCursor = cursor(checkpoint, "orders")?;
        cursor.v = 1;
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
            ];
            if let Some(after) = &cursor.modified_after {
                query.push(("modified_after", after.clone()));
            }
            let (headers, body) = self.get("/orders", &query).await?;
            let listed = body
                .as_array()
                .cloned()
                .ok_or_else(|| ConnectorError::permanent("GET /orders did not return a JSON array"))?;
            let start = if cursor.anchors.is_empty() {
                0
            } else {
                match listed.iter().rposition(|order| cursor.anchors.contains(&anchor(order))) {
                    Some(index) => index + 1,
                    // The listing shifted further than we looked back: look further.
                    None if back < cursor.offset => {
                        back = (back.max(1) * 4).min(cursor.offset);
                        tracing::debug!(source = %self.name, back, "order listing shifted; looking further back");
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
            cursor.offset = offset + listed.len();
            cursor.anchors = listed.iter().rev().take(ANCHORS).map(anchor).collect();
            let last = listed.len() < PER_PAGE || cursor.offset >= total;
            let mut items = Vec::new();
            for raw in listed.into_iter().skip(start) {
                items.extend(self.order_items(raw, "orders").await?);
            }
            let next = if last {
                let overlap = jiff::SignedDuration::try_from(self.overlap).unwrap_or_default();
                OrdersCursor {
                    v: 1,
                    modified_after: Some(mapping::format_gmt(pass_started_at - overlap)),
                    pass_started_at: None,
                    offset: 0,
                    anchors: Vec::new(),
                }
            } else {
                cursor
            };
            let checkpoint = Checkpoint(serde_json::to_value(next).expect("cursor serializes"));
            return Ok(Page { items, checkpoint, last });
        }
    }

    async fn read_customers(&mut self, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        let cursor: CustomersCursor = cursor(checkpoint, "customers")?;
        let page = cursor.page.max(1);
        let query = [
            ("orderby", "id".to_owned()),
            ("order", "asc".to_owned()),
            ("per_page", PER_PAGE.to_string()),
            ("page", page.to_string()),
            ("role", "all".to_owned()),
        ];
        let (headers, body) = self.get("/customers", &query).await?;
        let listed = body
            .as_array()
            .cloned()
            .ok_or_else(|| ConnectorError::permanent("GET /customers did not return a JSON array"))?;
        let total_pages: u32 = headers
            .get("x-wp-totalpages")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(u32::MAX);
        let last = listed.len() < PER_PAGE || page >= total_pages;
        let items = listed.into_iter().map(|raw| self.customer_item(raw, "customers")).collect();
        // Customers have no modified filter: every pass scans them all and the
        // ledger's content hashes tell which changed.
        let next = CustomersCursor { v: 1, page: if last { 1 } else { page + 1 } };
        Ok(Page { items, checkpoint: Checkpoint(serde_json::to_value(next).expect("cursor serializes")), last })
    }
}

/// reqwest's header map, named for readability of signatures above.
mod reqwest_headers {
    pub use tillflow_http::reqwest::header::HeaderMap;
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

    async fn check(&mut self) -> Result<(), ConnectorError> {
        self.get("/orders", &[("per_page", "1".to_owned())]).await.map(|_| ())
    }

    fn verify_webhook(&self, request: &WebhookRequest) -> WebhookVerdict {
        let signature = request.header("x-wc-webhook-signature");
        // WooCommerce pings a new webhook with an unsigned form body and wants
        // exactly 200 back.
        if signature.is_none() && request.body.starts_with(b"webhook_id=") && request.body.len() < 64 {
            return WebhookVerdict::Ping;
        }
        let (Some(signature), Some(secret)) = (signature, &self.webhook_secret) else {
            return WebhookVerdict::Unauthorized;
        };
        if !verify_hmac_sha256_base64(secret, &request.body, signature) {
            return WebhookVerdict::Unauthorized;
        }
        match request.header("x-wc-webhook-topic") {
            Some(topic) if TOPICS.contains(&topic) => WebhookVerdict::Accept,
            Some(topic) => WebhookVerdict::Rejected(format!("topic `{topic}` is not synced")),
            None => WebhookVerdict::Rejected("no X-WC-Webhook-Topic header".into()),
        }
    }

    async fn parse_webhook(&mut self, item: &InboxItem) -> Result<Vec<SourceItem>, ConnectorError> {
        let topic = item
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("x-wc-webhook-topic"))
            .map(|(_, value)| value.as_str())
            .unwrap_or("");
        let body: serde_json::Value = serde_json::from_slice(&item.body)
            .map_err(|e| ConnectorError::permanent(format!("webhook {topic} body is not JSON: {e}")))?;
        match topic {
            // Deletions carry only {"id": N}; nothing to send for them.
            "order.deleted" | "customer.deleted" => Ok(Vec::new()),
            topic if topic.starts_with("order.") => self.order_items(body, "webhook").await,
            topic if topic.starts_with("customer.") => Ok(vec![self.customer_item(body, "webhook")]),
            other => Err(ConnectorError::permanent(format!("webhook topic `{other}` is not synced"))),
        }
    }

    fn reparse(&self, stream: &str, raw: &serde_json::Value) -> Result<Vec<Record>, String> {
        match stream {
            "customers" => serde_json::from_value::<WooCustomer>(raw.clone())
                .map_err(|e| e.to_string())
                .and_then(|wire| mapping::customer(&self.name, &wire))
                .map(|c| vec![Record::Customer(c)]),
            _ => serde_json::from_value::<WooOrder>(raw.clone())
                .map_err(|e| e.to_string())
                .and_then(|wire| mapping::order(&self.name, &wire))
                .map(|o| vec![Record::Order(o)]),
        }
    }
}
