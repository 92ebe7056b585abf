//! `tillflow sandbox`: one platform simulator on its own, so any tool (or a
//! person with curl) can be pointed at it.

use crate::commands::Failure;
use std::net::SocketAddr;
use std::sync::Arc;
use tillflow_http::sandbox::{Fault, FaultPlan, Faults};
use tillflow_sink_customerio::sandbox::CustomerIoSandbox;
use tillflow_sink_klaviyo::sandbox::KlaviyoSandbox;
use tillflow_source_lightspeed::sandbox::LightspeedSandbox;
use tillflow_source_woocommerce::sandbox::WooSandbox;

pub const PLATFORMS: [&str; 4] = ["woocommerce", "lightspeed", "customerio", "klaviyo"];

fn started(error: std::io::Error) -> Failure {
    Failure::config(format!("sandbox: cannot listen: {error}"))
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
    let arm = |faults: Arc<Faults>| {
        faults.set_plan(plan.clone());
        faults.inject_next(Fault::TooManyRequests, too_many_requests);
    };
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let customers = (orders / 4).max(1);
    // Each sandbox stops when dropped, so they live until the end of this function.
    let (_woo, _lightspeed, _cio, _klaviyo);
    match platform {
        "woocommerce" => {
            let sandbox = WooSandbox::start_on(address, "ck_sandbox", "cs_sandbox").await.map_err(started)?;
            sandbox.seed(customers, orders);
            arm(sandbox.faults());
            println!("WooCommerce sandbox at {} ({orders} orders, {customers} customers)", sandbox.base_url());
            println!("  consumer_key = \"ck_sandbox\"   consumer_secret = \"cs_sandbox\"");
            _woo = sandbox;
        }
        "lightspeed" => {
            let sandbox =
                LightspeedSandbox::start_on(address, "1", "ls_sandbox", "rt-sandbox").await.map_err(started)?;
            sandbox.seed(customers, orders);
            arm(sandbox.faults());
            println!("Lightspeed R-Series sandbox at {} ({orders} sales, {customers} customers)", sandbox.base_url());
            println!(
                "  account_id = \"1\"   client_secret = \"ls_sandbox\"   refresh_token = \"rt-sandbox\"   token_url = \"{}\"",
                sandbox.token_url()
            );
            _lightspeed = sandbox;
        }
        "customerio" => {
            let sandbox = CustomerIoSandbox::start_on(address, "site_sandbox", "key_sandbox").await.map_err(started)?;
            arm(sandbox.faults());
            println!("Customer.io sandbox at {} (inspect: GET /sandbox/state)", sandbox.base_url());
            println!("  site_id = \"site_sandbox\"   api_key = \"key_sandbox\"");
            _cio = sandbox;
        }
        "klaviyo" => {
            let sandbox = KlaviyoSandbox::start_on(address, "pk_sandbox").await.map_err(started)?;
            arm(sandbox.faults());
            println!("Klaviyo sandbox at {} (inspect: GET /sandbox/state)", sandbox.base_url());
            println!("  api_key = \"pk_sandbox\"");
            _klaviyo = sandbox;
        }
        other => {
            return Err(Failure::config(format!(
                "--platform: unknown platform `{other}` (expected one of {})",
                PLATFORMS.join(", ")
            )));
        }
    }
    if !plan.is_empty() {
        println!("  faults: {plan:?}");
    }
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c().await.map_err(|e| Failure::pipeline(format!("sandbox: {e}")))?;
    Ok(())
}
