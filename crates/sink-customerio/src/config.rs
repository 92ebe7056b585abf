//! The operator's keys for a `type = "customerio"` sink.

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    #[default]
    Us,
    Eu,
}

impl Region {
    pub fn track_url(self) -> &'static str {
        match self {
            Region::Us => "https://track.customer.io",
            Region::Eu => "https://track-eu.customer.io",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerIoConfig {
    /// Track API site id.
    pub site_id: SecretString,
    /// Track API key (not an App API key).
    pub api_key: SecretString,
    #[serde(default)]
    pub region: Region,
    /// Overrides the region's Track API URL (sandboxes, mocks).
    pub base_url: Option<String>,
    /// Customer.io's fair-use budget for the Track API, per workspace.
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: u32,
    /// `"sync"`: a source's marketing-email preference is also applied as
    /// Customer.io's `unsubscribed` attribute, once per change at the source.
    #[serde(default)]
    pub marketing_consent: tillflow_kit::config::MarketingConsent,
}

fn default_requests_per_second() -> u32 {
    100
}

impl CustomerIoConfig {
    pub fn base_url(&self) -> String {
        self.base_url.clone().unwrap_or_else(|| self.region.track_url().to_owned()).trim_end_matches('/').to_owned()
    }
}
