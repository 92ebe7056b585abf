//! Order facts and the running person totals kept beside them: a page of
//! facts reads the stored facts of its own orders, upserts, and moves each
//! touched person's totals by what changed (`core::running_totals`), in one
//! transaction — so an order costs the same whatever its buyer's past.

use crate::insert_chunks::{ChunkStatements, INSERT_CHUNK, owned_chunks};
use crate::sql::{error, json_list, millis, pipeline_upsert};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::collections::HashMap;
use tillflow_core::StateError;
use tillflow_core::model::{OrderFact, PersonTotals};
use tillflow_core::running_totals::{self, Rebuild, deltas};
use tillflow_core::stored::{OrderFactRow, PersonTotalsRow};
use tillflow_core::subject::email_subject;

const FACT_COLUMNS: &str = "order_id, fact_id, person, counted, amount, currency, at";

fn fact(row: &SqliteRow) -> Result<OrderFact, StateError> {
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

/// Records a page's facts inside the group writer's transaction (see the
/// module's opening).
pub(crate) async fn record_facts(
    connection: &mut SqliteConnection,
    pipeline: &str,
    facts: Vec<OrderFact>,
) -> Result<HashMap<String, PersonTotals>, StateError> {
    let updated = totals_after(connection, pipeline, &facts).await?;
    upsert_facts(connection, pipeline, facts).await?;
    write_totals(connection, pipeline, &updated).await?;
    Ok(updated.into_iter().collect())
}

/// What recording `facts` would answer, nothing written.
pub(crate) async fn preview_facts(
    pool: &SqlitePool,
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
    connection: &mut SqliteConnection,
    pipeline: &str,
    facts: &[OrderFact],
) -> Result<Vec<(String, PersonTotals)>, StateError> {
    let stored = stored_facts_of_orders(connection, pipeline, facts).await?;
    let deltas = deltas(&stored, facts);
    let people: Vec<&str> = deltas.keys().copied().collect();
    let mut current = read_totals(connection, pipeline, &people).await?;
    let mut updated = Vec::with_capacity(deltas.len());
    // Worked out at the first reread, once for the page: the replaced
    // orders as the JSON list the query takes.
    let mut page: Option<(running_totals::PageLatest, String)> = None;
    for (person, delta) in deltas {
        let stored = current.remove(person).unwrap_or_else(running_totals::zero);
        let (mut totals, reread) = running_totals::apply(stored, &delta);
        if reread {
            let (page, replaced) = page.get_or_insert_with(|| {
                let page = running_totals::PageLatest::of(facts);
                let replaced = json_list(page.replaced().iter().copied());
                (page, replaced)
            });
            let others = latest_counted_order(connection, pipeline, person, replaced).await?;
            (totals.last_order_at, totals.currency) = page.latest(person, others);
        }
        updated.push((person.to_owned(), totals));
    }
    Ok(updated)
}

/// Every stored fact of the orders `facts` name.
async fn stored_facts_of_orders(
    connection: &mut SqliteConnection,
    pipeline: &str,
    facts: &[OrderFact],
) -> Result<Vec<OrderFact>, StateError> {
    let mut orders: Vec<&str> = facts.iter().map(|fact| fact.order_id.as_str()).collect();
    orders.sort_unstable();
    orders.dedup();
    let sql = format!(
        "SELECT {FACT_COLUMNS} FROM json_each(?) AS asked \
         CROSS JOIN order_facts ON order_facts.order_id = asked.value AND order_facts.pipeline = ?"
    );
    let rows = sqlx::query(&sql)
        .bind(json_list(orders.into_iter()))
        .bind(pipeline)
        .fetch_all(&mut *connection)
        .await
        .map_err(error("record facts"))?;
    let stored = rows.iter().map(fact).collect::<Result<Vec<_>, _>>()?;
    Ok(stored)
}

/// Writes `facts`, their texts handed over owned: sqlx copies a text bound
/// by reference for its worker thread, three allocations a fact.
async fn upsert_facts(
    connection: &mut SqliteConnection,
    pipeline: &str,
    facts: Vec<OrderFact>,
) -> Result<(), StateError> {
    for rows in owned_chunks(facts) {
        let chunk = FACTS_UPSERT.chunk(rows.len());
        let mut insert = chunk.query().bind(pipeline);
        for fact in rows {
            insert = insert
                .bind(fact.order_id)
                .bind(fact.fact_id)
                .bind(fact.person)
                .bind(fact.counted)
                .bind(fact.amount.to_string())
                .bind(fact.currency.as_str().to_owned())
                .bind(millis(fact.at));
        }
        chunk.pad(insert).execute(&mut *connection).await.map_err(error("record facts"))?;
    }
    Ok(())
}

static FACTS_UPSERT: ChunkStatements = ChunkStatements::new(facts_upsert);
static TOTALS_UPSERT: ChunkStatements = ChunkStatements::new(totals_upsert);

/// The upsert of `rows` order facts (`FACT_COLUMNS` a row).
fn facts_upsert(rows: usize) -> String {
    let columns: Vec<&str> = FACT_COLUMNS.split(", ").collect();
    pipeline_upsert("order_facts", &columns, &["order_id", "fact_id"], rows)
}

/// The upsert of `rows` people's totals.
fn totals_upsert(rows: usize) -> String {
    pipeline_upsert("person_totals", &["person", "revenue", "orders", "last_at", "currency"], &["person"], rows)
}

/// The time and currency of the person's latest counted order among the
/// stored ones of orders not in `replaced` (a JSON list: see
/// `running_totals::PageLatest`): a step or two down the person index from
/// its newest end.
async fn latest_counted_order(
    connection: &mut SqliteConnection,
    pipeline: &str,
    person: &str,
    replaced: &str,
) -> Result<Option<(jiff::Timestamp, tillflow_core::model::Currency)>, StateError> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT at, currency FROM order_facts INDEXED BY order_facts_by_person \
         WHERE pipeline = ? AND person = ? AND fact_id = 'order' AND counted \
         AND order_id NOT IN (SELECT value FROM json_each(?)) ORDER BY at DESC LIMIT 1",
    )
    .bind(pipeline)
    .bind(person)
    .bind(replaced)
    .fetch_optional(&mut *connection)
    .await
    .map_err(error("record facts"))?;
    let Some((at, currency)) = row else { return Ok(None) };
    let totals = PersonTotalsRow { revenue: "0".into(), orders: 0, last_at: Some(at), currency: Some(currency) };
    let totals = PersonTotals::try_from(totals)?;
    Ok(totals.last_order_at.zip(totals.currency))
}

async fn read_totals(
    connection: &mut SqliteConnection,
    pipeline: &str,
    people: &[&str],
) -> Result<HashMap<String, PersonTotals>, StateError> {
    let mut found = HashMap::with_capacity(people.len());
    if people.is_empty() {
        return Ok(found);
    }
    let rows = sqlx::query(
        "SELECT person, revenue, orders, last_at, currency FROM json_each(?) AS asked \
         CROSS JOIN person_totals ON person_totals.person = asked.value AND person_totals.pipeline = ?",
    )
    .bind(json_list(people.iter().copied()))
    .bind(pipeline)
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
    Ok(found)
}

async fn write_totals(
    connection: &mut SqliteConnection,
    pipeline: &str,
    totals: &[(impl AsRef<str> + Sync, PersonTotals)],
) -> Result<(), StateError> {
    for rows in totals.chunks(INSERT_CHUNK) {
        let chunk = TOTALS_UPSERT.chunk(rows.len());
        let mut insert = chunk.query().bind(pipeline);
        for (person, totals) in rows {
            let row = PersonTotalsRow::from(totals);
            insert =
                insert.bind(person.as_ref()).bind(row.revenue).bind(row.orders).bind(row.last_at).bind(row.currency);
        }
        chunk.pad(insert).execute(&mut *connection).await.map_err(error("person totals"))?;
    }
    Ok(())
}

pub(crate) async fn person_totals(
    pool: &SqlitePool,
    pipeline: &str,
    people: &[&str],
) -> Result<HashMap<String, PersonTotals>, StateError> {
    let mut connection = pool.acquire().await.map_err(error("person totals"))?;
    read_totals(&mut connection, pipeline, people).await
}

/// Fills `person_totals` from every recorded fact (the migration that adds
/// it), one person at a time in person order, so memory holds one person's
/// facts and the totals, not the history.
pub(crate) async fn rebuild_totals(connection: &mut SqliteConnection) -> Result<(), StateError> {
    use futures_util::TryStreamExt;
    let mut rebuild = Rebuild::default();
    {
        let sql = format!(
            "SELECT {FACT_COLUMNS}, pipeline FROM order_facts INDEXED BY order_facts_by_person ORDER BY pipeline, person"
        );
        let mut rows = sqlx::query(&sql).fetch(&mut *connection);
        while let Some(row) = rows.try_next().await.map_err(error("build person totals"))? {
            rebuild.push(row.get(7), fact(&row)?);
        }
    }
    for (pipeline, person, totals) in rebuild.finish() {
        write_totals(connection, &pipeline, &[(person.as_str(), totals)]).await?;
    }
    Ok(())
}

/// Hashes every guest key the migration to schema 11 collected into
/// `guest_key_hashes` (`plain` is `email:<address>`, as `Person::key` made
/// it before), a batch at a time in key order, so memory holds a batch.
pub(crate) async fn hash_guest_keys(connection: &mut SqliteConnection) -> Result<(), StateError> {
    let mut after = String::new();
    loop {
        let plain: Vec<String> =
            sqlx::query_scalar("SELECT plain FROM guest_key_hashes WHERE plain > ? ORDER BY plain LIMIT 512")
                .bind(&after)
                .fetch_all(&mut *connection)
                .await
                .map_err(error("hash guest keys"))?;
        let Some(last) = plain.last() else { return Ok(()) };
        after = last.clone();
        for key in &plain {
            let address = key.strip_prefix("email:").unwrap_or(key);
            sqlx::query("UPDATE guest_key_hashes SET hashed = ? WHERE plain = ?")
                .bind(email_subject(address))
                .bind(key)
                .execute(&mut *connection)
                .await
                .map_err(error("hash guest keys"))?;
        }
    }
}
