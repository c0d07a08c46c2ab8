//! The API actions a run calls, each with its own documented quota, and the
//! lane each one runs in: its own limiter and its own pause, so that a
//! throttled `GetMediaAuditResult` slows and pauses `GetMediaAuditResult`
//! only.
//!
//! Owns the quota table and the rate an action runs at when only `--qps` is
//! given ([`scaled_rate`]). How the calls use a lane (reserving a slot,
//! retrying) is [`super::call`]'s.

use std::num::NonZeroU32;

use super::guard::Pause;
use super::rate::{RateControl, RateMode};

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

    /// Its place in [`Action::ALL`], for tables kept per action.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The rate an action runs at when `--api-qps` does not name it: the same
/// share of its documented quota that `qps` is of GetImageInfo's (`--qps 20`
/// is a fifth: GetMediaAuditResult 4/s, SearchMedia 10/s, GetImageInfos
/// 2/s), rounded, at least 1; no limit stays no limit.
pub(crate) fn scaled_rate(qps: Option<NonZeroU32>, action: Action) -> Option<NonZeroU32> {
    let qps = qps?;
    let base = u64::from(Action::GetImageInfo.documented_qps());
    let scaled = (u64::from(qps.get()) * u64::from(action.documented_qps()) + base / 2) / base;
    NonZeroU32::new(u32::try_from(scaled).unwrap_or(u32::MAX).max(1))
}

/// One action's own limiter and pause.
pub(crate) struct Lane {
    pub(crate) rate: RateControl,
    pub(crate) pause: Pause,
}

impl Lane {
    /// A lane at `rate` calls per second (`None`: no limit), not paused.
    pub(crate) fn new(mode: RateMode, rate: Option<NonZeroU32>, burst: NonZeroU32) -> Self {
        Lane { rate: RateControl::new(mode, rate, burst), pause: Pause::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
