//! The audit engine: every id through its lane's rate limiter and a bounded
//! number of concurrent calls, retried by the policy, settled as an
//! [`Outcome`].
//!
//! Owns the pipeline (the calls in flight, in one set per lane, feeding one
//! consumer), the ids not yet taken, and the lookups of one id
//! (`GetImageInfo`) or of up to 20 (`GetImageInfos`). One call's retries and
//! the guards they consult are [`super::call`]'s; the lanes, one per action,
//! [`super::lanes`]'; the moderation question [`super::moderation`]'s; the
//! live counters [`super::counters`]'. It does not read input or write
//! reports: the consumer hands each outcome, as it settles, to a
//! caller-supplied [`Sink`] (the progress display, the journal) and keeps
//! none of them.
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

use std::collections::{HashMap, VecDeque};
use std::iter::Peekable;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use super::batch::{file_batch_answer, Filed};
use super::call::{reserve, strip, unsettled, with_retries_from, Settled, Shared};
use super::counters::Counters;
use super::lanes::Action;
use super::moderation::{ask_moderation, needs_moderation, MAX_AWAITING_MODERATION};
use super::settings::{ApiMode, AuditSettings};
use super::stop::{StopHandle, StopReason};
use crate::api::client::{VodClient, MAX_BATCH_IDS};
use crate::api::error::ErrorClass;
use crate::domain::record::OutcomeKind;
use crate::run::outcome::{FailureInfo, Outcome};

/// Where settled outcomes go (the progress display, the journal). Awaited
/// by the one consumer of the calls, so a sink that waits (a full queue to
/// a slow disk) holds back new calls instead of letting memory grow.
pub(crate) trait Sink {
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
pub(crate) const HAND_ON_EVERY: usize = 64;

/// How often the [`WheelAnchor`]'s timer fires: once a second, shorter
/// than any request timeout.
const ANCHOR_PERIOD: Duration = Duration::from_secs(1);

/// Keeps one timer pending while the calls run. Every call sets a timer,
/// its request timeout. When none is pending (every call in flight, none
/// waiting for the pacer: each tick of a paced run), the runtime has no
/// wake-up planned, and setting one wakes its driver to plan it: a wake-up
/// of the runtime per call, for nothing. With a timer always due within
/// [`ANCHOR_PERIOD`], a later deadline changes no plan: one wake-up a
/// second instead of one per call.
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
pub(crate) async fn audit(
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
    let feed = Feed::new(ids.into_iter());
    let feed = &feed;
    let concurrency = settings.concurrency.max(1);
    let mut consumer = Consumer { backlog: awaiting.into(), ..Consumer::default() };
    let mut lookups = FuturesUnordered::new();
    let mut moderations = FuturesUnordered::new();
    loop {
        while consumer.backlog.len() < MAX_AWAITING_MODERATION && feed.more() {
            let Some(action) = consumer.in_flight.next(settings.api, concurrency) else { break };
            consumer.in_flight.started(action);
            // `--api mixed` takes the ids when the call's slot comes.
            let ids = (settings.api != ApiMode::Mixed).then(|| feed.take(per_call(action)));
            lookups.push(look_up(s, feed, action, ids));
        }
        if !feed.more() {
            consumer.no_more_lookups(s, settings.api);
        }
        while moderations.len() < concurrency {
            let Some(o) = consumer.backlog.pop_front() else { break };
            moderations.push(ask_moderation(s, o));
        }
        if consumer.lookups_ended && lookups.is_empty() && consumer.backlog.is_empty() {
            s.lane(Action::GetMediaAuditResult).rate.last_calls();
        }
        if lookups.is_empty() && moderations.is_empty() {
            break;
        }
        // The outcomes that are ready are taken together, and handed on
        // together before waiting for more: at `--qps 100` the answers of
        // one tick wake the journal thread once, not once or more each.
        let done = match next_done(&mut lookups, &mut moderations).now_or_never() {
            Some(done) => done,
            None => {
                consumer.hand_on(s, sink).await;
                next_done(&mut lookups, &mut moderations).await
            }
        };
        consumer.take(s, settings, sink, done).await;
    }
    consumer.hand_on(s, sink).await;
}

/// The ids not yet taken. In `--api mixed` the calls take theirs when their
/// slot comes, so the feed is shared by them; its lock is never held across
/// an await.
struct Feed<I: Iterator<Item = String>> {
    ids: Mutex<Peekable<I>>,
    /// Cancelled once the last id is taken: a `--api mixed` call still
    /// waiting for its slot then ends at once instead of spending a slot on
    /// nothing (ten a second of GetImageInfos' would add a second and more
    /// to the run's end).
    no_more: CancellationToken,
}

impl<I: Iterator<Item = String>> Feed<I> {
    fn new(ids: I) -> Self {
        Feed { ids: Mutex::new(ids.peekable()), no_more: CancellationToken::new() }
    }

    /// Whether ids are left to take.
    fn more(&self) -> bool {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).peek().is_some()
    }

    /// The next `n` ids, fewer at the end.
    fn take(&self, n: usize) -> Vec<String> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).by_ref().take(n).collect()
    }

    /// [`Feed::take`], and `no_more` cancelled when none is left.
    fn take_or_end(&self, n: usize) -> Vec<String> {
        let taken = self.take(n);
        if !self.more() {
            self.no_more.cancel();
        }
        taken
    }

    /// [`reserve`], or none when no id is left for the slot; the run
    /// stopping still gives `Some(false)`, so that the ids left are handed
    /// over as not attempted.
    async fn reserve(&self, s: &Shared<'_>, action: Action) -> Option<bool> {
        if self.no_more.is_cancelled() {
            return None;
        }
        tokio::select! {
            reserved = reserve(s, action) => Some(reserved),
            _ = self.no_more.cancelled() => None,
        }
    }
}

/// Ids one lookup call of `action` asks about.
fn per_call(action: Action) -> usize {
    match action {
        Action::GetImageInfos => MAX_BATCH_IDS,
        _ => 1,
    }
}

/// One lookup call of `action` and its outcomes. `ids` were taken when it
/// was started (`--api single` or `batch`); without them (`--api mixed`)
/// it takes them when its slot comes, and asks nothing if none is left.
async fn look_up<I: Iterator<Item = String>>(
    s: &Shared<'_>,
    feed: &Feed<I>,
    action: Action,
    ids: Option<Vec<String>>,
) -> (Action, Vec<Outcome>) {
    let (ids, reserved) = match ids {
        Some(ids) => (ids, false),
        None => match feed.reserve(s, action).await {
            Some(reserved) => (feed.take_or_end(per_call(action)), reserved),
            None => (Vec::new(), false),
        },
    };
    let outcomes = if ids.is_empty() {
        Vec::new()
    } else if action == Action::GetImageInfos {
        audit_batch(s, ids, reserved).await
    } else {
        let id = ids.into_iter().next().expect("a lookup of one id holds it");
        vec![audit_one_from(s, id, reserved).await]
    };
    (action, outcomes)
}

/// Lookup calls in flight, by action.
#[derive(Default)]
struct InFlight {
    singles: usize,
    batches: usize,
}

impl InFlight {
    /// The lookup to start next, if `concurrency` leaves room for one:
    /// `--api mixed` fills `GetImageInfo`'s calls first, then
    /// `GetImageInfos`'.
    fn next(&self, api: ApiMode, concurrency: usize) -> Option<Action> {
        match api {
            ApiMode::Single => (self.singles < concurrency).then_some(Action::GetImageInfo),
            ApiMode::Batch => (self.batches < concurrency).then_some(Action::GetImageInfos),
            ApiMode::Mixed if self.singles < concurrency => Some(Action::GetImageInfo),
            ApiMode::Mixed => (self.batches < concurrency).then_some(Action::GetImageInfos),
        }
    }

    fn count(&mut self, action: Action) -> &mut usize {
        match action {
            Action::GetImageInfos => &mut self.batches,
            _ => &mut self.singles,
        }
    }

    fn started(&mut self, action: Action) {
        *self.count(action) += 1;
    }

    fn ended(&mut self, action: Action) {
        *self.count(action) -= 1;
    }
}

/// What the one consumer of the calls keeps between them.
#[derive(Default)]
struct Consumer {
    /// Found images waiting for their `GetMediaAuditResult`, oldest first.
    backlog: VecDeque<Outcome>,
    in_flight: InFlight,
    /// Every id has been taken by a lookup.
    lookups_ended: bool,
    /// Ids settled, and how many of them failed: `--max-failures` judges
    /// these.
    settled: u64,
    failed: u64,
    /// Outcomes the sink holds, not yet handed on.
    held: usize,
}

/// What finished: a lookup's outcomes, or one moderation's.
enum Done {
    Looked((Action, Vec<Outcome>)),
    Moderated(Box<Outcome>),
}

impl Consumer {
    /// Every id has been taken: the last lookups need not wait for a
    /// release tick, their slot is enough.
    fn no_more_lookups(&mut self, s: &Shared<'_>, api: ApiMode) {
        if std::mem::replace(&mut self.lookups_ended, true) {
            return;
        }
        let lanes: &[Action] = match api {
            ApiMode::Single => &[Action::GetImageInfo],
            ApiMode::Batch => &[Action::GetImageInfos],
            ApiMode::Mixed => &[Action::GetImageInfo, Action::GetImageInfos],
        };
        for lane in lanes {
            s.lane(*lane).rate.last_calls();
        }
    }

    /// Takes what a call finished with: a found image that still needs its
    /// moderation answer joins the backlog (the sink takes note of it);
    /// every other outcome is settled.
    async fn take(&mut self, s: &Shared<'_>, settings: &AuditSettings, sink: &mut impl Sink, done: Done) {
        let (outcomes, looked) = match done {
            Done::Looked((action, outcomes)) => {
                self.in_flight.ended(action);
                (outcomes, true)
            }
            Done::Moderated(outcome) => (vec![*outcome], false),
        };
        for outcome in outcomes {
            if looked && needs_moderation(settings.audit_source, &outcome) {
                if let Err(e) = sink.awaiting(&outcome) {
                    s.stop.stop(StopReason::Storage(e));
                }
                self.backlog.push_back(outcome);
            } else {
                self.settle(s, settings, sink, outcome).await;
            }
        }
    }

    /// Hands `outcome` to the sink, counted for `--max-failures` unless the
    /// run cut it short.
    async fn settle(&mut self, s: &Shared<'_>, settings: &AuditSettings, sink: &mut impl Sink, outcome: Outcome) {
        if !outcome.cut_short {
            self.settled += 1;
            self.failed += u64::from(outcome.kind == OutcomeKind::Failed);
            let (failed, settled) = (self.failed, self.settled);
            if settings.max_failures.is_some_and(|limit| limit.exceeded(failed, settled)) {
                s.stop.stop(StopReason::TooManyFailures { failed, settled });
            }
        }
        if let Err(e) = sink.settle(outcome) {
            s.stop.stop(StopReason::Storage(e));
        }
        self.held += 1;
        if self.held >= HAND_ON_EVERY {
            self.hand_on(s, sink).await;
        }
    }

    /// Flushes the sink if it holds anything; an error stops the run.
    async fn hand_on(&mut self, s: &Shared<'_>, sink: &mut impl Sink) {
        if std::mem::take(&mut self.held) > 0 {
            if let Err(e) = sink.flush().await {
                s.stop.stop(StopReason::Storage(e));
            }
        }
    }
}

/// The next call of either lane to finish. The caller never waits on two
/// empty lanes.
async fn next_done<A, B>(lookups: &mut FuturesUnordered<A>, moderations: &mut FuturesUnordered<B>) -> Done
where
    A: std::future::Future<Output = (Action, Vec<Outcome>)>,
    B: std::future::Future<Output = Outcome>,
{
    tokio::select! {
        Some(v) = lookups.next(), if !lookups.is_empty() => Done::Looked(v),
        Some(o) = moderations.next(), if !moderations.is_empty() => Done::Moderated(Box::new(o)),
        else => std::future::pending::<Done>().await,
    }
}

async fn audit_one(s: &Shared<'_>, id: String) -> Outcome {
    audit_one_from(s, id, false).await
}

/// One id with `GetImageInfo`, the first attempt's slot already taken when
/// `reserved`.
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
pub(crate) const UNACCOUNTED: &str = "Unaccounted";

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
