//! `audit.xlsx` (`--format xlsx`): one workbook for the people who live in
//! Excel, with four sheets: **Summary** (the run, totals, ledger,
//! `AuditStatus` coverage, counts by `AuditStatus`, `Status`, category and
//! failure code, changes), **Blocked** (every blocked image), **Changes**
//! (the rows of `changes.csv`) and **All images** (the rows of
//! `images.csv`).
//!
//! Owns the sheets' layout and the cell types. Text is always written with
//! `write_string`, which makes a string cell whatever the text (a formula
//! takes `write_formula`, never called here; XlsxWriter's Python `write`
//! guesses, this crate's does not, but `write_string` says so), so a title
//! such as `=HYPERLINK(...)` is shown as text and never runs; the
//! value is kept as the API gave it (no `'` as in the defused CSV), cut at
//! Excel's 32,767 UTF-16 units like `images.csv`. Ids of categories,
//! sizes, attempts, HTTP statuses and counts are number cells.
//!
//! Memory stays flat at any number of images: the data sheets are the
//! writer's constant-memory worksheets, which keep one row in memory and
//! stream the rest to an anonymous temporary file in the run directory
//! (the disk that holds the reports, not a `/tmp` that may be RAM). A sheet
//! that reaches Excel's 1,048,576 rows continues on `All images (2)` and so
//! on, and the Summary sheet says so. Where the file goes and how it is made
//! durable is [`crate::rundir`]'s business.

use std::any::Any;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::changes::{Change, CHANGES_COLUMNS, CHANGE_KINDS};
use super::summary::{Summary, Totals};
use super::write::{CUT_MARKER, IMAGES_COLUMNS};
use crate::domain::record::ImageRecord;
use crate::domain::verdict::Verdict;

/// The first sheet: the run and its counts.
pub(crate) const SUMMARY_SHEET: &str = "Summary";
/// Every blocked image.
pub(crate) const BLOCKED_SHEET: &str = "Blocked";
/// What changed since the earlier run compared with.
pub(crate) const CHANGES_SHEET: &str = "Changes";
/// One row per image, the columns of `images.csv`.
pub(crate) const IMAGES_SHEET: &str = "All images";

/// The Summary sheet's header.
pub(crate) const SUMMARY_COLUMNS: &[&str] = &["section", "item", "label", "count", "blocked"];

/// The Blocked sheet's header. `reason` stays empty until the moderation
/// API is asked why (a later change).
pub(crate) const BLOCKED_COLUMNS: &[&str] =
    &["image_id", "title", "cate_id", "cate_name", "creation_time", "url", "reasons", "verdict_source", "disagreement"];

/// Rows in one Excel worksheet, the header included (Excel's
/// specification and limits).
pub(crate) const EXCEL_MAX_ROWS: u32 = 1_048_576;

/// The longest text an Excel cell holds, in UTF-16 code units (Excel's
/// limits; the writer refuses longer).
pub(crate) const EXCEL_MAX_CELL: usize = 32_767;

/// Above this estimate of a sheet's XML the file is written with ZIP64,
/// which a zip of more than 4 GiB needs; half of that, for the estimate's
/// slack. Smaller files stay plain zip, which every reader takes.
const ZIP64_ABOVE: u64 = 2 << 30;

/// Bytes of XML around one cell's value (`<c r="..." s="1" t="inlineStr"><is><t ...>`).
const CELL_XML: u64 = 64;

/// A column's width in characters: wide enough for an id, a URL or a title to be
/// read without dragging.
fn width(column: &str) -> f64 {
    match column {
        "image_id" | "request_id" | "item" => 34.0,
        "title" | "description" | "error_message" | "reason" => 40.0,
        "url" | "file_url" | "image_url" | "label" => 50.0,
        "storage_location" | "original_file_name" => 30.0,
        "creation_time" | "error_code" | "section" => 22.0,
        "cate_name" | "before_cate_name" | "tags" | "change" | "image_type" => 20.0,
        "width" | "height" | "attempts" | "outcome" | "blocked" => 10.0,
        _ => 14.0,
    }
}

/// One cell's value, typed.
enum Cell<'a> {
    /// A string cell (blank when absent).
    Text(Option<&'a str>),
    /// A number cell (blank when absent).
    Int(Option<i64>),
    /// Digits as the API sent them (`FileSize`): a number cell when it is a
    /// whole number, the text otherwise.
    Digits(Option<&'a str>),
}

const _: () = assert!(IMAGES_COLUMNS.len() == 36 && BLOCKED_COLUMNS.len() == 9 && CHANGES_COLUMNS.len() == 11);

/// A record as the cells of an `All images` row, in [`IMAGES_COLUMNS`] order.
fn image_cells(r: &ImageRecord) -> [Cell<'_>; 36] {
    use Cell::{Digits, Int, Text};
    [
        Text(Some(&r.image_id)),
        Text(Some(r.outcome.as_str())),
        Text(r.verdict.as_deref()),
        Text(r.verdict_source.as_deref()),
        Text(r.audit_status.as_deref()),
        Text(r.moderation_suggestion.as_deref()),
        Text(r.reasons.as_deref()),
        Text(r.abnormal_modules.as_deref()),
        Text(r.disagreement.as_deref()),
        Text(r.unrecognised.as_deref()),
        Text(r.status.as_deref()),
        Int(r.cate_id),
        Text(r.cate_name.as_deref()),
        Text(r.title.as_deref()),
        Text(r.image_type.as_deref()),
        Text(r.creation_time.as_deref()),
        Text(r.tags.as_deref()),
        Text(r.description.as_deref()),
        Text(r.storage_location.as_deref()),
        Text(r.url.as_deref()),
        Text(r.app_id.as_deref()),
        Text(r.region_id.as_deref()),
        Digits(r.file_size.as_deref()),
        Int(r.width),
        Int(r.height),
        Text(r.original_file_name.as_deref()),
        Text(r.file_url.as_deref()),
        Int(Some(r.attempts.into())),
        Text(r.error_code.as_deref()),
        Text(r.error_message.as_deref()),
        Int(r.http_status.map(i64::from)),
        Text(r.request_id.as_deref()),
        Text(r.review_decision.as_deref()),
        Text(r.reviewer.as_deref()),
        Text(r.reviewed_at.as_deref()),
        Text(r.blocked_since.as_deref()),
    ]
}

/// A blocked record as the cells of a `Blocked` row ([`BLOCKED_COLUMNS`]).
fn blocked_cells(r: &ImageRecord) -> [Cell<'_>; 9] {
    use Cell::{Int, Text};
    [
        Text(Some(&r.image_id)),
        Text(r.title.as_deref()),
        Int(r.cate_id),
        Text(r.cate_name.as_deref()),
        Text(r.creation_time.as_deref()),
        Text(r.url.as_deref()),
        // Why, when GetMediaAuditResult was asked (--audit-source).
        Text(r.reasons.as_deref()),
        Text(r.verdict_source.as_deref()),
        Text(r.disagreement.as_deref()),
    ]
}

/// A change as the cells of a `Changes` row ([`CHANGES_COLUMNS`]).
fn change_cells(c: &Change) -> [Cell<'_>; 11] {
    use Cell::{Int, Text};
    [
        Text(Some(&c.image_id)),
        Text(Some(c.change)),
        Text(Some(&c.before)),
        Text(Some(&c.after)),
        Text(c.title.as_deref()),
        Int(c.cate_id),
        Text(c.cate_name.as_deref()),
        Text(c.image_url.as_deref()),
        Int(c.before_cate_id),
        Text(c.before_cate_name.as_deref()),
        Text(c.explained_by.as_deref()),
    ]
}

/// `value` cut to at most [`EXCEL_MAX_CELL`] UTF-16 units, marked as
/// `images.csv` marks its cut cells, if longer.
fn cut_cell(value: &str) -> Option<String> {
    // UTF-8 bytes bound UTF-16 units: most values never need counting.
    if value.len() <= EXCEL_MAX_CELL || value.encode_utf16().count() <= EXCEL_MAX_CELL {
        return None;
    }
    let marker = format!("{CUT_MARKER}{}]", value.len());
    let room = EXCEL_MAX_CELL - marker.encode_utf16().count();
    let (mut units, mut end) = (0, 0);
    for (i, ch) in value.char_indices() {
        if units + ch.len_utf16() > room {
            break;
        }
        units += ch.len_utf16();
        end = i + ch.len_utf8();
    }
    Some(format!("{}{marker}", &value[..end]))
}

/// The largest integer an Excel number (an f64) holds exactly: 2^53.
const EXACT_INT: u64 = 1 << 53;

fn xlsx_error(e: XlsxError) -> io::Error {
    match e {
        XlsxError::IoError(e) | XlsxError::TempFileError(_, e) => e,
        other => io::Error::other(other),
    }
}

/// Writes one typed cell; returns the bytes of XML it adds, roughly.
fn write_cell(ws: &mut Worksheet, row: u32, col: u16, cell: &Cell<'_>) -> io::Result<u64> {
    let text = |ws: &mut Worksheet, v: &str| -> io::Result<u64> {
        let cut = cut_cell(v);
        let v = cut.as_deref().unwrap_or(v);
        // write_string: a string cell whatever the text, never a formula.
        ws.write_string(row, col, v).map_err(xlsx_error)?;
        let escaped = v.bytes().filter(|b| matches!(b, b'&' | b'<' | b'>' | b'"') || *b < 0x20).count() as u64;
        Ok(CELL_XML + v.len() as u64 + 6 * escaped)
    };
    let number = |ws: &mut Worksheet, n: i64| -> io::Result<u64> {
        if n.unsigned_abs() > EXACT_INT {
            // An id a float would round: kept exact, as text.
            return text(ws, &n.to_string());
        }
        ws.write_number(row, col, n as f64).map_err(xlsx_error)?;
        Ok(CELL_XML)
    };
    match *cell {
        Cell::Text(Some(v)) => text(ws, v),
        Cell::Int(Some(n)) => number(ws, n),
        Cell::Digits(Some(v)) => match v.parse::<i64>() {
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => number(ws, n),
            _ => text(ws, v),
        },
        Cell::Text(None) | Cell::Int(None) | Cell::Digits(None) => Ok(0),
    }
}

/// A new data sheet: the bold header, frozen, the widths set.
fn start_sheet(ws: &mut Worksheet, name: &str, columns: &[&str], bold: &Format) -> io::Result<()> {
    ws.set_name(name).map_err(xlsx_error)?;
    for (col, title) in columns.iter().enumerate() {
        let col = col as u16;
        ws.write_string_with_format(0, col, *title, bold).map_err(xlsx_error)?;
        ws.set_column_width(col, width(title)).map_err(xlsx_error)?;
    }
    ws.set_freeze_panes(1, 0).map_err(xlsx_error)?;
    Ok(())
}

/// One worksheet of a [`Sheet`].
struct Part {
    sheet: Worksheet,
    name: String,
    rows: u32,
}

/// One logical sheet (All images, say): the worksheets it fills, one after
/// another as each reaches the row limit.
struct Sheet {
    base: &'static str,
    columns: &'static [&'static str],
    done: Vec<Part>,
    current: Part,
    /// Rows of data in every part.
    rows: u64,
    /// The current part's XML, estimated.
    xml_bytes: u64,
    /// Whether any part's XML may pass the plain zip's 4 GiB.
    large: bool,
}

impl Sheet {
    fn new(
        book: &mut Workbook,
        base: &'static str,
        columns: &'static [&'static str],
        bold: &Format,
    ) -> io::Result<Self> {
        let current = Self::part(book, base.to_owned(), columns, bold)?;
        Ok(Sheet { base, columns, done: Vec::new(), current, rows: 0, xml_bytes: 0, large: false })
    }

    fn part(book: &mut Workbook, name: String, columns: &[&str], bold: &Format) -> io::Result<Part> {
        let mut sheet = book.new_worksheet_with_constant_memory().map_err(xlsx_error)?;
        start_sheet(&mut sheet, &name, columns, bold)?;
        Ok(Part { sheet, name, rows: 0 })
    }

    /// Appends one row, on a new worksheet if the current one is full.
    fn push(&mut self, book: &mut Workbook, bold: &Format, limit: u32, cells: &[Cell<'_>]) -> io::Result<()> {
        if self.current.rows + 1 >= limit {
            let name = format!("{} ({})", self.base, self.done.len() + 2);
            let next = Self::part(book, name, self.columns, bold)?;
            self.done.push(std::mem::replace(&mut self.current, next));
            self.xml_bytes = 0;
        }
        let row = self.current.rows + 1;
        for (col, cell) in cells.iter().enumerate() {
            self.xml_bytes += write_cell(&mut self.current.sheet, row, col as u16, cell)?;
        }
        self.large |= self.xml_bytes > ZIP64_ABOVE;
        self.current.rows = row;
        self.rows += 1;
        Ok(())
    }

    /// A line of text under the header, for a sheet with nothing to list.
    fn note(&mut self, text: &str) -> io::Result<()> {
        write_cell(&mut self.current.sheet, 1, 0, &Cell::Text(Some(text))).map(drop)
    }

    fn names(&self) -> impl Iterator<Item = (&str, u32)> {
        self.done.iter().chain([&self.current]).map(|p| (p.name.as_str(), p.rows))
    }

    /// The worksheets, each with its autofilter over what it holds.
    fn finish(self) -> io::Result<Vec<Worksheet>> {
        let last_col = self.columns.len() as u16 - 1;
        let mut out = Vec::new();
        for mut part in self.done.into_iter().chain([self.current]) {
            part.sheet.autofilter(0, 0, part.rows.max(1), last_col).map_err(xlsx_error)?;
            out.push(part.sheet);
        }
        Ok(out)
    }
}

/// `audit.xlsx`, fed one record and one change at a time in `image_id`
/// order, and finished with the summary.
pub(crate) struct AuditWorkbook {
    book: Workbook,
    bold: Format,
    blocked: Sheet,
    changes: Sheet,
    images: Sheet,
    /// Rows per worksheet, the header included ([`EXCEL_MAX_ROWS`]; fewer
    /// in the tests).
    limit: u32,
    /// Set when the writer failed: the workbook is not to be trusted.
    broken: bool,
}

impl AuditWorkbook {
    /// Starts a workbook whose sheet data waits in anonymous temporary files
    /// in `dir` (the run directory).
    pub(crate) fn new(dir: &Path) -> io::Result<Self> {
        Self::with_limit(dir, EXCEL_MAX_ROWS)
    }

    fn with_limit(dir: &Path, limit: u32) -> io::Result<Self> {
        guarded(|| {
            let mut book = Workbook::new();
            book.set_tempdir(dir).map_err(xlsx_error)?;
            let bold = Format::new().set_bold();
            let blocked = Sheet::new(&mut book, BLOCKED_SHEET, BLOCKED_COLUMNS, &bold)?;
            let changes = Sheet::new(&mut book, CHANGES_SHEET, CHANGES_COLUMNS, &bold)?;
            let images = Sheet::new(&mut book, IMAGES_SHEET, IMAGES_COLUMNS, &bold)?;
            Ok(AuditWorkbook { book, bold, blocked, changes, images, limit, broken: false })
        })
    }

    /// Runs `f` on the workbook, refusing once it has failed.
    fn with<T>(&mut self, f: impl FnOnce(&mut Self) -> io::Result<T>) -> io::Result<T> {
        if self.broken {
            return Err(io::Error::other("audit.xlsx: the workbook failed earlier"));
        }
        let result = guarded(|| f(self));
        self.broken = result.is_err();
        result
    }

    /// Adds a record to `All images`, and to `Blocked` if it is blocked.
    pub(crate) fn add_record(&mut self, r: &ImageRecord) -> io::Result<()> {
        self.with(|w| {
            w.images.push(&mut w.book, &w.bold, w.limit, &image_cells(r))?;
            if r.is_blocked() {
                w.blocked.push(&mut w.book, &w.bold, w.limit, &blocked_cells(r))?;
            }
            Ok(())
        })
    }

    /// Adds a change to `Changes`.
    pub(crate) fn add_change(&mut self, c: &Change) -> io::Result<()> {
        self.with(|w| w.changes.push(&mut w.book, &w.bold, w.limit, &change_cells(c)))
    }

    /// Writes the Summary sheet and the whole workbook to `out`.
    pub(crate) fn finish<W: Write + Send>(self, summary: &Summary, run: &RunLines<'_>, out: W) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other("audit.xlsx: the workbook failed earlier"));
        }
        let AuditWorkbook { mut book, bold, blocked, mut changes, images, .. } = self;
        guarded(move || {
            if changes.rows == 0 {
                let note = match &summary.changes {
                    None => "This run was not compared with an earlier one (--compare-with auto or DIR).".to_owned(),
                    Some(c) => format!(
                        "No changes since {} ({} images compared).",
                        c.compared_with.as_deref().unwrap_or("the earlier run"),
                        c.compared
                    ),
                };
                changes.note(&note)?;
            }
            let mut first = Worksheet::new();
            write_summary(&mut first, summary, run, &bold, [&blocked, &changes, &images])?;
            book.push_worksheet(first);
            let large = [&blocked, &changes, &images].iter().any(|s| s.large);
            for sheet in [blocked, changes, images] {
                for ws in sheet.finish()? {
                    book.push_worksheet(ws);
                }
            }
            book.use_zip_large_file(large);
            book.save_to_writer(out).map_err(xlsx_error)
        })
    }
}

/// The Summary sheet's rows, one after another.
struct Lines<'w> {
    ws: &'w mut Worksheet,
    row: u32,
}

impl Lines<'_> {
    /// Writes the next row; returns its index.
    fn line(
        &mut self,
        section: &str,
        item: Cell<'_>,
        label: Option<&str>,
        count: Option<u64>,
        blocked: Option<u64>,
    ) -> io::Result<u32> {
        self.row += 1;
        let cells = [
            Cell::Text(Some(section)),
            item,
            Cell::Text(label),
            Cell::Int(count.map(|n| n as i64)),
            Cell::Int(blocked.map(|n| n as i64)),
        ];
        for (col, cell) in cells.iter().enumerate() {
            write_cell(self.ws, self.row, col as u16, cell)?;
        }
        Ok(self.row)
    }
}

fn text(v: &str) -> Cell<'_> {
    Cell::Text(Some(v))
}

/// The run's facts for the Summary sheet, `(item, value)` in the order
/// shown; an empty value is left out.
pub(crate) type RunLines<'a> = [(&'static str, &'a str)];

/// The Summary sheet, [`SUMMARY_COLUMNS`]: the run, the totals and ledger,
/// the coverage, the counts, the changes and the sheets.
fn write_summary(
    ws: &mut Worksheet,
    s: &Summary,
    run: &RunLines<'_>,
    bold: &Format,
    sheets: [&Sheet; 3],
) -> io::Result<()> {
    start_sheet(ws, SUMMARY_SHEET, SUMMARY_COLUMNS, bold)?;
    let mut w = Lines { ws, row: 0 };
    run_lines(&mut w, s, run)?;
    for row in &Totals::ROWS {
        let blocked = (row.key == "found").then(|| s.blocked());
        w.line("totals", text(row.key), None, Some((row.count)(&s.totals)), blocked)?;
    }
    for (key, _, n) in s.ledger.rows() {
        w.line("ledger", text(key), None, Some(n), None)?;
    }
    coverage_lines(&mut w, s)?;
    count_lines(&mut w, s)?;
    if let Some(ch) = &s.changes {
        w.line("changes", text("compared_with"), ch.compared_with.as_deref(), None, None)?;
        w.line("changes", text("compared"), None, Some(ch.compared), None)?;
        w.line("changes", text("not_compared"), None, Some(ch.not_compared), None)?;
        for kind in CHANGE_KINDS {
            w.line("changes", text(kind), None, Some(ch.counts.get(*kind).copied().unwrap_or(0)), None)?;
        }
    }
    for sheet in sheets {
        sheet_lines(&mut w, sheet)?;
    }
    let last = SUMMARY_COLUMNS.len() as u16 - 1;
    w.ws.autofilter(0, 0, w.row.max(1), last).map_err(xlsx_error)?;
    Ok(())
}

/// Whether the run is complete, why it stopped, and its facts.
fn run_lines(w: &mut Lines<'_>, s: &Summary, run: &RunLines<'_>) -> io::Result<()> {
    w.line("run", text("complete"), Some(if s.complete { "yes" } else { "no" }), None, None)?;
    if let Some(reason) = &s.stop_reason {
        w.line("run", text("stop_reason"), Some(reason), None, None)?;
    }
    for (item, value) in run.iter().filter(|(_, v)| !v.is_empty()) {
        w.line("run", text(item), Some(value), None, None)?;
    }
    Ok(())
}

/// The verdict's and `AuditStatus`'s coverage: counts, and the share as a
/// percentage cell.
fn coverage_lines(w: &mut Lines<'_>, s: &Summary) -> io::Result<()> {
    let percent = Format::new().set_num_format("0.0%");
    let c = &s.verdict_coverage;
    let a = &s.audit_status_coverage;
    let sections = [
        ("verdict_coverage", "with_verdict", c.found, c.with_verdict, c.percent(), c.share),
        ("audit_status_coverage", "with_audit_status", a.found, a.with_audit_status, a.percent(), a.share),
    ];
    for (section, with, found, with_n, percent_text, share) in sections {
        w.line(section, text("found"), None, Some(found), None)?;
        w.line(section, text(with), None, Some(with_n), None)?;
        let row = w.line(section, text("share"), Some(&percent_text), None, None)?;
        if let Some(share) = share {
            w.ws.write_number_with_format(row, 3, share, &percent).map_err(xlsx_error)?;
        }
    }
    Ok(())
}

/// The counts of found images by each dimension, and of failures by code.
fn count_lines(w: &mut Lines<'_>, s: &Summary) -> io::Result<()> {
    for (value, n) in &s.by_verdict {
        let blocked = if value == Verdict::Blocked.as_str() { *n } else { 0 };
        w.line("verdict", text(value), None, Some(*n), Some(blocked))?;
    }
    for (dimension, counts) in [
        ("audit_status", &s.by_audit_status),
        ("reason", &s.by_reason),
        ("disagreement", &s.disagreements),
        ("unrecognised", &s.unrecognised_values),
        ("status", &s.by_status),
    ] {
        for (value, n) in counts {
            w.line(dimension, text(value), None, Some(*n), None)?;
        }
    }
    for cat in &s.by_category {
        let label = cat.cate_name.as_deref().or(cat.cate_id.is_none().then_some("(uncategorized)"));
        w.line("category", Cell::Int(cat.cate_id), label, Some(cat.images), Some(cat.blocked))?;
    }
    for (code, n) in &s.failures_by_code {
        w.line("failures_by_code", text(code), None, Some(*n), None)?;
    }
    Ok(())
}

/// A data sheet's worksheets and their rows; where it continues past one
/// worksheet, a note saying so.
fn sheet_lines(w: &mut Lines<'_>, sheet: &Sheet) -> io::Result<()> {
    let parts: Vec<(&str, u32)> = sheet.names().collect();
    for (name, rows) in &parts {
        w.line("sheets", text(name), None, Some(u64::from(*rows)), None)?;
    }
    if let [_, rest @ ..] = parts.as_slice() {
        if !rest.is_empty() {
            let names: Vec<&str> = rest.iter().map(|p| p.0).collect();
            let note = format!(
                "{} has {} rows, more than one Excel sheet holds ({EXCEL_MAX_ROWS} with the header): it continues on {}",
                sheet.base,
                sheet.rows,
                names.join(", ")
            );
            w.line("sheets", text(sheet.base), Some(&note), Some(sheet.rows), None)?;
        }
    }
    Ok(())
}

/// Runs `f`, turning a panic into an error. The writer streams a
/// constant-memory sheet to its temporary file with `expect`, so a full
/// disk there panics instead of failing; as an error it ends the run like
/// any report that cannot be written (exit 4, resumable), not as a crash.
fn guarded<T>(f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(panic_error(payload.as_ref())))
}

/// The panic's message as an error, of the kind of the I/O error it
/// carries (`Os { code: 28, .. }`) when it names one, so the disk-full
/// advice still applies.
fn panic_error(payload: &(dyn Any + Send)) -> io::Error {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    let code = message.split("code: ").nth(1).and_then(|t| {
        let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<i32>().ok()
    });
    let kind = code.map_or(io::ErrorKind::Other, |c| io::Error::from_raw_os_error(c).kind());
    io::Error::new(kind, format!("audit.xlsx: the spreadsheet writer failed: {message}"))
}

#[cfg(test)]
#[path = "xlsx_tests.rs"]
mod tests;
