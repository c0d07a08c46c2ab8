//! The binary: parse, set up logging, run, map the result to an exit code.

use std::process::ExitCode;

use vod_image_audit::cmd::{self, error::Exit};

fn main() -> ExitCode {
    // args_os: one non-UTF-8 argument is clap's clear error, never a panic.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The flags, with VOD_IMAGE_AUDIT_<FLAG> and --config behind them.
    let cli = match cmd::sources::parse(&args) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("vod-image-audit: error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    cmd::logging::init(cli.verbose, cli.quiet());
    // An audit is I/O waiting on a quota: one thread drives every call and
    // its connection, with no wake-ups across threads (measured: about a
    // quarter less CPU per call than a thread pool); the journal and the
    // reports have threads of their own. The simulator, and the demo that
    // runs one in-process beside the audit, get a worker per core.
    let builder = match cli.command.serves() {
        true => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        false => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let runtime = match builder {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vod-image-audit: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Internal.code());
        }
    };
    match runtime.block_on(cmd::run(cli, cmd::argv_text(&args))) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => {
            eprintln!("vod-image-audit: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
