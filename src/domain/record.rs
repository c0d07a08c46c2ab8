//! The report's unit: one flat record per image id ([`ImageRecord`], a row of
//! `images.csv` and a line of `images.jsonl` and of the journal), the four
//! outcomes, a rejected input row, and the words the reports use for them.
//!
//! Records written before the verdict had its own column (no `verdict`
//! field) still read: their `audit_status` column then held the verdict, and
//! [`ImageRecord::verdict`] reads it so ([`super::verdict::legacy`]); their
//! `audit_suggestion` and `audit_labels` columns read as
//! `moderation_suggestion` and `reasons`.

use serde::{Deserialize, Serialize};

use super::verdict::Verdict;

/// The bucket for an absent `AuditStatus` or `Status`.
pub const UNKNOWN: &str = "Unknown";

/// The four ends of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The API described the image.
    Found,
    /// The API said `NoSuchResource`.
    Missing,
    /// No answer could be had (the error says why).
    Failed,
    /// Never called: the run stopped first (a signal, a fatal error). Not a
    /// failure: the same command resumes and calls it.
    NotAttempted,
}

impl OutcomeKind {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Found => "found",
            OutcomeKind::Missing => "missing",
            OutcomeKind::Failed => "failed",
            OutcomeKind::NotAttempted => "not_attempted",
        }
    }
}

/// One row of `images.csv` / one line of `images.jsonl`. The field order is
/// the CSV column order, pinned by a test in `report::write`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub image_id: String,
    pub outcome: OutcomeKind,
    /// What the service decided about a found image: `Blocked`, `Review`,
    /// `Normal` or `Unknown` ([`super::verdict`]). Absent in records
    /// written before it had a column.
    #[serde(default)]
    pub verdict: Option<String>,
    /// Where the verdict came from: `audit_status`, `moderation`, `none`.
    #[serde(default)]
    pub verdict_source: Option<String>,
    /// GetImageInfo's `AuditStatus` exactly as answered; never filled from
    /// anything else.
    pub audit_status: Option<String>,
    /// GetMediaAuditResult's top-level `Suggestion` exactly as answered,
    /// when asked.
    #[serde(default, alias = "audit_suggestion")]
    pub moderation_suggestion: Option<String>,
    /// Why, as `module:label` joined with `;` (`image-cover:porn`,
    /// `text-title:ad`, `unspecified`, `moderation-unavailable:CODE`).
    #[serde(default, alias = "audit_labels")]
    pub reasons: Option<String>,
    /// GetMediaAuditResult's `AbnormalModules` as answered.
    #[serde(default)]
    pub abnormal_modules: Option<String>,
    /// A person's decision that overrides the machine's:
    /// `cleared_by_account` or `blocked_by_account`.
    #[serde(default)]
    pub disagreement: Option<String>,
    /// Values this tool does not know, as `Field=value` joined with `;`;
    /// each makes the verdict `Unknown` unless a block decides it.
    #[serde(default)]
    pub unrecognised: Option<String>,
    pub status: Option<String>,
    pub cate_id: Option<i64>,
    pub cate_name: Option<String>,
    pub title: Option<String>,
    pub image_type: Option<String>,
    pub creation_time: Option<String>,
    pub tags: Option<String>,
    pub description: Option<String>,
    pub storage_location: Option<String>,
    pub url: Option<String>,
    pub app_id: Option<String>,
    pub region_id: Option<String>,
    pub file_size: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub original_file_name: Option<String>,
    pub file_url: Option<String>,
    pub attempts: u32,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
    /// The team's decision on the image (`--reviews`): `confirmed`,
    /// `appealed`, `deleted` or `false_positive` ([`super::review`]).
    #[serde(default)]
    pub review_decision: Option<String>,
    /// Who decided, as the review ledger says.
    #[serde(default)]
    pub reviewer: Option<String>,
    /// When, as the review ledger says.
    #[serde(default)]
    pub reviewed_at: Option<String>,
    /// A blocked image: the first night it was seen blocked (`YYYY-MM-DD`,
    /// UTC), carried from the run compared with.
    #[serde(default)]
    pub blocked_since: Option<String>,
}

impl ImageRecord {
    /// Writes the record as one JSON line: the journal's line and the
    /// `images.jsonl` line, which is copied from it.
    pub fn write_line<W: std::io::Write + ?Sized>(&self, w: &mut W) -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, self)?;
        w.write_all(b"\n")
    }
}

/// The free-text fields of a record, one list for both borrows.
macro_rules! text_fields {
    ($r:expr, $($b:tt)+) => {
        [
            $($b)+ $r.audit_status,
            $($b)+ $r.moderation_suggestion,
            $($b)+ $r.reasons,
            $($b)+ $r.abnormal_modules,
            $($b)+ $r.unrecognised,
            $($b)+ $r.status,
            $($b)+ $r.cate_name,
            $($b)+ $r.title,
            $($b)+ $r.image_type,
            $($b)+ $r.creation_time,
            $($b)+ $r.tags,
            $($b)+ $r.description,
            $($b)+ $r.storage_location,
            $($b)+ $r.url,
            $($b)+ $r.app_id,
            $($b)+ $r.region_id,
            $($b)+ $r.file_size,
            $($b)+ $r.original_file_name,
            $($b)+ $r.file_url,
            $($b)+ $r.error_code,
            $($b)+ $r.error_message,
            $($b)+ $r.request_id,
            $($b)+ $r.review_decision,
            $($b)+ $r.reviewer,
            $($b)+ $r.reviewed_at,
            $($b)+ $r.blocked_since,
        ]
    };
}

impl ImageRecord {
    /// The verdict of a found image (none for the other outcomes); in a
    /// record written before the verdict had a column, what its
    /// `audit_status` stood for.
    pub fn verdict(&self) -> Option<Verdict> {
        if self.outcome != OutcomeKind::Found {
            return None;
        }
        Some(match self.verdict.as_deref() {
            Some(v) => v.parse().unwrap_or(Verdict::Unknown),
            None => super::verdict::legacy(self.audit_status.as_deref()),
        })
    }

    /// Found, with the verdict `Blocked`: the one meaning of "blocked" in
    /// every report, count and alert.
    pub fn is_blocked(&self) -> bool {
        self.verdict() == Some(Verdict::Blocked)
    }

    /// The reasons, one by one.
    pub fn reason_list(&self) -> impl Iterator<Item = &str> {
        self.reasons.as_deref().unwrap_or_default().split(';').filter(|r| !r.is_empty())
    }

    /// Every free-text field (from the server's answer or its error), for
    /// the caps and escaping that reports apply.
    pub fn text_fields(&self) -> [&Option<String>; 26] {
        text_fields!(self, &)
    }

    /// [`ImageRecord::text_fields`], to change them.
    pub fn text_fields_mut(&mut self) -> [&mut Option<String>; 26] {
        text_fields!(self, &mut)
    }

    /// The category as one label: `"<id> <name>"`, the id alone, or empty.
    pub fn category_label(&self) -> String {
        category_label(self.cate_id, self.cate_name.as_deref())
    }
}

/// A category as one label: `"<id> <name>"`, the id alone, or empty when
/// the image has no category.
pub fn category_label(cate_id: Option<i64>, cate_name: Option<&str>) -> String {
    match (cate_id, cate_name) {
        (None, _) => String::new(),
        (Some(id), Some(name)) => format!("{id} {name}"),
        (Some(id), None) => id.to_string(),
    }
}

/// Checks that ids come in strictly increasing order: sorted by `image_id`,
/// no duplicate. The reports, the journal's sort and the merge-join with an
/// earlier run all rely on it.
#[derive(Debug, Default)]
pub struct IdOrder {
    last: String,
    started: bool,
}

/// An id out of [`IdOrder`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutOfOrder {
    #[error("a duplicate of {0:?}")]
    Duplicate(String),
    #[error("not sorted by image_id at {0:?}")]
    Unsorted(String),
}

impl IdOrder {
    /// Accepts `id` if it comes after every id seen so far.
    pub fn next(&mut self, id: &str) -> Result<(), OutOfOrder> {
        if self.started {
            match self.last.as_str().cmp(id) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Err(OutOfOrder::Duplicate(id.to_owned())),
                std::cmp::Ordering::Greater => return Err(OutOfOrder::Unsorted(id.to_owned())),
            }
        }
        self.started = true;
        self.last.clear();
        self.last.push_str(id);
        Ok(())
    }
}

/// A row that was not used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// 1-based line number where the row starts.
    pub line: u64,
    /// The value as found (shortened if very long).
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_order_refuses_duplicates_and_going_back() {
        let mut o = IdOrder::default();
        assert_eq!(o.next("b"), Ok(()));
        assert_eq!(o.next("c"), Ok(()));
        assert_eq!(o.next("c"), Err(OutOfOrder::Duplicate("c".into())));
        assert_eq!(o.next("a"), Err(OutOfOrder::Unsorted("a".into())));
        assert_eq!(o.next("d"), Ok(()));
    }

    #[test]
    fn category_label_forms() {
        assert_eq!(category_label(None, Some("x")), "");
        assert_eq!(category_label(Some(7), Some("News")), "7 News");
        assert_eq!(category_label(Some(7), None), "7");
    }
}
