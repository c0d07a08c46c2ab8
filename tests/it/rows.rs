//! One list of rows, every format: for a run that stopped (so that
//! `not_attempted` is not zero), every row of the ledger's list and of the
//! totals' list appears, under its key and with its count, in each format
//! that shows that list: `summary.csv`, `summary.html`, the workbook's
//! Summary sheet, the metrics file and `verify`'s output. The lists are the
//! library's own, so a row added to them and left out of a format fails here.

use calamine::{open_workbook, Data, Reader, Xlsx};
use vod_image_audit::domain::ledger::Ledger;
use vod_image_audit::report::summary::Totals;

use crate::common::{csv_rows, Audit, Bench};

/// The Summary sheet's `(section, item, count)` rows, as calamine reads them.
fn summary_sheet(path: &std::path::Path) -> Vec<(String, String, Data)> {
    let mut book: Xlsx<_> = open_workbook(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let range = book.worksheet_range("Summary").expect("a Summary sheet");
    range.rows().skip(1).map(|r| (r[0].to_string(), r[1].to_string(), r[3].clone())).collect()
}

/// `verify`'s ledger line, as `key count` pairs.
fn verify_ledger(stdout: &str) -> Vec<(String, u64)> {
    let line = stdout.lines().find(|l| l.starts_with("ok: ledger balances")).unwrap_or_default();
    let rows = line.rsplit_once("): ").map_or("", |(_, rows)| rows);
    rows.split(", ")
        .filter_map(|pair| pair.split_once(' '))
        .filter_map(|(k, n)| Some((k.to_owned(), n.parse().ok()?)))
        .collect()
}

#[test]
fn every_format_lists_every_row_of_the_ledger_and_the_totals() {
    // The key revoked after its first call: the run stops, the rest of the
    // ids not attempted.
    let Bench { cat, server, wd } = Bench::with(12, 281, |c| c.revoke_key_after = Some(1));
    let ids = cat.ids();
    // A blank row, a rejected row and a duplicate, so that every input row
    // of the ledger counts something.
    let text = format!("ImageId\n{}\n\nbad id\n{}\n", ids.join("\n"), ids[0]);
    wd.write("ids.csv", &text);
    let out = Audit::new(&wd, &server)
        .qps(500)
        .concurrency(1)
        .args(["--format", "csv,json,html,xlsx", "--metrics-file", "m.prom"])
        .run();
    out.expect_code(4);

    let summary = wd.json("out/summary.json");
    let ledger: Ledger = serde_json::from_value(summary["ledger"].clone()).unwrap();
    let totals: Totals = serde_json::from_value(summary["totals"].clone()).unwrap();
    assert!(ledger.not_attempted > 0, "the run stopped before some ids\n{}", out.describe());
    assert!(ledger.blank_rows > 0 && ledger.rejected > 0 && ledger.duplicates > 0, "{ledger:?}");

    let csv = csv_rows(&wd.read("out/summary.csv"));
    let page = wd.read("out/summary.html");
    let sheet = summary_sheet(&wd.path().join("out/audit.xlsx"));
    let prom = wd.read("m.prom");
    let verify = wd.run(&["verify", "out"], &[], None);
    verify.expect_code(6);
    let verified = verify_ledger(&verify.stdout);

    let in_csv = |dimension: &str, key: &str, count: u64| {
        csv.iter().any(|r| r["dimension"] == dimension && r["value"] == key && r["images"] == count.to_string())
    };
    let in_sheet = |section: &str, key: &str, count: u64| {
        sheet.iter().any(|(s, k, n)| s == section && k == key && *n == Data::Float(count as f64))
    };
    let mut missing = Vec::new();
    for (key, label, count) in ledger.rows() {
        let seen = [
            ("summary.csv", in_csv("ledger", key, count)),
            ("summary.html", page.contains(&format!("<th>{label}</th><td class=\"n\" data-k=\"{key}\">{count}<"))),
            ("audit.xlsx", in_sheet("ledger", key, count)),
            ("metrics", prom.contains(&format!("\nvod_image_audit_ledger{{row=\"{key}\"}} {count}\n"))),
            ("verify", verified.contains(&(key.to_owned(), count))),
        ];
        missing.extend(seen.iter().filter(|s| !s.1).map(|s| format!("{}: ledger {key} {count}", s.0)));
    }
    for row in Totals::ROWS {
        let (key, count) = (row.key, (row.count)(&totals));
        if !in_sheet("totals", key, count) {
            missing.push(format!("audit.xlsx: totals {key} {count}"));
        }
    }
    for row in Totals::outcome_rows() {
        let (key, count) = (row.key, (row.count)(&totals));
        if !in_csv("outcome", key, count) {
            missing.push(format!("summary.csv: outcome {key} {count}"));
        }
        if !prom.contains(&format!("\nvod_image_audit_ids{{outcome=\"{key}\"}} {count}\n")) {
            missing.push(format!("metrics: ids {key} {count}"));
        }
    }
    assert!(missing.is_empty(), "rows left out:\n{}\n--- verify ---\n{}", missing.join("\n"), verify.stdout);
}
