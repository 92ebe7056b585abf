//! `tillflow-bench`'s figures of cost per order, measured on the real
//! `tillflow` binary against sandboxes in the bench's own process: the CPU a
//! `run --once` spends per order (its own user + system time, read from
//! `/proc` once it has exited; its SQLite worker's share; the state store's
//! statements by kind, from their log), many stores in one process (orders/s and
//! peak RSS), and webhook → sink latency — at a given rate, and for a
//! walk-in customer whose state already holds a long history of orders.

use crate::free_port;
use crate::state_statements::{StatementCost, summarize};
use crate::state_worker::WorkerWatch;
use jiff::Timestamp;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tillflow_core::StateStore;
use tillflow_core::model::{Currency, OrderFact};
use tillflow_core::rust_decimal::Decimal;
use tillflow_http::SecretString;
use tillflow_http::webhook::sign_hmac_sha256_base64;
use tillflow_kit::sandbox::Sandbox;
use tillflow_sink_customerio::sandbox::CustomerIoSandbox;
use tillflow_source_woocommerce::sandbox::{WooSandbox, seeded_order};
use tillflow_state_sqlite::SqliteStore;

/// The pipeline of every config written here.
const PIPELINE: &str = "bench";

/// A config of one WooCommerce store per `woo` URL, each into the one
/// Customer.io sink, every client unthrottled; state in `dir/state`.
fn config(dir: &Path, woo: &[String], cio: &str, listen: Option<u16>, state: &str) -> PathBuf {
    let mut text = format!("[state]\nurl = \"sqlite://{state}\"\n\n");
    if let Some(port) = listen {
        text.push_str(&format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n"));
    }
    text.push_str(&format!(
        "[sinks.crm]\ntype = \"customerio\"\nsite_id = \"site_bench\"\napi_key = \"key_bench\"\nbase_url = \"{cio}\"\n\
         requests_per_second = 100000\n"
    ));
    for (n, url) in woo.iter().enumerate() {
        let name = if woo.len() == 1 { PIPELINE.to_owned() } else { format!("{PIPELINE}{n}") };
        text.push_str(&format!(
            "\n[sources.shop{n}]\ntype = \"woocommerce\"\nbase_url = \"{url}\"\nconsumer_key = \"ck_bench\"\n\
             consumer_secret = \"cs_bench\"\nwebhook_secret = \"whsec_bench\"\npoll_interval = \"1h\"\n\
             requests_per_second = 100000\n\n[[pipelines]]\nname = \"{name}\"\nsource = \"shop{n}\"\nsink = \"crm\"\n"
        ));
    }
    let path = dir.join(format!("cost-{}.toml", free_port()));
    std::fs::write(&path, text).unwrap();
    path
}

async fn customerio() -> CustomerIoSandbox {
    let cio = CustomerIoSandbox::start("site_bench", "key_bench").await.unwrap();
    cio.world().lock().unwrap().keep_event_data = false;
    cio
}

async fn store(orders: u64) -> WooSandbox {
    let woo = WooSandbox::start("ck_bench", "cs_bench").await.unwrap();
    woo.seed((orders / 4).max(1), orders);
    woo
}

/// What `tillflow run --once` cost: wall time, CPU time (user + system) and
/// peak RSS (MB), read from `/proc` while it runs and once it has exited
/// (before it is reaped, so its own figures are still there).
struct Cost {
    wall: Duration,
    cpu: Duration,
    /// The part of `cpu` its SQLite worker spent.
    state_worker_cpu: Duration,
    peak_rss_mb: f64,
}

fn run_once_measured(tillflow: &Path, config: &Path) -> Cost {
    run_once_logged(tillflow, config, None)
}

/// [`run_once_measured`]; with `statement_log`, every statement the state
/// store runs is logged there as JSON (which costs the run some CPU).
fn run_once_logged(tillflow: &Path, config: &Path, statement_log: Option<&Path>) -> Cost {
    let started = Instant::now();
    let mut command = Command::new(tillflow);
    command.args(["run", "--once", "--config"]).arg(config).stdout(Stdio::null());
    match statement_log {
        Some(log) => command
            .args(["--log-format", "json"])
            .env("RUST_LOG", "warn,sqlx::query=debug")
            .stderr(std::fs::File::create(log).unwrap()),
        None => command.env("RUST_LOG", "warn").stderr(Stdio::null()),
    };
    let mut child = command.spawn().unwrap();
    let pid = child.id();
    let process = PathBuf::from(format!("/proc/{pid}"));
    let mut worker = WorkerWatch::default();
    let mut peak_kb = 0u64;
    let ticks = loop {
        worker.look(&process);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kb) = status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)) {
            peak_kb = peak_kb.max(kb.parse().unwrap_or(0));
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The fields after the command's closing parenthesis and the state:
        // utime and stime are the 11th and 12th (clock ticks).
        // A zombie: exited, not yet reaped, its times final.
        let fields: Vec<i64> = stat
            .rsplit_once(") Z ")
            .map(|(_, rest)| rest.split_whitespace().map(|field| field.parse().unwrap_or(0)).collect())
            .unwrap_or_default();
        if fields.len() > 11 {
            break (fields[10] + fields[11]).max(0) as u64;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let status = child.wait().unwrap();
    assert!(status.success(), "tillflow run --once failed during the cost benchmark");
    Cost {
        wall,
        cpu: Duration::from_millis(ticks * 1000 / clock_ticks()),
        state_worker_cpu: Duration::from_nanos(worker.total_ns()),
        peak_rss_mb: peak_kb as f64 / 1024.0,
    }
}

/// Clock ticks per second of `/proc/*/stat` times.
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// What `tillflow run --once` costs importing `orders` WooCommerce orders
/// into Customer.io, the sandboxes in this process.
fn import_measured(tillflow: &Path, orders: u64, dir: &Path, figure: &str) -> Cost {
    import_logged(tillflow, orders, dir, figure, None)
}

fn import_logged(tillflow: &Path, orders: u64, dir: &Path, figure: &str, statement_log: Option<&Path>) -> Cost {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (woo, cio) = runtime.block_on(async { (store(orders).await, customerio().await) });
    let config = config(dir, &[woo.base_url()], &cio.base_url(), None, &format!("{figure}-{}.db", free_port()));
    let cost = run_once_logged(tillflow, &config, statement_log);
    drop((woo, cio));
    cost
}

/// Imports measured for the CPU figure; the least CPU any took is reported.
const CPU_RUNS: usize = 3;

/// tillflow's own CPU per order (µs) importing `orders` WooCommerce orders,
/// and the part of it SQLite's worker spent (statements, commits, fsyncs):
/// the least of `CPU_RUNS` imports, each into a new state. On a shared
/// machine one import's CPU time varied by a third between identical runs
/// (other tenants take the caches and the cores' turbo), and what a run
/// costs can only be raised by that, never lowered, so the least is the
/// figure nearest the code's own cost.
pub fn cpu_us_per_order(tillflow: &Path, orders: u64, dir: &Path) -> (f64, f64) {
    let least = (0..CPU_RUNS)
        .map(|_| import_measured(tillflow, orders, dir, "cpu"))
        .min_by_key(|cost| cost.cpu)
        .expect("at least one run");
    let per_order = |time: Duration| time.as_secs_f64() * 1e6 / orders as f64;
    (per_order(least.cpu), per_order(least.state_worker_cpu))
}

/// The state store's statements in one import of `orders` orders, by kind,
/// the costliest first (`state_statements`).
pub fn state_statements(tillflow: &Path, orders: u64, dir: &Path) -> Vec<StatementCost> {
    let log = dir.join(format!("statements-{}.log", free_port()));
    import_logged(tillflow, orders, dir, "statements", Some(&log));
    let costs = summarize(&std::fs::read_to_string(&log).unwrap());
    let _ = std::fs::remove_file(log);
    costs
}

/// Peak resident memory (MB) of `tillflow run --once` importing `orders`.
pub fn peak_rss_mb(tillflow: &Path, orders: u64, dir: &Path) -> f64 {
    import_measured(tillflow, orders, dir, "rss").peak_rss_mb
}

/// `stores` WooCommerce stores of `orders_each` orders, one pipeline each,
/// in one `tillflow run --once`: orders/s and peak RSS (MB); beside it, one
/// store of all those orders in one pipeline: orders/s.
pub fn many_pipelines(tillflow: &Path, stores: usize, orders_each: u64, dir: &Path) -> (f64, f64, f64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let total = stores as u64 * orders_each;
    let (shops, cio) = runtime.block_on(async {
        let mut shops = Vec::with_capacity(stores);
        for _ in 0..stores {
            shops.push(store(orders_each).await);
        }
        (shops, customerio().await)
    });
    let urls: Vec<String> = shops.iter().map(|shop| shop.base_url()).collect();
    let many = run_once_measured(tillflow, &config(dir, &urls, &cio.base_url(), None, "many.db"));
    drop(shops);
    let one_store = runtime.block_on(store(total));
    let one = run_once_measured(tillflow, &config(dir, &[one_store.base_url()], &cio.base_url(), None, "one.db"));
    drop((one_store, cio));
    (total as f64 / many.wall.as_secs_f64(), many.peak_rss_mb, total as f64 / one.wall.as_secs_f64())
}

/// A continuous `tillflow run` over a store with a webhook endpoint; killed
/// when dropped.
struct Live {
    child: Child,
    port: u16,
    _woo: WooSandbox,
    cio: CustomerIoSandbox,
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the run; `history` earlier orders of customer 2 are put in its
/// state first, as a long import would have left them.
async fn live(tillflow: &Path, dir: &Path, history: u64) -> Live {
    let woo = WooSandbox::start("ck_bench", "cs_bench").await.unwrap();
    woo.seed(10, 20);
    // Event data kept: the latency is read from each event's order id.
    let cio = CustomerIoSandbox::start("site_bench", "key_bench").await.unwrap();
    let port = free_port();
    let state = format!("live-{port}.db");
    let config = config(dir, &[woo.base_url()], &cio.base_url(), Some(port), &state);
    if history > 0 {
        let store = SqliteStore::open(&dir.join(&state)).await.unwrap();
        let long_ago = Timestamp::now() - jiff::SignedDuration::from_hours(24 * 400);
        let facts: Vec<OrderFact> = (0..history)
            .map(|n| OrderFact {
                order_id: format!("walk-in-{n}"),
                fact_id: "order".into(),
                person: "2".into(),
                counted: true,
                amount: Decimal::new(1250, 2),
                currency: Currency::new("USD").unwrap(),
                at: long_ago + jiff::SignedDuration::from_secs(n as i64),
            })
            .collect();
        for chunk in facts.chunks(10_000) {
            store.record_facts(PIPELINE, chunk.to_vec()).await.unwrap();
        }
        store.close().await;
    }
    let child = Command::new(tillflow)
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = tillflow_http::reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "tillflow did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Live { child, port, _woo: woo, cio }
}

/// Webhook → Customer.io latency (p50, p99 in ms): `rate` new orders a
/// second for `seconds`, each posted as WooCommerce's signed
/// `order.created` without waiting for the one before; every order is
/// customer 2's, whose state holds `history` earlier orders.
pub fn webhook_latency(tillflow: &Path, rate: u32, seconds: u32, history: u64, dir: &Path) -> (f64, f64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let live = live(tillflow, dir, history).await;
        let http = tillflow_http::reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/webhooks/shop0", live.port);
        let secret = SecretString::from("whsec_bench");
        let total = rate * seconds;
        let mut sent = Vec::with_capacity(total as usize);
        let mut posts = tokio::task::JoinSet::new();
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        for n in 0..total {
            ticker.tick().await;
            let id = 1_000_000 + u64::from(n);
            let mut order = seeded_order(1, 10, Timestamp::now());
            order["id"] = json!(id);
            order["status"] = json!("processing");
            let body = serde_json::to_vec(&order).unwrap();
            let signature = sign_hmac_sha256_base64(&secret, &body);
            let request = http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-wc-webhook-topic", "order.created")
                .header("x-wc-webhook-signature", signature)
                .body(body);
            sent.push((id, Instant::now()));
            posts.spawn(async move { request.send().await.map(|response| response.status().as_u16()) });
        }
        while let Some(posted) = posts.join_next().await {
            assert_eq!(posted.unwrap().unwrap(), 200, "a webhook was refused");
        }
        let world = live.cio.world();
        let deadline = Instant::now() + Duration::from_secs(120);
        let latencies = loop {
            {
                let world = world.lock().unwrap();
                let arrived: std::collections::HashMap<String, Instant> = world
                    .events_named("Order Placed")
                    .iter()
                    .filter_map(|e| Some((e.attributes["order_id"].as_str()?.to_owned(), e.received_at?)))
                    .collect();
                if sent.iter().all(|(id, _)| arrived.contains_key(&id.to_string())) {
                    let mut latencies: Vec<f64> = sent
                        .iter()
                        .map(|(id, at)| arrived[&id.to_string()].duration_since(*at).as_secs_f64() * 1000.0)
                        .collect();
                    latencies.sort_by(|a, b| a.total_cmp(b));
                    break latencies;
                }
            }
            assert!(Instant::now() < deadline, "webhooks did not all arrive");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let percentile = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
        (percentile(0.50), percentile(0.99))
    })
}
