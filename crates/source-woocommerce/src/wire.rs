//! The WooCommerce JSON as it arrives, deserialized leniently: unknown fields
//! are ignored, missing ones default, and money/quantity fields accept strings
//! or numbers (plugins differ: the kit's `Loose`). Validation happens in
//! `mapping`. Text borrows from the page's JSON where it has no escapes
//! (`Cow`): an order is read once, mapped and dropped, and a copy of each of
//! its strings first was a quarter of a history import's allocations.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::LazyLock;
use tillflow_kit::source::{Loose, optional_text, top_level_field_list};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WooAddress<'a> {
    #[serde(borrow)]
    pub first_name: Cow<'a, str>,
    #[serde(borrow)]
    pub last_name: Cow<'a, str>,
    #[serde(borrow)]
    pub company: Cow<'a, str>,
    #[serde(borrow)]
    pub address_1: Cow<'a, str>,
    #[serde(borrow)]
    pub address_2: Cow<'a, str>,
    #[serde(borrow)]
    pub city: Cow<'a, str>,
    #[serde(borrow)]
    pub state: Cow<'a, str>,
    #[serde(borrow)]
    pub postcode: Cow<'a, str>,
    #[serde(borrow)]
    pub country: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub email: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub phone: Option<Cow<'a, str>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WooMeta<'a> {
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    /// Kept as written: plugins store anything here (objects, serialized
    /// arrays, long texts), and a mapping reads two or three keys of them.
    #[serde(default, borrow)]
    pub value: Option<&'a RawValue>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WooLineItem<'a> {
    pub id: Loose,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    pub product_id: Loose,
    pub variation_id: Loose,
    pub quantity: Loose,
    pub subtotal: Loose,
    pub total: Loose,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub sku: Option<Cow<'a, str>>,
    pub price: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WooCouponLine<'a> {
    #[serde(borrow)]
    pub code: Cow<'a, str>,
    pub discount: Loose,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WooRefundSummary {
    pub id: Loose,
    pub total: Loose,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WooOrder<'a> {
    pub id: u64,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub number: Option<Cow<'a, str>>,
    #[serde(default)]
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    #[serde(default)]
    #[serde(borrow)]
    pub currency: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub date_created_gmt: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub date_modified_gmt: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub date_completed_gmt: Option<Cow<'a, str>>,
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
    #[serde(borrow)]
    pub billing: WooAddress<'a>,
    #[serde(default)]
    #[serde(borrow)]
    pub payment_method: Cow<'a, str>,
    #[serde(default)]
    #[serde(borrow)]
    pub meta_data: Vec<WooMeta<'a>>,
    #[serde(default)]
    #[serde(borrow)]
    pub line_items: Vec<WooLineItem<'a>>,
    #[serde(default)]
    #[serde(borrow)]
    pub coupon_lines: Vec<WooCouponLine<'a>>,
    #[serde(default)]
    pub refunds: Vec<WooRefundSummary>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WooRefund<'a> {
    pub id: u64,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub date_created_gmt: Option<Cow<'a, str>>,
    #[serde(default)]
    pub amount: Loose,
    #[serde(default)]
    #[serde(borrow)]
    pub reason: Cow<'a, str>,
    #[serde(default)]
    #[serde(borrow)]
    pub line_items: Vec<WooLineItem<'a>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WooCustomer<'a> {
    pub id: u64,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub date_created_gmt: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub date_modified_gmt: Option<Cow<'a, str>>,
    #[serde(default)]
    #[serde(borrow)]
    pub email: Cow<'a, str>,
    #[serde(default)]
    #[serde(borrow)]
    pub first_name: Cow<'a, str>,
    #[serde(default)]
    #[serde(borrow)]
    pub last_name: Cow<'a, str>,
    #[serde(default)]
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(default)]
    #[serde(borrow)]
    pub billing: WooAddress<'a>,
}

/// What a listing of orders asks the shop for (WordPress's `_fields`,
/// which every WooCommerce REST route answers since WordPress 4.9.8): the
/// top-level fields [`WooOrder`] reads, taken from its own `Deserialize`, so
/// the list follows the struct. The shop leaves out the rest (`_links`, tax,
/// fee and shipping lines, the buyer's IP address and user agent): less to
/// build and send, and less for us to receive and skip. Top-level names
/// only: a dotted one (`billing.email`) needs WordPress 5.3, and an older
/// WordPress drops the whole field for it instead of keeping a part.
pub static ORDER_FIELDS: LazyLock<String> = LazyLock::new(asked::<WooOrder<'static>>);

/// [`ORDER_FIELDS`] for a listing of an order's refunds.
pub static REFUND_FIELDS: LazyLock<String> = LazyLock::new(asked::<WooRefund<'static>>);

/// [`ORDER_FIELDS`] for a listing of customers.
pub static CUSTOMER_FIELDS: LazyLock<String> = LazyLock::new(asked::<WooCustomer<'static>>);

fn asked<T: Deserialize<'static>>() -> String {
    top_level_field_list::<T>().expect("the wire structs are read as structs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_borrows_its_optional_texts_from_the_page() {
        let page = r#"[{"id": 7, "number": "7", "date_created_gmt": "2017-03-22T19:28:02",
            "date_modified_gmt": null, "billing": {"email": "ann@example.com", "phone": "0\u0031"},
            "line_items": [{"id": 1, "sku": "SKU-1"}]}]"#;
        let orders: Vec<WooOrder> = serde_json::from_str(page).unwrap();
        let order = &orders[0];
        for text in [&order.number, &order.date_created_gmt, &order.billing.email, &order.line_items[0].sku] {
            assert!(matches!(text, Some(Cow::Borrowed(_))), "{text:?} was copied");
        }
        assert_eq!(order.date_modified_gmt, None);
        assert_eq!(order.billing.phone.as_deref(), Some("01"), "an escaped text is unescaped");
    }

    #[test]
    fn a_listing_asks_for_the_fields_its_struct_reads() {
        assert_eq!(
            *ORDER_FIELDS,
            "id,number,status,currency,date_created_gmt,date_modified_gmt,date_completed_gmt,discount_total,\
             shipping_total,total,total_tax,customer_id,billing,payment_method,meta_data,line_items,coupon_lines,refunds"
        );
        assert_eq!(*REFUND_FIELDS, "id,date_created_gmt,amount,reason,line_items");
        assert_eq!(*CUSTOMER_FIELDS, "id,date_created_gmt,date_modified_gmt,email,first_name,last_name,role,billing");
    }
}
