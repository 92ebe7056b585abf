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

#[async_trait]
pub trait Source: Send + Sync {
    /// The platform name (config `type`).
    fn platform(&self) -> &'static str;

    /// The streams read in each pass, in dependency order (customers before
    /// orders, orders before refunds).
    fn streams(&self) -> Vec<String>;

    /// Reads the page after `checkpoint` (from the start when `None`).
    async fn read(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError>;

    /// Reaches the platform with the configured credentials (`tillflow check`).
    async fn check(&mut self) -> Result<(), ConnectorError>;

    /// Verifies a webhook before it is stored. Must compare signatures in
    /// constant time and must not have side effects.
    fn verify_webhook(&self, _request: &WebhookRequest) -> WebhookVerdict {
        WebhookVerdict::Unsupported
    }

    /// Turns a stored webhook into records. A source may fetch the full record
    /// (webhook bodies can be partial or stale).
    async fn parse_webhook(&mut self, _item: &InboxItem) -> Result<Vec<SourceItem>, ConnectorError> {
        Ok(Vec::new())
    }

    /// Parses a dead-lettered raw record again (after a fix), for replay.
    fn reparse(&self, _stream: &str, _raw: &serde_json::Value) -> Result<Vec<Record>, String> {
        Err("this source cannot re-parse dead-lettered records".into())
    }
}
