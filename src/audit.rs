//! The audit engine: every id through one rate limiter and a bounded number
//! of concurrent calls, retried by the policy, settled as an [`Outcome`].
//!
//! Owns the pipeline (`buffer_unordered` feeding one consumer), the shared
//! pause that honours server hints, the stop switch for fatal errors and
//! signals, and the live counters. It does not read input or write reports;
//! the consumer hands each outcome to a caller-supplied sink (the progress
//! display, the journal) and returns them all at the end.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use governor::{Quota, RateLimiter};
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

/// Settings of one audit.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub qps: NonZeroU32,
    pub burst: NonZeroU32,
    pub concurrency: usize,
    pub retry: RetryPolicy,
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
}

impl StopReason {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            StopReason::Fatal(e) => format!("stopped by a fatal API error: {e}; {}", e.advice()),
            StopReason::Interrupted => "interrupted by a signal".to_owned(),
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
    limiter: governor::DefaultDirectRateLimiter,
    policy: RetryPolicy,
    counters: Arc<Counters>,
    stop: StopHandle,
    pause: Pause,
}

/// Audits `ids`, handing each outcome to `sink` as it settles (in completion
/// order), and returns every outcome. Ids left when the run stops are
/// returned as not attempted, so every id is accounted for.
pub async fn audit(
    client: &VodClient,
    ids: Vec<String>,
    settings: &AuditSettings,
    counters: Arc<Counters>,
    stop: StopHandle,
    mut sink: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let shared = Shared {
        client,
        limiter: RateLimiter::direct(Quota::per_second(settings.qps).allow_burst(settings.burst)),
        policy: settings.retry,
        counters,
        stop,
        pause: Pause::default(),
    };
    let shared = &shared;
    let mut outcomes = Vec::with_capacity(ids.len());
    let mut stream =
        futures::stream::iter(ids).map(|id| audit_one(shared, id)).buffer_unordered(settings.concurrency.max(1));
    while let Some(outcome) = stream.next().await {
        sink(&outcome);
        outcomes.push(outcome);
    }
    outcomes
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
            _ = s.limiter.until_ready() => {}
            _ = s.stop.token.cancelled() => return stopped(id, attempts, last, &s.stop),
        }
        attempts += 1;
        s.counters.calls.fetch_add(1, Ordering::Relaxed);
        let err = match s.client.get_image_info(&id).await {
            Ok(found) => return Outcome::found(id, found.info, attempts, found.request_id),
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
                return Outcome::failed(id, attempts, FailureInfo::from(&err));
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

fn stopped(id: String, attempts: u32, last: Option<ApiError>, stop: &StopHandle) -> Outcome {
    let why = stop.reason().map(|r| r.describe()).unwrap_or_else(|| "the run stopped".to_owned());
    match last {
        Some(e) => {
            let mut f = FailureInfo::from(&e);
            f.message = format!("{} (not retried: {why})", f.message);
            Outcome::failed(id, attempts, f)
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
