//! The audit engine: every id through one rate limiter and a bounded number
//! of concurrent calls, retried by the policy, settled as an [`Outcome`].
//!
//! Owns the pipeline (`buffer_unordered` feeding one consumer), the shared
//! pause that honours server hints, the stop switch for fatal errors and
//! signals, and the live counters. It does not read input or write reports;
//! the consumer hands each outcome to a caller-supplied sink (the progress
//! display, the journal) and returns them all at the end.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::rate::{RateControl, RateMode};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::api_error::{ApiError, ErrorClass};
use crate::client::VodClient;
use crate::outcome::{FailureInfo, Outcome};
use crate::retry::{Decision, RetryPolicy};

/// Calls per second when `--qps` is not given: a fifth of GetImageInfo's
/// ~100 calls/s per-account quota, which production traffic shares.
pub const DEFAULT_QPS: u32 = 20;

/// Calls in flight when `--concurrency` is not given: enough to keep 100
/// calls/s busy at 150 ms per call, few enough to be polite.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Calls the limiter lets through at once. Kept at one: Alibaba enforces
/// some quotas per minute, and a burst bought now is a throttled tail later.
pub const DEFAULT_BURST: u32 = 1;

/// Retry tokens a run starts with (AWS standard retry mode's 500).
pub const RETRY_BUDGET: i64 = 500;
/// Tokens a retry after a 5xx or reset costs.
pub const RETRY_COST: i64 = 1;
/// Tokens a retry after a timeout costs: a timeout ties up a slot for long.
pub const TIMEOUT_RETRY_COST: i64 = 2;
/// Tokens a success gives back. With retries costing about as much, a
/// service failing under half its calls never drains the budget, and one
/// failing every call drains it after ~500 retries: the run stops early
/// instead of retrying every id. Throttling does not spend tokens: it is
/// handled by backoff and is not an outage.
pub const SUCCESS_REFUND: i64 = 1;

/// Ids settled before `--max-failures P%` is judged: S3 Batch Operations
/// waits for 1,000 tasks before applying its failure threshold.
pub const MIN_IDS_FOR_FAILURE_RATIO: u64 = 1000;

/// `--max-failures`: stop when failed ids pass this.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FailureLimit {
    /// More than this many failed ids.
    Count(u64),
    /// More than this percentage of settled ids, once
    /// [`MIN_IDS_FOR_FAILURE_RATIO`] are settled.
    Percent(f64),
}

impl FailureLimit {
    /// Parses `N` or `P%`.
    pub fn parse(text: &str) -> Result<Self, String> {
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
    pub fn exceeded(&self, failed: u64, settled: u64) -> bool {
        match *self {
            FailureLimit::Count(n) => failed > n,
            FailureLimit::Percent(p) => {
                settled >= MIN_IDS_FOR_FAILURE_RATIO && failed as f64 * 100.0 > p * settled as f64
            }
        }
    }
}

/// Settings of one audit.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub qps: NonZeroU32,
    pub rate_mode: RateMode,
    pub burst: NonZeroU32,
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub max_failures: Option<FailureLimit>,
}

/// The run-wide retry budget, in the style of AWS's standard retry mode.
#[derive(Debug)]
pub struct RetryBudget(AtomicI64);

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget(AtomicI64::new(RETRY_BUDGET))
    }
}

impl RetryBudget {
    /// Takes `cost` tokens; false (and nothing taken) if there are not enough.
    pub fn try_spend(&self, cost: i64) -> bool {
        self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| (t >= cost).then_some(t - cost)).is_ok()
    }

    /// Gives tokens back, up to the starting amount.
    pub fn refund(&self, n: i64) {
        let _ = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some((t + n).min(RETRY_BUDGET)));
    }
}

/// Live counters, shared by the tasks and read by the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    /// Calls sent (every attempt).
    pub calls: AtomicU64,
    /// Answers that were `Throttling*`.
    pub throttled: AtomicU64,
    /// Retries scheduled.
    pub retries: AtomicU64,
}

/// Why a run stopped before settling every id.
#[derive(Debug, Clone)]
pub enum StopReason {
    /// An error that every further call would repeat.
    Fatal(ApiError),
    /// SIGINT or SIGTERM.
    Interrupted,
    /// The retry budget ran out: the service keeps failing.
    RetryBudget(ApiError),
    /// `--max-failures` was passed.
    TooManyFailures { failed: u64, settled: u64 },
    /// The journal could not be written.
    Storage(String),
}

impl StopReason {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            StopReason::Fatal(e) => format!("stopped by a fatal API error: {e}; {}", e.advice()),
            StopReason::Interrupted => "interrupted by a signal".to_owned(),
            StopReason::RetryBudget(e) => format!(
                "the retry budget ran out ({RETRY_BUDGET} retries' worth, last error {e}): the service keeps failing; run the same command later to resume"
            ),
            StopReason::TooManyFailures { failed, settled } => {
                format!("--max-failures passed: {failed} of {settled} settled ids failed")
            }
            StopReason::Storage(e) => format!("the journal could not be written: {e}"),
        }
    }
}

/// A handle to stop a running audit from outside (signals).
#[derive(Clone, Default)]
pub struct StopHandle {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl StopHandle {
    /// Stops new calls; calls in flight finish. The first reason wins.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Why it stopped, if it did.
    pub fn reason(&self) -> Option<StopReason> {
        self.reason.get().cloned()
    }

    fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// A pause every task honours before its next call: the server's
/// `x-acs-retry-after` / `TimeLeft` hint applies to the account, not to the
/// one call that received it.
#[derive(Default)]
struct Pause(Mutex<Option<Instant>>);

impl Pause {
    fn extend(&self, until: Instant) {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }

    fn until(&self) -> Option<Instant> {
        let p = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        p.filter(|t| *t > Instant::now())
    }
}

struct Shared<'a> {
    client: &'a VodClient,
    rate: RateControl,
    policy: RetryPolicy,
    counters: Arc<Counters>,
    stop: StopHandle,
    pause: Pause,
    budget: RetryBudget,
}

/// Audits `ids`, handing each outcome to `sink` as it settles (in completion
/// order); nothing is kept here, so memory does not grow with the number of
/// ids. Ids left when the run stops are handed over as not attempted, so
/// every id is accounted for. A sink error (the journal cannot be written)
/// stops the run.
pub async fn audit(
    client: &VodClient,
    ids: impl IntoIterator<Item = String>,
    settings: &AuditSettings,
    counters: Arc<Counters>,
    stop: StopHandle,
    mut sink: impl FnMut(Outcome) -> Result<(), String>,
) {
    let shared = Shared {
        client,
        rate: RateControl::new(settings.rate_mode, settings.qps, settings.burst),
        policy: settings.retry,
        counters,
        stop,
        pause: Pause::default(),
        budget: RetryBudget::default(),
    };
    let shared = &shared;
    let mut stream =
        futures::stream::iter(ids).map(|id| audit_one(shared, id)).buffer_unordered(settings.concurrency.max(1));
    let (mut failed, mut settled) = (0u64, 0u64);
    while let Some(outcome) = stream.next().await {
        if !outcome.cut_short {
            settled += 1;
            failed += u64::from(outcome.kind == crate::outcome::OutcomeKind::Failed);
            if let Some(limit) = settings.max_failures {
                if limit.exceeded(failed, settled) {
                    shared.stop.stop(StopReason::TooManyFailures { failed, settled });
                }
            }
        }
        if let Err(e) = sink(outcome) {
            shared.stop.stop(StopReason::Storage(e));
        }
    }
}

async fn audit_one(s: &Shared<'_>, id: String) -> Outcome {
    let mut attempts = 0u32;
    let (mut throttles, mut transients) = (0u32, 0u32);
    let mut last: Option<ApiError> = None;
    loop {
        if s.stop.is_stopped() {
            return stopped(id, attempts, last, &s.stop);
        }
        if let Some(until) = s.pause.until() {
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = s.stop.token.cancelled() => return stopped(id, attempts, last, &s.stop),
            }
        }
        tokio::select! {
            _ = s.rate.until_ready() => {}
            _ = s.stop.token.cancelled() => return stopped(id, attempts, last, &s.stop),
        }
        attempts += 1;
        s.counters.calls.fetch_add(1, Ordering::Relaxed);
        let answer = s.client.get_image_info(&id).await;
        let throttled = matches!(&answer, Err(e) if e.class == ErrorClass::Throttled);
        if let Some(pause) = s.rate.on_answer(throttled) {
            s.pause.extend(Instant::now() + pause);
        }
        let err = match answer {
            Ok(found) => {
                s.budget.refund(SUCCESS_REFUND);
                return Outcome::found(id, found.info, attempts, found.request_id);
            }
            Err(e) if e.class == ErrorClass::Missing => {
                s.budget.refund(SUCCESS_REFUND);
                e
            }
            Err(e) => e,
        };
        let failures = match err.class {
            ErrorClass::Throttled => {
                s.counters.throttled.fetch_add(1, Ordering::Relaxed);
                if let Some(hint) = err.retry_after {
                    s.pause.extend(Instant::now() + hint.min(crate::retry::MAX_HINT));
                }
                throttles += 1;
                throttles
            }
            ErrorClass::Transient => {
                transients += 1;
                transients
            }
            _ => attempts,
        };
        match s.policy.decide(err.class, failures, err.retry_after, rand::random::<f64>()) {
            Decision::Stop if err.class == ErrorClass::Missing => {
                return Outcome::missing(id, attempts, err.request_id);
            }
            Decision::Stop => return Outcome::failed(id, attempts, FailureInfo::from(&err)),
            Decision::AbortRun => {
                tracing::error!("{err}: {}", err.advice());
                s.stop.stop(StopReason::Fatal(err.clone()));
                // The error is about the key or the clock, not this id.
                return Outcome { cut_short: true, ..Outcome::failed(id, attempts, FailureInfo::from(&err)) };
            }
            Decision::RetryAfter(_) if err.class == ErrorClass::Transient && !s.budget.try_spend(retry_cost(&err)) => {
                s.stop.stop(StopReason::RetryBudget(err.clone()));
                return stopped(id, attempts, Some(err), &s.stop);
            }
            Decision::RetryAfter(wait) => {
                tracing::debug!(image_id = %id, attempt = attempts, ?wait, "retrying after {err}");
                s.counters.retries.fetch_add(1, Ordering::Relaxed);
                last = Some(err);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = s.stop.token.cancelled() => return stopped(id, attempts, last, &s.stop),
                }
            }
        }
    }
}

fn retry_cost(e: &ApiError) -> i64 {
    if e.code == "Timeout" {
        TIMEOUT_RETRY_COST
    } else {
        RETRY_COST
    }
}

fn stopped(id: String, attempts: u32, last: Option<ApiError>, stop: &StopHandle) -> Outcome {
    let why = stop.reason().map(|r| r.describe()).unwrap_or_else(|| "the run stopped".to_owned());
    match last {
        Some(e) => {
            let mut f = FailureInfo::from(&e);
            f.message = format!("{} (not retried: {why})", f.message);
            Outcome { cut_short: true, ..Outcome::failed(id, attempts, f) }
        }
        None => Outcome::not_attempted(id, &why),
    }
}

/// Calls per second over an elapsed time, for progress lines.
pub fn rate(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
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
