//! The command line: parses it, sets up logging, runs a command and turns its
//! result into an exit code (0 ok, 1 a pipeline could not complete its pass,
//! 2 configuration error).

use crate::commands;
use crate::demo::demo as tillflow_runner_demo;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tillflow",
    version,
    about = "Sync point-of-sale customers, orders, refunds and shipments into marketing platforms",
    long_about = "tillflow reads customers, orders, refunds, shipments and products from point-of-sale \
                  platforms and writes them as profiles and behavioural events into marketing platforms. \
                  Pick source → sink pipelines in one config file."
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More log detail (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipelines: continuously (webhook server + polling), or one pass with --once.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// One full pass of every pipeline, then exit.
        #[arg(long)]
        once: bool,
        /// Only this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// With --once: read and derive everything as a pass would, on a copy
        /// of the state; send nothing, commit nothing, print what would be sent.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: print the first N request bodies as the sinks would send them.
        #[arg(long, value_name = "N")]
        show: Option<usize>,
    },
    /// Validate the config and reach every platform with its credentials.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Cursors, lag, counts by event, skips by reason, dead letters.
    Status {
        #[arg(long)]
        config: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        pipeline: Option<String>,
    },
    /// Orders per local day in a time zone, as read from the source and as delivered.
    Report {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        pipeline: String,
        /// An IANA zone, e.g. Europe/Lisbon.
        #[arg(long)]
        tz: String,
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// Inspect, retry or drop records that a sink rejected or a source could not parse.
    DeadLetters {
        #[arg(long)]
        config: PathBuf,
        #[command(subcommand)]
        action: DeadLetterAction,
    },
    /// Ask every sink to delete a person (the right to be forgotten) and keep
    /// their later orders from being sent (skipped as "forgotten").
    Forget {
        #[arg(long)]
        config: PathBuf,
        /// The person's email address.
        #[arg(long)]
        email: String,
    },
    /// Sandboxes + a real sync, embedded, no setup: the quickest look at tillflow.
    Demo {
        /// After the import, keep the sandboxes and a continuous run going, ring
        /// a sale every few seconds and print each event as it lands; Ctrl-C stops.
        #[arg(long)]
        live: bool,
    },
    /// Run one platform simulator on its own, for pointing any tool at it.
    Sandbox {
        /// The platform (its config `type`); the list is in this build's registry.
        #[arg(long)]
        platform: String,
        #[arg(long, default_value_t = 8790)]
        port: u16,
        /// Size of the seeded history (sources).
        #[arg(long, default_value_t = 2000)]
        orders: u64,
        /// Answer the first N requests with 429 and Retry-After.
        #[arg(long = "too-many-requests", default_value_t = 0)]
        too_many_requests: u32,
        /// Faults to inject, each with the probability a request meets it:
        /// 429=P (a storm of `storm=N` requests), 5xx=P, slow=P (by `slow-ms=M`),
        /// drop=P (connection dropped, request not applied), lost=P (applied,
        /// answer lost); `seed=N` picks the sequence.
        #[arg(long)]
        faults: Option<String>,
    },
    /// Manage stored state.
    State {
        /// Before or after the action (`state --config F reset …` as documented).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: StateAction,
    },
}

#[derive(Subcommand)]
enum DeadLetterAction {
    /// List dead letters with their reasons.
    List {
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Try them again (after fixing the cause); what fails again stays.
    Replay {
        #[arg(long)]
        pipeline: Option<String>,
    },
    /// Delete dead letters of a pipeline: the given --id ones, or --all.
    Discard {
        #[arg(long)]
        pipeline: String,
        #[arg(long = "id")]
        ids: Vec<i64>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum StateAction {
    /// Forget a pipeline's checkpoints and ledger: the next run re-syncs everything.
    Reset {
        #[arg(long)]
        pipeline: String,
    },
    /// Run SQLite's integrity check over the state file (every page and index).
    Check,
    /// Move a SQLite state into an empty Postgres one (for several runners):
    /// checkpoints, ledger, dead letters, inbox, facts and secrets, so
    /// nothing is re-synced or sent again. Needs no config.
    Migrate {
        /// The state to move: sqlite://PATH.
        #[arg(long)]
        from: String,
        /// Where to: postgres://… (an empty database).
        #[arg(long)]
        to: String,
    },
}

/// A write past the process's file-size limit (`ulimit -f`) raises SIGXFSZ,
/// whose default action kills the process with no message. With a handler
/// installed the write fails instead (EFBIG), SQLite reports the state file
/// full, and the pass stops with that message and nothing half-committed.
fn keep_file_size_limit_from_killing() {
    const SIGXFSZ: i32 = 25;
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ)) {
        // The handler stays installed for the life of the process.
        Ok(signal) => drop(signal),
        Err(error) => tracing::debug!(%error, "cannot handle SIGXFSZ"),
    }
}

fn init_logging(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},sqlx=warn,hyper=warn,reqwest=warn")));
    // Colours for a person at a terminal; a log file or a journal gets plain text.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colours);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

/// The whole `tillflow` program.
/// The command line, with the platform lists of this build's registry in its help.
fn parse() -> Cli {
    let platforms = crate::registry::sandbox_platforms().join(" | ");
    let command = Cli::command().mut_subcommand("sandbox", |sandbox| {
        sandbox.mut_arg("platform", |arg| arg.help(format!("The platform: {platforms}")))
    });
    Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|error| error.exit())
}

pub fn main() -> ExitCode {
    let cli = parse();
    init_logging(cli.log_format, cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tillflow: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let show_progress = cli.log_format == LogFormat::Text;
    let outcome = runtime.block_on(async move {
        keep_file_size_limit_from_killing();
        match cli.command {
            Command::Run { config, dry_run: true, once: true, pipeline, show } => {
                commands::dry_run(&config, pipeline.as_deref(), show.unwrap_or(0)).await
            }
            Command::Run { dry_run: true, .. } => Err(crate::exit::Failure::config(
                "--dry-run goes with --once: tillflow run --once --dry-run --config F",
            )),
            Command::Run { show: Some(_), .. } => {
                Err(crate::exit::Failure::config("--show goes with --dry-run: tillflow run --once --dry-run --show N"))
            }
            Command::Run { config, once, pipeline, .. } => {
                commands::run(&config, once, pipeline.as_deref(), show_progress).await
            }
            Command::Check { config } => commands::check(&config).await,
            Command::Forget { config, email } => commands::forget(&config, &email).await,
            Command::Status { config, json, pipeline } => commands::status(&config, json, pipeline.as_deref()).await,
            Command::DeadLetters { config, action } => match action {
                DeadLetterAction::List { pipeline, json } => {
                    commands::dead_letters_list(&config, pipeline.as_deref(), json).await
                }
                DeadLetterAction::Replay { pipeline } => {
                    commands::dead_letters_replay(&config, pipeline.as_deref()).await
                }
                DeadLetterAction::Discard { pipeline, ids, all } => {
                    commands::dead_letters_discard(&config, &pipeline, &ids, all).await
                }
            },
            Command::Report { config, pipeline, tz, days } => commands::report(&config, &pipeline, &tz, days).await,
            Command::Sandbox { platform, port, orders, too_many_requests, faults } => {
                crate::sandbox::run(&platform, port, orders, too_many_requests, faults.as_deref()).await
            }
            Command::Demo { live: false } => tillflow_runner_demo(show_progress).await,
            Command::Demo { live: true } => crate::demo_live::demo_live(show_progress).await,
            Command::State { action: StateAction::Migrate { from, to }, .. } => {
                crate::migrate::migrate(&from, &to).await
            }
            Command::State { config: None, .. } => {
                Err(crate::exit::Failure::config("state: say which config: tillflow state --config F <action>"))
            }
            Command::State { config: Some(config), action } => match action {
                StateAction::Reset { pipeline } => commands::state_reset(&config, &pipeline).await,
                StateAction::Check => commands::state_check(&config).await,
                StateAction::Migrate { .. } => unreachable!("migrate needs no config and is matched above"),
            },
        }
    });
    // Background tasks (server, signal handler) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("tillflow: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
