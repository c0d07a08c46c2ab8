//! `run --dry-run`: the input read and checked, the credentials and the
//! endpoint resolved, and what a run would do printed on stdout. No call is
//! made and nothing is written: resolving the credentials reads the
//! environment and the credential files only (a temporary key's source, STS
//! or the metadata service, is first called when a run starts).

use std::fmt::Write as _;
use std::time::Duration;

use super::error::{CmdError, CmdResult, Exit};
use super::settings::{ApiTarget, RunSettings};
use crate::run::engine::{Action, ApiMode, AuditSource};
use crate::run::input::{delimiter_name, IdList};

/// `n thing` or `n things`.
fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// The plan of a run, as printed.
pub fn plan_text(settings: &RunSettings, ids: &IdList, target: &ApiTarget) -> String {
    let input = &settings.reading;
    let unique = ids.ids.len() as u64;
    let mut s = String::new();
    let mut line = |text: String| {
        s.push_str(&text);
        s.push('\n');
    };
    line("dry run: no call made, nothing written".to_owned());
    line(format!("input: {} ({} bytes, sha256 {})", settings.input.display(), ids.bytes, ids.sha256));
    line(format!(
        "ids: {} from {} ({}, {} rejected); {} skipped",
        count(unique, "unique id"),
        count(ids.input_rows, "row"),
        count(ids.duplicates, "duplicate"),
        ids.rejected.len(),
        count(ids.blank_rows, "blank row"),
    ));
    let how = if input.delimiter.is_some() { "--delimiter" } else { "sniffed from the header" };
    line(format!("delimiter: {} ({how})", delimiter_name(ids.delimiter)));
    line(format!("id column: {}", ids.id_column));
    line(format!("region: {}", target.region));
    line(format!("endpoint: {}", target.client.endpoint.as_str()));
    let mut credentials = format!("credentials: {}", target.credentials.source);
    if target.credentials.kind.renews() {
        let _ = write!(
            credentials,
            " (temporary keys: fetched from {} when the run starts, not now)",
            target.client.sts_endpoint.as_str()
        );
    }
    line(credentials);
    line(format!("operation: {}, audit source: {}", settings.audit.api.as_str(), settings.audit.audit_source.as_str()));
    for l in rate_lines(settings, unique) {
        line(l);
    }
    let formats: Vec<&str> = settings.reports.formats.iter().map(|f| f.as_str()).collect();
    line(format!("reports: {} ({})", settings.out.display(), formats.join(", ")));
    if !ids.rejected.is_empty() {
        line(format!(
            "rejected rows: {} would be listed in {} (--max-rejected {})",
            ids.rejected.len(),
            settings.out.join("rejected.csv").display(),
            input.max_rejected
        ));
    }
    s
}

/// Prints the plan; exit 0.
/// `ids`: none for `--all-images`, whose ids are listed in the run.
pub fn print_plan(settings: &RunSettings, ids: Option<&IdList>, target: &ApiTarget) -> CmdResult {
    use std::io::Write;
    let text = match ids {
        Some(ids) => plan_text(settings, ids, target),
        None => format!(
            "dry run: no call made, nothing written\nwould list {} (SearchMedia), then audit every image listed\n",
            settings.input.display()
        ),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(CmdError::internal)?;
    Ok(Exit::Ok)
}

/// Each API's rate, its estimated calls, and the estimated wall time: the
/// slowest API's, since each runs side by side at its own rate.
fn rate_lines(settings: &RunSettings, unique: u64) -> Vec<String> {
    let a = &settings.audit;
    let rate = |action: Action| a.rate_of(action).map_or("no limit".to_owned(), |r| format!("{r}/s"));
    let mut lines = vec![format!(
        "rates: {} (each API at its own rate; --qps is GetImageInfo's, the others the same share of their documented quotas unless --api-qps names them)",
        Action::ALL.iter().map(|x| format!("{} {}", x.as_str(), rate(*x))).collect::<Vec<_>>().join(", ")
    )];
    let (lookup, per_call) = match a.api {
        ApiMode::Single => (Action::GetImageInfo, 1),
        ApiMode::Batch => (Action::GetImageInfos, crate::api::client::MAX_BATCH_IDS as u64),
    };
    // (action, calls, at most?)
    let mut calls = vec![(lookup, unique.div_ceil(per_call), false)];
    match a.audit_source {
        AuditSource::ImageInfo => {}
        // Every found image, or (both) those the account did not call Normal:
        // at most one call per id, how many is known only from the answers.
        AuditSource::MediaAudit | AuditSource::Both => calls.push((Action::GetMediaAuditResult, unique, true)),
    }
    let mut slowest: Option<Duration> = Some(Duration::ZERO);
    for (action, n, at_most) in &calls {
        let time = a.rate_of(*action).map(|r| Duration::from_secs(n.div_ceil(u64::from(r.get()))));
        lines.push(format!(
            "calls: {} {}{n} at {}{}",
            action.as_str(),
            if *at_most { "at most " } else { "" },
            rate(*action),
            time.map_or(String::new(), |t| format!(": {}", humantime::format_duration(t)))
        ));
        slowest = match (slowest, time) {
            (Some(s), Some(t)) => Some(s.max(t)),
            _ => None,
        };
    }
    lines.push(match slowest {
        Some(t) => format!(
            "estimated duration: {}{} (the slowest API's; retries and throttling add to it)",
            if calls.iter().any(|c| c.2) { "up to " } else { "" },
            humantime::format_duration(t)
        ),
        None => {
            format!("estimated duration: unknown: no client-side limit ({unique} ids as fast as the server answers)")
        }
    });
    lines
}
