//! The verdict a compliance team runs this for: the account's decision
//! (`AuditStatus`) apart from the machine's (`GetMediaAuditResult`'s
//! `Suggestion`), every reason the machine gives, `AuditStatus` that the
//! service stops sending, spellings nobody documents, and moderation that
//! the account cannot have.

use std::collections::HashMap;

use serde_json::{json, Value};

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
    assert!(out.stderr.contains("The answers lack AuditStatus"), "{}", out.describe());
    assert!(out.stderr.contains("--audit-source both"), "says what to do\n{}", out.describe());
    let summary = wd.json("image-info/summary.json");
    assert_eq!(summary["audit_status_coverage"]["with_audit_status"], 0);
    assert_eq!(wd.json("image-info/manifest.json")["exit_code"], 9);
    wd.run(&["verify", "image-info"], &[], None).expect_code(0);

    let want_blocked = cat.values.iter().filter(|v| media_audit_result(v)["Suggestion"] == "block").count() as u64;
    assert!(want_blocked > 5, "the catalog has blocked images: {want_blocked}");
    let out = Audit::new(&wd, &server).out("media").qps(1000).args(["--audit-source", "media-audit"]).run();
    out.expect_code(0);
    let summary = wd.json("media/summary.json");
    assert_eq!(summary["by_verdict"]["Blocked"], want_blocked, "{}", out.describe());
    assert_eq!(summary["verdict_coverage"]["share"], 1.0);
    assert_eq!(summary["audit_status_coverage"]["with_audit_status"], 0, "the raw field is counted as it is");
    let rows = csv_rows(&wd.read("media/images.csv"));
    let blocked: Vec<_> = rows.iter().filter(|r| r["verdict"] == "Blocked").collect();
    assert!(blocked.iter().all(|r| r["verdict_source"] == "moderation"
        && r["moderation_suggestion"] == "block"
        && r["audit_status"].is_empty()));
    assert!(blocked.iter().all(|r| !r["reasons"].is_empty()), "blocked images say why");
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
    let blocked: Vec<_> = rows.iter().filter(|r| r["verdict"] == "Blocked").collect();
    assert!(blocked.len() >= 3, "{}", blocked.len());
    for r in &blocked {
        assert!(!r["reasons"].is_empty(), "{} has no reason", r["image_id"]);
        assert!(!r["moderation_suggestion"].is_empty(), "{} was not asked", r["image_id"]);
    }
    // Normal images were not asked: one call each.
    let normal = rows.iter().find(|r| r["audit_status"] == "Normal").unwrap();
    assert_eq!((normal["moderation_suggestion"].as_str(), normal["verdict_source"].as_str()), ("", "audit_status"));
    let summary = wd.json("out/summary.json");
    let reasons = summary["by_reason"].as_object().expect("by_reason");
    let with_reason: u64 = reasons.values().map(|v| v.as_u64().unwrap()).sum();
    assert!(with_reason >= blocked.len() as u64, "{reasons:?}");
    let page = wd.read("out/summary.html");
    let first = &blocked[0]["reasons"];
    assert!(page.contains(&format!("<td class=\"labels\">{}", first.replace(';', ", "))), "the page shows why");
}

// ---------------------------------------------------------------------------
// Two facts, two columns
// ---------------------------------------------------------------------------

/// An image of the test account: its `AuditStatus` (absent: `None`) and the
/// moderation answer the simulator gives for it.
fn image(id: &str, audit_status: Option<&str>, moderation: Value) -> Value {
    let mut v = json!({"ImageId": id, "Title": format!("title of {id}"), "Status": "Normal", "CateId": 7,
        "CateName": "News", "URL": format!("https://img.example.com/{id}.png"), "MediaAuditResult": moderation});
    if let Some(a) = audit_status {
        v["AuditStatus"] = json!(a);
    }
    v
}

fn pass() -> Value {
    json!({"Suggestion": "pass", "Label": "normal", "AbnormalModules": "",
        "ImageResult": [{"Type": "cover", "Suggestion": "pass", "Label": "normal",
            "Result": [{"Scene": "porn", "Label": "normal", "Suggestion": "pass", "Score": "0.5"}]}]})
}

fn cover_block(scene: &str, label: &str) -> Value {
    json!({"Suggestion": "block", "Label": label, "AbnormalModules": "image-cover",
        "ImageResult": [{"Type": "cover", "Suggestion": "block", "Label": label,
            "Result": [{"Scene": scene, "Label": label, "Suggestion": "block", "Score": "99.1"}]}]})
}

/// Blocked for its title alone: the official model shows it only in
/// `TextResult` and `AbnormalModules`.
fn title_block(label: &str) -> Value {
    json!({"Suggestion": "block", "AbnormalModules": "text-title",
        "ImageResult": [{"Type": "cover", "Suggestion": "pass", "Label": "normal"}],
        "TextResult": [{"Type": "title", "Scene": "antispam", "Label": label, "Suggestion": "block",
            "Content": "buy now", "Score": "99.9"}]})
}

/// The account the verdict tests audit: one image for each case.
fn account() -> TestCatalog {
    TestCatalog::from_values(vec![
        // A reviewer cleared what the machine blocked.
        image("a-cleared", Some("Normal"), cover_block("porn", "porn")),
        // A reviewer blocked what the machine passed.
        image("b-blocked-by-hand", Some("Blocked"), pass()),
        // Blocked for the title alone, no AuditStatus.
        image("c-title", None, title_block("ad")),
        // The machine asks for a review.
        image(
            "d-review",
            None,
            json!({"Suggestion": "review", "ImageResult": [{"Type": "cover",
            "Suggestion": "review", "Label": "sexy", "Result": [{"Scene": "porn", "Label": "sexy", "Suggestion": "review"}]}]}),
        ),
        // Never reviewed.
        image("e-unreviewed", None, json!({})),
        // AuditStatus in capitals.
        image("f-caps", Some("BLOCKED"), cover_block("terrorism", "bloody")),
        // A block found only in ImageResult[].Suggestion, spelled oddly.
        image(
            "g-part-block",
            None,
            json!({"Suggestion": "pass", "ImageResult": [{"Type": "cover",
            "Suggestion": " BLOCK ", "Label": "porn"}]}),
        ),
        // A value nobody documents.
        image("h-pending", Some("Pending"), pass()),
        // A machine block that names no label at all.
        image("i-bare-block", None, json!({"Suggestion": "block"})),
        image("j-normal", Some("Normal"), pass()),
    ])
}

fn rows_by_id(wd: &Workdir, out: &str) -> HashMap<String, HashMap<String, String>> {
    csv_rows(&wd.read(&format!("{out}/images.csv"))).into_iter().map(|r| (r["image_id"].clone(), r)).collect()
}

/// `(verdict, verdict_source, audit_status, reasons, disagreement)` of a row.
fn verdict_of(rows: &HashMap<String, HashMap<String, String>>, id: &str) -> [String; 5] {
    let r = &rows[id];
    ["verdict", "verdict_source", "audit_status", "reasons", "disagreement"].map(|c| r[c].clone())
}

fn strs(v: [&str; 5]) -> [String; 5] {
    v.map(str::to_owned)
}

#[test]
fn the_account_s_decision_and_the_machine_s_are_two_columns_and_every_reason_is_read() {
    let cat = account();
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server)
        .qps(1000)
        .args(["--audit-source", "media-audit", "--format", "csv,json,html,xlsx"])
        .run();
    out.expect_code(0);
    let rows = rows_by_id(&wd, "out");
    let want = [
        ("a-cleared", ["Normal", "audit_status", "Normal", "image-cover:porn", "cleared_by_account"]),
        ("b-blocked-by-hand", ["Blocked", "audit_status", "Blocked", "account:blocked", "blocked_by_account"]),
        ("c-title", ["Blocked", "moderation", "", "text-title:ad", ""]),
        ("d-review", ["Review", "moderation", "", "image-cover:sexy", ""]),
        ("e-unreviewed", ["Unknown", "none", "", "", ""]),
        ("f-caps", ["Blocked", "audit_status", "BLOCKED", "image-cover:bloody", ""]),
        ("g-part-block", ["Blocked", "moderation", "", "image-cover:porn", ""]),
        ("h-pending", ["Normal", "moderation", "Pending", "", ""]),
        ("i-bare-block", ["Blocked", "moderation", "", "unspecified", ""]),
        ("j-normal", ["Normal", "audit_status", "Normal", "", ""]),
    ];
    for (id, w) in want {
        assert_eq!(verdict_of(&rows, id), strs(w), "{id}\n{}", out.describe());
    }
    assert_eq!(rows["c-title"]["abnormal_modules"], "text-title");
    assert_eq!(rows["g-part-block"]["moderation_suggestion"], "pass", "the raw top-level Suggestion is kept");
    assert_eq!(rows["h-pending"]["unrecognised"], "AuditStatus=Pending");

    let s = wd.json("out/summary.json");
    assert_eq!(s["by_verdict"], json!({"Blocked": 5, "Review": 1, "Normal": 3, "Unknown": 1}), "{s:#}");
    assert_eq!(s["by_audit_status"]["BLOCKED"], 1, "the raw field, as answered");
    assert_eq!(s["disagreements"], json!({"blocked_by_account": 1, "cleared_by_account": 1}));
    assert_eq!(s["unrecognised_values"], json!({"AuditStatus=Pending": 1}));
    assert_eq!(s["unspecified_reasons"], 1);
    assert_eq!(s["by_reason"]["text-title:ad"], 1);
    assert_eq!(s["verdict_coverage"]["with_verdict"], 9);
    let blocked_in_news =
        s["by_category"].as_array().unwrap().iter().find(|c| c["cate_id"] == 7).unwrap()["blocked"].clone();
    assert_eq!(blocked_in_news, 5, "categories count the verdict");
    assert!(out.stderr.contains("AuditStatus=Pending (1)"), "the run says so once\n{}", out.describe());
    assert_eq!(out.stderr.matches("does not recognise").count(), 1, "{}", out.describe());

    let jsonl: Vec<Value> = wd.read("out/images.jsonl").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let caps = jsonl.iter().find(|v| v["image_id"] == "f-caps").unwrap();
    assert_eq!((caps["audit_status"].as_str(), caps["verdict"].as_str()), (Some("BLOCKED"), Some("Blocked")));

    let page = wd.read("out/summary.html");
    assert!(page.contains("data-k=\"disagreements\">2<"), "the page counts the disagreements");
    assert!(page.contains("data-k=\"disagreement:a-cleared\">a person cleared what the machine blocked"));
    assert!(page.contains("data-k=\"disagreement:b-blocked-by-hand\">a person blocked what the machine passed"));
    assert!(page.contains("<td class=\"labels\">text-title:ad</td>"), "the title block says why on the page");
    assert!(page.contains("data-k=\"verdict:Review\">1<"));

    let book = wd.path().join("out/audit.xlsx");
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&book).unwrap();
    use calamine::Reader;
    let sheet = book.worksheet_range("All images").unwrap();
    let header: Vec<String> = sheet.rows().next().unwrap().iter().map(|c| c.to_string()).collect();
    for column in ["verdict", "verdict_source", "audit_status", "reasons", "disagreement"] {
        assert!(header.iter().any(|h| h == column), "the workbook has {column}: {header:?}");
    }
}

#[test]
fn both_asks_the_machine_only_where_the_account_has_not_cleared_the_image() {
    let cat = account();
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server).qps(1000).args(["--audit-source", "both"]).run();
    out.expect_code(0);
    let rows = rows_by_id(&wd, "out");
    // Normal by the account: not asked, so no disagreement can be seen.
    assert_eq!(verdict_of(&rows, "a-cleared"), strs(["Normal", "audit_status", "Normal", "", ""]));
    assert_eq!(rows["a-cleared"]["moderation_suggestion"], "");
    assert_eq!(verdict_of(&rows, "b-blocked-by-hand")[4], "blocked_by_account");
    assert_eq!(verdict_of(&rows, "c-title"), strs(["Blocked", "moderation", "", "text-title:ad", ""]));
    let asked = server.stats().by_action.get("GetMediaAuditResult OK").copied().unwrap_or(0);
    assert_eq!(asked, 8, "every image but the two the account called Normal\n{:?}", server.stats().by_action);
}

#[test]
fn audit_status_in_any_case_is_blocked_and_diff_sees_it() {
    let values = |status: [&str; 3]| {
        TestCatalog::from_values(
            ["x1", "x2", "x3"].iter().zip(status).map(|(id, a)| image(id, Some(a), pass())).collect(),
        )
    };
    let wd = Workdir::new();
    let before = values(["Normal", "Normal", "Normal"]);
    wd.write("ids.csv", id_file(&before.ids()));
    let server = SimServer::start(before.config());
    Audit::new(&wd, &server).out("night1").qps(1000).run().expect_code(0);
    let after = values(["BLOCKED", "blocked", " Blocked "]);
    let server = SimServer::start(after.config());
    let out = Audit::new(&wd, &server)
        .out("night2")
        .qps(1000)
        .args(["--compare-with", "night1", "--fail-on", "newly_blocked"])
        .run();
    out.expect_code(8);
    assert!(out.stderr.contains("3 blocked"), "{}", out.describe());
    let s = wd.json("night2/summary.json");
    assert_eq!(s["by_verdict"]["Blocked"], 3);
    assert_eq!(s["changes"]["counts"]["newly_blocked"], 3);
    let diff = wd.run(&["diff", "night1", "night2", "--json"], &[], None);
    assert!(diff.stdout.contains("newly_blocked"), "{}", diff.describe());
}

#[test]
fn nothing_found_is_no_image_found_not_a_hundred_per_cent() {
    let cat = TestCatalog::generate(5, 61);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    // Ids of another region: every one NoSuchResource.
    let ids: Vec<String> = (0..12).map(|i| format!("{i:032x}")).collect();
    wd.write("ids.csv", id_file(&ids));
    let out = Audit::new(&wd, &server).qps(1000).args(["--metrics-file", "metrics.prom"]).run();
    out.expect_code(0);
    assert!(out.stderr.contains("verdict on no image found"), "{}", out.describe());
    assert!(!out.stderr.contains("100.0 %"), "{}", out.describe());
    let s = wd.json("out/summary.json");
    assert_eq!(s["verdict_coverage"]["share"], Value::Null);
    assert_eq!(s["audit_status_coverage"]["share"], Value::Null);
    assert!(wd.read("out/summary.html").contains("no image found"));
    let metrics = wd.read("metrics.prom");
    assert!(!metrics.contains("audit_status_share") && !metrics.contains("verdict_share"), "{metrics}");
}

#[test]
fn exit_9_advice_fits_the_mode_the_run_was_in() {
    // Nothing reviewed and no AuditStatus: no verdict in any mode.
    let cat = TestCatalog::from_values((0..30).map(|i| image(&format!("u{i:02}"), None, json!({}))).collect());
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server).out("media").qps(1000).args(["--audit-source", "media-audit"]).run();
    out.expect_code(9);
    assert!(!out.stderr.contains("run again with --audit-source media-audit"), "{}", out.describe());
    assert!(out.stderr.contains("GetMediaAuditResult gave no verdict"), "{}", out.describe());
    let out = Audit::new(&wd, &server).out("image").qps(1000).run();
    out.expect_code(9);
    assert!(out.stderr.contains("--audit-source both"), "{}", out.describe());
}

// ---------------------------------------------------------------------------
// Moderation the account cannot have
// ---------------------------------------------------------------------------

#[test]
fn moderation_refused_in_both_mode_does_not_lose_the_audit() {
    let cat = TestCatalog::generate(150, 63);
    let mut config = cat.config();
    config.media_audit_refused = Some("InvalidApi.NotFound".into());
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server).qps(1000).concurrency(4).args(["--audit-source", "both"]).run();
    // Most images carry AuditStatus: the verdict share holds.
    out.expect_code(0);
    let rows = csv_rows(&wd.read("out/images.csv"));
    let no_status: Vec<_> = rows.iter().filter(|r| r["outcome"] == "found" && r["audit_status"].is_empty()).collect();
    assert!(!no_status.is_empty());
    for r in &no_status {
        assert_eq!((r["verdict"].as_str(), r["verdict_source"].as_str()), ("Unknown", "none"), "{r:?}");
        assert_eq!(r["reasons"], "moderation-unavailable:InvalidApi.NotFound");
    }
    let blocked: Vec<_> = rows.iter().filter(|r| r["audit_status"] == "Blocked").collect();
    assert!(blocked
        .iter()
        .all(|r| r["verdict"] == "Blocked" && r["reasons"] == "moderation-unavailable:InvalidApi.NotFound"));
    assert_eq!(out.stderr.matches("GetMediaAuditResult is refused for this account").count(), 1, "{}", out.describe());
    assert!(out.stderr.contains("Singapore"), "{}", out.describe());
    // Asked until the first refusal came back, then no more.
    let asked = server.stats().by_action.get("GetMediaAuditResult InvalidApi.NotFound").copied().unwrap_or(0);
    assert!((1..=4).contains(&asked), "{asked} calls after the API was refused");
}

#[test]
fn moderation_refused_below_the_verdict_floor_is_exit_9() {
    let cat = TestCatalog::generate(120, 64);
    let mut config = cat.config();
    config.media_audit_refused = Some("Forbidden.RAM".into());
    config.omit_audit_status = true;
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server).qps(1000).args(["--audit-source", "both"]).run();
    out.expect_code(9);
    assert!(out.stderr.contains("refused for this account"), "{}", out.describe());
    assert!(!out.stderr.contains("run again with --audit-source both"), "advice fits the mode\n{}", out.describe());
    wd.run(&["verify", "out"], &[], None).expect_code(0);
}

#[test]
fn moderation_refused_in_media_audit_mode_stops_and_names_the_region() {
    let cat = TestCatalog::generate(40, 65);
    let mut config = cat.config();
    config.media_audit_refused = Some("InvalidApi.NotFound".into());
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out =
        Audit::new(&wd, &server).qps(1000).args(["--audit-source", "media-audit", "--region", "cn-beijing"]).run();
    out.expect_code(4);
    assert!(out.stderr.contains("cn-beijing"), "names the region\n{}", out.describe());
    assert!(out.stderr.contains("supported only in the Singapore region"), "{}", out.describe());
}

// ---------------------------------------------------------------------------
// Old runs still read
// ---------------------------------------------------------------------------

/// A run directory written before the verdict had its own column (the
/// `audit_status` column then held it, filled from moderation where the
/// answer lacked it), by the tool as it was: 40 generated images (seed 71),
/// two unknown ids, two ids failed by the simulator's 500s, `--audit-source
/// both`. Its input is `run-before-verdict.ids.csv`.
const OLD_RUN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/run-before-verdict");

fn copy_old_run(wd: &Workdir, to: &str) {
    std::fs::create_dir_all(wd.path().join(to)).unwrap();
    for entry in std::fs::read_dir(OLD_RUN).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), wd.path().join(to).join(entry.file_name())).unwrap();
    }
    std::fs::copy(format!("{OLD_RUN}.ids.csv"), wd.path().join("ids.csv")).unwrap();
}

#[test]
fn a_run_written_before_the_verdict_column_is_compared_diffed_retried_and_trended() {
    let wd = Workdir::new();
    copy_old_run(&wd, "runs/night1");
    wd.run(&["verify", "runs/night1"], &[], None).expect_code(0);
    let old_rows = rows_by_id(&wd, "runs/night1");
    let old_blocked: Vec<&String> =
        old_rows.values().filter(|r| r["audit_status"] == "Blocked").map(|r| &r["image_id"]).collect();
    assert_eq!(old_blocked.len(), 2, "the fixture holds two blocked images");

    // Tonight one image the old run found Normal is Blocked by the account.
    let mut values = vod_image_audit::sim::catalog::generate(40, 71, "cn-shanghai");
    let turned = values
        .iter_mut()
        .find(|v| {
            v["AuditStatus"] == "Normal"
                && old_rows.get(v["ImageId"].as_str().unwrap()).is_some_and(|r| r["outcome"] == "found")
        })
        .unwrap();
    turned["AuditStatus"] = json!("Blocked");
    let turned_id = turned["ImageId"].as_str().unwrap().to_owned();
    let cat = TestCatalog::from_values(values);
    let server = SimServer::start(cat.config());

    let out = Audit::new(&wd, &server)
        .out("runs/night2")
        .qps(1000)
        .args(["--audit-source", "both", "--compare-with", "runs/night1", "--format", "csv,json,html"])
        .run();
    out.expect_code(0);
    let s = wd.json("runs/night2/summary.json");
    assert_eq!(s["changes"]["counts"]["newly_blocked"], 1, "{:#}\n{}", s["changes"], out.describe());
    assert_eq!(s["changes"]["counts"]["unblocked"], 0, "the old audit_status column stands for the verdict");
    let changes = csv_rows(&wd.read("runs/night2/changes.csv"));
    let newly: Vec<_> = changes.iter().filter(|c| c["change"] == "newly_blocked").collect();
    assert_eq!((newly[0]["image_id"].as_str(), newly[0]["before"].as_str()), (turned_id.as_str(), "Normal"));
    // The trend reads the old run's summary: blocked 2, then 3.
    let page = wd.read("runs/night2/summary.html");
    assert!(page.contains("Trend over the last 2 runs"), "the old run is on the trend");

    let diff = wd.run(&["diff", "runs/night1", "runs/night2", "--json"], &[], None);
    let v: Value = serde_json::from_str(diff.stdout.lines().last().unwrap_or("{}")).unwrap_or(Value::Null);
    assert_eq!(
        (v["counts"]["newly_blocked"].as_u64(), v["counts"]["unblocked"].as_u64()),
        (Some(1), Some(0)),
        "{}",
        diff.describe()
    );

    // --retry-failed takes the old answers as they were and asks only the two failed ids.
    let before = server.stats().requests;
    let out = Audit::new(&wd, &server).out("runs/retry").qps(1000).args(["--retry-failed", "runs/night1"]).run();
    out.expect_code(0);
    assert_eq!(server.stats().requests - before, 2, "only the failed ids are asked\n{}", out.describe());
    let s = wd.json("runs/retry/summary.json");
    let failed_now_blocked = old_rows
        .values()
        .filter(|r| r["outcome"] == "failed" && cat.by_id[&r["image_id"]].audit_status.as_deref() == Some("Blocked"))
        .count();
    assert_eq!(s["by_verdict"]["Blocked"], 2 + failed_now_blocked, "the old blocked rows count as blocked\n{s:#}");
    assert_eq!(s["totals"]["failed"], 0);
}
