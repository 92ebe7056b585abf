//! Order facts and the running person totals kept beside them: a page of
//! facts reads the stored facts of its own orders, upserts, and moves each
//! touched person's totals by what changed (`core::running_totals`), in the
//! caller's (fenced) transaction — so an order costs the same whatever its
//! buyer's past.

use crate::sql::{LOOKUP_CHUNK, error, last_of_each, millis};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;
use tillflow_core::StateError;
use tillflow_core::model::{Currency, OrderFact, PersonTotals};
use tillflow_core::running_totals::{self, Rebuild, deltas};
use tillflow_core::stored::{OrderFactRow, PersonTotalsRow, from_millis};

const FACT_COLUMNS: &str = "order_id, fact_id, person, counted, amount, currency, at";

fn fact(row: &PgRow) -> Result<OrderFact, StateError> {
    OrderFact::try_from(OrderFactRow {
        order_id: row.get(0),
        fact_id: row.get(1),
        person: row.get(2),
        counted: row.get(3),
        amount: row.get(4),
        currency: row.get(5),
        at: row.get(6),
    })
}

pub(crate) async fn record_facts(
    connection: &mut PgConnection,
    pipeline: &str,
    facts: &[OrderFact],
) -> Result<HashMap<String, PersonTotals>, StateError> {
    if facts.is_empty() {
        return Ok(HashMap::new());
    }
    let updated = totals_after(connection, pipeline, facts).await?;
    upsert_facts(connection, pipeline, facts).await.map_err(error("record facts"))?;
    write_totals(connection, pipeline, &updated).await.map_err(error("person totals"))?;
    Ok(updated.into_iter().collect())
}

/// What recording `facts` would answer, nothing written.
pub(crate) async fn preview_facts(
    pool: &PgPool,
    pipeline: &str,
    facts: &[OrderFact],
) -> Result<HashMap<String, PersonTotals>, StateError> {
    let mut connection = pool.acquire().await.map_err(error("preview facts"))?;
    Ok(totals_after(&mut connection, pipeline, facts).await?.into_iter().collect())
}

/// The totals of every person `facts` touch once they are recorded, read
/// from the stored facts of their orders and the stored totals before any
/// is written: the same answer for a write and for a preview.
async fn totals_after(
    connection: &mut PgConnection,
    pipeline: &str,
    facts: &[OrderFact],
) -> Result<Vec<(String, PersonTotals)>, StateError> {
    let mut orders: Vec<&str> = facts.iter().map(|fact| fact.order_id.as_str()).collect();
    orders.sort_unstable();
    orders.dedup();
    let mut stored = Vec::new();
    for chunk in orders.chunks(LOOKUP_CHUNK) {
        let rows =
            sqlx::query(&format!("SELECT {FACT_COLUMNS} FROM order_facts WHERE pipeline = $1 AND order_id = ANY($2)"))
                .bind(pipeline)
                .bind(chunk)
                .fetch_all(&mut *connection)
                .await
                .map_err(error("record facts"))?;
        for row in &rows {
            stored.push(fact(row)?);
        }
    }
    let deltas = deltas(&stored, facts);
    let people: Vec<&str> = deltas.keys().copied().collect();
    let mut current = read_totals(connection, pipeline, &people).await?;
    let mut updated = Vec::with_capacity(deltas.len());
    // Worked out at the first reread, once for the page.
    let mut page: Option<running_totals::PageLatest> = None;
    for (person, delta) in deltas {
        let stored = current.remove(person).unwrap_or_else(running_totals::zero);
        let (mut totals, reread) = running_totals::apply(stored, &delta);
        if reread {
            let page = page.get_or_insert_with(|| running_totals::PageLatest::of(facts));
            let others = latest_counted_order(connection, pipeline, person, page.replaced()).await?;
            (totals.last_order_at, totals.currency) = page.latest(person, others);
        }
        updated.push((person.to_owned(), totals));
    }
    Ok(updated)
}

async fn upsert_facts(connection: &mut PgConnection, pipeline: &str, facts: &[OrderFact]) -> Result<(), sqlx::Error> {
    let facts = last_of_each(facts, |fact| (fact.order_id.as_str(), fact.fact_id.as_str()));
    if facts.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO order_facts (pipeline, {FACT_COLUMNS}) \
         SELECT $1, {FACT_COLUMNS} \
         FROM UNNEST($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BOOLEAN[], $6::TEXT[], $7::TEXT[], $8::BIGINT[]) \
           AS row ({FACT_COLUMNS}) \
         ON CONFLICT (pipeline, order_id, fact_id) DO UPDATE SET person = excluded.person, \
         counted = excluded.counted, amount = excluded.amount, currency = excluded.currency, at = excluded.at"
    ))
    .bind(pipeline)
    .bind(facts.iter().map(|fact| fact.order_id.as_str()).collect::<Vec<_>>())
    .bind(facts.iter().map(|fact| fact.fact_id.as_str()).collect::<Vec<_>>())
    .bind(facts.iter().map(|fact| fact.person.as_str()).collect::<Vec<_>>())
    .bind(facts.iter().map(|fact| fact.counted).collect::<Vec<_>>())
    .bind(facts.iter().map(|fact| fact.amount.to_string()).collect::<Vec<_>>())
    .bind(facts.iter().map(|fact| fact.currency.as_str()).collect::<Vec<_>>())
    .bind(facts.iter().map(|fact| millis(fact.at)).collect::<Vec<_>>())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The time and currency of the person's latest counted order among the
/// stored ones of orders not `replaced` (`running_totals::PageLatest`): a
/// step or two down the person index from its newest end.
async fn latest_counted_order(
    connection: &mut PgConnection,
    pipeline: &str,
    person: &str,
    replaced: &[&str],
) -> Result<Option<(jiff::Timestamp, Currency)>, StateError> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT at, currency FROM order_facts WHERE pipeline = $1 AND person = $2 AND fact_id = 'order' AND counted \
         AND NOT (order_id = ANY($3)) ORDER BY at DESC LIMIT 1",
    )
    .bind(pipeline)
    .bind(person)
    .bind(replaced)
    .fetch_optional(&mut *connection)
    .await
    .map_err(error("record facts"))?;
    let Some((at, currency)) = row else { return Ok(None) };
    Ok(Some((from_millis(at), Currency::new(&currency).map_err(StateError::new)?)))
}

async fn read_totals(
    connection: &mut PgConnection,
    pipeline: &str,
    people: &[&str],
) -> Result<HashMap<String, PersonTotals>, StateError> {
    let mut found = HashMap::new();
    for chunk in people.chunks(LOOKUP_CHUNK) {
        let rows = sqlx::query(
            "SELECT person, revenue, orders, last_at, currency FROM person_totals WHERE pipeline = $1 AND person = ANY($2)",
        )
        .bind(pipeline)
        .bind(chunk)
        .fetch_all(&mut *connection)
        .await
        .map_err(error("person totals"))?;
        for row in rows {
            let totals = PersonTotals::try_from(PersonTotalsRow {
                revenue: row.get(1),
                orders: row.get(2),
                last_at: row.get(3),
                currency: row.get(4),
            })?;
            found.insert(row.get(0), totals);
        }
    }
    Ok(found)
}

async fn write_totals(
    connection: &mut PgConnection,
    pipeline: &str,
    totals: &[(impl AsRef<str> + Sync, PersonTotals)],
) -> Result<(), sqlx::Error> {
    if totals.is_empty() {
        return Ok(());
    }
    let rows: Vec<PersonTotalsRow> = totals.iter().map(|(_, totals)| PersonTotalsRow::from(totals)).collect();
    sqlx::query(
        "INSERT INTO person_totals (pipeline, person, revenue, orders, last_at, currency) \
         SELECT $1, person, revenue, orders, last_at, currency \
         FROM UNNEST($2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[]) \
           AS row (person, revenue, orders, last_at, currency) \
         ON CONFLICT (pipeline, person) DO UPDATE SET revenue = excluded.revenue, orders = excluded.orders, \
         last_at = excluded.last_at, currency = excluded.currency",
    )
    .bind(pipeline)
    .bind(totals.iter().map(|(person, _)| person.as_ref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.revenue.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.orders).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.last_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|row| row.currency.as_deref()).collect::<Vec<_>>())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

pub(crate) async fn person_totals(
    pool: &PgPool,
    pipeline: &str,
    people: &[&str],
) -> Result<HashMap<String, PersonTotals>, StateError> {
    let mut connection = pool.acquire().await.map_err(error("person totals"))?;
    read_totals(&mut connection, pipeline, people).await
}

/// Fills `person_totals` from every recorded fact (the migration that adds
/// it), one person at a time in person order, so memory holds one person's
/// facts and the totals, not the history.
pub(crate) async fn rebuild_totals(connection: &mut PgConnection) -> Result<(), StateError> {
    use futures_util::TryStreamExt;
    let mut rebuild = Rebuild::default();
    {
        let sql = format!("SELECT {FACT_COLUMNS}, pipeline FROM order_facts ORDER BY pipeline, person");
        let mut rows = sqlx::query(&sql).fetch(&mut *connection);
        while let Some(row) = rows.try_next().await.map_err(error("build person totals"))? {
            rebuild.push(row.get(7), fact(&row)?);
        }
    }
    for (pipeline, person, totals) in rebuild.finish() {
        write_totals(connection, &pipeline, &[(person.as_str(), totals)])
            .await
            .map_err(error("build person totals"))?;
    }
    Ok(())
}
