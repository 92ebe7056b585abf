//! Accounts: what one configured `[sources.X]` or `[sinks.Y]` becomes. A
//! platform limits an account, not a pipeline, so one account holds the one
//! HTTP client (rate gates, 429 pauses, retry budget) and the one token
//! manager that every pipeline naming it shares; each pipeline gets its own
//! reader or writer on top of them.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::forget::ForgetReport;
use tillflow_core::source::{WebhookRequest, WebhookVerdict};
use tillflow_core::{ConnectorError, Sink, Source, StateStore};
use tillflow_http::{HttpConfig, RetryConfig};

/// Changes to an account's HTTP settings that tests make (short timeouts
/// and retry delays); operators never set them.
#[derive(Clone, Debug, Default)]
pub struct HttpTuning {
    pub attempt_timeout: Option<Duration>,
    pub retry: Option<RetryConfig>,
}

impl HttpTuning {
    /// Half-second attempts and millisecond retry delays, for mock servers.
    pub fn fast() -> Self {
        Self {
            attempt_timeout: Some(Duration::from_millis(500)),
            retry: Some(RetryConfig {
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(50),
                ..RetryConfig::default()
            }),
        }
    }
}

/// What opening an account gets besides the connector's own config.
#[derive(Clone)]
pub struct AccountContext {
    /// The configured name (`shop` in `[sources.shop]`).
    pub name: String,
    /// Where an account keeps what must survive at once (rotated refresh tokens).
    pub state: Arc<dyn StateStore>,
    /// The fraction of the platform's documented limits this account may use
    /// (config `rate_share`).
    pub rate_share: f64,
    pub tuning: HttpTuning,
}

impl AccountContext {
    pub fn new(name: impl Into<String>, state: Arc<dyn StateStore>) -> Self {
        Self { name: name.into(), state, rate_share: 1.0, tuning: HttpTuning::default() }
    }

    pub fn with_rate_share(mut self, share: f64) -> Self {
        self.rate_share = share;
        self
    }

    pub fn with_tuning(mut self, tuning: HttpTuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// The starting HTTP configuration of this account's one client: the
    /// rate share and any tuning applied; the platform adds its own
    /// concurrency and rate signals.
    pub fn http(&self, platform: &'static str) -> HttpConfig {
        let mut config = HttpConfig::new(platform);
        config.rate_share = self.rate_share;
        if let Some(timeout) = self.tuning.attempt_timeout {
            config.attempt_timeout = timeout;
        }
        if let Some(retry) = &self.tuning.retry {
            config.retry = retry.clone();
        }
        config
    }
}

/// One configured source: its client, limits and tokens.
#[async_trait]
pub trait SourceAccount: Send + Sync {
    /// The config `type`.
    fn platform(&self) -> &'static str;

    /// Time between two passes of `tillflow run`.
    fn poll_interval(&self) -> Duration;

    /// A reader for one pipeline: its own cursors and caches over this
    /// account's client, limits and tokens.
    fn reader(&self) -> Box<dyn Source>;

    /// Judges a webhook before anything is stored. Compares signatures in
    /// constant time and has no side effects.
    fn verify_webhook(&self, _request: &WebhookRequest) -> WebhookVerdict {
        WebhookVerdict::Unsupported
    }

    /// Reaches the platform with the configured credentials (`tillflow check`).
    async fn check(&self) -> Result<(), ConnectorError>;
}

/// One configured sink: its client and limits.
#[async_trait]
pub trait SinkAccount: Send + Sync {
    /// The config `type`.
    fn platform(&self) -> &'static str;

    /// A writer for one pipeline over this account's client and limits.
    fn writer(&self) -> Box<dyn Sink>;

    /// Reaches the platform with the configured credentials (`tillflow check`).
    async fn check(&self) -> Result<(), ConnectorError>;

    /// Asks the platform to delete a person (`tillflow forget`), under this
    /// account's rate budget.
    async fn forget(&self, email: &str) -> Result<ForgetReport, ConnectorError>;
}
