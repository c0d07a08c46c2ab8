//! Each API at its own quota, side by side (vod-openapi.md §5: quotas are
//! per account and per API): one limiter per action, a moderation lane that
//! never holds up the lookups, and an image settled only when its last call
//! is done, so a crash between its two calls resumes with the missing one.

use std::time::Duration;

use crate::common::{id_file, poll_until, sim_env, Audit, SimServer, TestCatalog, Workdir};
use vod_image_audit::sim::QuotaAction;

#[test]
fn moderation_at_a_fifth_of_the_lookups_quota_stays_within_its_own() {
    let cat = TestCatalog::generate(400, 81);
    let mut config = cat.config();
    // The simulator's quotas: GetImageInfo 500/s, GetMediaAuditResult a fifth of it.
    config.qps = Some(500);
    config.api_qps.insert(QuotaAction::GetMediaAuditResult, Some(100));
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server)
        .qps(450)
        .args(["--api-qps", "GetMediaAuditResult=90", "--audit-source", "media-audit", "--metrics-file", "m.prom"])
        .run();
    out.expect_code(0);
    let m = wd.json("out/manifest.json");
    let calls = &m["calls"];
    let (total, throttled) = (calls["total"].as_u64().unwrap(), calls["throttled"].as_u64().unwrap());
    assert!(throttled * 100 <= total, "{throttled} of {total} calls throttled\n{}", out.describe());
    assert_eq!(
        calls["by_action"]["GetImageInfo"]["calls"].as_u64().unwrap()
            - calls["by_action"]["GetImageInfo"]["throttled"].as_u64().unwrap(),
        400
    );
    assert!(calls["by_action"]["GetMediaAuditResult"]["calls"].as_u64().unwrap() >= 400 - 400 / 10, "{calls}");
    assert_eq!(m["settings"]["api_qps"]["GetMediaAuditResult"], 90);
    assert_eq!(m["settings"]["api_qps"]["GetImageInfo"], 450);
    assert_eq!(m["settings"]["api_qps"]["SearchMedia"], 225, "the same share of its 50/s");
    assert!(out.stderr.contains("GetMediaAuditResult 4"), "the closing line gives calls per API\n{}", out.describe());
    let metrics = wd.read("m.prom");
    assert!(metrics.contains("vod_image_audit_calls{action=\"GetMediaAuditResult\"}"), "{metrics}");
    let quota = &server.stats().quota;
    assert!(quota["GetMediaAuditResult"].throttled * 100 <= quota["GetMediaAuditResult"].admitted, "{quota:?}");
}

#[test]
fn rates_default_to_the_same_share_of_each_api_s_quota_and_dry_run_says_so() {
    let cat = TestCatalog::generate(10, 82);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server).args(["--dry-run", "--qps", "20", "--audit-source", "both"]).run();
    out.expect_code(0);
    for want in ["GetImageInfo 20/s", "GetImageInfos 2/s", "GetMediaAuditResult 4/s", "SearchMedia 10/s"] {
        assert!(out.stdout.contains(want), "{want}\n{}", out.describe());
    }
    assert!(out.stdout.contains("GetMediaAuditResult at most 10 at 4/s: up to 3s"), "{}", out.describe());
    assert!(out.stdout.contains("lookups by --api: single 1s, batch 1s, mixed 1s"), "{}", out.describe());
    assert!(out.stdout.contains("estimated duration: up to 3s"), "the slowest API's\n{}", out.describe());
    let out = Audit::new(&wd, &server).args(["--dry-run", "--qps", "0"]).run();
    assert!(out.stdout.contains("GetMediaAuditResult no limit"), "--qps 0 is every API\n{}", out.describe());
    let out = Audit::new(&wd, &server).args(["--dry-run", "--api-qps", "GetMediaAuditResult"]).run();
    out.expect_code(2);
    let out = Audit::new(&wd, &server).args(["--dry-run", "--api-qps", "DeleteImage=5"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("GetMediaAuditResult"), "names the actions\n{}", out.describe());
}

#[test]
fn kill_9_between_an_image_s_two_calls_resumes_with_the_missing_call_only() {
    let cat = TestCatalog::generate(40, 83);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let args = [
        "run",
        "--input",
        "ids.csv",
        "--out",
        "out",
        "--endpoint",
        &server.url,
        "--qps",
        "1000",
        "--audit-source",
        "media-audit",
        "--concurrency",
        "2",
    ];
    // Moderation at 2/s: the lookups are all answered long before it is done.
    let mut slow = args.to_vec();
    slow.extend(["--api-qps", "GetMediaAuditResult=2"]);
    let mut run = wd.spawn("first", &slow, &sim_env());
    let waiting = || {
        std::fs::read_to_string(wd.path().join("out/journal.awaiting.jsonl"))
            .unwrap_or_default()
            .matches("\"image_id\"")
            .count()
    };
    poll_until(Duration::from_secs(20), "every lookup to be recorded and some images settled", || {
        waiting() == 40 && wd.count_lines("out/journal.jsonl") >= 2
    });
    run.kill9();
    let _ = run.wait(Duration::from_secs(10));
    let before = server.stats();
    let lookups_before: u64 = before.answers_by_image.values().sum();

    let out = wd.run(&args, &sim_env(), None);
    out.expect_code(0);
    let after = server.stats();
    let lookups_after: u64 = after.answers_by_image.values().sum();
    assert_eq!(lookups_after, lookups_before, "no image is looked up again\n{}", out.describe());
    assert!(after.answers_by_image.values().all(|n| *n == 1), "{:?}", after.answers_by_image);
    let asked = |s: &vod_image_audit::sim::Stats| s.by_action.get("GetMediaAuditResult OK").copied().unwrap_or(0);
    // Each image asked once, but for the few in flight when the run was killed.
    assert!(asked(&after) <= 40 + 2, "{} moderation calls for 40 images", asked(&after));
    let summary = wd.json("out/summary.json");
    assert_eq!(summary["totals"]["found"], 40);
    assert_eq!(
        summary["verdict_coverage"]["with_verdict"],
        summary["by_verdict"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "Unknown")
            .map(|(_, v)| v.as_u64().unwrap())
            .sum::<u64>()
    );
    assert!(!wd.path().join("out/journal.awaiting.jsonl").exists(), "gone with the journal once complete");
    let rows = crate::common::csv_rows(&wd.read("out/images.csv"));
    assert!(rows.iter().all(|r| !r["moderation_suggestion"].is_empty()), "every image got its moderation answer");
    wd.run(&["verify", "out"], &[], None).expect_code(0);
}

#[test]
fn a_throttled_moderation_lane_never_slows_the_lookups() {
    // Every GetMediaAuditResult is throttled with a long hint; the lookups
    // must all be answered anyway, at their own rate.
    let cat = TestCatalog::generate(60, 84);
    let mut config = cat.config();
    config.api_qps.insert(QuotaAction::GetMediaAuditResult, Some(1));
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let args = [
        "run",
        "--input",
        "ids.csv",
        "--out",
        "out",
        "--endpoint",
        &server.url,
        "--qps",
        "1000",
        "--audit-source",
        "media-audit",
        "--rate",
        "adaptive",
        "--api-qps",
        "GetMediaAuditResult=50",
    ];
    let run = wd.spawn("adaptive", &args, &sim_env());
    poll_until(Duration::from_secs(20), "every image to be looked up", || server.stats().answers_by_image.len() == 60);
    run.interrupt();
    let out = run.wait(Duration::from_secs(30));
    assert_eq!(out.code, 130, "{}", out.describe());
    assert!(server.stats().quota["GetMediaAuditResult"].throttled > 0, "the moderation lane was throttled");
}

#[test]
fn api_mixed_answers_every_id_once_through_both_lookups() {
    // Batch answers carry AuditStatus here (an image without it would be
    // asked again with GetImageInfo, as --api batch does).
    let values = vod_image_audit::sim::catalog::generate(600, 85, "cn-shanghai")
        .into_iter()
        .map(|mut v| {
            v.as_object_mut().unwrap().entry("AuditStatus").or_insert("Normal".into());
            v
        })
        .collect();
    let cat = TestCatalog::from_values(values);
    let mut config = cat.config();
    config.batch_omits_audit_status = false;
    config.api_qps.insert(QuotaAction::GetImageInfo, Some(200));
    config.api_qps.insert(QuotaAction::GetImageInfos, Some(20));
    let server = SimServer::start(config);
    let wd = Workdir::new();
    let mut ids = cat.ids();
    ids.extend((0..25).map(|i| format!("{i:032x}")));
    wd.write("ids.csv", id_file(&ids));
    let out = Audit::new(&wd, &server)
        .qps(180)
        .args(["--api", "mixed", "--api-qps", "GetImageInfos=18", "--concurrency", "8"])
        .run();
    out.expect_code(0);
    let stats = server.stats();
    assert_eq!(stats.answers_by_image.len(), 625, "every id answered");
    assert!(stats.answers_by_image.values().all(|n| *n == 1), "once each: {:?}", stats.answers_by_image.values().max());
    let m = wd.json("out/manifest.json");
    let by = &m["calls"]["by_action"];
    let (single, batch) = (by["GetImageInfo"]["ids"].as_u64().unwrap(), by["GetImageInfos"]["ids"].as_u64().unwrap());
    assert_eq!(single + batch, 625, "{by}");
    assert!(single > 0 && batch > 0, "both APIs used: {by}");
    assert_eq!(m["calls"]["throttled"], 0, "each at its own quota\n{}", out.describe());
    let s = wd.json("out/summary.json");
    assert_eq!((s["totals"]["found"].as_u64(), s["totals"]["missing"].as_u64()), (Some(600), Some(25)));
}
