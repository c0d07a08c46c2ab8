//! Progress on stderr: an `indicatif` bar on a terminal, a status line every
//! few seconds elsewhere (cron), nothing with `--quiet`.
//!
//! Owned by the audit's single consumer, so its tallies need no locks; the
//! call counters it shows are the engine's atomics.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::record::OutcomeKind;
use crate::run::engine::{rate, Counters};
use crate::run::outcome::Outcome;

/// How often the plain status line is printed off a terminal.
pub const STATUS_EVERY: Duration = Duration::from_secs(10);

/// When to draw progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar on a terminal, status lines elsewhere.
    Auto,
    /// A bar, terminal or not.
    Always,
    /// Nothing.
    Never,
}

/// Tallies of settled ids.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub found: u64,
    pub missing: u64,
    pub failed: u64,
    pub not_attempted: u64,
}

enum Display {
    Bar(ProgressBar),
    Lines { last: Instant },
    Silent,
}

/// The progress display of one run.
pub struct Progress {
    display: Display,
    total: u64,
    started: Instant,
    counters: Arc<Counters>,
    tally: Tally,
}

impl Progress {
    /// Chooses the display: a bar when asked or when stderr is a terminal,
    /// status lines otherwise, nothing when quiet.
    pub fn new(total: u64, mode: ProgressMode, quiet: bool, counters: Arc<Counters>) -> Self {
        let tty = std::io::stderr().is_terminal();
        let display = if quiet || mode == ProgressMode::Never {
            Display::Silent
        } else if mode == ProgressMode::Always || tty {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} eta {eta} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Display::Bar(bar)
        } else {
            Display::Lines { last: Instant::now() }
        };
        Progress { display, total, started: Instant::now(), counters, tally: Tally::default() }
    }

    /// Counts a settled id and refreshes the display.
    pub fn record(&mut self, o: &Outcome) {
        match o.kind {
            OutcomeKind::Found => self.tally.found += 1,
            OutcomeKind::Missing => self.tally.missing += 1,
            OutcomeKind::Failed => self.tally.failed += 1,
            OutcomeKind::NotAttempted => self.tally.not_attempted += 1,
        }
        match &self.display {
            Display::Bar(bar) => {
                bar.inc(1);
                bar.set_message(self.counts());
            }
            Display::Lines { last } if last.elapsed() >= STATUS_EVERY => {
                let line = self.line();
                self.display = Display::Lines { last: Instant::now() };
                eprintln!("vod-image-audit: {line}");
            }
            _ => {}
        }
    }

    fn done(&self) -> u64 {
        self.tally.found + self.tally.missing + self.tally.failed
    }

    fn counts(&self) -> String {
        format!(
            "found {} missing {} failed {} throttled {}",
            self.tally.found,
            self.tally.missing,
            self.tally.failed,
            self.counters.throttled.load(Ordering::Relaxed)
        )
    }

    /// One status line: done/total, rate, ETA and the tallies.
    pub fn line(&self) -> String {
        let elapsed = self.started.elapsed();
        let per_sec = rate(self.done(), elapsed);
        let left = self.total.saturating_sub(self.done());
        let eta = if per_sec > 0.0 { format!("{:.0}s", left as f64 / per_sec) } else { "?".to_owned() };
        format!(
            "{}/{} ids ({:.1}%), {:.1} ids/s, eta {eta}, {}",
            self.done(),
            self.total,
            if self.total > 0 { self.done() as f64 * 100.0 / self.total as f64 } else { 100.0 },
            per_sec,
            self.counts()
        )
    }

    /// Clears the bar. The caller prints the final summary.
    pub fn finish(&self) {
        if let Display::Bar(bar) = &self.display {
            bar.finish_and_clear();
        }
    }

    /// Whether anything but errors may be printed.
    pub fn is_silent(&self) -> bool {
        matches!(self.display, Display::Silent)
    }
}
