//! The status table: a source order status → one of the five statuses
//! E-goi parses (or not sent), the defaults of E-goi's WooCommerce plugin
//! under the operator's `status_map` overrides.

use crate::config::MappedStatus;
use std::collections::BTreeMap;
use tillflow_core::model::OrderStatus;

/// The default row of a canonical status.
pub fn default_status(status: &OrderStatus) -> MappedStatus {
    match status {
        OrderStatus::Draft => MappedStatus::Created,
        OrderStatus::Pending | OrderStatus::OnHold | OrderStatus::Processing => MappedStatus::Pending,
        OrderStatus::Completed | OrderStatus::Refunded => MappedStatus::Completed,
        OrderStatus::Cancelled | OrderStatus::Failed => MappedStatus::Canceled,
        OrderStatus::Trash => MappedStatus::Skip,
        OrderStatus::Other(_) => MappedStatus::Unknown,
    }
}

/// The names an operator may write for a status in `status_map`: the
/// canonical one, and WooCommerce's where it differs.
fn names(status: &OrderStatus) -> &'static [&'static str] {
    match status {
        OrderStatus::Draft => &["checkout-draft", "draft"],
        OrderStatus::Cancelled => &["cancelled", "canceled"],
        _ => &[],
    }
}

/// `status` under `overrides`.
pub fn mapped_status(status: &OrderStatus, overrides: &BTreeMap<String, MappedStatus>) -> MappedStatus {
    let own = status.as_str();
    overrides
        .get(own)
        .or_else(|| names(status).iter().find_map(|name| overrides.get(*name)))
        .copied()
        .unwrap_or_else(|| default_status(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_e_goi_s_plugin_and_overrides_change_any_row() {
        let none = BTreeMap::new();
        let wire =
            |status: OrderStatus, overrides: &BTreeMap<String, MappedStatus>| mapped_status(&status, overrides).wire();
        assert_eq!(wire(OrderStatus::Draft, &none), Some("created"));
        for pending in [OrderStatus::Pending, OrderStatus::OnHold, OrderStatus::Processing] {
            assert_eq!(wire(pending, &none), Some("pending"));
        }
        assert_eq!(wire(OrderStatus::Completed, &none), Some("completed"));
        assert_eq!(wire(OrderStatus::Refunded, &none), Some("completed"));
        assert_eq!(wire(OrderStatus::Cancelled, &none), Some("canceled"));
        assert_eq!(wire(OrderStatus::Failed, &none), Some("canceled"));
        assert_eq!(wire(OrderStatus::Other("wc-backorder".into()), &none), Some("unknown"));
        assert_eq!(wire(OrderStatus::Trash, &none), None, "trash is not sent");

        let overrides = BTreeMap::from([
            ("refunded".to_owned(), MappedStatus::Canceled),
            ("checkout-draft".to_owned(), MappedStatus::Skip),
            ("backorder".to_owned(), MappedStatus::Pending),
        ]);
        assert_eq!(wire(OrderStatus::Refunded, &overrides), Some("canceled"), "PrestaShop's choice");
        assert_eq!(wire(OrderStatus::Draft, &overrides), None);
        assert_eq!(wire(OrderStatus::Other("backorder".into()), &overrides), Some("pending"));
        assert_eq!(wire(OrderStatus::Completed, &overrides), Some("completed"), "other rows stay");
    }
}
