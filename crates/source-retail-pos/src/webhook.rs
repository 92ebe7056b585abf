//! Webhooks of both stores, as triggers only. X-Series posts a form whose
//! `payload` field holds the record in the API 1.0 shape, unsigned (no
//! signature is documented): it only names a sale or customer to fetch
//! again. eCom posts JSON signed with `X-Ecwid-Webhook-Signature` =
//! base64(HMAC-SHA256(client secret, "{eventCreated}.{eventId}")), which
//! does not cover the body: a bad signature is refused before anything is
//! stored, and even a good one only names what to fetch. Nothing in a
//! webhook body ever reaches a sink.

use crate::ecom_wire;
use secrecy::SecretString;
use serde_json::Value;
use tillflow_core::model::Text;
use tillflow_core::source::{InboxItem, WebhookRequest, WebhookVerdict};
use tillflow_http::webhook::verify_hmac_sha256_base64;

pub const ECOM_SIGNATURE: &str = "x-ecwid-webhook-signature";

/// What a stored webhook asks the source to fetch again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    PosSale(Text),
    PosCustomer(Text),
    EcomCustomer(Text),
    EcomOrder(Text),
    Nothing,
}

/// The message eCom signs.
pub fn ecom_signed_text(event_created: &str, event_id: &str) -> String {
    format!("{}.{}", event_created.trim(), event_id.trim())
}

/// The `payload` of an X-Series form body, as JSON.
fn pos_payload(body: &[u8]) -> Option<Value> {
    let payload = form_urlencoded::parse(body).find(|(key, _)| key == "payload")?.1;
    serde_json::from_str::<Value>(&payload).ok().filter(Value::is_object)
}

fn is_form(request_content_type: Option<&str>) -> bool {
    request_content_type.is_some_and(|t| t.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// Judges a webhook before anything is stored.
pub fn verify(
    request: &WebhookRequest,
    ecom_store_id: Option<&str>,
    ecom_secret: Option<&SecretString>,
) -> WebhookVerdict {
    if let Some(signature) = request.header(ECOM_SIGNATURE) {
        let Some(secret) = ecom_secret else { return WebhookVerdict::Unauthorized };
        let Ok(body) = serde_json::from_slice::<ecom_wire::Webhook>(&request.body) else {
            return WebhookVerdict::Unauthorized;
        };
        let signed = ecom_signed_text(body.event_created.as_str(), body.event_id.as_str());
        if body.event_id.text().is_none() || !verify_hmac_sha256_base64(secret, signed.as_bytes(), signature) {
            return WebhookVerdict::Unauthorized;
        }
        if ecom_store_id.is_some_and(|store| store.trim() != body.store_id.as_str().trim()) {
            return WebhookVerdict::Rejected(format!("eCom store `{}` is not this source's", body.store_id.as_str()));
        }
        return WebhookVerdict::Accept;
    }
    if is_form(request.header("content-type")) {
        return match pos_payload(&request.body) {
            Some(payload) if payload.get("id").is_some() => WebhookVerdict::Accept,
            Some(_) => WebhookVerdict::Rejected("the X-Series payload names no id".into()),
            None => WebhookVerdict::Rejected("an X-Series webhook carries a JSON `payload` form field".into()),
        };
    }
    if serde_json::from_slice::<ecom_wire::Webhook>(&request.body).is_ok_and(|b| b.event_id.text().is_some()) {
        // An eCom event without its signature.
        return WebhookVerdict::Unauthorized;
    }
    WebhookVerdict::Rejected("neither an X-Series form nor a signed eCom event".into())
}

/// What a stored webhook names (its verdict was given when it arrived).
pub fn trigger(item: &InboxItem) -> Trigger {
    if item.header(ECOM_SIGNATURE).is_some() {
        let Ok(body) = serde_json::from_slice::<ecom_wire::Webhook>(&item.body) else { return Trigger::Nothing };
        let Some(id) = body.entity_id.id() else { return Trigger::Nothing };
        return match body.event_type.as_str() {
            "customer.created" | "customer.updated" => Trigger::EcomCustomer(id),
            "order.created" | "order.updated" => Trigger::EcomOrder(id),
            _ => Trigger::Nothing,
        };
    }
    let Some(payload) = pos_payload(&item.body) else { return Trigger::Nothing };
    let Some(id) = payload.get("id").and_then(|id| id.as_str().map(Text::new).or_else(|| Some(Text::display(id))))
    else {
        return Trigger::Nothing;
    };
    // The 1.0 payload says what it is only by its fields.
    let has = |field: &str| payload.get(field).is_some();
    if has("register_id") || has("register_sale_products") || has("sale_date") {
        Trigger::PosSale(id)
    } else if has("customer_code") || has("contact_first_name") || has("customer_group_id") {
        Trigger::PosCustomer(id)
    } else {
        Trigger::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tillflow_http::webhook::sign_hmac_sha256_base64;

    fn ecom(body: &str, signature: &str) -> WebhookRequest {
        WebhookRequest {
            headers: vec![
                (ECOM_SIGNATURE.into(), signature.into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn an_ecom_event_is_taken_only_with_its_signature() {
        let secret = SecretString::from("client-secret");
        let body =
            r#"{"eventId":"e-1","eventCreated":1234567,"storeId":1003,"entityId":5,"eventType":"customer.updated"}"#;
        let good = sign_hmac_sha256_base64(&secret, ecom_signed_text("1234567", "e-1").as_bytes());
        assert_eq!(verify(&ecom(body, &good), Some("1003"), Some(&secret)), WebhookVerdict::Accept);
        let forged = sign_hmac_sha256_base64(&SecretString::from("guess"), b"1234567.e-1");
        assert_eq!(verify(&ecom(body, &forged), Some("1003"), Some(&secret)), WebhookVerdict::Unauthorized);
        assert_eq!(
            verify(&ecom(body, &good), Some("1003"), None),
            WebhookVerdict::Unauthorized,
            "no secret configured"
        );
        let unsigned = WebhookRequest { headers: vec![], body: body.as_bytes().to_vec() };
        assert_eq!(verify(&unsigned, Some("1003"), Some(&secret)), WebhookVerdict::Unauthorized);
        assert!(matches!(verify(&ecom(body, &good), Some("9"), Some(&secret)), WebhookVerdict::Rejected(_)));
    }

    #[test]
    fn an_x_series_form_names_a_sale_or_a_customer() {
        let item = |payload: &str| InboxItem {
            id: 1,
            source: "store".into(),
            received_at: jiff::Timestamp::now(),
            headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
            body: format!("environment=prod&payload={}", form_escape(payload)).into_bytes(),
        };
        assert_eq!(
            trigger(&item(r#"{"id":"s-1","register_id":"r","sale_date":"2024-01-01 10:00:00"}"#)),
            Trigger::PosSale("s-1".into())
        );
        assert_eq!(trigger(&item(r#"{"id":"c-1","customer_code":"ANN-1"}"#)), Trigger::PosCustomer("c-1".into()));
        assert_eq!(trigger(&item(r#"{"id":"p-1","sku":"X"}"#)), Trigger::Nothing);
        let request = WebhookRequest { headers: item("{}").headers, body: b"payload=not-json".to_vec() };
        assert!(matches!(verify(&request, None, None), WebhookVerdict::Rejected(_)));
    }

    fn form_escape(text: &str) -> String {
        form_urlencoded::byte_serialize(text.as_bytes()).collect()
    }
}
