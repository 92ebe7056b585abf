//! The Customer.io sink: its declaration (events and their names, batch
//! sizes, identity), its platform descriptor, and the account built from the
//! kit's sink loop over `request`, `service` and `response`.

use crate::config::CustomerIoConfig;
use crate::request::TrackRequests;
use crate::response::TrackAnswers;
use crate::service::TrackService;
use crate::spec::SPEC;
use std::sync::Arc;
use tillflow_core::EventKind;
use tillflow_http::{HttpClient, Tier};
use tillflow_kit::descriptor::check_url;
use tillflow_kit::sink::SinkLoop;
use tillflow_kit::{AccountContext, ConfigProblem, SinkAccount, SinkPlatform};

pub type CustomerIoSink = SinkLoop<TrackRequests, TrackService, TrackAnswers>;

/// The account of one `[sinks.X] type = "customerio"`: one client for the
/// workspace's Track API budget, one update clock.
pub fn account(config: CustomerIoConfig, context: &AccountContext) -> CustomerIoSink {
    let tier = Tier::new("track", config.requests_per_second.max(1));
    let base_url = config.base_url();
    let service = TrackService::new(
        HttpClient::new(context.http(crate::PLATFORM)),
        base_url,
        config.site_id,
        config.api_key,
        tier,
    );
    let sync_consent = config.marketing_consent == tillflow_kit::config::MarketingConsent::Sync;
    SinkLoop::new(&SPEC, TrackRequests::new(sync_consent), service, TrackAnswers)
}

pub struct CustomerIo;

impl SinkPlatform for CustomerIo {
    const TYPE: &'static str = crate::PLATFORM;
    const TITLE: &'static str = "Customer.io";
    const EVENTS: &'static [(EventKind, &'static str)] = SPEC.events;
    #[cfg(feature = "sandbox")]
    const SANDBOX: Option<tillflow_kit::sandbox::SandboxFactory> = Some(crate::sandbox::launch);
    type Config = CustomerIoConfig;

    fn validate(config: &CustomerIoConfig) -> Result<(), ConfigProblem> {
        match &config.base_url {
            Some(url) => check_url("base_url", url),
            None => Ok(()),
        }
    }

    fn open(config: CustomerIoConfig, context: &AccountContext) -> Result<Arc<dyn SinkAccount>, ConfigProblem> {
        Ok(Arc::new(account(config, context)))
    }
}
