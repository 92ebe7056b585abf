//! E-goi's rate headers: every answer carries the client window
//! (`X-RateLimit-Limit/Remaining/Reset`) and the hourly account window
//! (`X-Account-Limit/Remaining/Reset`), resets in seconds. No numbers are
//! published, so the pace is theirs: when a window has nothing left the
//! whole account waits for its reset, and a 429 waits for the later reset
//! of the windows it exhausted.

use std::time::Duration;
use tillflow_http::RateSignals;
use tillflow_http::reqwest::header::HeaderMap;

const WINDOWS: [(&str, &str); 2] =
    [("x-ratelimit-remaining", "x-ratelimit-reset"), ("x-account-remaining", "x-account-reset")];

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[derive(Clone, Copy, Debug, Default)]
pub struct EgoiRateHeaders;

impl RateSignals for EgoiRateHeaders {
    fn pause_after(&self, status: u16, headers: &HeaderMap) -> Option<Duration> {
        let exhausted = WINDOWS
            .iter()
            .filter(|(remaining, _)| number(headers, remaining) == Some(0))
            .filter_map(|(_, reset)| number(headers, reset))
            .max();
        let wait = match exhausted {
            Some(reset) => reset,
            // A 429 that names no exhausted window: the client window's reset.
            None if status == 429 => number(headers, "x-ratelimit-reset").unwrap_or(1),
            None => return None,
        };
        Some(Duration::from_secs(wait.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn a_spent_window_waits_for_its_reset_and_a_429_for_the_later_one() {
        let signals = EgoiRateHeaders;
        let fresh = headers(&[
            ("x-ratelimit-remaining", "3"),
            ("x-ratelimit-reset", "20"),
            ("x-account-remaining", "900"),
            ("x-account-reset", "3000"),
        ]);
        assert_eq!(signals.pause_after(202, &fresh), None);
        let client_spent = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "20"),
            ("x-account-remaining", "900"),
            ("x-account-reset", "3000"),
        ]);
        assert_eq!(signals.pause_after(202, &client_spent), Some(Duration::from_secs(20)));
        let both_spent = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "20"),
            ("x-account-remaining", "0"),
            ("x-account-reset", "3000"),
        ]);
        assert_eq!(signals.pause_after(429, &both_spent), Some(Duration::from_secs(3000)), "the later reset");
        assert_eq!(signals.pause_after(429, &fresh), Some(Duration::from_secs(20)));
        assert_eq!(signals.pause_after(429, &HeaderMap::new()), Some(Duration::from_secs(1)));
    }
}
