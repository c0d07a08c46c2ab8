//! What the tool says on stderr through `tracing`: every event as the tool's
//! own line (`vod-image-audit: warning: ...`), never a timestamped line with
//! a module path, so a cron log reads one way. Owns the level: warnings by
//! default, none but errors under `--quiet` (a run that ended well prints
//! nothing), `-v` info, `-vv` debug; `RUST_LOG`, when set, decides instead.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The filter for `-v` given `verbose` times, or `--quiet`.
pub fn default_filter(verbose: u8, quiet: bool) -> &'static str {
    match (verbose, quiet) {
        (0, true) => "error",
        (0, false) => "warn",
        (1, _) => "info",
        _ => "debug",
    }
}

/// The word a line of this level starts with, after `vod-image-audit: `.
fn level_word(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// `vod-image-audit: LEVEL: message fields`.
struct ToolLine;

impl<S, N> FormatEvent<S, N> for ToolLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write!(w, "vod-image-audit: {}: ", level_word(*event.metadata().level()))?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Installs the subscriber for the process (the binary calls it once).
pub fn init(verbose: u8, quiet: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter(verbose, quiet).into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(ToolLine)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_shows_errors_only_and_each_v_shows_more() {
        assert_eq!(default_filter(0, false), "warn");
        assert_eq!(default_filter(0, true), "error");
        assert_eq!(default_filter(1, false), "info");
        assert_eq!(default_filter(1, true), "info", "-v is asked for: it wins over --quiet");
        assert_eq!(default_filter(2, false), "debug");
        assert_eq!(default_filter(5, false), "debug");
    }
}
