//! The Retail POS account: the X-Series client (a personal token or the
//! kit's rotating-token manager) and, with an eCom store, its own client,
//! the merge state both share, a reader per pipeline, webhook verdicts and
//! the check.

use crate::client::{Auth, XSeriesClient};
use crate::config::{Credentials, RetailPosConfig};
use crate::ecom_client::EcomClient;
use crate::people::People;
use crate::source::{RetailPosSource, Shared};
use async_trait::async_trait;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::model::Currency;
use tillflow_core::source::{Source, WebhookRequest, WebhookVerdict};
use tillflow_http::{HttpClient, StandardRateLimitHeaders};
use tillflow_kit::auth::{TokenEncoding, TokenManager, TokenPlatform};
use tillflow_kit::{AccountContext, ConfigProblem, SourceAccount};

pub struct RetailPosAccount {
    shared: Arc<Shared>,
    poll_interval: Duration,
    ecom_store_id: Option<String>,
    ecom_secret: Option<SecretString>,
}

impl RetailPosAccount {
    pub fn open(config: RetailPosConfig, context: &AccountContext) -> Result<Self, ConfigProblem> {
        let mut http = context.http(crate::PLATFORM);
        // X-RateLimit-Remaining at 0: wait for the reset rather than a 429.
        http.signals = Some(Arc::new(StandardRateLimitHeaders::unknown_window()));
        http.max_concurrency = 2;
        let client = HttpClient::new(http);
        let auth = match config.credentials()? {
            Credentials::Personal(token) => Auth::Personal(token),
            Credentials::Rotating { client_id, client_secret, refresh_token } => {
                Auth::Rotating(Box::new(TokenManager::new(
                    TokenPlatform {
                        platform: crate::PLATFORM,
                        title: "Lightspeed X-Series",
                        encoding: TokenEncoding::Form,
                    },
                    client.clone(),
                    config.token_url(),
                    client_id,
                    client_secret,
                    refresh_token,
                    context.state.clone(),
                    &context.name,
                )))
            }
        };
        let x = XSeriesClient::new(context.name.clone(), client, &config.store_url(), auth);
        let ecom = config.ecom.as_ref().map(|ecom| {
            let mut http = context.http(crate::PLATFORM);
            http.max_concurrency = 2;
            EcomClient::new(&context.name, HttpClient::new(http), &ecom.base_url, &ecom.store_id, ecom.token.clone())
        });
        let shared = Shared {
            name: context.name.clone(),
            x,
            ecom,
            ecom_overlap: config.ecom.as_ref().map_or(Duration::ZERO, |e| e.overlap.0),
            currency: Currency::new(&config.currency).unwrap_or_else(|_| Currency::new("USD").expect("a code")),
            page_size: config.page_size,
            people: People { state: context.state.clone(), source: context.name.clone() },
        };
        Ok(Self {
            shared: Arc::new(shared),
            poll_interval: config.poll_interval.0,
            ecom_store_id: config.ecom.as_ref().map(|e| e.store_id.clone()),
            ecom_secret: config.ecom.and_then(|e| e.client_secret),
        })
    }

    /// A reader of its own, typed (tests drive it directly).
    pub fn source(&self) -> RetailPosSource {
        RetailPosSource::new(self.shared.clone())
    }
}

#[async_trait]
impl SourceAccount for RetailPosAccount {
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
        crate::webhook::verify(request, self.ecom_store_id.as_deref(), self.ecom_secret.as_ref())
    }

    /// The registers (the budget), one customer page, and the eCom store.
    async fn check(&self) -> Result<(), ConnectorError> {
        let one = [("page_size", "1".to_owned())];
        self.shared.x.get::<serde::de::IgnoredAny>("/registers", &one).await?;
        self.shared.x.get::<serde::de::IgnoredAny>("/customers", &one).await?;
        if let Some(ecom) = &self.shared.ecom {
            ecom.get::<serde::de::IgnoredAny>("/customers", &[("limit", "1".to_owned())]).await?;
        }
        Ok(())
    }
}
