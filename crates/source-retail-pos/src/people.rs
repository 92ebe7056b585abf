//! The merge's memory in the state store: each person's [`PersonState`]
//! under `person:<email>` (`person:x:<id>` for a POS customer without an
//! email), which person each POS and eCom id belongs to (`pos:<id>`,
//! `ecom:<id>`, so an email change moves the side), and the notices an
//! operator sees in `tillflow status` (`notice:…`: group conflicts,
//! duplicate POS emails; emails redacted). Shared by every pipeline
//! reading the source; applying the same reading twice changes nothing.

use crate::mapping;
use crate::merge::{PersonState, Side, normalise_email};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tillflow_core::model::{Customer, Person, Text};
use tillflow_core::state::SOURCE_NOTICE_PREFIX as NOTICE;
use tillflow_core::{ConnectorError, StateStore};

/// What a page brings to the merge.
#[derive(Clone, Debug)]
pub enum Incoming {
    Pos(Side),
    /// An eCom customer, and whether their own counters show an order.
    Ecom(Side, bool),
    /// An eCom order by this email: they bought online.
    BoughtOnline(Text),
}

fn person_key(email: Option<&str>, pos_id: Option<&str>) -> Option<String> {
    match (email.and_then(normalise_email), pos_id) {
        (Some(email), _) => Some(format!("person:{email}")),
        (None, Some(id)) => Some(format!("person:x:{id}")),
        (None, None) => None,
    }
}

fn redacted(person_key: &str) -> String {
    let who = person_key.trim_start_matches("person:");
    if who.contains('@') { tillflow_http::redact::email(who) } else { who.to_owned() }
}

fn storage(error: tillflow_core::StateError) -> ConnectorError {
    ConnectorError::transient(format!("the merge state: {error}"))
}

pub struct People {
    pub state: Arc<dyn StateStore>,
    pub source: String,
}

impl People {
    async fn load(&self, keys: Vec<String>, into: &mut HashMap<String, PersonState>) -> Result<(), ConnectorError> {
        let wanted: Vec<String> = keys.into_iter().filter(|k| !into.contains_key(k)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let found = self.state.source_state_get(&self.source, &wanted).await.map_err(storage)?;
        for key in wanted {
            let state = match found.get(&key) {
                Some(text) => serde_json::from_str(text)
                    .map_err(|e| ConnectorError::permanent(format!("the merge state of {}: {e}", redacted(&key))))?,
                None => PersonState::default(),
            };
            into.insert(key, state);
        }
        Ok(())
    }

    /// Applies a page's readings and returns the customers whose view they
    /// touched (those in the view), in the order first touched.
    pub async fn apply(&self, incoming: Vec<Incoming>) -> Result<Vec<Customer>, ConnectorError> {
        let mut targets: Vec<(Option<String>, Option<String>)> = Vec::with_capacity(incoming.len());
        let mut index_keys = Vec::new();
        for item in &incoming {
            let (person, index) = match item {
                Incoming::Pos(side) => {
                    (person_key(side.email.as_deref(), Some(&side.id)), Some(format!("pos:{}", side.id)))
                }
                Incoming::Ecom(side, _) => (person_key(side.email.as_deref(), None), Some(format!("ecom:{}", side.id))),
                Incoming::BoughtOnline(email) => (person_key(Some(email), None), None),
            };
            index_keys.extend(index.clone());
            targets.push((person, index));
        }
        let index = self.state.source_state_get(&self.source, &index_keys).await.map_err(storage)?;
        let mut people: HashMap<String, PersonState> = HashMap::new();
        let mut keys: Vec<String> = targets.iter().filter_map(|(person, _)| person.clone()).collect();
        keys.extend(index.values().cloned());
        self.load(keys, &mut people).await?;

        let mut touched: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut writes: Vec<(String, String)> = Vec::new();
        let mut touch = |key: &str, touched: &mut Vec<String>| {
            if seen.insert(key.to_owned()) {
                touched.push(key.to_owned());
            }
        };
        for (item, (person, index_key)) in incoming.into_iter().zip(targets) {
            let Some(person) = person else { continue };
            // An id seen under another email before: its side leaves that person.
            if let Some(index_key) = &index_key {
                if let Some(previous) = index.get(index_key).filter(|previous| **previous != person)
                    && let Some(state) = people.get_mut(previous)
                {
                    match &item {
                        Incoming::Pos(side) if state.pos.as_ref().is_some_and(|p| p.id == side.id) => state.pos = None,
                        Incoming::Ecom(side, _) if state.ecom.as_ref().is_some_and(|e| e.id == side.id) => {
                            state.ecom = None
                        }
                        _ => {}
                    }
                    touch(previous, &mut touched);
                }
                writes.push((index_key.clone(), person.clone()));
            }
            let state = people.entry(person.clone()).or_default();
            match item {
                Incoming::Pos(side) => {
                    let duplicate = state.apply_pos(side);
                    if let Some(duplicate) = duplicate {
                        // Every pass reads both again: the notice, not the log, is the report.
                        tracing::debug!(
                            source = %self.source,
                            person = %redacted(&person),
                            kept = %duplicate.kept,
                            other = %duplicate.other,
                            "two X-Series customers share an email; the most recently updated is used"
                        );
                        writes.push((
                            format!("{NOTICE}duplicate-email:{person}"),
                            format!(
                                "X-Series customers {} and {} share the email {}: {} (updated last) is used",
                                duplicate.kept,
                                duplicate.other,
                                redacted(&person),
                                duplicate.kept
                            ),
                        ));
                    }
                }
                Incoming::Ecom(side, has_orders) => {
                    state.bought_online |= has_orders;
                    state.apply_ecom(side);
                }
                Incoming::BoughtOnline(_) => state.bought_online = true,
            }
            touch(&person, &mut touched);
        }

        let mut customers = Vec::new();
        for key in &touched {
            let state = people.get_mut(key).expect("a touched person is loaded");
            state.settle();
            let merged = state.merged();
            let notice = merged.as_ref().and_then(|m| m.conflict.as_ref()).map(|conflict| {
                let show =
                    |group: &Option<Text>| group.as_deref().map_or("no group".to_owned(), |g| format!("\"{g}\""));
                format!(
                    "group conflict for {}: POS says {}, eCom says {}; {} changed last, so {}",
                    redacted(key),
                    show(&conflict.pos_group),
                    show(&conflict.ecom_group),
                    if conflict.chosen_side == "pos" { "POS" } else { "eCom" },
                    show(&conflict.chosen)
                )
            });
            // Written only when there is one, or one to withdraw: an empty
            // row per person would crowd the real notices out of a listing.
            let listed = notice.is_some();
            if listed || state.conflict_listed {
                writes.push((format!("{NOTICE}group-conflict:{key}"), notice.unwrap_or_default()));
            }
            state.conflict_listed = listed;
            writes.push((key.clone(), serde_json::to_string(&*state).expect("a state serializes")));
            if let Some(merged) = merged {
                customers.push(mapping::customer(&self.source, &merged));
            }
        }
        self.state.source_state_put(&self.source, &writes).await.map_err(storage)?;
        Ok(customers)
    }

    /// The buyers of sales by POS customer id, as the view shows them
    /// (ids the merge has not seen are missing).
    pub async fn buyers(&self, pos_ids: &[Text]) -> Result<HashMap<Text, Person>, ConnectorError> {
        let index_keys: Vec<String> = pos_ids.iter().map(|id| format!("pos:{id}")).collect();
        let index = self.state.source_state_get(&self.source, &index_keys).await.map_err(storage)?;
        let mut people = HashMap::new();
        self.load(index.values().cloned().collect(), &mut people).await?;
        Ok(pos_ids
            .iter()
            .filter_map(|id| {
                let state = people.get(index.get(&format!("pos:{id}"))?)?;
                Some((id.clone(), state.merged()?.person))
            })
            .collect())
    }

    /// The notices to show an operator (non-empty ones), at most `limit`.
    pub async fn notices(state: &dyn StateStore, source: &str, limit: u32) -> Result<Vec<String>, ConnectorError> {
        let entries = state.source_state_scan(source, NOTICE, limit).await.map_err(storage)?;
        Ok(entries.into_iter().map(|(_, text)| text).filter(|text| !text.is_empty()).collect())
    }
}
