//! Unit tests of [`super`] (input.rs), kept beside it to keep that file readable.
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

// -- Hostile input: refused as it streams, after a bounded read ----------

/// Counts the bytes taken from `inner`, and gives out (end of file) after
/// `cap` of them, so that a reader that never stops on its own still ends.
struct Counted<R> {
    inner: R,
    taken: u64,
    cap: u64,
}

impl<R: Read> Counted<R> {
    fn new(inner: R) -> Self {
        // Far past every bound asserted below, far short of a memory problem.
        Counted { inner, taken: 0, cap: 8 << 20 }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = (self.cap - self.taken).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.taken += n as u64;
        Ok(n)
    }
}

/// `head`, then `chunk` again and again, without end.
fn endless(head: &[u8], chunk: &'static [u8]) -> impl Read {
    io::Cursor::new(head.to_vec()).chain(Cycle { chunk, at: 0 })
}

struct Cycle {
    chunk: &'static [u8],
    at: usize,
}

impl Read for Cycle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        for b in buf.iter_mut() {
            *b = self.chunk[self.at];
            self.at = (self.at + 1) % self.chunk.len();
        }
        Ok(buf.len())
    }
}

/// Random bytes without end (xorshift64*, fixed seed).
struct Noise(u64);

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        for b in buf.iter_mut() {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            *b = (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
        Ok(buf.len())
    }
}

/// Reads `reader` to an error, returning it and the bytes taken.
fn refused(reader: impl Read) -> (InputError, u64) {
    let mut counted = Counted::new(reader);
    let e = read_ids(&mut counted, "in.csv", None).expect_err("an endless or hostile input is refused");
    (e, counted.taken)
}

/// What one line may make the reader take: the line, and the chunk it
/// was found in.
const LINE_BOUND: u64 = MAX_LINE_BYTES as u64 + 16 * 1024;

#[test]
fn endless_zeros_stop_at_the_first_nul() {
    let (e, taken) = refused(io::repeat(0));
    assert!(matches!(e, InputError::NotText { line: 1, .. }), "{e}");
    assert!(taken <= 16 * 1024, "read {taken} bytes of zeros");
    assert!(e.to_string().starts_with("in.csv: line 1 contains a NUL byte"), "{e}");
}

#[test]
fn endless_random_bytes_stop_at_once() {
    let (e, taken) = refused(Noise(0x9e37_79b9_7f4a_7c15));
    assert!(matches!(e, InputError::NotText { .. }), "{e}");
    assert!(taken <= 16 * 1024, "read {taken} random bytes");
}

#[test]
fn a_nul_early_in_a_huge_stream_is_found_as_it_streams() {
    let (e, taken) = refused(endless(b"ImageId\r\nAAA\r\nB\0B\r\n", b"CCC\r\n"));
    assert!(matches!(e, InputError::NotText { line: 3, .. }), "{e}");
    assert!(taken <= 16 * 1024, "read {taken} bytes");
}

#[test]
fn a_line_that_never_ends_is_refused() {
    let (e, taken) = refused(io::repeat(b'x'));
    assert!(matches!(e, InputError::LineTooLong { line: 1, .. }), "{e}");
    assert!(taken <= LINE_BOUND, "read {taken} bytes of one line");
    let e = e.to_string();
    assert!(e.starts_with("in.csv: line 1 is longer than 64 KiB; is this a CSV of ids?"), "{e}");

    // After a header and ids, with CRLF: the line is named.
    let (e, taken) = refused(endless(b"ImageId\r\nAAA\r\n\r\nBBB,", b"x"));
    assert!(matches!(e, InputError::LineTooLong { line: 4, .. }), "{e}");
    assert!(taken <= LINE_BOUND + 32, "read {taken} bytes");
}

#[test]
fn a_long_line_is_refused_at_the_limit() {
    let at = format!("ImageId,note\nAAA,{}\nBBB,x\n", "n".repeat(MAX_LINE_BYTES - 4));
    let l = read(at.as_bytes()).unwrap();
    assert_eq!(l.ids.to_vec(), vec!["AAA", "BBB"], "a line of exactly {MAX_LINE_BYTES} bytes is read");
    let over = format!("ImageId,note\nAAA,{}\nBBB,x\n", "n".repeat(MAX_LINE_BYTES - 3));
    let e = read(over.as_bytes()).unwrap_err();
    assert!(matches!(e, InputError::LineTooLong { line: 2, .. }), "{e}");
    // The same in a single-column file of ids: no id is 64 KiB long.
    let e = read(format!("AAA\nBBB\n{}\n", "a".repeat(MAX_LINE_BYTES + 1)).as_bytes()).unwrap_err();
    assert!(matches!(e, InputError::LineTooLong { line: 3, .. }), "{e}");
}

#[test]
fn a_quote_left_open_does_not_buffer_without_end() {
    // Short lines, but one quoted field that never closes.
    let (e, taken) = refused(endless(b"ImageId,title\nAAA,t\nBBB,\"opened\n", b"more text\n"));
    assert!(matches!(e, InputError::QuoteTooLong { line: 3, .. }), "{e}");
    assert!(taken <= LINE_BOUND + 64, "read {taken} bytes of an open quote");
    assert!(e.to_string().contains("in.csv: line 3: a quoted field opened on this line"), "{e}");
    // A quoted field over a few lines, and a quote inside an unquoted
    // field (literal, opens nothing), are still fine.
    let text = format!("ImageId,title\nAAA,\"a\n\"\"b\"\"\nc\"\nBBB,x\"y\n{}\n", "CCC,z\n".repeat(20_000));
    let l = read(text.as_bytes()).unwrap();
    assert_eq!(l.ids.to_vec(), vec!["AAA", "BBB", "CCC"]);
    assert_eq!(l.duplicates, 19_999);
}

#[test]
fn more_than_a_thousand_bad_rows_in_a_row_are_refused() {
    let bad = |n: usize, from: usize| (from..from + n).map(|i| format!("bad row {i}\n")).collect::<String>();
    // A thousand in a row, a good id, a thousand more: read, each rejected.
    let text = format!("ImageId\nAAA\n{}BBB\n\n{}", bad(MAX_REJECTED_IN_A_ROW, 0), bad(MAX_REJECTED_IN_A_ROW, 0));
    let l = read(text.as_bytes()).unwrap();
    assert_eq!(l.ids.to_vec(), vec!["AAA", "BBB"]);
    assert_eq!(l.rejected.len(), 2 * MAX_REJECTED_IN_A_ROW);
    // One more, a blank line in between (it neither counts nor breaks the run).
    let text = format!("ImageId\nAAA\n{}\n{}BBB\n", bad(500, 0), bad(MAX_REJECTED_IN_A_ROW + 1 - 500, 500));
    let e = read(text.as_bytes()).unwrap_err();
    let last = 3 + MAX_REJECTED_IN_A_ROW as u64 + 1; // a blank line inside the run
    match &e {
        InputError::NotIds { first_line, last_line, rows, .. } => {
            assert_eq!((*first_line, *last_line, *rows), (3, last, MAX_REJECTED_IN_A_ROW + 1), "{e}");
        }
        other => panic!("{other}"),
    }
    let e = e.to_string();
    assert!(e.starts_with(&format!("in.csv: lines 3-{last}: 1001 rows in a row are not image ids")), "{e}");
    assert!(e.contains("\"bad row 0\", \"bad row 1\", \"bad row 2\""), "the first values are shown: {e}");
    assert!(e.contains("does not look like a list of image ids"), "{e}");

    // Without end, in a one-column file without a header.
    let (e, taken) = refused(endless(b"AAA\n", b"not an id\n"));
    assert!(matches!(e, InputError::NotIds { first_line: 2, .. }), "{e}");
    assert!(taken <= 11 * (MAX_REJECTED_IN_A_ROW as u64 + 1) + 16 * 1024, "read {taken} bytes");
}

#[test]
fn a_shown_value_is_short_and_escaped() {
    let long = format!("ImageId\n{}\n", format!("{}\u{1b}[31m\n", "z".repeat(100)).repeat(MAX_REJECTED_IN_A_ROW + 1));
    let e = read(long.as_bytes()).unwrap_err().to_string();
    assert!(e.len() < 600, "{e}");
    assert!(!e.contains('\u{1b}'), "a control character reaches the terminal: {e:?}");
}

/// Gives out one byte per read, as a pipe may.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.len().min(buf.len()).min(1);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn a_crlf_split_between_reads_is_not_the_end_of_the_input() {
    let text = b"ImageId\r\nAAA\r\nBBB\r\nCCC\r\n";
    let l = read_ids(Trickle(text), "in.csv", None).unwrap();
    assert_eq!(l.ids.to_vec(), vec!["AAA", "BBB", "CCC"]);
    assert_eq!(l.bytes, text.len() as u64);
}

// -- The delimiter: sniffed from the header line, or forced ---------------

#[test]
fn each_delimiter_is_sniffed_from_the_header() {
    for (d, name) in [(b',', ","), (b';', ";"), (b'\t', "tab"), (b'|', "|")] {
        let sep = d as char;
        let text = format!("Title{sep}ImageId{sep}Owner\nt1{sep}AAA{sep}o\nt2{sep}BBB{sep}o\n");
        let l = read(text.as_bytes()).unwrap();
        assert_eq!(l.ids.to_vec(), vec!["AAA", "BBB"], "delimiter {name}");
        assert!(l.rejected.is_empty(), "delimiter {name}: {:?}", l.rejected);
        assert_eq!((l.delimiter, delimiter_name(l.delimiter)), (d, name));
        assert_eq!(l.id_column, "ImageId");
    }
}

#[test]
fn the_header_is_the_first_non_blank_line() {
    let l = read(b"\n  \r\nTitle;ImageId\nx;AAA\n").unwrap();
    assert_eq!((l.delimiter, l.ids.to_vec()), (b';', vec!["AAA".to_owned()]));
}

#[test]
fn delimiters_inside_quotes_do_not_count() {
    // Three commas inside quotes, one semicolon outside: semicolon.
    let l = read(b"\"a,b,c,d\";ImageId\n\"x,y\";AAA\n").unwrap();
    assert_eq!(l.delimiter, b';');
    assert_eq!(l.ids.to_vec(), vec!["AAA"]);
    // Semicolons inside quotes of a comma file.
    let l = read(b"\"Title; sub; more\",ImageId\n\"a;b\",AAA\n").unwrap();
    assert_eq!(l.delimiter, b',');
    assert_eq!(l.ids.to_vec(), vec!["AAA"]);
}

#[test]
fn a_one_column_file_stays_one_column() {
    let l = read(b"AAA\nBBB\n").unwrap();
    assert_eq!(l.delimiter, b',');
    assert_eq!(l.id_column, "#1");
    let l = read(b"ImageId\nAAA\nB;B\n").unwrap();
    assert_eq!(l.delimiter, b',');
    assert_eq!(l.ids.to_vec(), vec!["AAA"]);
    assert_eq!(l.rejected.len(), 1);
}

#[test]
fn a_tie_prefers_the_comma() {
    let l = read(b"a;b,ImageId\nx;y,AAA\n").unwrap();
    assert_eq!(l.delimiter, b',');
    assert_eq!(l.ids.to_vec(), vec!["AAA"]);
    // Tab against pipe: neither is the comma, the first listed wins.
    assert_eq!(sniff_delimiter(b"a\tb|c"), b'\t');
    assert_eq!(sniff_delimiter(b"a|b;c"), b';');
}

#[test]
fn a_forced_delimiter_wins_over_the_sniffed_one() {
    let opts = ReadOptions { id_column: None, delimiter: Some(b'|') };
    let l = read_ids_with(&b"ImageId|a,b,c\nAAA|x,y,z\n"[..], "f", &opts).unwrap();
    assert_eq!((l.delimiter, l.ids.to_vec()), (b'|', vec!["AAA".to_owned()]));
    for (text, d) in [(",", b','), (";", b';'), ("tab", b'\t'), ("\\t", b'\t'), ("\t", b'\t'), ("|", b'|')] {
        assert_eq!(parse_delimiter(text), Ok(d), "{text:?}");
    }
    for bad in ["", ":", ",,", "space"] {
        let e = parse_delimiter(bad).unwrap_err();
        assert!(e.contains("tab"), "{bad:?}: {e}");
    }
}

#[test]
fn a_line_end_inside_quotes_of_a_semicolon_file_is_text() {
    let l = read(b"Title;ImageId\n\"two\nlines; here\";AAA\nx;bad id\n").unwrap();
    assert_eq!(l.ids.to_vec(), vec!["AAA"]);
    assert_eq!(l.rejected[0].line, 4);
}

// -- No valid id; more rejected rows than --max-rejected ----------------

#[test]
fn no_valid_id_is_an_error_naming_the_first_rejected_lines() {
    let e = read(b"ImageId\nbad one\n\nbad/two\nbad three\nbad four\n").unwrap_err();
    assert!(matches!(e, InputError::NoValidIds { rows: 4, .. }), "{e}");
    let e = e.to_string();
    assert!(e.starts_with("in.csv: no valid image id in 4 data rows"), "{e}");
    assert!(e.contains("line 2 \"bad one\"") && e.contains("line 4 \"bad/two\""), "{e}");
    assert!(e.contains("contains a space"), "the reason is given: {e}");
    assert!(!e.contains("bad four"), "only the first lines: {e}");
}

fn list_with(rows: usize, rejected: usize) -> IdList {
    let mut text = String::from("ImageId\n");
    for i in 0..rows - rejected {
        text.push_str(&format!("id{i}\n\n"));
    }
    for i in 0..rejected {
        text.push_str(&format!("bad id {i}\n"));
    }
    let l = read(text.as_bytes()).unwrap();
    assert_eq!((l.input_rows, l.rejected.len()), (rows as u64, rejected));
    l
}

#[test]
fn max_rejected_as_a_count() {
    let limit = RejectLimit::parse("3").unwrap();
    assert_eq!(limit, RejectLimit::Count(3));
    assert!(limit.check(&list_with(100, 3), "in.csv").is_ok(), "at the limit");
    let e = limit.check(&list_with(100, 4), "in.csv").unwrap_err();
    assert!(matches!(e, InputError::TooManyRejected { rejected: 4, rows: 100, .. }), "{e}");
    let e = e.to_string();
    assert!(e.starts_with("in.csv: 4 of 100 data rows (4.0%) are not valid image ids"), "{e}");
    assert!(e.contains("--max-rejected 3"), "{e}");
    assert!(e.contains("line 194 \"bad id 0\" (contains a space"), "{e}");
    assert!(RejectLimit::parse("0").unwrap().check(&list_with(10, 1), "f").is_err());
}

#[test]
fn max_rejected_as_a_percentage_of_data_rows() {
    let limit = RejectLimit::parse("10%").unwrap();
    assert_eq!(limit, RejectLimit::DEFAULT);
    // Blank rows (one after every good id) do not count.
    assert!(limit.check(&list_with(50, 5), "in.csv").is_ok(), "10% is at the limit");
    let e = limit.check(&list_with(50, 6), "in.csv").unwrap_err().to_string();
    assert!(e.starts_with("in.csv: 6 of 50 data rows (12.0%) are not valid image ids"), "{e}");
    assert!(e.contains("more than --max-rejected 10% allows"), "{e}");
    assert!(e.contains("allow them with --max-rejected"), "{e}");
    assert!(RejectLimit::parse("12.5%").unwrap().check(&list_with(48, 6), "f").is_ok());
    assert!(RejectLimit::parse("100%").unwrap().check(&list_with(10, 9), "f").is_ok());
    for bad in ["", "-1", "x", "101%", "-5%", "%", "1.5"] {
        assert!(RejectLimit::parse(bad).is_err(), "{bad:?}");
    }
}
