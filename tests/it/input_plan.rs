//! Input that cannot be silently empty, through the real binary: the
//! delimiter is sniffed from the header, a file with no valid id or with
//! more rejected rows than `--max-rejected` is refused before any call, and
//! `run --dry-run` prints the plan without calling or writing anything.

use std::collections::BTreeSet;

use crate::common::{self, csv_rows, id_file, Audit, Output};

// A simulator with a small catalog and a work directory.
common::module_bench!(30);

impl Bench {
    fn audit(&self) -> Audit<'_> {
        Audit::new(&self.wd, &self.server).qps(500)
    }

    /// The ids of images.csv.
    fn audited(&self) -> BTreeSet<String> {
        csv_rows(&self.wd.read("out/images.csv")).into_iter().map(|r| r["image_id"].clone()).collect()
    }

    /// Exit 2, every `wants` in stderr, no call, no report directory.
    fn expect_refused(&self, out: &Output, wants: &[&str]) {
        self.expect_refused_without_calls(out, wants);
        assert!(!self.wd.path().join("out").exists(), "a refused input wrote the output directory");
    }
}

/// `Title<sep>ImageId<sep>Owner`, one row per id.
fn export(ids: &[String], sep: char) -> String {
    let mut s = format!("Title{sep}ImageId{sep}Owner\n");
    for (i, id) in ids.iter().enumerate() {
        s.push_str(&format!("title {i}{sep}{id}{sep}owner{i}\n"));
    }
    s
}

#[test]
fn semicolon_tab_and_pipe_exports_audit_the_id_column() {
    for (sep, name) in [(';', ";"), ('\t', "tab"), ('|', "|")] {
        let b = Bench::new(40 + sep as u64);
        let ids = b.ids(8);
        b.wd.write("ids.csv", export(&ids, sep));
        let out = b.audit().run();
        out.expect_code(0);
        assert_eq!(b.audited(), ids.iter().cloned().collect::<BTreeSet<_>>(), "delimiter {name}\n{}", out.describe());
        assert_eq!(b.server.stats().requests, 8, "delimiter {name}");
        let t = &b.wd.json("out/summary.json")["totals"];
        assert_eq!((t["input_rows"].as_u64(), t["invalid"].as_u64()), (Some(8), Some(0)), "delimiter {name}");
    }
}

#[test]
fn a_forced_delimiter_is_used() {
    let b = Bench::new(50);
    let ids = b.ids(4);
    // Commas in the titles outnumber the pipes: sniffing would pick the comma.
    let mut text = String::from("Title, long, long|ImageId\n");
    for id in &ids {
        text.push_str(&format!("a, b, c|{id}\n"));
    }
    b.wd.write("ids.csv", text);
    b.audit().args(["--delimiter", "|"]).run().expect_code(0);
    assert_eq!(b.audited(), ids.iter().cloned().collect::<BTreeSet<_>>());
    let out = b.audit().args(["--delimiter", "colon"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("--delimiter"), "{}", out.describe());
}

#[test]
fn a_file_whose_every_row_is_rejected_is_refused_before_any_call() {
    let b = Bench::new(51);
    b.wd.write("ids.csv", "ImageId\nnot an id\nbad/one\nbad.two\n");
    for quiet in [false, true] {
        let out = b.audit().args(if quiet { vec!["--quiet"] } else { vec![] }).run();
        b.expect_refused(&out, &["ids.csv: no valid image id in 3 data rows", "line 2 \"not an id\""]);
    }
    // Even when --max-rejected allows every row.
    let out = b.audit().args(["--max-rejected", "100%"]).run();
    b.expect_refused(&out, &["ids.csv: no valid image id"]);
}

#[test]
fn more_rejected_rows_than_max_rejected_is_refused_before_any_call() {
    let b = Bench::new(52);
    let ids = b.ids(8);
    let mut text = id_file(&ids);
    text.push_str("bad one\nbad/two\n");
    b.wd.write("ids.csv", text);
    // 2 of 10 data rows: over the default 10 %.
    let out = b.audit().run();
    b.expect_refused(
        &out,
        &["ids.csv: 2 of 10 data rows (20.0%) are not valid image ids", "line 10 \"bad one\"", "--max-rejected"],
    );
    // Over a count.
    let out = b.audit().args(["--max-rejected", "1"]).run();
    b.expect_refused(&out, &["ids.csv: 2 of 10 data rows", "--max-rejected 1"]);
    // At the limit, as a count and as a share: audited, the rows in rejected.csv.
    for limit in ["2", "20%"] {
        let wd_out = format!("out-{}", limit.trim_end_matches('%'));
        let out = b.audit().out(&wd_out).args(["--max-rejected", limit]).run();
        out.expect_code(0);
        let rejected = csv_rows(&b.wd.read(&format!("{wd_out}/rejected.csv")));
        assert_eq!(rejected.len(), 2, "{}", out.describe());
    }
    assert_eq!(b.server.stats().requests, 16);
    // A bad limit is a usage error.
    let out = b.audit().out("out-bad").args(["--max-rejected", "lots"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("--max-rejected"), "{}", out.describe());
}

#[test]
fn dry_run_prints_the_plan_and_calls_and_writes_nothing() {
    let b = Bench::new(53);
    let ids = b.ids(20);
    let mut text = export(&ids, ';');
    text.push_str(&format!("dup;{};x\n\nbad;bad id;x\n", ids[0]));
    b.wd.write("ids.csv", text);
    let out = Audit::new(&b.wd, &b.server).qps(4).args(["--dry-run"]).run();
    out.expect_code(0);
    let plan = &out.stdout;
    for want in [
        "ids.csv",
        "20 unique ids",
        "22 rows",
        "1 duplicate",
        "1 rejected",
        "1 blank",
        "delimiter: ;",
        "id column: ImageId",
        &format!("endpoint: {}", b.server.url),
        "credentials: ",
        "calls: GetImageInfo 20 at 4/s; the lookups 5s",
        "estimated duration: 5s (the slowest API's",
        "reports: out",
    ] {
        assert!(plan.contains(want), "expected {want:?} in the plan\n{}", out.describe());
    }
    assert_eq!(b.server.stats().requests, 0, "a dry run made calls");
    assert!(!b.wd.path().join("out").exists(), "a dry run wrote the output directory");

    // An input error is still exit 2, with nothing called.
    b.wd.write("ids.csv", "ImageId\nbad one\n");
    let out = b.audit().args(["--dry-run"]).run();
    b.expect_refused(&out, &["no valid image id"]);
}
