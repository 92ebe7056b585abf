//! The operator's keys for a `type = "klaviyo"` sink.

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlaviyoConfig {
    /// A private API key with profiles, events and lists write scopes.
    pub api_key: SecretString,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Newly created profiles are added to this list (no consent is given).
    pub new_profiles_list_id: Option<String>,
    /// How often a bulk profile import job is polled.
    #[serde(default = "default_job_poll")]
    pub job_poll_interval: tillflow_core::duration::HumanDuration,
}

fn default_base_url() -> String {
    "https://a.klaviyo.com".into()
}

fn default_job_poll() -> tillflow_core::duration::HumanDuration {
    tillflow_core::duration::HumanDuration(std::time::Duration::from_secs(2))
}
