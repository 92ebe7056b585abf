//! OAuth2 with rotating refresh tokens (Lightspeed R-Series and X-Series):
//! the old refresh token is revoked once the new one is issued, so every new
//! refresh token is written to the state store before the access token that
//! came with it is used; a run killed right after a refresh still finds the
//! live token next time. One manager per account: every pipeline reading
//! the account shares it, and refreshes are single-flight, so two never race
//! to rotate the same token. A refresh token set anew in the config (the
//! operator authorized again) takes over from the stored one.

use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tillflow_core::{ConnectorError, StateStore};
use tillflow_http::{HttpClient, HttpError, Tier};
use tokio::sync::Mutex;

/// How the token endpoint takes its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenEncoding {
    Json,
    Form,
}

/// Refreshing is itself rate-limited by the platforms; once a second is plenty.
const TOKEN_TIER: Tier = Tier::new("oauth-token", 1);
/// Refresh this long before `expires_in` runs out.
const EARLY: Duration = Duration::from_secs(60);

struct Access {
    token: SecretString,
    expires_at: Instant,
}

pub struct TokenManager {
    /// The platform's name in messages ("Lightspeed").
    title: &'static str,
    encoding: TokenEncoding,
    client: HttpClient,
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    configured_refresh_token: SecretString,
    state: Arc<dyn StateStore>,
    /// Where the rotated refresh token is kept (`<platform>:<source name>`).
    secret_owner: String,
    access: Mutex<Option<Access>>,
}

/// Who a token manager works for: the platform (config `type`, which
/// names where its token is kept), its title in messages, and how its token
/// endpoint takes parameters.
#[derive(Clone, Copy, Debug)]
pub struct TokenPlatform {
    pub platform: &'static str,
    pub title: &'static str,
    pub encoding: TokenEncoding,
}

impl TokenManager {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        platform: TokenPlatform,
        client: HttpClient,
        token_url: String,
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
        state: Arc<dyn StateStore>,
        source_name: &str,
    ) -> Self {
        Self {
            title: platform.title,
            encoding: platform.encoding,
            client,
            token_url,
            client_id,
            client_secret,
            configured_refresh_token: refresh_token,
            state,
            secret_owner: format!("{}:{source_name}", platform.platform),
            access: Mutex::new(None),
        }
    }

    /// A valid access token, refreshing ahead of expiry.
    pub async fn access_token(&self) -> Result<SecretString, ConnectorError> {
        let mut access = self.access.lock().await;
        if let Some(current) = access.as_ref()
            && current.expires_at > Instant::now() + EARLY
        {
            return Ok(current.token.clone());
        }
        let fresh = self.refresh().await?;
        let token = fresh.token.clone();
        *access = Some(fresh);
        Ok(token)
    }

    /// Which configured refresh token the stored ones descend from: a keyed
    /// hash, so the state store never holds the configured token itself.
    fn configured_mark(&self) -> String {
        let key = SecretString::from("tillflow: the configured refresh token");
        tillflow_http::webhook::sign_hmac_sha256_base64(&key, self.configured_refresh_token.expose_secret().as_bytes())
    }

    /// Forgets the access token (after a 401) so the next call refreshes.
    pub async fn invalidate(&self) {
        *self.access.lock().await = None;
    }

    async fn refresh(&self) -> Result<Access, ConnectorError> {
        // Other runners sharing the state wait here, then read the token this
        // refresh stores, rather than spend the one it replaces.
        let _rotating =
            self.state.secret_lock(&self.secret_owner).await.map_err(|e| ConnectorError::transient(e.to_string()))?;
        let stored = self
            .state
            .secret_get(&self.secret_owner, "refresh_token")
            .await
            .map_err(|e| ConnectorError::transient(e.to_string()))?;
        // A stored token descends from the configured one it was rotated from;
        // a different configured token means the operator authorized again.
        let origin = self
            .state
            .secret_get(&self.secret_owner, "refresh_token_origin")
            .await
            .map_err(|e| ConnectorError::transient(e.to_string()))?;
        let configured_mark = self.configured_mark();
        let refresh_token = match (stored, origin) {
            (Some(stored), None) => SecretString::from(stored),
            (Some(stored), Some(origin)) if origin == configured_mark => SecretString::from(stored),
            (Some(_), Some(_)) => {
                tracing::info!(source = %self.secret_owner, "refresh_token changed in the config: using it, not the stored one");
                self.configured_refresh_token.clone()
            }
            (None, _) => self.configured_refresh_token.clone(),
        };
        let fields = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        let request = self.client.reqwest().post(&self.token_url);
        let request = match self.encoding {
            TokenEncoding::Json => {
                let body: serde_json::Map<String, serde_json::Value> =
                    fields.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect();
                request.json(&body)
            }
            TokenEncoding::Form => request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(fields.iter().map(|(k, v)| format!("{k}={}", form_escape(v))).collect::<Vec<_>>().join("&")),
        };
        let request = request.build().map_err(|e| ConnectorError::config(format!("token_url: {e}")))?;
        let (_, answer): (_, serde_json::Value) =
            self.client.send_json(&TOKEN_TIER, request).await.map_err(|error| match error {
                // A refused refresh token is a configuration problem (revoked or
                // expired after 30 days unused), never something to retry.
                HttpError::Rejected { status: 400, message, .. } | HttpError::Unauthorized { message, .. } => {
                    ConnectorError::config(format!(
                        "{} refused the refresh token; authorize tillflow again and set refresh_token ({message})",
                        self.title
                    ))
                }
                other => other.into(),
            })?;
        let access = answer["access_token"]
            .as_str()
            .ok_or_else(|| ConnectorError::transient("the token response has no access_token"))?;
        if let Some(rotated) = answer["refresh_token"].as_str().filter(|t| !t.is_empty()) {
            // Persisted before the new access token is ever used.
            self.state
                .secret_put(&self.secret_owner, "refresh_token", rotated)
                .await
                .map_err(|e| ConnectorError::transient(format!("could not persist the rotated refresh token: {e}")))?;
            self.state
                .secret_put(&self.secret_owner, "refresh_token_origin", &configured_mark)
                .await
                .map_err(|e| ConnectorError::transient(format!("could not persist the rotated refresh token: {e}")))?;
            tracing::info!(source = %self.secret_owner, platform = self.title, "refresh token rotated and stored");
        }
        let expires_in = answer["expires_in"].as_u64().unwrap_or(1800);
        Ok(Access {
            token: SecretString::from(access.to_owned()),
            expires_at: Instant::now() + Duration::from_secs(expires_in),
        })
    }
}

/// `application/x-www-form-urlencoded` escaping of one value.
fn form_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_values_are_escaped() {
        assert_eq!(super::form_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
