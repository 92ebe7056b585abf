//! Why a pass did not complete, by what the operator or the runner must do.

use crate::error::{ConnectorError, ErrorClass, StateError};

/// Why a pass did not complete.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Credentials or configuration: the operator must act.
    #[error("configuration error: {0}")]
    Config(String),
    /// The platform failed; nothing unacknowledged was committed.
    #[error("{0}")]
    Transient(String),
    #[error(transparent)]
    State(#[from] StateError),
    /// Shutdown was requested; everything acknowledged so far is committed.
    #[error("interrupted by shutdown")]
    Interrupted,
}

impl From<ConnectorError> for PipelineError {
    fn from(error: ConnectorError) -> Self {
        match error.class {
            ErrorClass::Config => Self::Config(error.message),
            ErrorClass::Transient | ErrorClass::Permanent => Self::Transient(error.message),
        }
    }
}
