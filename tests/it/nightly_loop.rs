//! The nightly loop: comparing with the right earlier run, alerting on
//! what changed, a quiet cron mail that still says what went wrong, and
//! retrying what failed.

use crate::common::{csv_rows, id_file, Audit, SimServer, TestCatalog, Workdir};
use serde_json::json;
use vod_image_audit::sim::{Catalog, Faults, SimConfig};

#[test]
fn compare_with_auto_picks_the_run_of_the_same_input_and_says_which() {
    let cat = TestCatalog::generate(30, 61);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let ids = cat.ids();
    wd.write("a.csv", id_file(&ids[..20]));
    wd.write("b.csv", id_file(&ids[10..]));
    Audit::new(&wd, &server).input("a.csv").out("reports/a1").run().expect_code(0);
    Audit::new(&wd, &server).input("b.csv").out("reports/b1").run().expect_code(0);
    let out = Audit::new(&wd, &server).input("a.csv").out("reports/a2").args(["--compare-with", "auto"]).run();
    out.expect_code(0);
    assert!(out.stderr.contains("comparing with reports/a1"), "{}", out.describe());
    let changes = wd.json("reports/a2/summary.json")["changes"].clone();
    assert!(changes["compared_with"].as_str().unwrap().ends_with("a1"), "{changes}");
    assert_eq!(changes["compared"], 20);

    // No earlier run of this input: said, and nothing compared.
    wd.write("c.csv", id_file(&ids[..5]));
    let out = Audit::new(&wd, &server).input("c.csv").out("reports/c1").args(["--compare-with", "auto"]).run();
    out.expect_code(0);
    assert!(out.stderr.contains("no earlier run of this input"), "{}", out.describe());
    assert_eq!(wd.json("reports/c1/summary.json")["changes"], serde_json::Value::Null);
}

#[test]
fn fail_on_newly_blocked_exits_8_when_an_image_was_blocked_and_quiet_says_one_line() {
    let cat = TestCatalog::generate(40, 62);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let mut values = cat.values.clone();
    let night1 = SimServer::start(SimConfig::new(Catalog::from_values(values.clone()).unwrap()));
    let first = Audit::new(&wd, &night1).out("reports/n1").args(["--fail-on", "newly_blocked", "--quiet"]).run();
    first.expect_code(0);
    assert_eq!(first.stderr, "", "--quiet is silent on success\n{}", first.describe());
    let night = |n: &str, values: &[serde_json::Value]| {
        let sim = SimServer::start(SimConfig::new(Catalog::from_values(values.to_vec()).unwrap()));
        Audit::new(&wd, &sim)
            .out(&format!("reports/{n}"))
            .args(["--compare-with", "auto", "--fail-on", "newly_blocked", "--quiet"])
            .run()
    };
    // Nothing changed: no alert.
    night("n2", &values).expect_code(0);
    // One image blocked since: exit 8, one line saying so.
    let i = values.iter().position(|v| v["AuditStatus"] == "Normal").unwrap();
    values[i]["AuditStatus"] = json!("Blocked");
    let out = night("n3", &values);
    out.expect_code(8);
    assert!(out.stderr.contains("newly_blocked 1"), "{}", out.describe());
    assert!(out.stderr.contains("reports/n3"), "the line says where the report is\n{}", out.describe());
    assert_eq!(wd.json("reports/n3/manifest.json")["exit_code"], 8);
    wd.run(&["verify", "reports/n3"], &[], None).expect_code(0);
    let bad = Audit::new(&wd, &night1).out("reports/x").args(["--fail-on", "blocked_maybe"]).run();
    bad.expect_code(2);
}

#[test]
fn quiet_still_says_when_ids_failed() {
    let cat = TestCatalog::generate(60, 63);
    let mut config = cat.config();
    config.faults = Faults { internal_error: 0.3, ..Faults::default() };
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server).args(["--max-attempts", "1", "--quiet"]).run();
    out.expect_code(3);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line\n{}", out.describe());
    assert!(lines[0].contains("failed") && lines[0].contains("report in out"), "{}", out.describe());
}

/// A night with failures, then a retry of only those against a healthy
/// service: the same report as a clean run, byte for byte but for request
/// ids and attempt counts, and verify passes.
#[test]
fn retry_failed_completes_the_report_of_the_whole_input() {
    let cat = TestCatalog::generate(80, 64);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let mut flaky = cat.config();
    flaky.faults = Faults { internal_error: 0.2, ..Faults::default() };
    let flaky = SimServer::start(flaky);
    let first = Audit::new(&wd, &flaky).out("night").args(["--max-attempts", "1"]).run();
    first.expect_code(3);
    let failed = csv_rows(&wd.read("night/images.csv")).iter().filter(|r| r["outcome"] == "failed").count();
    assert!(failed > 0);

    let healthy = SimServer::start(cat.config());
    let out = Audit::new(&wd, &healthy).out("night-retry").args(["--retry-failed", "night"]).run();
    out.expect_code(0);
    assert_eq!(healthy.stats().requests, failed as u64, "only the failed ids are called");
    let clean = SimServer::start(cat.config());
    Audit::new(&wd, &clean).out("clean").run().expect_code(0);
    let strip = |text: String| -> Vec<Vec<String>> {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let h = r.headers().unwrap().clone();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                h.iter()
                    .zip(rec.iter())
                    .filter(|(k, _)| *k != "request_id" && *k != "attempts")
                    .map(|(_, v)| v.to_owned())
                    .collect()
            })
            .collect()
    };
    assert_eq!(strip(wd.read("night-retry/images.csv")), strip(wd.read("clean/images.csv")));
    let m = wd.json("night-retry/manifest.json");
    assert!(m["retry_of"]["dir"].as_str().unwrap().ends_with("night"), "{m}");
    assert_eq!(m["complete"], true);
    wd.run(&["verify", "night-retry"], &[], None).expect_code(0);

    // Another input is refused.
    wd.write("other.csv", id_file(&cat.ids()[..10]));
    let other = Audit::new(&wd, &healthy).input("other.csv").out("other").args(["--retry-failed", "night"]).run();
    other.expect_code(2);
    assert!(other.stderr.contains("another input"), "{}", other.describe());
}
