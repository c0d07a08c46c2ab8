//! What one audit is told: which API looks the ids up, at what rates, how
//! many calls at once, the retry policy and the limits that stop a run, and
//! where the moderation verdict comes from. Turning flags into these
//! settings is `cmd`'s; this module holds the defaults and their reasons.

use std::num::NonZeroU32;
use std::time::Duration;

use super::guard::FailureLimit;
use super::lanes::{scaled_rate, Action};
use super::rate::RateMode;
use super::retry::RetryPolicy;

/// Calls per second when `--qps` is not given: a fifth of GetImageInfo's
/// ~100 calls/s per-account quota, which production traffic shares.
pub(crate) const DEFAULT_QPS: u32 = 20;

/// Calls in flight when `--concurrency` is not given: enough to keep 100
/// calls/s busy at 150 ms per call, few enough to be polite.
pub(crate) const DEFAULT_CONCURRENCY: usize = 16;

/// Calls the limiter lets through at once. Kept at one: Alibaba enforces
/// some quotas per minute, and a burst bought now is a throttled tail later.
/// (governor itself is given one more, only so that a call made up after a
/// late wake-up passes; the pacer in `rate` keeps the spacing.)
pub(crate) const DEFAULT_BURST: u32 = 1;

/// Settings of one audit.
#[derive(Debug, Clone)]
pub(crate) struct AuditSettings {
    pub api: ApiMode,
    /// Calls per second; `None`: no client-side limit (`--qps 0`).
    pub qps: Option<NonZeroU32>,
    pub rate_mode: RateMode,
    pub burst: NonZeroU32,
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub max_failures: Option<FailureLimit>,
    /// `--down-after`: how long an outage
    /// ([`super::guard::FAILURES_IN_A_ROW`] transient failures in a row, no
    /// success since), or throttling (every answer a throttle), may last
    /// before the run stops. Zero stops at once.
    pub down_after: Duration,
    /// Where the moderation verdict comes from.
    pub audit_source: AuditSource,
    /// `--api-qps ACTION=N`: the actions given a rate of their own (`None`:
    /// no limit); the others follow `qps` ([`AuditSettings::rate_of`]).
    pub api_qps: Vec<(Action, Option<NonZeroU32>)>,
}

impl AuditSettings {
    /// The rate of `action`: `--api-qps ACTION=N` when given (0: no limit),
    /// `--qps` for GetImageInfo, else [`scaled_rate`].
    pub(crate) fn rate_of(&self, action: Action) -> Option<NonZeroU32> {
        match self.api_qps.iter().rev().find(|(a, _)| *a == action) {
            Some((_, rate)) => *rate,
            None if action == Action::GetImageInfo => self.qps,
            None => scaled_rate(self.qps, action),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(n)
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
}
