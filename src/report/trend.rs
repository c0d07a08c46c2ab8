//! The trend: found, blocked and missing images per run, over the last
//! complete runs beside this one (the same parent directory), read from
//! their manifests and `summary.json` files. No network: the page draws it
//! inline.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::summary::Summary;
use crate::rundir::manifest::Manifest;
use crate::rundir::SUMMARY_JSON;

/// Runs the trend shows when `--trend-runs` is not given: a month of nights.
pub(crate) const DEFAULT_TREND_RUNS: usize = 30;

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

/// The last `limit` complete runs in `parent` other than `me`, oldest first,
/// and the runs left out because they do not verify (their directory and
/// why). A directory that is not a complete run with a `summary.json` is
/// passed over in silence: the trend shows what it can prove. One that
/// claims to be one but whose manifest or `summary.json` do not verify is
/// left out and named: an edited count must not be drawn.
pub(crate) fn earlier_runs(parent: &Path, me: &Path, limit: usize) -> (Vec<TrendPoint>, Vec<(PathBuf, String)>) {
    if limit == 0 {
        return (Vec::new(), Vec::new());
    }
    let me = std::fs::canonicalize(me).ok();
    let mut runs: Vec<(String, PathBuf)> = std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::canonicalize(e.path()).ok() != me)
        .filter_map(|e| {
            let dir = e.path();
            let m = Manifest::read(&dir).ok().filter(|m| m.complete && m.lists(SUMMARY_JSON))?;
            Some((m.finished, dir))
        })
        .collect();
    // Newest first, verified until `limit` are found.
    runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    let (mut points, mut left_out) = (Vec::new(), Vec::new());
    for (_, dir) in runs {
        if points.len() == limit {
            break;
        }
        let read = super::verify::earlier_run(&dir, &[SUMMARY_JSON], true).map_err(|e| e.to_string()).and_then(|m| {
            let bytes = std::fs::read(dir.join(SUMMARY_JSON)).map_err(|e| format!("summary.json: {e}"))?;
            let s: Summary = serde_json::from_slice(&bytes).map_err(|e| format!("summary.json: {e}"))?;
            Ok(TrendPoint::of(&m.finished, &s))
        });
        match read {
            Ok(p) => points.push(p),
            Err(why) => left_out.push((dir, why)),
        }
    }
    points.sort_by(|a, b| a.finished.cmp(&b.finished));
    (points, left_out)
}
