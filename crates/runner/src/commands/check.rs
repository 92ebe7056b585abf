//! `tillflow check`: validates the whole config first (nothing is written or
//! contacted if it is wrong), then reaches every platform with its
//! credentials through the accounts a run would use.

use super::load;
use crate::exit::{CommandResult, Failure};
use crate::state_store::{self, Access};
use std::path::Path;
use tillflow_core::ConnectorError;

pub async fn check(path: &Path) -> CommandResult {
    let (config, validated) = load(path)?;
    // Accounts persist what must survive (a rotated refresh token), so the
    // state store is opened, but only once the config is known to be good.
    let state = state_store::open(&config, Access::Shared).await?;
    let accounts = validated.open(&config, &state, |_, _| true)?;
    println!("{}: configuration is valid", config.file.display());
    let mut failed = 0;
    let mut report = |kind: &str, name: &str, type_name: &str, result: Result<(), ConnectorError>| match result {
        Ok(()) => println!("  ok    {kind} {name} ({type_name})"),
        Err(error) => {
            failed += 1;
            println!("  FAIL  {kind} {name} ({type_name}): {}", config.scrub(&error.message));
        }
    };
    for (name, account) in &accounts.sources {
        report("source", name, account.platform(), account.check().await);
    }
    for (name, account) in &accounts.sinks {
        report("sink", name, account.platform(), account.check().await);
    }
    if failed > 0 {
        return Err(Failure::config(format!("{failed} connector(s) could not be reached with their credentials")));
    }
    Ok(())
}
