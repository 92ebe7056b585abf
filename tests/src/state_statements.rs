//! Where the state store's time goes, statement by statement: sqlx logs
//! every statement it runs with the time it took on the connection's thread
//! (`sqlx::query` at debug, one JSON line each with `--log-format json`),
//! and summed by kind of statement and table they say which writes bound
//! the CPU an order costs. Commits are not statements sqlx logs: their
//! page writes and fsyncs are the rest of the worker's time.

use serde_json::Value;

/// The tables of the state schema, matched as whole words of a statement.
const TABLES: &[&str] = &[
    "ledger",
    "order_facts",
    "orders_read",
    "person_totals",
    "checkpoints",
    "pipelines",
    "forgotten",
    "inbox_done",
    "inbox_watermarks",
    "inbox",
    "dead_letters",
    "source_state",
    "secrets",
];

/// One kind of statement: how many ran, the rows they wrote or returned,
/// and the seconds they took together.
#[derive(Clone, Debug, PartialEq)]
pub struct StatementCost {
    pub label: String,
    pub statements: u64,
    pub rows: u64,
    pub seconds: f64,
}

impl StatementCost {
    /// Microseconds an order, over an import of `orders` orders.
    pub fn us_per_order(&self, orders: u64) -> f64 {
        self.seconds * 1e6 / orders as f64
    }
}

/// The kinds of statement worth showing beside an import of `orders`
/// orders, with their µs an order: what rounds to nothing (the schema's
/// creation, reads of one row) is left out.
pub fn worth_showing(costs: &[StatementCost], orders: u64) -> impl Iterator<Item = (&StatementCost, f64)> {
    costs.iter().map(move |cost| (cost, cost.us_per_order(orders))).filter(|(_, per_order)| *per_order >= 0.05)
}

/// A statement's kind: its verb and the first state table it names
/// (`INSERT ledger`, `SELECT forgotten`), or its verb alone.
pub fn label(statement: &str) -> String {
    let mut words = statement.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty());
    let verb = words.next().unwrap_or("?").to_ascii_uppercase();
    match words.find(|word| TABLES.contains(word)) {
        Some(table) => format!("{verb} {table}"),
        None => verb,
    }
}

/// The statements of a JSON log, summed by kind, the costliest first; lines
/// that are not sqlx's statement lines are passed over.
pub fn summarize(log: &str) -> Vec<StatementCost> {
    let mut costs: Vec<StatementCost> = Vec::new();
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
        if entry["target"] != "sqlx::query" {
            continue;
        }
        let (Some(statement), Some(seconds)) = (entry["db.statement"].as_str(), entry["elapsed_secs"].as_f64()) else {
            continue;
        };
        let rows = entry["rows_affected"].as_u64().unwrap_or(0) + entry["rows_returned"].as_u64().unwrap_or(0);
        let label = label(statement);
        match costs.iter_mut().find(|cost| cost.label == label) {
            Some(cost) => {
                cost.statements += 1;
                cost.rows += rows;
                cost.seconds += seconds;
            }
            None => costs.push(StatementCost { label, statements: 1, rows, seconds }),
        }
    }
    costs.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    costs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_known_by_its_verb_and_first_state_table() {
        assert_eq!(
            label("\nINSERT INTO ledger (pipeline, key) SELECT given.pipeline FROM (VALUES (?, ?)) AS batch"),
            "INSERT ledger"
        );
        assert_eq!(label("SELECT ledger.key, ledger.content_hash FROM json_each(?) AS asked"), "SELECT ledger");
        assert_eq!(label("SELECT subject FROM json_each(?) AS asked CROSS JOIN forgotten ON 1"), "SELECT forgotten");
        assert_eq!(label("DELETE FROM inbox_done WHERE inbox_id IN (SELECT id FROM inbox)"), "DELETE inbox_done");
        assert_eq!(label("PRAGMA user_version"), "PRAGMA");
    }

    #[test]
    fn statements_are_summed_by_kind_and_other_lines_passed_over() {
        let log = [
            r#"{"target":"sqlx::query","db.statement":"INSERT INTO ledger VALUES (?)","rows_affected":400,"rows_returned":0,"elapsed_secs":0.004}"#,
            r#"{"target":"tillflow","message":"bench: 20000 records read"}"#,
            r#"{"target":"sqlx::query","db.statement":"SELECT order_id FROM json_each(?) CROSS JOIN order_facts","rows_affected":0,"rows_returned":7,"elapsed_secs":0.001}"#,
            "not json",
            r#"{"target":"sqlx::query","db.statement":"INSERT INTO ledger VALUES (?)","rows_affected":100,"rows_returned":0,"elapsed_secs":0.002}"#,
        ]
        .join("\n");
        let costs = summarize(&log);
        assert_eq!(costs.len(), 2);
        assert_eq!((costs[0].label.as_str(), costs[0].statements, costs[0].rows), ("INSERT ledger", 2, 500));
        assert!((costs[0].seconds - 0.006).abs() < 1e-9);
        assert_eq!((costs[1].label.as_str(), costs[1].statements, costs[1].rows), ("SELECT order_facts", 1, 7));
    }
}
