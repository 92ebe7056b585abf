//! What Klaviyo's answers mean for each item: a 2xx accepts; a JSON:API 4xx
//! refuses the request (a refused event job is then sent again event by
//! event by the sink loop); a finished profile import job lists its failed
//! profiles, matched back to the events by email or external id.

use crate::request::KlaviyoRoute;
use serde_json::Value;
use tillflow_core::Event;
use tillflow_core::model::Person;
use tillflow_http::Answer;
use tillflow_kit::sink::{ItemVerdict, ResponseClassifier, Verdict};

/// `{"errors":[{"code","title","detail","source":{"pointer"}}]}` → one line.
pub fn readable_errors(body: &str) -> String {
    let Ok(document) = serde_json::from_str::<Value>(body) else { return body.to_owned() };
    let Some(errors) = document["errors"].as_array().filter(|e| !e.is_empty()) else { return body.to_owned() };
    errors
        .iter()
        .map(|error| {
            let code = error["code"].as_str().unwrap_or("error");
            let detail = error["detail"].as_str().or(error["title"].as_str()).unwrap_or("");
            match error["source"]["pointer"].as_str().filter(|p| !p.is_empty() && *p != "/data/") {
                Some(pointer) => format!("{code}: {detail} (at {pointer})"),
                None => format!("{code}: {detail}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether an import error's original payload is this person's profile.
fn matches_payload(person: &Person, payload: &Value) -> bool {
    let attributes = if payload["attributes"].is_object() { &payload["attributes"] } else { payload };
    let same = |key: &str, value: Option<&str>| {
        value.is_some_and(|v| attributes[key].as_str().is_some_and(|p| p.eq_ignore_ascii_case(v)))
    };
    same("email", person.email.as_deref()) || same("external_id", person.customer_id.as_deref())
}

/// A finished catalog job's `item_errors` placed on its items: an item
/// Klaviyo says exists already is a conflict (→ update), any other error
/// refuses that item alone.
fn catalog_verdict(route: KlaviyoRoute, answer: &Answer, count: usize) -> Verdict {
    let document = answer.json();
    let errors = document["item_errors"].as_array().cloned().unwrap_or_default();
    if errors.is_empty() {
        return Verdict::Accepted;
    }
    let mut verdicts = vec![ItemVerdict::Accepted; count];
    for error in errors {
        let code = error["code"].as_str().unwrap_or("invalid");
        let detail = error["detail"].as_str().unwrap_or("");
        let exists = code.contains("duplicate") || code.contains("conflict") || detail.contains("already exists");
        let verdict = if exists && route == KlaviyoRoute::CatalogCreate {
            ItemVerdict::Conflict(detail.to_owned())
        } else {
            ItemVerdict::Rejected(format!("{code}: {detail}"))
        };
        match error["index"].as_u64().map(|i| i as usize).filter(|i| *i < count) {
            Some(index) => verdicts[index] = verdict,
            // An error that names no item: the whole job's items take it.
            None => return Verdict::Refused(format!("Klaviyo's catalog job failed: {code}: {detail}")),
        }
    }
    Verdict::Items(verdicts)
}

#[derive(Debug, Default)]
pub struct KlaviyoAnswers;

impl ResponseClassifier<KlaviyoRoute> for KlaviyoAnswers {
    fn classify(&self, route: KlaviyoRoute, answer: &Answer, items: &[&Event]) -> Verdict {
        if !answer.is_success() {
            return Verdict::Refused(format!(
                "Klaviyo refused it (HTTP {}): {}",
                answer.status,
                readable_errors(&answer.text())
            ));
        }
        if matches!(route, KlaviyoRoute::CatalogCreate | KlaviyoRoute::CatalogUpdate) {
            return catalog_verdict(route, answer, items.len());
        }
        if route != KlaviyoRoute::ProfileBulk {
            return Verdict::Accepted;
        }
        let document = answer.json();
        let errors = document["import_errors"].as_array().cloned().unwrap_or_default();
        if errors.is_empty() {
            return Verdict::Accepted;
        }
        Verdict::Items(
            items
                .iter()
                .map(|event| match errors.iter().find(|error| matches_payload(event.person(), &error["payload"])) {
                    Some(error) => ItemVerdict::Rejected(error["reason"].as_str().unwrap_or("invalid").to_owned()),
                    None => ItemVerdict::Accepted,
                })
                .collect(),
        )
    }
}
