//! The summary: a fold over the settled records, in bounded memory.
//!
//! Owns the counts by outcome, verdict, raw `AuditStatus`, `Status`,
//! category and reason, the failures by error code, and the counts that say
//! how far the verdict can be trusted (its coverage, the values not
//! recognised, the disagreements between a person and the machine). Every
//! count of "blocked" is of the verdict ([`ImageRecord::is_blocked`]). Categories are keyed by `CateId`; the name shown is
//! the first one seen in `image_id` order, so the result does not depend on
//! the order the answers came in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::changes::ChangeCounts;
use super::verdict;
use crate::domain::ledger::{Ledger, Row};
use crate::domain::record::{ImageRecord, OutcomeKind, UNKNOWN};
use crate::domain::verdict::Verdict;
use crate::rundir::manifest::{AuditStatusCoverage, VerdictCoverage};

/// The accounting of the input and of the outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub input_rows: u64,
    pub unique_ids: u64,
    pub duplicates: u64,
    pub invalid: u64,
    pub found: u64,
    pub missing: u64,
    pub failed: u64,
    /// Never called: the run stopped first.
    #[serde(default)]
    pub not_attempted: u64,
}

impl Totals {
    /// The totals' rows, in the order every format lists them: the input's
    /// counts, then the unique ids by outcome ([`Totals::outcome_rows`]).
    /// Each repeats a row of the ledger (`invalid` is the ledger's
    /// `rejected`), whose words it takes.
    pub const ROWS: [Row<Totals>; 8] = [
        Self::row("input_rows", 0, |t| t.input_rows),
        Self::row("unique_ids", 4, |t| t.unique_ids),
        Self::row("duplicates", 3, |t| t.duplicates),
        Self::row("invalid", 2, |t| t.invalid),
        Self::row("found", 5, |t| t.found),
        Self::row("missing", 6, |t| t.missing),
        Self::row("failed", 7, |t| t.failed),
        Self::row("not_attempted", 8, |t| t.not_attempted),
    ];

    /// A row of the totals under `key`, labelled as the ledger's row `ledger_row`.
    const fn row(key: &'static str, ledger_row: usize, count: fn(&Totals) -> u64) -> Row<Totals> {
        Row { key, label: Ledger::ROWS[ledger_row].label, count }
    }

    /// The rows that count the unique ids by outcome, `found` to
    /// `not_attempted`: the words of [`OutcomeKind`].
    pub fn outcome_rows() -> &'static [Row<Totals>] {
        &Self::ROWS[4..]
    }

    /// The totals a ledger implies: what `summary.json`'s totals must say
    /// beside it.
    pub fn of_ledger(l: &Ledger) -> Totals {
        Totals {
            input_rows: l.input_rows,
            unique_ids: l.unique_ids,
            duplicates: l.duplicates,
            invalid: l.rejected,
            found: l.found,
            missing: l.missing,
            failed: l.failed,
            not_attempted: l.not_attempted,
        }
    }
}

/// One category's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCount {
    pub cate_id: Option<i64>,
    pub cate_name: Option<String>,
    pub images: u64,
    pub blocked: u64,
}

/// `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// False when the run stopped before every id was settled.
    pub complete: bool,
    /// Why the run stopped early, if it did.
    pub stop_reason: Option<String>,
    pub totals: Totals,
    #[serde(default)]
    pub ledger: Ledger,
    /// Found images by verdict (`Blocked`, `Review`, `Normal`, `Unknown`).
    #[serde(default)]
    pub by_verdict: BTreeMap<String, u64>,
    /// Found images by the raw `AuditStatus` field (absent: `Unknown`).
    pub by_audit_status: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    pub by_category: Vec<CategoryCount>,
    pub failures_by_code: BTreeMap<String, u64>,
    /// Found images by reason (`module:label`), when moderation was asked.
    #[serde(default, alias = "by_audit_label")]
    pub by_reason: BTreeMap<String, u64>,
    /// Blocked or Review verdicts whose moderation answer named no label.
    #[serde(default)]
    pub unspecified_reasons: u64,
    /// Images where a person's decision overrode the machine's, by kind.
    #[serde(default)]
    pub disagreements: BTreeMap<String, u64>,
    /// Values this tool does not know (`Field=value`), and how often; each
    /// left its image `Unknown` unless a block decided it.
    #[serde(default)]
    pub unrecognised_values: BTreeMap<String, u64>,
    /// How many found images carried `AuditStatus` (the raw field).
    #[serde(default)]
    pub audit_status_coverage: AuditStatusCoverage,
    /// How many found images have a verdict: what the exit-9 guard judges.
    #[serde(default)]
    pub verdict_coverage: VerdictCoverage,
    /// Changes since an earlier run, when one was compared.
    #[serde(default)]
    pub changes: Option<ChangeCounts>,
    /// The blocked images the team has decided on and those still waiting
    /// (`--reviews`; without a ledger every blocked image waits).
    #[serde(default)]
    pub review: super::review::ReviewSummary,
}

impl Summary {
    /// Found images whose verdict is `Blocked`. A summary written before
    /// the verdict was counted has no `by_verdict`: its `by_audit_status`
    /// then held the verdict.
    pub fn blocked(&self) -> u64 {
        let counts = if self.by_verdict.is_empty() { &self.by_audit_status } else { &self.by_verdict };
        counts.get(Verdict::Blocked.as_str()).copied().unwrap_or(0)
    }

    /// Found images with a disagreement of any kind.
    pub fn disagreement_count(&self) -> u64 {
        self.disagreements.values().sum()
    }
}

#[cfg(test)]
/// Builds the summary from the input counts and the records (a fold).
/// Categories are keyed by `CateId`; the name shown is the first one seen in
/// `image_id` order, so the result does not depend on answer order.
pub fn summarize<'a>(
    input_rows: u64,
    duplicates: u64,
    invalid: u64,
    records: impl IntoIterator<Item = &'a ImageRecord>,
) -> Summary {
    let mut fold = Fold::new(input_rows, duplicates, invalid);
    for r in records {
        fold.add(r);
    }
    fold.finish()
}

/// The summary as a fold, one record at a time, for streams too large to
/// hold.
pub struct Fold {
    summary: Summary,
    categories: BTreeMap<Option<i64>, CategoryCount>,
    with_audit_status: u64,
    with_verdict: u64,
}

/// Counts one more `key` in `map`, copying the key only the first time.
fn count(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

impl Fold {
    /// Starts from the input's counts.
    pub fn new(input_rows: u64, duplicates: u64, invalid: u64) -> Self {
        Fold {
            summary: Summary {
                complete: true,
                totals: Totals { input_rows, duplicates, invalid, ..Default::default() },
                ..Default::default()
            },
            categories: BTreeMap::new(),
            with_audit_status: 0,
            with_verdict: 0,
        }
    }

    /// Counts one record.
    pub fn add(&mut self, r: &ImageRecord) {
        let s = &mut self.summary;
        s.totals.unique_ids += 1;
        match r.outcome {
            OutcomeKind::Found => s.totals.found += 1,
            OutcomeKind::Missing => s.totals.missing += 1,
            OutcomeKind::NotAttempted => s.totals.not_attempted += 1,
            OutcomeKind::Failed => {
                s.totals.failed += 1;
                count(&mut s.failures_by_code, r.error_code.as_deref().unwrap_or(UNKNOWN));
            }
        }
        if r.outcome != OutcomeKind::Found {
            return;
        }
        self.with_audit_status += u64::from(r.audit_status.is_some());
        let verdict = r.verdict().unwrap_or(Verdict::Unknown);
        self.with_verdict += u64::from(verdict != Verdict::Unknown);
        count(&mut s.by_verdict, verdict.as_str());
        for reason in r.reason_list() {
            count(&mut s.by_reason, reason);
            s.unspecified_reasons += u64::from(reason == verdict::UNSPECIFIED);
        }
        if let Some(d) = r.disagreement.as_deref().filter(|d| !d.is_empty()) {
            count(&mut s.disagreements, d);
        }
        for value in r.unrecognised.as_deref().unwrap_or_default().split(';').filter(|v| !v.is_empty()) {
            count(&mut s.unrecognised_values, value);
        }
        let blocked = verdict == Verdict::Blocked;
        count(&mut s.by_audit_status, r.audit_status.as_deref().unwrap_or(UNKNOWN));
        count(&mut s.by_status, r.status.as_deref().unwrap_or(UNKNOWN));
        let c = self.categories.entry(r.cate_id).or_insert_with(|| CategoryCount {
            cate_id: r.cate_id,
            cate_name: None,
            images: 0,
            blocked: 0,
        });
        if c.cate_name.is_none() {
            c.cate_name = r.cate_name.clone();
        }
        c.images += 1;
        c.blocked += u64::from(blocked);
    }

    /// The summary.
    pub fn finish(mut self) -> Summary {
        self.summary.by_category = self.categories.into_values().collect();
        self.summary.audit_status_coverage =
            AuditStatusCoverage::new(self.summary.totals.found, self.with_audit_status);
        self.summary.verdict_coverage = VerdictCoverage::new(self.summary.totals.found, self.with_verdict);
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{failed, found};
    use crate::run::outcome::Outcome;

    #[test]
    fn aggregation_counts_every_bucket() {
        let records = vec![
            found("a", Some("Normal"), Some("Normal"), Some((1, "News"))),
            found("b", Some("Blocked"), Some("Normal"), Some((1, "News"))),
            found("c", None, Some("Uploading"), None),
            found("d", Some("Blocked"), None, Some((2, "Sport, \"live\""))),
            Outcome::missing("e".into(), 1, None).record(),
            failed("f", "InternalError"),
            failed("g", "InternalError"),
            failed("h", "Timeout"),
        ];
        let s = summarize(12, 3, 1, &records);
        assert_eq!(
            s.totals,
            Totals {
                input_rows: 12,
                unique_ids: 8,
                duplicates: 3,
                invalid: 1,
                found: 4,
                missing: 1,
                failed: 3,
                not_attempted: 0
            }
        );
        assert_eq!(
            s.by_audit_status,
            BTreeMap::from([("Normal".into(), 1), ("Blocked".into(), 2), ("Unknown".into(), 1)])
        );
        assert_eq!(s.by_status, BTreeMap::from([("Normal".into(), 2), ("Uploading".into(), 1), ("Unknown".into(), 1)]));
        assert_eq!(
            s.by_category,
            vec![
                CategoryCount { cate_id: None, cate_name: None, images: 1, blocked: 0 },
                CategoryCount { cate_id: Some(1), cate_name: Some("News".into()), images: 2, blocked: 1 },
                CategoryCount { cate_id: Some(2), cate_name: Some("Sport, \"live\"".into()), images: 1, blocked: 1 },
            ]
        );
        assert_eq!(s.failures_by_code, BTreeMap::from([("InternalError".into(), 2), ("Timeout".into(), 1)]));
    }

    #[test]
    fn the_outcome_rows_are_the_outcome_words_and_read_their_own_count() {
        let kinds = [OutcomeKind::Found, OutcomeKind::Missing, OutcomeKind::Failed, OutcomeKind::NotAttempted];
        let keys: Vec<&str> = Totals::outcome_rows().iter().map(|r| r.key).collect();
        assert_eq!(keys, kinds.map(OutcomeKind::as_str));
        // Distinct counts: a row that read another row's field would show.
        let t = Totals::of_ledger(&Ledger {
            input_rows: 1,
            unique_ids: 2,
            duplicates: 3,
            rejected: 4,
            found: 5,
            missing: 6,
            failed: 7,
            not_attempted: 8,
            ..Default::default()
        });
        let counts: Vec<u64> = Totals::ROWS.iter().map(|r| (r.count)(&t)).collect();
        assert_eq!(counts, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    /// Each totals row takes the words of the ledger row it repeats: the
    /// one of the same key, or `rejected` for `invalid`.
    #[test]
    fn each_totals_row_is_labelled_as_the_ledger_row_it_repeats() {
        for row in &Totals::ROWS {
            let key = if row.key == "invalid" { "rejected" } else { row.key };
            let ledger = Ledger::ROWS.iter().find(|l| l.key == key).unwrap_or_else(|| panic!("{key}"));
            assert_eq!(row.label, ledger.label, "{}", row.key);
        }
    }
}
