//! Replaying dead letters after a fix: sink rejections delivered again,
//! source records read again and taken through the same page path as a pass.

use super::pass::FactsWritten;
use super::pending::Pending;
use super::{PassReport, Pipeline, PipelineError};
use crate::error::ErrorClass;
use crate::persist;
use crate::source::{InboxItem, SourceItem, WEBHOOK_STREAM};
use crate::state::{Commit, DeadLetterStage};
use std::time::Instant;

impl Pipeline {
    /// Sends dead letters again: sink rejections are re-delivered as they
    /// were; source records are read again by the source and then take the
    /// same page path as a pass (facts and person totals, orders read, ledger
    /// dedupe), their letters resolved in that page's commit. What fails
    /// again stays a dead letter with the new reason.
    pub async fn replay_dead_letters(&mut self) -> Result<PassReport, PipelineError> {
        let started = Instant::now();
        let context = self.context().await?;
        let mut report = PassReport::default();
        let letters = self.state.dead_letters(Some(&self.name), u32::MAX).await?;
        let mut events = Pending::default();
        let mut records: Vec<SourceItem> = Vec::new();
        let mut resolved = Vec::new();
        for letter in letters {
            match letter.stage {
                DeadLetterStage::Sink => match persist::read_event_document(&letter.payload) {
                    Ok(event) => events.push(event, Some(letter.id)),
                    Err(reason) => tracing::warn!(id = letter.id, %reason, "dead letter cannot be read; kept"),
                },
                DeadLetterStage::Source => {
                    let bad = match persist::read_bad_record_document(&letter.payload) {
                        Ok(bad) => bad,
                        Err(reason) => {
                            tracing::warn!(id = letter.id, %reason, "dead letter cannot be read; kept");
                            continue;
                        }
                    };
                    let read = match InboxItem::from_raw(&bad.raw) {
                        Some(webhook) if bad.stream == WEBHOOK_STREAM => {
                            self.source_mut().parse_webhook(&webhook).await
                        }
                        _ => self.source_mut().reparse(&bad.stream, &bad.raw).await,
                    };
                    match read {
                        Ok(items) => {
                            records.extend(items);
                            resolved.push(letter.id);
                        }
                        Err(error) if error.class == ErrorClass::Permanent => {
                            tracing::warn!(id = letter.id, reason = %error.message, "record cannot be read again; kept")
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            }
        }
        self.deliver_ready(&mut events, true, &mut report).await?;
        if !resolved.is_empty() {
            let mut pending = Pending::default();
            let tail = Commit { dead_letters_resolved: resolved, ..Commit::default() };
            self.process_items(records, tail, &context, &mut report, &mut pending, FactsWritten::WithCommit).await?;
            self.deliver_ready(&mut pending, true, &mut report).await?;
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }
}
