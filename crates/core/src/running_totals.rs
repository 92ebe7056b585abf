//! Person totals kept current a page at a time, so an order costs the same
//! whatever its buyer's past: a store keeps each person's running totals
//! beside the order facts, and a page of facts changes them by what changed
//! — the old contribution of each touched order taken out, the new one put
//! in — read from the stored facts of those orders alone. The result always
//! equals [`sum_facts`](crate::model::sum_facts) over every fact, which the
//! state suite checks.

use crate::keys::SeededHash;
use crate::model::{Currency, OrderFact, PersonTotals, sum_facts};
use jiff::Timestamp;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};

/// What one order (its order fact and its refunds) adds to its buyer's
/// totals: nothing unless the order counts; its refunds count against it
/// when they are the same person's (as `sum_facts` has it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contribution<'a> {
    pub person: &'a str,
    pub revenue: Decimal,
    /// As stored: to the millisecond, so an order read again unchanged
    /// changes nothing, and the totals answered are the totals kept.
    pub at: Timestamp,
    pub currency: Currency,
}

/// The contribution of one order, from all of its facts.
pub fn contribution<'a>(facts: impl IntoIterator<Item = &'a OrderFact> + Clone) -> Option<Contribution<'a>> {
    let order = facts.clone().into_iter().find(|fact| fact.fact_id == "order" && fact.counted)?;
    let refunded: Decimal = facts
        .into_iter()
        .filter(|fact| fact.fact_id != "order" && fact.person == order.person)
        .map(|fact| fact.amount)
        .sum();
    Some(Contribution {
        person: &order.person,
        revenue: order.amount - refunded,
        at: to_the_millisecond(order.at),
        currency: order.currency,
    })
}

/// How a page of facts changes one person's totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub revenue: Decimal,
    pub orders: i64,
    /// The newest counted order the page adds.
    pub newest: Option<(Timestamp, Currency)>,
    /// The newest counted order the page takes away: when it is not older
    /// than the stored latest, the latest must be read again.
    pub newest_removed: Option<Timestamp>,
}

/// The deltas that upserting `page` makes, per person, given `stored`: every
/// stored fact of the orders `page` touches. Every person a page fact names
/// gets an entry, so each has a totals row even before an order counts.
/// Facts are looked at where they lie, never copied: this runs for every
/// order read, and copying each fact's four strings (and the order id twice
/// more as map keys) was six allocations an order.
pub fn deltas<'a>(stored: &'a [OrderFact], page: &'a [OrderFact]) -> BTreeMap<&'a str, Delta> {
    let mut orders: HashMap<&str, BTreeMap<&str, &OrderFact>, SeededHash> =
        HashMap::with_capacity_and_hasher(page.len(), SeededHash::default());
    for fact in stored {
        orders.entry(&fact.order_id).or_default().insert(&fact.fact_id, fact);
    }
    let before: HashMap<&str, Option<Contribution>, SeededHash> =
        orders.iter().map(|(order, facts)| (*order, contribution(facts.values().copied()))).collect();
    let mut deltas: BTreeMap<&str, Delta> = BTreeMap::new();
    for fact in page {
        deltas.entry(&fact.person).or_default();
        orders.entry(&fact.order_id).or_default().insert(&fact.fact_id, fact);
    }
    let touched: Vec<&str> = {
        let mut ids: Vec<&str> = page.iter().map(|fact| fact.order_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    for order in touched {
        let old = before.get(order).cloned().flatten();
        let new = contribution(orders[order].values().copied());
        if old == new {
            continue;
        }
        if let Some(old) = old {
            let delta = deltas.entry(old.person).or_default();
            delta.revenue -= old.revenue;
            delta.orders -= 1;
            delta.newest_removed = delta.newest_removed.max(Some(old.at));
        }
        if let Some(new) = new {
            let delta = deltas.entry(new.person).or_default();
            delta.revenue += new.revenue;
            delta.orders += 1;
            if delta.newest.as_ref().is_none_or(|(at, _)| new.at > *at) {
                delta.newest = Some((new.at, new.currency));
            }
        }
    }
    deltas
}

/// A time as the stores keep it (UNIX milliseconds).
fn to_the_millisecond(at: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(at.as_millisecond()).unwrap_or(at)
}

/// `stored` (a person's running totals, zero when they had none) changed by
/// `delta`; `true` when the latest counted order must be read again (the
/// page took away an order at least as new as the latest one).
pub fn apply(stored: PersonTotals, delta: &Delta) -> (PersonTotals, bool) {
    let mut totals = stored;
    // Only a change is added: rust_decimal answers `0.00 + 0` with `0`, and
    // a revenue whose scale changed would read as a changed profile and be
    // sent again.
    if !delta.revenue.is_zero() {
        totals.revenue += delta.revenue;
    }
    totals.orders = (totals.orders as i64 + delta.orders).max(0) as u64;
    let reread = match (delta.newest_removed, totals.last_order_at) {
        (Some(removed), Some(latest)) => removed >= latest,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if let Some((at, currency)) = &delta.newest
        && totals.last_order_at.is_none_or(|latest| *at > latest)
    {
        totals.last_order_at = Some(*at);
        totals.currency = Some(*currency);
    }
    (totals, reread)
}

/// What recording a page does to its people's latest counted orders,
/// worked out once for the page. A store asks it about every person whose
/// latest counted order the page takes away (`apply`'s reread), and a page
/// of cancellations may do that for each of its people: each answer is then
/// a lookup, where a pass over the page for each person made the page's
/// work grow with the square of its size.
pub struct PageLatest<'a> {
    replaced: Vec<&'a str>,
    /// Each person's latest counted order among the page's own order facts
    /// (the last of each order, as an upsert keeps it).
    latest: HashMap<&'a str, (Timestamp, Currency), SeededHash>,
}

impl<'a> PageLatest<'a> {
    pub fn of(page: &'a [OrderFact]) -> Self {
        let mut last_of_each: HashMap<&str, &OrderFact, SeededHash> =
            HashMap::with_capacity_and_hasher(page.len(), SeededHash::default());
        for fact in page.iter().filter(|fact| fact.fact_id == "order") {
            last_of_each.insert(&fact.order_id, fact);
        }
        let mut replaced: Vec<&str> = last_of_each.keys().copied().collect();
        replaced.sort_unstable();
        let mut latest: HashMap<&str, (Timestamp, Currency), SeededHash> = HashMap::default();
        for fact in last_of_each.into_values().filter(|fact| fact.counted) {
            let at = to_the_millisecond(fact.at);
            let newest = latest.entry(&fact.person).or_insert((at, fact.currency));
            if at > newest.0 {
                *newest = (at, fact.currency);
            }
        }
        Self { replaced, latest }
    }

    /// The orders whose order fact the page carries: upserting the page
    /// replaces their stored order facts, so a person's latest counted order
    /// once the page is recorded is looked for among the other stored ones.
    pub fn replaced(&self) -> &[&'a str] {
        &self.replaced
    }

    /// The time and currency of `person`'s latest counted order once the
    /// page is recorded, from `stored`: the latest counted order among the
    /// stored order facts of orders not [`replaced`](Self::replaced). The
    /// page's own order facts take the others' place. So the totals are
    /// known before anything is written, and a page can be recorded with
    /// the commit that follows its delivery.
    pub fn latest(&self, person: &str, stored: Option<(Timestamp, Currency)>) -> (Option<Timestamp>, Option<Currency>) {
        let latest = match (stored, self.latest.get(person).copied()) {
            (Some(stored), Some(page)) if page.0 > stored.0 => Some(page),
            (Some(stored), _) => Some(stored),
            (None, page) => page,
        };
        latest.map_or((None, None), |(at, currency)| (Some(at), Some(currency)))
    }
}

/// Totals of someone with no counted order yet.
pub fn zero() -> PersonTotals {
    PersonTotals { revenue: Decimal::ZERO, currency: None, orders: 0, last_order_at: None }
}

/// Running totals built from every fact of a store, read in (pipeline,
/// person) order: what the migration that adds them fills them with.
/// Memory holds one person's facts and the totals, not the history.
#[derive(Default)]
pub struct Rebuild {
    group: Vec<OrderFact>,
    pipeline: String,
    built: Vec<(String, String, PersonTotals)>,
}

impl Rebuild {
    pub fn push(&mut self, pipeline: String, fact: OrderFact) {
        if pipeline != self.pipeline || self.group.first().is_some_and(|first| first.person != fact.person) {
            self.close_group();
            self.pipeline = pipeline;
        }
        self.group.push(fact);
    }

    fn close_group(&mut self) {
        if let Some(first) = self.group.first() {
            self.built.push((self.pipeline.clone(), first.person.clone(), sum_facts(&self.group)));
        }
        self.group.clear();
    }

    /// (pipeline, person, totals) of everyone pushed.
    pub fn finish(mut self) -> Vec<(String, String, PersonTotals)> {
        self.close_group();
        self.built
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(order: &str, fact_id: &str, person: &str, counted: bool, cents: i64, second: i64) -> OrderFact {
        OrderFact {
            order_id: order.into(),
            fact_id: fact_id.into(),
            person: person.into(),
            counted,
            amount: Decimal::new(cents, 2),
            currency: Currency::new(if second % 2 == 0 { "EUR" } else { "USD" }).unwrap(),
            at: Timestamp::from_second(second).unwrap(),
        }
    }

    /// Plays `pages` through `deltas` and `apply` the way a store does
    /// (re-reading the latest from all facts when asked) and compares each
    /// step with `sum_facts` over everything recorded.
    fn replay(pages: &[Vec<OrderFact>]) {
        let mut all: BTreeMap<(String, String), OrderFact> = BTreeMap::new();
        let mut running: BTreeMap<String, PersonTotals> = BTreeMap::new();
        for page in pages {
            let stored: Vec<OrderFact> = all
                .values()
                .filter(|stored| page.iter().any(|fact| fact.order_id == stored.order_id))
                .cloned()
                .collect();
            let deltas = deltas(&stored, page);
            // Worked out before the page is written, as a store does (a
            // preview writes nothing at all).
            let page_latest = PageLatest::of(page);
            let mut updated = Vec::new();
            for (person, delta) in deltas {
                let (mut totals, reread) = apply(running.remove(person).unwrap_or_else(zero), &delta);
                if reread {
                    let others = all
                        .values()
                        .filter(|f| f.person == person && f.fact_id == "order" && f.counted)
                        .filter(|f| !page_latest.replaced().contains(&f.order_id.as_str()))
                        .max_by_key(|f| f.at)
                        .map(|f| (f.at, f.currency));
                    (totals.last_order_at, totals.currency) = page_latest.latest(person, others);
                }
                updated.push((person.to_owned(), totals));
            }
            running.extend(updated);
            for fact in page {
                all.insert((fact.order_id.clone(), fact.fact_id.clone()), fact.clone());
            }
            for (person, totals) in &running {
                let expected = sum_facts(all.values().filter(|f| &f.person == person));
                assert_eq!(totals, &expected, "{person} after {page:?}");
            }
        }
    }

    #[test]
    fn running_totals_equal_the_sum_of_every_fact_through_every_kind_of_change() {
        replay(&[
            vec![fact("1", "order", "a", true, 1000, 10), fact("2", "order", "a", true, 500, 21)],
            // A refund of a counted order, and one that arrives before its order.
            vec![fact("1", "refund:1", "a", false, 200, 30), fact("3", "refund:9", "a", false, 100, 31)],
            vec![fact("3", "order", "a", true, 700, 5)],
            // The latest order cancelled: the latest is read again.
            vec![fact("2", "order", "a", false, 500, 21)],
            // An order moves to another person; its refund stays with the first.
            vec![fact("1", "order", "b", true, 1000, 10)],
            // A total corrected, the same fact twice in a page (the last wins).
            vec![fact("3", "order", "a", true, 800, 5), fact("3", "order", "a", true, 900, 5)],
            // Every counted order gone.
            vec![fact("3", "order", "a", false, 900, 5), fact("1", "order", "b", false, 1000, 10)],
        ]);
    }
}
