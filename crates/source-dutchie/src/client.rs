//! One location's key as Dutchie sees it: its own HTTP client (Dutchie
//! limits per key and per endpoint class), HTTP Basic with the key as the
//! user name and an empty password, and record arrays decoded whatever
//! their casing. A refused key is named by its position, never its value;
//! a missing role is named with the role.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_http::reqwest::header::HeaderMap;
use tillflow_http::{HttpClient, HttpError, RateSignals, Tier};

/// Dutchie's 429 says "only N per minute allowed" and no `Retry-After`:
/// the key's endpoint class waits for the next minute (a second past it),
/// so no second storm follows.
#[derive(Clone, Copy, Debug, Default)]
pub struct PerMinuteLimits;

/// From `second_of_minute` to a second into the next minute.
pub fn until_next_minute(second_of_minute: u64) -> Duration {
    Duration::from_secs(61 - second_of_minute.min(59))
}

impl RateSignals for PerMinuteLimits {
    fn pause_after(&self, status: u16, _headers: &HeaderMap) -> Option<Duration> {
        let second = jiff::Timestamp::now().as_second().rem_euclid(60) as u64;
        (status == 429).then(|| until_next_minute(second))
    }
}

/// The endpoint classes Dutchie limits separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Reporting,
    Customers,
    WhoAmI,
}

/// Why a read failed: the window may be split (a timeout, a 5xx other than
/// the kill switch), or not.
#[derive(Debug)]
pub enum ReadError {
    Splittable(ConnectorError),
    Final(ConnectorError),
}

impl ReadError {
    pub fn into_error(self) -> ConnectorError {
        match self {
            Self::Splittable(error) | Self::Final(error) => error,
        }
    }
}

pub struct LocationClient {
    /// Its index in `locations`, the name errors use.
    pub position: usize,
    /// `sources.<name>.locations[<position>].api_key`.
    pub key_path: String,
    client: HttpClient,
    base_url: String,
    api_key: SecretString,
    reporting: Tier,
    customers: Tier,
    whoami: Tier,
}

impl LocationClient {
    pub fn new(
        position: usize,
        source: &str,
        client: HttpClient,
        base_url: &str,
        api_key: SecretString,
        reporting_per_minute: u32,
        customers_per_minute: u32,
    ) -> Self {
        Self {
            position,
            key_path: format!("sources.{source}.locations[{position}].api_key"),
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            reporting: Tier::unlimited("reporting").with_per_minute(reporting_per_minute),
            customers: Tier::unlimited("customers").with_per_minute(customers_per_minute),
            whoami: Tier::unlimited("whoami").with_per_minute(200),
        }
    }

    fn role(path: &str) -> &'static str {
        if path.starts_with("/customer") {
            "Customer"
        } else if path.starts_with("/reporting") {
            "Reporting"
        } else if path.starts_with("/products") {
            "Inventory"
        } else {
            "any"
        }
    }

    /// GET `path` → its JSON (a 404 is `None`).
    pub async fn get(&self, class: Class, path: &str, query: &[(&str, String)]) -> Result<Option<Value>, ReadError> {
        let tier = match class {
            Class::Reporting => &self.reporting,
            Class::Customers => &self.customers,
            Class::WhoAmI => &self.whoami,
        };
        let request = self
            .client
            .reqwest()
            .get(format!("{}{path}", self.base_url))
            .query(query)
            .basic_auth(self.api_key.expose_secret(), Some(""))
            .header("accept", "application/json")
            .build()
            .map_err(|e| ReadError::Final(ConnectorError::permanent(format!("building a Dutchie request: {e}"))))?;
        let answer = match self.client.exchange(tier, request).await {
            Ok(answer) => answer,
            Err(HttpError::Unauthorized { status: 401, .. }) => {
                return Err(ReadError::Final(ConnectorError::config(format!(
                    "{}: Dutchie refused the key of location {} (HTTP 401)",
                    self.key_path, self.position
                ))));
            }
            Err(HttpError::Unauthorized { status, .. }) => {
                return Err(ReadError::Final(ConnectorError::config(format!(
                    "{}: the key of location {} lacks Dutchie's {} role (HTTP {status} on {path})",
                    self.key_path,
                    self.position,
                    Self::role(path)
                ))));
            }
            Err(HttpError::Unavailable { message, .. }) if message.contains("HTTP 429") => {
                return Err(ReadError::Final(ConnectorError::transient(format!(
                    "Dutchie kept answering 429 to {path} for the key of location {}; the next pass tries again",
                    self.position
                ))));
            }
            Err(HttpError::Unavailable { message, .. }) if message.contains("HTTP 503") => {
                return Err(ReadError::Final(ConnectorError::transient(format!(
                    "Dutchie switched {path} off for now (503); the next pass tries again from the same place"
                ))));
            }
            Err(error @ HttpError::Unavailable { .. }) => return Err(ReadError::Splittable(error.into())),
            Err(other) => return Err(ReadError::Final(other.into())),
        };
        if answer.status == 404 {
            return Ok(None);
        }
        if !answer.is_success() {
            return Err(ReadError::Final(ConnectorError::permanent(format!(
                "Dutchie answered HTTP {} to GET {path}: {}",
                answer.status,
                answer.snippet()
            ))));
        }
        serde_json::from_slice(&answer.body).map(Some).map_err(|e| {
            ReadError::Final(ConnectorError::transient(format!("Dutchie's answer to GET {path} is not JSON: {e}")))
        })
    }

    /// GET `path` → its records (a JSON array; 404 is none).
    pub async fn records(&self, class: Class, path: &str, query: &[(&str, String)]) -> Result<Vec<Value>, ReadError> {
        match self.get(class, path, query).await? {
            Some(Value::Array(records)) => Ok(records),
            Some(Value::Null) | None => Ok(Vec::new()),
            Some(other) => Err(ReadError::Final(ConnectorError::transient(format!(
                "Dutchie's answer to GET {path} is not a list: {}",
                tillflow_http::redact::body_snippet(&other.to_string())
            )))),
        }
    }
}
