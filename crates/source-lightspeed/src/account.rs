//! The Lightspeed account: the account's client and token manager (one per
//! configured source, shared by every pipeline reading it), a reader per
//! pipeline, and the reachability check.

use crate::client::{LeakyBucket, LightspeedClient};
use crate::config::LightspeedConfig;
use crate::source::LightspeedSource;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::model::Currency;
use tillflow_core::source::Source;
use tillflow_http::HttpClient;
use tillflow_kit::auth::TokenManager;
use tillflow_kit::{AccountContext, SourceAccount};

pub struct LightspeedAccount {
    client: Arc<LightspeedClient>,
    poll_interval: Duration,
}

impl LightspeedAccount {
    pub fn open(config: LightspeedConfig, currency: Currency, context: &AccountContext) -> Self {
        let mut http = context.http(crate::PLATFORM);
        http.signals = Some(Arc::new(LeakyBucket));
        http.max_concurrency = 2;
        let client = HttpClient::new(http);
        let platform = tillflow_kit::auth::TokenPlatform {
            platform: crate::PLATFORM,
            title: "Lightspeed",
            encoding: tillflow_kit::auth::TokenEncoding::Json,
        };
        let auth = TokenManager::new(
            platform,
            client.clone(),
            config.token_url,
            config.client_id,
            config.client_secret,
            config.refresh_token,
            context.state.clone(),
            &context.name,
        );
        let client = LightspeedClient {
            name: context.name.clone(),
            client,
            auth,
            api: format!("{}/API/V3/Account/{}", config.base_url.trim_end_matches('/'), config.account_id),
            currency,
        };
        Self { client: Arc::new(client), poll_interval: config.poll_interval.0 }
    }

    /// A reader of its own, typed (tests drive it directly).
    pub fn source(&self) -> LightspeedSource {
        LightspeedSource::new(self.client.clone())
    }
}

#[async_trait]
impl SourceAccount for LightspeedAccount {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    fn reader(&self) -> Box<dyn Source> {
        Box::new(self.source())
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.client.get::<serde::de::IgnoredAny>(&format!("{}.json", self.client.api), &[]).await.map(|_| ())
    }
}
