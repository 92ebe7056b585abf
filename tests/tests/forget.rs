//! `tillflow forget --email`: the person is deleted at the sink through its
//! own API (Customer.io's `suppress`), a tombstone that does not hold the
//! address is kept, and a new sale for them is read, skipped as
//! "forgotten" and never sent, while everyone else's goes on.

use tillflow_e2e::woo_cio::World;
use tillflow_kit::sandbox::Sandbox;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");

fn skipped_forgotten(summary: &str) -> u64 {
    let part = summary.split("skipped: ").nth(1).unwrap().split(';').next().unwrap();
    part.split(", ").filter_map(|item| item.strip_prefix("forgotten ")).map(|count| count.parse::<u64>().unwrap()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_person_is_deleted_at_the_sink_and_their_next_sale_is_never_sent() {
    let world = World::start(TILLFLOW).await;
    let config = world.config(None);
    world.run_once(&config).await;
    assert_eq!(world.person("id:2")["email"], "customer2@example.com", "the history reached Customer.io");
    let events_of = |person: &str| {
        let cio = world.cio.world();
        let cio = cio.lock().unwrap();
        cio.events.iter().filter(|event| event.person == person).count()
    };
    assert!(events_of("id:2") > 0);
    let others_before = events_of("id:3");

    // Asked with the address as an operator might type it.
    let output = world.command(&config, &["forget", "--email", " Customer2@Example.com"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("{stdout}");
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("forgotten       Customer.io (sink crm)"), "{stdout}");
    assert!(stdout.contains("asked:    POST /api/v2/entity"), "{stdout}");
    assert!(!stdout.to_lowercase().contains("customer2@example.com"), "the address is shown masked: {stdout}");
    {
        let cio = world.cio.world();
        let cio = cio.lock().unwrap();
        assert_eq!(cio.forget_operations, 1);
        assert!(!cio.people.contains_key("id:2"), "the person is deleted");
        assert!(cio.suppressed.contains("id:2") && cio.suppressed.contains("email:customer2@example.com"));
    }
    assert_eq!(events_of("id:2"), 0, "their events went with them");

    // The tombstone recognises the address without holding it.
    let url = format!("sqlite://{}", world.dir.path().join("state.db").display());
    let mut connection: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    let subjects: Vec<String> =
        sqlx::query_scalar("SELECT subject FROM forgotten").fetch_all(&mut connection).await.unwrap();
    sqlx::Connection::close(connection).await.unwrap();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(!subjects[0].contains("customer2"), "{subjects:?}");

    // A new sale for them at the till (sale 1 goes to customer 2), and one
    // for customer 3 beside it.
    assert!(world.woo.ring_sale(1));
    assert!(world.woo.ring_sale(2));
    let summary = world.run_once(&config).await;
    eprintln!("{summary}");
    assert!(skipped_forgotten(&summary) >= 2, "the sale's events were skipped as forgotten: {summary}");
    {
        let cio = world.cio.world();
        let cio = cio.lock().unwrap();
        assert_eq!(cio.operations_for_suppressed, 0, "nothing about them was sent");
        assert!(!cio.people.contains_key("id:2"), "nothing re-created them");
    }
    assert_eq!(events_of("id:2"), 0);
    assert!(events_of("id:3") > others_before, "everyone else's sales go on");

    // Asking again is harmless; a sink that cannot be asked is named, its
    // credentials are not printed, and the exit says to try again.
    let again = world.command(&config, &["forget", "--email", "customer2@example.com"]).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stdout));
    let refused = world
        .command(&config, &["forget", "--email", "customer3@example.com"])
        .env("CIO_API_KEY", "wrong_key_e2e")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&refused.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAILED          Customer.io (sink crm)"), "{stdout}");
    assert!(stderr.contains("run `tillflow forget` again"), "{stderr}");
    assert!(!stdout.contains("wrong_key_e2e") && !stderr.contains("wrong_key_e2e"));
    // The tombstone stands even so: customer 3's next sale is not sent.
    assert!(world.woo.ring_sale(22));
    let summary = world.run_once(&config).await;
    assert!(skipped_forgotten(&summary) >= 2, "{summary}");

    // Not an address: refused before anything is opened.
    let bad = world.command(&config, &["forget", "--email", "customer2"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--email: `customer2` is not an email address"));
}

/// Whether the state file or its journal holds `text` in any case.
fn state_files_hold(world: &World, text: &str) -> bool {
    ["state.db", "state.db-journal"].iter().any(|name| {
        let bytes = std::fs::read(world.dir.path().join(name)).unwrap_or_default().to_ascii_lowercase();
        bytes.windows(text.len()).any(|window| window == text.as_bytes())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_guests_address_is_left_nowhere_in_the_state() {
    let world = World::start(TILLFLOW).await;
    let config = world.config(None);
    world.run_once(&config).await;
    // Their orders are counted under a hash of the address, not the address.
    let url = format!("sqlite://{}", world.dir.path().join("state.db").display());
    let mut connection: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    let facts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_facts WHERE person = ?")
        .bind(tillflow_core::subject::email_subject("guest10@example.com"))
        .fetch_one(&mut connection)
        .await
        .unwrap();
    sqlx::Connection::close(connection).await.unwrap();
    assert_eq!(facts, 1, "the guest's order is among the facts");

    let output = world.command(&config, &["forget", "--email", "Guest10@Example.com"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("deleted from the state: 0 dead letter(s), 0 stored webhook(s), 0 source entries"),
        "{stdout}"
    );
    assert!(!state_files_hold(&world, "guest10@example.com"), "the address is left in the state");
    assert!(!state_files_hold(&world, "guest20@example.com"), "nor is any other guest's: none is ever kept");
}
