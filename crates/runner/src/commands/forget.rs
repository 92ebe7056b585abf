//! `tillflow forget --email ADDRESS`: the right to be forgotten, across every
//! sink at once. The tombstone is recorded first, so no pass or webhook
//! that runs from then on sends the person again, even when a platform's
//! deletion fails and is asked again later; then what the state itself
//! keeps that names the address is deleted (`StateStore::purge`); then every
//! sink account a pipeline names is asked, through the platform's own
//! deletion or privacy API, and what each was asked and answered is reported.

use super::load;
use crate::exit::{CommandResult, Failure};
use crate::registry;
use crate::state_store::{self, Access};
use std::path::Path;
use tillflow_core::forget::{email_subject, plausible_email};

pub async fn forget(path: &Path, email: &str) -> CommandResult {
    let email = email.trim();
    if !plausible_email(email) {
        return Err(Failure::config(format!("--email: `{email}` is not an email address")));
    }
    let (config, validated) = load(path)?;
    let state = state_store::open(&config, Access::Shared).await?;
    let named_by_a_pipeline = |name: &str| config.pipelines.iter().any(|pipeline| pipeline.sink == name);
    let accounts = validated.open(&config, &state, |kind, name| kind == "sinks" && named_by_a_pipeline(name))?;
    let shown = tillflow_http::redact::email(email);
    state.forget(&[email_subject(email)], jiff::Timestamp::now()).await.map_err(Failure::pipeline)?;
    println!("{shown}: tombstone recorded; from now on their events are skipped (reason \"forgotten\")");
    let purged = state.purge(email).await.map_err(Failure::pipeline)?;
    println!(
        "  deleted from the state: {} dead letter(s), {} stored webhook(s), {} source entr{} that named them",
        purged.dead_letters,
        purged.webhooks,
        purged.source_entries,
        if purged.source_entries == 1 { "y" } else { "ies" }
    );
    let mut failed = Vec::new();
    for (name, account) in &accounts.sinks {
        let title = registry::sink(account.platform()).map_or(account.platform(), |descriptor| descriptor.title);
        match account.forget(email).await {
            Ok(report) => {
                let verdict = if report.known { "forgotten" } else { "not known there" };
                println!("  {verdict:<15} {title} (sink {name})");
                println!("      asked:    {}", report.asked);
                println!("      answered: {}", config.scrub(&report.answered));
            }
            Err(error) => {
                println!("  FAILED          {title} (sink {name})");
                println!("      {}", config.scrub(&error.message));
                failed.push(name.clone());
            }
        }
    }
    state.close().await;
    if failed.is_empty() {
        println!("{shown}: every sink answered; nothing about them will be sent again");
        Ok(())
    } else {
        Err(Failure::pipeline(format!(
            "sink(s) {} did not confirm; the tombstone stands (nothing is sent about them), so run \
             `tillflow forget` again to ask those sinks once they are reachable",
            failed.join(", ")
        )))
    }
}
