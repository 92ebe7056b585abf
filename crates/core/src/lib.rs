//! tillflow-core: the canonical model, the Source/Sink/StateStore traits, event
//! derivation, rules, idempotency keys and the pipeline engine.
//!
//! Core does no network or database I/O and knows no platform; connectors and
//! stores implement its traits.

pub mod duration;
pub mod error;
pub mod events;
pub mod exact_forms;
pub mod failpoint;
pub mod fingerprint;
pub mod forget;
pub mod hex;
pub mod json_text;
pub mod keys;
pub mod model;
pub mod persist;
pub mod pipeline;
pub mod rules;
pub mod running_totals;
pub mod sink;
pub mod source;
pub mod state;
pub mod stored;
pub mod subject;
mod text;

pub use error::{ConnectorError, ErrorClass, StateError};
pub use events::{DeriveContext, Event, EventKind, Subject, derive_accepted, derive_events};
pub use keys::{IdempotencyKey, content_hash};
pub use pipeline::{PassReport, Pipeline, PipelineError, PipelineOptions, Progress};
pub use rules::{Rules, SkipReason};
pub use sink::{ItemOutcome, Preview, PreviewRequest, Sink};
pub use source::{
    BadRecord, Checkpoint, InboxItem, Page, Source, SourceItem, WEBHOOK_STREAM, WebhookRequest, WebhookVerdict,
};
pub use state::StateStore;

// Re-exported so connectors use the same versions as core.
pub use jiff;
pub use rust_decimal;
