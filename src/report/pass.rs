//! The report pass: from the settled outcomes (the journal and the spill of
//! outcomes cut short, in any order) and the ids the input asked for, to
//! every report file and the [`Summary`], in one sorted pass and bounded
//! memory.
//!
//! `images.csv`, `images.jsonl`, `changes.csv` and the sheets of
//! `audit.xlsx` are streamed; the summary is a fold; the ledger matches the
//! sorted outcomes against the sorted input ids, so an id that got no
//! outcome is named, never lost. It is
//! synchronous and may take long (hashing gigabytes at 10^6 ids): callers on
//! an async runtime run it on a blocking thread.

use std::cell::RefCell;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::changes::{self, Change, ChangesWriter};
use super::html::{self, PageInfo};
use super::review::{self, ReviewLedger};
use super::sort;
use super::summary::{Fold, Summary};
use super::trend::TrendPoint;
use super::write::{self as w, CsvStyle, ImagesCsv};
use super::xlsx::AuditWorkbook;
use crate::domain::ledger::Ledger;
use crate::domain::record::{IdOrder, ImageRecord, OutOfOrder, Rejected};
use crate::rundir::files::{write_atomic, AtomicFile, FileDigest};
use crate::rundir::{
    AUDIT_XLSX, CHANGES_CSV, IMAGES_CSV, IMAGES_JSONL, REJECTED_CSV, SUMMARY_CSV, SUMMARY_HTML, SUMMARY_JSON,
};

named_enum! {
    /// A report format (`--format`).
    pub enum Format {
        /// `images.csv`, `summary.csv`, `rejected.csv` (and `changes.csv`).
        Csv => "csv",
        /// `images.jsonl`, `summary.json`.
        Json => "json",
        /// `summary.html`.
        Html => "html",
        /// `audit.xlsx`.
        Xlsx => "xlsx",
    }
}

/// Which reports a run writes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSettings {
    pub formats: Vec<Format>,
    pub csv: CsvStyle,
}

/// What the input asked for: its counts and its unique ids in sorted order.
pub struct Expected<'a, I: Iterator<Item = &'a str>> {
    pub input_rows: u64,
    pub blank_rows: u64,
    pub duplicates: u64,
    pub unique_ids: u64,
    pub rejected: &'a [Rejected],
    /// The unique ids, sorted.
    pub sorted_ids: I,
}

/// What the page says about the run.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    pub started: String,
    pub finished: String,
    pub input: String,
    pub input_sha256: String,
    pub endpoint: String,
    pub region: String,
    /// The account audited, when the credentials told it.
    pub account: Option<String>,
    /// Earlier runs for the trend, oldest first (this run is added).
    pub earlier: Vec<TrendPoint>,
    /// `--all-images`: this run and the one compared with each audited the
    /// account's whole inventory (see [`changes::compare`]).
    pub inventory: bool,
    /// `--reviews`: the team's decisions.
    pub reviews: Option<std::sync::Arc<ReviewLedger>>,
    /// The settings the run compared with had otherwise
    /// ([`changes::settings_changes`]): the changes they explain are marked.
    pub settings_changed: Vec<changes::SettingChange>,
}

impl RunFacts {
    /// The facts the workbook's Summary sheet lists, in its order.
    pub fn run_lines(&self) -> [(&'static str, &str); 7] {
        [
            ("started", &self.started),
            ("finished", &self.finished),
            ("input", &self.input),
            ("input_sha256", &self.input_sha256),
            ("endpoint", &self.endpoint),
            ("region", &self.region),
            ("account", self.account.as_deref().unwrap_or("")),
        ]
    }
}

/// Writes every report of `formats` into `dir` from the outcome files
/// `sources`, comparing with the run in `previous` if given. Returns the
/// summary and the digests of the files written (not yet the manifest).
pub fn write_reports<'a>(
    dir: &Path,
    settings: &ReportSettings,
    expected: Expected<'a, impl Iterator<Item = &'a str>>,
    sources: &[sort::Source<'_>],
    previous: Option<&Path>,
    facts: &RunFacts,
    stop_reason: Option<String>,
) -> anyhow::Result<(Summary, Vec<FileDigest>)> {
    let (formats, style) = (&settings.formats, settings.csv);
    let mut sorted = sort::sort_outcomes(sources, dir, sort::CHUNK_BYTES).context("sorting the outcomes")?;
    let mut images_csv = match formats.contains(&Format::Csv) {
        true => Some(ImagesCsv::new(AtomicFile::create(dir, IMAGES_CSV)?, style)?),
        false => None,
    };
    let mut jsonl = match formats.contains(&Format::Json) {
        true => Some(AtomicFile::create(dir, IMAGES_JSONL)?),
        false => None,
    };
    // Shared by the records' stream and the comparison's changes, which
    // take turns (never at once) while the merge-join pulls records.
    let workbook = match formats.contains(&Format::Xlsx) {
        true => Some(RefCell::new(AuditWorkbook::new(dir).with_context(|| format!("starting {AUDIT_XLSX}"))?)),
        false => None,
    };
    let mut fold = Fold::new(expected.input_rows, expected.duplicates, expected.rejected.len() as u64);
    let mut blocked: Vec<ImageRecord> = Vec::new();
    let mut disagreements: Vec<ImageRecord> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut unknown: Vec<ImageRecord> = Vec::new();
    let mut want = expected.sorted_ids.peekable();
    let mut unaccounted_ids: Vec<String> = Vec::new();
    let mut order = IdOrder::default();
    let run_date = facts.started.get(..10).unwrap_or_default();
    let carry = match previous {
        Some(prev) => {
            let old_path = prev.join(IMAGES_CSV);
            let old = std::fs::File::open(&old_path).with_context(|| format!("reading {}", old_path.display()))?;
            // Rows of a run written before blocked_since had a column: that run's own date.
            let old_date = crate::rundir::manifest::Manifest::read(prev)
                .ok()
                .and_then(|m| m.started.get(..10).map(str::to_owned))
                .unwrap_or_else(|| run_date.to_owned());
            let rows = changes::records_from_csv(std::io::BufReader::new(old), "the earlier run's images.csv");
            Some(review::Carry::new(rows, old_date))
        }
        None => None,
    };
    let mut night = review::Night::new(facts.reviews.as_deref(), carry, run_date);
    // Each line is decoded, checked against the input, counted and written
    // while it is borrowed from the sort; the record goes on to the
    // comparison.
    let mut records = std::iter::from_fn(|| loop {
        let line = match sorted.next_line()? {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        let mut r: ImageRecord = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => return Some(Err(std::io::Error::other(format!("an outcome line that is not a record: {e}")))),
        };
        match order.next(&r.image_id) {
            Ok(()) => {}
            Err(OutOfOrder::Duplicate(id)) => {
                tracing::warn!("a second outcome for {id} was ignored");
                continue;
            }
            Err(e) => return Some(Err(std::io::Error::other(format!("the sorted outcomes: {e}")))),
        }
        while let Some(id) = want.next_if(|id| *id < r.image_id.as_str()) {
            unaccounted_ids.push(id.to_owned());
        }
        if want.next_if_eq(&r.image_id.as_str()).is_none() {
            tracing::warn!("an outcome for {}, which is not in the input, was ignored", r.image_id);
            continue;
        }
        if let Err(e) = night.annotate(&mut r) {
            return Some(Err(e));
        }
        fold.add(&r);
        if r.is_blocked() && blocked.len() < html::MAX_BLOCKED_ROWS {
            blocked.push(r.clone());
        }
        if r.disagreement.is_some() && disagreements.len() < html::MAX_BLOCKED_ROWS {
            disagreements.push(r.clone());
        }
        if r.outcome == crate::domain::record::OutcomeKind::Missing && missing.len() < html::MAX_LISTED {
            missing.push(r.image_id.clone());
        }
        if r.outcome == crate::domain::record::OutcomeKind::Found
            && r.verdict.as_deref() == Some(crate::domain::verdict::Verdict::Unknown.as_str())
            && unknown.len() < html::MAX_LISTED
        {
            unknown.push(r.clone());
        }
        let written = (|| {
            if let Some(w) = images_csv.as_mut() {
                w.write(&r)?;
            }
            if let Some(w) = jsonl.as_mut() {
                // The line is the record as serialized when it settled,
                // unless the review ledger or the earlier run added to it.
                match r.review_decision.is_some() || r.blocked_since.is_some() {
                    true => r.write_line(w)?,
                    false => w.write_all(line)?,
                }
            }
            if let Some(w) = &workbook {
                w.borrow_mut().add_record(&r)?;
            }
            Ok::<_, std::io::Error>(())
        })();
        return Some(written.map(|_| r));
    });
    let mut newly_blocked: Vec<Change> = Vec::new();
    let mut unblocked: Vec<Change> = Vec::new();
    let mut newly_missing: Vec<Change> = Vec::new();
    let mut changes_file = None;
    let mut change_counts = None;
    if let Some(prev) = previous {
        let old_path = prev.join(IMAGES_CSV);
        let old = std::fs::File::open(&old_path).with_context(|| format!("reading {}", old_path.display()))?;
        let old = changes::records_from_csv(std::io::BufReader::new(old), "the earlier run's images.csv");
        let mut writer = ChangesWriter::new(AtomicFile::create(dir, CHANGES_CSV)?, style)?;
        let (with, inventory) = (Some(prev.display().to_string()), facts.inventory);
        let counts =
            changes::compare_with_settings(old, records.by_ref(), with, inventory, &facts.settings_changed, |c| {
                if c.change == "newly_blocked" && newly_blocked.len() < html::MAX_BLOCKED_ROWS {
                    newly_blocked.push(c.clone());
                }
                if c.change == "unblocked" && unblocked.len() < html::MAX_LISTED {
                    unblocked.push(c.clone());
                }
                if c.change == "newly_missing" && newly_missing.len() < html::MAX_LISTED {
                    newly_missing.push(c.clone());
                }
                if let Some(w) = &workbook {
                    w.borrow_mut().add_change(c)?;
                }
                writer.write(c)
            })
            .with_context(|| format!("comparing with {}", prev.display()))?;
        changes_file = Some(writer.into_inner()?);
        change_counts = Some(counts);
    }
    for r in records.by_ref() {
        r?;
    }
    unaccounted_ids.extend(want.map(str::to_owned));

    let mut files = Vec::new();
    if let Some(w) = images_csv {
        files.push(w.finish()?.commit()?);
    }
    if let Some(f) = changes_file {
        files.push(f.commit()?);
    }
    let mut summary = fold.finish();
    summary.changes = change_counts;
    let (review_summary, review_queue) = night.finish();
    summary.review = review_summary;
    let t = &summary.totals;
    summary.ledger = Ledger {
        input_rows: expected.input_rows,
        blank_rows: expected.blank_rows,
        rejected: expected.rejected.len() as u64,
        duplicates: expected.duplicates,
        unique_ids: expected.unique_ids,
        found: t.found,
        missing: t.missing,
        failed: t.failed,
        not_attempted: t.not_attempted,
        unaccounted: unaccounted_ids.len() as u64,
        unaccounted_ids,
    };
    summary.complete = stop_reason.is_none() && summary.ledger.unaccounted == 0;
    summary.stop_reason = stop_reason;
    if summary.ledger.unaccounted > 0 {
        // Never expected: every id yields an outcome. The caller says so loudly.
        let why = format!("{} ids unaccounted for", summary.ledger.unaccounted);
        summary.stop_reason = Some(summary.stop_reason.map_or(why.clone(), |r| format!("{r}; {why}")));
    }
    if formats.contains(&Format::Csv) {
        files.push(write_atomic(dir, SUMMARY_CSV, |out| w::write_summary_csv(out, &summary, style))?);
        files.push(write_atomic(dir, REJECTED_CSV, |out| w::write_rejected_csv(out, expected.rejected, style))?);
    }
    if let Some(f) = jsonl {
        files.push(f.commit()?);
        files.push(write_atomic(dir, SUMMARY_JSON, |out| w::write_summary_json(out, &summary))?);
    }
    if formats.contains(&Format::Html) {
        // The page is hashed into the manifest, so it cannot hold the
        // manifest's own digest: it shows images.csv's, which the manifest
        // lists, and says where the manifest's is.
        let images_csv_sha256 = files.iter().find(|f| f.name == IMAGES_CSV).map(|f| f.sha256.clone());
        // Newest change first: tonight's new blocks, then by the night each
        // was first seen blocked, latest first.
        let tonight: std::collections::HashSet<&str> = newly_blocked.iter().map(|c| c.image_id.as_str()).collect();
        blocked.sort_by(|a, b| {
            let key = |r: &ImageRecord| (tonight.contains(r.image_id.as_str()), r.blocked_since.clone());
            key(b).cmp(&key(a)).then_with(|| a.image_id.cmp(&b.image_id))
        });
        let mut trend = facts.earlier.clone();
        trend.push(TrendPoint::of(&facts.finished, &summary));
        let info = PageInfo {
            started: &facts.started,
            finished: &facts.finished,
            input: &facts.input,
            input_sha256: &facts.input_sha256,
            endpoint: &facts.endpoint,
            region: &facts.region,
            account: facts.account.as_deref(),
            newly_blocked: &newly_blocked,
            trend: &trend,
            disagreements: &disagreements,
            review_queue: &review_queue,
            missing: &missing,
            unknown: &unknown,
            unblocked: &unblocked,
            newly_missing: &newly_missing,
            images_csv_sha256: images_csv_sha256.as_deref(),
        };
        files.push(write_atomic(dir, SUMMARY_HTML, |out| {
            html::write_summary_html(out, &summary, &info, &mut blocked.iter())
        })?);
    }
    if let Some(book) = workbook {
        let mut file = AtomicFile::create(dir, AUDIT_XLSX)?;
        book.into_inner()
            .finish(&summary, &facts.run_lines(), &mut file)
            .with_context(|| format!("writing {AUDIT_XLSX}"))?;
        files.push(file.commit()?);
    }
    Ok((summary, files))
}
