//! `run --dry-run`: the input read and checked, the credentials and the
//! endpoint resolved, and what a run would do printed on stdout. No call is
//! made and nothing is written: resolving the credentials reads the
//! environment and the credential files only (a temporary key's source, STS
//! or the metadata service, is first called when a run starts).

use std::fmt::Write as _;
use std::time::Duration;

use super::error::{CmdError, CmdResult, Exit};
use super::settings::{ApiTarget, RunSettings};
use crate::run::input::{delimiter_name, IdList};
use crate::run::lanes::Action;
use crate::run::settings::{ApiMode, AuditSettings, AuditSource};

/// `n thing` or `n things`.
fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// The plan of a run, as printed.
pub(crate) fn plan_text(settings: &RunSettings, ids: &IdList, target: &ApiTarget) -> String {
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
pub(crate) fn print_plan(
    settings: &RunSettings,
    ids: Option<&IdList>,
    target: &ApiTarget,
    sources: &super::values::Sources,
) -> CmdResult {
    use std::io::Write;
    let mut text = match ids {
        Some(ids) => plan_text(settings, ids, target),
        None => format!(
            "dry run: no call made, nothing written\nwould list {} (SearchMedia), then audit every image listed\n",
            settings.input.display()
        ),
    };
    for line in sources.lines() {
        text.push_str(&line);
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(CmdError::internal)?;
    Ok(Exit::Ok)
}

/// Ids per second `--api` would look up at these rates; none when a lane
/// it uses has no limit. `--api mixed` adds the two lanes' rates.
fn lookup_rate(a: &AuditSettings, api: ApiMode) -> Option<f64> {
    let single = a.rate_of(Action::GetImageInfo).map(|r| f64::from(r.get()));
    let batch = a.rate_of(Action::GetImageInfos).map(|r| f64::from(r.get()) * BATCH as f64);
    match api {
        ApiMode::Single => single,
        ApiMode::Batch => batch,
        ApiMode::Mixed => Some(single? + batch?),
    }
}

const BATCH: usize = crate::api::client::MAX_BATCH_IDS;

fn secs(n: u64, per_sec: f64) -> Duration {
    Duration::from_secs((n as f64 / per_sec).ceil() as u64)
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
    let per_sec = lookup_rate(a, a.api);
    // The lookups' calls: --api mixed shares the ids out by the two rates.
    let single_share = match (a.api, per_sec) {
        (ApiMode::Single, _) => 1.0,
        (ApiMode::Batch, _) => 0.0,
        (ApiMode::Mixed, Some(total)) => a.rate_of(Action::GetImageInfo).map_or(0.5, |r| f64::from(r.get()) / total),
        (ApiMode::Mixed, None) => 0.5,
    };
    let singles = (unique as f64 * single_share).round() as u64;
    let mut calls = Vec::new();
    if singles > 0 {
        calls.push(format!("GetImageInfo {singles} at {}", rate(Action::GetImageInfo)));
    }
    if singles < unique {
        calls.push(format!(
            "GetImageInfos {} at {} (GetImageInfo again for answers without AuditStatus)",
            (unique - singles).div_ceil(BATCH as u64),
            rate(Action::GetImageInfos)
        ));
    }
    let lookups = per_sec.map(|r| secs(unique, r));
    let mut moderation = None;
    let moderated = !matches!(a.audit_source, AuditSource::ImageInfo);
    if moderated {
        // Every found image, or (both) those the account did not call
        // Normal: at most one call per id, how many is known only from the
        // answers.
        moderation = a.rate_of(Action::GetMediaAuditResult).map(|r| secs(unique, f64::from(r.get())));
        calls.push(format!(
            "GetMediaAuditResult at most {unique} at {}{}",
            rate(Action::GetMediaAuditResult),
            moderation.map_or(String::new(), |t| format!(": up to {}", humantime::format_duration(t)))
        ));
    }
    lines.push(format!(
        "calls: {}{}",
        calls.join("; "),
        lookups.map_or(String::new(), |t| format!("; the lookups {}", humantime::format_duration(t)))
    ));
    let unlimited_moderation = moderated && a.rate_of(Action::GetMediaAuditResult).is_none();
    lines.push(match (lookups, moderation) {
        (Some(l), m) if !unlimited_moderation => format!(
            "estimated duration: {}{} (the slowest API's; retries and throttling add to it)",
            if m.is_some_and(|m| m > l) { "up to " } else { "" },
            humantime::format_duration(m.map_or(l, |m| m.max(l)))
        ),
        _ => format!("estimated duration: unknown: no client-side limit ({unique} ids as fast as the server answers)"),
    });
    let each: Vec<String> = ApiMode::NAMES
        .iter()
        .filter_map(|name| {
            let api: ApiMode = name.parse().ok()?;
            Some(format!(
                "{name} {}",
                lookup_rate(a, api)
                    .map_or("unknown".into(), |r| humantime::format_duration(secs(unique, r)).to_string())
            ))
        })
        .collect();
    lines.push(format!("lookups by --api: {}", each.join(", ")));
    lines
}
