//! Lightspeed R-Series JSON as typed structs: every scalar a string (the
//! kit's `Loose`), a relation with one child an object and several an array
//! (`Many`), an object replaced by `""` when absent (`Maybe`).

use serde::Deserialize;
use tillflow_kit::source::{Loose, Many, Maybe};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Attributes {
    /// The next page's URL exactly as given ("" on the last page).
    pub next: Loose,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Sale {
    #[serde(rename = "saleID")]
    pub sale_id: Loose,
    #[serde(rename = "timeStamp")]
    pub time_stamp: Loose,
    #[serde(rename = "createTime")]
    pub create_time: Loose,
    #[serde(rename = "completeTime")]
    pub complete_time: Loose,
    pub completed: Loose,
    pub voided: Loose,
    #[serde(rename = "ticketNumber")]
    pub ticket_number: Loose,
    #[serde(rename = "calcSubtotal")]
    pub calc_subtotal: Loose,
    #[serde(rename = "calcDiscount")]
    pub calc_discount: Loose,
    #[serde(rename = "calcTax1")]
    pub calc_tax1: Loose,
    #[serde(rename = "calcTax2")]
    pub calc_tax2: Loose,
    #[serde(rename = "calcTotal")]
    pub calc_total: Loose,
    #[serde(rename = "customerID")]
    pub customer_id: Loose,
    #[serde(rename = "shopID")]
    pub shop_id: Loose,
    #[serde(rename = "registerID")]
    pub register_id: Loose,
    #[serde(rename = "SaleLines")]
    pub lines: Many<SaleLine>,
    #[serde(rename = "SalePayments")]
    pub payments: Many<SalePayment>,
    #[serde(rename = "Customer")]
    pub customer: Maybe<Customer>,
    #[serde(rename = "ShipTo")]
    pub ship_to: Maybe<ShipTo>,
    #[serde(rename = "Discount")]
    pub discount: Maybe<Discount>,
    #[serde(rename = "Shop")]
    pub shop: Maybe<Shop>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SaleLine {
    #[serde(rename = "saleLineID")]
    pub sale_line_id: Loose,
    #[serde(rename = "saleID")]
    pub sale_id: Loose,
    #[serde(rename = "unitQuantity")]
    pub unit_quantity: Loose,
    #[serde(rename = "unitPrice")]
    pub unit_price: Loose,
    #[serde(rename = "calcSubtotal")]
    pub calc_subtotal: Loose,
    #[serde(rename = "calcLineDiscount")]
    pub calc_line_discount: Loose,
    #[serde(rename = "calcTotal")]
    pub calc_total: Loose,
    #[serde(rename = "itemID")]
    pub item_id: Loose,
    #[serde(rename = "parentSaleLineID")]
    pub parent_sale_line_id: Loose,
    #[serde(rename = "Item")]
    pub item: Maybe<Item>,
    #[serde(rename = "Discount")]
    pub discount: Maybe<Discount>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Item {
    pub description: Loose,
    #[serde(rename = "categoryID")]
    pub category_id: Loose,
    #[serde(rename = "customSku")]
    pub custom_sku: Loose,
    #[serde(rename = "systemSku")]
    pub system_sku: Loose,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SalePayment {
    #[serde(rename = "PaymentType")]
    pub payment_type: Maybe<Named>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Named {
    pub name: Loose,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Discount {
    pub name: Loose,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Shop {
    #[serde(rename = "shopID")]
    pub shop_id: Loose,
    pub name: Loose,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Category {
    #[serde(rename = "categoryID")]
    pub category_id: Loose,
    pub name: Loose,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ShipTo {
    #[serde(rename = "shipToID")]
    pub ship_to_id: Loose,
    pub shipped: Loose,
    #[serde(rename = "timeStamp")]
    pub time_stamp: Loose,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Customer {
    #[serde(rename = "customerID")]
    pub customer_id: Loose,
    #[serde(rename = "firstName")]
    pub first_name: Loose,
    #[serde(rename = "lastName")]
    pub last_name: Loose,
    pub title: Loose,
    pub company: Loose,
    #[serde(rename = "createTime")]
    pub create_time: Loose,
    #[serde(rename = "timeStamp")]
    pub time_stamp: Loose,
    pub archived: Loose,
    #[serde(rename = "Contact")]
    pub contact: Maybe<Contact>,
    #[serde(rename = "CustomerType")]
    pub customer_type: Maybe<Named>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Contact {
    #[serde(rename = "noEmail")]
    pub no_email: Loose,
    #[serde(rename = "Emails")]
    pub emails: Many<ContactEmail>,
    #[serde(rename = "Phones")]
    pub phones: Many<ContactPhone>,
    #[serde(rename = "Addresses")]
    pub addresses: Many<ContactAddress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContactEmail {
    pub address: Loose,
    #[serde(rename = "useType")]
    pub use_type: Loose,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContactPhone {
    pub number: Loose,
    #[serde(rename = "useType")]
    pub use_type: Loose,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContactAddress {
    pub address1: Loose,
    pub address2: Loose,
    pub city: Loose,
    pub state: Loose,
    #[serde(rename = "stateCode")]
    pub state_code: Loose,
    pub zip: Loose,
    pub country: Loose,
    #[serde(rename = "countryCode")]
    pub country_code: Loose,
}
