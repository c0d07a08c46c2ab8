//! Reading the list of image ids: CSV from a file or stdin.
//!
//! Owns header detection, id validation, de-duplication, line numbers for
//! rejected rows, and the input's SHA-256 and size (for the manifest). It
//! reads any `impl Read`; opening the path (or `-` for stdin) happens once,
//! in [`InputSource::open`], which refuses a path that is a FIFO, a socket
//! or a block device: opening a FIFO with no writer waits for ever, without
//! a word. (A character device such as `/dev/zero` is read, and refused by
//! its content; a pipe is what `--input -` is for.) Nothing here calls the
//! API: a bad row is rejected before any call is made.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use super::delimiter::{delimiter_name, parse_delimiter};
use super::delimiter::{first_line, peek_header, sniff_delimiter};
pub(crate) use super::input_stream::MAX_LINE_BYTES;
use super::input_stream::{NormalizeLines, Stop, Tap};
use crate::api::search::utc;
use crate::domain::id::validate_id;
use crate::domain::record::Rejected;
use crate::rundir::digest::Sha256;

/// How many rejected rows in a row (blank rows aside) the input may have
/// before it is refused as a whole. A real list with a bad stretch has a
/// few; a thousand in a row is a log, a binary or the wrong file, and a
/// stream of them that never ends would grow the rejected rows (and the run)
/// without end.
pub(crate) const MAX_REJECTED_IN_A_ROW: usize = 1000;

/// How much of a rejected value `rejected.csv` keeps.
const MAX_SHOWN_VALUE: usize = 200;

/// Header names recognised as the id column, compared in lower case.
const ID_HEADERS: &[&str] = &["imageid", "image_id"];

/// How many rejected rows an error message shows.
const SHOWN_REJECTED: usize = 3;

/// Single-column header words that are clearly not ids.
const SINGLE_COLUMN_HEADERS: &[&str] = &["id", "ids", "imageid", "image_id", "imageids", "image_ids", "image id"];

/// Where the ids come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InputSource {
    /// `-`: standard input.
    Stdin,
    /// A file.
    Path(PathBuf),
    /// `--all-images`: the account's images, listed first (by
    /// `run::inventory`).
    AllImages(Filters),
}

/// What `--all-images` lists: `--created-after`, `--created-before`,
/// `--cate-id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Filters {
    /// Seconds since the epoch, inclusive.
    pub created_after: Option<i64>,
    /// Seconds since the epoch, exclusive.
    pub created_before: Option<i64>,
    pub cate_id: Option<i64>,
}

impl Filters {
    /// How the listing is named in messages and in the run's input key.
    pub(crate) fn describe(&self) -> String {
        let mut s = "all images (SearchMedia)".to_owned();
        if let Some(a) = self.created_after {
            s.push_str(&format!(" created at or after {}", utc(a)));
        }
        if let Some(b) = self.created_before {
            s.push_str(&format!(" created before {}", utc(b)));
        }
        if let Some(c) = self.cate_id {
            s.push_str(&format!(" in category {c}"));
        }
        s
    }
}

impl InputSource {
    /// `-` means stdin, anything else a path.
    pub(crate) fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            InputSource::Stdin
        } else {
            InputSource::Path(PathBuf::from(arg))
        }
    }

    /// How it is named in messages and the manifest.
    pub(crate) fn display(&self) -> String {
        match self {
            InputSource::Stdin => "<stdin>".to_owned(),
            InputSource::Path(p) => p.display().to_string(),
            InputSource::AllImages(f) => f.describe(),
        }
    }

    /// Opens the source for reading.
    pub(crate) fn open(&self) -> Result<Box<dyn Read>, InputError> {
        match self {
            InputSource::Stdin => Ok(Box::new(io::stdin().lock())),
            InputSource::Path(p) => {
                // Looked at before it is opened: the open of a FIFO is what blocks.
                if let Some(kind) = std::fs::metadata(p).ok().and_then(|m| not_a_file(&m.file_type())) {
                    return Err(InputError::NotAFile { file: self.display(), kind });
                }
                std::fs::File::open(p)
                    .map(|f| Box::new(f) as Box<dyn Read>)
                    .map_err(|e| InputError::Read { file: self.display(), reason: e.to_string() })
            }
            InputSource::AllImages(_) => {
                Err(InputError::Read { file: self.display(), reason: "listed, not read: see --all-images".into() })
            }
        }
    }
}

/// What a path is, when it is something `--input` must not open: a FIFO, a
/// socket or a block device.
fn not_a_file(kind: &std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        [(kind.is_fifo(), "a FIFO"), (kind.is_socket(), "a socket"), (kind.is_block_device(), "a block device")]
            .into_iter()
            .find_map(|(is, what)| is.then_some(what))
    }
    #[cfg(not(unix))]
    {
        let _ = kind;
        None
    }
}

/// Why the input cannot be used at all. Each names the file and, where there
/// is one, the line, and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: String, reason: String },
    #[error("{file} is {kind}, not a file: opening it could wait for ever; to read ids from a pipe, pass them on stdin with --input - (e.g. `producer | vod-image-audit run --input -`)")]
    NotAFile { file: String, kind: &'static str },
    #[error("{file}: line {line} contains a NUL byte: this is not a CSV text file; export the ids as CSV (UTF-8)")]
    NotText { file: String, line: u64 },
    #[error("{file}: no data rows: the file is empty or holds only a header; give it one image id per row")]
    NoIds { file: String },
    #[error("{file}: line {line}: no id column: the header is [{header}]; name the column with --id-column NAME (ImageId, image_id and imageid are found without it)")]
    NoIdColumn { file: String, line: u64, header: String },
    #[error("{file}: line {line}: --id-column {name:?} is not in the header [{header}]")]
    UnknownColumn { file: String, line: u64, name: String, header: String },
    #[error("{file}: line {line}: a quoted field opened on or after this line is never closed, so the rest of the file would be read as one value; close the quote (or remove the stray '\"') and run again")]
    UnclosedQuote { file: String, line: u64 },
    #[error("{file}: line {line} is longer than {} KiB; is this a CSV of ids? Give --input a CSV file with one image id per row", MAX_LINE_BYTES / 1024)]
    LineTooLong { file: String, line: u64 },
    #[error("{file}: line {line}: a quoted field opened on this line runs on for more than {} KiB without its closing quote; close the quote (or remove the stray '\"') and run again", MAX_LINE_BYTES / 1024)]
    QuoteTooLong { file: String, line: u64 },
    #[error("{file}: no valid image id in {rows} data rows: {examples}; {read_as}: check that --input names the right file, and --id-column and --delimiter")]
    NoValidIds { file: String, rows: u64, examples: String, read_as: String },
    #[error("{file}: {rejected} of {rows} data rows ({:.1}%) are not valid image ids, more than --max-rejected {limit} allows: {examples}; {read_as}. Fix the input (or --id-column, --delimiter), or allow them with --max-rejected N or P% (they are then listed in rejected.csv)", *.rejected as f64 * 100.0 / (*.rows).max(1) as f64)]
    TooManyRejected { file: String, rejected: u64, rows: u64, limit: RejectLimit, examples: String, read_as: String },
    #[error("{file}: lines {first_line}-{last_line}: {rows} rows in a row are not image ids, starting with {examples} ({reason}); this does not look like a list of image ids: check that --input names the right file (and --id-column the right column)")]
    NotIds { file: String, first_line: u64, last_line: u64, rows: usize, examples: String, reason: String },
}

/// Unique ids in one buffer: a million 32-character ids take ~40 MB, not
/// the ~90 MB of a `Vec<String>`.
#[derive(Debug, Clone, Default)]
pub struct Ids {
    text: String,
    ends: Vec<usize>,
}

impl Ids {
    fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }

    /// The number of ids.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th id.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// The ids in input order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The ids in `image_id` (byte) order.
    pub fn sorted(&self) -> impl Iterator<Item = &str> + '_ {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_unstable_by(|a, b| self.get(*a as usize).cmp(self.get(*b as usize)));
        order.into_iter().map(|i| self.get(i as usize))
    }

    /// The ids as owned strings (for tests and small lists).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

/// A 128-bit fingerprint of an id: the de-duplication and resume sets hold
/// these instead of the strings. Two independently keyed SipHashes: a
/// collision among a million ids has odds around 2^-88.
#[derive(Clone, Default)]
pub(crate) struct Fingerprint(std::collections::hash_map::RandomState, std::collections::hash_map::RandomState);

impl Fingerprint {
    /// The fingerprint of `id`.
    pub(crate) fn of(&self, id: &str) -> u128 {
        use std::hash::BuildHasher;
        (u128::from(self.0.hash_one(id)) << 64) | u128::from(self.1.hash_one(id))
    }
}

/// The ids of an input, ready to audit.
#[derive(Debug, Clone)]
pub struct IdList {
    /// Unique valid ids, in the order first seen.
    pub ids: Ids,
    /// Non-blank data rows (`unique + duplicates + rejected`).
    pub input_rows: u64,
    /// Data rows that were blank (every field empty) and skipped.
    pub blank_rows: u64,
    /// Rows whose id was already seen.
    pub duplicates: u64,
    /// Rows that were not used.
    pub rejected: Vec<Rejected>,
    /// The column the ids came from (header name, or `#1` without a header).
    pub id_column: String,
    /// The field delimiter used: sniffed from the header line, or
    /// `--delimiter` (see [`delimiter_name`]).
    pub delimiter: u8,
    /// SHA-256 of the bytes read, lower-case hex.
    pub sha256: String,
    /// Bytes read.
    pub bytes: u64,
}

fn shown(value: &str) -> String {
    if value.chars().count() <= MAX_SHOWN_VALUE {
        value.to_owned()
    } else {
        let head: String = value.chars().take(MAX_SHOWN_VALUE).collect();
        format!("{head}… ({} bytes in all)", value.len())
    }
}

fn clean_header(field: &[u8]) -> String {
    let s = String::from_utf8_lossy(field);
    s.trim_start_matches('\u{feff}').trim().to_owned()
}

/// Reads ids from CSV, the delimiter sniffed. `file` names the source in
/// messages; `id_column` is `--id-column`. (The demo's shortcut; `run`
/// reads with [`read_ids_with`] and its options.)
#[cfg(any(test, feature = "simulator"))]
pub(crate) fn read_ids(reader: impl Read, file: &str, id_column: Option<&str>) -> Result<IdList, InputError> {
    read_ids_with(reader, file, &ReadOptions { id_column, delimiter: None })
}

/// How the input is read: `--id-column` and `--delimiter`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReadOptions<'a> {
    pub id_column: Option<&'a str>,
    /// `None`: sniffed from the header line.
    pub delimiter: Option<u8>,
}

/// Reads ids from CSV as `options` say. `file` names the source in messages.
///
/// The steps: the header line is peeked at for the delimiter; the first
/// non-blank row names the id column (`IdColumn::find`); every data row is
/// sorted into an id, a duplicate, a rejected or a blank row (`Rows`);
/// then the whole is checked and its digest taken.
pub(crate) fn read_ids_with(reader: impl Read, file: &str, options: &ReadOptions) -> Result<IdList, InputError> {
    let mut tap = Tap { inner: reader, hash: Sha256::default(), bytes: 0 };
    let mut head = Vec::new();
    peek_header(&mut tap, &mut head, MAX_LINE_BYTES)
        .map_err(|e| InputError::Read { file: file.to_owned(), reason: e.to_string() })?;
    let delimiter = options.delimiter.unwrap_or_else(|| first_line(&head).map_or(b',', |(l, _)| sniff_delimiter(l)));
    let lines = NormalizeLines::new(io::Cursor::new(head).chain(&mut tap), delimiter);
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(lines);

    let mut records = csv.byte_records();
    let first = first_row(&mut records, file)?;
    let header: Vec<String> = first.iter().map(clean_header).collect();
    let header_line = first.position().map_or(1, |p| p.line());
    let column = IdColumn::find(&header, options.id_column, file, header_line)?;
    let mut rows = Rows::new(column, delimiter, file);
    if !rows.column.first_is_header {
        rows.take(&first)?;
    }
    for rec in records {
        rows.take(&rec.map_err(|e| csv_error(e, file))?)?;
    }
    let shape = csv.into_inner().shape;
    if shape.open_quote_over_lines() {
        return Err(InputError::UnclosedQuote { file: file.to_owned(), line: shape.quote_line });
    }
    let mut out = rows.finish()?;
    out.sha256 = std::mem::take(&mut tap.hash).finish_hex();
    out.bytes = tap.bytes;
    Ok(out)
}

/// The first non-blank row: the header, or the first id of a one-column
/// file without one.
fn first_row<R: Read>(records: &mut csv::ByteRecordsIter<'_, R>, file: &str) -> Result<csv::ByteRecord, InputError> {
    for rec in records {
        let rec = rec.map_err(|e| csv_error(e, file))?;
        if !is_blank(&rec) {
            return Ok(rec);
        }
    }
    Err(InputError::NoIds { file: file.to_owned() })
}

/// Where the ids are: the column, and what the first row is.
struct IdColumn {
    index: usize,
    /// The header's name, or `#1` without a header.
    name: String,
    /// The first non-blank row is a header, not data.
    first_is_header: bool,
    /// The file has one column: more fields in a row mean a delimiter
    /// inside an id.
    single: bool,
}

impl IdColumn {
    /// Finds the id column in the first row (`header`, on line `line`):
    /// `--id-column` (`id_column`), else a known id header, else the only
    /// column, whose first row is a header when it is a header word or not
    /// a valid id.
    fn find(header: &[String], id_column: Option<&str>, file: &str, line: u64) -> Result<IdColumn, InputError> {
        let header_text = || header.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ");
        let named =
            |index: usize| IdColumn { index, name: header[index].clone(), first_is_header: true, single: false };
        if let Some(name) = id_column {
            let index = header
                .iter()
                .position(|h| h == name)
                .or_else(|| header.iter().position(|h| h.eq_ignore_ascii_case(name)))
                .ok_or_else(|| InputError::UnknownColumn {
                    file: file.to_owned(),
                    line,
                    name: name.to_owned(),
                    header: header_text(),
                })?;
            return Ok(named(index));
        }
        if let Some(index) = header.iter().position(|h| ID_HEADERS.contains(&h.to_ascii_lowercase().as_str())) {
            return Ok(named(index));
        }
        let [only] = header else {
            return Err(InputError::NoIdColumn { file: file.to_owned(), line, header: header_text() });
        };
        let is_header =
            SINGLE_COLUMN_HEADERS.contains(&only.to_ascii_lowercase().as_str()) || validate_id(only).is_err();
        let name = if is_header { only.clone() } else { "#1".to_owned() };
        Ok(IdColumn { index: 0, name, first_is_header: is_header, single: true })
    }
}

/// The data rows as they are read, sorted into the [`IdList`].
struct Rows<'f> {
    out: IdList,
    column: IdColumn,
    file: &'f str,
    fingerprint: Fingerprint,
    seen: HashSet<u128>,
    /// Rejected rows in a row, blank rows aside.
    in_a_row: usize,
}

impl<'f> Rows<'f> {
    fn new(column: IdColumn, delimiter: u8, file: &'f str) -> Self {
        let out = IdList {
            ids: Ids::default(),
            input_rows: 0,
            blank_rows: 0,
            duplicates: 0,
            rejected: Vec::new(),
            id_column: column.name.clone(),
            delimiter,
            sha256: String::new(),
            bytes: 0,
        };
        Rows { out, column, file, fingerprint: Fingerprint::default(), seen: HashSet::new(), in_a_row: 0 }
    }

    /// Sorts one row; the input is refused once more than
    /// [`MAX_REJECTED_IN_A_ROW`] are rejected in a row.
    fn take(&mut self, rec: &csv::ByteRecord) -> Result<(), InputError> {
        match self.sort(rec) {
            Row::Blank => {}
            Row::Used => self.in_a_row = 0,
            Row::Rejected => self.in_a_row += 1,
        }
        if self.in_a_row > MAX_REJECTED_IN_A_ROW {
            let rejected = &self.out.rejected;
            return Err(not_ids(self.file, &rejected[rejected.len() - self.in_a_row..]));
        }
        Ok(())
    }

    /// What becomes of one row, counted in the list.
    fn sort(&mut self, rec: &csv::ByteRecord) -> Row {
        let line = rec.position().map_or(0, |p| p.line());
        if is_blank(rec) {
            self.out.blank_rows += 1;
            return Row::Blank;
        }
        self.out.input_rows += 1;
        let raw = rec.get(self.column.index).unwrap_or_default();
        let Ok(text) = std::str::from_utf8(raw) else {
            return self.reject(line, &String::from_utf8_lossy(raw), "not valid UTF-8".to_owned());
        };
        let id = text.trim();
        if self.column.single && rec.iter().skip(1).any(|f| !f.iter().all(u8::is_ascii_whitespace)) {
            let reason = match self.out.delimiter {
                b',' => format!("{} fields in a one-column file (a comma inside an id?)", rec.len()),
                d => format!("{} fields in a one-column file (a {} inside an id?)", rec.len(), delimiter_name(d)),
            };
            return self.reject(line, &String::from_utf8_lossy(rec.as_slice()), reason);
        }
        if rec.len() <= self.column.index {
            let reason = format!("the row has {} fields and no {:?} column", rec.len(), self.out.id_column);
            return self.reject(line, "", reason);
        }
        if let Err(reason) = validate_id(id) {
            return self.reject(line, id, reason);
        }
        if self.seen.insert(self.fingerprint.of(id)) {
            self.out.ids.push(id);
        } else {
            self.out.duplicates += 1;
        }
        Row::Used
    }

    fn reject(&mut self, line: u64, value: &str, reason: String) -> Row {
        self.out.rejected.push(Rejected { line, value: shown(value), reason });
        Row::Rejected
    }

    /// The list, or why it cannot be used: no data rows, or no valid id in
    /// them.
    fn finish(self) -> Result<IdList, InputError> {
        let out = self.out;
        if out.input_rows == 0 {
            return Err(InputError::NoIds { file: self.file.to_owned() });
        }
        if out.ids.is_empty() {
            return Err(InputError::NoValidIds {
                file: self.file.to_owned(),
                rows: out.input_rows,
                examples: examples(&out.rejected),
                read_as: read_as(&out),
            });
        }
        Ok(out)
    }
}

/// What became of a data row.
enum Row {
    Blank,
    /// An id, new or a duplicate.
    Used,
    Rejected,
}

/// A rejected value, short and escaped, for a message.
fn brief(r: &Rejected) -> String {
    const SHOWN_CHARS: usize = 40;
    let head: String = r.value.chars().take(SHOWN_CHARS).collect();
    let more = if head.len() < r.value.len() { "…" } else { "" };
    format!("{head:?}{more}")
}

/// The first rejected rows, their lines, values and reasons, for a message.
fn examples(rejected: &[Rejected]) -> String {
    let mut shown: Vec<String> =
        rejected.iter().take(SHOWN_REJECTED).map(|r| format!("line {} {} ({})", r.line, brief(r), r.reason)).collect();
    if rejected.len() > SHOWN_REJECTED {
        shown.push(format!("and {} more", rejected.len() - SHOWN_REJECTED));
    }
    shown.join(", ")
}

/// How the ids were read, for a message about rejected rows.
fn read_as(list: &IdList) -> String {
    format!("the ids were read from column {:?}, fields split at {}", list.id_column, delimiter_name(list.delimiter))
}

/// `--max-rejected`: how many data rows (blank rows aside) may be rejected
/// before the input is refused as a whole, before any call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RejectLimit {
    /// At most this many rows.
    Count(u64),
    /// At most this percentage of the data rows.
    Percent(f64),
}

impl RejectLimit {
    /// The default: one row in ten.
    pub const DEFAULT: RejectLimit = RejectLimit::Percent(10.0);

    /// `N` or `P%`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || format!("{text:?}: give a count of rows (e.g. 25) or a percentage of the data rows (e.g. 10%)");
        if let Some(p) = text.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("{text:?}: a percentage is between 0% and 100%"));
            }
            Ok(RejectLimit::Percent(p))
        } else {
            text.parse().map(RejectLimit::Count).map_err(|_| bad())
        }
    }

    /// Refuses `list` (read from `file`) if more of its rows were rejected
    /// than the limit allows.
    pub fn check(&self, list: &IdList, file: &str) -> Result<(), InputError> {
        let rows = list.input_rows;
        let rejected = list.rejected.len() as u64;
        let over = match *self {
            RejectLimit::Count(n) => rejected > n,
            RejectLimit::Percent(p) => rejected as f64 * 100.0 > p * rows as f64,
        };
        if !over {
            return Ok(());
        }
        Err(InputError::TooManyRejected {
            file: file.to_owned(),
            rejected,
            rows,
            limit: *self,
            examples: examples(&list.rejected),
            read_as: read_as(list),
        })
    }
}

impl std::fmt::Display for RejectLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectLimit::Count(n) => write!(f, "{n}"),
            RejectLimit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The error for too many rejected rows in a row: `run`, their rows.
fn not_ids(file: &str, run: &[Rejected]) -> InputError {
    const SHOWN: usize = 3;
    InputError::NotIds {
        file: file.to_owned(),
        first_line: run[0].line,
        last_line: run[run.len() - 1].line,
        rows: run.len(),
        examples: run.iter().take(SHOWN).map(brief).collect::<Vec<_>>().join(", "),
        reason: run[0].reason.clone(),
    }
}

/// A parser error as an input error: a [`Stop`] raised while streaming comes
/// back out of the parser's I/O error as it went in.
fn csv_error(e: csv::Error, file: &str) -> InputError {
    let reason = e.to_string();
    let stop = match e.into_kind() {
        csv::ErrorKind::Io(io) => io.into_inner().and_then(|inner| inner.downcast::<Stop>().ok()),
        _ => None,
    };
    let file = file.to_owned();
    match stop.map(|stop| *stop) {
        Some(Stop::Nul { line }) => InputError::NotText { file, line },
        Some(Stop::LongLine { line }) => InputError::LineTooLong { file, line },
        Some(Stop::LongQuote { line }) => InputError::QuoteTooLong { file, line },
        None => InputError::Read { file, reason },
    }
}

fn is_blank(rec: &csv::ByteRecord) -> bool {
    rec.iter().all(|f| f.iter().all(|b| b.is_ascii_whitespace()))
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
