//! The WooCommerce JSON as it arrives, deserialized leniently: unknown fields
//! are ignored, missing ones default, and money/quantity fields accept strings
//! or numbers (plugins differ: the kit's `Loose`). Validation happens in
//! `mapping`.

use serde::Deserialize;
use tillflow_kit::source::Loose;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WooAddress {
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub address_1: String,
    pub address_2: String,
    pub city: String,
    pub state: String,
    pub postcode: String,
    pub country: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WooMeta {
    pub key: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WooLineItem {
    pub id: Loose,
    pub name: String,
    pub product_id: Loose,
    pub variation_id: Loose,
    pub quantity: Loose,
    pub subtotal: Loose,
    pub total: Loose,
    pub sku: Option<String>,
    pub price: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WooCouponLine {
    pub code: String,
    pub discount: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WooRefundSummary {
    pub id: Loose,
    pub total: Loose,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WooOrder {
    pub id: u64,
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub date_created_gmt: Option<String>,
    #[serde(default)]
    pub date_modified_gmt: Option<String>,
    #[serde(default)]
    pub date_completed_gmt: Option<String>,
    #[serde(default)]
    pub discount_total: Loose,
    #[serde(default)]
    pub shipping_total: Loose,
    #[serde(default)]
    pub total: Loose,
    #[serde(default)]
    pub total_tax: Loose,
    #[serde(default)]
    pub customer_id: Loose,
    #[serde(default)]
    pub billing: WooAddress,
    #[serde(default)]
    pub payment_method: String,
    #[serde(default)]
    pub meta_data: Vec<WooMeta>,
    #[serde(default)]
    pub line_items: Vec<WooLineItem>,
    #[serde(default)]
    pub coupon_lines: Vec<WooCouponLine>,
    #[serde(default)]
    pub refunds: Vec<WooRefundSummary>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WooRefund {
    pub id: u64,
    #[serde(default)]
    pub date_created_gmt: Option<String>,
    #[serde(default)]
    pub amount: Loose,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub line_items: Vec<WooLineItem>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WooCustomer {
    pub id: u64,
    #[serde(default)]
    pub date_created_gmt: Option<String>,
    #[serde(default)]
    pub date_modified_gmt: Option<String>,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub billing: WooAddress,
}
