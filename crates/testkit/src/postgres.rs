//! A database of its own for each Postgres test, on the server that
//! `TILLFLOW_TEST_POSTGRES_URL` names (`.ci/run` sets it when a server
//! answers on 127.0.0.1:5432).

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
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create a database");
    admin.close().await.ok();
    with_database(server, &name)
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
