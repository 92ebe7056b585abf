//! How a request finally failed, after the retry layer gave up.

use crate::answer::Answer;
use std::time::Duration;
use tillflow_core::ConnectorError;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// 401 or 403: credentials or permissions are wrong. Never retried.
    #[error("{platform} refused the credentials (HTTP {status}): {message}")]
    Unauthorized { platform: &'static str, status: u16, message: String },
    /// A 4xx about the request itself (validation, not found, conflict…);
    /// `answer` is the whole answer when the platform gave one.
    #[error("{platform} rejected the request (HTTP {status}): {message}")]
    Rejected { platform: &'static str, status: u16, message: String, answer: Option<Box<Answer>> },
    /// 429/5xx/timeouts/connection errors that outlasted the retries.
    #[error("{platform} is unavailable: {message}")]
    Unavailable { platform: &'static str, message: String },
    /// The platform asked us to wait longer than the configured maximum.
    #[error("{platform} asked to wait {wait:?}, more than the {limit:?} we accept; resuming on the next pass")]
    WaitTooLong { platform: &'static str, wait: Duration, limit: Duration },
    /// The request could not even be built (bad URL, body not serializable).
    #[error("{platform}: invalid request: {message}")]
    Invalid { platform: &'static str, message: String },
}

impl HttpError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. } | Self::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<HttpError> for ConnectorError {
    fn from(error: HttpError) -> Self {
        let message = error.to_string();
        match error {
            HttpError::Unauthorized { .. } => ConnectorError::config(message),
            HttpError::Rejected { .. } | HttpError::Invalid { .. } => ConnectorError::permanent(message),
            HttpError::Unavailable { .. } | HttpError::WaitTooLong { .. } => ConnectorError::transient(message),
        }
    }
}
