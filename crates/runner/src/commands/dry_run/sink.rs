//! The sink of a dry run: wraps a pipeline's real writer, asks it what it
//! would send for each batch (built exactly as `deliver` builds it) and
//! sends nothing; the outcomes it can judge without the platform (an event
//! it cannot encode, one it routes nowhere) are kept, the rest count as sent.

use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use tillflow_core::model::Person;
use tillflow_core::{ConnectorError, Event, EventKind, ItemOutcome, PreviewRequest, Sink};

/// The requests kept for `--show`, in the order they would go.
#[derive(Debug, Default)]
pub struct Shown {
    pub limit: usize,
    pub requests: Vec<(String, PreviewRequest)>,
}

pub struct PreviewSink {
    pipeline: String,
    inner: Box<dyn Sink>,
    shown: Arc<Mutex<Shown>>,
}

impl PreviewSink {
    pub fn new(pipeline: &str, inner: Box<dyn Sink>, shown: Arc<Mutex<Shown>>) -> Self {
        Self { pipeline: pipeline.to_owned(), inner, shown }
    }
}

#[async_trait]
impl Sink for PreviewSink {
    fn platform(&self) -> &'static str {
        self.inner.platform()
    }

    fn max_batch(&self, history: bool) -> usize {
        self.inner.max_batch(history)
    }

    fn identifies(&self, person: &Person) -> bool {
        self.inner.identifies(person)
    }

    fn unidentified_reason(&self) -> &'static str {
        self.inner.unidentified_reason()
    }

    fn accepts(&self, kind: EventKind) -> bool {
        self.inner.accepts(kind)
    }

    fn wants_person_totals(&self) -> bool {
        self.inner.wants_person_totals()
    }

    fn fingerprint(&self, event: &Event) -> Option<String> {
        self.inner.fingerprint(event)
    }

    async fn deliver(&mut self, batch: &[Event], history: bool) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let Some(preview) = self.inner.preview(batch, history) else {
            return Ok(vec![ItemOutcome::Delivered; batch.len()]);
        };
        let mut shown = self.shown.lock().expect("shown requests");
        let room = shown.limit.saturating_sub(shown.requests.len());
        let pipeline = self.pipeline.clone();
        shown.requests.extend(preview.requests.into_iter().take(room).map(|request| (pipeline.clone(), request)));
        Ok(preview.outcomes)
    }
}
