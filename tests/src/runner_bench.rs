//! `tillflow-bench`'s figures of several runners on one Postgres state:
//! orders per second with 1, 2 and 4 `tillflow run` processes sharing eight
//! WooCommerce → Customer.io pipelines over the sandboxes (unthrottled, so
//! the machine, not a rate limit, bounds them), and the failover time from a
//! runner's SIGKILL to the first commit of a pipeline it held by its new
//! holder. Each measurement gets a database of its own.

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tillflow_kit::sandbox::Sandbox;
use tillflow_sink_customerio::sandbox::CustomerIoSandbox;
use tillflow_source_woocommerce::sandbox::WooSandbox;

/// Pipelines shared by the runners: divisible by 1, 2 and 4.
const PIPELINES: usize = 8;
const LEASE_TTL_SECONDS: u64 = 3;

struct Shops {
    woo: Vec<WooSandbox>,
    cio: Vec<CustomerIoSandbox>,
}

impl Shops {
    async fn start(orders_each: u64) -> Self {
        let mut shops = Shops { woo: Vec::new(), cio: Vec::new() };
        for _ in 0..PIPELINES {
            let woo = WooSandbox::start("ck_bench", "cs_bench").await.unwrap();
            woo.seed(orders_each / 4, orders_each);
            let cio = CustomerIoSandbox::start("site_bench", "key_bench").await.unwrap();
            cio.world().lock().unwrap().keep_event_data = false;
            shops.woo.push(woo);
            shops.cio.push(cio);
        }
        shops
    }

    fn events(&self) -> u64 {
        self.cio.iter().map(|cio| cio.received().by_name.values().sum::<u64>()).sum()
    }

    fn config(&self, dir: &Path, state_url: &str, runner: usize) -> PathBuf {
        let mut text = format!(
            "[state]\nurl = \"{state_url}\"\nlease_ttl = \"{LEASE_TTL_SECONDS}s\"\n\n[server]\nlisten = \"127.0.0.1:{}\"\n",
            free_port()
        );
        for (n, (woo, cio)) in self.woo.iter().zip(&self.cio).enumerate() {
            text.push_str(&format!(
                "\n[sources.shop{n}]\ntype = \"woocommerce\"\nbase_url = \"{}\"\nconsumer_key = \"ck_bench\"\n\
                 consumer_secret = \"cs_bench\"\npoll_interval = \"1h\"\nrequests_per_second = 100000\n\
                 \n[sinks.crm{n}]\ntype = \"customerio\"\nsite_id = \"site_bench\"\napi_key = \"key_bench\"\n\
                 base_url = \"{}\"\nrequests_per_second = 100000\n\
                 \n[[pipelines]]\nname = \"p{n}\"\nsource = \"shop{n}\"\nsink = \"crm{n}\"\n",
                woo.base_url(),
                cio.base_url()
            ));
        }
        let path = dir.join(format!("runner-{runner}-{}.toml", free_port()));
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn start_runner(tillflow: &Path, config: &Path) -> Child {
    Command::new(tillflow)
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the sinks' total stops growing for two seconds; returns
/// when it last grew, and the total.
async fn settled(shops: &Shops, limit: Duration) -> (Instant, u64) {
    let started = Instant::now();
    let (mut last, mut at) = (0, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = shops.events();
        if now != last {
            (last, at) = (now, Instant::now());
        } else if now > 0 && at.elapsed() > Duration::from_secs(2) {
            return (at, now);
        }
        assert!(started.elapsed() < limit, "the runners did not finish within {limit:?}");
    }
}

/// Orders per second of `runners` runs importing `orders` (over the eight
/// pipelines) from their start, the one-round join included; and the events
/// the sinks stored (the same whatever the number of runners).
pub async fn orders_per_second(tillflow: &Path, state_url: &str, runners: usize, orders: u64) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let shops = Shops::start(orders / PIPELINES as u64).await;
    let configs: Vec<PathBuf> = (0..runners).map(|n| shops.config(dir.path(), state_url, n)).collect();
    let started = Instant::now();
    let mut children: Vec<Child> = configs.iter().map(|config| start_runner(tillflow, config)).collect();
    let (finished, events) = settled(&shops, Duration::from_secs(1800)).await;
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    (orders as f64 / finished.duration_since(started).as_secs_f64(), events)
}

/// Seconds from SIGKILLing one of two runners mid-import to the first
/// commit, by the other, of a pipeline the killed one held.
pub async fn failover_seconds(tillflow: &Path, state_url: &str, orders: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let shops = Shops::start(orders / PIPELINES as u64).await;
    let configs: Vec<PathBuf> = (0..2).map(|n| shops.config(dir.path(), state_url, n)).collect();
    let mut children: Vec<Child> = configs.iter().map(|config| start_runner(tillflow, config)).collect();
    let store = tillflow_state_postgres::PgStore::open(state_url).await.unwrap();
    let victim = format!("-{}-", children[0].id());
    let orphans: Vec<String> = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let holders = store.holders().await.unwrap();
        let held: Vec<String> = holders
            .iter()
            .filter(|h| h.holder.as_deref().is_some_and(|h| h.contains(&victim)))
            .map(|h| h.pipeline.clone())
            .collect();
        if held.len() == PIPELINES / 2 && shops.events() > 0 {
            break held;
        }
    };
    children[0].kill().unwrap();
    let killed = jiff::Timestamp::now();
    children[0].wait().unwrap();
    let first_commit = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let first: Option<i64> =
            sqlx::query_scalar("SELECT MIN(updated_at) FROM checkpoints WHERE pipeline = ANY($1) AND updated_at > $2")
                .bind(&orphans)
                .bind(killed.as_millisecond())
                .fetch_one(store.pool())
                .await
                .unwrap();
        if let Some(first) = first {
            break first;
        }
    };
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    (first_commit - killed.as_millisecond()) as f64 / 1000.0
}
