//! What E-goi's answers mean for each item: any 2xx accepts (its bulk
//! imports answer 202 and report nothing per item); a 409 to a contact
//! create names the contact holding the email, which becomes an update; a
//! 413 or a refused bulk request is split until the bad orders stand alone;
//! any other refusal is final, with E-goi's message.

use crate::request::EgoiRoute;
use crate::service::refusal;
use tillflow_core::Event;
use tillflow_http::Answer;
use tillflow_kit::sink::{ItemVerdict, ResponseClassifier, Verdict};

#[derive(Debug, Default)]
pub struct EgoiAnswers;

/// `{"errors":{"contacts":["8f3a27ef26"], …}}` → the first contact id.
fn conflicting_contact(answer: &Answer) -> Option<String> {
    let document = answer.json();
    let errors = &document["errors"];
    let contacts = errors["contacts"].as_array().or(errors["unique_field_in_use"]["contacts"].as_array())?;
    contacts.first().and_then(|id| id.as_str().map(str::to_owned).or_else(|| id.as_u64().map(|n| n.to_string())))
}

impl ResponseClassifier<EgoiRoute> for EgoiAnswers {
    fn classify(&self, route: EgoiRoute, answer: &Answer, items: &[&Event]) -> Verdict {
        if answer.is_success() {
            return Verdict::Accepted;
        }
        let reason = refusal(answer);
        match (answer.status, &route) {
            (409, EgoiRoute::ContactCreate) => match conflicting_contact(answer) {
                Some(contact) => Verdict::Items(items.iter().map(|_| ItemVerdict::Conflict(contact.clone())).collect()),
                None => Verdict::Refused(reason),
            },
            // Too large: halves. A bulk import refused for something inside
            // it that the answer does not point at: halves, until the bad
            // orders are alone.
            (413, _) => Verdict::Split(reason),
            (400 | 422, EgoiRoute::OrderImport | EgoiRoute::ContactImport) => Verdict::Split(reason),
            _ => Verdict::Refused(reason),
        }
    }
}
