//! The operator's keys for a `type = "egoi"` sink.

use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tillflow_core::duration::HumanDuration;
use tillflow_kit::ConfigProblem;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgoiConfig {
    /// The account's API key (header `Apikey`).
    pub api_key: SecretString,
    /// The list contacts and orders go to.
    pub list_id: u64,
    /// The store's host as connected to that list in E-goi (`shop.example.com`).
    pub domain: String,
    /// The store's address (`https://shop.example.com`), on every imported order.
    pub store_url: String,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Overrides of the status table, source status → E-goi status.
    #[serde(default)]
    pub status_map: BTreeMap<String, MappedStatus>,
    #[serde(default)]
    pub revenue: Revenue,
    /// Canonical customer fields → the names of the list's extra fields.
    #[serde(default)]
    pub field_map: BTreeMap<CanonicalField, String>,
    /// Orders per bulk history request (E-goi's own plugin sends 500).
    #[serde(default = "default_history_batch")]
    pub history_batch: usize,
    /// Which endpoint history goes through.
    #[serde(default)]
    pub history_endpoint: HistoryEndpoint,
    /// How orders are named in E-goi.
    #[serde(default)]
    pub order_ids: OrderIds,
    /// How long history waits for E-goi to finish importing the buyers
    /// before their orders are sent anyway.
    #[serde(default = "default_import_wait")]
    pub import_wait: HumanDuration,
    /// How often a running contact import is looked at.
    #[serde(default = "default_import_poll")]
    pub import_poll: HumanDuration,
    /// Customer group titles kept as E-goi tags (each tag named by its
    /// title, created when missing): a contact carries their group's tag and
    /// loses the others' when their group changes at the source.
    #[serde(default)]
    pub group_tags: Vec<String>,
    /// `"sync"`: a source's marketing-email preference is also applied as
    /// the contact's status (unsubscribed / active), once per change.
    #[serde(default)]
    pub marketing_consent: tillflow_kit::config::MarketingConsent,
}

/// An E-goi order status, or `skip` for "not sent".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MappedStatus {
    Created,
    Pending,
    Canceled,
    Completed,
    Unknown,
    Skip,
}

impl MappedStatus {
    /// The value E-goi's order schemas take; `None` for `skip`.
    pub fn wire(self) -> Option<&'static str> {
        match self {
            Self::Created => Some("created"),
            Self::Pending => Some("pending"),
            Self::Canceled => Some("canceled"),
            Self::Completed => Some("completed"),
            Self::Unknown => Some("unknown"),
            Self::Skip => None,
        }
    }
}

/// Which total an order carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Revenue {
    /// The order's total, refunds not subtracted (E-goi's plugin).
    #[default]
    Gross,
    /// The total less what was refunded; a refund re-posts the order.
    Net,
}

/// Where history goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryEndpoint {
    /// `POST /lists/{list_id}/orders`, up to `history_batch` orders a
    /// request; E-goi dates them at the import.
    #[default]
    Bulk,
    /// `POST /{domain}/orders`, one request per order, each keeping its date.
    PerOrder,
}

/// How an order is named in E-goi, where re-posting an id replaces the order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderIds {
    /// The source's id as it is (E-goi's own plugin does so): one store per
    /// list.
    #[default]
    Plain,
    /// `<source name>-<id>`: several stores into one list never overwrite
    /// each other's orders.
    Prefixed,
}

/// The customer fields `field_map` can send to a list's extra fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanonicalField {
    /// The source's customer id (a natural unique field).
    CustomerId,
    Company,
    Title,
    AddressLine1,
    AddressLine2,
    City,
    Region,
    Postcode,
    Country,
    /// The phone as the source holds it.
    Phone,
    /// The customer group / type (customers only).
    CustomerGroup,
}

impl CanonicalField {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerId => "customer_id",
            Self::Company => "company",
            Self::Title => "title",
            Self::AddressLine1 => "address_line1",
            Self::AddressLine2 => "address_line2",
            Self::City => "city",
            Self::Region => "region",
            Self::Postcode => "postcode",
            Self::Country => "country",
            Self::Phone => "phone",
            Self::CustomerGroup => "customer_group",
        }
    }
}

fn default_base_url() -> String {
    "https://api.egoiapp.com".into()
}

fn default_history_batch() -> usize {
    500
}

fn default_import_wait() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

fn default_import_poll() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}

/// Bulk order imports above this many orders are not sent.
pub const MAX_HISTORY_BATCH: usize = 1000;

impl EgoiConfig {
    /// What deserializing cannot check: the host, the store's address, the
    /// batch size.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        tillflow_kit::descriptor::check_url("base_url", &self.base_url)?;
        tillflow_kit::descriptor::check_url("store_url", &self.store_url)?;
        let domain = self.domain.trim();
        if domain.is_empty() || domain.contains(['/', ':', ' ', '?', '#']) {
            return Err(ConfigProblem::at(
                "domain",
                format!("`{}` is not a bare host name (write `shop.example.com`, without scheme or path)", self.domain),
            ));
        }
        if self.history_batch == 0 || self.history_batch > MAX_HISTORY_BATCH {
            return Err(ConfigProblem::at(
                "history_batch",
                format!("{} is not between 1 and {MAX_HISTORY_BATCH}", self.history_batch),
            ));
        }
        if self.list_id == 0 {
            return Err(ConfigProblem::at("list_id", "E-goi list ids start at 1"));
        }
        Ok(())
    }
}
