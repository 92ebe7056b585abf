//! The Klaviyo sink: its declaration (metrics and their names, batch sizes,
//! identity by email), its platform descriptor, and the account built from
//! the kit's sink loop over `request`, `service` and `response`.

use crate::config::{KlaviyoConfig, MarketingConsent};
use crate::request::KlaviyoRequests;
use crate::response::KlaviyoAnswers;
use crate::service::KlaviyoService;
use crate::spec::SPEC;
use std::sync::Arc;
use tillflow_core::EventKind;
use tillflow_http::{HttpClient, StandardRateLimitHeaders};
use tillflow_kit::sink::SinkLoop;
use tillflow_kit::{AccountContext, ConfigProblem, SinkAccount, SinkPlatform};

pub type KlaviyoSink = SinkLoop<KlaviyoRequests, KlaviyoService, KlaviyoAnswers>;

/// The account of one `[sinks.X] type = "klaviyo"`: one client whose tiers
/// follow the spec's limits (times `rate_share`) and adapt to the
/// `RateLimit-*` headers Klaviyo answers with.
pub fn account(config: KlaviyoConfig, context: &AccountContext) -> KlaviyoSink {
    let mut http = context.http(crate::PLATFORM);
    http.signals = Some(Arc::new(StandardRateLimitHeaders::per_minute()));
    http.max_concurrency = http.max_concurrency.max(SPEC.in_flight);
    let service = KlaviyoService::new(
        HttpClient::new(http),
        config.base_url,
        config.api_key,
        config.job_poll_interval.0,
        config.new_profiles_list_id.clone(),
    )
    .with_group_lists(config.group_lists.clone());
    let catalog_url = config.catalog_url.filter(|_| config.catalog);
    let requests = KlaviyoRequests {
        list_id: config.new_profiles_list_id,
        catalog_url,
        sync_consent: config.marketing_consent == MarketingConsent::Sync,
        group_lists: !config.group_lists.is_empty(),
    };
    SinkLoop::new(&SPEC, requests, service, KlaviyoAnswers)
}

pub struct Klaviyo;

impl SinkPlatform for Klaviyo {
    const TYPE: &'static str = crate::PLATFORM;
    const TITLE: &'static str = "Klaviyo";
    const EVENTS: &'static [(EventKind, &'static str)] = SPEC.events;
    #[cfg(feature = "sandbox")]
    const SANDBOX: Option<tillflow_kit::sandbox::SandboxFactory> = Some(crate::sandbox::launch);
    type Config = KlaviyoConfig;

    fn validate(config: &KlaviyoConfig) -> Result<(), ConfigProblem> {
        config.validate()
    }

    fn open(config: KlaviyoConfig, context: &AccountContext) -> Result<Arc<dyn SinkAccount>, ConfigProblem> {
        Ok(Arc::new(account(config, context)))
    }
}
