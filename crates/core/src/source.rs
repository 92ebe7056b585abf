//! The `Source` trait: paged reading with opaque checkpoints, plus webhook input.

use crate::error::ConnectorError;
use crate::model::Record;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A source's position in one stream. Opaque to the engine; the source owns its
/// shape and must version it (e.g. `{"v":1,"modified_after":"…"}`), because it is
/// persisted and read back by later versions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Checkpoint(pub serde_json::Value);

/// A record the source could not turn into the canonical model. It is
/// dead-lettered with its reason; the pipeline goes on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BadRecord {
    pub stream: String,
    pub reason: String,
    pub raw: serde_json::Value,
}

pub type SourceItem = Result<Record, BadRecord>;

/// One page of a stream.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<SourceItem>,
    /// Where to continue after this page (committed once the page is delivered).
    pub checkpoint: Checkpoint,
    /// This page ends the pass over the stream; the checkpoint then holds the
    /// cursor the next pass starts from.
    pub last: bool,
}

/// An incoming webhook request, as the server received it.
#[derive(Clone, Debug)]
pub struct WebhookRequest {
    /// Header names lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WebhookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The source's judgement of a webhook request, made before anything is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookVerdict {
    /// Valid: store it durably, answer 2xx, process it like a polled record.
    Accept,
    /// A platform handshake or ping: answer 200, store nothing.
    Ping,
    /// Bad or missing signature: answer 401, store nothing.
    Unauthorized,
    /// Not something this source takes (wrong content, unknown topic): 400.
    Rejected(String),
    /// This source has no webhooks.
    Unsupported,
}

/// A webhook kept in the durable inbox.
#[derive(Clone, Debug)]
pub struct InboxItem {
    pub id: i64,
    pub source: String,
    pub received_at: jiff::Timestamp,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The stream a webhook that could not be parsed is dead-lettered under; its
/// raw record is [`InboxItem::to_raw`], and replay parses it again as a webhook.
pub const WEBHOOK_STREAM: &str = "webhook";

impl InboxItem {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The webhook as a dead letter's raw record: its headers and its body
    /// (text when it is UTF-8, else base64 would be needed: bodies are JSON).
    pub fn to_raw(&self) -> serde_json::Value {
        serde_json::json!({
            "source": self.source,
            "received_at": self.received_at.to_string(),
            "headers": self.headers,
            "body": String::from_utf8_lossy(&self.body),
        })
    }

    /// A webhook read back from [`to_raw`](Self::to_raw).
    pub fn from_raw(raw: &serde_json::Value) -> Option<Self> {
        Some(Self {
            id: 0,
            source: raw["source"].as_str()?.to_owned(),
            received_at: raw["received_at"].as_str()?.parse().ok()?,
            headers: serde_json::from_value(raw["headers"].clone()).ok()?,
            body: raw["body"].as_str()?.as_bytes().to_vec(),
        })
    }
}

#[async_trait]
pub trait Source: Send + Sync {
    /// The platform name (config `type`).
    fn platform(&self) -> &'static str;

    /// The streams read in each pass, in dependency order (customers before
    /// orders, orders before refunds).
    fn streams(&self) -> Vec<String>;

    /// Reads the page after `checkpoint` (from the start when `None`).
    async fn read(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError>;

    /// Turns a stored webhook into records. A source may fetch the full record
    /// (webhook bodies can be partial or stale).
    async fn parse_webhook(&mut self, _item: &InboxItem) -> Result<Vec<SourceItem>, ConnectorError> {
        Ok(Vec::new())
    }

    /// Reads a dead-lettered raw record of `stream` again (after a fix),
    /// exactly as a pass would have read it; what still fails comes back as
    /// a bad record with the new reason.
    async fn reparse(&mut self, _stream: &str, _raw: &serde_json::Value) -> Result<Vec<SourceItem>, ConnectorError> {
        Err(ConnectorError::permanent("this source cannot re-read dead-lettered records"))
    }
}
