//! Order facts and the person totals summed from them.

use crate::sql::{INSERT_CHUNK, LOOKUP_CHUNK, error, millis};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::collections::HashMap;
use tillflow_core::StateError;
use tillflow_core::model::{OrderFact, PersonTotals, sum_facts};
use tillflow_core::stored::OrderFactRow;

pub(crate) async fn record_facts(pool: &SqlitePool, pipeline: &str, facts: &[OrderFact]) -> Result<(), StateError> {
    let mut transaction = pool.begin().await.map_err(error("record facts"))?;
    for rows in facts.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
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
        insert.build().persistent(false).execute(&mut *transaction).await.map_err(error("record facts"))?;
    }
    transaction.commit().await.map_err(error("record facts"))
}

pub(crate) async fn person_totals(
    pool: &SqlitePool,
    pipeline: &str,
    people: &[&str],
) -> Result<HashMap<String, PersonTotals>, StateError> {
    let mut facts: HashMap<String, Vec<OrderFact>> = HashMap::new();
    for chunk in people.chunks(LOOKUP_CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(
            // Without statistics the planner scans the pipeline's whole
            // primary-key range (every fact, for every page); the person
            // index makes this proportional to the page.
            "SELECT order_id, fact_id, person, counted, amount, currency, at FROM order_facts \
             INDEXED BY order_facts_by_person WHERE pipeline = ",
        );
        query.push_bind(pipeline).push(" AND person IN (");
        let mut separated = query.separated(", ");
        for person in chunk {
            separated.push_bind(*person);
        }
        query.push(")");
        for row in query.build().persistent(false).fetch_all(pool).await.map_err(error("person totals"))? {
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
