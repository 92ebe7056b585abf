//! eCom (E-Series, the Ecwid API v3) JSON as typed structs: the
//! `{total, count, offset, limit, items}` envelope, customers (with the
//! three-state `acceptMarketing`), customer groups (0 is "General"),
//! orders (only who bought), and webhook bodies.

use serde::Deserialize;
use serde_json::Value;
use tillflow_kit::source::Loose;

#[derive(Debug, Deserialize)]
pub struct Search {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub items: Vec<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Customer {
    pub id: Loose,
    pub name: Loose,
    pub email: Loose,
    pub registered: Loose,
    pub updated: Loose,
    pub total_order_count: Option<u64>,
    pub customer_group_id: Loose,
    pub customer_group_name: Loose,
    pub billing_person: Option<Person>,
    /// `true` or null: may be emailed; `false`: may not.
    pub accept_marketing: Option<bool>,
    pub stats: Option<Stats>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Person {
    pub name: Loose,
    pub first_name: Loose,
    pub last_name: Loose,
    pub company_name: Loose,
    pub street: Loose,
    pub city: Loose,
    pub country_code: Loose,
    pub postal_code: Loose,
    pub state_or_province_code: Loose,
    pub phone: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Stats {
    pub number_of_orders: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Group {
    pub id: Loose,
    pub name: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Order {
    pub id: Loose,
    pub email: Loose,
    pub customer_id: Loose,
    pub update_timestamp: Option<i64>,
    pub payment_status: Loose,
}

/// A webhook body: what changed, never the change itself.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Webhook {
    pub event_id: Loose,
    pub event_created: Loose,
    pub store_id: Loose,
    pub entity_id: Loose,
    pub event_type: Loose,
}
