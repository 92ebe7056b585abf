//! The Klaviyo `Sink`: live events and profiles one request each (run
//! concurrently under the endpoint limits), history through bulk jobs with
//! `backfill`, new profiles onto the configured list, nobody subscribed.

use crate::config::KlaviyoConfig;
use crate::request::{
    MAX_EVENTS_PER_JOB, MAX_JOB_BYTES, MAX_PROFILES_PER_JOB, bulk_events_body, bulk_profiles_body, event_body,
    profile_resource,
};
use crate::service::{Failure, KlaviyoService};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use tillflow_core::model::Person;
use tillflow_core::{ConnectorError, Event, EventKind, ItemOutcome, Sink, Subject};
use tillflow_http::{HttpClient, HttpConfig, StandardRateLimitHeaders};

pub struct KlaviyoSink {
    service: Arc<KlaviyoService>,
    list_id: Option<String>,
}

impl KlaviyoSink {
    pub fn new(config: KlaviyoConfig) -> Self {
        Self::with_http(config, HttpConfig::new(crate::PLATFORM))
    }

    /// As [`new`](Self::new) with a custom HTTP configuration (tests shorten timeouts).
    pub fn with_http(config: KlaviyoConfig, mut http: HttpConfig) -> Self {
        http.signals = Some(Arc::new(StandardRateLimitHeaders));
        http.max_concurrency = http.max_concurrency.max(16);
        let service =
            KlaviyoService::new(HttpClient::new(http), config.base_url, config.api_key, config.job_poll_interval.0);
        Self { service: Arc::new(service), list_id: config.new_profiles_list_id }
    }

    fn is_profile(event: &Event) -> bool {
        matches!(event.subject, Subject::Customer { .. }) && event.kind == EventKind::ProfileUpdated
    }

    async fn deliver_live(&self, batch: &[Event], outcomes: &mut [ItemOutcome]) -> Result<(), ConnectorError> {
        let mut tasks = tokio::task::JoinSet::new();
        for (position, event) in batch.iter().enumerate() {
            let service = self.service.clone();
            let body = if Self::is_profile(event) {
                let Subject::Customer { customer } = &event.subject else { unreachable!() };
                Ok((true, serde_json::json!({ "data": profile_resource(customer) })))
            } else {
                event_body(event, false).map(|body| (false, body))
            };
            match body {
                Err(reason) => outcomes[position] = ItemOutcome::Rejected { reason },
                Ok((true, body)) => {
                    tasks.spawn(async move {
                        (
                            position,
                            service.import_profile(&body).await.map(|(id, created)| created.then_some(id).flatten()),
                        )
                    });
                }
                Ok((false, body)) => {
                    tasks.spawn(async move { (position, service.create_event(&body).await.map(|()| None)) });
                }
            }
        }
        let mut created = Vec::new();
        let mut stop = None;
        while let Some(joined) = tasks.join_next().await {
            let (position, result) =
                joined.map_err(|e| ConnectorError::transient(format!("a Klaviyo request task failed: {e}")))?;
            match result {
                Ok(new_profile) => created.extend(new_profile),
                Err(Failure::Refused(reason)) => outcomes[position] = ItemOutcome::Rejected { reason },
                Err(Failure::Stop(error)) => stop = Some(error),
            }
        }
        if let Some(error) = stop {
            return Err(error);
        }
        if let (Some(list), false) = (&self.list_id, created.is_empty()) {
            self.service.add_to_list(list, &created).await.map_err(stop_error)?;
        }
        Ok(())
    }

    async fn deliver_history(&self, batch: &[Event], outcomes: &mut [ItemOutcome]) -> Result<(), ConnectorError> {
        let (profiles, events): (Vec<usize>, Vec<usize>) = (0..batch.len()).partition(|i| Self::is_profile(&batch[*i]));
        // Profiles: bulk import jobs, polled to completion; errors per item.
        for chunk in profiles.chunks(MAX_PROFILES_PER_JOB) {
            let resources: Vec<Value> = chunk
                .iter()
                .map(|i| match &batch[*i].subject {
                    Subject::Customer { customer } => profile_resource(customer),
                    _ => unreachable!("partitioned on profiles"),
                })
                .collect();
            for (positions, resources) in split_by_bytes(chunk, resources) {
                let body = bulk_profiles_body(&resources, self.list_id.as_deref());
                match self.service.bulk_import_profiles(&body).await {
                    Ok(errors) => {
                        for (payload, reason) in errors {
                            for position in &positions {
                                if matches_payload(batch[*position].person(), &payload) {
                                    outcomes[*position] = ItemOutcome::Rejected { reason: reason.clone() };
                                }
                            }
                        }
                    }
                    Err(Failure::Refused(reason)) => {
                        for position in positions {
                            outcomes[position] = ItemOutcome::Rejected { reason: reason.clone() };
                        }
                    }
                    Err(Failure::Stop(error)) => return Err(error),
                }
            }
        }
        // Events: bulk create jobs of at most 1,000, never one unique_id twice
        // in a job (Klaviyo would fail the whole job).
        let mut pending: Vec<usize> = Vec::new();
        let mut ids: HashSet<&str> = HashSet::new();
        let mut jobs: Vec<Vec<usize>> = Vec::new();
        for position in events {
            if pending.len() == MAX_EVENTS_PER_JOB || ids.contains(batch[position].key.as_str()) {
                jobs.push(std::mem::take(&mut pending));
                ids.clear();
            }
            ids.insert(batch[position].key.as_str());
            pending.push(position);
        }
        if !pending.is_empty() {
            jobs.push(pending);
        }
        for job in jobs {
            let mut sendable = Vec::new();
            for position in &job {
                match event_body(&batch[*position], true) {
                    Ok(_) => sendable.push(*position),
                    Err(reason) => outcomes[*position] = ItemOutcome::Rejected { reason },
                }
            }
            for part in split_events_by_bytes(batch, &sendable) {
                let events: Vec<&Event> = part.iter().map(|p| &batch[*p]).collect();
                let body = bulk_events_body(&events, true).map_err(ConnectorError::permanent)?;
                match self.service.bulk_create_events(&body).await {
                    Ok(()) => {}
                    // One bad event fails a whole bulk job: send that job's
                    // events one by one so only the bad one is dead-lettered.
                    Err(Failure::Refused(_)) if part.len() > 1 => {
                        for position in part {
                            let body = event_body(&batch[position], true).map_err(ConnectorError::permanent)?;
                            match self.service.create_event(&body).await {
                                Ok(()) => {}
                                Err(Failure::Refused(reason)) => outcomes[position] = ItemOutcome::Rejected { reason },
                                Err(Failure::Stop(error)) => return Err(error),
                            }
                        }
                    }
                    Err(Failure::Refused(reason)) => {
                        for position in part {
                            outcomes[position] = ItemOutcome::Rejected { reason: reason.clone() };
                        }
                    }
                    Err(Failure::Stop(error)) => return Err(error),
                }
            }
        }
        Ok(())
    }
}

fn stop_error(failure: Failure) -> ConnectorError {
    match failure {
        Failure::Stop(error) => error,
        Failure::Refused(reason) => ConnectorError::permanent(reason),
    }
}

/// Whether an import error's original payload is this person's profile.
fn matches_payload(person: &Person, payload: &Value) -> bool {
    let attributes = if payload["attributes"].is_object() { &payload["attributes"] } else { payload };
    let same = |key: &str, value: Option<&str>| {
        value.is_some_and(|v| attributes[key].as_str().is_some_and(|p| p.eq_ignore_ascii_case(v)))
    };
    same("email", person.email.as_deref()) || same("external_id", person.customer_id.as_deref())
}

/// Splits resources so each job body stays under 5 MB.
fn split_by_bytes(positions: &[usize], resources: Vec<Value>) -> Vec<(Vec<usize>, Vec<Value>)> {
    let mut parts = Vec::new();
    let mut current = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for (position, resource) in positions.iter().zip(resources) {
        let size = serde_json::to_vec(&resource).map(|b| b.len()).unwrap_or(0) + 1;
        if !current.0.is_empty() && bytes + size > MAX_JOB_BYTES - 4096 {
            parts.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.0.push(*position);
        current.1.push(resource);
    }
    if !current.0.is_empty() {
        parts.push(current);
    }
    parts
}

fn split_events_by_bytes(batch: &[Event], positions: &[usize]) -> Vec<Vec<usize>> {
    let mut parts = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for position in positions {
        let size = event_body(&batch[*position], true)
            .map(|b| serde_json::to_vec(&b).map(|v| v.len()).unwrap_or(0))
            .unwrap_or(0);
        if !current.is_empty() && bytes + size > MAX_JOB_BYTES - 4096 {
            parts.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(*position);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

#[async_trait]
impl Sink for KlaviyoSink {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn max_batch(&self, history: bool) -> usize {
        // One bulk job per call: the next job's pages are read and mapped while
        // the job endpoint's rate limit makes the call wait.
        if history { MAX_EVENTS_PER_JOB } else { 100 }
    }

    fn identifies(&self, person: &Person) -> bool {
        person.has_email()
    }

    fn unidentified_reason(&self) -> &'static str {
        "no email"
    }

    fn accepts(&self, kind: EventKind) -> bool {
        matches!(
            kind,
            EventKind::Placed
                | EventKind::OrderedProduct
                | EventKind::Refunded
                | EventKind::Shipped
                | EventKind::ProfileUpdated
        )
    }

    async fn deliver(&mut self, batch: &[Event], history: bool) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut outcomes = vec![ItemOutcome::Delivered; batch.len()];
        if history {
            self.deliver_history(batch, &mut outcomes).await?;
        } else {
            self.deliver_live(batch, &mut outcomes).await?;
        }
        Ok(outcomes)
    }

    async fn check(&mut self) -> Result<(), ConnectorError> {
        self.service.check().await
    }
}
