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

use super::changes::{self, Change};
use super::html::{self, PageInfo};
use super::review::{self, ReviewLedger};
use super::sort;
use super::summary::{Fold, Summary};
use super::trend::TrendPoint;
use super::write::ChangesWriter;
use super::write::{self as w, CsvStyle, ImagesCsv};
use super::xlsx::AuditWorkbook;
use crate::domain::ledger::Ledger;
use crate::domain::record::{IdOrder, ImageRecord, OutOfOrder, OutcomeKind, Rejected};
use crate::domain::verdict::Verdict;
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

impl<'a, I: Iterator<Item = &'a str>> Expected<'a, I> {
    /// The input's side of the ledger; the outcomes' side is the fold's.
    fn input_side(&self) -> Ledger {
        Ledger {
            input_rows: self.input_rows,
            blank_rows: self.blank_rows,
            rejected: self.rejected.len() as u64,
            duplicates: self.duplicates,
            unique_ids: self.unique_ids,
            ..Ledger::default()
        }
    }
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
    let mut streams = Streams::open(dir, settings)?;
    // Fed by the records' stream and by the comparison's changes, which
    // take turns (never at once) while the merge-join pulls records.
    let workbook = match formats.contains(&Format::Xlsx) {
        true => Some(RefCell::new(AuditWorkbook::new(dir).with_context(|| format!("starting {AUDIT_XLSX}"))?)),
        false => None,
    };
    let (rejected, input) = (expected.rejected, expected.input_side());
    let mut fold = Fold::new(input.input_rows, input.duplicates, input.rejected);
    let mut listed = Listed::default();
    let mut matcher =
        Matcher { want: expected.sorted_ids.peekable(), order: IdOrder::default(), unaccounted: Vec::new() };
    let run_date = facts.started.get(..10).unwrap_or_default();
    let carry = previous.map(|prev| carry_from(prev, run_date)).transpose()?;
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
        match matcher.admit(&r.image_id) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => return Some(Err(e)),
        }
        let written = night.annotate(&mut r).and_then(|()| {
            fold.add(&r);
            listed.note(&r);
            streams.write(&r, line)?;
            workbook.as_ref().map_or(Ok(()), |w| w.borrow_mut().add_record(&r))
        });
        return Some(written.map(|()| r));
    });
    let mut changes = ListedChanges::default();
    let compared = match previous {
        Some(prev) => Some(compare(dir, prev, style, facts, records.by_ref(), &mut changes, workbook.as_ref())?),
        None => None,
    };
    for r in records.by_ref() {
        r?;
    }
    let unaccounted_ids = matcher.finish();

    let mut files = Vec::new();
    if let Some(w) = streams.images_csv {
        files.push(w.finish()?.commit()?);
    }
    let mut summary = fold.finish();
    if let Some((changes_file, counts)) = compared {
        files.push(changes_file.commit()?);
        summary.changes = Some(counts);
    }
    let (review_summary, review_queue) = night.finish();
    summary.review = review_summary;
    settle(&mut summary, input, unaccounted_ids, stop_reason);
    write_summaries(dir, settings, &summary, rejected, streams.jsonl, &mut files)?;
    if formats.contains(&Format::Html) {
        let page = write_page(dir, &files, &summary, facts, listed, &changes, &review_queue)?;
        files.push(page);
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

/// `summary.csv` and `rejected.csv`; `images.jsonl` committed and
/// `summary.json`: each when its format was asked for.
fn write_summaries(
    dir: &Path,
    settings: &ReportSettings,
    summary: &Summary,
    rejected: &[Rejected],
    jsonl: Option<AtomicFile>,
    files: &mut Vec<FileDigest>,
) -> anyhow::Result<()> {
    let style = settings.csv;
    if settings.formats.contains(&Format::Csv) {
        files.push(write_atomic(dir, SUMMARY_CSV, |out| w::write_summary_csv(out, summary, style))?);
        files.push(write_atomic(dir, REJECTED_CSV, |out| w::write_rejected_csv(out, rejected, style))?);
    }
    if let Some(f) = jsonl {
        files.push(f.commit()?);
        files.push(write_atomic(dir, SUMMARY_JSON, |out| w::write_summary_json(out, summary))?);
    }
    Ok(())
}

/// The streamed record files: `images.csv` and `images.jsonl`, each when
/// its format was asked for.
struct Streams {
    images_csv: Option<ImagesCsv<AtomicFile>>,
    jsonl: Option<AtomicFile>,
}

impl Streams {
    fn open(dir: &Path, settings: &ReportSettings) -> anyhow::Result<Self> {
        let images_csv = match settings.formats.contains(&Format::Csv) {
            true => Some(ImagesCsv::new(AtomicFile::create(dir, IMAGES_CSV)?, settings.csv)?),
            false => None,
        };
        let jsonl = match settings.formats.contains(&Format::Json) {
            true => Some(AtomicFile::create(dir, IMAGES_JSONL)?),
            false => None,
        };
        Ok(Streams { images_csv, jsonl })
    }

    /// Writes `r`, whose settled line is `line`.
    fn write(&mut self, r: &ImageRecord, line: &[u8]) -> std::io::Result<()> {
        if let Some(w) = self.images_csv.as_mut() {
            w.write(r)?;
        }
        if let Some(w) = self.jsonl.as_mut() {
            // The line is the record as serialized when it settled, unless
            // the review ledger or the earlier run added to it.
            match r.review_decision.is_some() || r.blocked_since.is_some() {
                true => r.write_line(w)?,
                false => w.write_all(line)?,
            }
        }
        Ok(())
    }
}

/// The sorted outcomes matched against the sorted input ids.
struct Matcher<'a, I: Iterator<Item = &'a str>> {
    want: std::iter::Peekable<I>,
    order: IdOrder,
    /// Input ids passed over with no outcome.
    unaccounted: Vec<String>,
}

impl<'a, I: Iterator<Item = &'a str>> Matcher<'a, I> {
    /// Whether the outcome for `id` counts: not a second outcome for an id,
    /// and an id of the input (each skipped with a warning). An outcome out
    /// of order is an error.
    fn admit(&mut self, id: &str) -> std::io::Result<bool> {
        match self.order.next(id) {
            Ok(()) => {}
            Err(OutOfOrder::Duplicate(id)) => {
                tracing::warn!("a second outcome for {id} was ignored");
                return Ok(false);
            }
            Err(e) => return Err(std::io::Error::other(format!("the sorted outcomes: {e}"))),
        }
        while let Some(want) = self.want.next_if(|want| *want < id) {
            self.unaccounted.push(want.to_owned());
        }
        if self.want.next_if_eq(&id).is_none() {
            tracing::warn!("an outcome for {id}, which is not in the input, was ignored");
            return Ok(false);
        }
        Ok(true)
    }

    /// The input ids that got no outcome.
    fn finish(mut self) -> Vec<String> {
        self.unaccounted.extend(self.want.map(str::to_owned));
        self.unaccounted
    }
}

/// The page's bounded lists of records.
#[derive(Default)]
struct Listed {
    blocked: Vec<ImageRecord>,
    disagreements: Vec<ImageRecord>,
    missing: Vec<String>,
    unknown: Vec<ImageRecord>,
}

impl Listed {
    fn note(&mut self, r: &ImageRecord) {
        if r.is_blocked() && self.blocked.len() < html::MAX_BLOCKED_ROWS {
            self.blocked.push(r.clone());
        }
        if r.disagreement.is_some() && self.disagreements.len() < html::MAX_BLOCKED_ROWS {
            self.disagreements.push(r.clone());
        }
        if r.outcome == OutcomeKind::Missing && self.missing.len() < html::MAX_LISTED {
            self.missing.push(r.image_id.clone());
        }
        if r.outcome == OutcomeKind::Found
            && r.verdict.as_deref() == Some(Verdict::Unknown.as_str())
            && self.unknown.len() < html::MAX_LISTED
        {
            self.unknown.push(r.clone());
        }
    }
}

/// The page's bounded lists of changes.
#[derive(Default)]
struct ListedChanges {
    newly_blocked: Vec<Change>,
    unblocked: Vec<Change>,
    newly_missing: Vec<Change>,
}

impl ListedChanges {
    fn note(&mut self, c: &Change) {
        let (list, bound) = match c.change {
            "newly_blocked" => (&mut self.newly_blocked, html::MAX_BLOCKED_ROWS),
            "unblocked" => (&mut self.unblocked, html::MAX_LISTED),
            "newly_missing" => (&mut self.newly_missing, html::MAX_LISTED),
            _ => return,
        };
        if list.len() < bound {
            list.push(c.clone());
        }
    }
}

/// The earlier run's images.csv, read for what this run carries over
/// (`blocked_since`).
fn carry_from(
    prev: &Path,
    run_date: &str,
) -> anyhow::Result<review::Carry<impl Iterator<Item = std::io::Result<ImageRecord>>>> {
    let old_path = prev.join(IMAGES_CSV);
    let old = std::fs::File::open(&old_path).with_context(|| format!("reading {}", old_path.display()))?;
    // Rows of a run written before blocked_since had a column: that run's own date.
    let old_date = crate::rundir::manifest::Manifest::read(prev)
        .ok()
        .and_then(|m| m.started.get(..10).map(str::to_owned))
        .unwrap_or_else(|| run_date.to_owned());
    let rows = changes::records_from_csv(std::io::BufReader::new(old), "the earlier run's images.csv");
    Ok(review::Carry::new(rows, old_date))
}

/// Compares `records` with the run in `prev`: `changes.csv` (not yet
/// committed), the workbook's Changes sheet and the page's lists.
fn compare(
    dir: &Path,
    prev: &Path,
    style: CsvStyle,
    facts: &RunFacts,
    records: impl Iterator<Item = std::io::Result<ImageRecord>>,
    listed: &mut ListedChanges,
    workbook: Option<&RefCell<AuditWorkbook>>,
) -> anyhow::Result<(AtomicFile, changes::ChangeCounts)> {
    let old_path = prev.join(IMAGES_CSV);
    let old = std::fs::File::open(&old_path).with_context(|| format!("reading {}", old_path.display()))?;
    let old = changes::records_from_csv(std::io::BufReader::new(old), "the earlier run's images.csv");
    let mut writer = ChangesWriter::new(AtomicFile::create(dir, CHANGES_CSV)?, style)?;
    let (with, inventory) = (Some(prev.display().to_string()), facts.inventory);
    let counts = changes::compare_with_settings(old, records, with, inventory, &facts.settings_changed, |c| {
        listed.note(c);
        if let Some(w) = workbook {
            w.borrow_mut().add_change(c)?;
        }
        writer.write(c)
    })
    .with_context(|| format!("comparing with {}", prev.display()))?;
    Ok((writer.into_inner()?, counts))
}

/// The ledger, from the input's side, the totals and the ids that got no
/// outcome; whether the run is complete, and why not.
fn settle(summary: &mut Summary, input: Ledger, unaccounted_ids: Vec<String>, stop_reason: Option<String>) {
    let t = &summary.totals;
    summary.ledger = Ledger {
        found: t.found,
        missing: t.missing,
        failed: t.failed,
        not_attempted: t.not_attempted,
        unaccounted: unaccounted_ids.len() as u64,
        unaccounted_ids,
        ..input
    };
    summary.complete = stop_reason.is_none() && summary.ledger.unaccounted == 0;
    summary.stop_reason = stop_reason;
    if summary.ledger.unaccounted > 0 {
        // Never expected: every id yields an outcome. The caller says so loudly.
        let why = format!("{} ids unaccounted for", summary.ledger.unaccounted);
        summary.stop_reason = Some(summary.stop_reason.take().map_or(why.clone(), |r| format!("{r}; {why}")));
    }
}

/// `summary.html`, from the summary, the page's lists and the files
/// written so far.
fn write_page(
    dir: &Path,
    files: &[FileDigest],
    summary: &Summary,
    facts: &RunFacts,
    mut listed: Listed,
    changes: &ListedChanges,
    review_queue: &[review::QueueRow],
) -> anyhow::Result<FileDigest> {
    // The page is hashed into the manifest, so it cannot hold the
    // manifest's own digest: it shows images.csv's, which the manifest
    // lists, and says where the manifest's is.
    let images_csv_sha256 = files.iter().find(|f| f.name == IMAGES_CSV).map(|f| f.sha256.clone());
    // Newest change first: tonight's new blocks, then by the night each
    // was first seen blocked, latest first.
    let tonight: std::collections::HashSet<&str> = changes.newly_blocked.iter().map(|c| c.image_id.as_str()).collect();
    listed.blocked.sort_by(|a, b| {
        let key = |r: &ImageRecord| (tonight.contains(r.image_id.as_str()), r.blocked_since.clone());
        key(b).cmp(&key(a)).then_with(|| a.image_id.cmp(&b.image_id))
    });
    let mut trend = facts.earlier.clone();
    trend.push(TrendPoint::of(&facts.finished, summary));
    let info = PageInfo {
        started: &facts.started,
        finished: &facts.finished,
        input: &facts.input,
        input_sha256: &facts.input_sha256,
        endpoint: &facts.endpoint,
        region: &facts.region,
        account: facts.account.as_deref(),
        newly_blocked: &changes.newly_blocked,
        trend: &trend,
        disagreements: &listed.disagreements,
        review_queue,
        missing: &listed.missing,
        unknown: &listed.unknown,
        unblocked: &changes.unblocked,
        newly_missing: &changes.newly_missing,
        images_csv_sha256: images_csv_sha256.as_deref(),
    };
    Ok(write_atomic(dir, SUMMARY_HTML, |out| {
        html::write_summary_html(out, summary, &info, &mut listed.blocked.iter())
    })?)
}
