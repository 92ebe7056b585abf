//! What sales and customers are read against: outlets (name, currency,
//! time zone), customer groups (id → title, POS and eCom), products (what a
//! sale line shows) and the register count (the store's request budget).
//! They make no records, so their version cursors live with the reader:
//! read whole once per reader, then by version at the start of each pass
//! (the registers once per account).

use crate::client::XSeriesClient;
use crate::ecom_client::EcomClient;
use crate::ecom_wire;
use crate::mapping::{OutletInfo, ProductInfo};
use crate::wire;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use tillflow_core::ConnectorError;
use tillflow_core::model::{Currency, Text};

#[derive(Default)]
pub struct Reference {
    pub outlets: HashMap<Text, OutletInfo>,
    pub groups: HashMap<Text, Text>,
    pub products: HashMap<Text, ProductInfo>,
    pub ecom_groups: HashMap<Text, Text>,
    /// Per endpoint: the last version read.
    versions: HashMap<&'static str, u64>,
    pub loaded: bool,
}

/// Every record of a version-cursored list after `after`, page by page,
/// until a page comes back empty; returns the records and the new cursor.
pub async fn read_all(
    client: &XSeriesClient,
    path: &str,
    page_size: u32,
    mut after: u64,
) -> Result<(Vec<serde_json::Value>, u64), ConnectorError> {
    let mut records = Vec::new();
    loop {
        let query = [("after", after.to_string()), ("page_size", page_size.to_string())];
        let Some(page) = client.get::<wire::Page>(path, &query).await? else {
            return Err(ConnectorError::permanent(format!("X-Series has no {path} (404)")));
        };
        if page.data.is_empty() {
            return Ok((records, after));
        }
        let next = page_end(&page);
        if next <= after {
            return Err(ConnectorError::permanent(format!(
                "X-Series {path} did not move past version {after}; stopping rather than reading it again"
            )));
        }
        after = next;
        records.extend(page.data);
    }
}

/// The version a page reaches: its `version.max`, else the greatest
/// `version` of its records.
pub fn page_end(page: &wire::Page) -> u64 {
    page.version.and_then(|v| v.max).unwrap_or_else(|| {
        page.data
            .iter()
            .filter_map(|record| record.get("version").and_then(serde_json::Value::as_u64))
            .max()
            .unwrap_or(0)
    })
}

/// The store's open registers, in pages of the most `/registers` gives; a
/// short page is the last (a count too low only lowers the budget).
async fn open_registers(client: &XSeriesClient) -> Result<usize, ConnectorError> {
    let mut after = 0;
    let mut open = 0;
    loop {
        let query = [("after", after.to_string()), ("page_size", REGISTERS_PAGE.to_string())];
        let Some(page) = client.get::<wire::Page>("/registers", &query).await? else {
            return Err(ConnectorError::permanent("X-Series has no /registers (404)"));
        };
        open += page.data.iter().map(decoded::<wire::Register>).filter(|r| !deleted(&r.deleted_at)).count();
        let next = page_end(&page);
        if page.data.len() < REGISTERS_PAGE as usize || next <= after {
            return Ok(open);
        }
        after = next;
    }
}

const REGISTERS_PAGE: u32 = 1000;

fn decoded<T: DeserializeOwned + Default>(record: &serde_json::Value) -> T {
    serde_json::from_value(record.clone()).unwrap_or_default()
}

fn deleted(value: &tillflow_kit::source::Loose) -> bool {
    value.text().is_some()
}

impl Reference {
    /// Reads what changed since the last refresh (everything the first time).
    pub async fn refresh(
        &mut self,
        client: &XSeriesClient,
        ecom: Option<&EcomClient>,
        page_size: u32,
    ) -> Result<(), ConnectorError> {
        // The register count sizes the budget, once per account (its
        // limiter is made once), so it is read before anything else.
        if !client.budget_sized() {
            client.size_budget(open_registers(client).await?);
        }

        let (outlets, version) = read_all(client, "/outlets", page_size, self.version("outlets")).await?;
        self.versions.insert("outlets", version);
        for outlet in outlets.iter().map(decoded::<wire::Outlet>) {
            let Some(id) = outlet.id.id() else { continue };
            self.outlets.insert(
                id,
                OutletInfo {
                    name: outlet.name.text(),
                    currency: outlet.currency.text().and_then(|c| Currency::new(&c).ok()),
                    time_zone: outlet.time_zone.text(),
                },
            );
        }

        let (groups, version) = read_all(client, "/customer_groups", page_size, self.version("groups")).await?;
        self.versions.insert("groups", version);
        for group in groups.iter().map(decoded::<wire::CustomerGroup>) {
            if let (Some(id), Some(name)) = (group.id.id(), group.name.text()) {
                self.groups.insert(id, name);
            }
        }

        let (products, version) = read_all(client, "/products", page_size, self.version("products")).await?;
        self.versions.insert("products", version);
        for product in products.iter().map(decoded::<wire::Product>) {
            let Some(id) = product.id.id() else { continue };
            let name = match (product.name.text(), product.variant_name.text()) {
                (Some(name), Some(variant)) if variant != name => Text::display(format_args!("{name} / {variant}")),
                (Some(name), _) => name,
                (None, Some(variant)) => variant,
                (None, None) => continue,
            };
            self.products.insert(id, ProductInfo { name, sku: product.sku.text() });
        }

        if let Some(ecom) = ecom {
            self.ecom_groups = ecom_groups(ecom).await?;
        }
        self.loaded = true;
        Ok(())
    }

    fn version(&self, name: &'static str) -> u64 {
        if self.loaded { self.versions.get(name).copied().unwrap_or(0) } else { 0 }
    }
}

/// eCom's groups, whole (a store has few), by offset.
async fn ecom_groups(ecom: &EcomClient) -> Result<HashMap<Text, Text>, ConnectorError> {
    let mut groups = HashMap::new();
    let mut offset = 0u64;
    loop {
        let query = [("offset", offset.to_string()), ("limit", "100".to_owned())];
        // A plan without customer groups answers 402 (unverified): no groups,
        // and the customers' own `customerGroupName` still names theirs.
        let Some(page) = ecom.get_plan_feature::<ecom_wire::Search>("/customer_groups", &query).await? else { break };
        let count = page.items.len() as u64;
        for group in page.items.iter().map(decoded::<ecom_wire::Group>) {
            if let Some(name) = group.name.text() {
                groups.insert(Text::new(group.id.as_str().trim()), name);
            }
        }
        offset += count;
        if count == 0 || offset >= page.total {
            break;
        }
    }
    Ok(groups)
}
