//! The WooCommerce account: the shop's client (one per configured source,
//! shared by every pipeline reading it), a reader per pipeline, webhook
//! signature checks, and the reachability check.

use crate::client::WooClient;
use crate::config::WooCommerceConfig;
use crate::source::WooCommerceSource;
use async_trait::async_trait;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::source::{Source, WebhookRequest, WebhookVerdict};
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
        let (_, listing) = self.client.list("/orders", &[("per_page", "1".to_owned())]).await?;
        self.client.decode_each::<serde::de::IgnoredAny>(&listing).map(|_| ())
    }
}
