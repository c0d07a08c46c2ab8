//! The counters `/__sim/stats` reports ([`Stats`]): requests, answers by
//! code, calls and answers per image, the STS and metadata requests by
//! action, each action's quota, `SearchMedia`'s paging; and the counting
//! the other modules do as they answer.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::quota::QuotaAction;
use super::search::SearchStats;
use super::{shard_of, Simulator};

/// What `/__sim/stats` reports.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Stats {
    /// Every request received on `/`.
    pub requests: u64,
    /// Answers by code: `OK` for success, the API `Code` for errors,
    /// `Dropped` for connections closed without an answer, `WrongImageId`
    /// for a 200 that names another image (the fault of that name).
    pub by_code: BTreeMap<String, u64>,
    /// Per image id: how many times it was answered (found or
    /// `NoSuchResource`; a batch answer counts once for each of its ids).
    pub answers_by_image: BTreeMap<String, u64>,
    /// Per image id: how many authenticated calls named it.
    pub calls_by_image: BTreeMap<String, u64>,
    /// STS, metadata service and credentials URI requests, by action
    /// (`AssumeRole`, `MetadataCredentials.v2`, ...) and outcome (`OK` or the
    /// error code): `AssumeRole OK`. Not in `requests` or `by_code`, which
    /// count the VOD endpoint's.
    #[serde(default)]
    pub by_action: BTreeMap<String, u64>,
    /// `SearchMedia`'s paging: pages served, the deepest page asked, refusals
    /// past 5,000 results, repeated pages, distinct queries. Its calls are
    /// also in `requests`, `by_code` and `by_action` (`SearchMedia OK`, ...),
    /// never in the per-image counters.
    #[serde(default)]
    pub search: SearchStats,
    /// Per action that reached its quota check: the calls it admitted and
    /// the calls it throttled.
    #[serde(default)]
    pub quota: BTreeMap<String, QuotaStats>,
}

/// What one action's quota did.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct QuotaStats {
    pub admitted: u64,
    pub throttled: u64,
}

/// One image's counts: calls naming it, answers about it.
#[derive(Default)]
pub(super) struct ImageCounts {
    calls: u64,
    answers: u64,
}

impl Simulator {
    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            requests: self.requests.load(Ordering::Relaxed),
            by_code: self.by_code.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            by_action: self.by_action.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            search: self.search.stats(),
            ..Default::default()
        };
        for (name, q) in QuotaAction::NAMES.iter().zip(&self.quotas) {
            let counts = QuotaStats {
                admitted: q.admitted.load(Ordering::Relaxed),
                throttled: q.throttled.load(Ordering::Relaxed),
            };
            if counts != QuotaStats::default() {
                s.quota.insert((*name).to_owned(), counts);
            }
        }
        for shard in &self.per_image {
            for (id, c) in shard.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                s.calls_by_image.insert(id.to_string(), c.calls);
                if c.answers > 0 {
                    s.answers_by_image.insert(id.to_string(), c.answers);
                }
            }
        }
        s
    }

    /// Counts an STS, metadata or per-action outcome: `ACTION OUTCOME`.
    pub(super) fn count_action(&self, action: &str, outcome: &str) {
        let key = format!("{action} {outcome}");
        *self.by_action.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
    }

    /// Counts a VOD answer by its code.
    pub(super) fn count_code(&self, code: &str) {
        *self.by_code.lock().unwrap_or_else(|e| e.into_inner()).entry(code.to_owned()).or_default() += 1;
    }

    /// Counts a call naming `id` and returns its 0-based call number.
    pub(super) fn count_call(&self, id: &str) -> u64 {
        let mut shard = self.per_image[shard_of(id)].lock().unwrap_or_else(|e| e.into_inner());
        let c = shard.entry(id.into()).or_default();
        c.calls += 1;
        c.calls - 1
    }

    /// Counts a batch call (by its joined ids) and returns its 0-based call number.
    pub(super) fn count_batch(&self, key: &str) -> u64 {
        let mut calls = self.batch_calls.lock().unwrap_or_else(|e| e.into_inner());
        let n = calls.entry(key.into()).or_default();
        *n += 1;
        *n - 1
    }

    /// Counts an answer about `id`.
    pub(super) fn count_answer(&self, id: &str) {
        let mut shard = self.per_image[shard_of(id)].lock().unwrap_or_else(|e| e.into_inner());
        shard.entry(id.into()).or_default().answers += 1;
    }
}
