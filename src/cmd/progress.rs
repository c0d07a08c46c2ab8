//! Progress on stderr: an `indicatif` bar on a terminal, a status line every
//! few seconds elsewhere (cron), nothing with `--quiet`.
//!
//! Fed by the audit's single consumer, which owns its tallies; the call
//! counters it shows are the engine's atomics. A ticker refreshes it while
//! no id settles, so a run held back by throttling says so, and for how
//! long, instead of going quiet.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::domain::record::OutcomeKind;
use crate::run::counters::{rate, Counters};
use crate::run::outcome::Outcome;

/// How often the plain status line is printed off a terminal.
pub(crate) const STATUS_EVERY: Duration = Duration::from_secs(10);

/// How often the ticker refreshes the display while no id settles: the
/// waiting time it shows counts in seconds.
const TICK_EVERY: Duration = Duration::from_secs(1);

/// How long every answer must have been a throttle before the display says
/// the run is waiting on throttling: one quota window (quotas count per
/// second, vod-openapi.md §5). Shorter stretches come and go with every
/// window a run at the quota fills.
pub(crate) const WAITING_SHOWN_AFTER: Duration = Duration::from_secs(1);

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
pub(crate) struct Tally {
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

/// What the display shows, shared by the consumer and the ticker.
struct State {
    display: Display,
    total: u64,
    started: Instant,
    counters: Arc<Counters>,
    tally: Tally,
}

/// A rate as the bar shows it: one decimal, thousands separated
/// (`1,473.8/s`; indicatif's own `{per_sec}` shows four decimals).
pub(crate) fn rate_text(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec < 0.0 {
        return "?/s".to_owned();
    }
    let tenths = (per_sec * 10.0).round() as u64;
    let whole = (tenths / 10).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}.{}/s", tenths % 10)
}

/// The progress display of one run.
pub(crate) struct Progress {
    state: Arc<Mutex<State>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Chooses the display: a bar when asked or when stderr is a terminal,
    /// status lines otherwise, nothing when quiet.
    pub(crate) fn new(total: u64, mode: ProgressMode, quiet: bool, counters: Arc<Counters>) -> Self {
        let tty = std::io::stderr().is_terminal();
        let display = if quiet || mode == ProgressMode::Never {
            Display::Silent
        } else if mode == ProgressMode::Always || tty {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {rate} eta {eta} {msg}")
                    .map(|style| {
                        style.with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = w.write_str(&rate_text(s.per_sec()));
                        })
                    })
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Display::Bar(bar)
        } else {
            Display::Lines { last: Instant::now() }
        };
        let state = State { display, total, started: Instant::now(), counters, tally: Tally::default() };
        Progress { state: Arc::new(Mutex::new(state)), ticker: None }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refreshes the display once a second until [`Progress::finish`], also
    /// while no id settles. Needs the runtime; nothing to do when silent.
    pub(crate) fn start_ticker(&mut self) {
        if self.is_silent() || self.ticker.is_some() {
            return;
        }
        let state = self.state.clone();
        self.ticker = Some(tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                state.lock().unwrap_or_else(|e| e.into_inner()).refresh();
            }
        }));
    }

    /// Counts a settled id and refreshes the display.
    pub(crate) fn record(&mut self, o: &Outcome) {
        let mut s = self.state();
        match o.kind {
            OutcomeKind::Found => s.tally.found += 1,
            OutcomeKind::Missing => s.tally.missing += 1,
            OutcomeKind::Failed => s.tally.failed += 1,
            OutcomeKind::NotAttempted => s.tally.not_attempted += 1,
        }
        if let Display::Bar(bar) = &s.display {
            bar.inc(1);
        }
        s.refresh();
    }

    /// Stops the ticker and clears the bar. The caller prints the final
    /// summary.
    pub(crate) fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Display::Bar(bar) = &self.state().display {
            bar.finish_and_clear();
        }
    }

    /// Whether anything but errors may be printed.
    pub(crate) fn is_silent(&self) -> bool {
        matches!(self.state().display, Display::Silent)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}

impl State {
    /// The bar's message, or a status line when one is due.
    fn refresh(&mut self) {
        let now = Instant::now();
        match &self.display {
            Display::Bar(bar) => bar.set_message(self.counts(now)),
            Display::Lines { last } if now.saturating_duration_since(*last) >= STATUS_EVERY => {
                let line = self.line(now);
                self.display = Display::Lines { last: now };
                eprintln!("vod-image-audit: {line}");
            }
            _ => {}
        }
    }

    fn done(&self) -> u64 {
        self.tally.found + self.tally.missing + self.tally.failed
    }

    fn counts(&self, now: Instant) -> String {
        let waiting = match self.counters.throttling.since().map(|t| now.saturating_duration_since(t)) {
            Some(d) if d >= WAITING_SHOWN_AFTER => format!(
                ", waiting on throttling for {} (every answer throttled since)",
                humantime::format_duration(Duration::from_secs(d.as_secs()))
            ),
            _ => String::new(),
        };
        format!(
            "found {} missing {} failed {} throttled {}{waiting}",
            self.tally.found,
            self.tally.missing,
            self.tally.failed,
            self.counters.throttled.load(Ordering::Relaxed)
        )
    }

    /// One status line: done/total, rate, ETA, the tallies, and how long
    /// the run has been waiting on throttling, if it has.
    fn line(&self, now: Instant) -> String {
        let elapsed = now.saturating_duration_since(self.started);
        let per_sec = rate(self.done(), elapsed);
        let left = self.total.saturating_sub(self.done());
        let eta = if per_sec > 0.0 { format!("{:.0}s", left as f64 / per_sec) } else { "?".to_owned() };
        format!(
            "{}/{} ids ({:.1}%), {:.1} ids/s, eta {eta}, {}",
            self.done(),
            self.total,
            if self.total > 0 { self.done() as f64 * 100.0 / self.total as f64 } else { 100.0 },
            per_sec,
            self.counts(now)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_rates_rounded_to_a_tenth_with_thousands_separated() {
        assert_eq!(rate_text(1473.7669), "1,473.8/s");
        assert_eq!(rate_text(0.04), "0.0/s");
        assert_eq!(rate_text(19.96), "20.0/s");
        assert_eq!(rate_text(1_234_567.0), "1,234,567.0/s");
        assert_eq!(rate_text(f64::NAN), "?/s");
    }

    fn line(p: &Progress) -> String {
        p.state().line(Instant::now())
    }

    fn throttled_for(counters: &Counters, secs: u64) {
        let ago = Instant::now().checked_sub(Duration::from_secs(secs)).expect("the clock runs that long");
        counters.throttling.throttled(ago);
    }

    #[test]
    fn the_status_line_says_how_long_the_run_has_waited_on_throttling() {
        let counters = Arc::new(Counters::default());
        let p = Progress::new(10, ProgressMode::Never, false, counters.clone());
        assert!(!line(&p).contains("waiting"), "{}", line(&p));
        throttled_for(&counters, 95);
        counters.throttled.fetch_add(3, Ordering::Relaxed);
        let shown = line(&p);
        assert!(shown.contains("throttled 3, waiting on throttling for 1m 35s"), "{shown}");
    }

    #[test]
    fn a_throttle_shorter_than_a_quota_window_is_not_called_waiting() {
        let counters = Arc::new(Counters::default());
        let p = Progress::new(10, ProgressMode::Never, false, counters.clone());
        counters.throttling.throttled(Instant::now());
        assert!(!line(&p).contains("waiting"), "{}", line(&p));
    }
}
