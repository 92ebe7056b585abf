//! No secret ever leaves the process: every operator command — successes,
//! refusals and errors, at `-vv` (trace) — is run with known credentials, and
//! neither what it prints nor what it leaves in the state file holds one, in
//! clear or as the Basic credentials a request would carry.

use base64::Engine;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tillflow_e2e::woo_cio::World;
use tillflow_e2e::{Running, eventually, free_port};
use tillflow_http::SecretString;
use tillflow_http::webhook::sign_hmac_sha256_base64;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");

/// The credentials `World::command` gives tillflow, and their Basic forms.
fn secrets() -> Vec<String> {
    let mut secrets: Vec<String> =
        ["ck_e2e", "cs_e2e", "whsec_e2e", "key_e2e", "wrong_key_e2e"].map(String::from).to_vec();
    let engine = base64::engine::general_purpose::STANDARD;
    for (user, password) in [("ck_e2e", "cs_e2e"), ("site_e2e", "key_e2e"), ("site_e2e", "wrong_key_e2e")] {
        let basic = engine.encode(format!("{user}:{password}"));
        // Any long stretch of it, wherever the encoding is cut.
        secrets.push(basic[..basic.len() - 2].to_owned());
    }
    secrets
}

fn find_secrets(what: &str, text: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(text);
    secrets()
        .into_iter()
        .filter(|secret| text.contains(secret.as_str()))
        .map(|secret| format!("{what}: `{secret}`"))
        .collect()
}

/// `arguments` at trace level (`RUST_LOG` would override `-vv`).
fn traced(world: &World, config: &Path, arguments: &[&str]) -> Command {
    let mut command = world.command(config, arguments);
    command.arg("-vv").env_remove("RUST_LOG");
    command
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_prints_logs_or_stores_a_secret() {
    let world = World::start(TILLFLOW).await;
    let port = free_port();
    let config = world.config(Some(port));
    let mut found = Vec::new();
    let record = |found: &mut Vec<String>, name: &str, output: &Output| {
        found.extend(find_secrets(&format!("{name} stdout"), &output.stdout));
        found.extend(find_secrets(&format!("{name} stderr"), &output.stderr));
    };

    let check = output(traced(&world, &config, &["check"])).await;
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    record(&mut found, "check", &check);
    // Refused credentials: the error names the sink, never the key.
    let mut refused = traced(&world, &config, &["check"]);
    refused.env("CIO_API_KEY", "wrong_key_e2e");
    let refused = output(refused).await;
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stdout));
    record(&mut found, "check with a wrong key", &refused);
    let mut failing = traced(&world, &config, &["run", "--once"]);
    failing.env("CIO_API_KEY", "wrong_key_e2e");
    let failing = output(failing).await;
    assert!(!failing.status.success());
    record(&mut found, "run --once with a wrong key", &failing);

    let once = output(traced(&world, &config, &["run", "--once"])).await;
    assert!(once.status.success(), "{}", String::from_utf8_lossy(&once.stderr));
    record(&mut found, "run --once", &once);

    // The continuous run, with a forged and a signed webhook.
    let log = world.dir.path().join("run.log");
    let child = traced(&world, &config, &["run"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let http = tillflow_http::reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/webhooks/shop");
    eventually(Duration::from_secs(30), "the server", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        .await;
    let mut order = tillflow_source_woocommerce::sandbox::seeded_order(1, 20, jiff::Timestamp::now());
    order["id"] = serde_json::json!(7001);
    let body = serde_json::to_vec(&order).unwrap();
    let forged = sign_hmac_sha256_base64(&SecretString::from("guessed"), &body);
    let signed = sign_hmac_sha256_base64(&SecretString::from("whsec_e2e"), &body);
    for (signature, want) in [(forged, 401), (signed, 200)] {
        let answer = http
            .post(&url)
            .header("x-wc-webhook-topic", "order.created")
            .header("x-wc-webhook-signature", signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), want);
    }
    let metrics = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap();
    found.extend(find_secrets("/metrics", metrics.as_bytes()));
    eventually(Duration::from_secs(30), "the webhook's order", || {
        world.events("Order Placed").iter().any(|event| event["order_id"] == "7001")
    })
    .await;
    let pid = running.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let stopped = tokio::task::spawn_blocking(move || running.0.wait().unwrap()).await.unwrap();
    assert!(stopped.success());
    found.extend(find_secrets("run (continuous) log", &std::fs::read(&log).unwrap()));

    for arguments in [
        &["status"][..],
        &["status", "--json"],
        &["report", "--pipeline", "shop-to-crm", "--tz", "UTC"],
        &["dead-letters", "list"],
        &["dead-letters", "list", "--json"],
        &["dead-letters", "replay"],
        &["state", "check"],
        &["report", "--pipeline", "nowhere", "--tz", "UTC"],
    ] {
        let output = output(traced(&world, &config, arguments)).await;
        record(&mut found, &arguments.join(" "), &output);
    }
    // A config error on a line that holds a variable's value.
    let broken = world.dir.path().join("broken.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("poll_interval = \"1h\"", "poll_interval = \"${WC_CONSUMER_KEY}\"");
    std::fs::write(&broken, text).unwrap();
    let error = output(traced(&world, &broken, &["run", "--once"])).await;
    assert_eq!(error.status.code(), Some(2));
    record(&mut found, "a config error", &error);

    for file in std::fs::read_dir(world.dir.path()).unwrap() {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("state.db") {
            found.extend(find_secrets(&name, &std::fs::read(&path).unwrap()));
        }
    }
    assert!(found.is_empty(), "secrets found:\n{}", found.join("\n"));
}

/// The credential values in a config text: every quoted value of a key that
/// names a key, secret, token or password.
fn credentials_in(config: &str) -> Vec<String> {
    let mut found = Vec::new();
    for marker in ["key = \"", "secret = \"", "token = \"", "password = \""] {
        let mut rest = config;
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let value = &rest[..rest.find('"').unwrap_or(0)];
            if value.len() >= 4 {
                found.push(value.to_owned());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_at_trace_level_prints_none_of_its_sandboxes_credentials() {
    // The sandboxes' credentials do not depend on the demo's size.
    let world =
        tillflow_runner::demo::DemoWorld::start(tillflow_runner::demo::DemoSize { fraction: 0.01 }).await.unwrap();
    let secrets = credentials_in(&world.config("sqlite://x.db"));
    assert!(secrets.len() >= 8, "every platform's credentials were found: {secrets:?}");
    let mut demo = Command::new(TILLFLOW);
    demo.args(["demo", "-vv"]).env_remove("RUST_LOG");
    let output = output(demo).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let shown: Vec<&String> = secrets.iter().filter(|secret| printed.contains(secret.as_str())).collect();
    assert!(shown.is_empty(), "the demo printed credentials: {shown:?}");
}
