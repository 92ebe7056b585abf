//! People who asked to be forgotten (`tillflow forget`): which events of a
//! page are about one, so selection skips them with reason "forgotten", in
//! one tombstone lookup per page. A customer id met beside a forgotten
//! email is tombstoned as well, so a later record that carries only the id
//! is recognised too. A record that could not be read is looked for
//! addresses instead, so one about a forgotten person is not kept as a dead
//! letter, which would hold their address again.

use super::{Pipeline, PipelineError};
use crate::events::Event;
use crate::forget;
use crate::keys::SeededHash;
use crate::source::BadRecord;
use jiff::Timestamp;
use std::collections::HashMap;

impl Pipeline {
    /// For each event, whether it is about a forgotten person.
    pub(super) async fn forgotten_people(&self, events: &[Event]) -> Result<Vec<bool>, PipelineError> {
        // One hash per distinct person of the page, not per event: an order
        // brings several events about the same buyer.
        let mut subjects_of: HashMap<(Option<&str>, Option<&str>), Vec<String>, SeededHash> =
            HashMap::with_capacity_and_hasher(events.len(), SeededHash::default());
        let mut per_event = Vec::with_capacity(events.len());
        for event in events {
            if !event.about_person() {
                per_event.push(None);
                continue;
            }
            let person = event.person();
            let identity = (person.email.as_deref(), person.customer_id.as_deref());
            subjects_of.entry(identity).or_insert_with(|| forget::subjects(&self.source_name, person));
            per_event.push(Some(identity));
        }
        let all: Vec<String> = subjects_of.values().flatten().cloned().collect();
        if all.is_empty() {
            return Ok(vec![false; events.len()]);
        }
        let forgotten = self.state.forgotten(&all).await?;
        if forgotten.is_empty() {
            return Ok(vec![false; events.len()]);
        }
        let mut learned = Vec::new();
        for subjects in subjects_of.values() {
            if subjects.iter().any(|subject| forgotten.contains(subject)) {
                learned.extend(subjects.iter().filter(|subject| !forgotten.contains(*subject)).cloned());
            }
        }
        learned.sort();
        learned.dedup();
        if !learned.is_empty() {
            self.state.forget(&learned, Timestamp::now()).await?;
        }
        Ok(per_event
            .into_iter()
            .map(|identity| {
                identity.is_some_and(|identity| subjects_of[&identity].iter().any(|s| forgotten.contains(s)))
            })
            .collect())
    }

    /// For each record that could not be read, whether an address it names
    /// (in its raw form or its reason) has a tombstone.
    pub(super) async fn forgotten_bad_records(&self, bad: &[BadRecord]) -> Result<Vec<bool>, PipelineError> {
        let subjects_of: Vec<Vec<String>> = bad
            .iter()
            .map(|bad| {
                let mut text = serde_json::to_vec(&bad.raw).unwrap_or_default();
                text.push(b' ');
                text.extend_from_slice(bad.reason.as_bytes());
                forget::addresses_in(&text).iter().map(|address| forget::email_subject(address)).collect()
            })
            .collect();
        let all: Vec<String> = subjects_of.iter().flatten().cloned().collect();
        if all.is_empty() {
            return Ok(vec![false; bad.len()]);
        }
        let forgotten = self.state.forgotten(&all).await?;
        Ok(subjects_of.iter().map(|subjects| subjects.iter().any(|subject| forgotten.contains(subject))).collect())
    }
}
