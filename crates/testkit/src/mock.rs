//! Mock-platform helpers: fault injection and a record of what the platform
//! accepted, shared by every sink harness.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use wiremock::ResponseTemplate;

/// A fault the mock platform answers one request with.
#[derive(Clone, Debug)]
pub enum Fault {
    /// An HTTP status with an empty body (e.g. 500, 503, 401).
    Status(u16),
    /// 429 with `Retry-After` in seconds.
    TooManyRequests { retry_after_secs: u64 },
    /// The platform processes the request but the answer never reaches the
    /// client (it arrives after the client's attempt timeout): the case where
    /// only idempotency keys prevent a double send.
    AnswerLost,
}

impl Fault {
    pub fn response(&self) -> ResponseTemplate {
        match self {
            Fault::Status(status) => ResponseTemplate::new(*status),
            Fault::TooManyRequests { retry_after_secs } => {
                ResponseTemplate::new(429).insert_header("Retry-After", retry_after_secs.to_string().as_str())
            }
            Fault::AnswerLost => ResponseTemplate::new(200).set_delay(Duration::from_secs(30)),
        }
    }
}

/// Shared between a test and the mock platform's responders.
#[derive(Default)]
pub struct MockPlatform {
    faults: Mutex<VecDeque<Fault>>,
    reject: Mutex<HashSet<String>>,
    existing: Mutex<HashSet<String>>,
    accepted: Mutex<Vec<Vec<String>>>,
    updated: Mutex<Vec<String>>,
}

impl MockPlatform {
    pub fn new() -> Self {
        Self::default()
    }
    /// The next requests get these faults, one each, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }
    pub fn next_fault(&self) -> Option<Fault> {
        self.faults.lock().unwrap().pop_front()
    }
    /// Items with this id are refused individually (partial failure).
    pub fn reject_id(&self, id: impl Into<String>) {
        self.reject.lock().unwrap().insert(id.into());
    }
    /// Positions in `ids` that are to be refused.
    pub fn rejected_among(&self, ids: &[String]) -> Vec<usize> {
        let reject = self.reject.lock().unwrap();
        ids.iter().enumerate().filter(|(_, id)| reject.contains(*id)).map(|(i, _)| i).collect()
    }
    /// Items with this id already exist at the platform: it answers "exists"
    /// (a conflict) and takes an update instead.
    pub fn exists(&self, id: impl Into<String>) {
        self.existing.lock().unwrap().insert(id.into());
    }
    /// Positions in `ids` that already exist.
    pub fn existing_among(&self, ids: &[String]) -> Vec<usize> {
        let existing = self.existing.lock().unwrap();
        ids.iter().enumerate().filter(|(_, id)| existing.contains(*id)).map(|(i, _)| i).collect()
    }
    /// Records an update of an existing item.
    pub fn update(&self, id: String) {
        self.updated.lock().unwrap().push(id);
    }
    /// Every id updated, in arrival order.
    pub fn updated(&self) -> Vec<String> {
        self.updated.lock().unwrap().clone()
    }
    /// Records ids the platform took (a retransmission records them again).
    pub fn accept(&self, ids: impl IntoIterator<Item = String>) {
        self.accepted.lock().unwrap().push(ids.into_iter().collect());
    }
    /// Every id accepted, in arrival order.
    pub fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().iter().flatten().cloned().collect()
    }
    /// The ids accepted, one entry per request.
    pub fn accepted_batches(&self) -> Vec<Vec<String>> {
        self.accepted.lock().unwrap().clone()
    }
}
