//! The operator's keys for a `type = "retail-pos"` source: the Lightspeed
//! Retail X-Series store (a personal token, or an OAuth app whose refresh
//! tokens rotate) and, optionally, its eCom (E-Series) store.

use secrecy::SecretString;
use serde::Deserialize;
use std::time::Duration;
use tillflow_core::duration::HumanDuration;
use tillflow_kit::ConfigProblem;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetailPosConfig {
    /// `mystore` in `https://mystore.retail.lightspeed.app`.
    pub domain_prefix: String,
    /// A personal token (sent as a bearer token); or the OAuth keys below.
    pub personal_token: Option<SecretString>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    /// The first refresh token; once rotated, the one kept in the state
    /// store is used instead.
    pub refresh_token: Option<SecretString>,
    /// The store's root (API 2.0 is under `/api/2.0`); a sandbox in tests.
    pub base_url: Option<String>,
    /// Where refresh tokens are exchanged.
    pub token_url: Option<String>,
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// For an outlet that names no currency (ISO 4217).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Records per X-Series page (the 2.0 API documents no maximum).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    pub ecom: Option<EcomConfig>,
}

/// The eCom (E-Series, the Ecwid platform) store merged into the view.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcomConfig {
    pub store_id: String,
    /// The store's `secret_…` access token.
    pub token: SecretString,
    /// The app's client secret: it signs eCom webhooks. Without it every
    /// eCom webhook is refused.
    pub client_secret: Option<SecretString>,
    /// The API root (`/{store_id}` is appended); a sandbox in tests.
    #[serde(default = "default_ecom_base_url")]
    pub base_url: String,
    /// How far each read reaches back before the last one ended (eCom's
    /// `updated` is to the second, and writes land late).
    #[serde(default = "default_ecom_overlap")]
    pub overlap: HumanDuration,
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

fn default_currency() -> String {
    "USD".into()
}

fn default_page_size() -> u32 {
    200
}

fn default_ecom_base_url() -> String {
    "https://app.ecwid.com/api/v3".into()
}

fn default_ecom_overlap() -> HumanDuration {
    HumanDuration(Duration::from_secs(120))
}

/// How tillflow is let into the X-Series store.
pub enum Credentials {
    Personal(SecretString),
    Rotating { client_id: String, client_secret: SecretString, refresh_token: SecretString },
}

impl RetailPosConfig {
    /// `https://{domain_prefix}.retail.lightspeed.app`, or `base_url`.
    pub fn store_url(&self) -> String {
        match &self.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://{}.retail.lightspeed.app", self.domain_prefix.trim()),
        }
    }

    pub fn token_url(&self) -> String {
        self.token_url.clone().unwrap_or_else(|| format!("{}/api/1.0/token", self.store_url()))
    }

    /// The one way in the keys name.
    pub fn credentials(&self) -> Result<Credentials, ConfigProblem> {
        let oauth = [
            ("client_id", self.client_id.is_some()),
            ("client_secret", self.client_secret.is_some()),
            ("refresh_token", self.refresh_token.is_some()),
        ];
        let named: Vec<&str> = oauth.iter().filter(|(_, set)| *set).map(|(key, _)| *key).collect();
        match (&self.personal_token, named.len()) {
            (Some(token), 0) => Ok(Credentials::Personal(token.clone())),
            (Some(_), _) => Err(ConfigProblem::at(
                "personal_token",
                format!("give either personal_token or the OAuth keys, not both (also set: {})", named.join(", ")),
            )),
            (None, 3) => Ok(Credentials::Rotating {
                client_id: self.client_id.clone().expect("named"),
                client_secret: self.client_secret.clone().expect("named"),
                refresh_token: self.refresh_token.clone().expect("named"),
            }),
            (None, 0) => Err(ConfigProblem::at(
                "personal_token",
                "missing: give personal_token, or client_id, client_secret and refresh_token",
            )),
            (None, _) => {
                let missing = oauth.iter().find(|(_, set)| !set).map(|(key, _)| *key).expect("one is missing");
                Err(ConfigProblem::at(
                    missing,
                    "missing: the OAuth keys go together (client_id, client_secret, refresh_token)",
                ))
            }
        }
    }

    /// What deserializing cannot check.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        let prefix = self.domain_prefix.trim();
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ConfigProblem::at(
                "domain_prefix",
                format!("`{prefix}` is not a store's domain prefix (`mystore` in mystore.retail.lightspeed.app)"),
            ));
        }
        self.credentials()?;
        tillflow_kit::descriptor::check_url("base_url", &self.store_url())?;
        tillflow_kit::descriptor::check_url("token_url", &self.token_url())?;
        tillflow_core::model::Currency::new(&self.currency)
            .map_err(|message| ConfigProblem::at("currency", message))?;
        if !(1..=1000).contains(&self.page_size) {
            return Err(ConfigProblem::at("page_size", "between 1 and 1000"));
        }
        if let Some(ecom) = &self.ecom {
            if ecom.store_id.trim().is_empty() || !ecom.store_id.trim().bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigProblem::at(
                    "ecom.store_id",
                    format!("`{}` is not a store id (digits)", ecom.store_id),
                ));
            }
            tillflow_kit::descriptor::check_url("ecom.base_url", &ecom.base_url)?;
            if ecom.overlap.0 > Duration::from_secs(24 * 3600) {
                return Err(ConfigProblem::at("ecom.overlap", "at most 24h"));
            }
        }
        Ok(())
    }
}
