//! Bad input, through the real binary: every case ends with a clear message
//! (exit 2, naming the file and, where there is one, the line) or a row of
//! rejected.csv; nothing panics; no value that is not a valid id is ever
//! sent, and a file refused as a whole makes no call at all.

use std::collections::BTreeMap;

use crate::common::{self, csv_rows, Audit, Output};
use vod_image_audit::domain::id::validate_id;
use vod_image_audit::sim::catalog::SplitMix;

// A simulator with a small catalog and a work directory.
common::module_bench!(60);

impl Bench {
    /// `run --input <input>` into `out`, fast, plus `extra` flags.
    fn run(&self, input: &str, extra: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut audit = Audit::new(&self.wd, &self.server).input(input).qps(500).args(extra.iter().copied());
        if let Some(bytes) = stdin {
            audit = audit.stdin(bytes);
        }
        let out = audit.run();
        assert!(!out.stderr.contains("panicked"), "{}", out.describe());
        assert!(out.code != 101, "{}", out.describe());
        self.assert_only_valid_ids_called();
        out
    }

    /// Exit 2 with every `wants` in the message, and not one call.
    fn expect_refused(&self, out: &Output, wants: &[&str]) {
        self.expect_refused_without_report(out, wants);
    }

    /// Every id the simulator was asked about is a valid id.
    fn assert_only_valid_ids_called(&self) {
        let stats = self.server.stats();
        for id in stats.calls_by_image.keys().chain(stats.answers_by_image.keys()) {
            assert!(validate_id(id).is_ok(), "a value that is not an id was sent: {id:?}");
        }
    }

    fn rejected(&self) -> Vec<(u64, String, String)> {
        csv_rows(&self.wd.read("out/rejected.csv"))
            .into_iter()
            .map(|r| (r["line"].parse().unwrap(), r["value"].clone(), r["reason"].clone()))
            .collect()
    }

    fn outcomes(&self) -> BTreeMap<String, String> {
        csv_rows(&self.wd.read("out/images.csv"))
            .into_iter()
            .map(|r| (r["image_id"].clone(), r["outcome"].clone()))
            .collect()
    }

    /// Exactly `ids` were audited (found), each called once.
    fn assert_audited(&self, ids: &[String]) {
        let got = self.outcomes();
        let mut want: Vec<&String> = ids.iter().collect();
        want.sort();
        want.dedup();
        assert_eq!(got.keys().collect::<Vec<_>>(), want, "audited ids");
        assert!(got.values().all(|o| o == "found"), "{got:?}");
        let stats = self.server.stats();
        for id in ids {
            assert_eq!(stats.calls_by_image.get(id), Some(&1), "{id} called once");
        }
        assert_eq!(stats.calls_by_image.len(), want.len(), "nothing else was called");
    }
}

// ---------------------------------------------------------------------------
// Files refused as a whole: exit 2, no call
// ---------------------------------------------------------------------------

#[test]
fn empty_file() {
    let b = Bench::new(1);
    b.wd.write("empty.csv", "");
    let out = b.run("empty.csv", &[], None);
    b.expect_refused(&out, &["empty.csv: no data rows"]);
    b.wd.write("blank.csv", "\n \r\n\t\n");
    let out = b.run("blank.csv", &[], None);
    b.expect_refused(&out, &["blank.csv: no data rows"]);
}

#[test]
fn header_only() {
    let b = Bench::new(2);
    for (name, text) in [("h1.csv", "ImageId\n"), ("h2.csv", "ImageId\r\n\r\n"), ("h3.csv", "title,image_id")] {
        b.wd.write(name, text);
        let out = b.run(name, &[], None);
        b.expect_refused(&out, &[&format!("{name}: no data rows")]);
    }
}

#[test]
fn no_id_column() {
    let b = Bench::new(3);
    let ids = b.ids(3);
    b.wd.write("noid.csv", format!("title,size\nx,{}\ny,{}\n", ids[0], ids[1]));
    let out = b.run("noid.csv", &[], None);
    b.expect_refused(&out, &["noid.csv: line 1: no id column", "\"title\", \"size\"", "--id-column"]);
    // The header is found after blank lines, and its line is named.
    b.wd.write("late.csv", format!("\n\r\nname,Id Image\nx,{}\n", ids[2]));
    let out = b.run("late.csv", &[], None);
    b.expect_refused(&out, &["late.csv: line 3: no id column"]);
}

#[test]
fn binary_garbage() {
    let b = Bench::new(4);
    let mut rng = SplitMix::new(4);
    let mut bytes: Vec<u8> = (0..64 * 1024).map(|_| rng.next_u64() as u8).collect();
    bytes[100] = 0;
    b.wd.write("garbage.bin", &bytes);
    let out = b.run("garbage.bin", &[], None);
    b.expect_refused(&out, &["garbage.bin: line ", "not a CSV text file"]);

    // A UTF-16 export (what some spreadsheets call "Unicode text").
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(format!("ImageId\r\n{}\r\n", b.ids(1)[0]).encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    b.wd.write("utf16.csv", utf16);
    let out = b.run("utf16.csv", &[], None);
    b.expect_refused(&out, &["utf16.csv: line ", "not a CSV text file", "UTF-8"]);
}

/// The line a NUL byte is on, counting line ends the way the tool does
/// (LF, CRLF and a lone CR each end a line).
fn line_of_first_nul(bytes: &[u8]) -> u64 {
    let nul = bytes.iter().position(|b| *b == 0).unwrap();
    let head = &bytes[..nul];
    let mut line = 1;
    for (i, b) in head.iter().enumerate() {
        if *b == b'\r' || (*b == b'\n' && (i == 0 || head[i - 1] != b'\r')) {
            line += 1;
        }
    }
    line
}

#[test]

fn a_nul_byte_is_reported_on_its_line() {
    let b = Bench::new(5);
    let ids = b.ids(4);
    let text = format!("ImageId\n{}\nAB\0CD\n{}\n{}\n{}\n", ids[0], ids[1], ids[2], ids[3]).into_bytes();
    assert_eq!(line_of_first_nul(&text), 3);
    b.wd.write("nul.csv", &text);
    let out = b.run("nul.csv", &[], None);
    b.expect_refused(&out, &["nul.csv: line 3 contains a NUL byte"]);

    let mut rng = SplitMix::new(5);
    let mut bytes: Vec<u8> = (0..64 * 1024).map(|_| (rng.next_u64() as u8).max(1)).collect();
    bytes[5000] = 0;
    let want = line_of_first_nul(&bytes);
    b.wd.write("garbage.bin", &bytes);
    let out = b.run("garbage.bin", &[], None);
    b.expect_refused(&out, &[&format!("garbage.bin: line {want} contains a NUL byte")]);
}

#[test]
fn a_quote_left_open() {
    let b = Bench::new(6);
    let ids = b.ids(4);
    let text = format!("ImageId,title\n{},ok\n{},\"never closed\n{},x\n{},y\n", ids[0], ids[1], ids[2], ids[3]);
    b.wd.write("open.csv", text);
    let out = b.run("open.csv", &[], None);
    b.expect_refused(&out, &["open.csv: line 3: a quoted field opened on or after this line is never closed"]);
    // In a one-column file, with CRLF.
    let text = format!("{}\r\n{}\r\n\"{}\r\n{}\r\n", ids[0], ids[1], ids[2], ids[3]);
    b.wd.write("open1.csv", text);
    let out = b.run("open1.csv", &[], None);
    b.expect_refused(&out, &["open1.csv: line 3: a quoted field", "never closed"]);
}

#[test]
fn id_column_naming_a_missing_column() {
    let b = Bench::new(7);
    let ids = b.ids(2);
    b.wd.write("ids.csv", format!("ImageId,title\n{},a\n{},b\n", ids[0], ids[1]));
    let out = b.run("ids.csv", &["--id-column", "Nope"], None);
    b.expect_refused(&out, &["ids.csv: line 1: --id-column \"Nope\" is not in the header", "\"ImageId\", \"title\""]);
}

#[test]
fn unreadable_inputs() {
    let b = Bench::new(8);
    let out = b.run("nope.csv", &[], None);
    b.expect_refused(&out, &["nope.csv: cannot read"]);
    std::fs::create_dir(b.wd.path().join("adir")).unwrap();
    let out = b.run("adir", &[], None);
    b.expect_refused(&out, &["adir: cannot read"]);
}

// ---------------------------------------------------------------------------
// Rows rejected one by one: the rest is audited
// ---------------------------------------------------------------------------

#[test]
fn invalid_utf8_in_one_id() {
    let b = Bench::new(9);
    let ids = b.ids(3);
    let mut text = format!("ImageId\n{}\n", ids[0]).into_bytes();
    text.extend_from_slice(b"ab\xff\xfecd\n");
    text.extend_from_slice(format!("{}\n{}\n", ids[1], ids[2]).as_bytes());
    b.wd.write("ids.csv", text);
    // 1 of 4 data rows rejected: over the default --max-rejected 10 %.
    let out = b.run("ids.csv", &["--max-rejected", "1"], None);
    out.expect_code(0);
    let rejected = b.rejected();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].0, 3);
    assert_eq!(rejected[0].2, "not valid UTF-8");
    b.assert_audited(&ids);
    let t = &b.wd.json("out/summary.json")["totals"];
    assert_eq!((t["input_rows"].as_u64(), t["invalid"].as_u64()), (Some(4), Some(1)));
}

#[test]
fn a_100_mb_line() {
    let b = Bench::new(10);
    let ids = b.ids(3);
    let path = b.wd.path().join("huge.csv");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        write!(f, "ImageId\n{}\n", ids[0]).unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        write!(f, "\n{}\n{}\n", ids[1], ids[2]).unwrap();
    }
    let out = b.run("huge.csv", &[], None);
    // No row of ids is 64 KiB long: the file is refused there, not read whole.
    b.expect_refused(&out, &["huge.csv: line 3 is longer than 64 KiB; is this a CSV of ids?"]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn mixed_line_endings_keep_line_numbers_right() {
    let b = Bench::new(11);
    let ids = b.ids(6);
    // line 1 LF, 2 CRLF, 3 CR, 4 (bad) LF, 5 blank CRLF, 6 CR, 7 (bad) CRLF,
    // 8 blank CR, 9 LF, 10 (bad) CR, 11 LF, 12 (bad, no line end)
    let text = format!(
        "ImageId\n{}\r\n{}\rbad one\n\r\n{}\rbad/two\r\n\r{}\nbad*three\r{}\nlast bad",
        ids[0], ids[1], ids[2], ids[3], ids[4]
    );
    b.wd.write("mixed.csv", text);
    // 4 of 9 data rows rejected, on purpose.
    let out = b.run("mixed.csv", &["--max-rejected", "4"], None);
    out.expect_code(0);
    let lines: Vec<u64> = b.rejected().iter().map(|r| r.0).collect();
    assert_eq!(lines, vec![4, 7, 10, 12], "{:?}", b.rejected());
    b.assert_audited(&ids[..5]);
    let manifest = b.wd.json("out/manifest.json");
    assert_eq!(manifest["input"]["blank_rows"], 2);
}

#[test]
fn line_numbers_after_a_field_spanning_lines() {
    let b = Bench::new(12);
    let ids = b.ids(2);
    let text =
        format!("title,ImageId\n\"two\nlines\",{}\n\"three\r\nlines\rhere\",bad id\nx,{}\ny,bad.two\n", ids[0], ids[1]);
    b.wd.write("ml.csv", text);
    // 2 of 4 data rows rejected, on purpose.
    let out = b.run("ml.csv", &["--max-rejected", "2"], None);
    out.expect_code(0);
    let lines: Vec<u64> = b.rejected().iter().map(|r| r.0).collect();
    assert_eq!(lines, vec![4, 8], "{:?}", b.rejected());
    b.assert_audited(&ids);
}

#[test]
fn a_utf8_bom_before_the_header() {
    let b = Bench::new(13);
    let ids = b.ids(3);
    b.wd.write("bom.csv", format!("\u{feff}ImageId,title\r\n{},a\r\n{},b\r\n{},c\r\n", ids[0], ids[1], ids[2]));
    let out = b.run("bom.csv", &[], None);
    out.expect_code(0);
    assert!(b.rejected().is_empty(), "{:?}", b.rejected());
    b.assert_audited(&ids);
    assert_eq!(b.wd.json("out/manifest.json")["input"]["id_column"], "ImageId");

    // Before the first id of a one-column file without a header.
    let b = Bench::new(14);
    let ids = b.ids(3);
    b.wd.write("bom1.csv", format!("\u{feff}{}\n{}\n{}\n", ids[0], ids[1], ids[2]));
    let out = b.run("bom1.csv", &[], None);
    out.expect_code(0);
    assert!(b.rejected().is_empty(), "{:?}", b.rejected());
    b.assert_audited(&ids);
}

#[test]
fn ten_percent_duplicates_are_counted_and_called_once() {
    let b = Bench::new(15);
    let ids = b.ids(54);
    let mut rows: Vec<String> = ids.clone();
    // 6 duplicates in 60 rows, one with surrounding spaces, spread through.
    for (k, i) in [3usize, 10, 20, 30, 41, 50].iter().enumerate() {
        let dup = if k == 0 { format!("  {}  ", ids[*i]) } else { ids[*i].clone() };
        rows.insert((i + 5 + k * 2).min(rows.len()), dup);
    }
    b.wd.write("dups.csv", format!("image_id\n{}\n", rows.join("\n")));
    let out = b.run("dups.csv", &[], None);
    out.expect_code(0);
    let t = &b.wd.json("out/summary.json")["totals"];
    assert_eq!(t["input_rows"], 60);
    assert_eq!(t["duplicates"], 6);
    assert_eq!(t["unique_ids"], 54);
    assert_eq!(t["found"], 54);
    b.assert_audited(&ids);
    assert!(b.rejected().is_empty());
}

#[test]
fn ids_with_characters_no_id_has_are_rejected_with_the_reason() {
    let b = Bench::new(16);
    let ids = b.ids(3);
    let bad: Vec<(&str, &str)> = vec![
        ("has space", "a space"),
        ("tab\there", "control character"),
        ("bell\u{7}x", "control character"),
        ("del\u{7f}x", "control character"),
        ("esc\u{1b}[31m", "control character"),
        ("a/b", "'/'"),
        ("../../etc", "'.'"),
        ("star*", "'*'"),
        ("café", "'é'"),
        ("图片", "'图'"),
        ("emoji🙂", "'🙂'"),
        ("nb\u{a0}sp", "'\\u{a0}'"),
        ("zero\u{200b}width", "'\\u{200b}'"),
        ("a%2Fb", "'%'"),
        ("a&Action=Delete", "'&'"),
        ("q?x=1", "'?'"),
        ("\"quoted, comma\"", "','"),
    ];
    let mut text = format!("ImageId\n{}\n", ids[0]);
    for (value, _) in &bad {
        text.push_str(value);
        text.push('\n');
    }
    text.push_str(&format!("{}\n  {}\t\n", ids[1], ids[2]));
    b.wd.write("bad.csv", &text);
    // Most rows are rejected, on purpose.
    let out = b.run("bad.csv", &["--max-rejected", "100%"], None);
    out.expect_code(0);
    let rejected = b.rejected();
    assert_eq!(rejected.len(), bad.len(), "{rejected:?}");
    for (i, ((line, value, reason), (raw, why))) in rejected.iter().zip(&bad).enumerate() {
        assert_eq!(*line, i as u64 + 3, "{value:?}");
        assert!(reason.contains(why), "{raw:?}: reason {reason:?} should mention {why}");
        assert!(reason.contains("A-Z a-z 0-9 _ -"), "{reason}");
        let unquoted = raw.trim_matches('"');
        assert_eq!(value, unquoted, "the value is reported as found");
    }
    b.assert_audited(&ids);
    let t = &b.wd.json("out/summary.json")["totals"];
    assert_eq!(t["invalid"], bad.len() as u64);
}

#[test]
fn stdin_input() {
    let b = Bench::new(17);
    let ids = b.ids(5);
    let text = format!("ImageId\r\n{}\r\nnot valid!\r\n", ids.join("\r\n"));
    // 1 of 6 data rows rejected: over the default --max-rejected 10 %.
    let out = b.run("-", &["--max-rejected", "1"], Some(text.as_bytes()));
    out.expect_code(0);
    b.assert_audited(&ids);
    assert_eq!(b.rejected().iter().map(|r| r.0).collect::<Vec<_>>(), vec![7]);
    let manifest = b.wd.json("out/manifest.json");
    assert_eq!(manifest["input"]["path"], "<stdin>");
    assert_eq!(manifest["input"]["bytes"], text.len() as u64);

    let b = Bench::new(18);
    let out = b.run("-", &[], Some(b""));
    b.expect_refused(&out, &["<stdin>: no data rows"]);
}
