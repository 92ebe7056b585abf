//! The E-goi service: the `Apikey` header on every request, one rate gate
//! for the whole account (E-goi limits per client and per account, not per
//! endpoint), the list's fields and the connected domain learnt before the
//! first request, and history's order imports preceded by their buyers
//! (consent and group tags: `contact_actions`).

use crate::config::EgoiConfig;
use crate::fields::{ListField, ListShape, resolve};
use crate::request::EgoiRoute;
use crate::spec::MAX_CONTACTS_PER_IMPORT;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;
use tillflow_core::ConnectorError;
use tillflow_core::forget::ForgetReport;
use tillflow_http::reqwest::Method;
use tillflow_http::{Answer, HttpClient, HttpError, Tier};
use tillflow_kit::sink::Service;
use tokio::sync::OnceCell;

/// Every E-goi request: the account is the unit E-goi limits.
pub const API: Tier = Tier::unlimited("api");

pub struct EgoiService {
    client: HttpClient,
    base_url: String,
    api_key: SecretString,
    config: Arc<EgoiConfig>,
    /// The sink's name in the config, for errors that name a key.
    sink: String,
    shape: Arc<OnceCell<ListShape>>,
    /// Tag ids by name, learnt or created once (group tags).
    pub(crate) tags: tokio::sync::Mutex<std::collections::HashMap<String, u64>>,
}

/// E-goi's problem document in one line (`detail`, then `errors`), emails
/// redacted.
pub fn readable(answer: &Answer) -> String {
    let document = answer.json();
    let detail = document["detail"].as_str().or(document["title"].as_str());
    match (detail, document.get("errors")) {
        (Some(detail), Some(errors)) if !errors.is_null() => {
            tillflow_http::redact::body_snippet(&format!("{detail} {errors}"))
        }
        (Some(detail), _) => tillflow_http::redact::body_snippet(detail),
        _ => answer.snippet(),
    }
}

/// `E-goi refused it (HTTP 422): …`, the reason a dead letter carries.
pub fn refusal(answer: &Answer) -> String {
    format!("E-goi refused it (HTTP {}): {}", answer.status, readable(answer))
}

impl EgoiService {
    pub fn new(client: HttpClient, config: Arc<EgoiConfig>, sink: &str, shape: Arc<OnceCell<ListShape>>) -> Self {
        Self {
            client,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_key: config.api_key.clone(),
            config,
            sink: sink.to_owned(),
            shape,
            tags: Default::default(),
        }
    }

    /// The group titles kept as tags (`group_tags`).
    pub(crate) fn group_titles(&self) -> &[String] {
        &self.config.group_tags
    }

    pub(crate) fn list(&self) -> u64 {
        self.config.list_id
    }

    pub(crate) async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ConnectorError> {
        let mut request = self
            .client
            .reqwest()
            .request(method, format!("{}{path}", self.base_url))
            .header("apikey", self.api_key.expose_secret())
            .header("accept", "application/json");
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let request =
            request.build().map_err(|e| ConnectorError::permanent(format!("building an E-goi request: {e}")))?;
        match self.client.exchange(&API, request).await {
            Ok(answer) => Ok(answer),
            Err(HttpError::Unauthorized { status, message, .. }) => Err(ConnectorError::config(format!(
                "sinks.{}.api_key: E-goi refused the key (HTTP {status}): {message}. Check the key, and that the \
                 account's plan includes what tillflow uses (Order Sync needs a paid plan)",
                self.sink
            ))),
            Err(other) => Err(other.into()),
        }
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Result<Answer, ConnectorError> {
        self.exchange(Method::POST, path, Some(serde_json::to_vec(body).expect("JSON serializes"))).await
    }

    /// The list's fields against `field_map`, and the domain connected to
    /// the list (connected here when E-goi does not know it yet).
    async fn read_shape(&self) -> Result<ListShape, ConnectorError> {
        let sink = &self.sink;
        let list = self.list();
        let answer = self.exchange(Method::GET, &format!("/lists/{list}/fields?limit=1000"), None).await?;
        if answer.status == 404 {
            return Err(ConnectorError::config(format!("sinks.{sink}.list_id: E-goi has no list {list}")));
        }
        if !answer.is_success() {
            return Err(ConnectorError::transient(format!("reading E-goi list {list}'s fields: {}", refusal(&answer))));
        }
        let document = answer.json();
        let listed = document.as_array().or(document["items"].as_array()).cloned().unwrap_or_default();
        let fields: Vec<ListField> = listed.iter().filter_map(ListField::from_json).collect();
        let shape = resolve(sink, list, &fields, &self.config.field_map).map_err(ConnectorError::config)?;
        self.connect_domain().await?;
        Ok(shape)
    }

    async fn connect_domain(&self) -> Result<(), ConnectorError> {
        let (sink, list, domain) = (&self.sink, self.list(), self.config.domain.trim());
        let answer = self.exchange(Method::GET, &format!("/connectedsites/{domain}"), None).await?;
        if answer.is_success() {
            let connected = answer.json()["list_id"].clone();
            let connected = connected.as_u64().or_else(|| connected.as_str().and_then(|s| s.parse().ok()));
            return match connected {
                Some(other) if other != list => Err(ConnectorError::config(format!(
                    "sinks.{sink}.domain: `{domain}` is connected to E-goi list {other}, not list {list}; orders \
                     posted to it would land in list {other}"
                ))),
                _ => Ok(()),
            };
        }
        if answer.status != 404 {
            return Err(ConnectorError::transient(format!(
                "reading E-goi connected site {domain}: {}",
                refusal(&answer)
            )));
        }
        tracing::info!(domain, list, "connecting the store's domain to the E-goi list");
        // The schema types the list id as a string here.
        let body = json!({"domain": domain, "list_id": list.to_string()});
        let answer = self.post_json("/connectedsites", &body).await?;
        if answer.is_success() {
            Ok(())
        } else {
            Err(ConnectorError::config(format!(
                "sinks.{sink}.domain: `{domain}` is not a connected site of E-goi list {list} and E-goi refused to \
                 connect it: {}",
                refusal(&answer)
            )))
        }
    }

    /// History's orders name their buyers by email: the buyers E-goi does
    /// not know are added first (mode `add`: a contact already there is left
    /// as it is), then the orders are imported.
    async fn import_orders(&self, body: Vec<u8>) -> Result<Answer, ConnectorError> {
        let items: Vec<Value> = serde_json::from_slice(&body)
            .map_err(|e| ConnectorError::permanent(format!("an E-goi order import body: {e}")))?;
        let mut seen = BTreeSet::new();
        let buyers: Vec<&Value> = items
            .iter()
            .map(|item| &item["buyer"])
            .filter(|buyer| buyer["base"]["email"].as_str().is_some_and(|email| seen.insert(email.to_owned())))
            .collect();
        self.add_buyers(&buyers).await?;
        let orders: Vec<&Value> = items.iter().map(|item| &item["order"]).collect();
        self.exchange(
            Method::POST,
            &format!("/lists/{}/orders", self.list()),
            Some(serde_json::to_vec(&orders).expect("JSON serializes")),
        )
        .await
    }

    async fn add_buyers(&self, buyers: &[&Value]) -> Result<(), ConnectorError> {
        let list = self.list();
        let compare = self.shape.get().map_or("email", |shape| shape.email_field.as_str()).to_owned();
        let mut imported = false;
        if let [buyer] = buyers {
            // The bulk import takes two at least; one goes by its email.
            let email = buyer["base"]["email"].clone();
            let body = json!({"compare_field": {"field_id": compare, "value": email}, "base": {"email": email}});
            let answer = self.post_json(&format!("/lists/{list}/contacts/by-field"), &body).await?;
            if !answer.is_success() && answer.status != 409 {
                tracing::warn!(list, reason = %refusal(&answer), "E-goi did not add an order's buyer; the order goes anyway");
            }
        } else {
            for chunk in buyers.chunks(MAX_CONTACTS_PER_IMPORT) {
                let body = json!({"mode": "add", "compare_field": compare, "force_empty": false, "contacts": chunk});
                let answer = self.post_json(&format!("/lists/{list}/contacts/actions/import-bulk"), &body).await?;
                if answer.is_success() {
                    imported = true;
                } else {
                    tracing::warn!(list, buyers = chunk.len(), reason = %refusal(&answer), "E-goi did not import orders' buyers; the orders go anyway");
                }
            }
        }
        if imported {
            self.wait_for_imports().await;
        }
        Ok(())
    }

    /// Contact imports run in the background: the orders wait until E-goi's
    /// queue has none left, or `import_wait` passed.
    async fn wait_for_imports(&self) {
        let deadline = Instant::now() + self.config.import_wait.0;
        loop {
            let running = match self.exchange(Method::GET, "/operations?type=import_contacts&limit=1000", None).await {
                Ok(answer) if answer.is_success() => {
                    let document = answer.json();
                    document["items"].as_array().map_or(0, |items| items.len())
                }
                Ok(answer) => {
                    tracing::warn!(reason = %refusal(&answer), "cannot see E-goi's import queue; not waiting for it");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot see E-goi's import queue; not waiting for it");
                    return;
                }
            };
            if running == 0 {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(running, "E-goi's contact imports are still running; sending the orders anyway");
                return;
            }
            tokio::time::sleep(self.config.import_poll.0).await;
        }
    }
}

#[async_trait]
impl Service<EgoiRoute> for EgoiService {
    async fn call(&self, route: EgoiRoute, body: Vec<u8>) -> Result<Answer, ConnectorError> {
        let list = self.list();
        match route {
            EgoiRoute::ContactCreate => {
                self.exchange(Method::POST, &format!("/lists/{list}/contacts"), Some(body)).await
            }
            EgoiRoute::ContactPatch(contact) => {
                if contact.contains(['/', '?', '#']) {
                    return Err(ConnectorError::permanent(format!("E-goi named a contact `{contact}`")));
                }
                self.exchange(Method::PATCH, &format!("/lists/{list}/contacts/{contact}"), Some(body)).await
            }
            EgoiRoute::ContactImport => {
                self.exchange(Method::POST, &format!("/lists/{list}/contacts/actions/import-bulk"), Some(body)).await
            }
            EgoiRoute::Order => {
                let domain = self.config.domain.trim();
                let answer = self.exchange(Method::POST, &format!("/{domain}/orders"), Some(body)).await?;
                if answer.status == 404 {
                    return Err(ConnectorError::config(format!(
                        "sinks.{}.domain: E-goi does not know `{domain}` (HTTP 404): {}",
                        self.sink,
                        readable(&answer)
                    )));
                }
                Ok(answer)
            }
            EgoiRoute::OrderImport => self.import_orders(body).await,
            EgoiRoute::Consent => self.apply_consent(body).await,
            EgoiRoute::GroupTags => self.apply_group_tags(body).await,
        }
    }

    async fn prepare(&self) -> Result<(), ConnectorError> {
        self.shape.get_or_try_init(|| self.read_shape()).await.map(|_| ())
    }

    /// The key, the list, its fields against `field_map`, the domain.
    async fn check(&self) -> Result<(), ConnectorError> {
        self.read_shape().await.map(|_| ())
    }

    async fn forget(&self, email: &str) -> Result<ForgetReport, ConnectorError> {
        self.forget_contact(email).await
    }
}
