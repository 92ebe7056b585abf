//! Reading state rows back, the same for every store: a row's columns, as
//! any SQL store keeps them (times in UNIX milliseconds, JSON as text), turned
//! into the domain's values — and anything that does not read as one
//! reported as a damaged state, never guessed at.

use crate::error::StateError;
use crate::events::EventKind;
use crate::keys::IdempotencyKey;
use crate::model::{Currency, OrderFact, PersonTotals};
use crate::source::InboxItem;
use crate::state::{DeadLetter, DeadLetterStage, EventCount, LedgerEntry, Outcome};
use jiff::Timestamp;
use rust_decimal::Decimal;

/// A time kept as UNIX milliseconds.
pub fn from_millis(value: i64) -> Timestamp {
    Timestamp::from_millisecond(value).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// JSON kept as text; `what` names it in the error.
pub fn json(text: &str, what: &str) -> Result<serde_json::Value, StateError> {
    serde_json::from_str(text).map_err(|e| StateError::new(format!("corrupt {what} in state: {e}")))
}

fn outcome(outcome: &str, reason: &str) -> Result<Outcome, StateError> {
    Outcome::from_stored(outcome, reason)
        .ok_or_else(|| StateError::new(format!("unknown outcome `{outcome}` in the ledger")))
}

/// A ledger row: key, content hash, outcome, skip reason.
pub fn ledger_entry(
    key: String,
    content_hash: String,
    outcome_name: &str,
    reason: &str,
) -> Result<(IdempotencyKey, LedgerEntry), StateError> {
    let outcome = outcome(outcome_name, reason)?;
    Ok((IdempotencyKey::from_stored(key), LedgerEntry { content_hash, outcome }))
}

/// One group of the ledger counted by kind, outcome and reason.
pub fn event_count(kind: &str, outcome_name: &str, reason: &str, count: i64) -> Result<EventCount, StateError> {
    Ok(EventCount {
        kind: EventKind::parse(kind).ok_or_else(|| StateError::new(format!("unknown event kind `{kind}`")))?,
        outcome: outcome(outcome_name, reason)?,
        count: count.max(0).unsigned_abs(),
    })
}

/// Counts in the order `status` shows them: by kind, outcome, reason (the
/// order of the enums and the reason's code points, whatever a database's
/// collation would say).
pub fn sort_counts(counts: &mut [EventCount]) {
    counts.sort_by(|a, b| {
        (a.kind, a.outcome.kind(), a.outcome.reason()).cmp(&(b.kind, b.outcome.kind(), b.outcome.reason()))
    });
}

/// The columns of a dead-letter row.
pub struct DeadLetterRow {
    pub id: i64,
    pub pipeline: String,
    pub key: Option<String>,
    pub stage: String,
    pub reason: String,
    pub payload: String,
    pub created_at: i64,
}

impl TryFrom<DeadLetterRow> for DeadLetter {
    type Error = StateError;

    fn try_from(row: DeadLetterRow) -> Result<Self, StateError> {
        Ok(DeadLetter {
            id: row.id,
            pipeline: row.pipeline,
            key: row.key.map(IdempotencyKey::from_stored),
            stage: DeadLetterStage::parse(&row.stage)
                .ok_or_else(|| StateError::new(format!("unknown dead-letter stage `{}`", row.stage)))?,
            reason: row.reason,
            payload: json(&row.payload, "dead letter")?,
            created_at: from_millis(row.created_at),
        })
    }
}

/// A webhook row: its headers kept as a JSON list of pairs.
pub fn inbox_item(
    id: i64,
    source: String,
    received_at: i64,
    headers: &str,
    body: Vec<u8>,
) -> Result<InboxItem, StateError> {
    Ok(InboxItem {
        id,
        source,
        received_at: from_millis(received_at),
        headers: serde_json::from_str(headers).map_err(|e| StateError::new(format!("corrupt webhook headers: {e}")))?,
        body,
    })
}

/// The columns of an order-fact row.
pub struct OrderFactRow {
    pub order_id: String,
    pub fact_id: String,
    pub person: String,
    pub counted: bool,
    pub amount: String,
    pub currency: String,
    pub at: i64,
}

impl TryFrom<OrderFactRow> for OrderFact {
    type Error = StateError;

    fn try_from(row: OrderFactRow) -> Result<Self, StateError> {
        Ok(OrderFact {
            amount: row.amount.parse::<Decimal>().map_err(|e| StateError::new(format!("corrupt amount: {e}")))?,
            currency: Currency::new(&row.currency).map_err(StateError::new)?,
            order_id: row.order_id,
            fact_id: row.fact_id,
            person: row.person,
            counted: row.counted,
            at: from_millis(row.at),
        })
    }
}

/// A person's running totals as stored: revenue as decimal text, the
/// latest counted order's time (UNIX milliseconds) and currency.
pub struct PersonTotalsRow {
    pub revenue: String,
    pub orders: i64,
    pub last_at: Option<i64>,
    pub currency: Option<String>,
}

impl TryFrom<PersonTotalsRow> for PersonTotals {
    type Error = StateError;

    fn try_from(row: PersonTotalsRow) -> Result<Self, StateError> {
        Ok(PersonTotals {
            revenue: row.revenue.parse::<Decimal>().map_err(|e| StateError::new(format!("corrupt revenue: {e}")))?,
            currency: row.currency.as_deref().map(Currency::new).transpose().map_err(StateError::new)?,
            orders: u64::try_from(row.orders)
                .map_err(|_| StateError::new(format!("corrupt order count {}", row.orders)))?,
            last_order_at: row.last_at.map(from_millis),
        })
    }
}

impl From<&PersonTotals> for PersonTotalsRow {
    fn from(totals: &PersonTotals) -> Self {
        PersonTotalsRow {
            revenue: totals.revenue.to_string(),
            orders: i64::try_from(totals.orders).unwrap_or(i64::MAX),
            last_at: totals.last_order_at.map(|at| at.as_millisecond()),
            currency: totals.currency.as_ref().map(|c| c.as_str().to_owned()),
        }
    }
}
