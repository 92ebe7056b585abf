//! WooCommerce (Oliver POS) → Customer.io end to end: the real `tillflow`
//! program against both sandboxes.

use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tillflow_e2e::woo_cio::{CUSTOMERS, World};
use tillflow_e2e::{Running, eventually, free_port};
use tillflow_http::SecretString;
use tillflow_http::webhook::sign_hmac_sha256_base64;
use tillflow_source_woocommerce::sandbox::WooSandbox;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");

fn money(value: &Value) -> f64 {
    value.as_str().and_then(|s| s.parse().ok()).or_else(|| value.as_f64()).unwrap_or_default()
}

/// What the seeded shop implies, computed from the sandbox's own orders.
struct Expected {
    placed: usize,
    completed: usize,
    refunds: usize,
}

fn expected(woo: &WooSandbox) -> Expected {
    let world = woo.world();
    let world = world.lock().unwrap();
    let placed_statuses = ["processing", "on-hold", "completed", "refunded"];
    // Orders worth 0 and guests without an email send nothing.
    let nonzero =
        |o: &Value| money(&o["total"]) != 0.0 && (o["customer_id"] != json!(0) || o["billing"]["email"] != "");
    let identified: std::collections::HashSet<u64> = world
        .orders()
        .filter(|o| o["customer_id"] != json!(0) || o["billing"]["email"] != "")
        .map(|o| o["id"].as_u64().unwrap())
        .collect();
    Expected {
        placed: world
            .orders()
            .filter(|o| nonzero(o))
            .filter(|o| placed_statuses.contains(&o["status"].as_str().unwrap()))
            .count(),
        completed: world.orders().filter(|o| nonzero(o)).filter(|o| o["status"] == "completed").count(),
        refunds: world.refunds.iter().filter(|(id, _)| identified.contains(id)).map(|(_, refunds)| refunds.len()).sum(),
    }
}

/// total_revenue as the issue defines it, from the sandbox's own data.
fn revenue_of(woo: &WooSandbox, customer_id: u64) -> f64 {
    let world = woo.world();
    let world = world.lock().unwrap();
    let counted = ["processing", "on-hold", "completed"];
    world
        .orders()
        .filter(|o| o["customer_id"] == json!(customer_id) && counted.contains(&o["status"].as_str().unwrap()))
        .map(|o| {
            let refunded: f64 =
                world.refunds.get(&o["id"].as_u64().unwrap()).into_iter().flatten().map(|r| money(&r["amount"])).sum();
            money(&o["total"]) - refunded
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_import_then_only_changes_are_sent() {
    let world = World::start(TILLFLOW).await;
    let config = world.config(None);
    let want = expected(&world.woo);

    let summary = world.run_once(&config).await;
    assert!(summary.contains("shop-to-crm:"), "{summary}");
    assert_eq!(world.events("Order Placed").len(), want.placed, "one Order Placed per placed, non-zero order");
    assert_eq!(world.events("Order Completed").len(), want.completed);
    assert_eq!(world.events("Order Refunded").len(), want.refunds);
    assert!(world.events("Customer Created").is_empty(), "existing customers are identified, not announced");
    assert_eq!(world.cio.world().lock().unwrap().duplicate_events, 0);

    // In-store sales carry their channel, location and register.
    let placed = world.events("Order Placed");
    let pos = placed.iter().find(|e| e["order_id"] == "3").expect("order 3 is a POS sale");
    assert_eq!(pos["channel"], "in_store");
    assert_eq!(pos["location_id"], "1");
    assert!(placed.iter().any(|e| e["channel"] == "online"));

    // One person per customer id, with totals right after the import.
    let person = world.person("id:3");
    assert_eq!(person["email"], "customer3@example.com");
    let revenue = person["total_revenue"].as_f64().unwrap();
    assert!((revenue - revenue_of(&world.woo, 3)).abs() < 0.001, "{revenue} vs {}", revenue_of(&world.woo, 3));
    assert!(person["lifetime_orders"].as_u64().unwrap() > 0);
    assert!(person["last_order_date"].as_i64().is_some());
    assert!(person.contains_key("created_at"), "customer record attributes are there too");

    // A second pass sends nothing at all.
    let requests = world.batch_requests();
    world.run_once(&config).await;
    assert_eq!(world.batch_requests(), requests, "the second run sent requests");

    // An order moving to completed sends exactly one Order Completed.
    let processing = {
        let shop = world.woo.world();
        let shop = shop.lock().unwrap();
        shop.orders().find(|o| o["status"] == "processing" && money(&o["total"]) > 0.0).unwrap()["id"].as_u64().unwrap()
    };
    let completed_before = world.events("Order Completed").len();
    let placed_before = world.events("Order Placed").len();
    world.woo.update_order(processing, |order| {
        order["status"] = json!("completed");
        order["date_completed_gmt"] = order["date_modified_gmt"].clone();
    });
    world.run_once(&config).await;
    let completed = world.events("Order Completed");
    assert_eq!(completed.len(), completed_before + 1);
    assert_eq!(completed.last().unwrap()["order_id"], json!(processing.to_string()));
    assert_eq!(world.events("Order Placed").len(), placed_before, "no second Order Placed");

    // A refund sends Order Refunded and lowers total_revenue.
    let refunded_order = processing;
    let customer = world.woo.order(refunded_order).unwrap()["customer_id"].as_u64().unwrap();
    let before = world.person(&format!("id:{customer}"))["total_revenue"].as_f64().unwrap();
    world.woo.refund(refunded_order, "5.00", "damaged");
    world.run_once(&config).await;
    let refunds = world.events("Order Refunded");
    assert_eq!(refunds.len(), want.refunds + 1);
    assert_eq!(refunds.last().unwrap()["amount"], json!(5));
    let after = world.person(&format!("id:{customer}"))["total_revenue"].as_f64().unwrap();
    assert!((before - after - 5.0).abs() < 0.001, "total_revenue {before} → {after}");
    assert_eq!(world.cio.world().lock().unwrap().stale_updates, 0, "no attribute update was dropped as stale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_reach_customerio_through_a_running_tillflow_and_bad_ones_change_nothing() {
    let world = World::start(TILLFLOW).await;
    let port = free_port();
    let config = world.config(Some(port));
    let want = expected(&world.woo);
    let child = world.command(&config, &["run"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut running = Running(child);
    let http = tillflow_http::reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    // The first pass imports history; then the webhook path is what remains.
    eventually(Duration::from_secs(60), "the history import", || world.events("Order Placed").len() == want.placed)
        .await;

    let post = |body: Vec<u8>, signature: Option<String>, topic: &str| {
        let mut request = http
            .post(format!("{base}/webhooks/shop"))
            .header("content-type", "application/json")
            .header("x-wc-webhook-topic", topic);
        if let Some(signature) = signature {
            request = request.header("x-wc-webhook-signature", signature);
        }
        request.body(body).send()
    };
    let secret = SecretString::from("whsec_e2e");
    let new_order = |id: u64| {
        let mut order = tillflow_source_woocommerce::sandbox::seeded_order(1, CUSTOMERS, jiff::Timestamp::now());
        order["id"] = json!(id);
        order["number"] = json!(id.to_string());
        order["status"] = json!("processing");
        serde_json::to_vec(&order).unwrap()
    };

    // The creation ping: unsigned form body, exactly 200.
    let ping = http
        .post(format!("{base}/webhooks/shop"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("webhook_id=142")
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status().as_u16(), 200);

    // A forged delivery is refused and stored nowhere.
    let forged = new_order(9001);
    let wrong = sign_hmac_sha256_base64(&SecretString::from("guessed"), &forged);
    assert_eq!(post(forged.clone(), Some(wrong), "order.created").await.unwrap().status().as_u16(), 401);
    assert_eq!(post(forged, None, "order.created").await.unwrap().status().as_u16(), 401);

    // A signed delivery arrives at Customer.io.
    let body = new_order(9002);
    let signature = sign_hmac_sha256_base64(&secret, &body);
    let started = Instant::now();
    assert_eq!(post(body, Some(signature), "order.created").await.unwrap().status().as_u16(), 200);
    eventually(Duration::from_secs(30), "order 9002 at Customer.io", || {
        world.events("Order Placed").iter().any(|e| e["order_id"] == "9002")
    })
    .await;
    eprintln!("webhook to Customer.io: {:?}", started.elapsed());
    // Webhooks are processed in order, so the refused one would have come first.
    assert!(!world.events("Order Placed").iter().any(|e| e["order_id"] == "9001"), "a forged webhook was delivered");

    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tillflow_webhooks_total{source=\"shop\",outcome=\"unauthorized\"} 2"), "{metrics}");
    let health = http.get(format!("{base}/healthz")).send().await.unwrap().text().await.unwrap();
    for secret in ["whsec_e2e", "ck_e2e", "cs_e2e", "key_e2e", "site_e2e", "@"] {
        assert!(!metrics.contains(secret) && !health.contains(secret), "/metrics or /healthz shows `{secret}`");
    }

    // The inbox does not grow forever: once the only pipeline reading the
    // source has processed the stored webhook, it is deleted.
    let deadline = Instant::now() + Duration::from_secs(30);
    while world.inbox_rows().await > 0 {
        assert!(Instant::now() < deadline, "the processed webhook is still in the inbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // SIGTERM: a clean stop.
    let pid = running.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || running.0.wait().unwrap()).await.unwrap();
    assert!(status.success(), "exit status {status:?}");
}
