//! The SQLite store against a real file: schema versioning, atomic commits,
//! the ledger, dead letters, the inbox, secrets, and the engine on top of it.

use std::sync::{Arc, Mutex};
use tillflow_core::events::EventKind;
use tillflow_core::keys::IdempotencyKey;
use tillflow_core::model::SourceIdentity;
use tillflow_core::source::Checkpoint;
use tillflow_core::state::{Commit, LedgerRow, Outcome, OutcomeKind, StateStore};
use tillflow_core::{Pipeline, PipelineOptions, Rules};
use tillflow_state_sqlite::{SCHEMA_VERSION, SqliteStore};
use tillflow_testkit::{FakeSink, FakeSource, FakeWorld};

fn key(id: u32) -> IdempotencyKey {
    let identity = SourceIdentity { platform: "fake".into(), source: "shop".into(), id: id.to_string().into() };
    IdempotencyKey::new(&identity, "order", "placed", None)
}

fn row(id: u32, outcome: Outcome) -> LedgerRow {
    LedgerRow {
        key: key(id),
        kind: EventKind::Placed,
        content_hash: format!("hash{id}"),
        outcome,
        occurred_at: jiff::Timestamp::from_second(1_700_000_000 + i64::from(id)).unwrap(),
    }
}

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("state.db")).await.unwrap()
}

/// The schema version a state file's header gives (`PRAGMA user_version`).
fn header_schema(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes[60..64].try_into().unwrap())
}

/// A new state whose header then claims schema `version`: its path and bytes.
async fn state_claiming_schema(dir: &tempfile::TempDir, version: u32) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.path().join("state.db");
    open(dir).await.close().await;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[60..64].copy_from_slice(&version.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

#[tokio::test]
async fn a_new_file_is_created_with_a_rollback_journal_at_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.close().await;
    let bytes = std::fs::read(dir.path().join("state.db")).unwrap();
    assert_eq!(&bytes[..16], b"SQLite format 3\0");
    assert_eq!(header_schema(&bytes), SCHEMA_VERSION);
    // Bytes 18 and 19 are 1 with a rollback journal (2 would be WAL, whose
    // memory-mapped index turns an immutable file into a SIGBUS).
    assert_eq!((bytes[18], bytes[19]), (1, 1));
    assert!(!dir.path().join("state.db-shm").exists(), "no shared-memory index");
    // Re-opening migrates nothing and keeps working.
    let store = open(&dir).await;
    assert_eq!(store.checkpoint("p", "orders").await.unwrap(), None);
}

/// How many write transactions a state file has seen: SQLite's file change
/// counter (header bytes 24 to 28), which a rollback journal's every commit
/// moves on by one.
fn header_commits(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes[24..28].try_into().unwrap())
}

/// The whole schema of a new file is one transaction: opening a new state
/// costs one commit's fsyncs, not one commit's for each migration.
#[tokio::test]
async fn a_new_file_gets_its_whole_schema_in_one_write_transaction() {
    let dir = tempfile::tempdir().unwrap();
    open(&dir).await.close().await;
    let bytes = std::fs::read(dir.path().join("state.db")).unwrap();
    assert_eq!(header_schema(&bytes), SCHEMA_VERSION);
    assert_eq!(header_commits(&bytes), 1, "write transactions that made the file");
}

#[tokio::test]
async fn a_state_file_from_a_newer_tillflow_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = state_claiming_schema(&dir, SCHEMA_VERSION + 1).await;
    let error = SqliteStore::open(&path).await.unwrap_err().to_string();
    assert!(error.contains("newer tillflow"), "{error}");
    assert!(error.contains(&format!("version {}", SCHEMA_VERSION + 1)), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file was not modified");
    assert!(!dir.path().join("state.db-journal").exists(), "no journal was created");
}

/// A file from an older tillflow is migrated only with the file to itself:
/// a run of that older version still on it would go on writing as it
/// always did, into a schema that now means something else (since schema
/// 10, for one, a ledger row's kind is a number where it wrote a name).
#[tokio::test]
async fn an_older_state_is_not_migrated_under_a_run_still_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let older = SCHEMA_VERSION - 1;
    let (path, bytes) = state_claiming_schema(&dir, older).await;
    let running = tillflow_state_sqlite::WriterLock::acquire(&path).unwrap();

    let error = SqliteStore::open(&path).await.unwrap_err().to_string();
    assert!(error.contains(&format!("schema version {older}")), "{error}");
    assert!(error.contains(&format!("another tillflow process (pid {})", std::process::id())), "{error}");
    assert!(error.contains("Nothing was changed"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file was not modified");

    drop(running);
    open(&dir).await.close().await;
    assert_eq!(header_schema(&std::fs::read(&path).unwrap()), SCHEMA_VERSION);
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, vec![b'x'; 200]).unwrap();
    let error = SqliteStore::open(&path).await.unwrap_err().to_string();
    assert!(error.contains("not a SQLite database"), "{error}");
}

#[tokio::test]
async fn the_sqlite_store_passes_the_state_suite() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let next = std::sync::atomic::AtomicU32::new(0);
    tillflow_testkit::state_suite::run_state_suite(|| {
        let path = dir.path().join(format!("state-{}.db", next.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
        async move { Arc::new(SqliteStore::open(&path).await.unwrap()) as Arc<dyn StateStore> }
    })
    .await;
}

#[tokio::test]
async fn a_failing_commit_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    // Make the checkpoint write fail, after the ledger rows of the same commit.
    let mut connection: sqlx::SqliteConnection =
        sqlx::Connection::connect(&format!("sqlite://{}", store.path().display())).await.unwrap();
    sqlx::raw_sql("CREATE TRIGGER fail BEFORE INSERT ON checkpoints BEGIN SELECT RAISE(ABORT, 'injected'); END;")
        .execute(&mut connection)
        .await
        .unwrap();
    let result = store
        .commit(
            "p",
            Commit {
                ledger: vec![row(1, Outcome::Delivered), row(2, Outcome::Delivered)],
                checkpoint: Some(("orders".into(), Checkpoint(serde_json::json!({"v": 1})))),
                ..Commit::default()
            },
        )
        .await;
    assert!(result.is_err());
    assert_eq!(store.checkpoint("p", "orders").await.unwrap(), None);
    assert!(store.ledger_lookup("p", &[&key(1)]).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_engine_resumes_on_a_reopened_file_without_sending_twice() {
    let dir = tempfile::tempdir().unwrap();
    let world = Arc::new(Mutex::new(FakeWorld::sample("shop", 3, 50)));
    let (sink, log) = FakeSink::new(20);
    let store = Arc::new(open(&dir).await);
    let mut pipeline = Pipeline::new(
        "p",
        "shop",
        Box::new(FakeSource::new(world.clone(), 10)),
        Box::new(sink),
        store.clone(),
        Rules::default(),
        PipelineOptions::default(),
    );
    let first = pipeline.run_pass().await.unwrap();
    assert!(first.delivered_total() > 50);
    drop(pipeline);
    drop(store);
    let delivered = log.lock().unwrap().delivered.len();

    let (sink, second_log) = FakeSink::new(20);
    let store = Arc::new(open(&dir).await);
    let mut pipeline = Pipeline::new(
        "p",
        "shop",
        Box::new(FakeSource::new(world.clone(), 10)),
        Box::new(sink),
        store.clone(),
        Rules::default(),
        PipelineOptions::default(),
    );
    // Re-read everything from the start (as an overlap window would): the
    // ledger on disk still stops every duplicate.
    store.reset("unrelated").await.unwrap();
    let second = pipeline.run_pass().await.unwrap();
    assert_eq!(second.delivered_total(), 0);
    assert!(second_log.lock().unwrap().delivered.is_empty());
    assert_eq!(delivered as u64, first.delivered_total());
    let report =
        store.event_times("p", EventKind::Placed, OutcomeKind::Delivered, jiff::Timestamp::UNIX_EPOCH).await.unwrap();
    assert_eq!(report.len(), 50);
    let read = store.orders_read_times("p", jiff::Timestamp::UNIX_EPOCH).await.unwrap();
    assert_eq!(read.len(), 50, "every order read is remembered once, whatever the passes");
}

#[tokio::test]
async fn done_webhooks_move_a_watermark_and_stop_being_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let headers: Vec<(String, String)> = Vec::new();
    let mut shop = Vec::new();
    for n in 0..8 {
        shop.push(store.inbox_push("shop", &headers, b"{}", jiff::Timestamp::now()).await.unwrap());
        if n % 3 == 0 {
            store.inbox_push("other", &headers, b"{}", jiff::Timestamp::now()).await.unwrap();
        }
    }
    let pending = |pipeline: &'static str, source: &'static str| {
        let store = store.clone();
        async move { store.inbox_pending(pipeline, source, 100).await.unwrap().iter().map(|i| i.id).collect::<Vec<_>>() }
    };
    let done_marks = || async {
        let pool =
            sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("state.db").display())).await.unwrap();
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM inbox_done WHERE pipeline = 'p'").fetch_one(&pool).await.unwrap();
        pool.close().await;
        count
    };

    // Done out of order: 1, 2, 3 and 5 (not 4).
    let done = vec![shop[0], shop[1], shop[2], shop[4]];
    store.commit("p", Commit { inbox_done: done, ..Commit::default() }).await.unwrap();
    assert_eq!(pending("p", "shop").await, [shop[3], shop[5], shop[6], shop[7]]);
    assert_eq!(done_marks().await, 1, "the marks under the watermark are gone; the one above it stays");
    assert_eq!(pending("other-pipeline", "shop").await, shop, "another pipeline has its own watermark");
    assert_eq!(pending("p", "other").await.len(), 3, "another source is untouched");

    store.commit("p", Commit { inbox_done: vec![shop[3]], ..Commit::default() }).await.unwrap();
    assert_eq!(pending("p", "shop").await, [shop[5], shop[6], shop[7]]);
    assert_eq!(done_marks().await, 0);

    store.commit("p", Commit { inbox_done: shop[5..].to_vec(), ..Commit::default() }).await.unwrap();
    assert!(pending("p", "shop").await.is_empty());
    let late = store.inbox_push("shop", &headers, b"{}", jiff::Timestamp::now()).await.unwrap();
    assert_eq!(pending("p", "shop").await, [late], "a webhook arriving later is pending");
}

#[tokio::test]
async fn a_state_from_before_running_totals_gets_them_built_from_its_facts() {
    use tillflow_core::model::{OrderFact, sum_facts};
    use tillflow_testkit::state_suite::fact;
    let dir = tempfile::tempdir().unwrap();
    let facts = vec![
        fact("1", "order", "a", true, 1000, 1),
        fact("2", "order", "a", true, 500, 2),
        fact("1", "refund:1", "a", false, 200, 3),
        fact("3", "order", "b", true, 700, 4),
        fact("4", "order", "b", false, 900, 5),
    ];
    {
        let store = open(&dir).await;
        store.record_facts("p", facts.clone()).await.unwrap();
        store.record_facts("q", facts[3..].to_vec()).await.unwrap();
        store.close().await;
    }
    // Back to the schema before running totals, facts kept: what an older
    // tillflow left.
    {
        let mut connection = connect(&dir).await;
        sqlx::raw_sql(
            "DROP TABLE person_totals; DROP INDEX order_facts_by_person; \
             CREATE INDEX order_facts_by_person ON order_facts (pipeline, person); \
             DROP INDEX ledger_placed_by_time; \
             CREATE INDEX ledger_by_kind_and_time ON ledger (pipeline, kind, outcome, occurred_at); \
             PRAGMA user_version = 6;",
        )
        .execute(&mut connection)
        .await
        .unwrap();
    }
    let store = open(&dir).await;
    for (pipeline, facts) in [("p", &facts[..]), ("q", &facts[3..])] {
        let totals = store.person_totals(pipeline, &["a", "b"]).await.unwrap();
        for person in ["a", "b"] {
            let mine: Vec<&OrderFact> = facts.iter().filter(|fact| fact.person == person).collect();
            assert_eq!(totals.get(person).cloned(), (!mine.is_empty()).then(|| sum_facts(mine)), "{pipeline} {person}");
        }
    }
}

/// A connection of its own to the state file, around the store.
async fn connect(dir: &tempfile::TempDir) -> sqlx::SqliteConnection {
    sqlx::Connection::connect(&format!("sqlite://{}", dir.path().join("state.db").display())).await.unwrap()
}

/// The steps SQLite plans for `question`, as `EXPLAIN QUERY PLAN` words them.
async fn query_plan(connection: &mut sqlx::SqliteConnection, question: &str) -> Vec<String> {
    sqlx::query(&format!("EXPLAIN QUERY PLAN {question}"))
        .fetch_all(connection)
        .await
        .unwrap()
        .iter()
        .map(|row| sqlx::Row::get::<String, _>(row, 3))
        .collect()
}

#[tokio::test]
async fn status_counts_a_pipelines_ledger_without_reading_the_other_pipelines() {
    // The status page counts every pipeline's ledger on each view: a scan of
    // the whole ledger per pipeline would be pipelines × rows.
    let dir = tempfile::tempdir().unwrap();
    open(&dir).await.close().await;
    let mut connection = connect(&dir).await;
    for question in [
        "SELECT kind, outcome, reason, COUNT(*) FROM ledger WHERE pipeline = 'p' GROUP BY kind, outcome, reason",
        "SELECT MAX(recorded_at) FROM ledger WHERE pipeline = 'p' AND outcome = 0",
    ] {
        let plan = query_plan(&mut connection, question).await;
        assert!(plan.iter().any(|step| step.starts_with("SEARCH ledger")), "{question}: {plan:?}");
        assert!(!plan.iter().any(|step| step.starts_with("SCAN ledger")), "{question}: {plan:?}");
    }
    // A page's lookups, as the store asks them: the asked keys outside, each
    // probing the table's whole key. Joined without CROSS, SQLite chose to
    // walk the pipeline's ledger and scan the list for every row of it.
    for (question, table) in [
        (
            "SELECT ledger.key FROM json_each('[\"k\"]') AS asked CROSS JOIN ledger ON ledger.key = asked.value AND ledger.pipeline = 'p'",
            "ledger",
        ),
        (
            "SELECT order_facts.at FROM json_each('[\"1\"]') AS asked CROSS JOIN order_facts ON order_facts.order_id = asked.value AND order_facts.pipeline = 'p'",
            "order_facts",
        ),
        (
            "SELECT person_totals.orders FROM json_each('[\"a\"]') AS asked CROSS JOIN person_totals ON person_totals.person = asked.value AND person_totals.pipeline = 'p'",
            "person_totals",
        ),
    ] {
        let plan = query_plan(&mut connection, question).await;
        assert!(plan[0].starts_with("SCAN asked"), "{question}: {plan:?}");
        assert!(
            plan[1].starts_with(&format!("SEARCH {table} USING PRIMARY KEY (")) && plan[1].contains(" AND "),
            "{plan:?}"
        );
    }
}

/// The column each table's primary key begins with.
async fn first_key_columns(dir: &tempfile::TempDir) -> Vec<String> {
    let mut connection = connect(dir).await;
    let mut first = Vec::new();
    for table in ["ledger", "order_facts", "person_totals", "orders_read"] {
        let column: String = sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}') WHERE pk = 1"))
            .fetch_one(&mut connection)
            .await
            .unwrap();
        first.push(column);
    }
    first
}

#[tokio::test]
async fn a_state_keyed_by_pipeline_first_is_rekeyed_by_record_and_keeps_every_row() {
    use tillflow_core::model::{Currency, OrderFact};
    use tillflow_core::rust_decimal::Decimal;
    let dir = tempfile::tempdir().unwrap();
    let fact = |order: &str, fact_id: &str, person: &str, cents: i64| OrderFact {
        order_id: order.into(),
        fact_id: fact_id.into(),
        person: person.into(),
        counted: true,
        amount: Decimal::new(cents, 2),
        currency: Currency::new("EUR").unwrap(),
        at: jiff::Timestamp::from_second(1_700_000_000 + cents).unwrap(),
    };
    let placed = |second: i64| jiff::Timestamp::from_second(1_700_000_000 + second).unwrap();
    let keys = [key(1), key(2), key(3)];
    let keys: Vec<&IdempotencyKey> = keys.iter().collect();
    let since = placed(0);
    let store = open(&dir).await;
    let p_rows =
        vec![row(1, Outcome::Delivered), row(2, Outcome::Skipped("no identifier".into())), row(3, Outcome::Delivered)];
    let orders_read = vec![("1".to_owned(), placed(1)), ("2".to_owned(), placed(2))];
    store.commit("p", Commit { ledger: p_rows, orders_read, ..Commit::default() }).await.unwrap();
    store.commit("q", Commit { ledger: vec![row(2, Outcome::DeadLettered)], ..Commit::default() }).await.unwrap();
    store.record_facts("p", vec![fact("1", "order", "a", 1000), fact("2", "order", "b", 500)]).await.unwrap();
    store.record_facts("q", vec![fact("1", "order", "a", 700)]).await.unwrap();
    async fn read(store: SqliteStore, keys: &[&IdempotencyKey], since: jiff::Timestamp) -> Vec<String> {
        let mut seen = Vec::new();
        for pipeline in ["p", "q"] {
            let mut ledger: Vec<_> = store.ledger_lookup(pipeline, keys).await.unwrap().into_iter().collect();
            ledger.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            let totals: std::collections::BTreeMap<_, _> =
                store.person_totals(pipeline, &["a", "b"]).await.unwrap().into_iter().collect();
            let times = store.orders_read_times(pipeline, since).await.unwrap();
            let counts = store.status(pipeline).await.unwrap().counts;
            seen.push(format!("{pipeline}: {ledger:?} {totals:?} {times:?} {counts:?}"));
        }
        store.close().await;
        seen
    }
    let before = read(store, &keys, since).await;
    // Back to the keys an older tillflow wrote: the pipeline's name first.
    {
        let mut connection = connect(&dir).await;
        sqlx::raw_sql(
            "CREATE TABLE old_ledger (pipeline TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, \
               content_hash TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', \
               occurred_at INTEGER NOT NULL, recorded_at INTEGER NOT NULL, PRIMARY KEY (pipeline, key)) WITHOUT ROWID; \
             INSERT INTO old_ledger SELECT pipeline, key, kind, content_hash, outcome, reason, occurred_at, recorded_at FROM ledger_named; \
             DROP VIEW ledger_named; DROP TABLE ledger; ALTER TABLE old_ledger RENAME TO ledger; \
             CREATE INDEX ledger_placed_by_time ON ledger (pipeline, outcome, occurred_at) WHERE kind = 'placed'; \
             CREATE TABLE old_facts (pipeline TEXT NOT NULL, order_id TEXT NOT NULL, fact_id TEXT NOT NULL, \
               person TEXT NOT NULL, counted INTEGER NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, \
               at INTEGER NOT NULL, PRIMARY KEY (pipeline, order_id, fact_id)) WITHOUT ROWID; \
             INSERT INTO old_facts SELECT pipeline, order_id, fact_id, person, counted, amount, currency, at FROM order_facts; \
             DROP TABLE order_facts; ALTER TABLE old_facts RENAME TO order_facts; \
             CREATE INDEX order_facts_by_person ON order_facts (pipeline, person, at); \
             CREATE TABLE old_totals (pipeline TEXT NOT NULL, person TEXT NOT NULL, revenue TEXT NOT NULL, \
               orders INTEGER NOT NULL, last_at INTEGER, currency TEXT, PRIMARY KEY (pipeline, person)) WITHOUT ROWID; \
             INSERT INTO old_totals SELECT pipeline, person, revenue, orders, last_at, currency FROM person_totals; \
             DROP TABLE person_totals; ALTER TABLE old_totals RENAME TO person_totals; \
             CREATE TABLE old_read (pipeline TEXT NOT NULL, order_id TEXT NOT NULL, created_at INTEGER NOT NULL, \
               PRIMARY KEY (pipeline, order_id)) WITHOUT ROWID; \
             INSERT INTO old_read SELECT pipeline, order_id, created_at FROM orders_read; \
             DROP TABLE orders_read; ALTER TABLE old_read RENAME TO orders_read; \
             CREATE INDEX orders_read_by_time ON orders_read (pipeline, created_at); \
             PRAGMA user_version = 8;",
        )
        .execute(&mut connection)
        .await
        .unwrap();
    }
    assert_eq!(first_key_columns(&dir).await, ["pipeline"; 4]);
    assert_eq!(read(open(&dir).await, &keys, since).await, before, "every row read back as it was");
    // The ledger stays keyed by the pipeline first: status counts it per pipeline.
    assert_eq!(first_key_columns(&dir).await, ["pipeline", "order_id", "person", "order_id"]);
    // Rows written after land where the old ones are: an upsert replaces.
    let store = open(&dir).await;
    store.commit("p", Commit { ledger: vec![row(2, Outcome::Delivered)], ..Commit::default() }).await.unwrap();
    store.record_facts("p", vec![fact("2", "order", "b", 600)]).await.unwrap();
    let ledger = store.ledger_lookup("p", &keys).await.unwrap();
    assert_eq!(ledger.len(), 3);
    assert_eq!(ledger[&key(2)].outcome, Outcome::Delivered);
    assert_eq!(store.ledger_lookup("q", &keys).await.unwrap()[&key(2)].outcome, Outcome::DeadLettered);
    let totals = store.person_totals("p", &["b"]).await.unwrap();
    assert_eq!(totals["b"].revenue, Decimal::new(600, 2));
    assert_eq!(totals["b"].orders, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_stored_at_once_each_get_their_own_id_and_body() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut pushes = tokio::task::JoinSet::new();
    for n in 0..64u32 {
        let store = store.clone();
        pushes.spawn(async move {
            let body = format!("{{\"n\":{n}}}");
            let headers = [("x-n".to_owned(), n.to_string())];
            let id = store.inbox_push("shop", &headers, body.as_bytes(), jiff::Timestamp::now()).await.unwrap();
            (id, body)
        });
    }
    let mut answered = std::collections::BTreeMap::new();
    while let Some(joined) = pushes.join_next().await {
        let (id, body) = joined.unwrap();
        assert!(answered.insert(id, body).is_none(), "two webhooks were given id {id}");
    }
    let stored = store.inbox_pending("p", "shop", 100).await.unwrap();
    assert_eq!(stored.len(), 64);
    for item in stored {
        assert_eq!(answered[&item.id].as_bytes(), &item.body[..], "webhook {} holds another's body", item.id);
    }
}

/// SQLite's file change counter (header bytes 24..28): one more for every
/// write transaction committed to a file with a rollback journal.
fn transactions_committed(dir: &tempfile::TempDir) -> u32 {
    use std::io::Read;
    let mut header = [0; 28];
    std::fs::File::open(dir.path().join("state.db")).unwrap().read_exact(&mut header).unwrap();
    u32::from_be_bytes(header[24..28].try_into().unwrap())
}

/// The writes a run makes all the time (webhooks stored, facts, a batch's
/// commit), arriving while a transaction is being written, share the next
/// one: on a rollback journal each transaction is five fsyncs, and webhooks
/// and pipelines meeting on the one connection each paid their own.
#[tokio::test]
async fn writes_that_arrive_together_share_one_transaction() {
    use tillflow_core::model::{Currency, OrderFact};
    use tillflow_core::rust_decimal::Decimal;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let before = transactions_committed(&dir);
    let fact = OrderFact {
        order_id: "1".into(),
        fact_id: "order".into(),
        person: "a".into(),
        counted: true,
        amount: Decimal::new(1250, 2),
        currency: Currency::new("EUR").unwrap(),
        at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
    };
    // On this single-threaded runtime every write below is queued before the
    // first transaction ends: the first goes alone, the rest together.
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..4u32 {
        let store = store.clone();
        writes.spawn(async move {
            store.inbox_push("shop", &[], format!("{{\"n\":{n}}}").as_bytes(), jiff::Timestamp::now()).await.map(|_| ())
        });
    }
    {
        let store = store.clone();
        writes.spawn(async move { store.record_facts("q", vec![fact]).await.map(|_| ()) });
    }
    for pipeline in ["p", "r"] {
        let store = store.clone();
        writes.spawn(async move {
            let commit = Commit { ledger: vec![row(1, Outcome::Delivered)], ..Commit::default() };
            store.commit(pipeline, commit).await
        });
    }
    while let Some(written) = writes.join_next().await {
        written.unwrap().unwrap();
    }
    assert_eq!(transactions_committed(&dir) - before, 2, "seven writes, queued together, in how many transactions");
    // Every write is there, each under its own name.
    assert_eq!(store.inbox_pending("p", "shop", 100).await.unwrap().len(), 4);
    assert_eq!(store.person_totals("q", &["a"]).await.unwrap()["a"].orders, 1);
    for pipeline in ["p", "r"] {
        assert_eq!(store.ledger_lookup(pipeline, &[&key(1)]).await.unwrap()[&key(1)].outcome, Outcome::Delivered);
    }
}

/// The inbox prune goes through the group writer: queued behind a webhook's
/// transaction with more webhooks, it is written with them, not in a
/// transaction (five fsyncs) of its own that they would wait for.
#[tokio::test]
async fn a_prune_shares_the_transaction_of_the_webhooks_queued_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let done = store.inbox_push("shop", &[], b"{}", jiff::Timestamp::now()).await.unwrap();
    store.commit("p", Commit { inbox_done: vec![done], ..Commit::default() }).await.unwrap();
    let before = transactions_committed(&dir);
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..3u32 {
        let store = store.clone();
        writes.spawn(async move {
            store.inbox_push("shop", &[], format!("{{\"n\":{n}}}").as_bytes(), jiff::Timestamp::now()).await.map(|_| 0)
        });
    }
    {
        let store = store.clone();
        writes.spawn(async move { store.inbox_prune("shop", &["p".to_owned()]).await });
    }
    let mut deleted = 0;
    while let Some(written) = writes.join_next().await {
        deleted += written.unwrap().unwrap();
    }
    assert_eq!(deleted, 1, "the webhook done is pruned");
    assert_eq!(
        transactions_committed(&dir) - before,
        2,
        "the first webhook alone, the other two and the prune together"
    );
    assert_eq!(store.inbox_pending_count("p", "shop").await.unwrap(), 3);
}

/// A backlog of webhooks is pruned a chunk a transaction: at once, the
/// overwriting and journaling of every page it freed held SQLite's one
/// writer for all of it, and every webhook arriving meanwhile waited.
#[tokio::test]
async fn a_backlog_is_pruned_a_chunk_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut done = Vec::new();
    for n in 0..250u32 {
        done.push(
            store.inbox_push("shop", &[], format!("{{\"n\":{n}}}").as_bytes(), jiff::Timestamp::now()).await.unwrap(),
        );
    }
    let last = store.inbox_push("shop", &[], b"{}", jiff::Timestamp::now()).await.unwrap();
    store.commit("p", Commit { inbox_done: done, ..Commit::default() }).await.unwrap();
    let before = transactions_committed(&dir);
    assert_eq!(store.inbox_prune("shop", &["p".to_owned()]).await.unwrap(), 250, "every webhook done is pruned");
    assert_eq!(transactions_committed(&dir) - before, 3, "100, 100 and 50 webhooks, each in a transaction of its own");
    let pending = store.inbox_pending("p", "shop", 10).await.unwrap();
    assert_eq!(pending.iter().map(|item| item.id).collect::<Vec<_>>(), [last], "the webhook not done is kept");
}

/// A ledger row as names and hex: pipeline, key, kind, content hash, outcome,
/// reason, when it occurred, when it was recorded.
type NamedRow<T> = (T, String, T, T, T, T, i64, i64);

/// A ledger an older tillflow wrote (kinds, outcomes and hashes as text) is
/// packed when the state is opened, and every row reads back as it was:
/// through the store, and through the view `tillflow state migrate` copies.
#[tokio::test]
async fn a_ledger_of_names_and_hex_is_packed_and_every_row_reads_back_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    open(&dir).await.close().await;
    let current = tillflow_core::keys::content_hash(&"an order");
    let v1 = tillflow_core::keys::content_hash_v1(&"an order");
    let rows: Vec<NamedRow<&str>> = vec![
        ("p", key(1).as_str().into(), "placed", &current, "delivered", "", 1_000, 5_000),
        ("p", key(2).as_str().into(), "placed", &v1, "skipped", "no identifier", 2_000, 5_001),
        ("p", key(3).as_str().into(), "placed", "hash3", "dead-lettered", "", 3_000, 5_002),
        (
            "p",
            "fake:shop:order:4:completed".into(),
            "completed",
            "v2000102030405060708090a0b0c0d0e",
            "delivered",
            "",
            4_000,
            5_003,
        ),
        ("p", "fake:shop:customer:5:profile".into(), "profile-updated", "ABCDEF", "delivered", "", 5_000, 5_004),
        ("q", key(1).as_str().into(), "placed", "v3abc", "delivered", "", 1_500, 6_000),
        ("q", key(2).as_str().into(), "group", "", "skipped", "rule: excluded", 2_500, 6_001),
    ];
    {
        let mut connection = connect(&dir).await;
        sqlx::raw_sql(
            "DROP VIEW ledger_named; DROP TABLE ledger; \
             CREATE TABLE ledger (pipeline TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, \
               content_hash TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', \
               occurred_at INTEGER NOT NULL, recorded_at INTEGER NOT NULL, PRIMARY KEY (pipeline, key)) WITHOUT ROWID; \
             CREATE INDEX ledger_placed_by_time ON ledger (pipeline, outcome, occurred_at) WHERE kind = 'placed'; \
             PRAGMA user_version = 9;",
        )
        .execute(&mut connection)
        .await
        .unwrap();
        for (pipeline, key, kind, hash, outcome, reason, occurred, recorded) in &rows {
            sqlx::query("INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(pipeline)
                .bind(key)
                .bind(kind)
                .bind(hash)
                .bind(outcome)
                .bind(reason)
                .bind(occurred)
                .bind(recorded)
                .execute(&mut connection)
                .await
                .unwrap();
        }
    }
    let store = open(&dir).await;
    for (pipeline, key, _, hash, outcome, reason, _, _) in &rows {
        let key = IdempotencyKey::from_stored(key.clone());
        let found = store.ledger_lookup(pipeline, &[&key]).await.unwrap();
        let entry = &found[&key];
        assert_eq!(entry.content_hash, *hash, "{pipeline} {key}");
        assert_eq!(entry.outcome.kind().as_str(), *outcome, "{pipeline} {key}");
        assert_eq!(entry.outcome.reason(), *reason, "{pipeline} {key}");
    }
    let counts = |pipeline: &str| {
        let store = store.clone();
        let pipeline = pipeline.to_owned();
        async move {
            let status = store.status(&pipeline).await.unwrap();
            let counts: Vec<String> = status
                .counts
                .iter()
                .map(|count| format!("{} {} {}", count.kind.as_str(), count.outcome.kind().as_str(), count.count))
                .collect();
            (counts, status.last_delivery_at.map(|at| at.as_millisecond()))
        }
    };
    assert_eq!(
        counts("p").await,
        (
            vec![
                "placed delivered 1".to_owned(),
                "placed skipped 1".into(),
                "placed dead-lettered 1".into(),
                "completed delivered 1".into(),
                "profile-updated delivered 1".into()
            ],
            Some(5_004)
        )
    );
    assert_eq!(counts("q").await, (vec!["placed delivered 1".to_owned(), "group skipped 1".into()], Some(6_000)));
    let placed =
        store.event_times("p", EventKind::Placed, OutcomeKind::Delivered, jiff::Timestamp::UNIX_EPOCH).await.unwrap();
    assert_eq!(placed.iter().map(|at| at.as_millisecond()).collect::<Vec<_>>(), [1_000]);
    store.close().await;
    let mut connection = connect(&dir).await;
    let named: Vec<NamedRow<String>> = sqlx::query_as("SELECT * FROM ledger_named ORDER BY pipeline, occurred_at")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    let expected: Vec<NamedRow<String>> = rows
        .iter()
        .map(|(p, k, kind, hash, outcome, reason, o, r)| {
            (
                p.to_string(),
                k.clone(),
                kind.to_string(),
                hash.to_string(),
                outcome.to_string(),
                reason.to_string(),
                *o,
                *r,
            )
        })
        .collect();
    assert_eq!(named, expected);
    let types: Vec<(String, String, String)> =
        sqlx::query_as("SELECT DISTINCT typeof(kind), typeof(content_hash), typeof(outcome) FROM ledger")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    assert_eq!(types, [("integer".to_owned(), "blob".to_owned(), "integer".to_owned())]);
    // The hashes tillflow writes take their bytes, not their hex.
    let packed: i64 =
        sqlx::query_scalar("SELECT length(content_hash) FROM ledger WHERE pipeline = 'p' AND occurred_at = 1000")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert_eq!(packed as usize, 2 + (current.len() - 2) / 2);
}

/// Whether the state file or its journal holds `text` in any case.
fn files_hold(dir: &tempfile::TempDir, text: &str) -> bool {
    let text = text.to_lowercase();
    ["state.db", "state.db-journal"].iter().any(|name| {
        let bytes = std::fs::read(dir.path().join(name)).unwrap_or_default();
        bytes.to_ascii_lowercase().windows(text.len()).any(|window| window == text.as_bytes())
    })
}

#[tokio::test]
async fn a_purged_address_is_left_nowhere_in_the_state_files() {
    use tillflow_core::model::Person;
    use tillflow_core::state::{DeadLetterStage, NewDeadLetter};
    use tillflow_testkit::state_suite::fact;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let guest = Person { email: Some("Ana@Example.com".into()), ..Person::default() };
    let facts =
        vec![fact("1", "order", &guest.key().unwrap(), true, 1250, 0), fact("2", "order", "id:7", true, 900, 0)];
    store.record_facts("p", facts).await.unwrap();
    let letter = |email: &str| NewDeadLetter {
        key: Some(key(1)),
        stage: DeadLetterStage::Sink,
        reason: "refused".into(),
        payload: serde_json::json!({"billing": {"email": email}}),
    };
    let letters = vec![letter("Ana@Example.com"), letter("other@example.com")];
    store.commit("p", Commit { dead_letters: letters, ..Commit::default() }).await.unwrap();
    // A webhook about her, done and pruned before she asked: only SQLite's
    // zeroing of deleted rows takes it out of the file.
    let early = store.inbox_push("shop", &[], br#"{"billing":{"email":"ana@example.com"}}"#, jiff::Timestamp::now());
    let early = early.await.unwrap();
    store.commit("p", Commit { inbox_done: vec![early], ..Commit::default() }).await.unwrap();
    assert_eq!(store.inbox_prune("shop", &["p".to_owned()]).await.unwrap(), 1);
    let form = b"payload=%7B%22email%22%3A%22ana%40example.com%22%7D";
    store.inbox_push("till", &[], form, jiff::Timestamp::now()).await.unwrap();
    let entries =
        [("person:ana@example.com".to_owned(), "{}".to_owned()), ("pos:9".into(), "person:ana@example.com".into())];
    store.source_state_put("pos", &entries).await.unwrap();
    assert!(files_hold(&dir, "ana@example.com"), "the files show what they hold: the check can fail");

    let purged = store.purge("ana@example.com").await.unwrap();
    assert_eq!((purged.dead_letters, purged.webhooks, purged.source_entries), (1, 1, 2));
    store.close().await;
    for form in ["ana@example.com", "ana%40example.com"] {
        assert!(!files_hold(&dir, form), "{form} is left in the state or its journal");
    }
    assert!(files_hold(&dir, "other@example.com"), "someone else's letter stays");
    let store = open(&dir).await;
    let totals = store.person_totals("p", &[guest.key().unwrap().as_str(), "id:7"]).await.unwrap();
    assert_eq!(totals.len(), 2, "her facts and totals stay, under a key that is not her address");
}

#[tokio::test]
async fn a_state_keyed_by_guests_addresses_is_rekeyed_by_their_hashes_and_rewritten() {
    use tillflow_core::subject::email_subject;
    let dir = tempfile::tempdir().unwrap();
    let fact = |order: &str, person: &str, cents: i64| {
        tillflow_testkit::state_suite::fact(order, "order", person, true, cents, cents)
    };
    // What schema 10 wrote for a guest: the address itself as the key.
    let facts = vec![
        fact("1", "email:ana@example.com", 1000),
        fact("2", "email:ana@example.com", 500),
        fact("3", "email:bia@example.com", 700),
        fact("4", "id:7", 900),
    ];
    let before = {
        let store = open(&dir).await;
        store.record_facts("p", facts.clone()).await.unwrap();
        store.record_facts("q", facts[2..].to_vec()).await.unwrap();
        let before = store.person_totals("p", &["email:ana@example.com", "email:bia@example.com", "id:7"]).await;
        store.close().await;
        before.unwrap()
    };
    {
        // An older tillflow deleted rows without zeroing them.
        let mut connection = connect(&dir).await;
        sqlx::raw_sql(
            "PRAGMA secure_delete = OFF; \
             INSERT INTO source_state VALUES ('pos', 'person:ana@example.com', '{}', 0); \
             DELETE FROM source_state; PRAGMA user_version = 10;",
        )
        .execute(&mut connection)
        .await
        .unwrap();
    }
    assert!(files_hold(&dir, "ana@example.com"));

    let store = open(&dir).await;
    let (ana, bia) = (email_subject("ana@example.com"), email_subject("bia@example.com"));
    let after = store.person_totals("p", &[ana.as_str(), bia.as_str(), "id:7"]).await.unwrap();
    assert_eq!(after[&ana], before["email:ana@example.com"]);
    assert_eq!(after[&bia], before["email:bia@example.com"]);
    assert_eq!(after["id:7"], before["id:7"]);
    assert_eq!(
        store.person_totals("q", &[bia.as_str()]).await.unwrap()[&bia],
        tillflow_core::model::sum_facts(&facts[2..3])
    );
    store.close().await;
    let mut connection = connect(&dir).await;
    let plain: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM order_facts WHERE person LIKE '%@%') \
              + (SELECT COUNT(*) FROM person_totals WHERE person LIKE '%@%')",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert_eq!(plain, 0);
    let leftover: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'guest_key_hashes'")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(leftover, 0);
    sqlx::Connection::close(connection).await.unwrap();
    for address in ["ana@example.com", "bia@example.com"] {
        assert!(!files_hold(&dir, address), "{address} is left in the file");
    }
}
