//! Request building: contacts go one by one live (create; a conflict
//! becomes a PATCH of the contact E-goi names) and in bulk imports for
//! history; orders go one by one to the per-domain endpoint live and in
//! bulk imports for history, each carrying its buyer so the service can
//! make sure E-goi knows them first.

use crate::config::{EgoiConfig, HistoryEndpoint};
use crate::fields::ListShape;
use crate::mapping;
use crate::spec::{MAX_BODY_BYTES, MAX_CONTACTS_PER_IMPORT, MIN_CONTACTS_PER_IMPORT};
use serde_json::json;
use std::sync::Arc;
use tillflow_core::{Event, EventKind, Subject};
use tillflow_kit::sink::{Envelope, Packing, RequestBuilder, RouteError};
use tokio::sync::OnceCell;

/// E-goi's request families.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EgoiRoute {
    /// `POST /lists/{list_id}/contacts`.
    ContactCreate,
    /// `PATCH /lists/{list_id}/contacts/{contact_id}`.
    ContactPatch(String),
    /// `POST /lists/{list_id}/contacts/actions/import-bulk`, mode `update`.
    ContactImport,
    /// `POST /{domain}/orders`.
    Order,
    /// `POST /lists/{list_id}/orders`, each order with its buyer.
    OrderImport,
    /// The contact (found by email, else created), then
    /// `…/contacts/actions/unsubscribe` or `…/actions/activate`.
    Consent,
    /// The contact, then `…/actions/attach-tag` for their group's tag and
    /// `…/actions/detach-tag` for the other group tags.
    GroupTags,
}

pub struct EgoiRequests {
    pub config: Arc<EgoiConfig>,
    /// Read by the service before the first delivery.
    pub shape: Arc<OnceCell<ListShape>>,
}

impl EgoiRequests {
    fn shape(&self) -> Result<&ListShape, String> {
        self.shape.get().ok_or_else(|| "the E-goi list's fields were not read yet".to_owned())
    }

    fn contact_of(&self, event: &Event) -> Result<serde_json::Value, String> {
        let customer = match &event.subject {
            Subject::Customer { customer } => Some(customer.as_ref()),
            _ => None,
        };
        Ok(mapping::contact(event.person(), customer, self.shape()?))
    }

    fn order_facts(&self, event: &Event) -> Result<mapping::OrderFacts, String> {
        let order = event.order().ok_or("an order state without its order")?;
        mapping::facts(order, &self.config)
    }
}

fn body(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialize")
}

impl RequestBuilder for EgoiRequests {
    type Route = EgoiRoute;

    fn accepts(&self, kind: EventKind) -> bool {
        match kind {
            EventKind::ConsentChanged => self.config.marketing_consent == tillflow_kit::config::MarketingConsent::Sync,
            EventKind::GroupChanged => !self.config.group_tags.is_empty(),
            _ => true,
        }
    }

    fn route(&self, event: &Event, history: bool) -> Result<EgoiRoute, RouteError> {
        match event.kind {
            EventKind::ConsentChanged => Ok(EgoiRoute::Consent),
            EventKind::GroupChanged => Ok(EgoiRoute::GroupTags),
            EventKind::ProfileUpdated => Ok(if history { EgoiRoute::ContactImport } else { EgoiRoute::ContactCreate }),
            EventKind::OrderState => {
                let facts = self.order_facts(event).map_err(RouteError::Skip)?;
                // The bulk import takes only a revenue above zero; a fully
                // refunded order (net) goes alone.
                let bulk = history
                    && self.config.history_endpoint == HistoryEndpoint::Bulk
                    && facts.revenue > rust_decimal::Decimal::ZERO;
                Ok(if bulk { EgoiRoute::OrderImport } else { EgoiRoute::Order })
            }
            other => Err(RouteError::Reject(format!("E-goi does not take {} events", other.as_str()))),
        }
    }

    fn encode(&self, event: &Event, route: EgoiRoute, _history: bool) -> Result<Vec<u8>, String> {
        match route {
            EgoiRoute::ContactCreate | EgoiRoute::ContactPatch(_) | EgoiRoute::ContactImport => {
                Ok(body(&self.contact_of(event)?))
            }
            // Read by the service: the contact (to create it if E-goi has
            // none yet) and what to apply.
            EgoiRoute::Consent | EgoiRoute::GroupTags => {
                let Subject::Customer { customer } = &event.subject else { return Err("not a customer".into()) };
                Ok(body(&json!({
                    "contact": self.contact_of(event)?,
                    "email": customer.person.email,
                    "accepts": customer.accepts_marketing,
                    "group": customer.group,
                })))
            }
            EgoiRoute::Order => {
                let facts = self.order_facts(event)?;
                let order = event.order().expect("checked by order_facts");
                let contact = mapping::contact(&order.person, None, self.shape()?);
                Ok(body(&mapping::live_order(&facts, order, contact)))
            }
            EgoiRoute::OrderImport => {
                let facts = self.order_facts(event)?;
                let order = event.order().expect("checked by order_facts");
                let buyer = json!({ "base": mapping::contact_base(&order.person) });
                Ok(body(&json!({"buyer": buyer, "order": mapping::bulk_order(&facts, order, &self.config)})))
            }
        }
    }

    fn packing(&self, route: EgoiRoute) -> Packing {
        let single = Packing::single(Envelope::new(Vec::new(), Vec::new()), MAX_BODY_BYTES, "E-goi's 20 MB");
        match route {
            EgoiRoute::ContactCreate
            | EgoiRoute::ContactPatch(_)
            | EgoiRoute::Order
            | EgoiRoute::Consent
            | EgoiRoute::GroupTags => single,
            EgoiRoute::ContactImport => {
                let compare = self.shape.get().map_or("email", |shape| shape.email_field.as_str());
                let open = format!(
                    "{{\"mode\":\"update\",\"compare_field\":{},\"force_empty\":false,\"contacts\":[",
                    json!(compare)
                );
                Packing {
                    min_items: MIN_CONTACTS_PER_IMPORT,
                    max_items: MAX_CONTACTS_PER_IMPORT,
                    envelope: Envelope::new(open, "]}"),
                    ..single
                }
            }
            EgoiRoute::OrderImport => Packing {
                min_items: 1,
                max_items: self.config.history_batch,
                distinct_keys: true,
                envelope: Envelope::new("[", "]"),
                ..single
            },
        }
    }

    /// A bulk import of one contact is refused: it goes through create.
    fn isolate(&self, route: EgoiRoute) -> Option<EgoiRoute> {
        (route == EgoiRoute::ContactImport).then_some(EgoiRoute::ContactCreate)
    }

    fn fingerprint(&self, event: &Event) -> Option<String> {
        (event.kind == EventKind::OrderState)
            .then(|| self.order_facts(event).ok())
            .flatten()
            .map(|facts| mapping::fingerprint(&facts))
    }

    /// A contact whose email is taken: a PATCH of the contact E-goi names.
    fn on_conflict(
        &self,
        route: EgoiRoute,
        event: &Event,
        _history: bool,
        detail: &str,
    ) -> Option<(EgoiRoute, Vec<u8>)> {
        if route != EgoiRoute::ContactCreate || detail.is_empty() {
            return None;
        }
        let contact = self.contact_of(event).ok()?;
        Some((EgoiRoute::ContactPatch(detail.to_owned()), body(&contact)))
    }
}
