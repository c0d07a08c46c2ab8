//! The per-second quotas, one per action (vod-openapi.md §5: quotas are per
//! API, and calls to one do not use up another's), and the throttled
//! answer in the style asked for (vod-openapi.md §4), with its
//! `x-acs-retry-after` and `x-ratelimit-user` hints. What every valid VOD
//! call meets before it is served, the outage window included, is [`admit`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use super::wire::unavailable;
use super::wire::Answer;
use super::Simulator;

named_enum! {
    /// A VOD action with a quota of its own (vod-openapi.md §5: "Each
    /// operation has its own limit").
    #[derive(Hash, PartialOrd, Ord)]
    pub enum QuotaAction {
        GetImageInfo => "GetImageInfo",
        GetImageInfos => "GetImageInfos",
        GetMediaAuditResult => "GetMediaAuditResult",
        SearchMedia => "SearchMedia",
    }
}

named_enum! {
    /// How a call over its quota is answered.
    pub enum ThrottleStyle {
        /// `400 Throttling.User`, as the VOD pages document.
        ThrottlingUser => "throttling-user",
        /// `403 Forbidden.FlowControl` with `x-acs-retry-after` (the
        /// milliseconds left in the window): a product that answers
        /// throttling with 403 and a code that does not say so, which the
        /// official clients recognise by the header alone (vod-openapi.md §4).
        ForbiddenFlowControl => "forbidden-flowcontrol",
    }
}

/// One action's quota: its per-second window and its counts.
#[derive(Default)]
pub(super) struct Quota {
    /// (second since start, calls taken in it).
    window: Mutex<(u64, u32)>,
    pub(super) admitted: AtomicU64,
    pub(super) throttled: AtomicU64,
}

impl Simulator {
    /// The quota of `action` in calls per second; `None` is unlimited.
    fn limit(&self, action: QuotaAction) -> Option<u32> {
        self.config.api_qps.get(&action).copied().unwrap_or(self.config.qps)
    }

    /// Takes one call from this second's quota of `action`. `Err` is the
    /// milliseconds until its window resets.
    fn take_quota(&self, action: QuotaAction) -> Result<(), u64> {
        let q = &self.quotas[action as usize];
        let taken = take_window(&q.window, self.limit(action), self.started);
        let counter = if taken.is_ok() { &q.admitted } else { &q.throttled };
        counter.fetch_add(1, Ordering::Relaxed);
        taken
    }
}

/// Takes one call from a per-second quota window of `limit` calls (`None`:
/// unlimited) counted from `started`. `Err` is the milliseconds until the
/// window resets.
fn take_window(window: &Mutex<(u64, u32)>, limit: Option<u32>, started: Instant) -> Result<(), u64> {
    let Some(limit) = limit else { return Ok(()) };
    let elapsed = started.elapsed();
    let second = elapsed.as_secs();
    let mut q = window.lock().unwrap_or_else(|e| e.into_inner());
    if q.0 != second {
        *q = (second, 0);
    }
    if q.1 < limit {
        q.1 += 1;
        Ok(())
    } else {
        Err(1000 - u64::from(elapsed.subsec_millis()))
    }
}

/// The throttled answer in the configured style, with the `x-acs-retry-after`
/// and `x-ratelimit-user` hints when configured.
fn throttled(sim: &Simulator, limit: Option<u32>, time_left_ms: u64) -> Answer {
    let cfg = &sim.config;
    let mut a = match cfg.throttle_style {
        ThrottleStyle::ThrottlingUser => {
            Answer::error(400, "Throttling.User", "Request was denied due to user flow control.")
        }
        ThrottleStyle::ForbiddenFlowControl => {
            Answer::error(403, "Forbidden.FlowControl", "Request was denied due to flow control.")
        }
    };
    let retry_after = match (&cfg.throttle_retry_after, cfg.throttle_style) {
        (Some(value), _) => Some(value.clone()),
        (None, ThrottleStyle::ForbiddenFlowControl) => Some(time_left_ms.to_string()),
        (None, ThrottleStyle::ThrottlingUser) => None,
    };
    if let Some(value) = retry_after {
        a.header("x-acs-retry-after", value);
    }
    if cfg.ratelimit_hints {
        let limit = limit.unwrap_or_default();
        let reset = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() + 1;
        a.header("x-ratelimit-user", format!("Limit:{limit},Remain:0,TimeLeft:{time_left_ms},Reset:{reset}"));
    }
    a
}

/// What every valid VOD call meets before it is served: the outage window
/// and its action's quota. `authenticated`: the call's number among
/// authenticated calls.
pub(super) fn admit(sim: &Simulator, authenticated: u64, action: QuotaAction) -> Option<Answer> {
    if sim.config.faults.outage.is_some_and(|o| sim.in_outage(&o, authenticated)) {
        return Some(unavailable());
    }
    sim.take_quota(action).err().map(|time_left_ms| throttled(sim, sim.limit(action), time_left_ms))
}
