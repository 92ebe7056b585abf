//! Products as Klaviyo catalog items (`$custom` integration, `$default`
//! catalog): the item a bulk create job takes, the item a bulk update job
//! takes, and their deterministic id. Klaviyo requires a title, a
//! description and a url on every item: the description falls back to the
//! title, the url comes from the operator's template.

use serde_json::{Map, Value, json};
use tillflow_core::model::Product;
use tillflow_core::model::json_number as number;

/// Klaviyo's id of the item with `external_id`.
pub fn item_id(external_id: &str) -> String {
    format!("$custom:::$default:::{external_id}")
}

/// `template` with `{productId}` and `{sku}` filled in.
pub fn url_for(template: &str, product: &Product) -> String {
    template.replace("{productId}", &product.identity.id).replace("{sku}", product.sku.as_deref().unwrap_or(""))
}

/// What create and update both carry: title, description, url, price,
/// images, flat custom metadata (brand, category, SKU and the source's own
/// properties that are plain values), published.
fn common(product: &Product, url_template: &str) -> Map<String, Value> {
    let title = product.name.trim();
    let description = product.description.as_deref().map(str::trim).filter(|d| !d.is_empty()).unwrap_or(title);
    let mut attributes = Map::new();
    attributes.insert("title".into(), json!(title));
    attributes.insert("description".into(), json!(description));
    attributes.insert("url".into(), json!(url_for(url_template, product)));
    if let Some(price) = &product.price {
        attributes.insert("price".into(), number(price.amount));
    }
    if let Some(image) = product.image_url.as_deref().filter(|i| !i.is_empty()) {
        attributes.insert("image_full_url".into(), json!(image));
        attributes.insert("image_thumbnail_url".into(), json!(image));
    }
    let mut metadata = Map::new();
    for (key, value) in &product.properties {
        if !value.is_null() && !value.is_array() && !value.is_object() {
            metadata.insert(key.clone(), value.clone());
        }
    }
    if let Some(brand) = &product.brand {
        metadata.insert("brand".into(), json!(brand));
    }
    if let Some(category) = product.categories.first() {
        metadata.insert("category".into(), json!(category));
    }
    if let Some(sku) = &product.sku {
        metadata.insert("sku".into(), json!(sku));
    }
    attributes.insert("custom_metadata".into(), Value::Object(metadata));
    attributes.insert("published".into(), json!(product.active));
    attributes
}

/// An item of a bulk create job.
pub fn create_item(product: &Product, url_template: &str) -> Value {
    let mut attributes = common(product, url_template);
    attributes.insert("external_id".into(), json!(product.identity.id));
    attributes.insert("integration_type".into(), json!("$custom"));
    attributes.insert("catalog_type".into(), json!("$default"));
    json!({"type": "catalog-item", "attributes": attributes})
}

/// An item of a bulk update job.
pub fn update_item(product: &Product, url_template: &str) -> Value {
    json!({"type": "catalog-item", "id": item_id(&product.identity.id), "attributes": common(product, url_template)})
}

/// A bulk job's body around `items` (already serialized), `kind` being
/// `catalog-item-bulk-create-job` or `…-update-job`.
pub fn job_envelope(kind: &str) -> (Vec<u8>, Vec<u8>) {
    (
        format!("{{\"data\":{{\"type\":\"{kind}\",\"attributes\":{{\"items\":{{\"data\":[").into_bytes(),
        b"]}}}}".to_vec(),
    )
}
