//! Reading the list of image ids: CSV from a file or stdin.
//!
//! Owns header detection, id validation, de-duplication, line numbers for
//! rejected rows, and the input's SHA-256 and size (for the manifest). It
//! reads any `impl Read`; opening the path (or `-` for stdin) happens once,
//! in [`InputSource::open`]. Nothing here calls the API: a bad row is
//! rejected before any call is made.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::PathBuf;

pub use crate::report::record::Rejected;
use crate::rundir::digest::Sha256;

/// The longest id accepted. VOD ids are 32 hex characters; 64 leaves room
/// for other id schemes without letting a stray blob through.
pub const MAX_ID_LEN: usize = 64;

/// How much of a rejected value `rejected.csv` keeps.
const MAX_SHOWN_VALUE: usize = 200;

/// Header names recognised as the id column, compared in lower case.
const ID_HEADERS: &[&str] = &["imageid", "image_id"];

/// Single-column header words that are clearly not ids.
const SINGLE_COLUMN_HEADERS: &[&str] = &["id", "ids", "imageid", "image_id", "imageids", "image_ids", "image id"];

/// Where the ids come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// `-`: standard input.
    Stdin,
    /// A file.
    Path(PathBuf),
}

impl InputSource {
    /// `-` means stdin, anything else a path.
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            InputSource::Stdin
        } else {
            InputSource::Path(PathBuf::from(arg))
        }
    }

    /// How it is named in messages and the manifest.
    pub fn display(&self) -> String {
        match self {
            InputSource::Stdin => "<stdin>".to_owned(),
            InputSource::Path(p) => p.display().to_string(),
        }
    }

    /// Opens the source for reading.
    pub fn open(&self) -> Result<Box<dyn Read>, InputError> {
        match self {
            InputSource::Stdin => Ok(Box::new(io::stdin().lock())),
            InputSource::Path(p) => std::fs::File::open(p)
                .map(|f| Box::new(f) as Box<dyn Read>)
                .map_err(|e| InputError::Read { file: self.display(), reason: e.to_string() }),
        }
    }
}

/// Why the input cannot be used at all. Each names the file and, where there
/// is one, the line, and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: String, reason: String },
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
pub struct Fingerprint(std::collections::hash_map::RandomState, std::collections::hash_map::RandomState);

impl Fingerprint {
    /// The fingerprint of `id`.
    pub fn of(&self, id: &str) -> u128 {
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
    /// SHA-256 of the bytes read, lower-case hex.
    pub sha256: String,
    /// Bytes read.
    pub bytes: u64,
}

/// Passes bytes through while hashing them and noting what the CSV parser
/// hides: NUL bytes and the parity of quote characters.
struct Tap<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
    /// The 1-based line of the first NUL byte, if any.
    nul_line: Option<u64>,
    /// Line ends so far (CR, LF, CRLF counted once).
    lines: u64,
    after_cr: bool,
    quotes: u64,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        self.hash.update(chunk);
        self.bytes += n as u64;
        for &b in chunk {
            match b {
                b'"' => self.quotes += 1,
                b'\r' => self.lines += 1,
                b'\n' if !self.after_cr => self.lines += 1,
                0 if self.nul_line.is_none() => self.nul_line = Some(self.lines + 1),
                _ => {}
            }
            self.after_cr = b == b'\r';
        }
        Ok(n)
    }
}

/// Feeds the CSV parser line endings it counts correctly.
///
/// The `csv` crate skips empty lines silently, reports the line of the
/// record after a blank line as the blank line's, and counts a CRLF file's
/// lines one short. So every line ending (CRLF, LF, a lone CR) becomes `\n`
/// and every empty line gets one space: a record of its own, which
/// `read_ids` counts as blank. Only the parser sees the change: the digest is
/// taken before it, and only the id column, which cannot hold a line break,
/// is used.
struct NormalizeLines<R> {
    inner: R,
    at_line_start: bool,
    after_cr: bool,
}

impl<R: Read> Read for NormalizeLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Each input byte yields at most two output bytes.
        let mut tmp = [0u8; 8192];
        let want = (buf.len() / 2).min(tmp.len());
        if want == 0 {
            return Ok(0);
        }
        let got = self.inner.read(&mut tmp[..want])?;
        let mut n = 0;
        for &b in &tmp[..got] {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            if b == b'\n' && after_cr {
                continue; // the LF of a CRLF, already ended
            }
            if b == b'\n' || b == b'\r' {
                if self.at_line_start {
                    buf[n] = b' ';
                    n += 1;
                }
                buf[n] = b'\n';
                n += 1;
                self.at_line_start = true;
            } else {
                buf[n] = b;
                n += 1;
                self.at_line_start = false;
            }
        }
        Ok(n)
    }
}

/// Checks one id. `Err` is the reason it is rejected.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty id".to_owned());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("longer than {MAX_ID_LEN} characters ({} bytes)", id.len()));
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        let what = match c {
            ' ' => "a space".to_owned(),
            '\n' | '\r' => "a line break".to_owned(),
            c if c.is_control() => format!("a control character ({:?})", c),
            c => format!("{c:?}"),
        };
        return Err(format!("contains {what}; an id has only A-Z a-z 0-9 _ -"));
    }
    Ok(())
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

/// Reads ids from CSV. `file` names the source in messages; `id_column` is
/// `--id-column`.
pub fn read_ids(reader: impl Read, file: &str, id_column: Option<&str>) -> Result<IdList, InputError> {
    let mut tap =
        Tap { inner: reader, hash: Sha256::default(), bytes: 0, nul_line: None, lines: 0, after_cr: false, quotes: 0 };
    let lines = NormalizeLines { inner: &mut tap, at_line_start: true, after_cr: false };
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(lines);
    let read_err = |e: csv::Error| InputError::Read { file: file.to_owned(), reason: e.to_string() };

    let mut records = csv.byte_records();
    let mut first = None;
    for rec in records.by_ref() {
        let rec = rec.map_err(read_err)?;
        if !is_blank(&rec) {
            first = Some(rec);
            break;
        }
    }
    let Some(first) = first else {
        drop(records);
        if let Some(line) = tap.nul_line {
            return Err(InputError::NotText { file: file.to_owned(), line });
        }
        return Err(InputError::NoIds { file: file.to_owned() });
    };
    let first_line = first.position().map_or(1, |p| p.line());
    let header: Vec<String> = first.iter().map(clean_header).collect();
    let header_text = || header.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ");

    // (column index, column name, whether the first row is a header)
    let (col, col_name, first_is_header, single) = if let Some(name) = id_column {
        let idx = header
            .iter()
            .position(|h| h == name)
            .or_else(|| header.iter().position(|h| h.eq_ignore_ascii_case(name)))
            .ok_or_else(|| InputError::UnknownColumn {
                file: file.to_owned(),
                line: first_line,
                name: name.to_owned(),
                header: header_text(),
            })?;
        (idx, header[idx].clone(), true, false)
    } else if let Some(idx) = header.iter().position(|h| ID_HEADERS.contains(&h.to_ascii_lowercase().as_str())) {
        (idx, header[idx].clone(), true, false)
    } else if header.len() == 1 {
        let h = &header[0];
        let is_header = SINGLE_COLUMN_HEADERS.contains(&h.to_ascii_lowercase().as_str()) || validate_id(h).is_err();
        if is_header {
            (0, h.clone(), true, true)
        } else {
            (0, "#1".to_owned(), false, true)
        }
    } else {
        return Err(InputError::NoIdColumn { file: file.to_owned(), line: first_line, header: header_text() });
    };

    let mut out = IdList {
        ids: Ids::default(),
        input_rows: 0,
        blank_rows: 0,
        duplicates: 0,
        rejected: Vec::new(),
        id_column: col_name,
        sha256: String::new(),
        bytes: 0,
    };
    let fingerprint = Fingerprint::default();
    let mut seen: HashSet<u128> = HashSet::new();
    let mut last_line = first_line;
    let mut last_had_break = false;
    let mut take = |rec: &csv::ByteRecord, out: &mut IdList| {
        let line = rec.position().map_or(0, |p| p.line());
        last_line = line;
        last_had_break = rec.iter().any(|f| f.contains(&b'\n') || f.contains(&b'\r'));
        if is_blank(rec) {
            out.blank_rows += 1;
            return;
        }
        out.input_rows += 1;
        let raw = rec.get(col).unwrap_or_default();
        let reject = |out: &mut IdList, value: &str, reason: String| {
            out.rejected.push(Rejected { line, value: shown(value), reason })
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            return reject(out, &String::from_utf8_lossy(raw), "not valid UTF-8".to_owned());
        };
        let id = text.trim();
        if single && rec.iter().skip(1).any(|f| !f.iter().all(u8::is_ascii_whitespace)) {
            return reject(
                out,
                &String::from_utf8_lossy(rec.as_slice()),
                format!("{} fields in a one-column file (a comma inside an id?)", rec.len()),
            );
        }
        if rec.len() <= col {
            return reject(out, "", format!("the row has {} fields and no {:?} column", rec.len(), out.id_column));
        }
        if let Err(reason) = validate_id(id) {
            return reject(out, id, reason);
        }
        if seen.insert(fingerprint.of(id)) {
            out.ids.push(id);
        } else {
            out.duplicates += 1;
        }
    };
    if !first_is_header {
        take(&first, &mut out);
    }
    for rec in records {
        let rec = rec.map_err(read_err)?;
        take(&rec, &mut out);
    }
    drop(csv);
    if let Some(line) = tap.nul_line {
        return Err(InputError::NotText { file: file.to_owned(), line });
    }
    if tap.quotes % 2 == 1 && last_had_break {
        return Err(InputError::UnclosedQuote { file: file.to_owned(), line: last_line });
    }
    if out.input_rows == 0 {
        return Err(InputError::NoIds { file: file.to_owned() });
    }
    out.sha256 = std::mem::take(&mut tap.hash).finish_hex();
    out.bytes = tap.bytes;
    Ok(out)
}

fn is_blank(rec: &csv::ByteRecord) -> bool {
    rec.iter().all(|f| f.iter().all(|b| b.is_ascii_whitespace()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Result<IdList, InputError> {
        read_ids(text, "in.csv", None)
    }

    #[test]
    fn header_detection_any_case() {
        for h in ["ImageId", "image_id", "IMAGEID", " imageid "] {
            let l = read(format!("title,{h}\nx,AAA\ny,BBB\n").as_bytes()).unwrap();
            assert_eq!(l.ids.to_vec(), vec!["AAA", "BBB"], "header {h}");
            assert_eq!(l.input_rows, 2);
        }
    }

    #[test]
    fn id_column_flag_wins_and_unknown_column_is_named() {
        let l = read_ids(&b"a,b\n1,x1\n2,x2\n"[..], "f.csv", Some("b")).unwrap();
        assert_eq!(l.ids.to_vec(), vec!["x1", "x2"]);
        let e = read_ids(&b"a,b\n1,2\n"[..], "f.csv", Some("c")).unwrap_err().to_string();
        assert!(e.contains("f.csv: line 1") && e.contains("\"c\"") && e.contains("\"a\", \"b\""), "{e}");
    }

    #[test]
    fn single_column_with_and_without_header() {
        assert_eq!(read(b"abc123\ndef456\n").unwrap().ids.to_vec(), vec!["abc123", "def456"]);
        let with = read(b"id\nabc123\n").unwrap();
        assert_eq!(with.ids.to_vec(), vec!["abc123"]);
        assert_eq!(with.input_rows, 1);
        assert_eq!(read(b"Image ID\nabc123\n").unwrap().ids.to_vec(), vec!["abc123"]);
    }

    #[test]
    fn bom_crlf_quotes_blank_lines_whitespace() {
        let l = read(b"\xEF\xBB\xBFImageId,note\r\n\"AAA\",\"a, b\"\r\n\r\n  BBB  ,x\r\n,\r\n").unwrap();
        assert_eq!(l.ids.to_vec(), vec!["AAA", "BBB"]);
        assert_eq!(l.input_rows, 2);
        assert_eq!(l.blank_rows, 2, "an empty line and a row of empty fields");
    }

    #[test]
    fn invalid_values_are_rejected_with_line_numbers() {
        let text = "ImageId\nok1\nhas space\n\nbad/char\n,x\n".to_string() + &"a".repeat(65) + "\nok1\n";
        let l = read_ids(text.as_bytes(), "f", Some("ImageId")).unwrap();
        assert_eq!(l.ids.to_vec(), vec!["ok1"]);
        assert_eq!(l.duplicates, 1);
        let lines: Vec<u64> = l.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 5, 6, 7]);
        assert!(l.rejected[0].reason.contains("a space"));
        assert_eq!(l.rejected[2].reason, "empty id");
        assert!(l.rejected[3].reason.contains("longer than 64"));
        assert_eq!(l.input_rows, l.ids.len() as u64 + l.duplicates + l.rejected.len() as u64);
    }

    #[test]
    fn empty_id_with_other_fields_is_rejected_not_skipped() {
        let l = read(b"ImageId,title\nAAA,t\n,orphan title\n").unwrap();
        assert_eq!(l.rejected.len(), 1);
        assert_eq!(l.rejected[0].reason, "empty id");
        assert_eq!(l.rejected[0].line, 3);
        assert_eq!(l.input_rows, 2);
    }

    #[test]
    fn line_numbers_are_right_for_crlf_lone_cr_and_blank_lines() {
        for text in ["ImageId\r\nAAA\r\nb b\r\n\r\nc c\r\n", "ImageId\rAAA\rb b\r\rc c\r", "ImageId\nAAA\nb b\n\nc c"] {
            let l = read(text.as_bytes()).unwrap();
            let lines: Vec<u64> = l.rejected.iter().map(|r| r.line).collect();
            assert_eq!(lines, vec![3, 5], "{text:?}");
            assert_eq!(l.blank_rows, 1, "{text:?}");
        }
    }

    #[test]
    fn control_characters_and_invalid_utf8() {
        let l = read(b"ImageId\nA\x01B\n\xff\xfe\nGOOD\n").unwrap();
        assert_eq!(l.ids.to_vec(), vec!["GOOD"]);
        assert!(l.rejected[0].reason.contains("control character"), "{:?}", l.rejected);
        assert_eq!(l.rejected[1].reason, "not valid UTF-8");
    }

    #[test]
    fn whole_file_errors() {
        assert!(matches!(read(b""), Err(InputError::NoIds { .. })));
        assert!(matches!(read(b"\n\n  \n"), Err(InputError::NoIds { .. })));
        assert!(matches!(read(b"ImageId\n"), Err(InputError::NoIds { .. })));
        assert!(matches!(read(b"a,b\n1,2\n"), Err(InputError::NoIdColumn { .. })));
        assert!(matches!(read(b"ImageId\nAB\x00CD\n"), Err(InputError::NotText { line: 2, .. })));
        assert!(matches!(read(b"ImageId\r\nA\r\nB\r\n\x00\r\nC\r\nD\r\n"), Err(InputError::NotText { line: 4, .. })));
        let e = read(b"ImageId\nAAA\n\"BBB\nCCC\nDDD\n").unwrap_err();
        assert!(matches!(e, InputError::UnclosedQuote { line: 3, .. }), "{e}");
    }

    #[test]
    fn one_column_file_with_a_comma_is_rejected_not_truncated() {
        let l = read(b"AAA\nBBB,CCC\n").unwrap();
        assert_eq!(l.ids.to_vec(), vec!["AAA"]);
        assert_eq!(l.rejected.len(), 1);
    }

    #[test]
    fn long_values_are_shortened_in_the_report() {
        let text = format!("ImageId\nAAA\n{}\n", "x".repeat(10_000));
        let l = read(text.as_bytes()).unwrap();
        assert!(l.rejected[0].value.len() < 400);
        assert!(l.rejected[0].value.contains("10000 bytes in all"));
    }

    #[test]
    fn digest_and_size_cover_the_whole_input() {
        let text = b"ImageId\nAAA\n";
        let l = read(text).unwrap();
        assert_eq!(l.bytes, text.len() as u64);
        assert_eq!(l.sha256, Sha256::hex_of(text.as_ref()));
    }
}
