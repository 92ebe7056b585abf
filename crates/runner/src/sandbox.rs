//! `tillflow sandbox`: one platform simulator on its own, so any tool (or a
//! person with curl) can be pointed at it. Every platform in the registry
//! that has a sandbox can be started.

use crate::exit::Failure;
use crate::registry;
use std::net::SocketAddr;
use tillflow_http::sandbox::{Fault, FaultPlan};
use tillflow_kit::sandbox::{SandboxFactory, SandboxOptions};

fn factory(platform: &str) -> Option<(&'static str, SandboxFactory)> {
    registry::SOURCES
        .iter()
        .filter_map(|d| Some((d.type_name, d.title, d.sandbox?)))
        .chain(registry::SINKS.iter().filter_map(|d| Some((d.type_name, d.title, d.sandbox?))))
        .find(|(name, _, _)| *name == platform)
        .map(|(_, title, start)| (title, start))
}

/// Runs until Ctrl-C. `orders` sizes the seeded history of source platforms;
/// `too_many_requests` answers that many requests with 429 + Retry-After;
/// `faults` is the `--faults` notation (see [`FaultPlan::parse`]).
pub async fn run(
    platform: &str,
    port: u16,
    orders: u64,
    too_many_requests: u32,
    faults: Option<&str>,
) -> Result<(), Failure> {
    let plan = match faults {
        Some(text) => FaultPlan::parse(text).map_err(|e| Failure::config(format!("--faults: {e}")))?,
        None => FaultPlan::none(),
    };
    let Some((title, start)) = factory(platform) else {
        return Err(Failure::config(format!(
            "--platform: unknown platform `{platform}` (expected one of {})",
            registry::sandbox_platforms().join(", ")
        )));
    };
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let options = SandboxOptions { address, customers: (orders / 4).max(1), orders };
    // The sandbox stops when dropped, so it lives until the end of this function.
    let sandbox = start(options).await.map_err(|error| Failure::config(format!("sandbox: cannot listen: {error}")))?;
    let faults = sandbox.faults();
    faults.set_plan(plan.clone());
    faults.inject_next(Fault::TooManyRequests, too_many_requests);
    println!("{title} sandbox at {}: {}", sandbox.base_url(), sandbox.describe());
    println!("  {}", sandbox.credentials());
    if !plan.is_empty() {
        println!("  faults: {plan:?}");
    }
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c().await.map_err(|e| Failure::pipeline(format!("sandbox: {e}")))?;
    Ok(())
}
