//! The review ledger (`run --reviews FILE`) from night to night: each
//! blocked image reviewed or not, since when it is blocked, the reviews that
//! no longer apply, and `--fail-on unreviewed_blocked`.

use std::collections::HashMap;

use crate::common::{csv_rows, id_file, Audit, Bench, TestCatalog, Workdir};
use serde_json::{json, Value};

fn rows_by_id(wd: &Workdir, out: &str) -> HashMap<String, HashMap<String, String>> {
    csv_rows(&wd.read(&format!("{out}/images.csv"))).into_iter().map(|r| (r["image_id"].clone(), r)).collect()
}

/// Rewrites one cell of an earlier run's images.csv and seals the run
/// again (the manifest's digest of it and the manifest's own): a run as if
/// made on an earlier night.
fn backdate(wd: &Workdir, out: &str, id: &str, column: &str, value: &str) {
    let path = format!("{out}/images.csv");
    let text = wd.read(&path);
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header = rdr.headers().unwrap().clone();
    let col = header.iter().position(|h| h == column).unwrap();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    for row in rdr.records() {
        let row = row.unwrap();
        let mut cells: Vec<String> = row.iter().map(str::to_owned).collect();
        if cells[0] == id {
            cells[col] = value.to_owned();
        }
        w.write_record(&cells).unwrap();
    }
    let bytes = w.into_inner().unwrap();
    wd.write(&path, &bytes);
    let hex = |b: &[u8]| {
        ring::digest::digest(&ring::digest::SHA256, b).as_ref().iter().map(|x| format!("{x:02x}")).collect::<String>()
    };
    let mut m = wd.json(&format!("{out}/manifest.json"));
    for f in m["files"].as_array_mut().unwrap() {
        if f["name"] == "images.csv" {
            f["sha256"] = json!(hex(&bytes));
            f["bytes"] = json!(bytes.len());
        }
    }
    let text = serde_json::to_vec_pretty(&m).unwrap();
    wd.write(&format!("{out}/manifest.json"), &text);
    wd.write(&format!("{out}/manifest.sha256"), format!("{}  manifest.json\n", hex(&text)));
    wd.run(&["verify", out], &[], None).expect_code(0);
}

/// Whole days from `from` to `to`, both `YYYY-MM-DD`.
fn days(from: &str, to: &str) -> u64 {
    let t = |d: &str| humantime::parse_rfc3339(&format!("{d}T00:00:00Z")).unwrap();
    t(to).duration_since(t(from)).unwrap().as_secs() / 86_400
}

#[test]
fn three_nights_with_a_review_ledger() {
    let cat = TestCatalog::generate(10, 301);
    let ids = cat.ids();
    let (a, b, c) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    let gone = "0000000000000000000000000000dead";
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&ids));
    let night = |n: &str, blocked: &[&str], ledger: &str, extra: &[&str]| {
        wd.write("ledger.csv", ledger);
        let sim = cat.serve_blocking(blocked);
        Audit::new(&wd, &sim)
            .out(&format!("reports/{n}"))
            .args(["--reviews", "ledger.csv", "--fail-on", "unreviewed_blocked"])
            .args(extra.iter().copied())
            .run()
    };
    let header = "image_id,decision,reviewer,reviewed_at,note\n";

    // Night 1: a and b blocked; a confirmed; a review of an image not in the run.
    let ledger = format!("{header}{a},confirmed,alice,2026-03-01,porn on the cover\n{gone},deleted,bob,2026-02-01,\n");
    let out = night("n1", &[a, b], &ledger, &[]);
    out.expect_code(8);
    assert!(out.stderr.contains("unreviewed_blocked 1"), "{}", out.describe());
    let s = wd.json("reports/n1/summary.json");
    let today = s["review"]["run_date"].as_str().unwrap().to_owned();
    assert_eq!(s["review"]["unreviewed_blocked"], 1, "{s:#}");
    assert_eq!(s["review"]["oldest_unreviewed_since"], json!(today));
    assert_eq!(s["review"]["by_decision"], json!({"confirmed": 1}));
    assert_eq!(s["review"]["stale"], json!([{"image_id": gone, "decision": "deleted", "why": "not in this run"}]));
    let rows = rows_by_id(&wd, "reports/n1");
    assert_eq!(
        [&rows[a]["review_decision"], &rows[a]["reviewer"], &rows[a]["reviewed_at"], &rows[a]["blocked_since"]],
        ["confirmed", "alice", "2026-03-01", &today]
    );
    assert_eq!([&rows[b]["review_decision"], &rows[b]["blocked_since"]], ["", &today]);
    assert_eq!(rows[c]["blocked_since"], "", "not blocked: no date");
    let m = wd.json("reports/n1/manifest.json");
    let hex = ring::digest::digest(&ring::digest::SHA256, ledger.as_bytes());
    let hex: String = hex.as_ref().iter().map(|x| format!("{x:02x}")).collect();
    assert_eq!(m["reviews"]["sha256"], json!(hex), "the ledger is evidence too: {m:#}");
    // As if night 1 were weeks ago, b first seen blocked on 2026-01-02.
    backdate(&wd, "reports/n1", b, "blocked_since", "2026-01-02");

    // Night 2: c blocked too and reviewed; b still not.
    let ledger = format!("{ledger}{c},false_positive,carol,2026-03-02,a cartoon\n");
    let out = night("n2", &[a, b, c], &ledger, &["--compare-with", "reports/n1", "--metrics-file", "metrics.prom"]);
    out.expect_code(8);
    let s = wd.json("reports/n2/summary.json");
    assert_eq!(s["review"]["unreviewed_blocked"], 1, "{s:#}");
    assert_eq!(s["review"]["oldest_unreviewed_since"], "2026-01-02", "carried from night 1: {s:#}");
    let age = days("2026-01-02", &today);
    assert_eq!(s["review"]["oldest_unreviewed_age_days"], age);
    let rows = rows_by_id(&wd, "reports/n2");
    assert_eq!(rows[b]["blocked_since"], "2026-01-02");
    assert_eq!([&rows[a]["blocked_since"], &rows[c]["blocked_since"]], [&today, &today]);
    let metrics = wd.read("metrics.prom");
    assert!(metrics.contains("vod_image_audit_unreviewed_blocked 1\n"), "{metrics}");
    assert!(metrics.contains(&format!("vod_image_audit_oldest_unreviewed_blocked_age_days {age}\n")), "{metrics}");
    let page = wd.read("reports/n2/summary.html");
    let queue = page.find("data-k=\"review_queue\"").expect("the page has the review queue");
    let ledger_at = page.find("<h2>Ledger</h2>").unwrap();
    assert!(queue < ledger_at, "the page opens with the review queue");
    assert!(page[queue..ledger_at].contains(b) && !page[queue..ledger_at].contains(c), "only b waits");

    // Night 3: a cleared; b reviewed at last: nothing waits, a's review is stale.
    let ledger = format!("{ledger}{b},appealed,alice,2026-03-03,\n");
    let out = night("n3", &[b, c], &ledger, &["--compare-with", "reports/n2"]);
    out.expect_code(0);
    let s = wd.json("reports/n3/summary.json");
    assert_eq!(s["review"]["unreviewed_blocked"], 0, "{s:#}");
    assert_eq!(s["review"]["oldest_unreviewed_since"], Value::Null);
    assert_eq!(s["review"]["by_decision"], json!({"appealed": 1, "false_positive": 1}));
    let stale: Vec<(&str, &str)> = s["review"]["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["image_id"].as_str().unwrap(), r["why"].as_str().unwrap()))
        .collect();
    assert_eq!(stale, [(gone, "not in this run"), (a, "not blocked (verdict Normal)")]);
    let rows = rows_by_id(&wd, "reports/n3");
    assert_eq!(rows[b]["blocked_since"], "2026-01-02", "carried through night 2");
    assert_eq!(rows[b]["review_decision"], "appealed");
    wd.run(&["verify", "reports/n3"], &[], None).expect_code(0);
}

#[test]
fn a_bad_review_row_is_refused_naming_the_file_and_line_before_any_call() {
    let bench = Bench::new(5, 302);
    let ids = bench.ids(5);
    bench.wd.write("ids.csv", id_file(&ids));
    let cases: &[(&str, &[&str])] = &[
        (
            "image_id,decision,reviewer,reviewed_at,note\nx1,confirmed,al,2026-03-01,\nx2,maybe,al,2026-03-01,\n",
            &["ledger.csv: line 3", "\"maybe\"", "confirmed, appealed, deleted, false_positive"],
        ),
        (
            "image_id,decision,reviewer,reviewed_at,note\nx1,confirmed,,2026-03-01,\n",
            &["ledger.csv: line 2", "reviewer"],
        ),
        (
            "image_id,decision,reviewer,reviewed_at,note\nx1,confirmed,al,yesterday,\n",
            &["ledger.csv: line 2", "reviewed_at", "2026-03-01"],
        ),
        ("id,verdict\nx1,confirmed\n", &["ledger.csv: line 1", "image_id, decision, reviewer, reviewed_at, note"]),
        ("image_id,decision,reviewer,reviewed_at,note\n\"x1,confirmed,al,2026-03-01,\n", &["ledger.csv"]),
    ];
    for (text, wants) in cases {
        bench.wd.write("ledger.csv", text);
        let out = Audit::new(&bench.wd, &bench.server).out("out").args(["--reviews", "ledger.csv"]).run();
        bench.expect_refused_without_calls(&out, wants);
    }
    // Not a file one can read to the end: refused, not waited on.
    let out = Audit::new(&bench.wd, &bench.server).out("out").args(["--reviews", "/dev/zero"]).run();
    bench.expect_refused_without_calls(&out, &["/dev/zero", "not a regular file"]);
}
