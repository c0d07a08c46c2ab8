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
use futures::future::Either;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use std::collections::HashMap;

use crate::api::client::VodClient;
use crate::api::error::{ApiError, ErrorClass};
use crate::domain::record::OutcomeKind;
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
    /// `--api-qps ACTION=N`: the actions given a rate of their own (`None`:
    /// no limit); the others follow `qps` ([`AuditSettings::rate_of`]).
    pub api_qps: Vec<(Action, Option<NonZeroU32>)>,
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
    /// Calls and throttles per action, in [`Action::ALL`] order.
    pub by_action: [ActionCounters; 4],
}

impl Counters {
    /// One action's counters.
    pub fn of(&self, action: Action) -> &ActionCounters {
        &self.by_action[action.index()]
    }
}

named_enum! {
    /// Which operation looks the ids up.
    pub enum ApiMode {
        /// `GetImageInfo`, one id per call.
        Single => "single",
        /// `GetImageInfos`, up to 20 ids per call, with `GetImageInfo` for
        /// images whose batch answer lacks `AuditStatus`.
        Batch => "batch",
        /// Both at once, each at its own rate: their quotas are separate, so
        /// together they look up about `GetImageInfo`'s rate plus 20 times
        /// `GetImageInfos`'. Each call takes the next ids when its slot comes.
        Mixed => "mixed",
    }
}

named_enum! {
    /// The API actions a run calls, each with its own quota (vod-openapi.md
    /// §5: quotas are per account and per API) and so its own limiter.
    pub enum Action {
        GetImageInfo => "GetImageInfo",
        GetImageInfos => "GetImageInfos",
        GetMediaAuditResult => "GetMediaAuditResult",
        SearchMedia => "SearchMedia",
    }
}

impl Action {
    /// Every action, in [`Action::NAMES`] order.
    pub const ALL: [Action; 4] =
        [Action::GetImageInfo, Action::GetImageInfos, Action::GetMediaAuditResult, Action::SearchMedia];

    /// The documented quota in calls per second (vod-openapi.md §5, the
    /// VOD "QPS limits" page and each API's own page): GetImageInfo about
    /// 100 (unconfirmed), GetImageInfos 10 (its 2024 page),
    /// GetMediaAuditResult 20 (its page), SearchMedia 50.
    pub const fn documented_qps(self) -> u32 {
        match self {
            Action::GetImageInfo => 100,
            Action::GetImageInfos => 10,
            Action::GetMediaAuditResult => 20,
            Action::SearchMedia => 50,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The rate an action runs at when `--api-qps` does not name it: the same
/// share of its documented quota that `qps` is of GetImageInfo's (`--qps 20`
/// is a fifth: GetMediaAuditResult 4/s, SearchMedia 10/s, GetImageInfos
/// 2/s), rounded, at least 1; no limit stays no limit.
pub fn scaled_rate(qps: Option<NonZeroU32>, action: Action) -> Option<NonZeroU32> {
    let qps = qps?;
    let base = u64::from(Action::GetImageInfo.documented_qps());
    let scaled = (u64::from(qps.get()) * u64::from(action.documented_qps()) + base / 2) / base;
    NonZeroU32::new(u32::try_from(scaled).unwrap_or(u32::MAX).max(1))
}

impl AuditSettings {
    /// The rate of `action`: `--api-qps ACTION=N` when given (0: no limit),
    /// `--qps` for GetImageInfo, else [`scaled_rate`].
    pub fn rate_of(&self, action: Action) -> Option<NonZeroU32> {
        match self.api_qps.iter().rev().find(|(a, _)| *a == action) {
            Some((_, rate)) => *rate,
            None if action == Action::GetImageInfo => self.qps,
            None => scaled_rate(self.qps, action),
        }
    }
}

/// One action's calls as counted.
#[derive(Debug, Default)]
pub struct ActionCounters {
    pub calls: AtomicU64,
    pub throttled: AtomicU64,
    /// Ids this action answered (found or missing).
    pub ids: AtomicU64,
}

pub use super::stop::{StopHandle, StopReason};

/// One action's own limiter and pause: a throttled GetMediaAuditResult
/// slows and pauses GetMediaAuditResult only.
struct Lane {
    rate: RateControl,
    pause: Pause,
}

struct Shared<'a> {
    client: &'a VodClient,
    /// One lane per action, in [`Action::ALL`] order.
    lanes: [Lane; 4],
    policy: RetryPolicy,
    counters: Arc<Counters>,
    stop: StopHandle,
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
        let lane = |action: Action| Lane {
            rate: RateControl::new(settings.rate_mode, settings.rate_of(action), settings.burst),
            pause: Pause::default(),
        };
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
            moderation_unavailable: std::sync::OnceLock::new(),
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

    fn lane(&self, action: Action) -> &Lane {
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
    /// Takes note of a found image whose `GetMediaAuditResult` is still to
    /// be asked (see [`audit`]); settled later. An error stops the run.
    fn awaiting(&mut self, _outcome: &Outcome) -> Result<(), String> {
        Ok(())
    }
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

/// Found images waiting for their `GetMediaAuditResult` at most, before
/// the lookups wait for the moderation lane: the backlog of a slower API is
/// bounded (about a kilobyte each), and the wall time is the slowest API's
/// either way.
pub const MAX_AWAITING_MODERATION: usize = 4096;

/// Audits `ids`, handing each outcome to `sink` as it settles (in completion
/// order); nothing is kept here beyond the calls in flight and a bounded
/// backlog, so memory does not grow with the number of ids. Ids left when
/// the run stops are handed over as not attempted, so every id is accounted
/// for. A sink error (the journal cannot be written) stops the run.
///
/// Each API runs side by side in its own lane: the lookups
/// (`GetImageInfo` or `GetImageInfos`, at most `--concurrency` in flight)
/// and, for found images that need it, `GetMediaAuditResult` (its own
/// `--concurrency`), each through its own limiter. A found image waiting for
/// its moderation answer is handed to [`Sink::awaiting`] (the journal keeps
/// it apart, so a crash between the two calls resumes with the missing one
/// only); it is settled when its last call is done. `awaiting` holds the
/// found images of an earlier attempt that still need moderation: they are
/// asked first, and not looked up again.
pub async fn audit(
    client: &VodClient,
    ids: impl IntoIterator<Item = String>,
    awaiting: Vec<Outcome>,
    settings: &AuditSettings,
    counters: Arc<Counters>,
    stop: StopHandle,
    sink: &mut impl Sink,
) {
    let shared = Shared::new(client, settings, counters, stop);
    let s = &shared;
    let _anchor = WheelAnchor::start();
    let lookup_lanes: &[Action] = match settings.api {
        ApiMode::Single => &[Action::GetImageInfo],
        ApiMode::Batch => &[Action::GetImageInfos],
        ApiMode::Mixed => &[Action::GetImageInfo, Action::GetImageInfos],
    };
    let per_call = match settings.api {
        ApiMode::Single | ApiMode::Mixed => 1,
        ApiMode::Batch => crate::api::client::MAX_BATCH_IDS,
    };
    let concurrency = settings.concurrency.max(1);
    // Shared by the calls of `--api mixed`, which take their ids when their
    // slot comes; never locked across an await.
    let ids = std::sync::Mutex::new(ids.into_iter().peekable());
    let ids = &ids;
    // Cancelled once the last id is taken: a `--api mixed` call still
    // waiting for its slot then ends at once instead of spending a slot on
    // nothing (ten a second of GetImageInfos' would add a second and more
    // to the run's end).
    let no_more = tokio_util::sync::CancellationToken::new();
    let no_more = &no_more;
    // `--api mixed`: calls of each kind in flight.
    let (mut singles, mut batches) = (0usize, 0usize);
    let mut backlog: std::collections::VecDeque<Outcome> = awaiting.into();
    let mut lookups = FuturesUnordered::new();
    let mut moderations = FuturesUnordered::new();
    let (mut failed, mut settled) = (0u64, 0u64);
    let mut held = 0usize;
    let mut last_lookups = false;
    loop {
        let room = |lookups: usize, backlog: usize| lookups < concurrency && backlog < MAX_AWAITING_MODERATION;
        match settings.api {
            ApiMode::Single | ApiMode::Batch => {
                while room(lookups.len(), backlog.len()) && more_ids(ids) {
                    let chunk = take_ids(ids, per_call);
                    lookups.push(Either::Left(async move {
                        let outcomes = match settings.api {
                            ApiMode::Batch => audit_batch(s, chunk, false).await,
                            _ => vec![audit_one(s, chunk.into_iter().next().expect("a chunk holds an id")).await],
                        };
                        (Lookup::Plain, outcomes)
                    }));
                }
            }
            ApiMode::Mixed => {
                while backlog.len() < MAX_AWAITING_MODERATION && more_ids(ids) {
                    if singles < concurrency {
                        singles += 1;
                        lookups.push(Either::Right(Either::Left(async move {
                            let Some(reserved) = reserve_unless(s, Action::GetImageInfo, no_more).await else {
                                return (Lookup::Single, Vec::new());
                            };
                            let outcomes = match take_ids_or_end(ids, 1, no_more).pop() {
                                Some(id) => vec![audit_one_from(s, id, reserved).await],
                                None => Vec::new(),
                            };
                            (Lookup::Single, outcomes)
                        })));
                    } else if batches < concurrency {
                        batches += 1;
                        lookups.push(Either::Right(Either::Right(async move {
                            let Some(reserved) = reserve_unless(s, Action::GetImageInfos, no_more).await else {
                                return (Lookup::Batch, Vec::new());
                            };
                            let chunk = take_ids_or_end(ids, crate::api::client::MAX_BATCH_IDS, no_more);
                            let outcomes = match chunk.is_empty() {
                                true => Vec::new(),
                                false => audit_batch(s, chunk, reserved).await,
                            };
                            (Lookup::Batch, outcomes)
                        })));
                    } else {
                        break;
                    }
                }
            }
        }
        if !more_ids(ids) && !last_lookups {
            // Every id has been taken: the last calls need not wait for a
            // release tick, their slot is enough.
            last_lookups = true;
            for lane in lookup_lanes {
                s.lane(*lane).rate.last_calls();
            }
        }
        while moderations.len() < concurrency {
            let Some(o) = backlog.pop_front() else { break };
            moderations.push(ask_moderation(s, o));
        }
        if last_lookups && lookups.is_empty() && backlog.is_empty() {
            s.lane(Action::GetMediaAuditResult).rate.last_calls();
        }
        if lookups.is_empty() && moderations.is_empty() {
            break;
        }
        // The outcomes that are ready are taken together, and handed on
        // together before waiting for more: at `--qps 100` the answers of
        // one tick wake the journal thread once, not once or more each.
        let ready = match next_done(&mut lookups, &mut moderations).now_or_never() {
            Some(ready) => ready,
            None => {
                hand_on(sink, s, &mut held).await;
                next_done(&mut lookups, &mut moderations).await
            }
        };
        let (done, looked) = match ready {
            Done::Looked((kind, outcomes)) => {
                match kind {
                    Lookup::Single => singles -= 1,
                    Lookup::Batch => batches -= 1,
                    Lookup::Plain => {}
                }
                (outcomes, true)
            }
            Done::Moderated(outcome) => (vec![*outcome], false),
        };
        for outcome in done {
            if looked && needs_moderation(settings.audit_source, &outcome) {
                if let Err(e) = sink.awaiting(&outcome) {
                    s.stop.stop(StopReason::Storage(e));
                }
                backlog.push_back(outcome);
                continue;
            }
            if !outcome.cut_short {
                settled += 1;
                failed += u64::from(outcome.kind == OutcomeKind::Failed);
                if let Some(limit) = settings.max_failures {
                    if limit.exceeded(failed, settled) {
                        s.stop.stop(StopReason::TooManyFailures { failed, settled });
                    }
                }
            }
            if let Err(e) = sink.settle(outcome) {
                s.stop.stop(StopReason::Storage(e));
            }
            held += 1;
            if held >= HAND_ON_EVERY {
                hand_on(sink, s, &mut held).await;
            }
        }
    }
    hand_on(sink, s, &mut held).await;
}

/// What finished: a lookup's outcomes, or one moderation's.
enum Done {
    Looked((Lookup, Vec<Outcome>)),
    Moderated(Box<Outcome>),
}

/// Which kind of lookup call finished.
#[derive(Clone, Copy)]
enum Lookup {
    /// `--api single` or `batch`.
    Plain,
    /// `--api mixed`: a `GetImageInfo` call.
    Single,
    /// `--api mixed`: a `GetImageInfos` call.
    Batch,
}

/// Whether ids are left to take.
fn more_ids<I: Iterator<Item = String>>(ids: &std::sync::Mutex<std::iter::Peekable<I>>) -> bool {
    ids.lock().unwrap_or_else(|e| e.into_inner()).peek().is_some()
}

/// [`take_ids`], and `no_more` cancelled when none is left.
fn take_ids_or_end<I: Iterator<Item = String>>(
    ids: &std::sync::Mutex<std::iter::Peekable<I>>,
    n: usize,
    no_more: &tokio_util::sync::CancellationToken,
) -> Vec<String> {
    let taken = take_ids(ids, n);
    if !more_ids(ids) {
        no_more.cancel();
    }
    taken
}

/// [`reserve`], or none when `no_more` is cancelled first (no id is left
/// for the slot); the run stopping still gives `Some(false)`, so that the
/// ids left are handed over as not attempted.
async fn reserve_unless(s: &Shared<'_>, action: Action, no_more: &tokio_util::sync::CancellationToken) -> Option<bool> {
    if no_more.is_cancelled() {
        return None;
    }
    tokio::select! {
        reserved = reserve(s, action) => Some(reserved),
        _ = no_more.cancelled() => None,
    }
}

/// The next `n` ids, fewer at the end.
fn take_ids<I: Iterator<Item = String>>(ids: &std::sync::Mutex<std::iter::Peekable<I>>, n: usize) -> Vec<String> {
    ids.lock().unwrap_or_else(|e| e.into_inner()).by_ref().take(n).collect()
}

/// The next call of either lane to finish. The caller never waits on two
/// empty lanes.
async fn next_done<A, B>(lookups: &mut FuturesUnordered<A>, moderations: &mut FuturesUnordered<B>) -> Done
where
    A: std::future::Future<Output = (Lookup, Vec<Outcome>)>,
    B: std::future::Future<Output = Outcome>,
{
    tokio::select! {
        Some(v) = lookups.next(), if !lookups.is_empty() => Done::Looked(v),
        Some(o) = moderations.next(), if !moderations.is_empty() => Done::Moderated(Box::new(o)),
        else => std::future::pending::<Done>().await,
    }
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
    pub async fn call<T, F, Fut>(&self, action: Action, call: F) -> Result<T, CallEnd>
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
async fn with_retries<T, F, Fut>(s: &Shared<'_>, action: Action, call: F) -> (Settled<T>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    with_retries_from(s, action, false, call).await
}

/// Waits for a slot of `action`'s lane (its pause, then its limiter); false
/// when the run stops first. The call that takes it passes `reserved` to
/// [`with_retries_from`], so that its first attempt waits no second time.
async fn reserve(s: &Shared<'_>, action: Action) -> bool {
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

/// [`with_retries`], the first attempt's slot already taken by [`reserve`]
/// when `reserved`.
async fn with_retries_from<T, F, Fut>(s: &Shared<'_>, action: Action, reserved: bool, mut call: F) -> (Settled<T>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut attempts = 0u32;
    let (mut throttles, mut transients) = (0u32, 0u32);
    let mut last: Option<ApiError> = None;
    let lane = s.lane(action);
    let label = action.as_str();
    loop {
        if s.stop.is_stopped() {
            return (Settled::Stopped(last), attempts);
        }
        let slot_taken = reserved && attempts == 0;
        if !slot_taken && !reserve(s, action).await {
            return (Settled::Stopped(last), attempts);
        }
        attempts += 1;
        s.counters.calls.fetch_add(1, Ordering::Relaxed);
        s.counters.of(action).calls.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let answer = call().await;
        let throttled = matches!(&answer, Err(e) if e.class == ErrorClass::Throttled);
        if let Some(pause) = lane.rate.on_answer(throttled) {
            lane.pause.extend(Instant::now() + pause);
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
                    // The service, not one API, is down: every lane waits.
                    for l in &s.lanes {
                        l.pause.extend(until);
                    }
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
                s.counters.of(action).throttled.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if let Some(hint) = err.retry_after {
                    lane.pause.extend(now + hint.min(crate::run::retry::MAX_HINT));
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
                if let Some(reason) = s.fatal_stops(action, &err) {
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

/// Whether a looked-up image is still to be asked `GetMediaAuditResult`:
/// `media-audit` asks about every found image, `both` only where the
/// account's decision (`AuditStatus`) is Blocked (for the reasons) or cannot
/// be read (for the verdict); once asked, never again.
pub fn needs_moderation(source: AuditSource, o: &Outcome) -> bool {
    if o.kind != OutcomeKind::Found || o.moderation.is_some() || o.cut_short {
        return false;
    }
    match source {
        AuditSource::ImageInfo => false,
        AuditSource::MediaAudit => true,
        AuditSource::Both => {
            AccountDecision::read(o.info.as_ref().and_then(|i| i.audit_status.as_deref())).wants_moderation()
        }
    }
}

/// Asks `GetMediaAuditResult` about a found image ([`needs_moderation`]),
/// through its own lane, with the same retries and error classes as every
/// call. The verdict itself is decided from what both calls said, in
/// [`Outcome::record`].
///
/// What cannot be had: an answer the account cannot get (the API is not
/// offered in the region, or the key may not call it) stops a `media-audit`
/// run, whose every verdict needs it; in `both` it marks every image that
/// needed it `moderation-unavailable:CODE` and the audit goes on. A failure
/// after retries fails the id when the verdict needed the answer, and is a
/// reason (`moderation-failed:CODE`) when the account had decided.
async fn ask_moderation(s: &Shared<'_>, mut o: Outcome) -> Outcome {
    let account = AccountDecision::read(o.info.as_ref().and_then(|i| i.audit_status.as_deref()));
    if let Some(code) = s.moderation_unavailable.get() {
        o.moderation = Some(ModerationNote::Unavailable(code.clone()));
        return o;
    }
    let decided = matches!(account, AccountDecision::Normal | AccountDecision::Blocked);
    let id = o.image_id.clone();
    let (end, attempts) = with_retries(s, Action::GetMediaAuditResult, || s.client.get_media_audit_result(&id)).await;
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
        Settled::Final(e) => {
            let attempts = o.attempts;
            unsettled(s, id, attempts, Settled::Final(e))
        }
        // The run stopped first: reported as found so far, not journaled,
        // so the same command asks the missing call again.
        Settled::Stopped(_) | Settled::Fatal(_) => {
            o.cut_short = true;
            o
        }
    }
}

async fn audit_one(s: &Shared<'_>, id: String) -> Outcome {
    audit_one_from(s, id, false).await
}

async fn audit_one_from(s: &Shared<'_>, id: String, reserved: bool) -> Outcome {
    let (end, attempts) = with_retries_from(s, Action::GetImageInfo, reserved, || s.client.get_image_info(&id)).await;
    let answered = |s: &Shared<'_>| s.counters.of(Action::GetImageInfo).ids.fetch_add(1, Ordering::Relaxed);
    match end {
        Settled::Ok(found) => {
            answered(s);
            Outcome::found(id, found.info, attempts, found.request_id)
        }
        Settled::Final(e) if e.class == ErrorClass::Missing => {
            answered(s);
            Outcome::missing(id, attempts, e.request_id)
        }
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
async fn audit_batch(s: &Shared<'_>, ids: Vec<String>, reserved: bool) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(ids.len());
    let mut attempts: HashMap<String, u32> = ids.iter().map(|id| (id.clone(), 0)).collect();
    let mut pending = ids;
    let mut fallback: Vec<String> = Vec::new();
    let mut rounds = 0u32;
    while !pending.is_empty() {
        rounds += 1;
        let refs: Vec<&str> = pending.iter().map(String::as_str).collect();
        let (end, n) = with_retries_from(s, Action::GetImageInfos, reserved && rounds == 1, || {
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
                    s.counters.of(Action::GetImageInfos).ids.fetch_add(1, Ordering::Relaxed);
                    out.push(Outcome::found(id, info, a, request_id.clone()));
                }
            } else if missing.contains(&id) {
                s.counters.of(Action::GetImageInfos).ids.fetch_add(1, Ordering::Relaxed);
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
    use crate::api::model::ImageInfo;

    fn nz(n: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(n)
    }

    #[test]
    fn each_api_runs_at_the_same_share_of_its_own_documented_quota() {
        let share = |qps: u32| Action::ALL.map(|a| scaled_rate(nz(qps), a).map_or(0, NonZeroU32::get));
        // GetImageInfo, GetImageInfos, GetMediaAuditResult, SearchMedia.
        assert_eq!(share(100), [100, 10, 20, 50]);
        assert_eq!(share(20), [20, 2, 4, 10], "the issue's example: --qps 20");
        assert_eq!(share(1), [1, 1, 1, 1], "never below one call a second");
        assert_eq!(share(450), [450, 45, 90, 225]);
        assert_eq!(scaled_rate(None, Action::GetMediaAuditResult), None, "--qps 0 is no limit for every API");
    }

    #[test]
    fn api_qps_overrides_one_api_and_the_last_one_given_wins() {
        let settings = AuditSettings {
            api: ApiMode::Single,
            qps: nz(20),
            rate_mode: RateMode::Fixed,
            burst: nz(1).unwrap(),
            concurrency: 1,
            retry: RetryPolicy::default(),
            max_failures: None,
            down_after: Duration::ZERO,
            audit_source: AuditSource::Both,
            api_qps: vec![
                (Action::GetMediaAuditResult, nz(7)),
                (Action::SearchMedia, None),
                (Action::GetMediaAuditResult, nz(9)),
            ],
        };
        assert_eq!(settings.rate_of(Action::GetImageInfo), nz(20));
        assert_eq!(settings.rate_of(Action::GetMediaAuditResult), nz(9));
        assert_eq!(settings.rate_of(Action::SearchMedia), None);
        assert_eq!(settings.rate_of(Action::GetImageInfos), nz(2));
    }

    #[test]
    fn only_found_images_not_yet_asked_wait_for_moderation() {
        let found = |status: Option<&str>| {
            let info = ImageInfo { audit_status: status.map(Into::into), ..Default::default() };
            Outcome::found("a".into(), info, 1, None)
        };
        use AuditSource::{Both, ImageInfo as Info, MediaAudit};
        assert!(!needs_moderation(Info, &found(None)));
        assert!(needs_moderation(MediaAudit, &found(Some("Normal"))));
        assert!(!needs_moderation(Both, &found(Some("Normal"))));
        assert!(needs_moderation(Both, &found(Some("Blocked"))));
        assert!(needs_moderation(Both, &found(None)));
        assert!(needs_moderation(Both, &found(Some("Pending"))));
        assert!(!needs_moderation(MediaAudit, &Outcome::missing("a".into(), 1, None)));
        let mut asked = found(None);
        asked.moderation = Some(ModerationNote::NotFound);
        assert!(!needs_moderation(MediaAudit, &asked), "asked once, never again");
    }
}
