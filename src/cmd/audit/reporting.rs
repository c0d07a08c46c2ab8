//! The report pass: the facts of the run, then every report written from
//! the journal and the outcomes cut short, off the async runtime (a signal
//! is still heard while the disk works).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::super::error::CmdError;
use super::super::settings::{ApiTarget, RunSettings};
use crate::report::pass::{self, Expected, RunFacts};
use crate::report::summary::Summary;
use crate::report::{changes, sort, trend};
use crate::run::input::{IdList, InputSource};
use crate::rundir::files::FileDigest;
use crate::rundir::manifest::Manifest;
use crate::rundir::{self, RunDir};

/// The reports written: their summary and digests, and the facts they state.
pub(super) struct Reported {
    pub summary: Summary,
    pub files: Vec<FileDigest>,
    pub facts: RunFacts,
    pub ids: IdList,
}

/// What the run was: where, when, against what; the trend's earlier runs;
/// the settings the compared run used otherwise.
pub(super) fn facts(
    settings: &RunSettings,
    target: &ApiTarget,
    dir: &RunDir,
    ids: &IdList,
    endpoint: String,
    started: SystemTime,
    previous: Option<&Path>,
) -> RunFacts {
    RunFacts {
        started: humantime::format_rfc3339_seconds(started).to_string(),
        finished: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        input: settings.input.display(),
        input_sha256: ids.sha256.clone(),
        endpoint,
        region: target.region.clone(),
        account: target.identity.as_ref().map(|i| i.account_id.clone()),
        earlier: earlier_runs(settings, dir),
        inventory: matches!(settings.input, InputSource::AllImages(_)),
        reviews: settings.compliance.reviews.clone(),
        // The earlier run was verified before use; one whose manifest cannot be read now explains nothing.
        settings_changed: previous
            .and_then(|p| Manifest::read(p).ok())
            .map(|m| {
                changes::settings_changes(
                    &m,
                    settings.audit.audit_source.as_str(),
                    settings.audit.api.as_str(),
                    &ids.id_column,
                )
            })
            .unwrap_or_default(),
    }
}

/// The runs beside this one for the trend, oldest first.
fn earlier_runs(settings: &RunSettings, dir: &RunDir) -> Vec<crate::report::trend::TrendPoint> {
    let parent = dir.path().parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (points, left_out) = trend::earlier_runs(parent, dir.path(), settings.trend_runs.saturating_sub(1));
    // Loud whatever --quiet says, as a run passed over for --compare-with.
    for (run, why) in left_out {
        eprintln!("vod-image-audit: the trend leaves out {}: {why}", run.display());
    }
    points
}

/// Writes every report from `journal` and the outcomes cut short.
pub(super) async fn write(
    settings: &RunSettings,
    dir: &RunDir,
    ids: IdList,
    journal: PathBuf,
    previous: Option<PathBuf>,
    facts: RunFacts,
    stop_reason: Option<String>,
) -> Result<Reported, CmdError> {
    let reports = settings.reports.clone();
    let out = dir.path().to_owned();
    let unsettled = dir.join(rundir::UNSETTLED);
    tokio::task::spawn_blocking(move || {
        let sources =
            [sort::Source { path: &journal, skip_lines: 1 }, sort::Source { path: &unsettled, skip_lines: 0 }];
        let expected = Expected {
            input_rows: ids.input_rows,
            blank_rows: ids.blank_rows,
            duplicates: ids.duplicates,
            unique_ids: ids.ids.len() as u64,
            rejected: &ids.rejected,
            sorted_ids: ids.ids.sorted(),
        };
        let written = pass::write_reports(&out, &reports, expected, &sources, previous.as_deref(), &facts, stop_reason);
        if written.is_ok() {
            crate::rundir::files::crash_point("unlink .unsettled.jsonl.tmp");
            let _ = std::fs::remove_file(&unsettled);
        }
        written.map(|(summary, files)| Reported { summary, files, facts, ids })
    })
    .await
    .map_err(CmdError::internal)?
    .map_err(|e| CmdError::disk(format!("writing the reports in {}", settings.out.display()), e))
}
