//! The one error type connectors return, classified by what the engine should do.

use std::fmt;

/// What the engine does with a connector failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Credentials or configuration are wrong (401/403, bad base URL): stop the
    /// pipeline with the message; retrying cannot help.
    Config,
    /// The platform is unavailable or the retry budget ran out: abandon the pass
    /// without committing; the next pass resumes from the last checkpoint.
    Transient,
    /// The request itself was wrong; for a single item the engine dead-letters it.
    Permanent,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorError {
    pub class: ErrorClass,
    /// Human readable, never containing a secret.
    pub message: String,
}

impl ConnectorError {
    pub fn config(message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Config, message: message.into() }
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Transient, message: message.into() }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Permanent, message: message.into() }
    }
    /// Prefixes the message with where it happened.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectorError {}

/// A failure of the state store. Always fatal for the pass: without durable
/// state nothing may be sent.
#[derive(Debug, thiserror::Error)]
#[error("state store: {0}")]
pub struct StateError(pub String);

impl StateError {
    pub fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }
}
