//! The team's review ledger (`run --reviews FILE`) and what the reports say
//! of it: each blocked image reviewed or waiting, since when it is blocked,
//! and the reviews that no longer apply.
//!
//! The ledger is a CSV the team keeps, `image_id, decision, reviewer,
//! reviewed_at, note`, one row a decision; a later row for the same image
//! replaces an earlier one (a ledger is appended to: an appeal, then its
//! outcome). The decisions mirror what VOD's manual review (`CreateAudit`)
//! records of a person's review, a reviewer, a reason and a comment, kept by
//! the team for the images the service blocked.
//!
//! Owns reading the ledger ([`read_ledger`], with errors that name the file,
//! the line and what to do), the annotation of each record as the report
//! pass streams it ([`Night::annotate`]: `review_decision`, `reviewer`,
//! `reviewed_at`, `blocked_since`), the counts of the summary
//! ([`ReviewSummary`]) and the review queue at the top of the page. It does
//! not decide what is blocked: that is [`ImageRecord::is_blocked`].
//!
//! `blocked_since` is the first night an image was seen blocked: carried
//! from the run compared with while the image stays blocked there and
//! tonight, else tonight's date. A run written before the column existed
//! gives its own date for the images it saw blocked.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::domain::record::{ImageRecord, OutcomeKind};
use crate::rundir::digest::Sha256;
use crate::rundir::files::read_small_file;

named_enum! {
    /// What the team decided about a blocked image.
    pub enum Decision {
        /// The block is right.
        Confirmed => "confirmed",
        /// The team disputes it with the service (a manual review asked).
        Appealed => "appealed",
        /// The image was deleted.
        Deleted => "deleted",
        /// The machine was wrong.
        FalsePositive => "false_positive",
    }
}

/// The ledger's columns, in the order the README shows them.
pub(crate) const LEDGER_COLUMNS: &[&str] = &["image_id", "decision", "reviewer", "reviewed_at", "note"];

/// The largest ledger read: a row for each of a million images is some
/// 100 MB; a team's ledger is far smaller, and a bigger file is a mistake.
pub(crate) const MAX_LEDGER_BYTES: u64 = 256 * 1024 * 1024;

/// Stale reviews listed in `summary.json` and on the page; the count is whole.
pub(crate) const MAX_STALE_LISTED: usize = 1000;

/// Unreviewed blocked images on the page's queue, the oldest first.
pub(crate) const MAX_QUEUE_ROWS: usize = 1000;

/// A ledger that cannot be used, with where and what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReviewError {
    #[error("--reviews {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("--reviews {file}: line 1: the header [{header}] lacks {missing}: a review ledger's columns are image_id, decision, reviewer, reviewed_at, note")]
    Header { file: String, header: String, missing: String },
    #[error("--reviews {file}: line {line}: {what}; fix the row and run again")]
    Row { file: String, line: u64, what: String },
    #[error("--reviews {file}: line {line}: {reason}; the ledger must be a UTF-8 CSV with one row a review")]
    Csv { file: String, line: u64, reason: String },
}

/// One image's current review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub decision: Decision,
    pub reviewer: String,
    pub reviewed_at: String,
}

/// The ledger as read: the current review of each image, and the file's
/// identity for the manifest.
#[derive(Debug, Clone, Default)]
pub struct ReviewLedger {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    /// Data rows read.
    pub rows: u64,
    reviews: HashMap<String, Review>,
}

impl ReviewLedger {
    /// The review of `image_id`, if the ledger has one.
    pub fn get(&self, image_id: &str) -> Option<&Review> {
        self.reviews.get(image_id)
    }

    /// Images with a review.
    pub fn len(&self) -> usize {
        self.reviews.len()
    }

    /// No image has a review.
    pub fn is_empty(&self) -> bool {
        self.reviews.is_empty()
    }
}

/// Reads the ledger at `path` (a regular file of at most
/// [`MAX_LEDGER_BYTES`]).
pub(crate) fn read_ledger(path: &Path) -> Result<ReviewLedger, ReviewError> {
    let file = path.display().to_string();
    let (bytes, _) = read_small_file(path, MAX_LEDGER_BYTES)
        .map_err(|e| ReviewError::Read { file: file.clone(), reason: e.to_string() })?;
    parse_ledger(&bytes, &file)
}

/// Whether `text` is a date (`2026-03-01`) or an RFC 3339 time.
fn is_date_or_time(text: &str) -> bool {
    let date_ok = text.len() == 10 && humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).is_ok();
    date_ok || humantime::parse_rfc3339_weak(text).is_ok() && text.len() > 10
}

/// The ledger's rows, checked: the pure core of [`read_ledger`].
pub(crate) fn parse_ledger(raw: &[u8], file: &str) -> Result<ReviewLedger, ReviewError> {
    let bytes = raw.strip_prefix("\u{feff}".as_bytes()).unwrap_or(raw);
    let csv_error = |e: csv::Error| {
        let line = e.position().map_or(1, csv::Position::line);
        let reason = match e.kind() {
            csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_owned(),
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                format!("{len} fields where the header has {expected_len} (a comma inside a value needs quotes)")
            }
            _ => e.to_string(),
        };
        ReviewError::Csv { file: file.to_owned(), line, reason }
    };
    if bytes.contains(&0) {
        let line = bytes.iter().take_while(|b| **b != 0).filter(|b| **b == b'\n').count() as u64 + 1;
        return Err(ReviewError::Csv {
            file: file.to_owned(),
            line,
            reason: "a NUL byte: this is not a CSV text file".into(),
        });
    }
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    let header = rdr.headers().map_err(csv_error)?.clone();
    let col = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let missing: Vec<&str> = LEDGER_COLUMNS[..4].iter().copied().filter(|c| col(c).is_none()).collect();
    if !missing.is_empty() {
        return Err(ReviewError::Header {
            file: file.to_owned(),
            header: header.iter().collect::<Vec<_>>().join(", "),
            missing: missing.join(", "),
        });
    }
    let [id_col, decision_col, reviewer_col, at_col] =
        [0, 1, 2, 3].map(|i| col(LEDGER_COLUMNS[i]).expect("checked just above"));
    let mut ledger = ReviewLedger {
        file: file.to_owned(),
        bytes: raw.len() as u64,
        // The file as it is on disk: the digest a reader of the manifest recomputes.
        sha256: Sha256::hex_of(raw),
        ..Default::default()
    };
    let mut record = csv::StringRecord::new();
    while rdr.read_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, csv::Position::line);
        let row_error = |what: String| ReviewError::Row { file: file.to_owned(), line, what };
        let field = |i: usize| record.get(i).unwrap_or_default();
        if record.iter().all(str::is_empty) {
            continue;
        }
        ledger.rows += 1;
        let id = field(id_col);
        if id.is_empty() {
            return Err(row_error("no image_id".into()));
        }
        if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(row_error(format!(
                "image_id {:?} is not an image id (letters, digits, - and _, at most 64)",
                shorten(id)
            )));
        }
        let decision: Decision = field(decision_col).to_ascii_lowercase().parse().map_err(|_| {
            row_error(format!(
                "decision {:?} is not one of {}",
                shorten(field(decision_col)),
                Decision::NAMES.join(", ")
            ))
        })?;
        let reviewer = field(reviewer_col);
        if reviewer.is_empty() {
            return Err(row_error("no reviewer: say who decided".into()));
        }
        let reviewed_at = field(at_col);
        if !is_date_or_time(reviewed_at) {
            return Err(row_error(format!(
                "reviewed_at {:?} is not a date like 2026-03-01 or a time like 2026-03-01T09:30:00Z",
                shorten(reviewed_at)
            )));
        }
        ledger.reviews.insert(
            id.to_owned(),
            Review { decision, reviewer: reviewer.to_owned(), reviewed_at: reviewed_at.to_owned() },
        );
    }
    Ok(ledger)
}

fn shorten(s: &str) -> String {
    const SHOWN: usize = 80;
    match s.char_indices().nth(SHOWN) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// A review that no longer applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleReview {
    pub image_id: String,
    pub decision: String,
    /// `not in this run`, `missing`, `not blocked (verdict Normal)`, ...
    pub why: String,
}

/// The review counts of `summary.json` (`review`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewSummary {
    /// Tonight's date (UTC), which `blocked_since` and the age count from.
    pub run_date: String,
    /// The ledger read (`--reviews`), if any.
    pub ledger: Option<String>,
    /// Blocked images with no decision in the ledger.
    pub unreviewed_blocked: u64,
    /// The earliest `blocked_since` among them.
    pub oldest_unreviewed_since: Option<String>,
    /// Whole days from it to tonight.
    pub oldest_unreviewed_age_days: Option<u64>,
    /// Blocked images by the team's decision.
    pub by_decision: BTreeMap<String, u64>,
    /// Reviews of images no longer blocked, or not in this run.
    pub stale_count: u64,
    /// The first [`MAX_STALE_LISTED`] of them, by image id.
    pub stale: Vec<StaleReview>,
}

/// An unreviewed blocked image, for the page's queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct QueueRow {
    pub blocked_since: String,
    pub image_id: String,
    pub title: Option<String>,
    pub category: String,
    pub reasons: String,
}

/// Whole days from `from` to `to`, both `YYYY-MM-DD`; none if either is not a date.
pub(crate) fn days_between(from: &str, to: &str) -> Option<u64> {
    let t = |d: &str| humantime::parse_rfc3339(&format!("{}T00:00:00Z", d.get(..10)?)).ok();
    Some(t(to)?.duration_since(t(from)?).map_or(0, |d| d.as_secs() / 86_400))
}

/// The run compared with, read alongside tonight's records: its images in
/// `image_id` order, each blocked one with the night it was first seen so.
pub(crate) struct Carry<I> {
    rows: I,
    next: Option<ImageRecord>,
    /// The earlier run's own date, for its rows written before
    /// `blocked_since` had a column.
    run_date: String,
}

impl<I: Iterator<Item = io::Result<ImageRecord>>> Carry<I> {
    /// `rows`: the earlier run's `images.csv`; `run_date`: its date.
    pub(crate) fn new(rows: I, run_date: String) -> Self {
        Carry { rows, next: None, run_date }
    }

    /// When the earlier run says `image_id` was first blocked, if it was
    /// blocked there. Ids must come in increasing order.
    fn since(&mut self, image_id: &str) -> io::Result<Option<String>> {
        loop {
            if self.next.as_ref().is_some_and(|r| r.image_id.as_str() >= image_id) {
                break;
            }
            match self.rows.next() {
                Some(r) => self.next = Some(r?),
                None => {
                    self.next = None;
                    return Ok(None);
                }
            }
        }
        Ok(self
            .next
            .as_ref()
            .filter(|r| r.image_id == image_id && r.is_blocked())
            .map(|r| r.blocked_since.clone().unwrap_or_else(|| self.run_date.clone())))
    }
}

/// Tonight's review state, folded as the report pass streams the records.
pub(crate) struct Night<'a, I> {
    ledger: Option<&'a ReviewLedger>,
    carry: Option<Carry<I>>,
    summary: ReviewSummary,
    /// Ledger ids seen tonight, with why the review is stale (none: it applies).
    seen: HashMap<&'a str, Option<String>>,
    /// The oldest unreviewed, kept to [`MAX_QUEUE_ROWS`] (a max-heap: the
    /// newest is dropped first).
    queue: BinaryHeap<QueueRow>,
}

impl<'a, I: Iterator<Item = io::Result<ImageRecord>>> Night<'a, I> {
    /// `run_date`: tonight (`YYYY-MM-DD`, UTC).
    pub(crate) fn new(ledger: Option<&'a ReviewLedger>, carry: Option<Carry<I>>, run_date: &str) -> Self {
        Night {
            ledger,
            carry,
            summary: ReviewSummary {
                run_date: run_date.to_owned(),
                ledger: ledger.map(|l| l.file.clone()),
                ..Default::default()
            },
            seen: HashMap::new(),
            queue: BinaryHeap::new(),
        }
    }

    /// Fills the record's review columns and `blocked_since`, and counts it.
    /// Records come in `image_id` order.
    pub(crate) fn annotate(&mut self, r: &mut ImageRecord) -> io::Result<()> {
        let review = self.ledger.and_then(|l| l.reviews.get_key_value(r.image_id.as_str()));
        r.review_decision = review.map(|(_, v)| v.decision.as_str().to_owned());
        r.reviewer = review.map(|(_, v)| v.reviewer.clone());
        r.reviewed_at = review.map(|(_, v)| v.reviewed_at.clone());
        r.blocked_since = None;
        let blocked = r.is_blocked();
        if blocked {
            let carried = match self.carry.as_mut() {
                Some(c) => c.since(&r.image_id)?,
                None => None,
            };
            r.blocked_since = Some(carried.unwrap_or_else(|| self.summary.run_date.clone()));
        }
        if let Some((id, v)) = review {
            let stale = match r.outcome {
                _ if blocked => None,
                OutcomeKind::Found => Some(format!("not blocked (verdict {})", r.verdict().map_or("", |v| v.as_str()))),
                OutcomeKind::Missing => Some("missing".to_owned()),
                // Not settled tonight: nothing says the review is stale.
                OutcomeKind::Failed | OutcomeKind::NotAttempted => None,
            };
            if blocked {
                *self.summary.by_decision.entry(v.decision.as_str().to_owned()).or_default() += 1;
            }
            self.seen.insert(id.as_str(), stale);
        } else if blocked {
            self.summary.unreviewed_blocked += 1;
            let since = r.blocked_since.clone().unwrap_or_default();
            if self.summary.oldest_unreviewed_since.as_ref().is_none_or(|o| since < *o) {
                self.summary.oldest_unreviewed_since = Some(since.clone());
            }
            let row = QueueRow {
                blocked_since: since,
                image_id: r.image_id.clone(),
                title: r.title.clone(),
                category: r.category_label(),
                reasons: r.reasons.clone().unwrap_or_default(),
            };
            if self.queue.len() < MAX_QUEUE_ROWS {
                self.queue.push(row);
            } else if self.queue.peek().is_some_and(|newest| row < *newest) {
                self.queue.pop();
                self.queue.push(row);
            }
        }
        Ok(())
    }

    /// The summary's counts and the page's queue, oldest first.
    pub(crate) fn finish(mut self) -> (ReviewSummary, Vec<QueueRow>) {
        let s = &mut self.summary;
        s.oldest_unreviewed_age_days =
            s.oldest_unreviewed_since.as_deref().and_then(|since| days_between(since, &s.run_date));
        let mut stale: Vec<StaleReview> = Vec::new();
        if let Some(ledger) = self.ledger {
            for (id, review) in &ledger.reviews {
                let why = match self.seen.get(id.as_str()) {
                    None => Some("not in this run".to_owned()),
                    Some(why) => why.clone(),
                };
                if let Some(why) = why {
                    stale.push(StaleReview {
                        image_id: id.clone(),
                        decision: review.decision.as_str().to_owned(),
                        why,
                    });
                }
            }
        }
        stale.sort_by(|a, b| a.image_id.cmp(&b.image_id));
        s.stale_count = stale.len() as u64;
        stale.truncate(MAX_STALE_LISTED);
        s.stale = stale;
        (self.summary, self.queue.into_sorted_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::found;

    fn ledger(text: &str) -> Result<ReviewLedger, ReviewError> {
        parse_ledger(text.as_bytes(), "l.csv")
    }

    #[test]
    fn ledger_rows_are_checked_with_file_and_line() {
        let ok = ledger("image_id,decision,reviewer,reviewed_at,note\na,confirmed,x,2026-03-01,\nb,False_Positive,y,2026-03-01T09:00:00Z,\"n, 1\"\n\na,appealed,z,2026-03-02,\n").unwrap();
        assert_eq!(ok.rows, 3);
        assert_eq!(ok.get("a").unwrap().decision, Decision::Appealed, "a later row replaces an earlier one");
        assert_eq!(ok.get("b").unwrap().decision, Decision::FalsePositive);
        let err = |t: &str| ledger(t).unwrap_err().to_string();
        let e = err("image_id,decision,reviewer,reviewed_at\na,ok,x,2026-03-01\n");
        assert!(
            e.contains("l.csv: line 2: decision \"ok\" is not one of confirmed, appealed, deleted, false_positive"),
            "{e}"
        );
        assert!(err("image_id,decision,reviewer\n").contains("lacks reviewed_at"));
        assert!(err("image_id,decision,reviewer,reviewed_at\na,deleted,x,2026-3-1\n").contains("line 2: reviewed_at"));
        assert!(err("image_id,decision,reviewer,reviewed_at\na b,deleted,x,2026-03-01\n").contains("line 2: image_id"));
        assert!(err("image_id,decision,reviewer,reviewed_at\na,deleted,x,2026-03-01,extra\n").contains("line 2"));
        assert!(
            err("image_id,decision,reviewer,reviewed_at\na,deleted,x,2026-03-01\nb\0").contains("line 3: a NUL byte")
        );
        assert!(err("image_id,decision,reviewer,reviewed_at\na,del\u{e9}ted,x,2026-03-01\n").contains("line 2"));
    }

    fn blocked(id: &str) -> ImageRecord {
        found(id, Some("Blocked"), Some("Normal"), None)
    }

    #[test]
    fn blocked_since_is_carried_while_blocked_and_reviews_go_stale() {
        let mut before = vec![blocked("a"), blocked("b"), found("c", Some("Normal"), None, None), blocked("e")];
        before[0].blocked_since = Some("2026-01-01".into());
        // b: an old run's row, with no blocked_since column.
        let l = ledger("image_id,decision,reviewer,reviewed_at\nb,confirmed,x,2026-03-01\nd,deleted,x,2026-03-01\nz,deleted,x,2026-03-01\n").unwrap();
        let carry = Carry::new(before.into_iter().map(Ok), "2026-02-01".into());
        let mut night = Night::new(Some(&l), Some(carry), "2026-03-10");
        let mut tonight = vec![
            blocked("a"),
            blocked("b"),
            blocked("c"),
            found("d", Some("Normal"), None, None),
            found("e", Some("Normal"), None, None),
        ];
        for r in &mut tonight {
            night.annotate(r).unwrap();
        }
        let since: Vec<Option<&str>> = tonight.iter().map(|r| r.blocked_since.as_deref()).collect();
        assert_eq!(since, [Some("2026-01-01"), Some("2026-02-01"), Some("2026-03-10"), None, None]);
        assert_eq!(tonight[3].review_decision.as_deref(), Some("deleted"), "the team's word is shown, stale or not");
        let (s, queue) = night.finish();
        assert_eq!(s.unreviewed_blocked, 2);
        assert_eq!(s.oldest_unreviewed_since.as_deref(), Some("2026-01-01"));
        assert_eq!(s.oldest_unreviewed_age_days, Some(68));
        assert_eq!(s.by_decision, BTreeMap::from([("confirmed".into(), 1)]));
        let stale: Vec<(&str, &str)> = s.stale.iter().map(|r| (r.image_id.as_str(), r.why.as_str())).collect();
        assert_eq!(stale, [("d", "not blocked (verdict Normal)"), ("z", "not in this run")]);
        assert_eq!(queue.iter().map(|q| q.image_id.as_str()).collect::<Vec<_>>(), ["a", "c"], "oldest first");
    }

    #[test]
    fn the_queue_keeps_the_oldest() {
        let mut night: Night<'_, std::iter::Empty<io::Result<ImageRecord>>> = Night::new(None, None, "2026-03-10");
        for i in 0..MAX_QUEUE_ROWS + 5 {
            let mut r = blocked(&format!("id{i:05}"));
            night.annotate(&mut r).unwrap();
        }
        let (s, queue) = night.finish();
        assert_eq!(s.unreviewed_blocked, MAX_QUEUE_ROWS as u64 + 5);
        assert_eq!(queue.len(), MAX_QUEUE_ROWS);
        assert_eq!(queue[0].image_id, "id00000");
    }
}
