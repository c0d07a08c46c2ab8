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

use crate::run::rate::{RateControl, RateMode};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::api::client::VodClient;
use crate::api::error::{ApiError, ErrorClass};
use crate::report::record::OutcomeKind;
use crate::run::outcome::{FailureInfo, Outcome};
use crate::run::retry::{Decision, RetryPolicy};

/// Calls per second when `--qps` is not given: a fifth of GetImageInfo's
/// ~100 calls/s per-account quota, which production traffic shares.
pub const DEFAULT_QPS: u32 = 20;

/// Calls in flight when `--concurrency` is not given: enough to keep 100
/// calls/s busy at 150 ms per call, few enough to be polite.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Calls the limiter lets through at once. Kept at one: Alibaba enforces
/// some quotas per minute, and a burst bought now is a throttled tail later.
/// (governor itself is given one more, only so that a call made up after a
/// late wake-up passes; the pacer in `rate` keeps the spacing.)
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

/// Transient failures in a row, across the whole run, with no success in
/// between, after which the service is taken to be failing as a whole (an
/// outage), not one id at a time. At a 50 % failure rate 50 in a row happen
/// once in 10^15 calls.
pub const FAILURES_IN_A_ROW: u64 = 50;

/// How long an outage may last before the run stops (exit 4, resumable),
/// when `--down-after` is not given. During an outage the whole run pauses
/// and probes, and its failures count neither against an id's attempts nor
/// against the retry budget, so a load balancer's failover or a restart of
/// the endpoint (seconds) costs no id; a minute of nothing but failures is
/// a real outage, better resumed later than waited out by a nightly job.
pub const DEFAULT_DOWN_AFTER: Duration = Duration::from_secs(60);

/// The shortest and longest pause during an outage: the pause grows with
/// the outage (1 s, then as long as it has lasted), and a call that fails in
/// it waits for the next, so a down service sees each call in flight at most
/// once a pause: about once a second at first, fewer later.
pub const OUTAGE_PAUSE_MIN: Duration = Duration::from_secs(1);
pub const OUTAGE_PAUSE_MAX: Duration = Duration::from_secs(10);

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
    pub api: ApiMode,
    pub qps: NonZeroU32,
    pub rate_mode: RateMode,
    pub burst: NonZeroU32,
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub max_failures: Option<FailureLimit>,
    /// `--down-after`: how long an outage ([`FAILURES_IN_A_ROW`] transient
    /// failures in a row, no success since) may last before the run stops.
    /// Zero stops at once.
    pub down_after: Duration,
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
    /// Batch answers without `AuditStatus`, asked again with `GetImageInfo`.
    pub batch_fallbacks: AtomicU64,
}

named_enum! {
    /// Which operation looks the ids up.
    pub enum ApiMode {
        /// `GetImageInfo`, one id per call.
        Single => "single",
        /// `GetImageInfos`, up to 20 ids per call, with `GetImageInfo` for
        /// images whose batch answer lacks `AuditStatus`.
        Batch => "batch",
    }
}

/// Why a run stopped before settling every id.
#[derive(Debug, Clone)]
pub enum StopReason {
    /// An error that every further call would repeat.
    Fatal(ApiError),
    /// SIGINT or SIGTERM.
    Interrupted,
    /// The retry budget ran out, or every recent call failed: the service
    /// keeps failing.
    RetryBudget(ApiError),
    /// Every call failed for `--down-after`: an outage that did not end.
    ServiceDown { last: ApiError, lasted: Duration },
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
            StopReason::ServiceDown { last, lasted } if lasted.as_secs() == 0 => format!(
                "the service looks down: {FAILURES_IN_A_ROW} calls in a row failed (last error {last}); run the same command later to resume"
            ),
            StopReason::ServiceDown { last, lasted } => format!(
                "the service looks down: every call failed for {} ({FAILURES_IN_A_ROW} or more in a row, last error {last}); run the same command later to resume",
                humantime::format_duration(Duration::from_secs(lasted.as_secs()))
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

/// What a transient failure means during an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageStep {
    /// Pause the whole run until then, and call again.
    PauseUntil(Instant),
    /// The outage has lasted this long, `--down-after` or more: stop.
    Down(Duration),
}

/// The outage clock: when the current run of failures in a row reached
/// [`FAILURES_IN_A_ROW`]. A success ends the outage.
#[derive(Default)]
struct Outage(Mutex<Option<Instant>>);

impl Outage {
    /// Notes a failure at `now`, with [`FAILURES_IN_A_ROW`] or more in a row.
    fn failure(&self, now: Instant, down_after: Duration) -> OutageStep {
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
    fn answered(&self) {
        let mut o = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = o.take() {
            tracing::warn!("the service answers again after {:.1} s of failures", since.elapsed().as_secs_f64());
        }
    }
}

/// During an outage that started at `since`: stop once it has lasted
/// `down_after`, else pause for as long as it has lasted (within
/// [`OUTAGE_PAUSE_MIN`]..[`OUTAGE_PAUSE_MAX`]), but not past the moment it
/// would have lasted `down_after`, so that the last probe is made then.
pub fn outage_step(since: Instant, now: Instant, down_after: Duration) -> OutageStep {
    let lasted = now.saturating_duration_since(since);
    if lasted >= down_after {
        return OutageStep::Down(lasted);
    }
    let pause = lasted.clamp(OUTAGE_PAUSE_MIN, OUTAGE_PAUSE_MAX);
    OutageStep::PauseUntil((now + pause).min(since + down_after))
}

struct Shared<'a> {
    client: &'a VodClient,
    rate: RateControl,
    policy: RetryPolicy,
    counters: Arc<Counters>,
    stop: StopHandle,
    pause: Pause,
    budget: RetryBudget,
    failures_in_a_row: AtomicU64,
    outage: Outage,
    down_after: Duration,
}

impl Shared<'_> {
    /// The service answered: the budget gets a token back and any outage ends.
    fn answered(&self) {
        self.budget.refund(SUCCESS_REFUND);
        if self.failures_in_a_row.swap(0, Ordering::Relaxed) >= FAILURES_IN_A_ROW {
            self.outage.answered();
        }
    }
}

/// Where settled outcomes go (the progress display, the journal). Awaited
/// by the one consumer of the calls, so a sink that waits (a full queue to
/// a slow disk) holds back new calls instead of letting memory grow.
pub trait Sink {
    /// Takes one outcome. An error (the journal cannot be written) stops
    /// the run.
    fn settle(&mut self, outcome: Outcome) -> impl std::future::Future<Output = Result<(), String>>;
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
    sink: &mut impl Sink,
) {
    let shared = Shared {
        client,
        rate: RateControl::new(settings.rate_mode, settings.qps, settings.burst),
        policy: settings.retry,
        counters,
        stop,
        pause: Pause::default(),
        budget: RetryBudget::default(),
        failures_in_a_row: AtomicU64::new(0),
        outage: Outage::default(),
        down_after: settings.down_after,
    };
    let shared = &shared;
    let per_call = match settings.api {
        ApiMode::Single => 1,
        ApiMode::Batch => crate::api::client::MAX_BATCH_IDS,
    };
    let mut stream = futures::stream::iter(ids)
        .chunks(per_call)
        .map(|chunk| async move {
            match settings.api {
                ApiMode::Single => {
                    let mut v = Vec::with_capacity(1);
                    for id in chunk {
                        v.push(audit_one(shared, id).await);
                    }
                    v
                }
                ApiMode::Batch => audit_batch(shared, chunk).await,
            }
        })
        .buffer_unordered(settings.concurrency.max(1))
        .flat_map(futures::stream::iter);
    let (mut failed, mut settled) = (0u64, 0u64);
    while let Some(outcome) = stream.next().await {
        if !outcome.cut_short {
            settled += 1;
            failed += u64::from(outcome.kind == OutcomeKind::Failed);
            if let Some(limit) = settings.max_failures {
                if limit.exceeded(failed, settled) {
                    shared.stop.stop(StopReason::TooManyFailures { failed, settled });
                }
            }
        }
        if let Err(e) = sink.settle(outcome).await {
            shared.stop.stop(StopReason::Storage(e));
        }
    }
}

/// How a call ended after its retries.
#[derive(Clone)]
enum Settled<T> {
    /// The call succeeded.
    Ok(T),
    /// A final error for these ids: a miss, a bad request, or retries used up.
    Final(ApiError),
    /// The run stopped first; the last error, if any, is kept.
    Stopped(Option<ApiError>),
    /// An error no retry can fix; the run is stopping.
    Fatal(ApiError),
}

/// One call with its retries: the pause, the limiter, the policy, the
/// budget and the counters, for single and batch calls alike. Returns how
/// it ended and how many calls were made.
async fn with_retries<T, F, Fut>(s: &Shared<'_>, label: &str, mut call: F) -> (Settled<T>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut attempts = 0u32;
    let (mut throttles, mut transients) = (0u32, 0u32);
    let mut last: Option<ApiError> = None;
    loop {
        if s.stop.is_stopped() {
            return (Settled::Stopped(last), attempts);
        }
        if let Some(until) = s.pause.until() {
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = s.stop.token.cancelled() => return (Settled::Stopped(last), attempts),
            }
        }
        tokio::select! {
            _ = s.rate.until_ready(|| s.pause.until()) => {}
            _ = s.stop.token.cancelled() => return (Settled::Stopped(last), attempts),
        }
        attempts += 1;
        s.counters.calls.fetch_add(1, Ordering::Relaxed);
        let answer = call().await;
        let throttled = matches!(&answer, Err(e) if e.class == ErrorClass::Throttled);
        if let Some(pause) = s.rate.on_answer(throttled) {
            s.pause.extend(Instant::now() + pause);
        }
        let err = match answer {
            Ok(v) => {
                s.answered();
                return (Settled::Ok(v), attempts);
            }
            Err(e) if e.class == ErrorClass::Missing => {
                s.answered();
                return (Settled::Final(e), attempts);
            }
            Err(e) => e,
        };
        if err.class == ErrorClass::Transient
            && s.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= FAILURES_IN_A_ROW
        {
            // An outage: the service, not this id, is failing. Its failures
            // spend neither this id's attempts nor the retry budget.
            match s.outage.failure(Instant::now(), s.down_after) {
                OutageStep::Down(lasted) => {
                    s.stop.stop(StopReason::ServiceDown { last: err.clone(), lasted });
                    return (Settled::Stopped(Some(err)), attempts);
                }
                OutageStep::PauseUntil(until) => {
                    tracing::debug!(call = label, pause = ?until.saturating_duration_since(Instant::now()), "outage: {err}");
                    s.pause.extend(until);
                    s.counters.retries.fetch_add(1, Ordering::Relaxed);
                    last = Some(err);
                    continue;
                }
            }
        }
        let failures = match err.class {
            ErrorClass::Throttled => {
                s.counters.throttled.fetch_add(1, Ordering::Relaxed);
                if let Some(hint) = err.retry_after {
                    s.pause.extend(Instant::now() + hint.min(crate::run::retry::MAX_HINT));
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
            Decision::Stop => return (Settled::Final(err), attempts),
            Decision::AbortRun => {
                tracing::error!("{err}: {}", err.advice());
                s.stop.stop(StopReason::Fatal(err.clone()));
                return (Settled::Fatal(err), attempts);
            }
            Decision::RetryAfter(_) if err.class == ErrorClass::Transient && !s.budget.try_spend(retry_cost(&err)) => {
                s.stop.stop(StopReason::RetryBudget(err.clone()));
                return (Settled::Stopped(Some(err)), attempts);
            }
            Decision::RetryAfter(wait) => {
                tracing::debug!(call = label, attempt = attempts, ?wait, "retrying after {err}");
                s.counters.retries.fetch_add(1, Ordering::Relaxed);
                last = Some(err);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = s.stop.token.cancelled() => return (Settled::Stopped(last), attempts),
                }
            }
        }
    }
}

/// The outcome of an id whose call ended in an error or a stop.
fn unsettled(s: &Shared<'_>, id: String, attempts: u32, end: Settled<()>) -> Outcome {
    match end {
        Settled::Ok(()) => unreachable!("only errors and stops come here"),
        Settled::Final(e) if e.class == ErrorClass::Missing => Outcome::missing(id, attempts, e.request_id),
        Settled::Final(e) => Outcome::failed(id, attempts, FailureInfo::from(&e)),
        Settled::Stopped(last) => stopped(id, attempts, last, &s.stop),
        // The error is about the key or the clock, not this id.
        Settled::Fatal(e) => Outcome { cut_short: true, ..Outcome::failed(id, attempts, FailureInfo::from(&e)) },
    }
}

fn strip<T>(end: Settled<T>) -> Settled<()> {
    match end {
        Settled::Ok(_) => Settled::Ok(()),
        Settled::Final(e) => Settled::Final(e),
        Settled::Stopped(e) => Settled::Stopped(e),
        Settled::Fatal(e) => Settled::Fatal(e),
    }
}

async fn audit_one(s: &Shared<'_>, id: String) -> Outcome {
    let (end, attempts) = with_retries(s, "GetImageInfo", || s.client.get_image_info(&id)).await;
    match end {
        Settled::Ok(found) => Outcome::found(id, found.info, attempts, found.request_id),
        other => unsettled(s, id, attempts, strip(other)),
    }
}

/// The code of an id that a batch answer neither described nor listed as
/// missing, after retries.
pub const UNACCOUNTED: &str = "Unaccounted";

/// Up to 20 ids with `GetImageInfos`. Misses come from `NonExistImageIds`;
/// an id in neither list is asked again, then reported `Unaccounted`; an
/// image whose batch answer lacks `AuditStatus` is asked again with
/// `GetImageInfo`, since the batch call's model does not promise it.
async fn audit_batch(s: &Shared<'_>, ids: Vec<String>) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(ids.len());
    let mut attempts: std::collections::HashMap<String, u32> = ids.iter().map(|id| (id.clone(), 0)).collect();
    let mut pending = ids;
    let mut fallback: Vec<String> = Vec::new();
    let mut rounds = 0u32;
    while !pending.is_empty() {
        rounds += 1;
        let refs: Vec<&str> = pending.iter().map(String::as_str).collect();
        let (end, n) = with_retries(s, "GetImageInfos", || s.client.get_image_infos(&refs)).await;
        for id in &pending {
            *attempts.entry(id.clone()).or_default() += n;
        }
        let answer = match end {
            Settled::Ok(answer) => answer,
            other => {
                let end = strip(other);
                for id in pending.drain(..) {
                    let a = attempts[&id];
                    out.push(unsettled(s, id, a, end.clone()));
                }
                break;
            }
        };
        let request_id = answer.request_id.clone();
        let mut found: std::collections::HashMap<String, crate::api::model::ImageInfo> =
            answer.image_info.into_iter().filter_map(|info| info.image_id.clone().map(|id| (id, info))).collect();
        let missing: std::collections::HashSet<String> = answer.non_exist_image_ids.into_iter().collect();
        let mut again = Vec::new();
        for id in pending.drain(..) {
            let a = attempts[&id];
            if let Some(info) = found.remove(&id) {
                if info.audit_status.is_none() {
                    fallback.push(id);
                } else {
                    out.push(Outcome::found(id, info, a, request_id.clone()));
                }
            } else if missing.contains(&id) {
                out.push(Outcome::missing(id, a, request_id.clone()));
            } else if rounds >= s.policy.max_attempts {
                let failure = FailureInfo {
                    code: UNACCOUNTED.to_owned(),
                    message: format!(
                        "GetImageInfos answered {rounds} times without this id in ImageInfo or NonExistImageIds"
                    ),
                    http_status: Some(200),
                    request_id: request_id.clone(),
                };
                out.push(Outcome::failed(id, a, failure));
            } else {
                again.push(id);
            }
        }
        pending = again;
    }
    for id in fallback {
        s.counters.batch_fallbacks.fetch_add(1, Ordering::Relaxed);
        let before = attempts[&id];
        let mut o = audit_one(s, id).await;
        o.attempts += before;
        out.push(o);
    }
    out
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
