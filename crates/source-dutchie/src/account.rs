//! The Dutchie account: one client per location key (Dutchie limits each key
//! apart), the locations their keys' `/whoami` names — every one a child of
//! the same parent — shared by every pipeline reading the source, a reader
//! per pipeline, and the check (each key, each role).

use crate::client::{Class, LocationClient};
use crate::config::DutchieConfig;
use crate::locations::Shared;
use crate::source::DutchieSource;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::model::Currency;
use tillflow_core::source::Source;
use tillflow_http::HttpClient;
use tillflow_kit::{AccountContext, SourceAccount};

pub struct DutchieAccount {
    shared: Arc<Shared>,
    poll_interval: Duration,
}

impl DutchieAccount {
    pub fn open(config: DutchieConfig, context: &AccountContext) -> Self {
        let keys = config
            .locations
            .iter()
            .enumerate()
            .map(|(position, location)| {
                let mut http = context.http(crate::PLATFORM);
                http.signals = Some(Arc::new(crate::client::PerMinuteLimits));
                http.max_concurrency = 1;
                LocationClient::new(
                    position,
                    &context.name,
                    HttpClient::new(http),
                    &config.base_url,
                    location.api_key.clone(),
                    config.reporting_per_minute,
                    config.customers_per_minute,
                )
            })
            .collect();
        let shared = Shared {
            name: context.name.clone(),
            keys,
            identities: Default::default(),
            overlap: config.overlap.0,
            history_start: config.history_start().ok().flatten(),
            transaction_types: config.transaction_types.clone(),
            currency: Currency::new(&config.currency).unwrap_or_else(|_| Currency::new("USD").expect("a code")),
        };
        Self { shared: Arc::new(shared), poll_interval: config.poll_interval.0 }
    }

    /// A reader of its own, typed (tests drive it directly).
    pub fn source(&self) -> DutchieSource {
        DutchieSource::new(self.shared.clone())
    }
}

#[async_trait]
impl SourceAccount for DutchieAccount {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    fn reader(&self) -> Box<dyn Source> {
        Box::new(self.source())
    }

    /// Every key's location and parent, then one cheap call per role the
    /// source needs (Reporting, Customer): a missing role is named.
    async fn check(&self) -> Result<(), ConnectorError> {
        self.shared.locations().await?;
        let now = jiff::Timestamp::now().to_string();
        for key in &self.shared.keys {
            key.records(Class::Reporting, "/reporting/products", &[("fromLastModifiedDateUTC", now.clone())])
                .await
                .map_err(|e| e.into_error())?;
            key.records(Class::Customers, "/customer/customers", &[("customerID", "0".to_owned())])
                .await
                .map_err(|e| e.into_error())?;
        }
        Ok(())
    }
}
