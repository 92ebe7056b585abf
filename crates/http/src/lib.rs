//! tillflow-http: the HTTP client stack every connector uses.
//!
//! One [`HttpClient`] per platform account. Each request passes, outermost
//! first: a concurrency limit → retry (exponential backoff with jitter,
//! `Retry-After` wins, a retry budget) → the rate gate (governor quotas per
//! endpoint tier, a shared pause after a 429, slow-down hints from headers) →
//! a per-attempt timeout → reqwest. Secrets are `secrecy` types; URLs and emails
//! are redacted before they reach a log line.

mod answer;
mod client;
mod error;
pub mod faults;
mod gate;
pub mod json_array;
pub mod redact;
mod retry;
#[cfg(feature = "sandbox")]
pub mod sandbox;
mod tier;
pub mod webhook;

pub use answer::Answer;
pub use client::{HttpClient, HttpConfig};
pub use error::HttpError;
pub use gate::{
    Advertised, RateSignals, StandardRateLimitHeaders, runners_sharing_accounts, share_accounts_among_runners,
};
pub use json_array::JsonArray;
pub use retry::{RetryConfig, parse_retry_after};
pub use tier::Tier;

pub use reqwest;
pub use secrecy::{ExposeSecret, SecretString};
