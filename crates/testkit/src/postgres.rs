//! A database of its own for each Postgres test, on the server that
//! `TILLFLOW_TEST_POSTGRES_URL` names (`.ci/run` sets it when a server
//! answers on 127.0.0.1:5432); making one drops those that tests of ended
//! processes left behind.

use sqlx::Connection;
use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the test server.
pub const URL_VARIABLE: &str = "TILLFLOW_TEST_POSTGRES_URL";

/// The URL of a new, empty database for `label`; `None` (said on stderr)
/// when no test server is configured.
pub async fn fresh_database(label: &str) -> Option<String> {
    let Ok(server) = std::env::var(URL_VARIABLE) else {
        eprintln!("{URL_VARIABLE} is not set: the Postgres test `{label}` does not run here (.ci/run sets it)");
        return None;
    };
    Some(create_database(&server, label).await)
}

/// Creates a new, empty database on the server `server` points at; its URL.
pub async fn create_database(server: &str, label: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "tftest_{}_{}_{}_{}",
        label.chars().filter(char::is_ascii_alphanumeric).take(20).collect::<String>().to_lowercase(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst),
        jiff::Timestamp::now().as_millisecond() % 1_000_000
    );
    let mut admin =
        sqlx::PgConnection::connect(server).await.unwrap_or_else(|e| panic!("cannot reach the Postgres server: {e}"));
    if on_this_machine(server) {
        drop_leftovers(&mut admin).await;
    }
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create a database");
    admin.close().await.ok();
    with_database(server, &name)
}

/// Any 64-bit number nobody else uses: one process clears at a time.
const CLEARING_LOCK: i64 = 0x7466_7465_7374_5f63; // "tftest_c"

/// Drops the test databases of processes that have ended. A test cannot
/// drop its own as it ends (nothing async runs then), and each `.ci/run`
/// left some forty behind, 10 MB each, on a server that keeps them for
/// every later run. So each run clears what the runs before it left. A
/// database whose process is still alive (a test running beside this one)
/// is never touched. Failures are ignored: what is left is cleared next time.
async fn drop_leftovers(admin: &mut sqlx::PgConnection) {
    // Waited for, not tried: a test that skipped the clearing while another
    // process held the lock could not count on its leftovers being gone.
    if sqlx::query("SELECT pg_advisory_lock($1)").bind(CLEARING_LOCK).execute(&mut *admin).await.is_err() {
        return;
    }
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'tftest\\_%'")
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_default();
    for name in names {
        if creator(&name).is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut *admin).await;
        }
    }
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(CLEARING_LOCK).execute(&mut *admin).await;
}

/// The process that made the test database `name` (`tftest_<label>_<pid>_…`;
/// a label keeps only letters and digits, so the pid is the third field).
fn creator(name: &str) -> Option<u32> {
    name.strip_prefix("tftest_")?.split('_').nth(1)?.parse().ok()
}

/// Whether the server runs on this machine, where a database's process id
/// says whether its test is still running: on another, it names another
/// machine's process.
fn on_this_machine(server: &str) -> bool {
    use std::str::FromStr;
    sqlx::postgres::PgConnectOptions::from_str(server)
        .map(|options| {
            ["127.0.0.1", "localhost", "::1", "[::1]"].contains(&options.get_host())
                || options.get_host().starts_with('/')
        })
        .unwrap_or(false)
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_end = base.find("://").map_or(0, |at| at + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_database_names_the_process_that_made_it() {
        assert_eq!(creator("tftest_failover_10560_3_134780"), Some(10560));
        assert_eq!(creator("tftest__77_0_5"), Some(77));
        assert_eq!(creator("test"), None);
        assert_eq!(creator("tftest_x_notapid_0_0"), None);
    }

    /// A database left by a process that has ended is dropped when the
    /// next one is made; one whose process runs (this test's own) stays.
    #[tokio::test]
    async fn databases_of_ended_processes_are_dropped_and_running_ones_kept() {
        let Ok(server) = std::env::var(URL_VARIABLE) else { return };
        let mut ended = std::process::Command::new("true").spawn().unwrap();
        let pid = ended.id();
        ended.wait().unwrap();
        let leftover = format!("tftest_leftover_{pid}_0_0");
        let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE {leftover}")).execute(&mut admin).await.unwrap();
        let kept = create_database(&server, "kept").await;
        let kept = kept.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
        let exists = |name: String| {
            sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)").bind(name)
        };
        assert!(!exists(leftover).fetch_one(&mut admin).await.unwrap(), "the ended process's database is dropped");
        assert!(exists(kept.clone()).fetch_one(&mut admin).await.unwrap(), "this process's database stays");
        sqlx::raw_sql(&format!("DROP DATABASE {kept}")).execute(&mut admin).await.unwrap();
    }
}
