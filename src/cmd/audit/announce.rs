//! What a run says on stderr: where it starts from, and how it ended. Under
//! `--quiet` every line about the end of the run goes into the one closing
//! line (the cron mail's subject matter), and a clean run says nothing.

use super::super::error::Exit;
use super::super::settings::{ApiTarget, RunSettings};
use super::resume::Resumed;
use super::seal::Sealed;
use super::verdict::{verdict_advice, verdict_warnings};
use crate::report::changes::CHANGE_KINDS;
use crate::report::summary::Summary;
use crate::run::input::IdList;
use crate::run::stop::StopReason;

/// The opening lines: the input and where it goes, and what is resumed.
pub(super) fn start(settings: &RunSettings, ids: &IdList, r: &Resumed, todo_count: usize, endpoint: &str) {
    eprintln!(
        "vod-image-audit: {} unique ids ({} rows, {} duplicates, {} rejected) from {} -> {} at {} via {}",
        ids.ids.len(),
        ids.input_rows,
        ids.duplicates,
        ids.rejected.len(),
        settings.input.display(),
        settings.out.display(),
        settings.audit.qps.map_or("no client-side limit of".to_owned(), |q| format!("{q}")) + " calls/s",
        endpoint
    );
    let resumed = r.resumed;
    if let Some(of) = r.retry_of.as_ref().filter(|_| r.seeded) {
        eprintln!(
            "vod-image-audit: retrying the failed ids of {}: {resumed} ids settled there, {todo_count} to go",
            of.dir
        );
    } else if resumed > 0 || !r.awaiting.is_empty() {
        eprintln!(
            "vod-image-audit: resuming: {resumed} ids already settled in {}{}, {todo_count} to go{}",
            r.journal.path().display(),
            if r.torn { " (a torn last line was cut off)" } else { "" },
            match r.awaiting.len() {
                0 => String::new(),
                n => format!(" ({n} of them found, waiting only for their GetMediaAuditResult)"),
            }
        );
    }
}

/// How the run ended: the lines for people, then the closing line.
pub(super) struct Ending<'a> {
    pub settings: &'a RunSettings,
    pub target: &'a ApiTarget,
    pub summary: &'a Summary,
    /// The manifest and its digest.
    pub sealed: &'a Sealed,
    pub stop: Option<&'a StopReason>,
    pub exit: Exit,
    pub alerted: &'a [String],
}

/// Prints the ending.
pub(super) fn end(e: &Ending<'_>) {
    let settings = e.settings;
    let mut folded: Vec<String> = Vec::new();
    let mut say = |line: String| match settings.quiet {
        true => folded.push(line),
        false => eprintln!("vod-image-audit: {line}"),
    };
    for line in warnings(e) {
        say(line);
    }
    if let Some(c) = e.summary.changes.as_ref().filter(|c| !c.settings_changed.is_empty() && !settings.quiet) {
        let explained: u64 = c.explained.values().sum();
        eprintln!(
            "vod-image-audit: {} used other settings ({}): the {explained} change(s) they explain are marked explained_by in changes.csv and not counted by --fail-on",
            c.compared_with.as_deref().unwrap_or("the earlier run"),
            c.settings_changed.join(", ")
        );
    }
    if e.exit == Exit::Alert {
        say(format!("alert (--fail-on): {}", e.alerted.join(", ")));
    }
    // --quiet is silent on success; a run that failed ids, stopped or
    // alerted still says so in one line, for the cron mail.
    if !settings.quiet || e.exit != Exit::Ok {
        let line = closing_line(e);
        let line = match folded.is_empty() {
            true => line,
            false => format!("{line} | {}", folded.join(" | ")),
        };
        eprintln!("{line}");
    }
    if !settings.quiet {
        eprintln!(
            "vod-image-audit: manifest.json SHA-256 {} (keep it elsewhere; `vod-image-audit verify --manifest-sha256 HEX {}` proves the reports against it)",
            e.sealed.sha256,
            settings.out.display()
        );
    }
}

/// The lines about what the report rests on, in the order people need them:
/// too few verdicts, the verdict's warnings, the stop, a comparison that says little.
fn warnings(e: &Ending<'_>) -> Vec<String> {
    let (settings, summary) = (e.settings, e.summary);
    let mut lines = Vec::new();
    if e.exit == Exit::AuditStatusMissing {
        let c = &summary.verdict_coverage;
        lines.push(format!(
            "no verdict for most images: {} of {} found images ({}) have one, below --min-audit-status {}; the blocked count ({}) cannot be trusted, since an image without a verdict may be blocked. {}",
            c.with_verdict,
            c.found,
            c.percent(),
            settings.min_audit_status,
            summary.blocked(),
            verdict_advice(settings.audit.audit_source, summary)
        ));
    }
    lines.extend(verdict_warnings(summary).into_iter().map(|l| format!("warning: {l}")));
    if let Some(r) = e.stop {
        lines.push(match r {
            StopReason::ModerationUnavailable(_) => {
                format!("{} (this run's region: {})", r.describe(), e.target.region)
            }
            _ => r.describe(),
        });
        lines.push(format!("the report in {} is marked incomplete", settings.out.display()));
    }
    if let Some(c) = summary.changes.as_ref().filter(|c| c.compared * 2 < summary.totals.unique_ids) {
        // Kept under --quiet (in the one line): the comparison says little.
        lines.push(format!(
            "warning: only {} of {} ids were compared with {} (the rest were not in both runs, or failed): its changes say little about tonight",
            c.compared,
            summary.totals.unique_ids,
            c.compared_with.as_deref().unwrap_or("the earlier run")
        ));
    }
    lines
}

/// `done: N ids: ...; report in DIR`.
fn closing_line(e: &Ending<'_>) -> String {
    let (summary, manifest) = (e.summary, &e.sealed.manifest);
    let t = &summary.totals;
    let changes = match &summary.changes {
        Some(c) => format!(
            "; changes: {}",
            CHANGE_KINDS
                .iter()
                .map(|k| format!("{k} {}", c.counts.get(*k).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    let per_api = match manifest.calls.by_action.len() {
        0 | 1 => String::new(),
        _ => format!(
            " ({})",
            manifest
                .calls
                .by_action
                .iter()
                .map(|(a, c)| format!("{a} {}, {} throttled", c.calls, c.throttled))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    format!(
        "vod-image-audit: {}: {} ids: {} found ({} blocked; verdict on {}), {} missing, {} failed{}; {} rejected rows; {} calls, {} throttled{per_api}{changes}; report in {}",
        if summary.complete { "done" } else { "stopped" },
        t.unique_ids,
        t.found,
        summary.blocked(),
        summary.verdict_coverage.percent(),
        t.missing,
        t.failed,
        match t.not_attempted {
            0 => String::new(),
            n => format!(", {n} not attempted"),
        },
        t.invalid,
        manifest.calls.total,
        manifest.calls.throttled,
        e.settings.out.display(),
    )
}
