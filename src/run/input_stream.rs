//! The bytes of the input on their way to the CSV parser: hashed and
//! counted as they pass ([`Tap`]), their line ends made countable
//! ([`NormalizeLines`]), and the reading stopped ([`Stop`]) as soon as a
//! NUL byte, an endless line or an endless quoted field comes ([`Shape`]),
//! so that no input can fill memory. [`super::input`] reads the records.

use std::io::{self, Read};

use super::csv_field::Field;
use crate::rundir::digest::Sha256;

/// The longest line read before the input is refused as a whole (a quoted
/// field running over several lines counts as one line). A row of an id list
/// is a few dozen bytes, a wide spreadsheet export a few hundred: 64 KiB is
/// far past any real row, and it bounds what the CSV parser buffers for one
/// record. Without it `/dev/zero`, or a stream that never ends a line, is
/// held in memory until the machine runs out.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

/// Passes bytes through while hashing and counting them.
pub(crate) struct Tap<R> {
    pub(crate) inner: R,
    pub(crate) hash: Sha256,
    pub(crate) bytes: u64,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Where the CSV parser is in a record, followed byte by byte on the stream
/// it reads (after [`NormalizeLines`]: every line end is one `\n`) with its
/// rules (csv-core's: a quote opens a quoted field only at the start of a
/// field, `""` inside one is a quote, a line end inside one is text).
///
/// This is what bounds the reading: a NUL byte, a line or an open quoted
/// field longer than [`MAX_LINE_BYTES`] stops it as soon as it is read,
/// before the parser buffers any more of it.
pub(crate) struct Shape {
    /// The field delimiter.
    pub(crate) delimiter: u8,
    /// The 1-based line of the next byte.
    pub(crate) line: u64,
    pub(crate) field: Field,
    /// The line the current record began on.
    pub(crate) record_line: u64,
    /// Bytes of the current record so far, without its line end.
    pub(crate) record_len: usize,
    /// The line the quoted field being read was opened on.
    pub(crate) quote_line: u64,
}

/// Why [`Shape`] stopped the reading; [`super::input`] names the file.
#[derive(Debug)]
pub(crate) enum Stop {
    Nul { line: u64 },
    LongLine { line: u64 },
    LongQuote { line: u64 },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for Stop {}

impl Shape {
    pub(crate) fn new(delimiter: u8) -> Self {
        Shape { delimiter, line: 1, field: Field::Start, record_line: 1, record_len: 0, quote_line: 0 }
    }

    /// Follows one byte of the parser's input.
    pub(crate) fn feed(&mut self, b: u8) -> Result<(), Stop> {
        if b == 0 {
            return Err(Stop::Nul { line: self.line });
        }
        let field = self.field.next(b, self.delimiter);
        if self.field == Field::Start && field == Field::Quoted {
            self.quote_line = self.line;
        }
        self.field = field;
        if b == b'\n' {
            self.line += 1;
            if self.field == Field::Start {
                self.record_line = self.line;
                self.record_len = 0;
                return Ok(());
            }
        }
        self.record_len += 1;
        if self.record_len <= MAX_LINE_BYTES {
            Ok(())
        } else if self.open_quote_over_lines() {
            Err(Stop::LongQuote { line: self.quote_line })
        } else {
            Err(Stop::LongLine { line: self.record_line })
        }
    }

    /// Whether a quoted field is open and has taken in a line end.
    pub(crate) fn open_quote_over_lines(&self) -> bool {
        self.field == Field::Quoted && self.quote_line < self.line
    }
}

/// Feeds the CSV parser line endings it counts correctly, and stops the
/// reading (an I/O error carrying a [`Stop`]) where [`Shape`] says.
///
/// The `csv` crate skips empty lines silently, reports the line of the
/// record after a blank line as the blank line's, and counts a CRLF file's
/// lines one short. So every line ending (CRLF, LF, a lone CR) becomes `\n`
/// and every empty line gets one space: a record of its own, which
/// `read_ids` counts as blank. Only the parser sees the change: the digest is
/// taken before it, and only the id column, which cannot hold a line break,
/// is used.
pub(crate) struct NormalizeLines<R> {
    pub(crate) inner: R,
    pub(crate) at_line_start: bool,
    pub(crate) after_cr: bool,
    pub(crate) shape: Shape,
}

impl<R: Read> NormalizeLines<R> {
    pub(crate) fn new(inner: R, delimiter: u8) -> Self {
        NormalizeLines { inner, at_line_start: true, after_cr: false, shape: Shape::new(delimiter) }
    }

    pub(crate) fn emit(&mut self, buf: &mut [u8], n: &mut usize, b: u8) -> io::Result<()> {
        self.shape.feed(b).map_err(io::Error::other)?;
        buf[*n] = b;
        *n += 1;
        Ok(())
    }
}

impl<R: Read> Read for NormalizeLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Each input byte yields at most two output bytes.
        let mut tmp = [0u8; 8192];
        let want = (buf.len() / 2).min(tmp.len());
        if want == 0 {
            return Ok(0);
        }
        // A read that yields only the LF of a CRLF split between reads gives
        // nothing to pass on: read again, as `Ok(0)` would mean end of file.
        let mut n = 0;
        while n == 0 {
            let got = self.inner.read(&mut tmp[..want])?;
            if got == 0 {
                break;
            }
            for &b in &tmp[..got] {
                let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
                if b == b'\n' && after_cr {
                    continue; // the LF of a CRLF, already ended
                }
                if b == b'\n' || b == b'\r' {
                    if self.at_line_start {
                        self.emit(buf, &mut n, b' ')?;
                    }
                    self.emit(buf, &mut n, b'\n')?;
                    self.at_line_start = true;
                } else {
                    self.emit(buf, &mut n, b)?;
                    self.at_line_start = false;
                }
            }
        }
        Ok(n)
    }
}
