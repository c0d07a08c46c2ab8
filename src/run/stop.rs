//! Why a run stops early, and the switch that stops it: a fatal error, a
//! signal, the retry budget, an outage, throttling without end,
//! `--max-failures`, the journal.
//! Shared by the audit engine and the listing phase of `--all-images`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::run::guard::{FAILURES_IN_A_ROW, RETRY_BUDGET};

/// What the documentation says of where `GetMediaAuditResult` runs, and
/// what to do about it (vod-openapi.md §5: the international pages say
/// "supported only in the Singapore region").
pub(crate) const MODERATION_REGION_NOTE: &str = "the international documentation says GetMediaAuditResult is supported only in the Singapore region (ap-southeast-1): audit the images there, or run with --audit-source both, which finishes the audit with AuditStatus alone where moderation cannot be had";

/// Why a run stopped before settling every id.
#[derive(Debug, Clone)]
pub(crate) enum StopReason {
    /// An error that every further call would repeat.
    Fatal(ApiError),
    /// `--audit-source media-audit`, and `GetMediaAuditResult` is refused
    /// for the account: no verdict can be had.
    ModerationUnavailable(ApiError),
    /// SIGINT or SIGTERM.
    Interrupted,
    /// The retry budget ran out, or every recent call failed: the service
    /// keeps failing.
    RetryBudget(ApiError),
    /// Every call failed for `--down-after`: an outage that did not end.
    ServiceDown { last: ApiError, lasted: Duration },
    /// Every answer was a throttle for `--down-after`: a quota that did
    /// not free up.
    Throttled { last: ApiError, lasted: Duration },
    /// `--max-failures` was passed.
    TooManyFailures { failed: u64, settled: u64 },
    /// The journal could not be written.
    Storage(String),
}

impl StopReason {
    /// One line for people.
    pub(crate) fn describe(&self) -> String {
        match self {
            StopReason::Fatal(e) => format!("stopped by a fatal API error: {e}; {}", e.advice()),
            StopReason::ModerationUnavailable(e) => format!(
                "stopped: GetMediaAuditResult is refused for this account ({e}), and --audit-source media-audit takes every verdict from it; {MODERATION_REGION_NOTE}"
            ),
            StopReason::Interrupted => "interrupted by a signal".to_owned(),
            StopReason::RetryBudget(e) => format!(
                "the retry budget ran out ({RETRY_BUDGET} retries' worth, last error {e}): the service keeps failing; run the same command later to resume"
            ),
            StopReason::ServiceDown { last, lasted } if lasted.as_secs() == 0 => format!(
                "the service looks down: {FAILURES_IN_A_ROW} calls in a row failed (last error {last}){}; run the same command later to resume",
                hint(last)
            ),
            StopReason::ServiceDown { last, lasted } => format!(
                "the service looks down: every call failed for {} ({FAILURES_IN_A_ROW} or more in a row, last error {last}){}; run the same command later to resume",
                humantime::format_duration(Duration::from_secs(lasted.as_secs())),
                hint(last)
            ),
            StopReason::Throttled { last, lasted } => format!(
                "throttled without pause for {}: the quota may be used up by other traffic; run the same command again later to resume (last answer {last})",
                humantime::format_duration(Duration::from_secs(lasted.as_secs()))
            ),
            StopReason::TooManyFailures { failed, settled } => {
                format!("--max-failures passed: {failed} of {settled} settled ids failed")
            }
            StopReason::Storage(e) => format!("the journal could not be written: {e}"),
        }
    }
}

/// `: is the endpoint running ...` for a call that reached nothing.
fn hint(last: &ApiError) -> String {
    last.connection_hint().map_or(String::new(), |h| format!(": {h}"))
}

/// A handle to stop a running audit from outside (signals).
#[derive(Clone, Default)]
pub(crate) struct StopHandle {
    pub(crate) token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl StopHandle {
    /// Stops new calls; calls in flight finish. The first reason wins.
    pub(crate) fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Why it stopped, if it did.
    pub(crate) fn reason(&self) -> Option<StopReason> {
        self.reason.get().cloned()
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }
}
