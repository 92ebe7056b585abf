//! From configured connectors to accounts: every `[sources.X]` and
//! `[sinks.Y]` table is parsed and validated by its platform's descriptor
//! first (nothing contacted, nothing written), then one account is opened per
//! connector that a selected pipeline names, shared by all of them.

use crate::config::{Config, ConnectorTable};
use crate::exit::Failure;
use crate::registry;
use std::collections::BTreeMap;
use std::sync::Arc;
use tillflow_core::StateStore;
use tillflow_kit::descriptor::{OpenSink, OpenSource};
use tillflow_kit::{AccountContext, ConfigProblem, SinkAccount, SourceAccount};

/// Every connector of the file, parsed and validated, not opened.
pub struct Validated {
    sources: BTreeMap<String, (OpenSource, f64)>,
    sinks: BTreeMap<String, (OpenSink, f64)>,
}

/// The accounts a command works with, by configured name.
pub struct Accounts {
    pub sources: BTreeMap<String, Arc<dyn SourceAccount>>,
    pub sinks: BTreeMap<String, Arc<dyn SinkAccount>>,
}

fn table_value(table: &ConnectorTable) -> serde_json::Value {
    serde_json::to_value(&table.table).expect("TOML values are JSON values")
}

/// Parses every connector table with its platform's descriptor: a bad one
/// anywhere is reported (file, line, full key) before anything is opened.
pub fn validate(config: &Config) -> Result<Validated, Failure> {
    let type_error = |table: &ConnectorTable, kind: &str| {
        Failure::config(
            config.problem(table, &ConfigProblem::at("type", registry::unknown_type(kind, &table.type_name))),
        )
    };
    let mut sources = BTreeMap::new();
    for (name, table) in &config.sources {
        let descriptor = registry::source(&table.type_name).ok_or_else(|| type_error(table, "sources"))?;
        let open = (descriptor.parse)(table_value(table)).map_err(|p| Failure::config(config.problem(table, &p)))?;
        sources.insert(name.clone(), (open, table.rate_share));
    }
    let mut sinks = BTreeMap::new();
    for (name, table) in &config.sinks {
        let descriptor = registry::sink(&table.type_name).ok_or_else(|| type_error(table, "sinks"))?;
        let open = (descriptor.parse)(table_value(table)).map_err(|p| Failure::config(config.problem(table, &p)))?;
        sinks.insert(name.clone(), (open, table.rate_share));
    }
    Ok(Validated { sources, sinks })
}

impl Validated {
    /// Opens the accounts of the connectors `wanted` says yes to — asked
    /// with `"sources"` or `"sinks"` and the configured name — on `state`.
    pub fn open(
        self,
        config: &Config,
        state: &Arc<dyn StateStore>,
        wanted: impl Fn(&str, &str) -> bool,
    ) -> Result<Accounts, Failure> {
        let context = |name: &str, share: f64| AccountContext::new(name, state.clone()).with_rate_share(share);
        let mut accounts = Accounts { sources: BTreeMap::new(), sinks: BTreeMap::new() };
        for (name, (open, share)) in self.sources {
            if wanted("sources", &name) {
                let account = open(&context(&name, share))
                    .map_err(|p| Failure::config(config.problem(&config.sources[&name], &p)))?;
                accounts.sources.insert(name, account);
            }
        }
        for (name, (open, share)) in self.sinks {
            if wanted("sinks", &name) {
                let account = open(&context(&name, share))
                    .map_err(|p| Failure::config(config.problem(&config.sinks[&name], &p)))?;
                accounts.sinks.insert(name, account);
            }
        }
        Ok(accounts)
    }
}
