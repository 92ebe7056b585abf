//! The keys of one Dutchie source and the child locations their `/whoami`
//! names — all of one parent — learnt once and shared by every reader.

use crate::client::{Class, LocationClient};
use crate::mapping::LocationInfo;
use crate::wire;
use std::time::Duration;
use tillflow_core::ConnectorError;
use tillflow_core::model::{Currency, Text};
use tokio::sync::OnceCell;

/// What every reader of the account shares.
pub struct Shared {
    /// The configured source name.
    pub name: String,
    pub keys: Vec<LocationClient>,
    pub(crate) identities: OnceCell<Vec<LocationInfo>>,
    pub overlap: Duration,
    pub history_start: Option<jiff::Timestamp>,
    pub transaction_types: Vec<String>,
    pub currency: Currency,
}

impl Shared {
    /// Each key's location (whoami once per account); keys of another
    /// parent are a configuration error naming the key by its position.
    pub async fn locations(&self) -> Result<&[LocationInfo], ConnectorError> {
        self.identities.get_or_try_init(|| self.identify()).await.map(Vec::as_slice)
    }

    async fn identify(&self) -> Result<Vec<LocationInfo>, ConnectorError> {
        let mut locations = Vec::with_capacity(self.keys.len());
        let mut parent: Option<(usize, Text, Text)> = None;
        for key in &self.keys {
            let answer = key.get(Class::WhoAmI, "/whoami", &[]).await.map_err(|e| e.into_error())?;
            let who: wire::LocationIdentity = answer
                .as_ref()
                .map(wire::decode)
                .transpose()
                .map_err(|e| ConnectorError::transient(format!("Dutchie's /whoami answer for {}: {e}", key.key_path)))?
                .ok_or_else(|| {
                    ConnectorError::config(format!("{}: Dutchie knows no location for this key", key.key_path))
                })?;
            let id = who.location_id.id().ok_or_else(|| {
                ConnectorError::config(format!("{}: Dutchie's /whoami names no locationId", key.key_path))
            })?;
            let parent_id = who.parent_id().unwrap_or_default();
            let parent_name = who.parent_name().unwrap_or_else(|| "?".into());
            match &parent {
                None => parent = Some((key.position, parent_id, parent_name)),
                Some((first, expected, expected_name)) if *expected != parent_id => {
                    return Err(ConnectorError::config(format!(
                        "{}: this key's location belongs to parent {parent_id} ({parent_name}), not {expected} \
                         ({expected_name}) like locations[{first}]: one source reads the child locations of one parent",
                        key.key_path
                    )));
                }
                Some(_) => {}
            }
            let name = who.location_name.text().unwrap_or_else(|| Text::display(format_args!("Location {id}")));
            locations.push(LocationInfo { id, name });
        }
        Ok(locations)
    }
}
