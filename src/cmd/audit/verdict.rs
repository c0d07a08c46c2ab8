//! The exit code of a run, from what happened: a pure function of the stop
//! (if any), the summary the reports were written from, whether an
//! `--all-images` listing was complete, and the thresholds the operator set.
//! It is the one place where a run's outcome becomes a number, so that cron
//! can tell "the service stopped us" (4) from "the report is exact but
//! alarming" (8, 9, 10) from "some ids failed" (3).
//!
//! Precedence, highest first: ids unaccounted for (1, a bug), a stop (4; a
//! signal 130), an incomplete inventory (10), too few verdicts (9), an
//! alert (8), failed ids (3), else 0. A stopped run's report is incomplete,
//! so nothing it counts can raise an alert; an incomplete inventory makes
//! every later count partial, so it outranks them.

use super::super::error::Exit;
use super::super::settings::{RunSettings, UNREVIEWED_BLOCKED};
use crate::report::summary::Summary;
use crate::report::verdict as rule;
use crate::run::settings::AuditSource;
use crate::run::stop::{StopReason, MODERATION_REGION_NOTE};

/// The operator's thresholds that turn counts into an exit code.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules<'a> {
    /// `--min-audit-status`: the share of found images that must have a verdict.
    pub min_verdicts: f64,
    /// `--fail-on`: the kinds to alert on.
    pub fail_on: &'a [String],
}

impl<'a> Rules<'a> {
    pub(super) fn of(settings: &'a RunSettings) -> Self {
        Rules { min_verdicts: settings.min_audit_status, fail_on: &settings.fail_on }
    }
}

/// The run's exit code, and what `--fail-on` found (for the message and
/// the notification: counted once).
#[derive(Debug)]
pub(super) struct Decision {
    pub exit: Exit,
    /// `kind count` for each kind `--fail-on` names that happened.
    pub alerted: Vec<String>,
}

/// The run's exit code. `inventory_complete` is `None` when the ids came
/// from a file, not from an `--all-images` listing.
pub(super) fn verdict(
    stop: Option<&StopReason>,
    summary: &Summary,
    inventory_complete: Option<bool>,
    rules: Rules<'_>,
) -> Decision {
    let alerted = alerts(rules.fail_on, summary);
    let exit = match stop {
        _ if summary.ledger.unaccounted > 0 => Exit::Internal,
        Some(StopReason::Interrupted) => Exit::Interrupted,
        Some(_) => Exit::Stopped,
        None if inventory_complete == Some(false) => Exit::InventoryIncomplete,
        None if summary.verdict_coverage.below(rules.min_verdicts) => Exit::AuditStatusMissing,
        None if !alerted.is_empty() => Exit::Alert,
        None if summary.totals.failed > 0 => Exit::Failures,
        None => Exit::Ok,
    };
    Decision { exit, alerted }
}

/// What `--fail-on` asked to be told of and happened: `kind count` each.
fn alerts(fail_on: &[String], summary: &Summary) -> Vec<String> {
    fail_on
        .iter()
        .filter_map(|kind| {
            let n = match kind.as_str() {
                "failed" => summary.totals.failed,
                UNREVIEWED_BLOCKED => summary.review.unreviewed_blocked,
                // A change the settings explain is no news about the account.
                kind => summary.changes.as_ref().map_or(0, |c| c.news(kind)),
            };
            (n > 0).then(|| format!("{kind} {n}"))
        })
        .collect()
}

/// What to do when too few images have a verdict, for the mode the run
/// was in.
pub(super) fn verdict_advice(source: AuditSource, summary: &Summary) -> String {
    let unavailable = summary.by_reason.keys().any(|r| r.starts_with(rule::MODERATION_UNAVAILABLE));
    match source {
        AuditSource::ImageInfo => "The answers lack AuditStatus: run again with --audit-source both, which asks GetMediaAuditResult (the automated moderation) about the images without it, or check the account's answers with `vod-image-audit check`.".to_owned(),
        _ if unavailable => format!("GetMediaAuditResult is refused for this account (reason moderation-unavailable in images.csv): {MODERATION_REGION_NOTE}."),
        _ => "GetMediaAuditResult gave no verdict for them either (never reviewed, or a value this tool does not know: see unrecognised_values in summary.json). Check the account's moderation settings, or lower --min-audit-status if unreviewed images are expected.".to_owned(),
    }
}

/// Lines that say the verdict rests on less than it should, once each.
pub(super) fn verdict_warnings(summary: &Summary) -> Vec<String> {
    let mut lines = Vec::new();
    let unavailable: Vec<(&String, &u64)> =
        summary.by_reason.iter().filter(|(r, _)| r.starts_with(rule::MODERATION_UNAVAILABLE)).collect();
    for (reason, n) in unavailable {
        let code = reason.split_once(':').map_or("", |(_, c)| c);
        lines.push(format!(
            "GetMediaAuditResult is refused for this account ({code}): {n} images that needed it have no moderation verdict (reason {reason}); the audit went on with AuditStatus alone; {MODERATION_REGION_NOTE}",
            reason = crate::api::error::escape_for_terminal(reason),
            code = crate::api::error::escape_for_terminal(code),
        ));
    }
    if !summary.unrecognised_values.is_empty() {
        let values: Vec<String> = summary
            .unrecognised_values
            .iter()
            .take(5)
            .map(|(v, n)| format!("{} ({n})", crate::api::error::escape_for_terminal(v)))
            .collect();
        lines.push(format!(
            "values this tool does not recognise were counted as verdict Unknown: {}{}; see unrecognised_values in summary.json",
            values.join(", "),
            if summary.unrecognised_values.len() > 5 { ", ..." } else { "" }
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::changes::ChangeCounts;
    use crate::rundir::manifest::VerdictCoverage;

    /// A summary of `found` images, `with_verdict` of them with a verdict,
    /// `failed` failed ids, `newly_blocked` changes since the earlier run.
    fn summary(found: u64, with_verdict: u64, failed: u64, newly_blocked: u64) -> Summary {
        let mut s = Summary::default();
        s.totals.found = found;
        s.totals.failed = failed;
        s.verdict_coverage = VerdictCoverage::new(found, with_verdict);
        if newly_blocked > 0 {
            let mut c = ChangeCounts::default();
            c.counts.insert("newly_blocked".to_owned(), newly_blocked);
            s.changes = Some(c);
        }
        s
    }

    /// The stop, the summary, the inventory's completeness, the rules, the exit code.
    type Row<'a> = (Option<&'a StopReason>, &'a Summary, Option<bool>, Rules<'a>, Exit);

    fn fatal() -> StopReason {
        StopReason::Fatal(crate::api::answer::bad_answer(403, "refused".to_owned()))
    }

    #[test]
    fn each_outcome_has_its_exit_code_and_the_higher_one_wins() {
        let fail_on = ["newly_blocked".to_owned(), "failed".to_owned()];
        let rules = Rules { min_verdicts: 0.95, fail_on: &fail_on };
        let quiet = Rules { min_verdicts: 0.0, fail_on: &[] };
        let clean = summary(100, 100, 0, 0);
        let mut unaccounted = summary(100, 100, 0, 0);
        unaccounted.ledger.unaccounted = 1;
        let few_verdicts = summary(100, 50, 3, 2);
        let alerting = summary(100, 100, 0, 2);
        let failing = summary(100, 100, 3, 0);
        let interrupted = StopReason::Interrupted;
        #[rustfmt::skip]
        let table: &[Row<'_>] = &[
            (None, &clean, None, rules, Exit::Ok),
            (None, &clean, Some(true), rules, Exit::Ok),
            (None, &unaccounted, None, rules, Exit::Internal),
            (Some(&interrupted), &unaccounted, None, rules, Exit::Internal),
            (Some(&fatal()), &clean, None, rules, Exit::Stopped),
            (Some(&fatal()), &few_verdicts, Some(false), rules, Exit::Stopped),
            (Some(&interrupted), &few_verdicts, None, rules, Exit::Interrupted),
            (None, &few_verdicts, Some(false), rules, Exit::InventoryIncomplete),
            (None, &few_verdicts, None, rules, Exit::AuditStatusMissing),
            (None, &few_verdicts, None, quiet, Exit::Failures),
            (None, &alerting, None, rules, Exit::Alert),
            (None, &alerting, None, quiet, Exit::Ok),
            (None, &failing, None, rules, Exit::Alert),
            (None, &failing, None, quiet, Exit::Failures),
        ];
        for (n, (stop, s, inventory, rules, want)) in table.iter().enumerate() {
            assert_eq!(verdict(*stop, s, *inventory, *rules).exit, *want, "row {n}");
        }
    }

    #[test]
    fn an_alert_names_each_kind_with_its_count_and_explained_changes_are_not_news() {
        let fail_on = ["newly_blocked".to_owned(), "failed".to_owned(), "gone".to_owned()];
        let mut s = summary(10, 10, 2, 3);
        assert_eq!(alerts(&fail_on, &s), ["newly_blocked 3", "failed 2"]);
        s.changes.as_mut().map(|c| c.explained.insert("newly_blocked".to_owned(), 3));
        assert_eq!(alerts(&fail_on, &s), ["failed 2"]);
    }
}
