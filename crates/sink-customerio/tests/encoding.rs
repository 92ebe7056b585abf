//! The bytes of every kind of batch operation, pinned: the encoder writes
//! JSON straight from the events, and what it writes must stay what
//! Customer.io was sent before (keys in order, numbers as they were).

use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::sync::Arc;
use tillflow_core::events::{DeriveContext, derive_events};
use tillflow_core::model::{
    Currency, Customer, Discount, Location, Money, OrderStatus, Person, PersonTotals, Record, Refund, Shipment,
    SourceIdentity,
};
use tillflow_core::{Event, EventKind, IdempotencyKey, Subject};
use tillflow_kit::sink::RequestBuilder;
use tillflow_sink_customerio::request::{TrackRequests, TrackRoute};
use tillflow_testkit::fake_source::{epoch, sample_customer, sample_order};

const GOLDEN: &str = "tests/fixtures/operations.json";

fn usd(cents: i64) -> Money {
    Money::new(Decimal::new(cents, 2), Currency::new("USD").unwrap())
}

fn identity(id: &str) -> SourceIdentity {
    SourceIdentity { platform: "woocommerce".into(), source: "shop".into(), id: id.into() }
}

fn derived(record: Record) -> Vec<Event> {
    // Everything is history here, and every kind is derived.
    let context = DeriveContext { pipeline_started_at: jiff::Timestamp::now() };
    derive_events(record, &context)
}

fn totals_event(person: Person, key: &str) -> Event {
    let totals =
        PersonTotals { revenue: Decimal::new(123_4500, 4), currency: None, orders: 3, last_order_at: Some(epoch()) };
    Event {
        key: IdempotencyKey::from_stored(key.into()),
        kind: EventKind::ProfileUpdated,
        occurred_at: epoch(),
        subject: Subject::PersonTotals { person: Arc::new(person), totals },
        content_hash: "h".into(),
        history: true,
        requires: None,
        update: false,
    }
}

/// One event of every shape the encoder writes, and some it refuses.
fn events() -> Vec<Event> {
    let mut events = Vec::new();
    let mut order = sample_order("shop", 7, 3, epoch());
    order.status = OrderStatus::Completed;
    order.register_id = Some("R \"2\"".into());
    order.location = Some(Location { id: "loc-1".into(), name: Some("Front".into()) });
    order.discounts = vec![Discount { code: Some("SPRING".into()), name: None, amount: usd(150) }];
    order.lines[0].unit_price = usd(1999);
    order.lines[0].quantity = Decimal::new(15, 1);
    order.lines[0].sku = None;
    events.extend(derived(Record::Order(order)));

    let mut guest = sample_order("shop", 8, 3, epoch());
    Arc::make_mut(&mut guest.person).customer_id = None;
    guest.number = None;
    guest.payment_method = None;
    events.extend(derived(Record::Order(guest)));

    let mut nobody = sample_order("shop", 9, 3, epoch());
    nobody.person = Person::default().into();
    events.extend(derived(Record::Order(nobody)));

    events.extend(derived(Record::Refund(Refund {
        identity: identity("r-1"),
        order_id: "7".into(),
        person: sample_order("shop", 7, 3, epoch()).person,
        amount: usd(-550),
        reason: None,
        lines: Vec::new(),
        created_at: epoch(),
    })));
    events.extend(derived(Record::Shipment(Shipment {
        identity: identity("s-1"),
        order_id: "7".into(),
        person: (*sample_order("shop", 7, 3, epoch()).person).clone(),
        items: vec!["Product 1".into(), "Ünïcode ✓".into()],
        categories: Vec::new(),
        discount_codes: Vec::new(),
        total_discounts: None,
        carrier: Some("DHL".into()),
        tracking_number: None,
        shipped_at: epoch(),
    })));

    let mut customer: Customer = sample_customer("shop", 4, epoch());
    customer.person.phone = Some("+351 21 000 0000".into());
    customer.person.address.city = Some("Lisbon".into());
    customer.person.last_name = Some(String::new().into());
    customer.accepts_marketing = Some(false);
    customer.consent_changed_at = Some(epoch());
    customer.properties.insert("loyalty_points".into(), json!(120));
    customer.properties.insert("aa_first".into(), json!({"nested": [1, "two", null]}));
    customer.properties.insert("email".into(), json!("override@example.com"));
    events.extend(derived(Record::Customer(customer)));

    // Texts that need escapes (a backslash, controls), in every place a
    // text is written: a name, a line's name, an id, a property's key.
    let mut escaped = sample_order("shop", 10, 3, epoch());
    let buyer = Arc::make_mut(&mut escaped.person);
    buyer.first_name = Some("Tab\there, back\\slash, \u{1}".into());
    buyer.customer_id = Some("id\"10".into());
    escaped.lines[0].name = "Line \"one\"\n".into();
    escaped.lines[0].product_id = None;
    escaped.payment_method = Some("card\r(POS)".into());
    events.extend(derived(Record::Order(escaped)));
    let mut strange: Customer = sample_customer("shop", 5, epoch());
    strange.person.last_name = Some("O\u{7}Brien".into());
    strange.properties.insert("key \"quoted\"\t".into(), json!("value\\"));
    events.extend(derived(Record::Customer(strange)));

    let registered = (*sample_order("shop", 7, 3, epoch()).person).clone();
    events.push(totals_event(registered, "woocommerce:shop:person:2:totals"));
    let guest_person =
        Person { email: Some("guest@example.com".into()), first_name: Some("Ann".into()), ..Person::default() };
    events.push(totals_event(guest_person, "woocommerce:shop:person:email%3Aguest@example.com:totals"));
    events
}

/// Each event's operation (its identify timestamp, the clock's now, set to 0)
/// or the reason it was refused.
fn encoded() -> Vec<Value> {
    let requests = TrackRequests::new(true);
    events()
        .iter()
        .map(|event| match requests.encode(event, TrackRoute::Batch, true) {
            Ok(bytes) => {
                let mut operation: Value = serde_json::from_slice(&bytes).expect("an operation is JSON");
                assert_eq!(
                    bytes,
                    serde_json::to_vec(&operation).unwrap(),
                    "{}: keys in order, numbers and strings written as serde_json writes them",
                    event.key
                );
                if operation["action"] == "identify" {
                    assert!(operation["timestamp"].as_i64().unwrap() >= jiff::Timestamp::now().as_second() - 60);
                    operation["timestamp"] = json!(0);
                }
                json!({"key": event.key.as_str(), "kind": event.kind.as_str(), "operation": operation})
            }
            Err(reason) => json!({"key": event.key.as_str(), "kind": event.kind.as_str(), "refused": reason}),
        })
        .collect()
}

#[test]
fn every_operation_is_written_as_before() {
    let actual = encoded();
    if std::env::var_os("TILLFLOW_WRITE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
    }
    let expected: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(GOLDEN).unwrap()).unwrap();
    assert_eq!(actual.len(), expected.len());
    for (actual, expected) in actual.iter().zip(&expected) {
        assert_eq!(actual, expected);
    }
    let kinds: std::collections::BTreeSet<&str> = expected.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.len() >= 7, "every kind is covered: {kinds:?}");
}
