//! The state file under accident: a second run on the same file, a file
//! emptied or damaged underneath tillflow, a disk that fills mid-run. Each is
//! reported as what it is, changes nothing it should not, and the next run
//! resumes without sending anything twice.

use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::time::Duration;
use tillflow_e2e::woo_cio::World;
use tillflow_e2e::{Running, eventually, free_port};

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");

async fn output(mut command: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The events Customer.io holds, by name (each event id once).
fn events_by_name(world: &World) -> BTreeMap<String, usize> {
    let sandbox = world.cio.world();
    let sandbox = sandbox.lock().unwrap();
    let mut by_name = BTreeMap::new();
    for event in &sandbox.events {
        *by_name.entry(event.name.clone()).or_default() += 1;
    }
    by_name
}

/// What a calm run of a fresh world delivers.
async fn calm_delivery() -> BTreeMap<String, usize> {
    let calm = World::start(TILLFLOW).await;
    calm.run_once(&calm.config(None)).await;
    events_by_name(&calm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_one_state_file_is_refused_with_exit_2_and_sends_nothing() {
    let world = World::start(TILLFLOW).await;
    let config = world.config(Some(free_port()));
    let child = world.command(&config, &["run"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let _running = Running(child);
    let want = calm_delivery().await;
    eventually(Duration::from_secs(60), "the first run's history import", || events_by_name(&world) == want).await;
    let batches = world.batch_requests();

    let second = output(world.command(&config, &["run", "--once"])).await;
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    let message = text(&second);
    assert!(message.contains("already running on the state file"), "{message}");
    assert!(message.contains("state.db"), "the message names the file: {message}");
    assert_eq!(world.batch_requests(), batches, "the refused run sent nothing");

    // `state reset` writes as a run does, so it is refused too; reading is not.
    let reset = output(world.command(&config, &["state", "reset", "--pipeline", "shop-to-crm"])).await;
    assert_eq!(reset.status.code(), Some(2), "{}", text(&reset));
    assert!(text(&reset).contains("already running on the state file"), "{}", text(&reset));
    let status = output(world.command(&config, &["status"])).await;
    assert!(status.status.success(), "status reads while a run holds the file: {}", text(&status));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_state_file_is_reported_and_never_taken_for_a_new_one() {
    let world = World::start(TILLFLOW).await;
    let config = world.config(None);
    world.run_once(&config).await;
    let delivered = events_by_name(&world);
    let batches = world.batch_requests();
    let state = world.dir.path().join("state.db");
    std::fs::write(&state, b"").unwrap();

    for arguments in [&["run", "--once"][..], &["status"][..]] {
        let refused = output(world.command(&config, arguments)).await;
        assert_eq!(refused.status.code(), Some(2), "{arguments:?}: {}", text(&refused));
        let message = text(&refused);
        assert!(message.contains("is empty (0 bytes)"), "{message}");
        assert!(message.contains("not taken for a new one"), "{message}");
    }
    assert_eq!(world.batch_requests(), batches, "no history was re-sent");
    assert_eq!(events_by_name(&world), delivered);
    assert_eq!(std::fs::metadata(&state).unwrap().len(), 0, "the file was left as it was found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_check_finds_a_page_of_garbage_inside_an_index() {
    let world = World::start(TILLFLOW).await;
    let config = world.config(None);
    world.run_once(&config).await;
    let sound = output(world.command(&config, &["state", "check"])).await;
    assert!(sound.status.success(), "{}", text(&sound));
    assert!(text(&sound).contains("ok (SQLite integrity check passed)"), "{}", text(&sound));

    // Overwrite the root page of the ledger's index of placed events with garbage, as a
    // failing disk or a stray write would.
    let state = world.dir.path().join("state.db");
    let (page, page_size) = {
        let url = format!("sqlite://{}", state.display());
        let mut connection: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
        let page: i64 = sqlx::query_scalar("SELECT rootpage FROM sqlite_master WHERE name = 'ledger_placed_by_time'")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut connection).await.unwrap();
        sqlx::Connection::close(connection).await.unwrap();
        (page as usize, page_size as usize)
    };
    let mut bytes = std::fs::read(&state).unwrap();
    let start = (page - 1) * page_size;
    for (offset, byte) in bytes[start..start + page_size].iter_mut().enumerate() {
        *byte = (offset * 7 + 13) as u8;
    }
    std::fs::write(&state, &bytes).unwrap();

    let damaged = output(world.command(&config, &["state", "check"])).await;
    assert_eq!(damaged.status.code(), Some(1), "{}", text(&damaged));
    let message = text(&damaged);
    assert!(message.contains("DAMAGED"), "{message}");
    assert!(message.contains("restore it from a backup"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_pass_with_a_message_and_the_next_run_resumes() {
    let world = World::start(TILLFLOW).await;
    let config = world.config(None);
    // `check` makes the state file; the history import then has no room to
    // write its first commit (a file-size limit is a full disk to the process).
    let check = output(world.command(&config, &["check"])).await;
    assert!(check.status.success(), "{}", text(&check));
    let mut full = world.command(&config, &["run", "--once"]);
    let program = full.get_program().to_owned();
    let arguments: Vec<_> = full.get_args().map(ToOwned::to_owned).collect();
    let mut limited = std::process::Command::new("bash");
    limited.arg("-c").arg("ulimit -f 40 && exec \"$@\"").arg("tillflow").arg(program).args(arguments);
    for (key, value) in full.get_envs() {
        if let Some(value) = value {
            limited.env(key, value);
        }
    }
    full = limited;
    let stopped = output(full).await;
    let message = text(&stopped);
    assert_eq!(stopped.status.code(), Some(1), "a clear failure, not a signal: {:?} {message}", stopped.status);
    assert!(message.contains("full") || message.contains("cannot be written"), "{message}");

    world.run_once(&config).await;
    assert_eq!(events_by_name(&world), calm_delivery().await, "everything delivered once after the disk had room");
    world.run_once(&config).await;
    let check = output(world.command(&config, &["state", "check"])).await;
    assert!(check.status.success(), "nothing half-committed: {}", text(&check));
}

/// `chattr` on the given files of the world's directory.
fn chattr(world: &World, flag: &str, files: &[&str]) {
    for file in files {
        let status = std::process::Command::new("chattr").arg(flag).arg(world.dir.path().join(file)).status().unwrap();
        assert!(status.success(), "chattr {flag} {file} (the test needs root on ext4, as CI has)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_made_immutable_mid_run_stops_passes_with_a_message_and_they_resume_after() {
    let world = World::start(TILLFLOW).await;
    let config = world.config(Some(free_port()));
    let polled = std::fs::read_to_string(&config).unwrap().replace("\"1h\"", "\"1s\"");
    std::fs::write(&config, polled).unwrap();
    let log = world.dir.path().join("run.log");
    let child = world
        .command(&config, &["run"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let want = calm_delivery().await;
    eventually(Duration::from_secs(60), "the history import", || events_by_name(&world) == want).await;

    let files = ["state.db", "state.db-journal"];
    chattr(&world, "+i", &files);
    let new_orders = 5;
    for n in 0..new_orders {
        let order = tillflow_source_woocommerce::sandbox::seeded_order(900 + n, 20, jiff::Timestamp::now());
        world.woo.put_order(order);
    }
    let said = || std::fs::read_to_string(&log).unwrap_or_default().contains("the state file cannot be written");
    let waited =
        tokio::time::timeout(Duration::from_secs(30), eventually(Duration::from_secs(30), "the message", said));
    let outcome = waited.await;
    chattr(&world, "-i", &files);
    outcome.unwrap();
    assert!(running.0.try_wait().unwrap().is_none(), "the process is alive, not killed by a signal");

    // Writable again: the next pass commits what the failed ones could not.
    let placed_before = want.get("Order Placed").copied().unwrap_or_default();
    eventually(Duration::from_secs(30), "the new orders", || {
        events_by_name(&world).get("Order Placed").copied().unwrap_or_default() > placed_before
    })
    .await;
    let pid = running.0.id().to_string();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || running.0.wait().unwrap()).await.unwrap();
    assert!(status.success(), "a clean stop after the failures: {status:?}");
    let check = output(world.command(&config, &["state", "check"])).await;
    assert!(check.status.success(), "nothing half-committed: {}", text(&check));
}
