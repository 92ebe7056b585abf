//! Response classification (Vector's `RetryLogic` is the model): what a
//! platform's answer means for each item of the request. Retrying is the
//! HTTP stack's business; this decides delivered, dead-lettered or "exists:
//! update instead".

use tillflow_core::Event;
use tillflow_http::Answer;

/// What became of one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemVerdict {
    Accepted,
    /// Refused for good: dead-lettered with the reason.
    Rejected(String),
    /// It already exists; `detail` (e.g. the existing id) lets the request
    /// builder turn it into an update.
    Conflict(String),
}

/// What became of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every item.
    Accepted,
    /// One verdict per item, in request order (a 2xx with failures inside).
    Items(Vec<ItemVerdict>),
    /// The whole request was refused with this reason.
    Refused(String),
    /// The whole request was refused, for its size or for items inside it
    /// the answer does not point at: each half goes again on its own, so
    /// only the bad items end up refused (with this reason when alone).
    Split(String),
}

pub trait ResponseClassifier<R>: Send + Sync + 'static {
    /// Judges `answer` to a request of family `route` carrying `items`.
    fn classify(&self, route: R, answer: &Answer, items: &[&Event]) -> Verdict;
}

/// The usual refusal text: who refused, the status, and the answer's body
/// (shortened, emails redacted).
pub fn refused_reason(platform: &str, answer: &Answer) -> String {
    format!("{platform} refused it (HTTP {}): {}", answer.status, answer.snippet())
}
