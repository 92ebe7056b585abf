//! A minimal HTTP sink ("recorder") and the mock platform it talks to.
//!
//! It is the reference implementation of the sink anatomy and of a
//! [`SinkHarness`](crate::sink_suite::SinkHarness): the conformance suites test
//! themselves against it, and the crash-and-resume tests use it because it
//! needs no platform credentials. Protocol: `POST {base}/v1/batch` with
//! `{"events":[{"id","key","name","history","timestamp"}]}`; the answer
//! `{"errors":[{"index","reason"}]}` lists the items it refused.

use crate::mock::{Fault, MockPlatform};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::{ConnectorError, Event, ItemOutcome, Sink};
use tillflow_http::{HttpClient, HttpConfig, RetryConfig, Tier};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BATCH_TIER: Tier = Tier::unlimited("batch");

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct WireEvent {
    pub id: String,
    pub key: String,
    pub name: String,
    pub history: bool,
    pub timestamp: i64,
}

#[derive(Serialize, Deserialize, Default)]
struct WireBatch {
    events: Vec<WireEvent>,
}

#[derive(Serialize, Deserialize, Default)]
struct WireErrors {
    errors: Vec<WireError>,
}

#[derive(Serialize, Deserialize)]
struct WireError {
    index: usize,
    reason: String,
}

pub struct RecorderSink {
    client: HttpClient,
    base_url: String,
    /// A test value, not a secret.
    token: String,
    batch_size: usize,
}

impl RecorderSink {
    /// Short timeouts and retry delays so tests stay fast.
    pub fn new(base_url: &str, token: &str, batch_size: usize) -> Self {
        let mut config = HttpConfig::new("recorder");
        config.attempt_timeout = Duration::from_millis(500);
        config.retry = RetryConfig {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            ..RetryConfig::default()
        };
        Self {
            client: HttpClient::new(config),
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            batch_size,
        }
    }

    pub fn event_id(event: &Event) -> String {
        event.key.ulid(event.occurred_at)
    }
}

#[async_trait]
impl Sink for RecorderSink {
    fn platform(&self) -> &'static str {
        "recorder"
    }

    fn max_batch(&self, _history: bool) -> usize {
        self.batch_size
    }

    async fn deliver(&mut self, batch: &[Event], history: bool) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let body = WireBatch {
            events: batch
                .iter()
                .map(|event| WireEvent {
                    id: Self::event_id(event),
                    key: event.key.to_string(),
                    name: event.kind.as_str().to_owned(),
                    history,
                    timestamp: event.occurred_at.as_second(),
                })
                .collect(),
        };
        let request = self
            .client
            .reqwest()
            .post(format!("{}/v1/batch", self.base_url))
            .bearer_auth(&self.token)
            .json(&body)
            .build()
            .map_err(|e| ConnectorError::permanent(format!("building the batch request: {e}")))?;
        let (_, answer): (_, WireErrors) = self.client.send_json(&BATCH_TIER, request).await?;
        let mut outcomes = vec![ItemOutcome::Delivered; batch.len()];
        for error in answer.errors {
            if let Some(slot) = outcomes.get_mut(error.index) {
                *slot = ItemOutcome::Rejected { reason: error.reason };
            }
        }
        Ok(outcomes)
    }

    async fn check(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// The recorder platform's behaviour on a wiremock server.
struct RecorderResponder {
    platform: Arc<MockPlatform>,
}

impl Respond for RecorderResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let batch: WireBatch = match serde_json::from_slice(&request.body) {
            Ok(batch) => batch,
            Err(e) => return ResponseTemplate::new(400).set_body_string(format!("bad body: {e}")),
        };
        let ids: Vec<String> = batch.events.iter().map(|e| e.id.clone()).collect();
        let fault = self.platform.next_fault();
        if let Some(fault) = &fault
            && !matches!(fault, Fault::AnswerLost)
        {
            return fault.response();
        }
        let rejected = self.platform.rejected_among(&ids);
        let accepted: Vec<String> =
            ids.iter().enumerate().filter(|(i, _)| !rejected.contains(i)).map(|(_, id)| id.clone()).collect();
        self.platform.accept(accepted);
        if let Some(fault) = fault {
            return fault.response();
        }
        let errors = rejected.into_iter().map(|index| WireError { index, reason: "invalid event".into() }).collect();
        ResponseTemplate::new(200).set_body_json(WireErrors { errors })
    }
}

/// Mounts the recorder platform on `server`; requests need `Bearer {token}`.
pub async fn mount_recorder(server: &MockServer, token: &str, platform: Arc<MockPlatform>) {
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(RecorderResponder { platform })
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/batch"))
        .respond_with(ResponseTemplate::new(401).set_body_string("{\"error\":\"unauthorized\"}"))
        .mount(server)
        .await;
}

/// The recorder as a [`SinkHarness`](crate::sink_suite::SinkHarness).
pub struct RecorderHarness;

#[async_trait]
impl crate::sink_suite::SinkHarness for RecorderHarness {
    async fn mount(&self, server: &MockServer, platform: Arc<MockPlatform>) {
        mount_recorder(server, "test-token", platform).await;
    }
    fn sink(&self, base_url: &str) -> Box<dyn Sink> {
        Box::new(RecorderSink::new(base_url, "test-token", 7))
    }
    fn id_of(&self, event: &Event) -> Option<String> {
        Some(RecorderSink::event_id(event))
    }
}
