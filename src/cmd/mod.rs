//! The commands. [`run`] is the table of contents: each command is one
//! line here and one module below; the flags were turned into settings by
//! [`settings`] before any of them runs.
//!
//! - [`cli`]: the command line as typed.
//! - [`sources`]: the command line parsed, with the environment and
//!   `--config` behind it; where each setting came from.
//! - [`settings`]: raw flags become validated settings.
//! - [`error`]: the one error type and the exit codes.
//! - [`audit`]: the `run` command.
//! - [`check`]: the `check` command.
//! - [`inspect`]: `verify` and `diff`.
//! - [`plan`]: `run --dry-run`, the plan printed.
//! - [`simulator`]: `simulate` and `demo` (feature `simulator`).
//! - [`metrics`]: the end of `run` for machines: `--metrics-file`, `--json`.
//! - [`notify`]: the end of `run` for people: `--notify` webhooks.
//! - [`progress`]: the progress display.
//! - [`prune`]: the `prune` command (retention).
//! - [`listing`]: `list-images`, and the listing phase of `run --all-images`.

pub(crate) mod audit;
pub(crate) mod check;
pub mod cli;
pub mod error;
pub(crate) mod inspect;
pub(crate) mod listing;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod notify;
pub(crate) mod plan;
pub(crate) mod progress;
pub(crate) mod prune;
pub(crate) mod settings;
pub(crate) mod signals;
#[cfg(feature = "simulator")]
pub(crate) mod simulator;
pub mod sources;
pub(crate) mod values;

use std::ffi::OsString;
use std::io::BufReader;

use cli::{Cli, Command};
use error::CmdResult;
use settings::{ApiTarget, RunSettings};

use crate::run::input::{read_ids_with, InputSource, ReadOptions};

/// Runs a parsed command line. `argv` is recorded in the manifest.
pub async fn run(cli: Cli, argv: Vec<String>) -> CmdResult {
    match cli.command {
        Command::Run(args) => {
            let settings = RunSettings::from_args(&args, argv).map_err(|e| args.sources.annotate(e))?;
            // The ids of a CSV are read now; --all-images lists them in the run.
            let ids = match &settings.input {
                InputSource::AllImages(_) => None,
                source => {
                    let reader = BufReader::with_capacity(256 * 1024, source.open()?);
                    let options =
                        ReadOptions { id_column: settings.id_column.as_deref(), delimiter: settings.reading.delimiter };
                    let ids = read_ids_with(reader, &source.display(), &options)?;
                    settings.reading.max_rejected.check(&ids, &source.display())?;
                    Some(ids)
                }
            };
            let target = ApiTarget::resolve(&args.api).map_err(|e| args.sources.annotate(e))?;
            if settings.reading.dry_run {
                return plan::print_plan(&settings, ids.as_ref(), &target, &args.sources);
            }
            let stop = crate::run::stop::StopHandle::default();
            let phase = signals::Phase::default();
            signals::spawn_signal_listener(stop.clone(), phase.clone());
            audit::run_audit(&settings, ids, target, stop, phase).await
        }
        Command::Check(args) => check::check(&args).await.map_err(|e| args.sources.annotate(e)),
        Command::Verify(args) => inspect::verify(&args),
        Command::Diff(args) => inspect::diff(&args),
        Command::Prune(args) => prune::prune(&args),
        Command::ListImages(args) => listing::list_images(&args).await,
        #[cfg(feature = "simulator")]
        Command::Simulate(args) => simulator::simulate(&args).await,
        #[cfg(feature = "simulator")]
        Command::Demo(args) => simulator::demo(&args, argv).await,
    }
}

/// The command line as the manifest records it: each argument as text, a
/// non-UTF-8 one with its bad bytes replaced (clap has refused any such
/// argument whose value the tool uses as text).
pub fn argv_text(args: &[OsString]) -> Vec<String> {
    args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
}
