//! The fuzz targets' bodies: each takes arbitrary bytes to one parser that
//! reads outside input — a platform's page or webhook, a platform's answer,
//! the config file, what the state file holds (`fuzz_live`) — and must come
//! back with a value or an error, never a panic. `fuzz/` (cargo-fuzz, `cargo xtask fuzz`) drives them with
//! libFuzzer; `tests/fuzz_corpus.rs` replays every saved input in `cargo test`
//! so a crash once found stays fixed.

use serde_json::Value;
use tillflow_kit::sink::{ResponseClassifier, Verdict};

/// A target's body: arbitrary bytes in, nothing out but a panic if it fails.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory and fuzz binary carry.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("woocommerce_orders", woocommerce_orders),
    ("woocommerce_customers", woocommerce_customers),
    ("lightspeed_customers", lightspeed_customers),
    ("lightspeed_sales", lightspeed_sales),
    ("dutchie_records", dutchie_records),
    ("retail_pos_sales", retail_pos_sales),
    ("retail_pos_webhook", retail_pos_webhook),
    ("customerio_answer", customerio_answer),
    ("klaviyo_errors", klaviyo_errors),
    ("klaviyo_answer", klaviyo_answer),
    ("egoi_answer", egoi_answer),
    ("stored_checkpoints", crate::fuzz_live::stored_checkpoints),
    ("stored_secrets", crate::fuzz_live::stored_secrets),
    ("woocommerce_webhook", crate::fuzz_live::woocommerce_webhook),
];

/// Runs the target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    let (_, target) = TARGETS.iter().find(|(target, _)| *target == name).expect("a known fuzz target");
    target(data);
}

/// A page of records as a platform sends it: a JSON array (or the records
/// under `key` in an object).
fn records(data: &[u8], key: &str) -> Vec<Value> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Array(records)) => records,
        Ok(Value::Object(mut object)) => match object.remove(key) {
            Some(Value::Array(records)) => records,
            Some(record) => vec![record],
            None => vec![Value::Object(object)],
        },
        _ => Vec::new(),
    }
}

fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = tillflow_runner::config::Config::parse(std::path::Path::new("fuzz.toml"), text, &|name| {
        (name.len() < 8).then(|| format!("value-of-{name}"))
    });
}

fn woocommerce_orders(data: &[u8]) {
    use tillflow_source_woocommerce::{mapping, wire};
    for record in records(data, "orders") {
        // As the source reads an order: from its text, borrowing from it.
        let text = record.to_string();
        if let Ok(order) = serde_json::from_str::<wire::WooOrder>(&text) {
            let _ = mapping::order("shop", &order);
        }
    }
}

fn woocommerce_customers(data: &[u8]) {
    use tillflow_source_woocommerce::{mapping, wire};
    for record in records(data, "customers") {
        let text = record.to_string();
        if let Ok(customer) = serde_json::from_str::<wire::WooCustomer>(&text) {
            let _ = mapping::customer("shop", &customer);
        }
    }
}

fn lightspeed_customers(data: &[u8]) {
    use tillflow_source_lightspeed::{mapping, wire};
    for record in records(data, "Customer") {
        if let Ok(customer) = serde_json::from_value::<wire::Customer>(record) {
            let _ = mapping::customer("till", &customer);
        }
    }
}

fn lightspeed_sales(data: &[u8]) {
    use tillflow_source_lightspeed::{mapping, wire};
    let currency = tillflow_core::model::Currency::new("USD").expect("a currency");
    for record in records(data, "Sale") {
        if let Ok(sale) = serde_json::from_value::<wire::Sale>(record) {
            let _ = mapping::refund_parents(&sale);
            let _ = mapping::sale("till", &sale, &mapping::Lookups::default(), &currency);
        }
    }
}

fn dutchie_records(data: &[u8]) {
    use tillflow_source_dutchie::{mapping, wire};
    let currency = tillflow_core::model::Currency::new("USD").expect("a currency");
    let location = mapping::LocationInfo { id: "1".into(), name: "Downtown".into() };
    let products = std::collections::HashMap::new();
    let types = ["Retail".to_owned()];
    for record in records(data, "data") {
        let record = wire::lowercase_keys(record);
        if let Ok(transaction) = wire::decode::<wire::Transaction>(&record) {
            let context = mapping::TransactionContext {
                source: "dispensary",
                location: &location,
                buyer: None,
                products: &products,
                transaction_types: &types,
                currency: &currency,
            };
            let _ = mapping::transaction(&context, &transaction);
        }
        if let Ok(customer) = wire::decode::<wire::Customer>(&record) {
            let _ = mapping::customer("dispensary", &location, &customer);
        }
        if let Ok(product) = wire::decode::<wire::Product>(&record) {
            let _ = tillflow_source_dutchie::mapping::product_info(&product);
        }
    }
}

fn retail_pos_sales(data: &[u8]) {
    use tillflow_source_retail_pos::{mapping, wire};
    let currency = tillflow_core::model::Currency::new("NZD").expect("a currency");
    let (outlets, products) = (std::collections::HashMap::new(), std::collections::HashMap::new());
    for record in records(data, "data") {
        if let Ok(sale) = serde_json::from_value::<wire::Sale>(record.clone()) {
            let context = mapping::SaleContext {
                source: "store",
                currency: &currency,
                outlets: &outlets,
                products: &products,
                buyer: None,
            };
            let _ = mapping::sale(&context, &sale);
        }
        let _ = serde_json::from_value::<wire::Customer>(record.clone());
        let _ = serde_json::from_value::<tillflow_source_retail_pos::ecom_wire::Customer>(record);
    }
}

/// The first byte picks the content type and the signature: none, a wrong
/// one, or the right HMAC over the body's own `eventCreated.eventId` (so the
/// accepted path is reached too); the rest is the body.
fn retail_pos_webhook(data: &[u8]) {
    use tillflow_source_retail_pos::webhook;
    let first = data.first().copied().unwrap_or(0);
    let body = data.get(1..).unwrap_or_default().to_vec();
    let content_type = if first % 2 == 0 { "application/x-www-form-urlencoded" } else { "application/json" };
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    let secret = tillflow_http::SecretString::from("fuzz-secret");
    match first / 2 % 3 {
        1 => headers.push((webhook::ECOM_SIGNATURE.to_owned(), "bm90IGl0".to_owned())),
        2 => {
            let event: Value = serde_json::from_slice(&body).unwrap_or_default();
            let text = |key: &str| match &event[key] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let signed = webhook::ecom_signed_text(&text("eventCreated"), &text("eventId"));
            let signature = tillflow_http::webhook::sign_hmac_sha256_base64(&secret, signed.as_bytes());
            headers.push((webhook::ECOM_SIGNATURE.to_owned(), signature));
        }
        _ => {}
    }
    let request = tillflow_core::WebhookRequest { headers: headers.clone(), body: body.clone() };
    let _ = webhook::verify(&request, Some("1003"), Some(&secret));
    let item = tillflow_core::source::InboxItem {
        id: 1,
        source: "store".into(),
        received_at: jiff::Timestamp::UNIX_EPOCH,
        headers,
        body,
    };
    let _ = webhook::trigger(&item);
}

/// The first byte picks the status and how many events the batch held.
fn answer(data: &[u8]) -> (tillflow_http::Answer, usize) {
    let statuses = [200, 207, 400, 401, 404, 409, 413, 422, 429, 500, 503];
    let first = data.first().copied().unwrap_or(0) as usize;
    let answer = tillflow_http::Answer {
        status: statuses[first % statuses.len()],
        headers: Default::default(),
        body: bytes::Bytes::copy_from_slice(data.get(1..).unwrap_or_default()),
    };
    (answer, first / statuses.len() % 8 + 1)
}

/// Classifies a fuzzed answer to a batch of `count` placed-order events on
/// `route`: whatever the body, a per-item verdict covers every event.
fn classify<R>(classifier: &impl ResponseClassifier<R>, route: R, data: &[u8]) {
    let (answer, count) = answer(data);
    let at = jiff::Timestamp::from_second(1_700_000_000).expect("a time");
    let context = tillflow_core::events::DeriveContext { pipeline_started_at: jiff::Timestamp::UNIX_EPOCH };
    let events: Vec<tillflow_core::Event> = (1..=count as u64)
        .flat_map(|n| {
            let order = tillflow_testkit::fake_source::sample_order("shop", n, 3, at);
            tillflow_core::events::derive_events(tillflow_core::model::Record::Order(order), &context)
        })
        .collect();
    let items: Vec<&tillflow_core::Event> = events.iter().collect();
    if let Verdict::Items(verdicts) = classifier.classify(route, &answer, &items) {
        assert_eq!(verdicts.len(), items.len(), "a verdict per event");
    }
}

fn customerio_answer(data: &[u8]) {
    use tillflow_sink_customerio::{request::TrackRoute, response::TrackAnswers};
    classify(&TrackAnswers, TrackRoute::Batch, data);
}

/// The second byte picks the route.
fn route_byte(data: &[u8]) -> u8 {
    data.get(1).copied().unwrap_or(0)
}

fn klaviyo_answer(data: &[u8]) {
    use tillflow_sink_klaviyo::{request::KlaviyoRoute as Route, response::KlaviyoAnswers};
    let routes = [
        Route::CatalogCreate,
        Route::CatalogUpdate,
        Route::ProfileImport,
        Route::Event,
        Route::ProfileBulk,
        Route::EventBulk,
        Route::Subscribe,
        Route::Unsubscribe,
        Route::GroupLists,
    ];
    let route = routes.into_iter().nth(route_byte(data) as usize % 9).expect("a route");
    classify(&KlaviyoAnswers, route, data);
}

fn egoi_answer(data: &[u8]) {
    use tillflow_sink_egoi::{request::EgoiRoute as Route, response::EgoiAnswers};
    let route = match route_byte(data) % 7 {
        0 => Route::ContactCreate,
        1 => Route::ContactPatch("c1".into()),
        2 => Route::ContactImport,
        3 => Route::Order,
        4 => Route::OrderImport,
        5 => Route::Consent,
        _ => Route::GroupTags,
    };
    classify(&EgoiAnswers, route, data);
}

fn klaviyo_errors(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = tillflow_sink_klaviyo::response::readable_errors(text);
}
