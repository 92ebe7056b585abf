//! Per-pipeline rules: which derived events are not sent, and why.

use crate::events::Event;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an event was not sent. Reasons are counted in `tillflow status`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// The order's total is zero.
    ZeroTotal,
    /// The pipeline requires an email and the person has none.
    NoEmail,
    /// The sink has no way to identify the person (no id, no email, …).
    NoIdentifier,
    /// A sink-specific reason, e.g. "not shipped to a customer".
    Other(String),
}

impl SkipReason {
    pub fn as_str(&self) -> &str {
        match self {
            Self::ZeroTotal => "zero total",
            Self::NoEmail => "no email",
            Self::NoIdentifier => "no identifier",
            Self::Other(reason) => reason,
        }
    }
    pub fn parse(text: &str) -> Self {
        match text {
            "zero total" => Self::ZeroTotal,
            "no email" => Self::NoEmail,
            "no identifier" => Self::NoIdentifier,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rules of one pipeline (config `[[pipelines]]` keys of the same names).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Orders worth 0 produce no events.
    pub skip_zero_total: bool,
    /// Events about a person without an email are not sent.
    pub require_email: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self { skip_zero_total: true, require_email: false }
    }
}

impl Rules {
    /// `identifies` is the sink's answer to "can you tell who this is?", and
    /// `unidentified` the reason it gives when it cannot.
    pub fn verdict(&self, event: &Event, identifies: bool, unidentified: &str) -> Option<SkipReason> {
        if let Some(reason) = event.order().and_then(|order| order.excluded.as_deref()) {
            return Some(SkipReason::parse(reason));
        }
        if !event.about_person() {
            return None;
        }
        if self.skip_zero_total && event.order().is_some_and(|order| order.totals.total.is_zero()) {
            return Some(SkipReason::ZeroTotal);
        }
        if self.require_email && !event.person().has_email() {
            return Some(SkipReason::NoEmail);
        }
        if !identifies {
            return Some(SkipReason::parse(unidentified));
        }
        None
    }
}
