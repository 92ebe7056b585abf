//! The binary's operator contract: exit codes and messages for bad input.

use std::path::Path;
use std::process::{Command, Output};

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow");

fn tillflow(arguments: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(TILLFLOW);
    command.args(arguments).env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("tillflow runs")
}

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("tillflow.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const CONFIG: &str = r#"[state]
url = "sqlite://state.db"

[sources.shop]
type = "woocommerce"
base_url = "https://shop.example.com"
consumer_secret = "${WC_CONSUMER_SECRET}"
consumer_key = "ck_test"

[sinks.crm]
type = "customerio"
site_id = "site"
api_key = "key"

[[pipelines]]
name = "shop-to-crm"
source = "shop"
sink = "crm"
"#;

#[test]
fn help_lists_the_operator_commands() {
    let output = tillflow(&["--help"], &[]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for command in ["run", "check", "status", "dead-letters", "state"] {
        assert!(text.contains(command), "{command} missing from --help:\n{text}");
    }
}

#[test]
fn an_unknown_key_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), &CONFIG.replace("[state]\n", "[state]\ncolour = \"blue\"\n"));
    let output = tillflow(&["run", "--config", &config, "--once"], &[("WC_CONSUMER_SECRET", "x")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tillflow.toml:2: `state.colour`"), "{stderr}");
}

#[test]
fn a_wrong_typed_value_names_the_full_key_its_line_and_the_expected_form() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), &CONFIG.replace("consumer_secret = ", "poll_interval = 300\nconsumer_secret = "));
    for command in [&["run", "--once"][..], &["check"], &["status"]] {
        let mut arguments = command.to_vec();
        arguments.extend(["--config", &config]);
        let output = tillflow(&arguments, &[("WC_CONSUMER_SECRET", "x")]);
        assert_eq!(output.status.code(), Some(2), "{command:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("tillflow.toml:7: `sources.shop.poll_interval`: invalid type: integer `300`, expected a duration string such as \"90s\", \"5m\""),
            "{command:?}: {stderr}"
        );
    }
}

#[test]
fn an_unset_variable_exits_2_and_a_set_one_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), CONFIG);
    let output = tillflow(&["run", "--config", &config, "--once"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WC_CONSUMER_SECRET is not set"), "{stderr}");
    assert!(stderr.contains(":7:"), "{stderr}");

    let bad_type = CONFIG.replace("type = \"woocommerce\"", "type = \"shopify\"");
    let config = write(dir.path(), &bad_type);
    let output = tillflow(&["check", "--config", &config], &[("WC_CONSUMER_SECRET", "cs_live_s3cr3t")]);
    assert_eq!(output.status.code(), Some(2));
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(all.contains(":5: `sources.shop.type`: unknown connector type `shopify`"), "{all}");
    assert!(!all.contains("cs_live_s3cr3t"), "a secret leaked: {all}");
}

#[test]
fn a_pipeline_naming_a_missing_sink_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), &CONFIG.replace("sink = \"crm\"", "sink = \"crn\""));
    let output = tillflow(&["status", "--config", &config], &[("WC_CONSUMER_SECRET", "x")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(":18: `pipelines.shop-to-crm.sink`: no sink named `crn`"), "{stderr}");
}

#[test]
fn a_state_file_from_a_newer_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), CONFIG);
    // A SQLite header claiming schema version 999.
    let mut header = vec![0u8; 4096];
    header[..16].copy_from_slice(b"SQLite format 3\0");
    header[60..64].copy_from_slice(&999u32.to_be_bytes());
    let state = dir.path().join("state.db");
    std::fs::write(&state, &header).unwrap();
    let output = tillflow(&["status", "--config", &config], &[("WC_CONSUMER_SECRET", "x")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("schema version 999") && stderr.contains("newer tillflow"), "{stderr}");
    assert_eq!(std::fs::read(&state).unwrap(), header, "the state file was not modified");
}

#[test]
fn status_before_anything_ran_says_so_and_creates_no_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), CONFIG);
    let output = tillflow(&["status", "--config", &config, "--json"], &[("WC_CONSUMER_SECRET", "x")]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document[0]["pipeline"], "shop-to-crm");
    assert_eq!(document[0]["dead_letters"], 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let state = dir.path().join("state.db");
    assert!(stderr.contains(&format!("no state at {} yet", state.display())), "{stderr}");
    assert!(!state.exists(), "status created a state file");
}

#[test]
fn a_configuration_error_leaves_no_state_file_behind_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The shop is a listener that counts the connections it is offered.
    let shop = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    shop.set_nonblocking(true).unwrap();
    let shop_url = format!("http://{}", shop.local_addr().unwrap());
    // A bad value in the sink, after a source that would otherwise be reached.
    let bad = CONFIG
        .replace("https://shop.example.com", &shop_url)
        .replace("type = \"customerio\"", "type = \"customerio\"\nregion = \"mars\"");
    let config = write(dir.path(), &bad);
    for command in [
        &["check"][..],
        &["status"],
        &["run", "--once"],
        &["dead-letters", "list"],
        &["state", "reset", "--pipeline", "shop-to-crm"],
    ] {
        let mut arguments = vec![command[0], "--config", &config];
        arguments.extend(&command[1..]);
        let output = tillflow(&arguments, &[("WC_CONSUMER_SECRET", "x")]);
        assert_eq!(output.status.code(), Some(2), "{command:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("`sinks.crm.region`") && stderr.contains("mars"), "{command:?}: {stderr}");
        assert!(!dir.path().join("state.db").exists(), "{command:?} left a state file behind");
    }
    let contacted = shop.accept();
    assert!(
        matches!(&contacted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the shop was contacted: {contacted:?}"
    );
}

#[test]
fn demo_syncs_the_sandboxes_and_its_counts_match_theirs() {
    let output = tillflow(&["demo"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("woocommerce-to-customerio"), "{stdout}");
    assert!(stdout.contains("sandbox check: every count above matches"), "{stdout}");
    assert!(stdout.contains("zero total"), "orders worth 0 are skipped and counted: {stdout}");
}

#[test]
fn an_unknown_sandbox_platform_exits_2_naming_the_choices() {
    let output = tillflow(&["sandbox", "--platform", "shopify", "--port", "0"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown platform `shopify`") && stderr.contains("lightspeed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_tillflow_whose_only_pipeline_has_refused_credentials_exits_2() {
    use tillflow_kit::sandbox::Sandbox;
    use tillflow_sink_customerio::sandbox::CustomerIoSandbox;
    use tillflow_source_woocommerce::sandbox::WooSandbox;
    let woo = WooSandbox::start("ck", "cs").await.unwrap();
    woo.seed(2, 5);
    let cio = CustomerIoSandbox::start("site", "right-key").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = write(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[sources.shop]\ntype = \"woocommerce\"\nbase_url = \"{}\"\nconsumer_key = \"ck\"\nconsumer_secret = \"cs\"\n\n[sinks.crm]\ntype = \"customerio\"\nsite_id = \"site\"\napi_key = \"wrong-key\"\nbase_url = \"{}\"\n\n[[pipelines]]\nname = \"p\"\nsource = \"shop\"\nsink = \"crm\"\n",
            woo.base_url(),
            cio.base_url()
        ),
    );
    let mut child = Command::new(TILLFLOW).args(["run", "--config", &config]).env_remove("RUST_LOG").spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "tillflow kept running with no pipeline left");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(2));
}
