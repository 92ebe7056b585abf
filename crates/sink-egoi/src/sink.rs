//! The E-goi sink: its platform descriptor and the account built from the
//! kit's sink loop over `request`, `service` and `response`, sharing the
//! list's shape the service reads before the first request.

use crate::config::EgoiConfig;
use crate::request::EgoiRequests;
use crate::response::EgoiAnswers;
use crate::service::EgoiService;
use crate::signals::EgoiRateHeaders;
use crate::spec::SPEC;
use std::sync::Arc;
use tillflow_core::EventKind;
use tillflow_http::HttpClient;
use tillflow_kit::sink::SinkLoop;
use tillflow_kit::{AccountContext, ConfigProblem, SinkAccount, SinkPlatform};
use tokio::sync::OnceCell;

pub type EgoiSink = SinkLoop<EgoiRequests, EgoiService, EgoiAnswers>;

/// The account of one `[sinks.X] type = "egoi"`: one client, paced by the
/// rate headers E-goi answers with, shared by every pipeline naming it.
pub fn account(config: EgoiConfig, context: &AccountContext) -> EgoiSink {
    let mut http = context.http(crate::PLATFORM);
    http.signals = Some(Arc::new(EgoiRateHeaders));
    http.max_concurrency = http.max_concurrency.max(SPEC.in_flight);
    // E-goi answers writes within 60 s or with a 408.
    if context.tuning.attempt_timeout.is_none() {
        http.attempt_timeout = http.attempt_timeout.max(std::time::Duration::from_secs(65));
    }
    let config = Arc::new(config);
    let shape = Arc::new(OnceCell::new());
    let service = EgoiService::new(HttpClient::new(http), config.clone(), &context.name, shape.clone());
    SinkLoop::new(&SPEC, EgoiRequests { config, shape }, service, EgoiAnswers)
}

pub struct Egoi;

impl SinkPlatform for Egoi {
    const TYPE: &'static str = crate::PLATFORM;
    const TITLE: &'static str = "E-goi";
    const EVENTS: &'static [(EventKind, &'static str)] = SPEC.events;
    #[cfg(feature = "sandbox")]
    const SANDBOX: Option<tillflow_kit::sandbox::SandboxFactory> = Some(crate::sandbox::launch);
    type Config = EgoiConfig;

    fn validate(config: &EgoiConfig) -> Result<(), ConfigProblem> {
        config.validate()
    }

    fn open(config: EgoiConfig, context: &AccountContext) -> Result<Arc<dyn SinkAccount>, ConfigProblem> {
        Ok(Arc::new(account(config, context)))
    }
}
