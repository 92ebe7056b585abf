//! The WooCommerce account: one HTTP client for the shop (the consumer key
//! and secret in Basic auth or the query string, the shop's request rate),
//! webhook signature checks, and the reachability check. Every pipeline
//! reading this shop reads through it.

use crate::config::{AuthMode, WooCommerceConfig};
use crate::source::WooCommerceSource;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::source::{Source, WebhookRequest, WebhookVerdict};
use tillflow_http::reqwest::header::HeaderMap;
use tillflow_http::webhook::verify_hmac_sha256_base64;
use tillflow_http::{HttpClient, Tier};
use tillflow_kit::{AccountContext, SourceAccount};

/// Webhook topics that carry something tillflow syncs.
pub const TOPICS: [&str; 7] = [
    "order.created",
    "order.updated",
    "order.deleted",
    "order.restored",
    "customer.created",
    "customer.updated",
    "customer.deleted",
];

/// The shop's REST API v3 as this account reaches it.
pub struct WooClient {
    /// The configured source name (`shop` in `[sources.shop]`).
    pub name: String,
    client: HttpClient,
    api: String,
    consumer_key: SecretString,
    consumer_secret: SecretString,
    auth: AuthMode,
    tier: Tier,
    /// How far before the previous pass's start the next one looks again.
    pub overlap: Duration,
}

impl WooClient {
    /// GET `path` under `/wp-json/wc/v3`, decoded as `T`, with the headers.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(HeaderMap, T), ConnectorError> {
        let mut request = self.client.reqwest().get(format!("{}{path}", self.api)).query(query);
        request = match self.auth {
            AuthMode::Basic => {
                request.basic_auth(self.consumer_key.expose_secret(), Some(self.consumer_secret.expose_secret()))
            }
            AuthMode::Query => request.query(&[
                ("consumer_key", self.consumer_key.expose_secret()),
                ("consumer_secret", self.consumer_secret.expose_secret()),
            ]),
        };
        let request = request.build().map_err(|e| ConnectorError::permanent(format!("building a request: {e}")))?;
        Ok(self.client.send_json(&self.tier, request).await?)
    }
}

pub struct WooCommerceAccount {
    client: Arc<WooClient>,
    webhook_secret: Option<SecretString>,
    poll_interval: Duration,
}

impl WooCommerceAccount {
    pub fn open(config: WooCommerceConfig, context: &AccountContext) -> Self {
        let mut http = context.http(crate::PLATFORM);
        http.max_concurrency = 4;
        let client = WooClient {
            name: context.name.clone(),
            client: HttpClient::new(http),
            api: format!("{}/wp-json/wc/v3", config.base_url.trim_end_matches('/')),
            consumer_key: config.consumer_key,
            consumer_secret: config.consumer_secret,
            auth: config.auth,
            tier: Tier::new("wc-api", config.requests_per_second.max(1)),
            overlap: config.overlap.0,
        };
        Self { client: Arc::new(client), webhook_secret: config.webhook_secret, poll_interval: config.poll_interval.0 }
    }

    /// A reader of its own, typed (tests drive it directly).
    pub fn source(&self) -> WooCommerceSource {
        WooCommerceSource::new(self.client.clone())
    }
}

#[async_trait]
impl SourceAccount for WooCommerceAccount {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    fn reader(&self) -> Box<dyn Source> {
        Box::new(self.source())
    }

    fn verify_webhook(&self, request: &WebhookRequest) -> WebhookVerdict {
        let signature = request.header("x-wc-webhook-signature");
        // WooCommerce pings a new webhook with an unsigned form body and wants
        // exactly 200 back.
        if signature.is_none() && request.body.starts_with(b"webhook_id=") && request.body.len() < 64 {
            return WebhookVerdict::Ping;
        }
        let (Some(signature), Some(secret)) = (signature, &self.webhook_secret) else {
            return WebhookVerdict::Unauthorized;
        };
        if !verify_hmac_sha256_base64(secret, &request.body, signature) {
            return WebhookVerdict::Unauthorized;
        }
        match request.header("x-wc-webhook-topic") {
            Some(topic) if TOPICS.contains(&topic) => WebhookVerdict::Accept,
            Some(topic) => WebhookVerdict::Rejected(format!("topic `{topic}` is not synced")),
            None => WebhookVerdict::Rejected("no X-WC-Webhook-Topic header".into()),
        }
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.client.get::<serde::de::IgnoredAny>("/orders", &[("per_page", "1".to_owned())]).await.map(|_| ())
    }
}
