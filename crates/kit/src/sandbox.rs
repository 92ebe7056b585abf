//! The sandbox contract: what `tillflow sandbox`, `tillflow demo` and the
//! end-to-end tests need from a platform simulator, whatever the platform.
//! The simulators themselves live in their platform's crate behind its
//! `sandbox` feature.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tillflow_http::faults::Faults;

/// Where a sandbox listens and, for a source, how big a store it holds.
#[derive(Clone, Copy, Debug)]
pub struct SandboxOptions {
    pub address: SocketAddr,
    pub customers: u64,
    pub orders: u64,
}

/// What a sink sandbox has stored, counted under the names of its sink's
/// event table (`SinkPlatform::EVENTS`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub by_name: BTreeMap<String, u64>,
    /// People or profiles it holds.
    pub people: u64,
    /// Repeats it recognised by their id and did not store again.
    pub repeats_ignored: u64,
}

/// A webhook delivery as a platform would post it to `/webhooks/<source>`.
#[derive(Clone, Debug)]
pub struct SandboxWebhook {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub trait Sandbox: Send + Sync {
    /// Where the platform's API is served.
    fn base_url(&self) -> String;

    /// The fault injector in front of its platform routes.
    fn faults(&self) -> Arc<Faults>;

    /// The connector's keys (besides `type`) that point it at this sandbox,
    /// as TOML lines.
    fn connector_keys(&self) -> String;

    /// The credentials it accepts, for a person pointing a tool at it.
    fn credentials(&self) -> String;

    /// What it holds, in a phrase ("2000 orders (Oliver POS and online) over
    /// 500 customers").
    fn describe(&self) -> String;

    /// Rings the `n`-th sale of a live session at a till now (a source
    /// sandbox; false for a sink). The same `n` makes the same sale in two
    /// sandboxes seeded alike, so a soak and a calm run can be compared.
    fn ring_sale(&self, _n: u64) -> bool {
        false
    }

    /// The delivery the platform would post for the `n`-th live sale (after
    /// `ring_sale(n)`), signed as it signs them; `None` when it posts none.
    fn sale_webhook(&self, _n: u64) -> Option<SandboxWebhook> {
        None
    }

    /// What a sink sandbox stored (empty for a source).
    fn received(&self) -> Received {
        Received::default()
    }
}

/// A sandbox on its way up.
pub type Starting = Pin<Box<dyn Future<Output = std::io::Result<Box<dyn Sandbox>>> + Send>>;

/// Starts a platform's sandbox.
pub type SandboxFactory = fn(SandboxOptions) -> Starting;
