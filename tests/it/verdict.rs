//! The verdict a compliance team runs this for: `AuditStatus` that the
//! service stops sending, and the moderation results that say why.

use crate::common::{csv_rows, id_file, Audit, SimServer, TestCatalog, Workdir};
use vod_image_audit::sim::catalog::media_audit_result;

#[test]
fn audit_status_missing_everywhere_exits_9_and_media_audit_gives_the_verdict() {
    let cat = TestCatalog::generate(150, 51);
    let mut config = cat.config();
    config.omit_audit_status = true;
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));

    let out = Audit::new(&wd, &server).out("image-info").qps(1000).run();
    out.expect_code(9);
    assert!(out.stderr.contains("AuditStatus missing from the service's answers"), "{}", out.describe());
    assert!(out.stderr.contains("--audit-source media-audit"), "says what to do\n{}", out.describe());
    let summary = wd.json("image-info/summary.json");
    assert_eq!(summary["audit_status_coverage"]["with_audit_status"], 0);
    assert_eq!(wd.json("image-info/manifest.json")["exit_code"], 9);
    wd.run(&["verify", "image-info"], &[], None).expect_code(0);

    let want_blocked = cat.values.iter().filter(|v| media_audit_result(v)["Suggestion"] == "block").count() as u64;
    assert!(want_blocked > 5, "the catalog has blocked images: {want_blocked}");
    let out = Audit::new(&wd, &server).out("media").qps(1000).args(["--audit-source", "media-audit"]).run();
    out.expect_code(0);
    let summary = wd.json("media/summary.json");
    assert_eq!(summary["by_audit_status"]["Blocked"], want_blocked, "{}", out.describe());
    assert_eq!(summary["audit_status_coverage"]["share"], 1.0);
    let rows = csv_rows(&wd.read("media/images.csv"));
    let blocked: Vec<_> = rows.iter().filter(|r| r["audit_status"] == "Blocked").collect();
    assert!(blocked.iter().all(|r| r["audit_source"] == "media-audit" && r["audit_suggestion"] == "block"));
    assert!(blocked.iter().all(|r| !r["audit_labels"].is_empty()), "blocked images say why");
}

#[test]
fn audit_source_both_says_why_an_image_is_blocked() {
    let cat = TestCatalog::generate(120, 52);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server).qps(1000).args(["--audit-source", "both"]).run();
    out.expect_code(0);
    let rows = csv_rows(&wd.read("out/images.csv"));
    let blocked: Vec<_> = rows.iter().filter(|r| r["audit_status"] == "Blocked").collect();
    assert!(blocked.len() >= 3, "{}", blocked.len());
    for r in &blocked {
        assert!(!r["audit_labels"].is_empty(), "{} has no reason", r["image_id"]);
        assert_eq!(r["audit_suggestion"], "block");
    }
    // Normal images were not asked: one call each.
    let normal = rows.iter().find(|r| r["audit_status"] == "Normal" && r["audit_source"] == "image-info").unwrap();
    assert_eq!(normal["audit_suggestion"], "");
    let summary = wd.json("out/summary.json");
    let labels = summary["by_audit_label"].as_object().expect("by_audit_label");
    let labelled: u64 = labels.values().map(|v| v.as_u64().unwrap()).sum();
    assert!(labelled >= blocked.len() as u64, "{labels:?}");
    let page = wd.read("out/summary.html");
    let first = &blocked[0]["audit_labels"];
    assert!(page.contains(&format!("<td class=\"labels\">{}", first.replace(';', ", "))), "the page shows why");
}
