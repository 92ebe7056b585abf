//! The operator's keys for a `type = "dutchie"` source: one API key per
//! child location of one parent retailer.

use secrecy::SecretString;
use serde::Deserialize;
use std::time::Duration;
use tillflow_core::duration::HumanDuration;
use tillflow_kit::ConfigProblem;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutchieConfig {
    /// One entry per child location, each with its own key.
    pub locations: Vec<LocationKey>,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default = "default_poll")]
    pub poll_interval: HumanDuration,
    /// How far each window reaches back before the last one ended: Dutchie's
    /// data is 1–5 minutes behind the till.
    #[serde(default = "default_overlap")]
    pub overlap: HumanDuration,
    /// The first day of history to import (`"2024-01-01"`, UTC); absent,
    /// orders and customers go forward only, as the official integration.
    /// The catalog is always synced whole.
    pub history_start: Option<String>,
    /// The transaction types sent; others are skipped and counted.
    #[serde(default = "default_transaction_types")]
    pub transaction_types: Vec<String>,
    /// Dutchie reports amounts without a currency.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Requests per minute per key to `/reporting/*` (Dutchie's guide says
    /// 60, the reference 600: the lower one by default).
    #[serde(default = "default_reporting_per_minute")]
    pub reporting_per_minute: u32,
    /// Requests per minute per key to `/customer/*`.
    #[serde(default = "default_customers_per_minute")]
    pub customers_per_minute: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationKey {
    /// The location's key (HTTP Basic user name, empty password).
    pub api_key: SecretString,
}

fn default_base_url() -> String {
    "https://api.pos.dutchie.com".into()
}

fn default_poll() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

fn default_overlap() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}

fn default_transaction_types() -> Vec<String> {
    vec!["Retail".into()]
}

fn default_currency() -> String {
    "USD".into()
}

fn default_reporting_per_minute() -> u32 {
    60
}

fn default_customers_per_minute() -> u32 {
    120
}

/// The longest overlap: windows of history are a day, and must move on.
const MAX_OVERLAP: Duration = Duration::from_secs(6 * 3600);

impl DutchieConfig {
    /// The first instant of `history_start`, if set.
    pub fn history_start(&self) -> Result<Option<jiff::Timestamp>, String> {
        let Some(text) = &self.history_start else { return Ok(None) };
        let date: jiff::civil::Date =
            text.trim().parse().map_err(|_| format!("`{text}` is not a date such as \"2024-01-01\""))?;
        date.to_zoned(jiff::tz::TimeZone::UTC).map(|zoned| Some(zoned.timestamp())).map_err(|e| e.to_string())
    }

    /// What deserializing cannot check.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        tillflow_kit::descriptor::check_url("base_url", &self.base_url)?;
        tillflow_core::model::Currency::new(&self.currency)
            .map_err(|message| ConfigProblem::at("currency", message))?;
        if self.locations.is_empty() {
            return Err(ConfigProblem::at(
                "locations",
                "name at least one location (`[[sources.X.locations]]` with its `api_key`)",
            ));
        }
        self.history_start().map_err(|message| ConfigProblem::at("history_start", message))?;
        if self.overlap.0 > MAX_OVERLAP {
            return Err(ConfigProblem::at("overlap", "at most 6h: a window of history is a day"));
        }
        if self.transaction_types.is_empty() {
            return Err(ConfigProblem::at("transaction_types", "name at least one type, e.g. [\"Retail\"]"));
        }
        for (key, value) in
            [("reporting_per_minute", self.reporting_per_minute), ("customers_per_minute", self.customers_per_minute)]
        {
            if value == 0 {
                return Err(ConfigProblem::at(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}
