//! Why a command failed, and the exit code that says so: 1 a pipeline could
//! not complete its pass (a platform stayed unavailable), 2 configuration
//! (bad config, unset variable, refused credentials, a newer state file).

use std::fmt;

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn config(message: impl fmt::Display) -> Self {
        Self { code: 2, message: message.to_string() }
    }

    pub fn pipeline(message: impl fmt::Display) -> Self {
        Self { code: 1, message: message.to_string() }
    }
}

/// What a command returns.
pub type CommandResult = Result<(), Failure>;
