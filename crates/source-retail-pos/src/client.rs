//! The X-Series API 2.0 as one store reaches it: one HTTP client, a
//! personal token or rotating OAuth tokens (the kit's token manager,
//! form-encoded as X-Series wants), and the store's budget of
//! 300 × registers + 50 requests per five minutes, sized from `/registers`.

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::sync::OnceLock;
use tillflow_core::ConnectorError;
use tillflow_http::{HttpClient, Tier};
use tillflow_kit::auth::TokenManager;

/// The `/registers` reads that size the budget (once per account) go
/// through a tier of their own, set aside from the store's budget.
pub(crate) const REGISTERS_TIER: Tier = Tier::unlimited("xs-registers").with_per_minute(10);

/// The store's limit per minute: 300 × registers + 50 per five minutes,
/// less the registers tier's share.
pub fn per_minute_for(registers: usize) -> u32 {
    let per_five_minutes = 300 * registers.max(1) as u64 + 50;
    u32::try_from(per_five_minutes / 5).unwrap_or(u32::MAX).saturating_sub(REGISTERS_TIER.per_minute).max(1)
}

/// How requests are let in.
pub enum Auth {
    Personal(SecretString),
    Rotating(Box<TokenManager>),
}

pub struct XSeriesClient {
    /// The configured source name (`store` in `[sources.store]`).
    pub name: String,
    pub(crate) client: HttpClient,
    /// `{store}/api/2.0`.
    pub(crate) api: String,
    pub(crate) auth: Auth,
    /// Sized once, from the first `/registers` read.
    tier: OnceLock<Tier>,
}

impl XSeriesClient {
    pub fn new(name: String, client: HttpClient, store_url: &str, auth: Auth) -> Self {
        Self { name, client, api: format!("{}/api/2.0", store_url.trim_end_matches('/')), auth, tier: OnceLock::new() }
    }

    /// Sets the budget from the store's register count (the first call wins:
    /// an account's limiter is made once).
    pub fn size_budget(&self, registers: usize) {
        let per_minute = per_minute_for(registers);
        if self.tier.set(Tier::unlimited("xs-api").with_per_minute(per_minute)).is_ok() {
            tracing::info!(source = %self.name, registers, per_minute, "X-Series request budget sized");
        }
    }

    pub fn budget_sized(&self) -> bool {
        self.tier.get().is_some()
    }

    fn tier(&self) -> &Tier {
        self.tier.get_or_init(|| Tier::unlimited("xs-api").with_per_minute(per_minute_for(1)))
    }

    async fn token(&self) -> Result<SecretString, ConnectorError> {
        match &self.auth {
            Auth::Personal(token) => Ok(token.clone()),
            Auth::Rotating(manager) => manager.access_token().await,
        }
    }

    /// GET `{api}{path}` decoded as `T`; `None` on a 404. One refresh and
    /// retry on a 401 with rotating tokens.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, ConnectorError> {
        let tier = if path == "/registers" { &REGISTERS_TIER } else { self.tier() };
        for attempt in 0..2 {
            let token = self.token().await?;
            let request = self
                .client
                .reqwest()
                .get(format!("{}{path}", self.api))
                .query(query)
                .bearer_auth(token.expose_secret())
                .header("accept", "application/json")
                .build()
                .map_err(|e| ConnectorError::config(format!("base_url: {e}")))?;
            match self.client.send_json::<T>(tier, request).await {
                Ok((_, body)) => return Ok(Some(body)),
                Err(error) if error.status() == Some(404) => return Ok(None),
                Err(error) if attempt == 0 && error.status() == Some(401) => match &self.auth {
                    Auth::Rotating(manager) => {
                        tracing::info!(source = %self.name, "X-Series refused the access token; refreshing once");
                        manager.invalidate().await;
                    }
                    Auth::Personal(_) => {
                        return Err(ConnectorError::config(format!(
                            "sources.{}.personal_token: X-Series refused it (401)",
                            self.name
                        )));
                    }
                },
                Err(error) => return Err(error.into()),
            }
        }
        unreachable!("the second attempt returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_the_register_count() {
        // One register: 350 per five minutes, 70 a minute, 10 of them for /registers.
        assert_eq!(per_minute_for(1), 60);
        assert_eq!(per_minute_for(0), 60, "a store has at least one register");
        assert_eq!(per_minute_for(3), 180);
    }
}
