//! Reading Lightspeed R-Series: customers and sales by `timeStamp`, following
//! `@attributes.next` exactly as given, under the leaky bucket.

use crate::auth::TokenManager;
use crate::config::LightspeedConfig;
use crate::json::{id, records, text};
use crate::mapping::{self, Lookups, Mapped};
use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::model::{Currency, Record};
use tillflow_core::source::{BadRecord, Checkpoint, Page, Source, SourceItem};
use tillflow_core::{ConnectorError, ErrorClass, StateStore};
use tillflow_http::reqwest::header::HeaderMap;
use tillflow_http::{HttpClient, HttpConfig, RateSignals, Tier};

/// GETs cost one drip; relations add more. The bucket headers do the fine
/// tuning; this keeps the 1-second burst limiter happy.
const API: Tier = Tier::new("ls-api", 10);
const SALE_RELATIONS: &str = r#"["SaleLines","SaleLines.Item","SaleLines.Discount","SalePayments","Customer","Customer.Contact","ShipTo","Discount"]"#;

/// Slows down before the leaky bucket is full: above three quarters, wait
/// until it has drained to half at the advertised drip rate.
#[derive(Debug, Default, Clone, Copy)]
pub struct LeakyBucket;

impl RateSignals for LeakyBucket {
    fn pause_after(&self, _status: u16, headers: &HeaderMap) -> Option<Duration> {
        let level = headers.get("x-ls-api-bucket-level")?.to_str().ok()?;
        let (used, capacity) = level.split_once('/')?;
        let used: f64 = used.trim().parse().ok()?;
        let capacity: f64 = capacity.trim().parse().ok()?;
        let drip: f64 = headers
            .get("x-ls-api-drip-rate")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .filter(|d: &f64| *d > 0.0)
            .unwrap_or(1.0);
        (capacity > 0.0 && used / capacity >= 0.75).then(|| Duration::from_secs_f64((used - capacity / 2.0) / drip))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct Cursor {
    v: u32,
    /// The next page's URL exactly as Lightspeed gave it.
    next: Option<String>,
    /// Lower bound (inclusive) of this pass's `timeStamp` filter.
    since: Option<String>,
    /// The newest `timeStamp` seen this pass; the next pass starts there.
    max_seen: Option<String>,
}

pub struct LightspeedSource {
    name: String,
    client: HttpClient,
    auth: Arc<TokenManager>,
    api: String,
    currency: Currency,
    lookups: Option<Lookups>,
    /// parentSaleLineID → saleID, so each refund line is looked up once.
    parents: HashMap<String, String>,
}

impl LightspeedSource {
    pub fn new(name: &str, config: LightspeedConfig, state: Arc<dyn StateStore>) -> Result<Self, String> {
        Self::with_http(name, config, state, HttpConfig::new(crate::PLATFORM))
    }

    pub fn with_http(
        name: &str,
        config: LightspeedConfig,
        state: Arc<dyn StateStore>,
        mut http: HttpConfig,
    ) -> Result<Self, String> {
        let currency = Currency::new(&config.currency)?;
        http.signals = Some(Arc::new(LeakyBucket));
        http.max_concurrency = 2;
        let client = HttpClient::new(http);
        let auth = TokenManager::shared(
            client.clone(),
            config.token_url,
            config.client_id,
            config.client_secret,
            config.refresh_token,
            state,
            name,
        );
        Ok(Self {
            name: name.to_owned(),
            client,
            auth,
            api: format!("{}/API/V3/Account/{}", config.base_url.trim_end_matches('/'), config.account_id),
            currency,
            lookups: None,
            parents: HashMap::new(),
        })
    }

    /// GET with the bearer token; one refresh and retry on a 401.
    async fn get(&self, url: &str, query: &[(&str, String)]) -> Result<Value, ConnectorError> {
        for attempt in 0..2 {
            let token = self.auth.access_token().await?;
            let request = self
                .client
                .reqwest()
                .get(url)
                .query(query)
                .bearer_auth(token.expose_secret())
                .header("accept", "application/json")
                .build()
                .map_err(|e| ConnectorError::config(format!("base_url: {e}")))?;
            match self.client.send_json::<Value>(&API, request).await {
                Ok((_, body)) => return Ok(body),
                Err(error) if attempt == 0 && error.status() == Some(401) => {
                    tracing::info!(source = %self.name, "access token refused; refreshing once");
                    self.auth.invalidate().await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Every page of a list endpoint, following `@attributes.next`.
    async fn get_all(&self, path: &str, kind: &str) -> Result<Vec<Value>, ConnectorError> {
        let mut all = Vec::new();
        let mut url = format!("{}/{path}", self.api);
        let mut query = vec![("limit", "100".to_owned())];
        loop {
            let page = self.get(&url, &query).await?;
            all.extend(records(&page, kind).into_iter().cloned());
            match page["@attributes"]["next"].as_str().filter(|n| !n.is_empty()) {
                Some(next) => {
                    url = next.to_owned();
                    query.clear();
                }
                None => return Ok(all),
            }
        }
    }

    async fn load_lookups(&mut self) -> Result<(), ConnectorError> {
        let categories = self.get_all("Category.json", "Category").await?;
        let shops = self.get_all("Shop.json", "Shop").await?;
        self.lookups = Some(Lookups {
            categories: categories
                .iter()
                .filter_map(|c| Some((id(c, "categoryID")?, text(c, "name").into_owned())))
                .collect(),
            shops: shops.iter().filter_map(|s| Some((id(s, "shopID")?, text(s, "name").into_owned()))).collect(),
        });
        Ok(())
    }

    async fn parent_sale(&mut self, line_ids: &[String]) -> Result<Option<String>, ConnectorError> {
        for line in line_ids {
            if let Some(sale) = self.parents.get(line) {
                return Ok(Some(sale.clone()));
            }
            let answer = self.get(&format!("{}/SaleLine/{line}.json", self.api), &[]).await;
            match answer {
                Ok(body) => {
                    if let Some(sale) = body.get("SaleLine").and_then(|l| id(l, "saleID")) {
                        self.parents.insert(line.clone(), sale.clone());
                        return Ok(Some(sale));
                    }
                }
                // A parent line that no longer exists: try the next one.
                Err(error) if error.class == ErrorClass::Permanent => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    async fn read_stream(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        let mut cursor: Cursor = match checkpoint {
            None => Cursor::default(),
            Some(checkpoint) => serde_json::from_value(checkpoint.0.clone())
                .map_err(|e| ConnectorError::config(format!("the {stream} checkpoint is unreadable: {e}")))?,
        };
        if cursor.v > 1 {
            return Err(ConnectorError::config(format!(
                "the {stream} checkpoint has format {}, newer than this tillflow",
                cursor.v
            )));
        }
        cursor.v = 1;
        let (path, kind, relations) = match stream {
            "sales" => ("Sale.json", "Sale", SALE_RELATIONS),
            "customers" => ("Customer.json", "Customer", r#"["Contact","CustomerType"]"#),
            other => return Err(ConnectorError::config(format!("lightspeed has no stream `{other}`"))),
        };
        if stream == "sales" && (self.lookups.is_none() || cursor.next.is_none()) {
            self.load_lookups().await?;
        }
        let page = match &cursor.next {
            Some(next) => self.get(next, &[]).await?,
            None => {
                let mut query = vec![
                    ("load_relations", relations.to_owned()),
                    ("sort", "timeStamp".to_owned()),
                    ("limit", "100".to_owned()),
                ];
                if let Some(since) = &cursor.since {
                    query.push(("timeStamp", format!(">=,{since}")));
                }
                self.get(&format!("{}/{path}", self.api), &query).await?
            }
        };
        let mut items = Vec::new();
        for raw in records(&page, kind) {
            let stamp = text(raw, "timeStamp").into_owned();
            if cursor.max_seen.as_deref().is_none_or(|max| stamp.as_str() > max) && !stamp.is_empty() {
                cursor.max_seen = Some(stamp);
            }
            items.extend(self.map(stream, raw).await?);
        }
        let next = page["@attributes"]["next"].as_str().filter(|n| !n.is_empty()).map(str::to_owned);
        let last = next.is_none();
        let cursor = if last {
            Cursor { v: 1, next: None, since: cursor.max_seen.clone().or(cursor.since), max_seen: None }
        } else {
            Cursor { next, ..cursor }
        };
        Ok(Page { items, checkpoint: Checkpoint(serde_json::to_value(cursor).expect("cursor serializes")), last })
    }

    async fn map(&mut self, stream: &str, raw: &Value) -> Result<Vec<SourceItem>, ConnectorError> {
        let bad = |reason: String| vec![Err(BadRecord { stream: stream.to_owned(), reason, raw: raw.clone() })];
        if stream == "customers" {
            return Ok(match mapping::customer(&self.name, raw) {
                Ok(customer) => vec![Ok(Record::Customer(customer))],
                Err(reason) => bad(reason),
            });
        }
        // Remember which sale each line belongs to: a refund read later then
        // finds its original without an extra request. Bounded, so memory
        // does not grow with the history.
        if self.parents.len() > 200_000 {
            self.parents.clear();
        }
        if let Some(sale_id) = id(raw, "saleID") {
            for line in crate::json::many(raw, "SaleLines", "SaleLine") {
                if let Some(line_id) = id(line, "saleLineID") {
                    self.parents.insert(line_id, sale_id.clone());
                }
            }
        }
        let lookups = self.lookups.clone().unwrap_or_default();
        match mapping::sale(&self.name, raw, &lookups, &self.currency) {
            Ok(Mapped::Records(records)) => Ok(records.into_iter().map(Ok).collect()),
            Ok(Mapped::Open) => Ok(Vec::new()),
            Ok(Mapped::NeedsParent(lines)) => match self.parent_sale(&lines).await? {
                Some(original) => Ok(match mapping::refund(&self.name, raw, &original, &lookups, &self.currency) {
                    Ok(refund) => vec![Ok(Record::Refund(refund))],
                    Err(reason) => bad(reason),
                }),
                None => Ok(bad(format!(
                    "refund sale {}: none of its parent sale lines {lines:?} could be found",
                    text(raw, "saleID")
                ))),
            },
            Err(reason) => Ok(bad(reason)),
        }
    }
}

#[async_trait]
impl Source for LightspeedSource {
    fn platform(&self) -> &'static str {
        crate::PLATFORM
    }

    fn streams(&self) -> Vec<String> {
        vec!["customers".into(), "sales".into()]
    }

    async fn read(&mut self, stream: &str, checkpoint: Option<&Checkpoint>) -> Result<Page, ConnectorError> {
        self.read_stream(stream, checkpoint).await
    }

    async fn check(&mut self) -> Result<(), ConnectorError> {
        self.get(&format!("{}.json", self.api), &[]).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tillflow_http::reqwest::header::HeaderValue;

    fn headers(level: &str, drip: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-ls-api-bucket-level", HeaderValue::from_str(level).unwrap());
        headers.insert("x-ls-api-drip-rate", HeaderValue::from_str(drip).unwrap());
        headers
    }

    #[test]
    fn the_bucket_is_let_drain_before_it_fills() {
        assert_eq!(LeakyBucket.pause_after(200, &headers("10/90", "1")), None);
        assert_eq!(LeakyBucket.pause_after(200, &headers("81/90", "1")), Some(Duration::from_secs(36)));
        assert_eq!(LeakyBucket.pause_after(200, &headers("81/90", "2")), Some(Duration::from_secs(18)));
    }
}
