//! The operator's keys for a `type = "lightspeed"` source.

use secrecy::SecretString;
use serde::Deserialize;
use tillflow_core::duration::HumanDuration;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightspeedConfig {
    pub account_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The first refresh token; once tillflow has rotated it, the one stored
    /// in the state store is used instead.
    pub refresh_token: SecretString,
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// Sales carry no currency; this is the account's (ISO 4217).
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(3600))
}

fn default_base_url() -> String {
    "https://api.lightspeedapp.com".into()
}

fn default_token_url() -> String {
    "https://cloud.lightspeedapp.com/auth/oauth/token".into()
}

fn default_currency() -> String {
    "USD".into()
}
