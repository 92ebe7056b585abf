//! What Customer.io's answer to a batch means for each operation: 200 all
//! accepted; 207 some refused (`errors[].batch_index`); 400 the whole request
//! refused (every operation takes the reason).

use crate::request::TrackRoute;
use serde::Deserialize;
use tillflow_core::Event;
use tillflow_http::Answer;
use tillflow_kit::sink::{ItemVerdict, ResponseClassifier, Verdict};

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<OperationError>,
}

#[derive(Debug, Deserialize)]
struct OperationError {
    batch_index: Option<usize>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    message: String,
}

impl OperationError {
    fn describe(&self) -> String {
        let mut text = String::new();
        if !self.field.is_empty() {
            text.push_str(&self.field);
            text.push_str(": ");
        }
        text.push_str(if self.message.is_empty() { &self.reason } else { &self.message });
        if !self.reason.is_empty() && !self.message.is_empty() {
            text.push_str(&format!(" ({})", self.reason));
        }
        text
    }
}

#[derive(Debug, Default)]
pub struct TrackAnswers;

impl ResponseClassifier<TrackRoute> for TrackAnswers {
    fn classify(&self, _route: TrackRoute, answer: &Answer, items: &[&Event]) -> Verdict {
        let body: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
        match answer.status {
            207 => {
                let mut verdicts = vec![ItemVerdict::Accepted; items.len()];
                for error in &body.errors {
                    if let Some(slot) = error.batch_index.and_then(|index| verdicts.get_mut(index)) {
                        *slot = ItemVerdict::Rejected(error.describe());
                    }
                }
                Verdict::Items(verdicts)
            }
            status if (200..300).contains(&status) => Verdict::Accepted,
            status => {
                let reason = if body.errors.is_empty() {
                    answer.snippet()
                } else {
                    body.errors.iter().map(OperationError::describe).collect::<Vec<_>>().join("; ")
                };
                Verdict::Refused(format!("Customer.io refused the batch (HTTP {status}): {reason}"))
            }
        }
    }
}
