//! The binary: parse, set up logging, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use vod_image_audit::{app, cli::Cli};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vod-image-audit: cannot start the async runtime: {e}");
            return ExitCode::from(app::EXIT_INTERNAL);
        }
    };
    match runtime.block_on(app::run(cli, argv)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("vod-image-audit: error: {e:#}");
            ExitCode::from(app::exit_code_for(&e))
        }
    }
}
