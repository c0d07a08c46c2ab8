//! The summary: a fold over the settled records, in bounded memory.
//!
//! Owns the counts by outcome, `AuditStatus`, `Status` and category, and the
//! failures by error code. Categories are keyed by `CateId`; the name shown is
//! the first one seen in `image_id` order, so the result does not depend on
//! the order the answers came in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::changes::ChangeCounts;
use super::record::{ImageRecord, OutcomeKind, BLOCKED, UNKNOWN};
use crate::rundir::manifest::{AuditStatusCoverage, Ledger};

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
    pub by_audit_status: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    pub by_category: Vec<CategoryCount>,
    pub failures_by_code: BTreeMap<String, u64>,
    /// Found images by moderation label (`GetMediaAuditResult`), when asked.
    #[serde(default)]
    pub by_audit_label: BTreeMap<String, u64>,
    /// How many found images carried `AuditStatus`: the verdict this audit
    /// is run for, absent from some answers (see the README).
    #[serde(default)]
    pub audit_status_coverage: AuditStatusCoverage,
    /// Changes since an earlier run, when one was compared.
    #[serde(default)]
    pub changes: Option<ChangeCounts>,
}

impl Summary {
    /// Found images whose `AuditStatus` is `Blocked`.
    pub fn blocked(&self) -> u64 {
        self.by_audit_status.get(BLOCKED).copied().unwrap_or(0)
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
        for label in r.audit_labels.as_deref().unwrap_or_default().split(';').filter(|l| !l.is_empty()) {
            count(&mut s.by_audit_label, label);
        }
        let audit = r.audit_status.as_deref().unwrap_or(UNKNOWN);
        let blocked = audit == BLOCKED;
        count(&mut s.by_audit_status, audit);
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
}
