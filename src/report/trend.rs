//! The trend: found, blocked and missing images per run, over the last
//! complete runs beside this one (the same parent directory), read from
//! their manifests and `summary.json` files. No network: the page draws it
//! inline.

use std::path::Path;

use serde::Serialize;

use super::summary::Summary;
use crate::rundir::manifest::Manifest;
use crate::rundir::SUMMARY_JSON;

/// Runs the trend shows when `--trend-runs` is not given: a month of nights.
pub const DEFAULT_TREND_RUNS: usize = 30;

/// One run on the trend chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrendPoint {
    /// When the run finished (RFC 3339, UTC).
    pub finished: String,
    pub found: u64,
    pub blocked: u64,
    pub missing: u64,
}

impl TrendPoint {
    /// The point of a run with this summary.
    pub fn of(finished: &str, s: &Summary) -> Self {
        TrendPoint {
            finished: finished.to_owned(),
            found: s.totals.found,
            blocked: s.blocked(),
            missing: s.totals.missing,
        }
    }
}

/// The last `limit` complete runs in `parent` other than `me`, oldest first.
/// A directory that is not a complete run with a `summary.json` is passed
/// over: the trend shows what it can prove.
pub fn earlier_runs(parent: &Path, me: &Path, limit: usize) -> Vec<TrendPoint> {
    if limit == 0 {
        return Vec::new();
    }
    let me = std::fs::canonicalize(me).ok();
    let mut points: Vec<TrendPoint> = std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::canonicalize(e.path()).ok() != me)
        .filter_map(|e| {
            let dir = e.path();
            let m = Manifest::read(&dir).ok().filter(|m| m.complete && m.lists(SUMMARY_JSON))?;
            let s: Summary = serde_json::from_slice(&std::fs::read(dir.join(SUMMARY_JSON)).ok()?).ok()?;
            Some(TrendPoint::of(&m.finished, &s))
        })
        .collect();
    points.sort_by(|a, b| a.finished.cmp(&b.finished));
    let skip = points.len().saturating_sub(limit);
    points.split_off(skip)
}
