//! The live counters of a run: calls, throttles, retries, per action.
//! Written by the calls as they go, read by the progress display and the
//! run's closing figures; nothing here decides anything.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::guard::Throttling;
use super::lanes::Action;

/// Live counters, shared by the tasks and read by the progress display.
#[derive(Debug, Default)]
pub(crate) struct Counters {
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
    pub(crate) fn of(&self, action: Action) -> &ActionCounters {
        &self.by_action[action.index()]
    }
}

/// One action's calls as counted.
#[derive(Debug, Default)]
pub(crate) struct ActionCounters {
    pub calls: AtomicU64,
    pub throttled: AtomicU64,
    /// Ids this action answered (found or missing).
    pub ids: AtomicU64,
}

/// Calls per second over an elapsed time, for progress lines.
pub(crate) fn rate(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}
