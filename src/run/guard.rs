//! The run's guards against a service that keeps failing, each a small
//! piece of state shared by the calls: the retry budget, the pause that
//! honours a server's hint, the outage clock, the throttle clock, and
//! `--max-failures`.
//!
//! Each call's retries ([`super::call`]) consult them, the engine
//! `--max-failures`; the numbers and their reasons live here, next to the
//! unit tests that pin them.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Retry tokens a run starts with (AWS standard retry mode's 500).
pub(crate) const RETRY_BUDGET: i64 = 500;
/// Tokens a retry after a 5xx or reset costs.
pub(crate) const RETRY_COST: i64 = 1;
/// Tokens a retry after a timeout costs: a timeout ties up a slot for long.
pub(crate) const TIMEOUT_RETRY_COST: i64 = 2;
/// Tokens a success gives back. With retries costing about as much, a
/// service failing under half its calls never drains the budget, and one
/// failing every call drains it after ~500 retries: the run stops early
/// instead of retrying every id. Throttling does not spend tokens: it is
/// handled by backoff and is not an outage.
pub(crate) const SUCCESS_REFUND: i64 = 1;

/// Transient failures in a row, across the whole run, with no success in
/// between, after which the service is taken to be failing as a whole (an
/// outage), not one id at a time. At a 50 % failure rate 50 in a row happen
/// once in 10^15 calls.
pub(crate) const FAILURES_IN_A_ROW: u64 = 50;

/// How long an outage may last before the run stops (exit 4, resumable),
/// when `--down-after` is not given. During an outage the whole run pauses
/// and probes, and its failures count neither against an id's attempts nor
/// against the retry budget, so a load balancer's failover or a restart of
/// the endpoint (seconds) costs no id; a minute of nothing but failures is
/// a real outage, better resumed later than waited out by a nightly job.
pub(crate) const DEFAULT_DOWN_AFTER: Duration = Duration::from_secs(60);

/// The shortest and longest pause during an outage: the pause grows with
/// the outage (1 s, then as long as it has lasted), and a call that fails in
/// it waits for the next, so a down service sees each call in flight at most
/// once a pause: about once a second at first, fewer later.
pub(crate) const OUTAGE_PAUSE_MIN: Duration = Duration::from_secs(1);
pub(crate) const OUTAGE_PAUSE_MAX: Duration = Duration::from_secs(10);

/// Ids settled before `--max-failures P%` is judged: S3 Batch Operations
/// waits for 1,000 tasks before applying its failure threshold.
pub(crate) const MIN_IDS_FOR_FAILURE_RATIO: u64 = 1000;

/// `--max-failures`: stop when failed ids pass this.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FailureLimit {
    /// More than this many failed ids.
    Count(u64),
    /// More than this percentage of settled ids, once
    /// [`MIN_IDS_FOR_FAILURE_RATIO`] are settled.
    Percent(f64),
}

impl FailureLimit {
    /// Parses `N` or `P%`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| format!("{text:?} is not a percentage like 5%"))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("{text:?}: a percentage is between 0% and 100%"));
            }
            Ok(FailureLimit::Percent(p))
        } else {
            t.parse()
                .map(FailureLimit::Count)
                .map_err(|_| format!("{text:?} is neither a count like 50 nor a percentage like 5%"))
        }
    }

    /// Whether `failed` of `settled` ids passes the limit.
    pub(crate) fn exceeded(&self, failed: u64, settled: u64) -> bool {
        match *self {
            FailureLimit::Count(n) => failed > n,
            FailureLimit::Percent(p) => {
                settled >= MIN_IDS_FOR_FAILURE_RATIO && failed as f64 * 100.0 > p * settled as f64
            }
        }
    }
}

/// The run-wide retry budget, in the style of AWS's standard retry mode.
#[derive(Debug)]
pub(crate) struct RetryBudget(AtomicI64);

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget(AtomicI64::new(RETRY_BUDGET))
    }
}

impl RetryBudget {
    /// Takes `cost` tokens; false (and nothing taken) if there are not enough.
    pub(crate) fn try_spend(&self, cost: i64) -> bool {
        self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| (t >= cost).then_some(t - cost)).is_ok()
    }

    /// Gives tokens back, up to the starting amount.
    pub(crate) fn refund(&self, n: i64) {
        let _ = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some((t + n).min(RETRY_BUDGET)));
    }
}

/// A pause every task honours before its next call: the server's
/// `x-acs-retry-after` / `TimeLeft` hint applies to the account, not to the
/// one call that received it.
#[derive(Default)]
pub(crate) struct Pause(Mutex<Option<Instant>>);

impl Pause {
    pub(crate) fn extend(&self, until: Instant) {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }

    pub(crate) fn until(&self) -> Option<Instant> {
        let p = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        p.filter(|t| *t > Instant::now())
    }
}

/// What a transient failure means during an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutageStep {
    /// Pause the whole run until then, and call again.
    PauseUntil(Instant),
    /// The outage has lasted this long, `--down-after` or more: stop.
    Down(Duration),
}

/// The outage clock: when the current run of failures in a row reached
/// [`FAILURES_IN_A_ROW`]. A success ends the outage.
#[derive(Default)]
pub(crate) struct Outage(Mutex<Option<Instant>>);

impl Outage {
    /// Notes a failure at `now`, with [`FAILURES_IN_A_ROW`] or more in a row.
    pub(crate) fn failure(&self, now: Instant, down_after: Duration) -> OutageStep {
        let since = *self.0.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| {
            tracing::warn!(
                "every call is failing ({FAILURES_IN_A_ROW} in a row): pausing the run and calling again now and then; it stops if this lasts {}",
                humantime::format_duration(down_after)
            );
            now
        });
        outage_step(since, now, down_after)
    }

    /// A call succeeded (or found a miss): the service answers again.
    pub(crate) fn answered(&self) {
        let mut o = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = o.take() {
            tracing::warn!("the service answers again after {:.1} s of failures", since.elapsed().as_secs_f64());
        }
    }
}

/// The throttle clock: since when every answer to a call sent since has
/// been a throttle. `--down-after` counts this time as it counts an outage's:
/// a quota used up by other traffic (or a hint asking for days) never ends
/// by waiting, and a nightly run had better stop resumably than run into
/// the morning. An answer that gets through stops the clock, unless its
/// call was sent before the throttling began: that says nothing about now.
/// Read by the progress display, to say how long the run has been waiting.
#[derive(Debug, Default)]
pub(crate) struct Throttling {
    /// Whether `since` holds a time: the path of every answer reads only this.
    running: AtomicBool,
    since: Mutex<Option<Instant>>,
}

impl Throttling {
    /// Notes a throttled answer at `now`; returns since when every answer
    /// has been a throttle (`now`, when the clock was not running).
    pub(crate) fn throttled(&self, now: Instant) -> Instant {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        let t = *since.get_or_insert(now);
        self.running.store(true, Ordering::Relaxed);
        t
    }

    /// A call sent at `sent` was answered (found or missing): if it was sent
    /// since the throttling began, the throttling has paused.
    pub(crate) fn answered(&self, sent: Instant) {
        if !self.running.load(Ordering::Relaxed) {
            return;
        }
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_some_and(|t| sent >= t) {
            *since = None;
            self.running.store(false, Ordering::Relaxed);
        }
    }

    /// Since when every answer has been a throttle, if it has.
    pub(crate) fn since(&self) -> Option<Instant> {
        if !self.running.load(Ordering::Relaxed) {
            return None;
        }
        *self.since.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a throttled answer means for the call that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThrottleStep {
    /// Wait until then (and look again).
    WaitUntil(Instant),
    /// Every answer has been a throttle for this long, `--down-after` or
    /// more: stop.
    Down(Duration),
}

/// After a throttled answer, with every answer a throttle `since`: stop
/// once that has lasted `down_after`; else wait `until` the call's backoff
/// and the server's hint end, but no later than the moment it would have
/// lasted `down_after`, so that a hint longer than that (the server may ask
/// for days) stops the run then instead of holding it silently. No call is
/// made before the hint ends.
pub(crate) fn throttle_step(since: Instant, now: Instant, until: Instant, down_after: Duration) -> ThrottleStep {
    let lasted = now.saturating_duration_since(since);
    if lasted >= down_after {
        return ThrottleStep::Down(lasted);
    }
    ThrottleStep::WaitUntil(until.min(since + down_after))
}

/// During an outage that started at `since`: stop once it has lasted
/// `down_after`, else pause for as long as it has lasted (within
/// [`OUTAGE_PAUSE_MIN`]..[`OUTAGE_PAUSE_MAX`]), but not past the moment it
/// would have lasted `down_after`, so that the last probe is made then.
pub(crate) fn outage_step(since: Instant, now: Instant, down_after: Duration) -> OutageStep {
    let lasted = now.saturating_duration_since(since);
    if lasted >= down_after {
        return OutageStep::Down(lasted);
    }
    let pause = lasted.clamp(OUTAGE_PAUSE_MIN, OUTAGE_PAUSE_MAX);
    OutageStep::PauseUntil((now + pause).min(since + down_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_limits() {
        assert_eq!(FailureLimit::parse("50").unwrap(), FailureLimit::Count(50));
        assert_eq!(FailureLimit::parse(" 2.5% ").unwrap(), FailureLimit::Percent(2.5));
        assert!(FailureLimit::parse("x").is_err());
        assert!(FailureLimit::parse("150%").is_err());
        assert!(!FailureLimit::Count(3).exceeded(3, 10));
        assert!(FailureLimit::Count(3).exceeded(4, 10));
        let p = FailureLimit::Percent(10.0);
        assert!(!p.exceeded(500, 999), "not judged before the minimum");
        assert!(p.exceeded(101, 1000));
        assert!(!p.exceeded(100, 1000));
    }

    #[test]
    fn an_outage_pauses_longer_as_it_lasts_and_stops_at_down_after() {
        let since = Instant::now();
        let at = |secs: u64| since + Duration::from_secs(secs);
        let minute = Duration::from_secs(60);
        // The pause is as long as the outage has lasted, within 1..10 s.
        assert_eq!(outage_step(since, at(0), minute), OutageStep::PauseUntil(at(1)));
        assert_eq!(outage_step(since, at(3), minute), OutageStep::PauseUntil(at(6)));
        assert_eq!(outage_step(since, at(30), minute), OutageStep::PauseUntil(at(40)));
        // The last probe is made when the outage would reach --down-after.
        assert_eq!(outage_step(since, at(55), minute), OutageStep::PauseUntil(at(60)));
        assert_eq!(outage_step(since, at(60), minute), OutageStep::Down(minute));
        assert_eq!(outage_step(since, at(75), minute), OutageStep::Down(Duration::from_secs(75)));
        // --down-after 0s: the first failure of an outage stops the run.
        assert_eq!(outage_step(since, since, Duration::ZERO), OutageStep::Down(Duration::ZERO));
    }

    #[test]
    fn an_outage_clock_starts_once_and_ends_with_an_answer() {
        let o = Outage::default();
        let since = Instant::now();
        let minute = Duration::from_secs(60);
        assert_eq!(o.failure(since, minute), OutageStep::PauseUntil(since + Duration::from_secs(1)));
        let later = since + Duration::from_secs(61);
        assert_eq!(o.failure(later, minute), OutageStep::Down(Duration::from_secs(61)), "timed from the first failure");
        o.answered();
        assert_eq!(o.failure(later, minute), OutageStep::PauseUntil(later + Duration::from_secs(1)), "a new outage");
    }

    #[test]
    fn a_throttle_waits_out_its_hint_but_stops_at_down_after() {
        let since = Instant::now();
        let at = |secs: u64| since + Duration::from_secs(secs);
        let minute = Duration::from_secs(60);
        // A hint within --down-after is waited out.
        assert_eq!(throttle_step(since, at(0), at(2), minute), ThrottleStep::WaitUntil(at(2)));
        assert_eq!(throttle_step(since, at(50), at(55), minute), ThrottleStep::WaitUntil(at(55)));
        // A hint past it (capped at 2 minutes, or days as sent) is waited
        // out until --down-after, then the run stops.
        assert_eq!(throttle_step(since, at(0), at(120), minute), ThrottleStep::WaitUntil(at(60)));
        assert_eq!(throttle_step(since, at(30), at(150), minute), ThrottleStep::WaitUntil(at(60)));
        assert_eq!(throttle_step(since, at(60), at(180), minute), ThrottleStep::Down(minute));
        assert_eq!(throttle_step(since, at(75), at(76), minute), ThrottleStep::Down(Duration::from_secs(75)));
        // --down-after 0s: the first throttled answer stops the run.
        assert_eq!(throttle_step(since, since, at(1), Duration::ZERO), ThrottleStep::Down(Duration::ZERO));
    }

    #[test]
    fn the_throttle_clock_runs_until_a_call_sent_since_gets_through() {
        let t = Throttling::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(t.since(), None);
        assert_eq!(t.throttled(at(10)), at(10));
        assert_eq!(t.throttled(at(500)), at(10), "timed from the first throttle");
        t.answered(at(5));
        assert_eq!(t.since(), Some(at(10)), "a call sent before the throttling began says nothing about it");
        t.answered(at(10));
        assert_eq!(t.since(), None, "a call sent since got through");
        assert_eq!(t.throttled(at(900)), at(900), "a new stretch");
    }

    #[test]
    fn budget_drains_on_a_dead_service_and_survives_a_flaky_one() {
        let b = RetryBudget::default();
        let mut retries = 0;
        while b.try_spend(RETRY_COST) {
            retries += 1;
        }
        assert_eq!(retries, RETRY_BUDGET);
        let b = RetryBudget::default();
        for i in 0..100_000 {
            // 40 % of calls fail and are retried, the rest succeed.
            if i % 5 < 2 {
                assert!(b.try_spend(RETRY_COST), "drained at call {i}");
            } else {
                b.refund(SUCCESS_REFUND);
            }
        }
    }
}
