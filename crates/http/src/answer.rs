//! A platform's final answer to one request, after retries: what the caller
//! (a sink's response classifier) judges.

use crate::redact;

/// A platform's final answer to one request, retries done: a status the
/// caller judges itself (2xx, 3xx, or a 4xx about the request), the headers
/// and the whole body.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body as JSON; `Value::Null` when it is empty or not JSON.
    pub fn json(&self) -> serde_json::Value {
        if self.body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&self.body).unwrap_or_default()
        }
    }

    /// The body shortened and redacted, for a message.
    pub fn snippet(&self) -> String {
        redact::body_snippet(&self.text())
    }
}
