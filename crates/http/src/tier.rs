//! Endpoint tiers (the families of requests a platform limits together) and
//! a request travelling down the stack with its tier.

use std::sync::Arc;

/// An endpoint family sharing one rate limit at the platform (Klaviyo's
/// per-endpoint limits, Lightspeed's single bucket…): at most `per_second`
/// requests in any one-second window and `per_minute` in any minute, the way
/// platforms count (fixed windows). Zero means "no quota".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    pub name: &'static str,
    pub per_second: u32,
    pub per_minute: u32,
}

impl Tier {
    pub const fn new(name: &'static str, per_second: u32) -> Self {
        Self { name, per_second, per_minute: 0 }
    }
    pub const fn unlimited(name: &'static str) -> Self {
        Self { name, per_second: 0, per_minute: 0 }
    }
    pub const fn with_per_minute(mut self, per_minute: u32) -> Self {
        self.per_minute = per_minute;
        self
    }
}

impl Tier {
    /// This tier with each limit multiplied by `share` (rounded down, never
    /// below one request per window).
    pub fn scaled(&self, share: f64) -> Tier {
        let scale = |limit: u32| if limit == 0 { 0 } else { ((f64::from(limit) * share).floor() as u32).max(1) };
        Tier { name: self.name, per_second: scale(self.per_second), per_minute: scale(self.per_minute) }
    }
}

/// One request travelling down the stack with its tier.
pub(crate) struct Attempt {
    pub tier: Arc<Tier>,
    pub request: reqwest::Request,
}
