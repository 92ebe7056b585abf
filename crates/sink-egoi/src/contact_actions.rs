//! What E-goi does to a known contact: found by email (else created), its
//! status set from a preference change (`…/actions/unsubscribe` for an
//! opt-out, `…/actions/activate` for an opt-in) and its group kept as a tag
//! (attached for the group, detached for the other configured groups; tags
//! looked up by name, created when missing, remembered per account), and a
//! contact forgotten on request.

use crate::service::{EgoiService, refusal};
use serde_json::{Value, json};
use tillflow_core::ConnectorError;
use tillflow_core::forget::ForgetReport;
use tillflow_http::Answer;
use tillflow_http::reqwest::Method;

/// The answer tillflow reports for an action that took several calls.
fn done() -> Answer {
    Answer { status: 200, headers: Default::default(), body: b"{}".to_vec().into() }
}

fn parse(body: &[u8]) -> Result<Value, ConnectorError> {
    serde_json::from_slice(body).map_err(|e| ConnectorError::permanent(format!("an E-goi contact action: {e}")))
}

impl EgoiService {
    /// The contact's id on the list: searched by email, else created (a
    /// 409 names the holder of the email).
    async fn contact_id(&self, wanted: &Value) -> Result<Result<String, Answer>, ConnectorError> {
        let list = self.list();
        if let Ok(Some(id)) = self.contact_on_list(wanted["email"].as_str().unwrap_or_default()).await? {
            return Ok(Ok(id));
        }
        let created = self.post_json(&format!("/lists/{list}/contacts"), &wanted["contact"]).await?;
        let document = created.json();
        let id = match created.status {
            200 | 201 => document["contact_id"].as_str().map(str::to_owned),
            409 => document["errors"]["contacts"][0].as_str().map(str::to_owned),
            _ => return Ok(Err(created)),
        };
        Ok(id.ok_or(created))
    }

    /// The id of the list's contact with this email, if it has one; the
    /// search's answer when E-goi refused it.
    async fn contact_on_list(&self, email: &str) -> Result<Result<Option<String>, Answer>, ConnectorError> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("type", "email")
            .append_pair("contact", email)
            .finish();
        let found = self.exchange(Method::GET, &format!("/contacts/search?{query}"), None).await?;
        if !found.is_success() {
            return Ok(Err(found));
        }
        let list = self.list();
        Ok(Ok(found.json()["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|item| item["list_id"].as_u64() == Some(list))
            .and_then(|item| item["contact_id"].as_str())
            .map(str::to_owned)))
    }

    /// The list's contact with this email found, then forgotten
    /// (`…/contacts/actions/forget`, E-goi's GDPR erasure).
    pub(crate) async fn forget_contact(&self, email: &str) -> Result<ForgetReport, ConnectorError> {
        let list = self.list();
        let search = "GET /contacts/search (type email)";
        let contact = match self.contact_on_list(email).await? {
            Ok(Some(contact)) => contact,
            Ok(None) => {
                return Ok(ForgetReport {
                    asked: search.to_owned(),
                    answered: format!("list {list} has no contact with this email; nothing to forget"),
                    known: false,
                });
            }
            Err(answer) => return Err(ConnectorError::permanent(format!("{search}: {}", refusal(&answer)))),
        };
        let path = format!("/lists/{list}/contacts/actions/forget");
        let answer = self.post_json(&path, &json!({"contacts": [contact]})).await?;
        let asked = format!("{search}, then POST {path} (contact {contact})");
        if !answer.is_success() {
            return Err(ConnectorError::permanent(format!("{asked}: {}", refusal(&answer))));
        }
        Ok(ForgetReport {
            asked,
            answered: format!("HTTP {}: contact {contact} is being forgotten", answer.status),
            known: true,
        })
    }

    /// An opt-out unsubscribes the contact; an opt-in makes it active again.
    pub(crate) async fn apply_consent(&self, body: Vec<u8>) -> Result<Answer, ConnectorError> {
        let wanted = parse(&body)?;
        let contact = match self.contact_id(&wanted).await? {
            Ok(contact) => contact,
            Err(answer) => return Ok(answer),
        };
        let list = self.list();
        let answer = if wanted["accepts"] == json!(false) {
            let body = json!({"data": [{"contact_id": contact, "unsubscription_method": "api", "unsubscription_reason": "other"}]});
            self.post_json(&format!("/lists/{list}/contacts/actions/unsubscribe"), &body).await?
        } else {
            let body = json!({"type": "contacts", "contacts": [contact]});
            self.post_json(&format!("/lists/{list}/contacts/actions/activate"), &body).await?
        };
        Ok(if answer.is_success() { done() } else { answer })
    }

    /// A tag's id by name, created when the account has none.
    async fn tag_id(&self, name: &str) -> Result<Result<u64, Answer>, ConnectorError> {
        let mut tags = self.tags.lock().await;
        if let Some(id) = tags.get(name) {
            return Ok(Ok(*id));
        }
        let mut offset = 0;
        loop {
            let page = self.exchange(Method::GET, &format!("/tags?offset={offset}&limit=100"), None).await?;
            if !page.is_success() {
                return Ok(Err(page));
            }
            let document = page.json();
            let items = document["items"].as_array().cloned().unwrap_or_default();
            for item in &items {
                if let (Some(tag), Some(id)) = (item["name"].as_str(), item["tag_id"].as_u64()) {
                    tags.insert(tag.to_owned(), id);
                }
            }
            offset += items.len();
            if items.is_empty() || offset as u64 >= document["total_items"].as_u64().unwrap_or(0) {
                break;
            }
        }
        if let Some(id) = tags.get(name) {
            return Ok(Ok(*id));
        }
        let created = self.post_json("/tags", &json!({"name": name})).await?;
        match created.json()["tag_id"].as_u64().filter(|_| created.is_success()) {
            Some(id) => {
                tags.insert(name.to_owned(), id);
                Ok(Ok(id))
            }
            None => Ok(Err(created)),
        }
    }

    /// The group's tag attached, the other group tags detached.
    pub(crate) async fn apply_group_tags(&self, body: Vec<u8>) -> Result<Answer, ConnectorError> {
        let wanted = parse(&body)?;
        let contact = match self.contact_id(&wanted).await? {
            Ok(contact) => contact,
            Err(answer) => return Ok(answer),
        };
        let list = self.list();
        let group = wanted["group"].as_str();
        for title in self.group_titles() {
            let tag = match self.tag_id(title).await? {
                Ok(tag) => tag,
                Err(answer) => return Ok(answer),
            };
            let action = if Some(title.as_str()) == group { "attach-tag" } else { "detach-tag" };
            let body = json!({"tag_id": tag, "contacts": [contact]});
            let answer = self.post_json(&format!("/lists/{list}/contacts/actions/{action}"), &body).await?;
            if !answer.is_success() {
                tracing::warn!(list, action, reason = %refusal(&answer), "E-goi refused a group tag change");
                return Ok(answer);
            }
        }
        Ok(done())
    }
}
