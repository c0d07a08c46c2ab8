//! Where the CSV parser is in a field, byte by byte, by csv-core's rules: a
//! quote opens a quoted field only at the start of a field, `""` inside one
//! is a quote, and a delimiter or a line end inside one is text.
//!
//! One rule for the two places that follow the parser without being it:
//! counting a header line's fields to sniff the delimiter
//! ([`super::delimiter`]) and bounding what the parser buffers
//! ([`super::input_stream`]).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// At the start of a field (or a record).
    Start,
    /// In a field not opened by a quote (a quote in it is text).
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// Just after a quote in a quoted field: it closed the field, or is the
    /// first of `""`.
    QuoteInQuoted,
}

impl Field {
    /// Where the parser is after byte `b`, fields split at `delimiter` and
    /// records at `\n`.
    pub(crate) fn next(self, b: u8, delimiter: u8) -> Field {
        match (self, b) {
            (Field::Quoted, b'"') => Field::QuoteInQuoted,
            (Field::Quoted, _) | (Field::QuoteInQuoted, b'"') => Field::Quoted,
            (Field::Start, b'"') => Field::Quoted,
            (_, b'\n') => Field::Start,
            (_, d) if d == delimiter => Field::Start,
            _ => Field::Unquoted,
        }
    }
}
