//! The field delimiter of the input: `--delimiter`, or sniffed from the
//! header line (`,` `;` tab `|`, whichever splits it into the most fields
//! outside quotes; the comma on a tie), so that a semicolon export is never
//! read as one column of rejected rows.

use std::io::{self, Read};

use super::csv_field::Field;

/// The delimiters sniffed from the header line, the comma first: it wins a tie.
pub(crate) const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// `--delimiter`: `,`, `;`, `tab` (or `\t`, or a tab), `|`.
pub(crate) fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "," => Ok(b','),
        ";" => Ok(b';'),
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        "|" => Ok(b'|'),
        _ => Err(format!("{text:?} is not a delimiter: give one of , ; tab |")),
    }
}

/// How a delimiter is named in messages, the plan and the manifest.
pub(crate) fn delimiter_name(delimiter: u8) -> &'static str {
    match delimiter {
        b',' => ",",
        b';' => ";",
        b'\t' => "tab",
        b'|' => "|",
        _ => "?",
    }
}

/// The fields of a header line split at `delimiter`, with csv-core's rules
/// for quotes (a quote opens a quoted field only at the start of a field).
pub(crate) fn count_fields(line: &[u8], delimiter: u8) -> usize {
    let mut fields = 1;
    let mut at = Field::Start;
    for &b in line {
        at = at.next(b, delimiter);
        if b == delimiter && at == Field::Start {
            fields += 1;
        }
    }
    fields
}

/// The first non-blank line of `buf` (a line of only spaces, delimiters and
/// quotes is blank), and whether its end has been read.
pub(crate) fn first_line(buf: &[u8]) -> Option<(&[u8], bool)> {
    let blank = |line: &[u8]| line.iter().all(|b| b.is_ascii_whitespace() || DELIMITERS.contains(b) || *b == b'"');
    let mut rest = buf;
    loop {
        match rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            Some(end) if blank(&rest[..end]) => rest = &rest[end + 1..],
            Some(end) => return Some((&rest[..end], true)),
            None if blank(rest) => return None,
            None => return Some((rest, false)),
        }
    }
}

/// The delimiter that splits the header line into the most fields; the
/// comma on a tie, and for a one-column file.
pub(crate) fn sniff_delimiter(header_line: &[u8]) -> u8 {
    let mut best = (b',', count_fields(header_line, b','));
    for d in &DELIMITERS[1..] {
        let n = count_fields(header_line, *d);
        if n > best.1 {
            best = (*d, n);
        }
    }
    best.0
}

/// Reads from `reader` into `buf` until it holds the first non-blank line
/// to its end, the input ends, a NUL byte is read (not text: the reading
/// proper refuses it) or more than `max` bytes are held (the reading proper
/// refuses a line that long).
pub(crate) fn peek_header(reader: &mut impl Read, buf: &mut Vec<u8>, max: usize) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    while !matches!(first_line(buf), Some((_, true))) && !buf.contains(&0) && buf.len() <= max {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}
