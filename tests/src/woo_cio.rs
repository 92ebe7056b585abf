//! A WooCommerce sandbox and a Customer.io sandbox with a `tillflow` config
//! joining them: the world of the end-to-end tests that need one real
//! pipeline and care about the runner around it (webhooks, the state file).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tillflow_kit::sandbox::Sandbox;
use tillflow_sink_customerio::sandbox::CustomerIoSandbox;
use tillflow_source_woocommerce::sandbox::WooSandbox;

/// The seeded shop: customers and orders.
pub const CUSTOMERS: u64 = 20;
pub const ORDERS: u64 = 120;

pub struct World {
    pub woo: WooSandbox,
    pub cio: CustomerIoSandbox,
    pub dir: tempfile::TempDir,
    /// The `tillflow` program under test (tests know it as `CARGO_BIN_EXE_…`).
    pub tillflow: PathBuf,
}

impl World {
    pub async fn start(tillflow: &str) -> Self {
        let woo = WooSandbox::start("ck_e2e", "cs_e2e").await.unwrap();
        woo.seed(CUSTOMERS, ORDERS);
        let cio = CustomerIoSandbox::start("site_e2e", "key_e2e").await.unwrap();
        Self { woo, cio, dir: tempfile::tempdir().unwrap(), tillflow: PathBuf::from(tillflow) }
    }

    pub fn config(&self, listen: Option<u16>) -> PathBuf {
        let server = listen.map(|port| format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n")).unwrap_or_default();
        let text = format!(
            r#"[state]
url = "sqlite://state.db"

{server}[sources.shop]
type = "woocommerce"
base_url = "{woo}"
consumer_key = "${{WC_CONSUMER_KEY}}"
consumer_secret = "${{WC_CONSUMER_SECRET}}"
webhook_secret = "${{WC_WEBHOOK_SECRET}}"
poll_interval = "1h"

[sinks.crm]
type = "customerio"
site_id = "${{CIO_SITE_ID}}"
api_key = "${{CIO_API_KEY}}"
base_url = "{cio}"

[[pipelines]]
name = "shop-to-crm"
source = "shop"
sink = "crm"
"#,
            woo = self.woo.base_url(),
            cio = self.cio.base_url()
        );
        let path = self.dir.path().join("tillflow.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn command(&self, config: &Path, arguments: &[&str]) -> Command {
        let mut command = Command::new(&self.tillflow);
        command
            .args(arguments)
            .arg("--config")
            .arg(config)
            .env("WC_CONSUMER_KEY", "ck_e2e")
            .env("WC_CONSUMER_SECRET", "cs_e2e")
            .env("WC_WEBHOOK_SECRET", "whsec_e2e")
            .env("CIO_SITE_ID", "site_e2e")
            .env("CIO_API_KEY", "key_e2e")
            .env("RUST_LOG", "warn");
        command
    }

    pub async fn run_once(&self, config: &Path) -> String {
        let mut command = self.command(config, &["run", "--once"]);
        let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "run --once failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        stdout
    }

    pub fn events(&self, name: &str) -> Vec<Value> {
        let world = self.cio.world();
        let world = world.lock().unwrap();
        world.events_named(name).iter().map(|e| e.attributes.clone()).collect()
    }

    pub fn person(&self, key: &str) -> serde_json::Map<String, Value> {
        let world = self.cio.world();
        let world = world.lock().unwrap();
        world.people.get(key).map(|p| p.attributes.clone()).unwrap_or_default()
    }

    pub fn batch_requests(&self) -> u64 {
        self.cio.world().lock().unwrap().batch_requests
    }

    /// Webhooks still kept in the state file's inbox.
    pub async fn inbox_rows(&self) -> i64 {
        let url = format!("sqlite://{}", self.dir.path().join("state.db").display());
        let mut connection: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
        let rows = sqlx::query_scalar("SELECT COUNT(*) FROM inbox").fetch_one(&mut connection).await.unwrap();
        sqlx::Connection::close(connection).await.unwrap();
        rows
    }
}
