//! The pipeline engine: source pages → events → ledger dedupe → rules → sink
//! batches → commit (ledger + checkpoint) only after the sink acknowledged.
//!
//! Memory is bounded by a few pages and a batch: a reader task reads ahead at
//! most `read_ahead_pages` pages through a bounded channel, whatever the
//! history size, and the pages waiting there are processed together. One
//! concern per module: `pass` (streams, pages, the inbox), `totals`,
//! `forgotten`, `select`, `pending`, `deliver`, `replay`, `report`, `error`.

mod deliver;
mod error;
mod forgotten;
mod pass;
mod pending;
mod replay;
mod report;
mod select;
mod totals;

pub use error::PipelineError;
pub use report::{NoProgress, PassReport, Progress};

use crate::events::DeriveContext;
use crate::failpoint::Failpoint;
use crate::rules::Rules;
use crate::sink::Sink;
use crate::source::Source;
use crate::state::StateStore;
use jiff::Timestamp;
use std::sync::Arc;
use tokio::sync::watch;

pub struct PipelineOptions {
    pub read_ahead_pages: usize,
    pub failpoint: Arc<Failpoint>,
    /// Flips to `true` when the process is asked to stop.
    pub shutdown: watch::Receiver<bool>,
    pub progress: Arc<dyn Progress>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        // A sender that is never used: the pipeline just never sees a shutdown.
        let (_sender, receiver) = watch::channel(false);
        Self {
            read_ahead_pages: 9,
            failpoint: Arc::new(Failpoint::disarmed()),
            shutdown: receiver,
            progress: Arc::new(NoProgress),
        }
    }
}

pub struct Pipeline {
    name: String,
    source_name: String,
    source: Option<Box<dyn Source>>,
    sink: Box<dyn Sink>,
    state: Arc<dyn StateStore>,
    rules: Rules,
    options: PipelineOptions,
    /// Asked of the state once: the moment a pipeline first started never
    /// moves while it runs. Only `tillflow state reset` forgets it, and that
    /// must hold the pipeline first (SQLite's writer lock, Postgres' lease),
    /// which a running pipeline does not let go.
    context: Option<DeriveContext>,
}

impl Pipeline {
    pub fn new(
        name: impl Into<String>,
        source_name: impl Into<String>,
        source: Box<dyn Source>,
        sink: Box<dyn Sink>,
        state: Arc<dyn StateStore>,
        rules: Rules,
        options: PipelineOptions,
    ) -> Self {
        Self {
            name: name.into(),
            source_name: source_name.into(),
            source: Some(source),
            sink,
            state,
            rules,
            options,
            context: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What derivation needs, asked of the state on the first pass only: a
    /// webhook round asked it every time, a write and a read that waited
    /// their turn on SQLite's one connection behind the webhooks being stored.
    pub(super) async fn context(&mut self) -> Result<DeriveContext, PipelineError> {
        if let Some(context) = self.context {
            return Ok(context);
        }
        // Whole seconds: platforms stamp records to the second, so anything
        // stamped in the second the pipeline first started counts as live.
        let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
        let pipeline_started_at = self.state.pipeline_started_at(&self.name, now).await?;
        let context = DeriveContext { pipeline_started_at };
        self.context = Some(context);
        Ok(context)
    }

    pub(super) fn source_mut(&mut self) -> &mut Box<dyn Source> {
        self.source.as_mut().expect("the source is back after every stream")
    }
}
