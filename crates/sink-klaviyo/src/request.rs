//! Request building for Klaviyo (JSON:API): profiles and events with the
//! metric properties Klaviyo's own POS integrations use. Live events and
//! profiles go one request each; history goes through bulk jobs (profiles
//! in profile import jobs, events in event bulk create jobs, `backfill` so
//! no flow fires), and a refused event job is sent again event by event.

use crate::catalog;
use crate::spec::{MAX_CATALOG_ITEMS_PER_JOB, MAX_EVENTS_PER_JOB, MAX_PAYLOAD_BYTES, MAX_PROFILES_PER_JOB, SPEC};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use tillflow_core::model::{Customer, Money, Order, Person};
use tillflow_core::{Event, EventKind, Subject};
use tillflow_kit::sink::{Envelope, Packing, RequestBuilder, RouteError};

/// Klaviyo's request families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KlaviyoRoute {
    /// `POST /api/catalog-item-bulk-create-jobs`: new catalog items, polled.
    CatalogCreate,
    /// `POST /api/catalog-item-bulk-update-jobs`: changed catalog items, polled.
    CatalogUpdate,
    /// `POST /api/profile-import`: one live profile upsert.
    ProfileImport,
    /// `POST /api/events`: one event.
    Event,
    /// `POST /api/profile-bulk-import-jobs`: history profiles, polled to the end.
    ProfileBulk,
    /// `POST /api/event-bulk-create-jobs`: history events.
    EventBulk,
    /// `POST /api/profile-subscription-bulk-create-jobs`: an opt-in, with
    /// `marketing_consent = "sync"`.
    Subscribe,
    /// `POST /api/profile-subscription-bulk-delete-jobs`: an opt-out
    /// (no list: Klaviyo unsubscribes the profile from email marketing).
    Unsubscribe,
    /// The profile's id by `POST /api/profile-import`, then its group's
    /// list joined and the other group lists left (`group_lists`).
    GroupLists,
}

pub use tillflow_core::model::json_number as number;

fn money(value: &Money) -> Value {
    number(value.amount)
}

/// `+` followed by 8–15 digits once spaces, dashes, dots and brackets are
/// removed; anything else is not sent (Klaviyo rejects the whole profile).
pub fn e164(phone: &str) -> Option<String> {
    let compact: String = phone.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    let digits = compact.strip_prefix('+')?;
    let valid =
        (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
    valid.then_some(compact)
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        map.insert(key.to_owned(), json!(value));
    }
}

/// Profile attributes: email, phone (E.164 only), external id, names,
/// organization, title, location.
pub fn profile_attributes(person: &Person) -> Map<String, Value> {
    let mut attributes = Map::new();
    put(&mut attributes, "email", person.email.as_deref());
    if let Some(phone) = person.phone.as_deref().and_then(e164) {
        attributes.insert("phone_number".into(), json!(phone));
    }
    put(&mut attributes, "external_id", person.customer_id.as_deref());
    put(&mut attributes, "first_name", person.first_name.as_deref());
    put(&mut attributes, "last_name", person.last_name.as_deref());
    put(&mut attributes, "organization", person.company.as_deref());
    put(&mut attributes, "title", person.title.as_deref());
    let mut location = Map::new();
    put(&mut location, "address1", person.address.line1.as_deref());
    put(&mut location, "city", person.address.city.as_deref());
    put(&mut location, "region", person.address.region.as_deref());
    put(&mut location, "zip", person.address.postcode.as_deref());
    put(&mut location, "country", person.address.country.as_deref());
    if !location.is_empty() {
        attributes.insert("location".into(), Value::Object(location));
    }
    attributes
}

/// A customer's profile: its attributes and, as custom properties, what
/// the source's own Klaviyo integration shows of it (Dutchie's
/// `Dutchie customerId`…).
pub fn profile_resource(customer: &Customer) -> Value {
    let mut attributes = profile_attributes(&customer.person);
    if !customer.properties.is_empty() {
        attributes.insert("properties".into(), json!(customer.properties));
    }
    json!({"type": "profile", "attributes": attributes})
}

/// The identifying part of a profile inside an event.
fn event_profile(person: &Person) -> Value {
    let mut attributes = Map::new();
    put(&mut attributes, "email", person.email.as_deref());
    put(&mut attributes, "external_id", person.customer_id.as_deref());
    json!({"data": {"type": "profile", "attributes": attributes}})
}

fn order_summary(order: &Order, properties: &mut Map<String, Value>) {
    let codes = order.discount_codes();
    // The order's discount total when the platform gives one, else the sum of
    // its discounts.
    let discounts = if order.totals.discount.amount.is_zero() {
        order.discounts.iter().map(|d| d.amount.amount).sum::<Decimal>()
    } else {
        order.totals.discount.amount
    };
    properties.insert("OrderId".into(), json!(order.identity.id));
    properties.insert("Categories".into(), json!(order.categories()));
    properties.insert("Discount Codes".into(), json!(codes));
    properties.insert("Email Domain".into(), json!(order.person.email_domain()));
    properties.insert("Is Discounted".into(), json!(!discounts.is_zero() || !codes.is_empty()));
    properties.insert("Items".into(), json!(order.lines.iter().map(|l| l.name.clone()).collect::<Vec<_>>()));
    properties.insert("Item Count".into(), number(order.item_count()));
    properties.insert("Total Discounts".into(), number(discounts));
}

/// What an event carries besides its metric name: properties, value, currency.
pub struct MetricPayload {
    pub properties: Map<String, Value>,
    pub value: Option<Value>,
    pub currency: Option<String>,
}

/// The metric properties of one event, its value and currency.
pub fn event_properties(event: &Event) -> Result<MetricPayload, String> {
    let mut properties = Map::new();
    let (value, currency) = match (&event.subject, event.kind) {
        // The source carries its own integration's properties: they are
        // the event's, by the names that integration uses.
        (Subject::Order { order }, EventKind::Placed) if !order.properties.is_empty() => {
            properties.extend(order.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
            (Some(money(&order.totals.total)), Some(order.currency().to_string()))
        }
        (Subject::OrderLine { order, line }, EventKind::OrderedProduct)
            if order.lines.get(*line).is_some_and(|line| !line.properties.is_empty()) =>
        {
            let line = &order.lines[*line];
            properties.extend(line.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
            (Some(money(&line.total)), Some(line.total.currency.to_string()))
        }
        (Subject::Order { order }, EventKind::Placed) => {
            order_summary(order, &mut properties);
            properties.insert("Shop".into(), json!(order.location.as_ref().and_then(|l| l.name.clone())));
            properties.insert("ShopID".into(), json!(order.location.as_ref().map(|l| l.id.clone())));
            (Some(money(&order.totals.total)), Some(order.currency().to_string()))
        }
        (Subject::OrderLine { order, line }, EventKind::OrderedProduct) => {
            let line = order.lines.get(*line).ok_or("order line out of range")?;
            properties.insert("OrderId".into(), json!(order.identity.id));
            properties.insert("Category".into(), json!(line.categories.first()));
            properties.insert("Email Domain".into(), json!(order.person.email_domain()));
            properties.insert("Name".into(), json!(line.name));
            properties.insert("Product ID".into(), json!(line.product_id));
            properties.insert("Quantity".into(), number(line.quantity));
            (Some(money(&line.total)), Some(line.total.currency.to_string()))
        }
        (Subject::Refund { refund }, EventKind::Refunded) => {
            let mut categories: Vec<&str> = Vec::new();
            for category in refund.lines.iter().flat_map(|l| l.categories.iter()) {
                if !categories.contains(&category.as_str()) {
                    categories.push(category);
                }
            }
            properties.insert("OrderId".into(), json!(refund.order_id));
            properties.insert("Categories".into(), json!(categories));
            properties.insert("Discount Codes".into(), json!(Vec::<String>::new()));
            properties.insert("Email Domain".into(), json!(refund.person.email_domain()));
            properties.insert("Is Discounted".into(), json!(false));
            properties
                .insert("Items".into(), json!(refund.lines.iter().filter_map(|l| l.name.clone()).collect::<Vec<_>>()));
            properties.insert("Item Count".into(), number(refund.lines.iter().map(|l| l.quantity).sum()));
            properties.insert("Total Discounts".into(), json!(0));
            (Some(money(&refund.amount)), Some(refund.amount.currency.to_string()))
        }
        (Subject::Shipment { shipment }, EventKind::Shipped) => {
            properties.insert("OrderId".into(), json!(shipment.order_id));
            properties.insert("Items".into(), json!(shipment.items));
            properties.insert("Collections".into(), json!(shipment.categories));
            properties.insert("Discount Codes".into(), json!(shipment.discount_codes));
            properties
                .insert("Total Discounts".into(), shipment.total_discounts.as_ref().map(money).unwrap_or(json!(0)));
            properties.insert("shipped".into(), json!(true));
            (None, None)
        }
        (_, kind) => return Err(format!("{} events are not sent to Klaviyo", kind.as_str())),
    };
    Ok(MetricPayload { properties, value, currency })
}

/// An event's attributes; `with_profile` for `/api/events` (a bulk entry
/// names the profile beside its events).
fn event_attributes(event: &Event, history: bool, with_profile: bool) -> Result<Map<String, Value>, String> {
    let name = SPEC
        .name(event.kind)
        .filter(|_| event.kind != EventKind::ProfileUpdated)
        .ok_or_else(|| format!("{} events are not sent to Klaviyo", event.kind.as_str()))?;
    let MetricPayload { properties, value, currency } = event_properties(event)?;
    let mut attributes = Map::new();
    attributes.insert("properties".into(), Value::Object(properties));
    attributes.insert("time".into(), json!(event.occurred_at.to_string()));
    if let Some(value) = value {
        attributes.insert("value".into(), value);
    }
    if let Some(currency) = currency {
        attributes.insert("value_currency".into(), json!(currency));
    }
    attributes.insert("unique_id".into(), json!(event.key.as_str()));
    if history {
        // Recorded, but no flow fires for a purchase from last year.
        attributes.insert("backfill".into(), json!(true));
    }
    attributes.insert("metric".into(), json!({"data": {"type": "metric", "attributes": {"name": name}}}));
    if with_profile {
        attributes.insert("profile".into(), event_profile(event.person()));
    }
    Ok(attributes)
}

fn is_profile(event: &Event) -> bool {
    matches!(event.subject, Subject::Customer { .. }) && event.kind == EventKind::ProfileUpdated
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialize")
}

/// Events → Klaviyo requests; `list_id` is where new profiles go;
/// `catalog_url` (the template) is set when the catalog is synced.
#[derive(Debug, Default)]
pub struct KlaviyoRequests {
    pub list_id: Option<String>,
    pub catalog_url: Option<String>,
    /// Preferences become consent (`marketing_consent = "sync"`).
    pub sync_consent: bool,
    /// Groups are kept as list membership (`group_lists` is not empty).
    pub group_lists: bool,
}

/// A consent change as a one-profile subscription job. The first import's
/// opt-ins are historical (no double opt-in mail, no "added to list" flow),
/// consented when the preference was stated.
fn consent_job(customer: &Customer, at: jiff::Timestamp, history: bool, list: Option<&str>) -> Value {
    let email = customer.person.email.clone().unwrap_or_default();
    if customer.accepts_marketing == Some(false) {
        return json!({"type": "profile-subscription-bulk-delete-job", "attributes": {"profiles": {"data": [
            {"type": "profile", "attributes": {"email": email, "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}}}
        ]}}});
    }
    let mut marketing = json!({"consent": "SUBSCRIBED"});
    if history {
        marketing["consented_at"] = json!(at.to_string());
    }
    let mut job = json!({"type": "profile-subscription-bulk-create-job", "attributes": {
        "custom_source": "tillflow",
        "historical_import": history,
        "profiles": {"data": [{"type": "profile", "attributes": {"email": email, "subscriptions": {"email": {"marketing": marketing}}}}]},
    }});
    if let Some(list) = list {
        job["relationships"] = json!({"list": {"data": {"type": "list", "id": list}}});
    }
    job
}

impl KlaviyoRequests {
    fn catalog_item(&self, event: &Event, update: bool) -> Result<Vec<u8>, String> {
        let (Subject::Product { product }, Some(template)) = (&event.subject, &self.catalog_url) else {
            return Err("not a catalog item".into());
        };
        let item =
            if update { catalog::update_item(product, template) } else { catalog::create_item(product, template) };
        Ok(bytes(&item))
    }
}

impl RequestBuilder for KlaviyoRequests {
    type Route = KlaviyoRoute;

    fn accepts(&self, kind: EventKind) -> bool {
        match kind {
            EventKind::CatalogItem => self.catalog_url.is_some(),
            EventKind::ConsentChanged => self.sync_consent,
            EventKind::GroupChanged => self.group_lists,
            _ => true,
        }
    }

    fn route(&self, event: &Event, history: bool) -> Result<KlaviyoRoute, RouteError> {
        if !SPEC.accepts(event.kind) || !self.accepts(event.kind) {
            return Err(RouteError::Reject(format!("{} events are not sent to Klaviyo", event.kind.as_str())));
        }
        if event.kind == EventKind::CatalogItem {
            // Created once; a changed product updates the item Klaviyo has.
            return Ok(if event.update { KlaviyoRoute::CatalogUpdate } else { KlaviyoRoute::CatalogCreate });
        }
        if let Subject::Customer { customer } = &event.subject {
            match event.kind {
                EventKind::ConsentChanged => {
                    return Ok(match customer.accepts_marketing {
                        Some(false) => KlaviyoRoute::Unsubscribe,
                        _ => KlaviyoRoute::Subscribe,
                    });
                }
                EventKind::GroupChanged => return Ok(KlaviyoRoute::GroupLists),
                _ => {}
            }
        }
        if let Subject::OrderLine { order, line } = &event.subject
            && order.lines.get(*line).is_some_and(|line| line.coupon)
        {
            return Err(RouteError::Skip("coupon line".into()));
        }
        Ok(match (is_profile(event), history) {
            (true, false) => KlaviyoRoute::ProfileImport,
            (true, true) => KlaviyoRoute::ProfileBulk,
            (false, false) => KlaviyoRoute::Event,
            (false, true) => KlaviyoRoute::EventBulk,
        })
    }

    fn encode(&self, event: &Event, route: KlaviyoRoute, history: bool) -> Result<Vec<u8>, String> {
        match (route, &event.subject) {
            (KlaviyoRoute::CatalogCreate, _) => self.catalog_item(event, false),
            (KlaviyoRoute::CatalogUpdate, _) => self.catalog_item(event, true),
            (KlaviyoRoute::ProfileImport | KlaviyoRoute::ProfileBulk, Subject::Customer { customer }) => {
                Ok(bytes(&profile_resource(customer)))
            }
            (KlaviyoRoute::ProfileImport | KlaviyoRoute::ProfileBulk, _) => Err("not a profile".into()),
            (KlaviyoRoute::Subscribe | KlaviyoRoute::Unsubscribe, Subject::Customer { customer }) => {
                Ok(bytes(&consent_job(customer, event.occurred_at, history, self.list_id.as_deref())))
            }
            // Read by the service, which makes the calls.
            (KlaviyoRoute::GroupLists, Subject::Customer { customer }) => {
                Ok(bytes(&json!({"email": customer.person.email, "group": customer.group})))
            }
            (KlaviyoRoute::Subscribe | KlaviyoRoute::Unsubscribe | KlaviyoRoute::GroupLists, _) => {
                Err("not a customer".into())
            }
            (KlaviyoRoute::Event, _) => {
                Ok(bytes(&json!({"type": "event", "attributes": event_attributes(event, history, true)?})))
            }
            // One entry per event: a bulk job may name one profile in several entries.
            (KlaviyoRoute::EventBulk, _) => Ok(bytes(&json!({
                "type": "event-bulk-create",
                "attributes": {
                    "profile": event_profile(event.person()),
                    "events": {"data": [{"type": "event", "attributes": event_attributes(event, history, false)?}]},
                },
            }))),
        }
    }

    fn packing(&self, route: KlaviyoRoute) -> Packing {
        let single =
            || Packing::single(Envelope::new(&b"{\"data\":"[..], &b"}"[..]), MAX_PAYLOAD_BYTES, "Klaviyo's 5 MB");
        let catalog_job = |kind: &str| {
            let (open, close) = catalog::job_envelope(kind);
            Packing {
                min_items: 1,
                max_items: MAX_CATALOG_ITEMS_PER_JOB,
                max_bytes: MAX_PAYLOAD_BYTES,
                max_item_bytes: MAX_PAYLOAD_BYTES,
                item_limit_name: "Klaviyo's 5 MB",
                distinct_keys: true,
                envelope: Envelope::new(open, close),
            }
        };
        match route {
            KlaviyoRoute::CatalogCreate => catalog_job("catalog-item-bulk-create-job"),
            KlaviyoRoute::CatalogUpdate => catalog_job("catalog-item-bulk-update-job"),
            KlaviyoRoute::ProfileImport | KlaviyoRoute::Event | KlaviyoRoute::Subscribe | KlaviyoRoute::Unsubscribe => {
                single()
            }
            KlaviyoRoute::GroupLists => Packing::single(Envelope::new(&b""[..], &b""[..]), MAX_PAYLOAD_BYTES, "Klaviyo's 5 MB"),
            KlaviyoRoute::ProfileBulk => {
                let mut close = b"]}}".to_vec();
                if let Some(list) = &self.list_id {
                    close.extend_from_slice(b",\"relationships\":");
                    close.extend_from_slice(&bytes(&json!({"lists": {"data": [{"type": "list", "id": list}]}})));
                }
                close.extend_from_slice(b"}}");
                Packing {
                    min_items: 1,
                    max_items: MAX_PROFILES_PER_JOB,
                    max_bytes: MAX_PAYLOAD_BYTES,
                    max_item_bytes: MAX_PAYLOAD_BYTES,
                    item_limit_name: "Klaviyo's 5 MB",
                    distinct_keys: false,
                    envelope: Envelope::new(
                        &b"{\"data\":{\"type\":\"profile-bulk-import-job\",\"attributes\":{\"profiles\":{\"data\":["[..],
                        close,
                    ),
                }
            }
            KlaviyoRoute::EventBulk => Packing {
                min_items: 1,
                max_items: MAX_EVENTS_PER_JOB,
                max_bytes: MAX_PAYLOAD_BYTES,
                max_item_bytes: MAX_PAYLOAD_BYTES,
                item_limit_name: "Klaviyo's 5 MB",
                // A unique_id repeated in a job fails the whole job.
                distinct_keys: true,
                envelope: Envelope::new(
                    &b"{\"data\":{\"type\":\"event-bulk-create-job\",\"attributes\":{\"events-bulk-create\":{\"data\":["[..],
                    &b"]}}}}"[..],
                ),
            },
        }
    }

    /// One bad event fails a whole bulk job: its events go again one by one.
    fn isolate(&self, route: KlaviyoRoute) -> Option<KlaviyoRoute> {
        (route == KlaviyoRoute::EventBulk).then_some(KlaviyoRoute::Event)
    }

    /// A catalog item Klaviyo already has (made by another tool, or before
    /// this state store): updated instead, in a job of its own.
    fn on_conflict(
        &self,
        route: KlaviyoRoute,
        event: &Event,
        _history: bool,
        _detail: &str,
    ) -> Option<(KlaviyoRoute, Vec<u8>)> {
        if route != KlaviyoRoute::CatalogCreate {
            return None;
        }
        let item = self.catalog_item(event, true).ok()?;
        let (mut body, close) = catalog::job_envelope("catalog-item-bulk-update-job");
        body.extend_from_slice(&item);
        body.extend_from_slice(&close);
        Some((KlaviyoRoute::CatalogUpdate, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_e164_numbers_are_sent() {
        assert_eq!(e164("+1 500-555-0006").as_deref(), Some("+15005550006"));
        assert_eq!(e164("+351 21 000 0000").as_deref(), Some("+351210000000"));
        assert_eq!(e164("(555) 555-5555"), None);
        assert_eq!(e164("+0123456789"), None);
        assert_eq!(e164("+12"), None);
    }
}
