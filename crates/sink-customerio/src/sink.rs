//! The Customer.io `Sink`: events → operations → packed requests → per-item
//! outcomes.

use crate::config::CustomerIoConfig;
use crate::request::{UpdateClock, operation, pack};
use crate::service::{BatchAnswer, TrackService};
use async_trait::async_trait;
use tillflow_core::{ConnectorError, Event, EventKind, ItemOutcome, Sink};
use tillflow_http::{HttpClient, HttpConfig, Tier};

pub struct CustomerIoSink {
    service: TrackService,
    clock: UpdateClock,
}

impl CustomerIoSink {
    pub fn new(config: CustomerIoConfig) -> Self {
        Self::with_http(config, HttpConfig::new(crate::PLATFORM))
    }

    /// As [`new`](Self::new) with a custom HTTP configuration (tests shorten timeouts).
    pub fn with_http(config: CustomerIoConfig, http: HttpConfig) -> Self {
        let rate = config.requests_per_second.max(1);
        let tier = Tier::new("track", rate);
        let base_url = config.base_url();
        Self {
            service: TrackService::new(HttpClient::new(http), base_url, config.site_id, config.api_key, tier),
            clock: UpdateClock::default(),
        }
    }
}

#[async_trait]
impl Sink for CustomerIoSink {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn max_batch(&self, history: bool) -> usize {
        if history { 1000 } else { 100 }
    }

    fn accepts(&self, kind: EventKind) -> bool {
        kind != EventKind::OrderedProduct
    }

    fn wants_person_totals(&self) -> bool {
        true
    }

    async fn deliver(&mut self, batch: &[Event], _history: bool) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut outcomes = vec![ItemOutcome::Delivered; batch.len()];
        let mut operations = Vec::with_capacity(batch.len());
        for (position, event) in batch.iter().enumerate() {
            match operation(event, &self.clock) {
                Ok(operation) => operations.push((position, operation)),
                Err(reason) => outcomes[position] = ItemOutcome::Rejected { reason },
            }
        }
        for request in pack(operations) {
            match self.service.send_batch(request.body).await? {
                BatchAnswer::Accepted { refused } => {
                    for (index, reason) in refused {
                        if let Some(position) = request.positions.get(index) {
                            outcomes[*position] = ItemOutcome::Rejected { reason };
                        }
                    }
                }
                BatchAnswer::Refused(reason) => {
                    for position in &request.positions {
                        outcomes[*position] = ItemOutcome::Rejected { reason: reason.clone() };
                    }
                }
            }
        }
        Ok(outcomes)
    }

    async fn check(&mut self) -> Result<(), ConnectorError> {
        self.service.check().await
    }
}
