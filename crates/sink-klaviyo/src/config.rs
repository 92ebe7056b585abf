//! The operator's keys for a `type = "klaviyo"` sink.

use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
pub use tillflow_kit::config::MarketingConsent;

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
    /// Sync the source's products into Klaviyo's catalog.
    #[serde(default)]
    pub catalog: bool,
    /// Every catalog item's `url` (Klaviyo requires one; POS products have
    /// none): `{productId}` and `{sku}` are filled in.
    pub catalog_url: Option<String>,
    /// A customer group's title → the list its members belong to: a person
    /// is added to their group's list and removed from the others' when
    /// their group changes at the source (no consent is given).
    #[serde(default)]
    pub group_lists: BTreeMap<String, String>,
    /// `"property"` (default): the preference is the profile property
    /// `accepts_marketing_email`. `"sync"`: it is also applied as Klaviyo
    /// email consent (subscribe / unsubscribe), once per change at the source.
    #[serde(default)]
    pub marketing_consent: MarketingConsent,
}

impl KlaviyoConfig {
    /// The URL keys, and a catalog without its URL template.
    pub fn validate(&self) -> Result<(), tillflow_kit::ConfigProblem> {
        tillflow_kit::descriptor::check_url("base_url", &self.base_url)?;
        for (group, list) in &self.group_lists {
            if group.is_empty() || list.trim().is_empty() {
                return Err(tillflow_kit::ConfigProblem::at(
                    &format!("group_lists.{group}"),
                    "a group's exact title → a Klaviyo list id, e.g. { \"VIP\" = \"Y6nRLr\" }",
                ));
            }
        }
        match (&self.catalog_url, self.catalog) {
            (Some(template), _) => tillflow_kit::descriptor::check_url(
                "catalog_url",
                &template.replace("{productId}", "1").replace("{sku}", "1"),
            ),
            (None, true) => Err(tillflow_kit::ConfigProblem::at(
                "catalog_url",
                "is required with `catalog = true`: Klaviyo needs a url on every catalog item, e.g. \"https://shop.example.com/products/{productId}\"",
            )),
            (None, false) => Ok(()),
        }
    }
}

fn default_base_url() -> String {
    "https://a.klaviyo.com".into()
}

fn default_job_poll() -> tillflow_core::duration::HumanDuration {
    tillflow_core::duration::HumanDuration(std::time::Duration::from_secs(2))
}
