//! The operator's keys for a `type = "woocommerce"` source.

use secrecy::SecretString;
use serde::Deserialize;
use tillflow_core::duration::HumanDuration;

/// How the consumer key and secret travel.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// HTTP Basic (the default over HTTPS).
    #[default]
    Basic,
    /// `?consumer_key=…&consumer_secret=…`, for hosts that strip the
    /// Authorization header.
    Query,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WooCommerceConfig {
    /// The shop's URL, e.g. https://shop.example.com (the API is under /wp-json/wc/v3).
    pub base_url: String,
    pub consumer_key: SecretString,
    pub consumer_secret: SecretString,
    /// Verifies `X-WC-Webhook-Signature`; without it webhooks are refused.
    pub webhook_secret: Option<SecretString>,
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    #[serde(default)]
    pub auth: AuthMode,
    /// How far before the previous pass's start the next one looks again, so
    /// an order modified while a pass was paging is not missed.
    #[serde(default = "default_overlap")]
    pub overlap: HumanDuration,
    /// WooCommerce publishes no rate limit; a shop's host may have one.
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: u32,
}

fn default_requests_per_second() -> u32 {
    20
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

fn default_overlap() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(600))
}
