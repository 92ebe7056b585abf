//! Order facts and the person totals summed from them.

use crate::sql::{INSERT_CHUNK, LOOKUP_CHUNK, error, last_of_each, millis};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};
use std::collections::HashMap;
use tillflow_core::StateError;
use tillflow_core::model::{OrderFact, PersonTotals, sum_facts};
use tillflow_core::stored::OrderFactRow;

pub(crate) async fn record_facts(
    connection: &mut PgConnection,
    pipeline: &str,
    facts: &[OrderFact],
) -> Result<(), sqlx::Error> {
    let facts = last_of_each(facts, |fact| (fact.order_id.as_str(), fact.fact_id.as_str()));
    for rows in facts.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO order_facts (pipeline, order_id, fact_id, person, counted, amount, currency, at) ",
        );
        insert.push_values(rows, |mut values, fact| {
            values
                .push_bind(pipeline)
                .push_bind(fact.order_id.as_str())
                .push_bind(fact.fact_id.as_str())
                .push_bind(fact.person.as_str())
                .push_bind(fact.counted)
                .push_bind(fact.amount.to_string())
                .push_bind(fact.currency.as_str())
                .push_bind(millis(fact.at));
        });
        insert.push(
            " ON CONFLICT (pipeline, order_id, fact_id) DO UPDATE SET person = excluded.person, \
             counted = excluded.counted, amount = excluded.amount, currency = excluded.currency, at = excluded.at",
        );
        insert.build().persistent(false).execute(&mut *connection).await?;
    }
    Ok(())
}

pub(crate) async fn person_totals(
    pool: &PgPool,
    pipeline: &str,
    people: &[&str],
) -> Result<HashMap<String, PersonTotals>, StateError> {
    let mut facts: HashMap<String, Vec<OrderFact>> = HashMap::new();
    for chunk in people.chunks(LOOKUP_CHUNK) {
        let rows = sqlx::query(
            "SELECT order_id, fact_id, person, counted, amount, currency, at FROM order_facts \
             WHERE pipeline = $1 AND person = ANY($2)",
        )
        .bind(pipeline)
        .bind(chunk)
        .fetch_all(pool)
        .await
        .map_err(error("person totals"))?;
        for row in rows {
            let fact = OrderFact::try_from(OrderFactRow {
                order_id: row.get(0),
                fact_id: row.get(1),
                person: row.get(2),
                counted: row.get(3),
                amount: row.get(4),
                currency: row.get(5),
                at: row.get(6),
            })?;
            facts.entry(fact.person.clone()).or_default().push(fact);
        }
    }
    Ok(facts.into_iter().map(|(person, facts)| (person, sum_facts(&facts))).collect())
}
