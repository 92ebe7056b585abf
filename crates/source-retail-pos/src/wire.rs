//! X-Series API 2.0 JSON as typed structs: the `{data, version}` envelope
//! of every list (an empty page's `version` may be null), customers,
//! customer groups, sales with their lines, outlets, registers, products.
//! Money and ids arrive as JSON numbers or strings: [`Loose`] keeps their
//! text, so amounts become decimals without passing through a float.

use serde::Deserialize;
use serde_json::Value;
use tillflow_core::model::Text;
use tillflow_kit::source::Loose;

/// One page of a version-cursored list.
#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub data: Vec<Value>,
    #[serde(default)]
    pub version: Option<VersionRange>,
}

/// `{"min": …, "max": …}`; either may be null on an empty page.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct VersionRange {
    #[serde(default)]
    pub min: Option<u64>,
    #[serde(default)]
    pub max: Option<u64>,
}

/// `GET /…/{id}`.
#[derive(Debug, Deserialize)]
pub struct One {
    pub data: Value,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Customer {
    pub id: Loose,
    pub customer_code: Loose,
    pub first_name: Loose,
    pub last_name: Loose,
    pub email: Loose,
    pub phone: Loose,
    pub mobile: Loose,
    pub company_name: Loose,
    pub do_not_email: Loose,
    pub customer_group_id: Loose,
    pub physical_address_1: Loose,
    pub physical_address_2: Loose,
    pub physical_city: Loose,
    pub physical_state: Loose,
    pub physical_postcode: Loose,
    pub physical_country_id: Loose,
    pub created_at: Loose,
    pub updated_at: Loose,
    pub deleted_at: Loose,
    pub version: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CustomerGroup {
    pub id: Loose,
    pub name: Loose,
    pub group_id: Loose,
    pub deleted_at: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Outlet {
    pub id: Loose,
    pub name: Loose,
    pub time_zone: Loose,
    pub currency: Loose,
    pub deleted_at: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Register {
    pub id: Loose,
    pub outlet_id: Loose,
    pub deleted_at: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Product {
    pub id: Loose,
    pub name: Loose,
    pub variant_name: Loose,
    pub sku: Loose,
    pub deleted_at: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Sale {
    pub id: Loose,
    pub outlet_id: Loose,
    pub register_id: Loose,
    pub customer_id: Loose,
    pub invoice_number: Loose,
    pub status: Loose,
    /// `USER`, `ECOMMERCE` (eCom orders reach X-Series as sales), …
    pub source: Loose,
    pub return_for: Loose,
    /// Tax exclusive.
    pub total_price: Loose,
    pub total_tax: Loose,
    pub created_at: Loose,
    pub updated_at: Loose,
    pub sale_date: Loose,
    pub line_items: Vec<LineItem>,
    pub payments: Vec<Payment>,
    pub version: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct LineItem {
    pub id: Loose,
    pub product_id: Loose,
    pub quantity: Loose,
    /// The unit price, tax exclusive (`unit_price` in the examples, `price`
    /// in the schema).
    pub unit_price: Loose,
    pub price: Loose,
    /// The line's total, tax exclusive (`total_price` in the examples,
    /// `price_total` in the schema).
    pub total_price: Loose,
    pub price_total: Loose,
    pub discount_total: Loose,
    pub total_discount: Loose,
    pub is_return: Loose,
    /// `SAVED`, `VOIDED` or `CONFIRMED`.
    pub status: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Payment {
    pub name: Loose,
    pub amount: Loose,
}

/// The first of `candidates` that holds text (schema and example names differ).
pub fn first_text(candidates: &[&Loose]) -> Option<Text> {
    candidates.iter().find_map(|value| value.text())
}
