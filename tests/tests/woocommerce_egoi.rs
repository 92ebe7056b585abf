//! WooCommerce → E-goi Order Sync end to end: the real `tillflow` program
//! against the WooCommerce sandbox and two E-goi sandboxes (one sink with
//! gross revenue, one with net), then the E-goi account under a spent rate
//! window and a small size cap.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tillflow_kit::sandbox::Sandbox;
use tillflow_sink_egoi::sandbox::{Budget, DOMAIN, EgoiSandbox, LIST_ID};
use tillflow_source_woocommerce::sandbox::WooSandbox;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");
const CUSTOMERS: u64 = 20;
const ORDERS: u64 = 120;

struct World {
    woo: WooSandbox,
    gross: EgoiSandbox,
    net: EgoiSandbox,
    dir: tempfile::TempDir,
}

fn sink_table(name: &str, sandbox: &EgoiSandbox, revenue: &str) -> String {
    format!(
        "[sinks.{name}]\ntype = \"egoi\"\napi_key = \"${{EGOI_API_KEY}}\"\nbase_url = \"{}\"\nlist_id = {LIST_ID}\n\
         domain = \"{DOMAIN}\"\nstore_url = \"https://{DOMAIN}\"\nrevenue = \"{revenue}\"\nimport_poll = \"20ms\"\n\
         field_map = {{ city = \"Cidade\" }}\n",
        sandbox.base_url()
    )
}

impl World {
    async fn start() -> Self {
        let woo = WooSandbox::start("ck_e2e", "cs_e2e").await.unwrap();
        woo.seed(CUSTOMERS, ORDERS);
        let gross = EgoiSandbox::start("egoi_e2e").await.unwrap();
        let net = EgoiSandbox::start("egoi_e2e").await.unwrap();
        Self { woo, gross, net, dir: tempfile::tempdir().unwrap() }
    }

    fn config(&self) -> PathBuf {
        let text = format!(
            "[state]\nurl = \"sqlite://state.db\"\n\n[sources.shop]\ntype = \"woocommerce\"\nbase_url = \"{woo}\"\n\
             consumer_key = \"ck_e2e\"\nconsumer_secret = \"cs_e2e\"\npoll_interval = \"1h\"\n\n{gross}\n{net}\n\
             [[pipelines]]\nname = \"shop-to-gross\"\nsource = \"shop\"\nsink = \"gross\"\n\n\
             [[pipelines]]\nname = \"shop-to-net\"\nsource = \"shop\"\nsink = \"net\"\n",
            woo = self.woo.base_url(),
            gross = sink_table("gross", &self.gross, "gross"),
            net = sink_table("net", &self.net, "net"),
        );
        let path = self.dir.path().join("tillflow.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn run_once(&self, config: &Path) -> String {
        let mut command = Command::new(TILLFLOW);
        command.args(["run", "--once", "--config"]).arg(config).env("EGOI_API_KEY", "egoi_e2e").env("RUST_LOG", "warn");
        let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "run --once failed: {stdout}\n{stderr}");
        assert!(!stderr.contains("egoi_e2e"), "the key leaked: {stderr}");
        stdout
    }
}

fn money(value: &Value) -> f64 {
    value.as_str().and_then(|s| s.parse().ok()).or_else(|| value.as_f64()).unwrap_or_default()
}

/// The orders E-goi must hold: an email, a total, not trashed.
fn expected_orders(woo: &WooSandbox) -> Vec<u64> {
    let shop = woo.world();
    let shop = shop.lock().unwrap();
    shop.orders()
        .filter(|o| o["billing"]["email"] != "" && money(&o["total"]) != 0.0 && o["status"] != "trash")
        .map(|o| o["id"].as_u64().unwrap())
        .collect()
}

fn requests(sandbox: &EgoiSandbox) -> u64 {
    sandbox.world().lock().unwrap().requests
}

fn stored(sandbox: &EgoiSandbox, id: u64) -> tillflow_sink_egoi::sandbox::SandboxOrder {
    sandbox
        .world()
        .lock()
        .unwrap()
        .orders
        .get(&id.to_string())
        .cloned()
        .unwrap_or_else(|| panic!("order {id} is not in E-goi"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_history_then_exactly_the_orders_whose_state_changed() {
    let world = World::start().await;
    let config = world.config();
    let want = expected_orders(&world.woo);

    let summary = world.run_once(&config).await;
    assert!(summary.contains("shop-to-gross:"), "{summary}");
    assert!(summary.contains("no email 4"), "the guests without an email are counted: {summary}");
    for sandbox in [&world.gross, &world.net] {
        let egoi = sandbox.world();
        let egoi = egoi.lock().unwrap();
        let mut held: Vec<u64> = egoi.orders.keys().map(|id| id.parse().unwrap()).collect();
        held.sort_unstable();
        let mut wanted = want.clone();
        wanted.sort_unstable();
        assert_eq!(held, wanted, "every order with an email and a total, once");
        assert_eq!(egoi.order_writes as usize, want.len(), "each written once");
        assert_eq!(egoi.orphan_orders, 0, "every imported order's buyer was a contact before it");
        assert_eq!(egoi.contact_writes, CUSTOMERS, "the customers, in update imports");
        assert_eq!(egoi.connected.get(DOMAIN), Some(&LIST_ID), "the domain was connected to the list");
        assert!(egoi.invalid == 0 && egoi.throttled == 0, "nothing refused");
        // E-goi's own table: processing is pending, cancelled is canceled.
        assert_eq!(egoi.orders["4"].status, "pending");
        assert_eq!(egoi.orders["25"].status, "canceled");
        assert_eq!(egoi.orders["1"].status, "completed");
        assert_eq!(egoi.contact("customer2@example.com").unwrap().extra.get(&1), Some(&json!("Lisbon")));
    }
    // Order 3 was refunded in full at the till: gross keeps its total, net
    // sends 0 (alone: the bulk import takes only totals above zero).
    let total = money(&world.woo.order(3).unwrap()["total"]);
    assert_eq!(money(&stored(&world.gross, 3).total), total);
    assert_eq!(stored(&world.net, 3).total, json!(0));
    assert_eq!(stored(&world.net, 3).via, "live");

    // A second run sends nothing at all.
    let (gross_before, net_before) = (requests(&world.gross), requests(&world.net));
    world.run_once(&config).await;
    assert_eq!(
        (requests(&world.gross), requests(&world.net)),
        (gross_before, net_before),
        "the second run sent requests"
    );

    // processing → on-hold: both are "pending" to E-goi, so nothing goes.
    world.woo.update_order(4, |order| order["status"] = json!("on-hold"));
    let summary = world.run_once(&config).await;
    assert_eq!(requests(&world.gross), gross_before, "on-hold re-posted an unchanged order: {summary}");

    // on-hold → completed: exactly one order re-posted, with its new status.
    world.woo.update_order(4, |order| {
        order["status"] = json!("completed");
        order["date_completed_gmt"] = order["date_modified_gmt"].clone();
    });
    world.run_once(&config).await;
    let writes = world.gross.world().lock().unwrap().order_writes;
    assert_eq!(writes as usize, want.len() + 1, "one order re-posted");
    let order = stored(&world.gross, 4);
    assert_eq!(order.statuses, vec!["pending", "completed"]);
    assert_eq!(order.via, "live");
    let placed = world.woo.order(4).unwrap()["date_created_gmt"].as_str().unwrap().to_owned();
    assert_eq!(order.date, format!("{placed}+00:00"), "the live endpoint keeps the order's own date");

    // A refund: gross sends nothing; net re-posts the lower total.
    let gross_writes = world.gross.world().lock().unwrap().order_writes;
    world.woo.refund(4, "5.00", "damaged");
    world.run_once(&config).await;
    assert_eq!(world.gross.world().lock().unwrap().order_writes, gross_writes, "gross revenue ignores refunds");
    let net = stored(&world.net, 4);
    let totals: Vec<f64> = net.totals.iter().map(money).collect();
    assert_eq!(totals.len(), 3, "imported, completed, refunded: {totals:?}");
    assert!((totals[1] - totals[2] - 5.0).abs() < 0.001, "net follows the refund: {totals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_rate_window_and_a_413_are_survived_with_nothing_lost() {
    let world = World::start().await;
    let config = world.config();
    let want = expected_orders(&world.woo);
    {
        let egoi = world.gross.world();
        let mut egoi = egoi.lock().unwrap();
        // Another client of the account spent the window just now: the
        // first answer is a 429 whose headers say when it resets.
        let mut spent = Budget::new(3, Duration::from_secs(2));
        spent.spend_all();
        egoi.rate = Some(spent);
        // A small cap: the history import (~40 KB) must be halved.
        egoi.max_body = 16 * 1024;
    }
    world.run_once(&config).await;
    let egoi = world.gross.world();
    let egoi = egoi.lock().unwrap();
    assert!(egoi.throttled >= 1, "a 429 was answered");
    assert!(egoi.too_large >= 1, "a 413 was answered");
    assert_eq!(egoi.orders.len(), want.len(), "nothing lost");
    assert_eq!(egoi.order_writes as usize, want.len(), "nothing twice");
    assert_eq!(egoi.orphan_orders, 0);
}
