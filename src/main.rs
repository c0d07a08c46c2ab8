//! The binary: parse, set up logging, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use vod_image_audit::cmd;
use vod_image_audit::cmd::cli::{Cli, Command};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // An audit is I/O waiting on a quota: one thread drives every call,
    // its connection and the journal, with no wake-ups across threads
    // (measured: about a quarter less CPU per call than a thread pool).
    // The simulator, and the demo that runs one in-process beside the
    // audit, serve many connections and get a worker per core.
    let serves = matches!(cli.command, Command::Simulate(_) | Command::Demo(_));
    let mut builder = match serves {
        true => tokio::runtime::Builder::new_multi_thread(),
        false => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vod-image-audit: cannot start the async runtime: {e}");
            return ExitCode::from(cmd::EXIT_INTERNAL);
        }
    };
    match runtime.block_on(cmd::run(cli, argv)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("vod-image-audit: error: {e:#}");
            ExitCode::from(cmd::exit_code_for(&e))
        }
    }
}
