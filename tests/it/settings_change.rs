//! A change of settings between two nights is not news: the changes it
//! explains are marked (`explained_by` in changes.csv, `explained` in
//! summary.json), `--fail-on` does not count them, and one line says which
//! setting changed.

use crate::common::{csv_rows, id_file, Audit, SimServer, TestCatalog, Workdir};
use vod_image_audit::sim::catalog::media_audit_result;

#[test]
fn switching_to_audit_source_both_raises_no_alert_and_says_which_setting_changed() {
    let cat = TestCatalog::generate(60, 29);
    let mut config = cat.config();
    // The account's answers carry no AuditStatus: night 1 has no verdict, night 2 asks the machine.
    config.omit_audit_status = true;
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let want_blocked = cat.values.iter().filter(|v| media_audit_result(v)["Suggestion"] == "block").count();
    assert!(want_blocked > 0, "the catalog has blocked images");

    Audit::new(&wd, &server).out("reports/n1").qps(1000).args(["--min-audit-status", "0"]).run().expect_code(0);
    let out = Audit::new(&wd, &server)
        .out("reports/n2")
        .qps(1000)
        .args(["--audit-source", "both", "--compare-with", "auto", "--fail-on", "newly_blocked"])
        .run();
    out.expect_code(0);
    assert!(out.stderr.contains("audit-source image-info to both"), "one line names the setting\n{}", out.describe());

    let rows = csv_rows(&wd.read("reports/n2/changes.csv"));
    let newly: Vec<_> = rows.iter().filter(|r| r["change"] == "newly_blocked").collect();
    assert_eq!(newly.len(), want_blocked, "the changes are still listed\n{}", out.describe());
    assert!(
        newly.iter().all(|r| r["explained_by"] == "audit-source image-info to both"),
        "each is marked as explained by the setting: {newly:?}"
    );
    let summary = wd.json("reports/n2/summary.json");
    assert_eq!(summary["changes"]["counts"]["newly_blocked"], want_blocked as u64);
    assert_eq!(summary["changes"]["explained"]["newly_blocked"], want_blocked as u64);
    assert_eq!(summary["changes"]["settings_changed"][0], "audit-source image-info to both");
    wd.run(&["verify", "reports/n2"], &[], None).expect_code(0);
    // diff reads the two manifests the same way.
    let diffed = wd.run(&["diff", "reports/n1", "reports/n2"], &[], None);
    diffed.expect_code(0);
    let rows = csv_rows(&diffed.stdout);
    assert!(rows
        .iter()
        .filter(|r| r["change"] == "newly_blocked")
        .all(|r| r["explained_by"] == "audit-source image-info to both"));
    assert!(diffed.stderr.contains("audit-source image-info to both"), "{}", diffed.describe());

    // The same settings again: nothing is explained, and a real change would alert.
    let out = Audit::new(&wd, &server)
        .out("reports/n3")
        .qps(1000)
        .args(["--audit-source", "both", "--compare-with", "auto", "--fail-on", "newly_blocked"])
        .run();
    out.expect_code(0);
    assert!(!out.stderr.contains("to both"), "{}", out.describe());
    let summary = wd.json("reports/n3/summary.json");
    assert!(summary["changes"].get("settings_changed").is_none_or(|v| v.as_array().is_some_and(|a| a.is_empty())));
}
