//! The audit engine: every id through one rate limiter and a bounded number
//! of concurrent calls, retried by the policy, settled as an [`Outcome`].
//!
//! Owns the pipeline (`buffer_unordered` feeding one consumer), the stop
//! switch for fatal errors and signals, and the live counters; the guards
//! it consults (retry budget, outage clock, `--max-failures`) are in
//! [`super::guard`]. It does not read input or write reports: the consumer
//! hands each outcome, as it settles, to a caller-supplied [`Sink`] (the
//! progress display, the journal) and keeps none of them.
//!
//! With `--api batch` it also files each `GetImageInfos` answer under the
//! ids asked ([`super::batch`]). Every id asked must come back once, in
//! `ImageInfo` or in `NonExistImageIds` (vod-openapi.md §6). An answer that
//! names an id not asked, names an id twice (in one list or across both), or
//! holds an `ImageInfo` without `ImageId` (which could be about any of the
//! ids asked: the single call's rule, that an answer naming no id is about
//! the id asked, does not carry over) is refused whole as
//! `MismatchedImageId`, transient like any bad answer, and the call is made
//! again: an answer that pairs data with ids wrongly once is not trusted for
//! its other entries, and one more call of at most 20 ids is cheap. Nothing
//! is ever filed under an id other than the one the answer names. An id
//! missing from both lists is asked again, then reported `Unaccounted`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::{file_batch_answer, Filed};
use super::guard::{
    throttle_step, FailureLimit, Outage, OutageStep, Pause, RetryBudget, ThrottleStep, Throttling, FAILURES_IN_A_ROW,
    RETRY_COST, SUCCESS_REFUND, TIMEOUT_RETRY_COST,
};
use crate::run::rate::{RateControl, RateMode};
use futures::{FutureExt, StreamExt};

use std::collections::HashMap;

use crate::api::client::VodClient;
use crate::api::error::{ApiError, ErrorClass};
use crate::report::record::OutcomeKind;
use crate::report::verdict::AccountDecision;
use crate::run::outcome::{FailureInfo, ModerationNote, Outcome};
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

/// Settings of one audit.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub api: ApiMode,
    /// Calls per second; `None`: no client-side limit (`--qps 0`).
    pub qps: Option<NonZeroU32>,
    pub rate_mode: RateMode,
    pub burst: NonZeroU32,
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub max_failures: Option<FailureLimit>,
    /// `--down-after`: how long an outage ([`FAILURES_IN_A_ROW`] transient
    /// failures in a row, no success since), or throttling (every answer a
    /// throttle), may last before the run stops. Zero stops at once.
    pub down_after: Duration,
    /// Where the moderation verdict comes from.
    pub audit_source: AuditSource,
}

named_enum! {
    /// `--audit-source`: where the moderation verdict of a found image comes
    /// from.
    pub enum AuditSource {
        /// `GetImageInfo`'s `AuditStatus` only.
        ImageInfo => "image-info",
        /// `GetMediaAuditResult` for every found image: its `Suggestion`
        /// is the verdict, its labels the reason.
        MediaAudit => "media-audit",
        /// `AuditStatus`, and `GetMediaAuditResult` for the images whose
        /// `AuditStatus` is `Blocked` (the reason) or absent (the verdict).
        Both => "both",
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
    /// Since when every answer has been a throttle: `--down-after` counts it.
    pub throttling: Throttling,
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

pub use super::stop::{StopHandle, StopReason};

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
    audit_source: AuditSource,
    /// The code with which `GetMediaAuditResult` was refused for the
    /// account, once it was (`--audit-source both`).
    moderation_unavailable: std::sync::OnceLock<String>,
}

impl<'a> Shared<'a> {
    fn new(client: &'a VodClient, settings: &AuditSettings, counters: Arc<Counters>, stop: StopHandle) -> Self {
        Shared {
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
            audit_source: settings.audit_source,
            moderation_unavailable: std::sync::OnceLock::new(),
        }
    }

    /// The stop reason of an error no retry fixes, or none when it must
    /// not stop the run: in `--audit-source both`, `GetMediaAuditResult`
    /// refused for the account only takes the moderation away.
    fn fatal_stops(&self, label: &str, err: &ApiError) -> Option<StopReason> {
        match (label, self.audit_source) {
            (MODERATION, AuditSource::Both) if err.denies_the_api() => None,
            (MODERATION, _) if err.denies_the_api() => Some(StopReason::ModerationUnavailable(err.clone())),
            _ => Some(StopReason::Fatal(err.clone())),
        }
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
}

/// Where settled outcomes go (the progress display, the journal). Awaited
/// by the one consumer of the calls, so a sink that waits (a full queue to
/// a slow disk) holds back new calls instead of letting memory grow.
pub trait Sink {
    /// Takes one outcome; it may hold it until [`Sink::flush`]. An error
    /// (an earlier outcome could not be journaled) stops the run.
    fn settle(&mut self, outcome: Outcome) -> Result<(), String>;
    /// Hands on what it holds. Called before the audit waits for anything
    /// (no other outcome is ready) and after every [`HAND_ON_EVERY`]
    /// outcomes, so an outcome is held only while the ones settling with it
    /// are taken. An error (the journal cannot be written) stops the run.
    fn flush(&mut self) -> impl std::future::Future<Output = Result<(), String>>;
}

/// Most outcomes a [`Sink`] holds before they are handed on.
pub const HAND_ON_EVERY: usize = 64;

/// How often the [`WheelAnchor`]'s timer fires: once a second, shorter
/// than any request timeout.
const ANCHOR_PERIOD: Duration = Duration::from_secs(1);

/// Keeps one timer in tokio's timer wheel while the calls run. When the
/// wheel is empty (every call in flight, none waiting for the pacer: each
/// tick of a paced run), tokio plans no wake-up, and registering a timer
/// then wakes the runtime's driver through its eventfd (tokio 1.54,
/// `time::Handle::reregister`: "unpark" when the new deadline is before the
/// planned wake-up, or none is planned). Every call registers one, its
/// request timeout: a `write` and a spurious wake of `epoll_wait` per call
/// (1,061 writes for 1,000 calls at `--qps 100`, seen with strace). With a
/// wake-up always planned at most a second ahead, a later deadline wakes
/// nothing.
struct WheelAnchor(tokio::task::JoinHandle<()>);

impl WheelAnchor {
    fn start() -> Self {
        WheelAnchor(tokio::spawn(async {
            loop {
                tokio::time::sleep(ANCHOR_PERIOD).await;
            }
        }))
    }
}

impl Drop for WheelAnchor {
    fn drop(&mut self) {
        self.0.abort();
    }
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
    let shared = Shared::new(client, settings, counters, stop);
    let shared = &shared;
    let _anchor = WheelAnchor::start();
    let per_call = match settings.api {
        ApiMode::Single => 1,
        ApiMode::Batch => crate::api::client::MAX_BATCH_IDS,
    };
    // Once every id has been taken, the last calls need not wait for a
    // release tick: their slot is enough.
    let ids = ids.into_iter().chain(std::iter::from_fn(|| {
        shared.rate.last_calls();
        None
    }));
    let mut stream = futures::stream::iter(ids)
        .chunks(per_call)
        .map(|chunk| async move {
            let outcomes = match settings.api {
                ApiMode::Single => {
                    let mut v = Vec::with_capacity(1);
                    for id in chunk {
                        v.push(audit_one(shared, id).await);
                    }
                    v
                }
                ApiMode::Batch => audit_batch(shared, chunk).await,
            };
            match settings.audit_source {
                AuditSource::ImageInfo => outcomes,
                source => {
                    futures::future::join_all(outcomes.into_iter().map(|o| ask_moderation(shared, source, o))).await
                }
            }
        })
        .buffer_unordered(settings.concurrency.max(1))
        .flat_map(futures::stream::iter);
    let (mut failed, mut settled) = (0u64, 0u64);
    let mut held = 0usize;
    loop {
        // The outcomes that are ready are taken together, and handed on
        // together before waiting for more: at `--qps 100` the answers of one
        // tick wake the journal thread once, not once or more each.
        let next = match stream.next().now_or_never() {
            Some(next) => next,
            None => {
                hand_on(sink, shared, &mut held).await;
                stream.next().await
            }
        };
        let Some(outcome) = next else { break };
        if !outcome.cut_short {
            settled += 1;
            failed += u64::from(outcome.kind == OutcomeKind::Failed);
            if let Some(limit) = settings.max_failures {
                if limit.exceeded(failed, settled) {
                    shared.stop.stop(StopReason::TooManyFailures { failed, settled });
                }
            }
        }
        if let Err(e) = sink.settle(outcome) {
            shared.stop.stop(StopReason::Storage(e));
        }
        held += 1;
        if held >= HAND_ON_EVERY {
            hand_on(sink, shared, &mut held).await;
        }
    }
    hand_on(sink, shared, &mut held).await;
}

/// Flushes `sink` if it holds anything; an error stops the run.
async fn hand_on(sink: &mut impl Sink, shared: &Shared<'_>, held: &mut usize) {
    if std::mem::take(held) > 0 {
        if let Err(e) = sink.flush().await {
            shared.stop.stop(StopReason::Storage(e));
        }
    }
}

/// Calls made with the run's discipline outside [`audit`]: the listing
/// phase of `--all-images` (`SearchMedia`) goes through the same limiter,
/// retry policy, retry budget, outage clock and stop switch as the audit.
pub struct Caller<'a> {
    shared: Shared<'a>,
}

/// How a call of [`Caller::call`] ended without an answer.
#[derive(Debug, Clone)]
pub enum CallEnd {
    /// A final error: retries used up, or one no retry fixes.
    Failed(ApiError),
    /// The run is stopping (a signal, a fatal error, the budget); the stop
    /// handle holds the reason.
    Stopped,
}

impl<'a> Caller<'a> {
    pub fn new(client: &'a VodClient, settings: &AuditSettings, counters: Arc<Counters>, stop: StopHandle) -> Self {
        Caller { shared: Shared::new(client, settings, counters, stop) }
    }

    /// The client.
    pub fn client(&self) -> &'a VodClient {
        self.shared.client
    }

    /// One call with its retries.
    pub async fn call<T, F, Fut>(&self, label: &str, call: F) -> Result<T, CallEnd>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        match with_retries(&self.shared, label, call).await.0 {
            Settled::Ok(v) => Ok(v),
            Settled::Final(e) => Err(CallEnd::Failed(e)),
            Settled::Stopped(_) | Settled::Fatal(_) => Err(CallEnd::Stopped),
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
        let sent = Instant::now();
        let answer = call().await;
        let throttled = matches!(&answer, Err(e) if e.class == ErrorClass::Throttled);
        if let Some(pause) = s.rate.on_answer(throttled) {
            s.pause.extend(Instant::now() + pause);
        }
        let err = match answer {
            Ok(v) => {
                s.answered(sent);
                return (Settled::Ok(v), attempts);
            }
            Err(e) if e.class == ErrorClass::Missing => {
                s.answered(sent);
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
        // After a throttled answer: since when every answer has been one.
        let mut throttled_since: Option<Instant> = None;
        let failures = match err.class {
            ErrorClass::Throttled => {
                s.counters.throttled.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if let Some(hint) = err.retry_after {
                    s.pause.extend(now + hint.min(crate::run::retry::MAX_HINT));
                }
                let since = s.counters.throttling.throttled(now);
                // Judged before this id's own limit: a run throttled for
                // --down-after stops resumably, not id by id as failures.
                if let ThrottleStep::Down(lasted) = throttle_step(since, now, now, s.down_after) {
                    s.stop.stop(StopReason::Throttled { last: err.clone(), lasted });
                    return (Settled::Stopped(Some(err)), attempts);
                }
                throttled_since = Some(since);
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
                // Said once, at the end, as the stop reason; a log only when asked for.
                tracing::debug!("{err}: {}", err.advice());
                if let Some(reason) = s.fatal_stops(label, &err) {
                    s.stop.stop(reason);
                }
                return (Settled::Fatal(err), attempts);
            }
            Decision::RetryAfter(_) if err.class == ErrorClass::Transient && !s.budget.try_spend(retry_cost(&err)) => {
                s.stop.stop(StopReason::RetryBudget(err.clone()));
                return (Settled::Stopped(Some(err)), attempts);
            }
            Decision::RetryAfter(wait) => {
                tracing::debug!(call = label, attempt = attempts, ?wait, "retrying after {err}");
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
                last = Some(err);
                if !waited {
                    return (Settled::Stopped(last), attempts);
                }
            }
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

/// Asks `GetMediaAuditResult` about a found image when `source` says so,
/// through the same limiter, retries and error classes as every call:
/// `media-audit` asks about every found image, `both` only where the
/// account's decision (`AuditStatus`) is Blocked (for the reasons) or cannot
/// be read (for the verdict). The verdict itself is decided from what both
/// calls said, in [`Outcome::record`].
///
/// What cannot be had: an answer the account cannot get (the API is not
/// offered in the region, or the key may not call it) stops a `media-audit`
/// run, whose every verdict needs it; in `both` it marks every image that
/// needed it `moderation-unavailable:CODE` and the audit goes on. A failure
/// after retries fails the id when the verdict needed the answer, and is a
/// reason (`moderation-failed:CODE`) when the account had decided.
async fn ask_moderation(s: &Shared<'_>, source: AuditSource, mut o: Outcome) -> Outcome {
    if o.kind != OutcomeKind::Found {
        return o;
    }
    let account = AccountDecision::read(o.info.as_ref().and_then(|i| i.audit_status.as_deref()));
    let ask = match source {
        AuditSource::ImageInfo => false,
        AuditSource::MediaAudit => true,
        AuditSource::Both => account.wants_moderation(),
    };
    if !ask {
        return o;
    }
    if let Some(code) = s.moderation_unavailable.get() {
        o.moderation = Some(ModerationNote::Unavailable(code.clone()));
        return o;
    }
    let decided = matches!(account, AccountDecision::Normal | AccountDecision::Blocked);
    let id = o.image_id.clone();
    let (end, attempts) = with_retries(s, MODERATION, || s.client.get_media_audit_result(&id)).await;
    o.attempts += attempts;
    match end {
        Settled::Ok(m) => {
            o.moderation = Some(ModerationNote::Answered(m.reading));
            o
        }
        // No moderation record for it: asked, nothing to say.
        Settled::Final(e) if e.class == ErrorClass::Missing => {
            o.moderation = Some(ModerationNote::NotFound);
            o
        }
        Settled::Fatal(e) if !s.stop.is_stopped() => {
            // Spared by `fatal_stops`: the account cannot have moderation.
            let code = s.moderation_unavailable.get_or_init(|| e.code.clone());
            o.moderation = Some(ModerationNote::Unavailable(code.clone()));
            o
        }
        Settled::Final(e) if decided => {
            o.moderation = Some(ModerationNote::Failed(e.code));
            o
        }
        _ if decided => o,
        other => {
            let attempts = o.attempts;
            unsettled(s, id, attempts, strip(other))
        }
    }
}

/// The label of `GetMediaAuditResult` calls.
const MODERATION: &str = "GetMediaAuditResult";

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
/// `GetImageInfo`, since the batch call's model does not promise it. An
/// answer that names ids wrongly is refused whole ([`super::batch`]) and
/// retried like any bad answer.
async fn audit_batch(s: &Shared<'_>, ids: Vec<String>) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(ids.len());
    let mut attempts: HashMap<String, u32> = ids.iter().map(|id| (id.clone(), 0)).collect();
    let mut pending = ids;
    let mut fallback: Vec<String> = Vec::new();
    let mut rounds = 0u32;
    while !pending.is_empty() {
        rounds += 1;
        let refs: Vec<&str> = pending.iter().map(String::as_str).collect();
        let (end, n) = with_retries(s, "GetImageInfos", || {
            let refs = &refs;
            async move { file_batch_answer(refs, s.client.get_image_infos(refs).await?) }
        })
        .await;
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
        let Filed { mut found, missing, request_id } = answer;
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
