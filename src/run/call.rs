//! One call with the run's discipline: a slot of its action's lane (the
//! pause, then the limiter), the retry policy, the retry budget, the outage
//! clock, the throttle clock and the stop switch, with every attempt
//! counted.
//!
//! Owns what the calls of a run share ([`Shared`]), how a call ends after
//! its retries ([`Settled`]) and what that makes of an id that got no
//! answer. The numbers the guards use and their reasons are in
//! [`super::guard`]; which calls to make, and when, is the engine's.
//! [`Caller`] lends the same discipline to calls made outside the audit
//! (the `--all-images` listing).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::counters::Counters;
use super::guard::{
    throttle_step, Outage, OutageStep, RetryBudget, ThrottleStep, FAILURES_IN_A_ROW, RETRY_COST, SUCCESS_REFUND,
    TIMEOUT_RETRY_COST,
};
use super::lanes::{Action, Lane};
use super::outcome::{FailureInfo, Outcome};
use super::retry::{Decision, RetryPolicy, MAX_HINT};
use super::settings::{AuditSettings, AuditSource};
use super::stop::{StopHandle, StopReason};
use crate::api::client::VodClient;
use crate::api::error::{ApiError, ErrorClass};

/// What every call of a run shares.
pub(crate) struct Shared<'a> {
    pub(crate) client: &'a VodClient,
    /// One lane per action, in [`Action::ALL`] order.
    lanes: [Lane; 4],
    pub(crate) policy: RetryPolicy,
    pub(crate) counters: Arc<Counters>,
    pub(crate) stop: StopHandle,
    budget: RetryBudget,
    failures_in_a_row: AtomicU64,
    outage: Outage,
    down_after: std::time::Duration,
    pub(crate) audit_source: AuditSource,
    /// The code with which `GetMediaAuditResult` was refused for the
    /// account, once it was (`--audit-source both`).
    pub(crate) moderation_unavailable: OnceLock<String>,
}

impl<'a> Shared<'a> {
    pub(crate) fn new(
        client: &'a VodClient,
        settings: &AuditSettings,
        counters: Arc<Counters>,
        stop: StopHandle,
    ) -> Self {
        let lane = |action: Action| Lane::new(settings.rate_mode, settings.rate_of(action), settings.burst);
        Shared {
            client,
            lanes: Action::ALL.map(lane),
            policy: settings.retry,
            counters,
            stop,
            budget: RetryBudget::default(),
            failures_in_a_row: AtomicU64::new(0),
            outage: Outage::default(),
            down_after: settings.down_after,
            audit_source: settings.audit_source,
            moderation_unavailable: OnceLock::new(),
        }
    }

    /// The stop reason of an error no retry fixes, or none when it must
    /// not stop the run: in `--audit-source both`, `GetMediaAuditResult`
    /// refused for the account only takes the moderation away.
    fn fatal_stops(&self, action: Action, err: &ApiError) -> Option<StopReason> {
        match (action, self.audit_source) {
            (Action::GetMediaAuditResult, AuditSource::Both) if err.denies_the_api() => None,
            (Action::GetMediaAuditResult, _) if err.denies_the_api() => {
                Some(StopReason::ModerationUnavailable(err.clone()))
            }
            _ => Some(StopReason::Fatal(err.clone())),
        }
    }

    pub(crate) fn lane(&self, action: Action) -> &Lane {
        &self.lanes[action.index()]
    }

    /// The service answered a call sent at `sent`: the budget gets a token
    /// back, any outage ends, and throttling pauses.
    fn answered(&self, sent: Instant) {
        self.budget.refund(SUCCESS_REFUND);
        self.counters.throttling.answered(sent);
        if self.failures_in_a_row.swap(0, Ordering::Relaxed) >= FAILURES_IN_A_ROW {
            self.outage.answered();
        }
    }

    /// Counts a transient failure towards an outage: once
    /// [`FAILURES_IN_A_ROW`] have come with no answer between, the service,
    /// not this id, is failing, and the outage clock says what to do. None
    /// while it is not an outage.
    fn outage_step(&self, err: &ApiError) -> Option<OutageStep> {
        let in_outage = err.class == ErrorClass::Transient
            && self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= FAILURES_IN_A_ROW;
        in_outage.then(|| self.outage.failure(Instant::now(), self.down_after))
    }

    /// Counts a throttled answer and pauses `action`'s lane for its hint.
    /// Returns since when every answer has been a throttle, or stops the run
    /// (none) once that has lasted `--down-after`: judged before the id's
    /// own limit, so that a run throttled for `--down-after` stops
    /// resumably, not id by id as failures.
    fn throttled(&self, action: Action, err: &ApiError) -> Option<Instant> {
        self.counters.throttled.fetch_add(1, Ordering::Relaxed);
        self.counters.of(action).throttled.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if let Some(hint) = err.retry_after {
            self.lane(action).pause.extend(now + hint.min(MAX_HINT));
        }
        let since = self.counters.throttling.throttled(now);
        if let ThrottleStep::Down(lasted) = throttle_step(since, now, now, self.down_after) {
            self.stop.stop(StopReason::Throttled { last: err.clone(), lasted });
            return None;
        }
        Some(since)
    }
}

/// Calls made with the run's discipline outside the audit: the listing
/// phase of `--all-images` (`SearchMedia`) goes through the same limiter,
/// retry policy, retry budget, outage clock and stop switch as the audit.
pub(crate) struct Caller<'a> {
    shared: Shared<'a>,
}

/// How a call of [`Caller::call`] ended without an answer.
#[derive(Debug, Clone)]
pub(crate) enum CallEnd {
    /// A final error: retries used up, or one no retry fixes.
    Failed(ApiError),
    /// The run is stopping (a signal, a fatal error, the budget); the stop
    /// handle holds the reason.
    Stopped,
}

impl<'a> From<Shared<'a>> for Caller<'a> {
    fn from(shared: Shared<'a>) -> Self {
        Caller { shared }
    }
}

impl<'a> Caller<'a> {
    /// The client.
    pub(crate) fn client(&self) -> &'a VodClient {
        self.shared.client
    }

    /// One call with its retries.
    pub(crate) async fn call<T, F, Fut>(&self, action: Action, call: F) -> Result<T, CallEnd>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        match with_retries(&self.shared, action, call).await.0 {
            Settled::Ok(v) => Ok(v),
            Settled::Final(e) => Err(CallEnd::Failed(e)),
            Settled::Stopped(_) | Settled::Fatal(_) => Err(CallEnd::Stopped),
        }
    }
}

/// How a call ended after its retries.
#[derive(Clone)]
pub(crate) enum Settled<T> {
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
pub(crate) async fn with_retries<T, F, Fut>(s: &Shared<'_>, action: Action, call: F) -> (Settled<T>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    with_retries_from(s, action, false, call).await
}

/// Waits for a slot of `action`'s lane (its pause, then its limiter); false
/// when the run stops first. The call that takes it passes `reserved` to
/// [`with_retries_from`], so that its first attempt waits no second time.
pub(crate) async fn reserve(s: &Shared<'_>, action: Action) -> bool {
    let lane = s.lane(action);
    if let Some(until) = lane.pause.until() {
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = s.stop.token.cancelled() => return false,
        }
    }
    tokio::select! {
        _ = lane.rate.until_ready(|| lane.pause.until()) => true,
        _ = s.stop.token.cancelled() => false,
    }
}

/// Where a call is in its retries.
#[derive(Default)]
struct Tries {
    /// Calls made.
    attempts: u32,
    /// Throttled answers and transient failures so far: the policy judges
    /// each class by its own count.
    throttles: u32,
    transients: u32,
    /// The last error, for the outcome of an id whose retries the run cuts
    /// short.
    last: Option<ApiError>,
}

/// [`with_retries`], the first attempt's slot already taken by [`reserve`]
/// when `reserved`.
pub(crate) async fn with_retries_from<T, F, Fut>(
    s: &Shared<'_>,
    action: Action,
    reserved: bool,
    mut call: F,
) -> (Settled<T>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut tries = Tries::default();
    loop {
        let slot_taken = reserved && tries.attempts == 0;
        if s.stop.is_stopped() || (!slot_taken && !reserve(s, action).await) {
            return (Settled::Stopped(tries.last), tries.attempts);
        }
        tries.attempts += 1;
        let err = match attempt(s, action, &mut call).await {
            Ok(answered) => return (answered, tries.attempts),
            Err(err) => err,
        };
        if let Some(end) = after_error(s, action, err, &mut tries).await {
            return (end, tries.attempts);
        }
    }
}

/// One attempt: counted, sent, its answer shown to the lane's limiter. An
/// answer (the data, or that the id is missing) settles the call; any other
/// error is for [`after_error`].
async fn attempt<T, F, Fut>(s: &Shared<'_>, action: Action, call: &mut F) -> Result<Settled<T>, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let lane = s.lane(action);
    s.counters.calls.fetch_add(1, Ordering::Relaxed);
    s.counters.of(action).calls.fetch_add(1, Ordering::Relaxed);
    let sent = Instant::now();
    let answer = call().await;
    let throttled = matches!(&answer, Err(e) if e.class == ErrorClass::Throttled);
    if let Some(pause) = lane.rate.on_answer(throttled) {
        lane.pause.extend(Instant::now() + pause);
    }
    match answer {
        Ok(v) => {
            s.answered(sent);
            Ok(Settled::Ok(v))
        }
        Err(e) if e.class == ErrorClass::Missing => {
            s.answered(sent);
            Ok(Settled::Final(e))
        }
        Err(e) => Err(e),
    }
}

/// What follows an attempt that failed with `err`: none to try again (the
/// outage's pause, or the policy's wait, is over), or how the call ends.
async fn after_error<T>(s: &Shared<'_>, action: Action, err: ApiError, tries: &mut Tries) -> Option<Settled<T>> {
    // An outage: its failures spend neither this id's attempts nor the
    // retry budget.
    match s.outage_step(&err) {
        Some(OutageStep::Down(lasted)) => {
            s.stop.stop(StopReason::ServiceDown { last: err.clone(), lasted });
            return Some(Settled::Stopped(Some(err)));
        }
        Some(OutageStep::PauseUntil(until)) => {
            let pause = until.saturating_duration_since(Instant::now());
            tracing::debug!(call = action.as_str(), ?pause, "outage: {err}");
            // The service, not one API, is down: every lane waits.
            for lane in &s.lanes {
                lane.pause.extend(until);
            }
            s.counters.retries.fetch_add(1, Ordering::Relaxed);
            tries.last = Some(err);
            return None;
        }
        None => {}
    }
    // After a throttled answer: since when every answer has been one.
    let mut throttled_since = None;
    let failures = match err.class {
        ErrorClass::Throttled => {
            let Some(since) = s.throttled(action, &err) else {
                return Some(Settled::Stopped(Some(err)));
            };
            throttled_since = Some(since);
            tries.throttles += 1;
            tries.throttles
        }
        ErrorClass::Transient => {
            tries.transients += 1;
            tries.transients
        }
        _ => tries.attempts,
    };
    decide(s, action, err, failures, throttled_since, tries).await
}

/// The policy's decision on `err`, the `failures`-th of its class, carried
/// out: the call ends, the run stops, or the wait before the next attempt
/// is waited (none then).
async fn decide<T>(
    s: &Shared<'_>,
    action: Action,
    err: ApiError,
    failures: u32,
    throttled_since: Option<Instant>,
    tries: &mut Tries,
) -> Option<Settled<T>> {
    match s.policy.decide(err.class, failures, err.retry_after, rand::random::<f64>()) {
        Decision::Stop => Some(Settled::Final(err)),
        Decision::AbortRun => {
            // Said once, at the end, as the stop reason; a log only when asked for.
            tracing::debug!("{err}: {}", err.advice());
            if let Some(reason) = s.fatal_stops(action, &err) {
                s.stop.stop(reason);
            }
            Some(Settled::Fatal(err))
        }
        Decision::RetryAfter(_) if err.class == ErrorClass::Transient && !s.budget.try_spend(retry_cost(&err)) => {
            s.stop.stop(StopReason::RetryBudget(err.clone()));
            Some(Settled::Stopped(Some(err)))
        }
        Decision::RetryAfter(wait) => {
            tracing::debug!(call = action.as_str(), attempt = tries.attempts, ?wait, "retrying after {err}");
            s.counters.retries.fetch_add(1, Ordering::Relaxed);
            let until = Instant::now() + wait;
            let waited = match throttled_since {
                Some(since) => wait_out_throttle(s, since, until, &err).await,
                None => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until.into()) => true,
                        _ = s.stop.token.cancelled() => false,
                    }
                }
            };
            tries.last = Some(err);
            (!waited).then(|| Settled::Stopped(tries.last.take()))
        }
    }
}

/// Waits `until` after a throttled answer (`err`), every answer a throttle
/// `since`. If that lasts `--down-after` first, the run stops (false), then
/// and not after a hint of hours; if an answer gets through meanwhile, the
/// wait is the call's own again. False too when the run stops otherwise.
async fn wait_out_throttle(s: &Shared<'_>, since: Instant, until: Instant, err: &ApiError) -> bool {
    loop {
        let now = Instant::now();
        let at = if s.counters.throttling.since() == Some(since) {
            match throttle_step(since, now, until, s.down_after) {
                ThrottleStep::Down(lasted) => {
                    s.stop.stop(StopReason::Throttled { last: err.clone(), lasted });
                    return false;
                }
                ThrottleStep::WaitUntil(at) => at,
            }
        } else {
            until
        };
        if at <= now {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            _ = s.stop.token.cancelled() => return false,
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

/// The outcome of an id whose call ended in an error or a stop.
pub(crate) fn unsettled(s: &Shared<'_>, id: String, attempts: u32, end: Settled<()>) -> Outcome {
    match end {
        Settled::Ok(()) => unreachable!("only errors and stops come here"),
        Settled::Final(e) if e.class == ErrorClass::Missing => Outcome::missing(id, attempts, e.request_id),
        Settled::Final(e) => Outcome::failed(id, attempts, FailureInfo::from(&e)),
        Settled::Stopped(last) => stopped(id, attempts, last, &s.stop),
        // The error is about the key or the clock, not this id.
        Settled::Fatal(e) => Outcome { cut_short: true, ..Outcome::failed(id, attempts, FailureInfo::from(&e)) },
    }
}

/// How a call ended, its answer set aside.
pub(crate) fn strip<T>(end: Settled<T>) -> Settled<()> {
    match end {
        Settled::Ok(_) => Settled::Ok(()),
        Settled::Final(e) => Settled::Final(e),
        Settled::Stopped(e) => Settled::Stopped(e),
        Settled::Fatal(e) => Settled::Fatal(e),
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
