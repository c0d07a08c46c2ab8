//! What a run tells machines when it ends: the metrics file for the
//! node_exporter textfile collector (`run --metrics-file`) and the one JSON
//! line for wrappers (`run --json`).
//!
//! Owns the metric names, the text exposition encoder and the JSON shape.
//! It reads the summary and the manifest the run already wrote; it decides
//! nothing about the run. The encoder is a few lines written here rather
//! than a metrics crate: a one-shot file of gauges needs no registry, and
//! label escaping is pinned by the tests below.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::{CmdError, Exit};
use super::settings::RunSettings;
use crate::domain::ledger::Ledger;
use crate::report::summary::{Summary, Totals};
use crate::rundir::files::write_atomic;
use crate::rundir::manifest::Manifest;

/// Every metric name starts with this.
const PREFIX: &str = "vod_image_audit_";
/// The series kept from the previous file when a run does not succeed.
const LAST_SUCCESS: &str = "last_success_timestamp_seconds";

/// How a run ended, for the metrics file and the JSON line.
pub(crate) struct RunEnd<'a> {
    pub summary: &'a Summary,
    pub manifest: &'a Manifest,
    pub manifest_sha256: &'a str,
    pub exit: Exit,
    pub dir: &'a Path,
    pub started: SystemTime,
}

/// The end of `run`: writes `--metrics-file` and prints the `--json` line,
/// when asked. A metrics file that cannot be written is an error (exit 4)
/// naming `--metrics-file` and the path; the reports are written and
/// complete all the same (the JSON line is still printed).
pub(crate) fn after_run(
    settings: &RunSettings,
    summary: &Summary,
    manifest: &Manifest,
    manifest_sha256: &str,
    exit: Exit,
    dir: &Path,
    started: SystemTime,
) -> Result<(), CmdError> {
    let end = RunEnd { summary, manifest, manifest_sha256, exit, dir, started };
    let mut written = Ok(());
    if let Some(path) = &settings.metrics_file {
        crate::rundir::files::crash_point("write --metrics-file");
        if let Err(e) = write_metrics(path, &end) {
            written = Err(CmdError::new(
                Exit::Stopped,
                anyhow::anyhow!(
                    "--metrics-file {}: {e}; the reports in {} are complete, the metrics file was not written: choose a --metrics-file that is a plain file (or absent) in a directory you can write",
                    path.display(),
                    dir.display()
                ),
            ));
        }
    }
    if settings.json {
        let line = serde_json::to_string(&json_line(&end)).expect("a JSON value serializes");
        // A closed stdout is the wrapper's business; the exit code still says how it went.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
    written
}

/// `--json`: the summary's totals, blocked, the changes, where the reports
/// are and the manifest's digest.
pub(crate) fn json_line(end: &RunEnd<'_>) -> serde_json::Value {
    let s = end.summary;
    serde_json::json!({
        "run_dir": end.dir.display().to_string(),
        "exit_code": end.exit.code(),
        "complete": s.complete,
        "stop_reason": s.stop_reason,
        "totals": s.totals,
        "blocked": s.blocked(),
        "unreviewed_blocked": s.review.unreviewed_blocked,
        "by_verdict": s.by_verdict,
        "audit_status_coverage": s.audit_status_coverage,
        "verdict_coverage": s.verdict_coverage,
        "changes": s.changes.as_ref().map(|c| &c.counts),
        "calls": end.manifest.calls,
        "files": end.manifest.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        "manifest_sha256": end.manifest_sha256,
    })
}

/// Writes the metrics file atomically (a temporary file beside it, then a
/// rename), as the textfile collector needs: it must never read half a file.
fn write_metrics(path: &Path, end: &RunEnd<'_>) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| std::io::Error::other("no file name"))?;
    // Said here in its own words: the generic refusals speak of --out.
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(std::io::Error::other("a symbolic link: the metrics file is never written through a link"))
        }
        Ok(m) if m.is_dir() => return Err(std::io::Error::other("a directory")),
        _ => {}
    }
    let previous =
        std::fs::read_to_string(path).ok().and_then(|t| sample_value(&t, &format!("{PREFIX}{LAST_SUCCESS}")));
    let text = exposition(end, SystemTime::now(), previous);
    write_atomic(dir, name, |w| w.write_all(text.as_bytes())).map(drop)
}

/// The metrics text of a run that ended at `now`; `previous_success` is the
/// last success the previous file recorded.
fn exposition(end: &RunEnd<'_>, now: SystemTime, previous_success: Option<f64>) -> String {
    let mut e = Exposition::default();
    ids_and_images(&mut e, end.summary);
    calls_and_changes(&mut e, end);
    run_end(&mut e, end, now);
    // "Last complete run": an alert (8) or too few verdicts (9) finished
    // every id and wrote every report; only a stop or failures do not.
    let success = match end.exit {
        Exit::Ok | Exit::Alert | Exit::AuditStatusMissing => {
            Some(humantime::parse_rfc3339(&end.manifest.finished).map_or(unix_seconds(now), unix_seconds))
        }
        _ => previous_success,
    };
    if let Some(at) = success {
        e.gauge(LAST_SUCCESS, "When a run last finished complete: exit code 0, 8 or 9 (Unix time).", at);
    }
    e.text
}

/// The ids by outcome, the ledger, and the found images by verdict,
/// `AuditStatus`, `Status` and review.
fn ids_and_images(e: &mut Exposition, s: &Summary) {
    e.family(
        "ids",
        "Unique ids of the last run by outcome.",
        Totals::outcome_rows().iter().map(|r| (vec![("outcome", r.key)], (r.count)(&s.totals) as f64)),
    );
    e.family(
        "ledger",
        &format!("The last run's completeness ledger, by row ({}).", Ledger::SUMS),
        s.ledger.rows().map(|(key, _, n)| (vec![("row", key)], n as f64)),
    );
    e.gauge("blocked", "Found images whose verdict is Blocked.", s.blocked() as f64);
    e.family(
        "images_by_verdict",
        "Found images by verdict (AuditStatus when present, else moderation's Suggestion, else Unknown).",
        s.by_verdict.iter().map(|(k, v)| (vec![("verdict", k.as_str())], *v as f64)),
    );
    e.gauge(
        "disagreements",
        "Found images whose AuditStatus overrides moderation's Suggestion (cleared or blocked by a person).",
        s.disagreement_count() as f64,
    );
    e.family(
        "images_by_audit_status",
        "Found images by AuditStatus (Unknown: not in the answer).",
        s.by_audit_status.iter().map(|(k, v)| (vec![("audit_status", k.as_str())], *v as f64)),
    );
    e.family(
        "images_by_status",
        "Found images by Status.",
        s.by_status.iter().map(|(k, v)| (vec![("status", k.as_str())], *v as f64)),
    );
    e.gauge(
        "unreviewed_blocked",
        "Blocked images with no decision in the review ledger (--reviews).",
        s.review.unreviewed_blocked as f64,
    );
    if let Some(days) = s.review.oldest_unreviewed_age_days {
        e.gauge(
            "oldest_unreviewed_blocked_age_days",
            "Days since the oldest unreviewed blocked image was first seen blocked.",
            days as f64,
        );
    }
}

/// The calls by API action, the retries, and the changes since the run
/// compared with.
fn calls_and_changes(e: &mut Exposition, end: &RunEnd<'_>) {
    let (s, m) = (end.summary, end.manifest);
    e.family(
        "calls",
        "API calls the last run made, retries included, by API action.",
        m.calls.by_action.iter().map(|(a, c)| (vec![("action", a.as_str())], c.calls as f64)),
    );
    e.family(
        "throttled_calls",
        "Calls of the last run answered as throttled, by API action.",
        m.calls.by_action.iter().map(|(a, c)| (vec![("action", a.as_str())], c.throttled as f64)),
    );
    e.gauge("retries", "Calls of the last run that were retries.", m.calls.retries as f64);
    if let Some(c) = &s.changes {
        e.family(
            "changes",
            "Changes since the run compared with, by kind.",
            c.counts.iter().map(|(k, v)| (vec![("kind", k.as_str())], *v as f64)),
        );
    }
}

/// How the run ended: its time, exit code, completeness, coverage and
/// manifest digest.
fn run_end(e: &mut Exposition, end: &RunEnd<'_>, now: SystemTime) {
    let s = end.summary;
    let duration = now.duration_since(end.started).unwrap_or(Duration::ZERO);
    e.gauge("run_duration_seconds", "Wall time of the last run.", duration.as_secs_f64());
    e.gauge("exit_code", "Exit code of the last run (0: success).", f64::from(end.exit.code()));
    e.gauge("complete", "1 when the last run settled every id.", f64::from(u8::from(s.complete)));
    // No share when nothing was found: the series is left out rather than
    // reading 100 %.
    if let Some(share) = s.audit_status_coverage.share {
        e.gauge("audit_status_share", "Share of found images whose answer carried AuditStatus.", share);
    }
    if let Some(share) = s.verdict_coverage.share {
        e.gauge("verdict_share", "Share of found images with a verdict (not Unknown).", share);
    }
    e.gauge("last_run_timestamp_seconds", "When the last run finished (Unix time).", unix_seconds(now));
    // The digest a cron log cannot keep under --quiet: kept by the
    // monitoring, as an info series (the value is 1, the digest a label).
    e.family(
        "manifest_info",
        "The last run's manifest.json SHA-256 (verify --manifest-sha256 checks the run against it).",
        [(vec![("manifest_sha256", end.manifest_sha256)], 1.0)],
    );
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}

/// The value of the unlabelled sample `name` in exposition text, if any.
fn sample_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|v| v.split(' ').next()?.parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// The text exposition format, version 0.0.4: each family a `# HELP` and a
/// `# TYPE` line, then its samples, one group.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, [(Vec::new(), value)]);
    }

    /// A gauge family; none written when it has no sample.
    fn family<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
    ) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        let t = &mut self.text;
        let _ = writeln!(t, "# HELP {PREFIX}{name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
        let _ = writeln!(t, "# TYPE {PREFIX}{name} gauge");
        for (labels, value) in samples {
            let _ = write!(t, "{PREFIX}{name}");
            if !labels.is_empty() {
                let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
                let _ = write!(t, "{{{}}}", pairs.join(","));
            }
            let _ = writeln!(t, " {}", format_value(value));
        }
    }
}

/// A label value as the format quotes it: backslash, double quote and
/// line feed escaped.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: Go's float syntax, which Rust's `Display` matches for
/// finite numbers (no exponent, so always parseable).
fn format_value(v: f64) -> String {
    match v {
        v if v.is_nan() => "NaN".into(),
        v if v == f64::INFINITY => "+Inf".into(),
        v if v == f64::NEG_INFINITY => "-Inf".into(),
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("two\nlines"), "two\\nlines");
        let mut e = Exposition::default();
        e.family("x", "help \\ here\nnext", [(vec![("l", "q\"\n\\")], 1.0), (vec![("l", "b")], 0.5)]);
        e.family("empty", "no samples, no family", []);
        assert_eq!(
            e.text,
            "# HELP vod_image_audit_x help \\\\ here\\nnext\n# TYPE vod_image_audit_x gauge\n\
             vod_image_audit_x{l=\"q\\\"\\n\\\\\"} 1\nvod_image_audit_x{l=\"b\"} 0.5\n"
        );
    }

    #[test]
    fn values_are_go_floats() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(1.8e19), "18000000000000000000");
    }

    #[test]
    fn the_last_success_is_kept_unless_this_run_succeeded() {
        let summary = Summary::default();
        let manifest = Manifest { finished: "2026-01-02T03:04:05Z".into(), ..Default::default() };
        let end = |exit| RunEnd {
            summary: &summary,
            manifest: &manifest,
            manifest_sha256: "",
            exit,
            dir: Path::new("d"),
            started: UNIX_EPOCH,
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let name = "vod_image_audit_last_success_timestamp_seconds";
        let ok = exposition(&end(Exit::Ok), now, Some(5.0));
        assert_eq!(sample_value(&ok, name), Some(1_767_323_045.0));
        let failed = exposition(&end(Exit::Stopped), now, Some(1_767_323_045.0));
        assert_eq!(sample_value(&failed, name), Some(1_767_323_045.0));
        assert_eq!(sample_value(&failed, "vod_image_audit_exit_code"), Some(4.0));
        assert!(!exposition(&end(Exit::Failures), now, None).contains(name));
        for complete in [Exit::Alert, Exit::AuditStatusMissing] {
            let text = exposition(&end(complete), now, Some(5.0));
            assert_eq!(sample_value(&text, name), Some(1_767_323_045.0), "exit {} is a complete run", complete.code());
        }
        assert_eq!(sample_value("x_total 3\nx 2 17\n", "x"), Some(2.0));
        assert_eq!(sample_value("x NaN\n", "x"), None);
    }
}
