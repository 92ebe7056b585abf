//! tillflow-runner: the config file format, the connector registry, the
//! operator commands and the webhook server behind the `tillflow` binary.

pub mod accounts;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod demo_live;
pub mod exit;
pub mod leasing;
pub mod listener;
pub mod migrate;
pub mod progress;
pub mod registry;
pub mod report;
pub mod sandbox;
pub mod server;
pub mod state_store;
pub mod status_data;
pub mod status_page;
pub mod webhook_body;
