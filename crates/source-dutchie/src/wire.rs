//! Dutchie's JSON as typed structs. Dutchie's casing differs between
//! endpoints (`customerId`, `customerID`, `LocationName`), so every record's
//! keys are lower-cased first ([`lowercase_keys`]) and the structs name
//! lower-case keys. Medical and identity fields (medical ids, qualifying
//! conditions, licence hashes, notes) are not declared: they are never read.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use tillflow_core::model::Text;
use tillflow_kit::source::Loose;

/// `value` with every object key lower-cased, recursively.
pub fn lowercase_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(key, value)| (key.to_lowercase(), lowercase_keys(value))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_keys).collect()),
        other => other,
    }
}

/// Decodes a record whatever its keys' casing.
pub fn decode<T: serde::de::DeserializeOwned>(record: &Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(lowercase_keys(record.clone()))
}

/// `GET /whoami`: the key's location and its parent (`lsp*`, or `company*`
/// in the PascalCase variant third parties report).
#[derive(Clone, Debug, Deserialize)]
pub struct LocationIdentity {
    #[serde(rename = "locationid", default)]
    pub location_id: Loose,
    #[serde(rename = "locationname", default)]
    pub location_name: Loose,
    #[serde(rename = "lspid", default)]
    pub lsp_id: Loose,
    #[serde(rename = "lspname", default)]
    pub lsp_name: Loose,
    #[serde(rename = "companyid", default)]
    pub company_id: Loose,
    #[serde(rename = "companyname", default)]
    pub company_name: Loose,
}

impl LocationIdentity {
    pub fn parent_id(&self) -> Option<Text> {
        self.lsp_id.id().or_else(|| self.company_id.id())
    }

    pub fn parent_name(&self) -> Option<Text> {
        self.lsp_name.text().or_else(|| self.company_name.text())
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Customer {
    #[serde(rename = "customerid", default)]
    pub customer_id: Loose,
    #[serde(rename = "firstname", default)]
    pub first_name: Loose,
    #[serde(rename = "lastname", default)]
    pub last_name: Loose,
    #[serde(rename = "emailaddress", default)]
    pub email: Loose,
    #[serde(default)]
    pub phone: Loose,
    #[serde(rename = "cellphone", default)]
    pub cell_phone: Loose,
    #[serde(default)]
    pub address1: Loose,
    #[serde(default)]
    pub address2: Loose,
    #[serde(default)]
    pub city: Loose,
    #[serde(default)]
    pub state: Loose,
    #[serde(rename = "postalcode", default)]
    pub postal_code: Loose,
    #[serde(default)]
    pub status: Loose,
    #[serde(rename = "customertype", default)]
    pub customer_type: Loose,
    #[serde(rename = "dateofbirth", default)]
    pub date_of_birth: Loose,
    #[serde(rename = "isloyaltymember", default)]
    pub is_loyalty_member: Loose,
    #[serde(rename = "isanonymous", default)]
    pub is_anonymous: Loose,
    #[serde(rename = "createdatlocation", default)]
    pub created_at_location: Loose,
    #[serde(rename = "creationdate", default)]
    pub creation_date: Loose,
    #[serde(rename = "lastmodifieddateutc", default)]
    pub last_modified: Loose,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Product {
    #[serde(rename = "productid", default)]
    pub product_id: Loose,
    #[serde(default)]
    pub sku: Loose,
    #[serde(rename = "productname", default)]
    pub product_name: Loose,
    #[serde(rename = "internalname", default)]
    pub internal_name: Loose,
    #[serde(rename = "onlinetitle", default)]
    pub online_title: Loose,
    #[serde(default)]
    pub description: Loose,
    #[serde(rename = "onlinedescription", default)]
    pub online_description: Loose,
    #[serde(default)]
    pub category: Loose,
    #[serde(rename = "mastercategory", default)]
    pub master_category: Loose,
    #[serde(rename = "imageurl", default)]
    pub image_url: Loose,
    #[serde(default)]
    pub strain: Loose,
    #[serde(rename = "straintype", default)]
    pub strain_type: Loose,
    #[serde(rename = "brandname", default)]
    pub brand_name: Loose,
    #[serde(rename = "vendorname", default)]
    pub vendor_name: Loose,
    #[serde(default)]
    pub price: Loose,
    #[serde(rename = "recprice", default)]
    pub rec_price: Loose,
    #[serde(rename = "isactive", default)]
    pub is_active: Loose,
    #[serde(rename = "istestproduct", default)]
    pub is_test_product: Loose,
    #[serde(rename = "lastmodifieddateutc", default)]
    pub last_modified: Loose,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Transaction {
    #[serde(rename = "transactionid", default)]
    pub transaction_id: Loose,
    #[serde(rename = "customerid", default)]
    pub customer_id: Loose,
    #[serde(rename = "transactiondate", default)]
    pub transaction_date: Loose,
    #[serde(rename = "lastmodifieddateutc", default)]
    pub last_modified: Loose,
    #[serde(rename = "isvoid", default)]
    pub is_void: Loose,
    #[serde(rename = "voiddate", default)]
    pub void_date: Loose,
    #[serde(rename = "isreturn", default)]
    pub is_return: Loose,
    #[serde(rename = "returnontransactionid", default)]
    pub return_on_transaction_id: Loose,
    #[serde(rename = "transactiontype", default)]
    pub transaction_type: Loose,
    #[serde(rename = "ordersource", default)]
    pub order_source: Loose,
    #[serde(rename = "ordertype", default)]
    pub order_type: Loose,
    #[serde(default)]
    pub subtotal: Loose,
    #[serde(rename = "totaldiscount", default)]
    pub total_discount: Loose,
    #[serde(default)]
    pub tax: Loose,
    #[serde(default)]
    pub total: Loose,
    #[serde(rename = "terminalname", default)]
    pub terminal_name: Loose,
    #[serde(default)]
    pub items: Vec<TransactionItem>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TransactionItem {
    #[serde(rename = "transactionitemid", default)]
    pub transaction_item_id: Loose,
    #[serde(rename = "productid", default)]
    pub product_id: Loose,
    #[serde(default)]
    pub quantity: Loose,
    #[serde(rename = "unitprice", default)]
    pub unit_price: Loose,
    #[serde(rename = "totalprice", default)]
    pub total_price: Loose,
    #[serde(rename = "totaldiscount", default)]
    pub total_discount: Loose,
    #[serde(rename = "iscoupon", default)]
    pub is_coupon: Loose,
    #[serde(rename = "returnreason", default)]
    pub return_reason: Loose,
    /// Every field, by its lower-cased name, for the properties Klaviyo's
    /// Dutchie integration sends as they are.
    #[serde(flatten)]
    pub fields: BTreeMap<String, Value>,
}
