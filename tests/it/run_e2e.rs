//! The real binary against the in-process simulator: the audit run, its
//! reports, its exit codes, `check`, and what must never leak.

use std::collections::{BTreeMap, HashMap};

use crate::common::{answered_before_revocation, csv_rows, id_file, Audit, SimServer, TestCatalog, Workdir};
use serde_json::Value;
use vod_image_audit::api::model::ImageInfo;
use vod_image_audit::sim::{self, Faults, SimKey};

/// Builds an input CSV: the given ids, `dups` of them repeated, and a few
/// rows that must be rejected. Returns the text and the rejected line numbers.
fn input_csv(ids: &[String], dups: usize) -> (String, Vec<u64>) {
    let mut text = String::from("title,ImageId\r\n");
    let mut line = 1u64;
    let mut rejected = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        line += 1;
        text.push_str(&format!("\"row {i}, quoted\",{id}\r\n"));
        if i == 7 {
            line += 1;
            rejected.push(line);
            text.push_str("bad,has space\r\n");
            line += 1;
            text.push_str("\r\n"); // blank: skipped, not counted
            line += 1;
            rejected.push(line);
            text.push_str("bad,\"semi;colon\"\r\n");
        }
    }
    for id in ids.iter().take(dups) {
        text.push_str(&format!("dup,{id}\r\n"));
    }
    (text, rejected)
}

/// A text value as images.csv holds it: `--csv-safe` (the default) puts a
/// `'` before a value a spreadsheet would run as a formula.
fn opt(s: &Option<String>) -> String {
    let v = s.clone().unwrap_or_default();
    match v.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{v}"),
        _ => v,
    }
}

/// Every row of images.csv against the catalog, field by field.
fn check_images_csv(text: &str, catalog: &HashMap<String, ImageInfo>, missing: &[String]) -> usize {
    let rows = csv_rows(text);
    let mut prev = String::new();
    for row in &rows {
        let id = &row["image_id"];
        assert!(*id > prev, "images.csv is sorted by image_id and has no duplicates ({prev} then {id})");
        prev = id.clone();
        match catalog.get(id) {
            Some(info) => {
                assert_eq!(row["outcome"], "found", "{id}");
                assert_eq!(row["audit_status"], opt(&info.audit_status), "{id}");
                assert_eq!(row["status"], opt(&info.status), "{id}");
                assert_eq!(row["cate_id"], info.cate_id.map(|c| c.to_string()).unwrap_or_default(), "{id}");
                assert_eq!(row["cate_name"], opt(&info.cate_name), "{id}");
                assert_eq!(row["title"], opt(&info.title), "title of {id} round-trips");
                assert_eq!(row["description"], opt(&info.description), "{id}");
                assert_eq!(row["creation_time"], opt(&info.creation_time), "{id}");
                assert_eq!(row["url"], opt(&info.url), "{id}");
                let m = info.mezzanine.clone().unwrap_or_default();
                assert_eq!(row["file_size"], opt(&m.file_size), "{id}");
                assert_eq!(row["width"], m.width.map(|w| w.to_string()).unwrap_or_default(), "{id}");
                assert_eq!(row["error_code"], "", "{id}");
                assert!(!row["request_id"].is_empty(), "{id} has a RequestId");
            }
            None => {
                assert!(missing.contains(id), "{id} is neither in the catalog nor a known miss");
                assert_eq!(row["outcome"], "missing", "{id}");
            }
        }
    }
    rows.len()
}

#[test]
fn audit_with_quota_and_faults_accounts_for_every_id() {
    let cat = TestCatalog::generate(400, 11);
    let mut config = cat.config();
    config.qps = Some(150);
    config.ratelimit_hints = true;
    config.seed = 5;
    config.faults = Faults { internal_error: 0.05, unavailable: 0.05, drop: 0.02, ..Faults::default() };
    let server = SimServer::start(config);

    let mut ids = cat.ids();
    ids.truncate(350);
    let missing: Vec<String> = (0..40).map(|i| format!("{i:032x}")).collect();
    ids.extend(missing.iter().cloned());
    let (text, rejected_lines) = input_csv(&ids, 25);
    let wd = Workdir::new();
    wd.write("ids.csv", &text);
    let out = Audit::new(&wd, &server).qps(200).args(["--max-attempts", "8"]).run();
    out.expect_code(0);

    // Totals, against the catalog, computed independently here.
    let summary = wd.json("out/summary.json");
    let t = &summary["totals"];
    assert_eq!(t["input_rows"], 350 + 40 + 25 + 2, "{}", out.describe());
    assert_eq!(t["unique_ids"], 390);
    assert_eq!(t["duplicates"], 25);
    assert_eq!(t["invalid"], 2);
    assert_eq!(t["found"], 350);
    assert_eq!(t["missing"], 40);
    assert_eq!(t["failed"], 0);
    assert_eq!(summary["complete"], true);
    let found: Vec<&ImageInfo> = ids.iter().filter_map(|id| cat.by_id.get(id)).collect();
    let mut audit: BTreeMap<String, u64> = BTreeMap::new();
    let mut status: BTreeMap<String, u64> = BTreeMap::new();
    let mut cats: BTreeMap<Option<i64>, (u64, u64)> = BTreeMap::new();
    for info in &found {
        *audit.entry(info.audit_status.clone().unwrap_or("Unknown".into())).or_default() += 1;
        *status.entry(info.status.clone().unwrap_or("Unknown".into())).or_default() += 1;
        let c = cats.entry(info.cate_id).or_default();
        c.0 += 1;
        c.1 += u64::from(info.audit_status.as_deref() == Some("Blocked"));
    }
    assert_eq!(summary["by_audit_status"], serde_json::to_value(&audit).unwrap());
    assert_eq!(summary["by_status"], serde_json::to_value(&status).unwrap());
    let by_cat: Vec<(Option<i64>, (u64, u64))> = summary["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["cate_id"].as_i64(), (c["images"].as_u64().unwrap(), c["blocked"].as_u64().unwrap())))
        .collect();
    assert_eq!(by_cat, cats.into_iter().collect::<Vec<_>>());
    assert!(summary["failures_by_code"].as_object().unwrap().is_empty());

    // Every row of images.csv, text included.
    let by_id: HashMap<String, ImageInfo> = cat.by_id.clone();
    assert_eq!(check_images_csv(&wd.read("out/images.csv"), &by_id, &missing), 390);
    assert_eq!(wd.read("out/images.jsonl").lines().count(), 390);

    // Rejected rows, with their lines.
    let rejected = csv_rows(&wd.read("out/rejected.csv"));
    let lines: Vec<u64> = rejected.iter().map(|r| r["line"].parse().unwrap()).collect();
    assert_eq!(lines, rejected_lines);
    assert_eq!(rejected[0]["value"], "has space");

    // Each id answered exactly once; faults really happened; nothing else was called.
    let stats = server.stats();
    for id in &ids {
        assert_eq!(stats.answers_by_image.get(id), Some(&1), "{id} answered once");
    }
    assert_eq!(stats.answers_by_image.len(), 390, "no id outside the input was called");
    for code in ["InternalError", "ServiceUnavailable", "Dropped", "Throttling.User"] {
        assert!(stats.by_code.get(code).copied().unwrap_or(0) > 0, "no {code} seen: {:?}", stats.by_code);
    }
    assert!(!stats.calls_by_image.contains_key("has space"));

    let manifest = wd.json("out/manifest.json");
    assert_eq!(manifest["complete"], true);
    assert_eq!(manifest["exit_code"], 0);
    assert_eq!(manifest["input"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(manifest["endpoint"], server.url.as_str());
    assert_eq!(manifest["settings"]["qps"], 200);
}

#[test]
fn heavily_throttled_run_still_finishes_with_zero_failed() {
    let cat = TestCatalog::generate(120, 3);
    let mut config = cat.config();
    config.qps = Some(40);
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", cat.ids().join("\n"));
    let out = Audit::new(&wd, &server).qps(400).concurrency(16).run();
    out.expect_code(0);
    let summary = wd.json("out/summary.json");
    assert_eq!(summary["totals"]["found"], 120);
    assert_eq!(summary["totals"]["failed"], 0);
    let stats = server.stats();
    assert!(stats.by_code["Throttling.User"] > 0, "the quota never bit: {:?}", stats.by_code);
    assert!(stats.answers_by_image.values().all(|n| *n == 1));
}

#[test]
fn wrong_secret_stops_the_run_before_any_vod_call_and_writes_nothing() {
    let cat = TestCatalog::generate(300, 4);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", cat.ids().join("\n"));
    let key =
        [("ALIBABA_CLOUD_ACCESS_KEY_ID", sim::DEFAULT_KEY_ID), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret")];
    let out = Audit::new(&wd, &server).qps(100).concurrency(4).credentials(&key).run();
    // GetCallerIdentity, signed with the same key, is refused first: nothing
    // to resume, so exit 2 and no run directory.
    out.expect_code(2);
    assert!(out.stderr.contains("SignatureDoesNotMatch"), "{}", out.describe());
    assert!(
        out.stderr.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        "the advice names what to check\n{}",
        out.describe()
    );
    assert!(!out.stderr.contains("wrong-secret"), "{}", out.describe());
    let stats = server.stats();
    assert!(stats.requests <= 1, "a broken key was called {} times", stats.requests);
    assert!(!wd.path().join("out").exists(), "{}", out.describe());
}

#[test]
fn clock_skew_is_explained_in_minutes() {
    let cat = TestCatalog::generate(20, 4);
    let mut config = cat.config();
    config.clock_offset_secs = -40 * 60;
    let server = SimServer::start(config);
    let wd = Workdir::new();
    let id = cat.ids()[0].clone();
    let out = Audit::check(&wd, &server, &id).run();
    out.expect_code(4);
    assert!(out.stderr.contains("InvalidTimeStamp.Expired"), "{}", out.describe());
    assert!(out.stderr.contains("the clock is 40 minutes ahead of the server's"), "{}", out.describe());
}

#[test]
fn key_revoked_mid_run_stops_quickly_and_keeps_what_was_found() {
    let cat = TestCatalog::generate(200, 8);
    let mut config = cat.config();
    config.revoke_key_after = Some(50);
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", cat.ids().join("\n"));
    let out = Audit::new(&wd, &server).qps(200).concurrency(4).run();
    out.expect_code(4);
    assert!(out.stderr.contains("InvalidAccessKeyId.NotFound"), "{}", out.describe());
    let summary = wd.json("out/summary.json");
    // 50 answers, up to 3 more that raced the simulator's count (see
    // answered_before_revocation), and every one of them is kept.
    let answered = server.stats().by_code.get("OK").copied().unwrap_or(0);
    assert!(answered_before_revocation(50, 4).contains(&answered), "{answered} answers before the revocation");
    assert_eq!(summary["totals"]["found"], answered, "the answers before the revocation are kept");
    assert_eq!(summary["totals"]["unique_ids"], 200);
    assert!(server.stats().requests <= 50 + 8, "kept calling a revoked key: {}", server.stats().requests);
}

#[test]
fn check_reports_found_missing_and_a_wrong_secret() {
    let cat = TestCatalog::generate(5, 9);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let id = cat.ids()[2].clone();
    let out = Audit::check(&wd, &server, &id).run();
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "found");
    assert_eq!(
        v["image_info"],
        cat.values[2].clone().as_object().map(|_| { serde_json::to_value(cat.by_id[&id].clone()).unwrap() }).unwrap()
    );

    let out = Audit::check(&wd, &server, "0123456789abcdef").run();
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "missing");

    let key = [("ALIBABA_CLOUD_ACCESS_KEY_ID", sim::DEFAULT_KEY_ID), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "nope")];
    let out = Audit::check(&wd, &server, &id).credentials(&key).run();
    out.expect_code(4);
    assert!(
        out.stderr.contains("SignatureDoesNotMatch") && out.stderr.contains("does not match the AccessKey ID"),
        "{}",
        out.describe()
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "SignatureDoesNotMatch");
}

#[test]
fn sts_profile_from_the_cli_config_file_works_and_never_leaks() {
    let cat = TestCatalog::generate(30, 12);
    let mut config = cat.config();
    let secret = "PROFILE-SECRET-b7c1e";
    let token = "STS-TOKEN-9f2a+/=";
    config.keys = vec![SimKey { id: "STS.KEY".into(), secret: secret.into(), sts_token: Some(token.into()) }];
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write(
        "home/.aliyun/config.json",
        serde_json::json!({"current": "audit", "profiles": [
            {"name": "audit", "mode": "StsToken", "access_key_id": "STS.KEY", "access_key_secret": secret,
             "sts_token": token, "region_id": "cn-beijing"}]})
        .to_string(),
    );
    wd.write("ids.csv", cat.ids().join("\n"));
    // The key comes from the profile file, not the environment.
    let out = Audit::new(&wd, &server).credentials(&[]).env("RUST_LOG", "trace").run();
    out.expect_code(0);
    assert_eq!(wd.json("out/summary.json")["totals"]["found"], 30);
    assert_eq!(wd.json("out/manifest.json")["region"], "cn-beijing");
    for leak in [secret, token, "STS-TOKEN"] {
        assert!(!out.stdout.contains(leak) && !out.stderr.contains(leak), "{leak} leaked to the output");
        for f in ["images.csv", "images.jsonl", "summary.json", "summary.csv", "rejected.csv", "manifest.json"] {
            assert!(!wd.read(&format!("out/{f}")).contains(leak), "{leak} leaked into {f}");
        }
    }
    // Without the token the same key is refused with a fatal error.
    wd.write(
        "home/.aliyun/config.json",
        serde_json::json!({"current": "audit", "profiles": [
            {"name": "audit", "mode": "AK", "access_key_id": "STS.KEY", "access_key_secret": secret}]})
        .to_string(),
    );
    let out = Audit::new(&wd, &server).out("out2").credentials(&[]).run();
    // Refused by GetCallerIdentity before the run directory exists.
    out.expect_code(2);
    assert!(out.stderr.contains("MissingSecurityToken"), "{}", out.describe());
    assert!(!wd.path().join("out2").exists(), "{}", out.describe());
}

#[test]
fn input_and_usage_errors_exit_2_before_any_call() {
    let cat = TestCatalog::generate(5, 1);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("noid.csv", "a,b\n1,2\n");
    wd.write("empty.csv", "");
    wd.write("garbage.bin", [0u8, 159, 146, 150, 0, 1, 2, 3]);
    // No --out: the default output directory.
    let run = |input: &str| Audit::new(&wd, &server).input(input).no_out();
    let cases: Vec<(Audit, &str)> = vec![
        (run("noid.csv"), "noid.csv: line 1: no id column"),
        (run("empty.csv"), "empty.csv: no data rows"),
        (run("garbage.bin"), "not a CSV text file"),
        (run("nope.csv"), "nope.csv: cannot read"),
        (run("noid.csv").args(["--id-column", "c"]), "--id-column \"c\" is not in the header"),
        (run("-").qps(0).args(["--rate", "adaptive"]), "--rate adaptive starts from a --qps"),
        (run("-").args(["--qps", "fast"]), "\"fast\" is not a number of calls per second (or 0 / unlimited)"),
        (run("-").args(["--qps", "-1"]), "unexpected argument '-1'"),
        (run("-").args(["--timeout", "soon"]), "--timeout \"soon\""),
        (run("-").credentials(&[]), "no credentials"),
        (run("-").credentials(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "x")]), "ALIBABA_CLOUD_ACCESS_KEY_SECRET is not"),
        (run("-").endpoint("http://10.1.2.3/"), "clear text"),
        (Audit::check(&wd, &server, "a b"), "contains a space"),
    ];
    for (audit, want) in cases {
        let out = audit.stdin(b"ImageId\nabc\n").run();
        out.expect_code(2);
        assert!(out.stderr.contains(want), "expected {want:?}\n{}", out.describe());
        assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    }
    assert_eq!(server.stats().requests, 0, "an input or usage error made calls");
}

/// `--qps 0` and `--qps unlimited`: no client-side limit; the manifest
/// records 0, and the dry run says the duration is unknown.
#[test]
fn qps_zero_or_unlimited_means_no_client_side_limit() {
    let cat = TestCatalog::generate(40, 17);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    for (i, value) in ["0", "unlimited", "UNLIMITED"].into_iter().enumerate() {
        let out_dir = format!("o{i}");
        let out = Audit::new(&wd, &server).out(&out_dir).args(["--qps", value]).run();
        out.expect_code(0);
        assert!(out.stderr.contains("no client-side limit"), "{}", out.describe());
        let m = wd.json(&format!("{out_dir}/manifest.json"));
        assert_eq!(m["settings"]["qps"], 0, "{m}");
        assert_eq!(m["ledger"]["found"], 40, "{m}");
    }
    let plan = Audit::new(&wd, &server).out("plan").args(["--qps", "0", "--dry-run"]).run();
    plan.expect_code(0);
    assert!(plan.stdout.contains("estimated duration: unknown: no client-side limit"), "{}", plan.describe());
}

#[test]
fn stdin_input_format_selection_and_quiet() {
    let cat = TestCatalog::generate(12, 6);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let input = format!("image_id\n{}\n", cat.ids().join("\n"));
    let out = Audit::new(&wd, &server).input("-").out("o").args(["--format", "csv", "--quiet"]).stdin(input).run();
    out.expect_code(0);
    assert_eq!(out.stderr, "", "--quiet prints nothing on success");
    assert_eq!(out.stdout, "");
    let mut files: Vec<String> = std::fs::read_dir(wd.path().join("o"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["images.csv", "manifest.json", "manifest.sha256", "rejected.csv", "summary.csv"],
        "the journal goes once complete"
    );
    assert_eq!(csv_rows(&wd.read("o/images.csv")).len(), 12);
}

#[test]
fn failed_ids_give_exit_3_with_their_last_error() {
    let cat = TestCatalog::generate(40, 21);
    let mut config = cat.config();
    config.faults = Faults { internal_error: 1.0, ..Faults::default() };
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", cat.ids()[..5].join("\n"));
    let out = Audit::new(&wd, &server).out("o").args(["--max-attempts", "2"]).qps(200).run();
    out.expect_code(3);
    let rows = csv_rows(&wd.read("o/images.csv"));
    for r in &rows {
        assert_eq!(r["outcome"], "failed");
        assert_eq!(r["error_code"], "InternalError");
        assert_eq!(r["http_status"], "500");
        assert_eq!(r["attempts"], "2");
        assert!(!r["request_id"].is_empty());
    }
    assert_eq!(wd.json("o/summary.json")["failures_by_code"]["InternalError"], 5);
    assert_eq!(server.stats().requests, 10, "exactly max-attempts calls per id");
}

#[test]
fn with_down_after_zero_a_dead_service_stops_the_run_at_fifty_failures_in_a_row() {
    let cat = TestCatalog::generate(300, 41);
    let mut config = cat.config();
    config.faults = Faults { internal_error: 1.0, ..Faults::default() };
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", cat.ids().join("\n"));
    let out = Audit::new(&wd, &server).out("o").qps(500).concurrency(8).args(["--down-after", "0s"]).run();
    out.expect_code(4);
    assert!(out.stderr.contains("the service looks down: 50 calls in a row failed"), "{}", out.describe());
    let calls = server.stats().requests;
    assert!((50..=50 + 8).contains(&calls), "{calls} calls to a dead service");
    let summary = wd.json("o/summary.json");
    assert_eq!(summary["complete"], false);
    assert_eq!(summary["totals"]["unique_ids"], 300);
}

/// The columns that depend on how an id was asked, not on what the answer was.
fn without_call_details(text: &str) -> Vec<HashMap<String, String>> {
    let mut rows = csv_rows(text);
    for r in &mut rows {
        r.remove("attempts");
        r.remove("request_id");
    }
    rows
}

#[test]
fn batch_mode_gives_the_same_reports_as_single_calls() {
    let cat = TestCatalog::generate(130, 51);
    let mut ids = cat.ids();
    ids.extend((0..15).map(|i| format!("{i:032x}")));
    let wd = Workdir::new();
    wd.write("ids.csv", ids.join("\n"));

    let single = SimServer::start(cat.config());
    let run = |sim: &SimServer, api: &str| Audit::new(&wd, sim).out(api).qps(500).args(["--api", api]).run();
    run(&single, "single").expect_code(0);

    // Faults, batch answers that forget ids, and no AuditStatus in batch answers.
    let mut config = cat.config();
    config.faults = Faults { internal_error: 0.05, ..Faults::default() };
    config.batch_forgets = 0.1;
    config.batch_omits_audit_status = true;
    let batch = SimServer::start(config);
    let out = run(&batch, "batch");
    out.expect_code(0);

    assert_eq!(without_call_details(&wd.read("batch/images.csv")), without_call_details(&wd.read("single/images.csv")));
    let (a, b) = (wd.json("single/summary.json"), wd.json("batch/summary.json"));
    for key in ["totals", "by_audit_status", "by_status", "by_category", "ledger"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    let manifest = wd.json("batch/manifest.json");
    assert_eq!(manifest["settings"]["api"], "batch");
    assert_eq!(manifest["calls"]["batch_fallbacks"], 130, "every found image was asked again for AuditStatus");
    assert!(batch.stats().by_code["OK"] < 130 + 30, "batch calls carry 20 ids each: {:?}", batch.stats().by_code);
}

#[test]
fn batch_ids_never_accounted_for_are_reported_as_unaccounted_failures() {
    let cat = TestCatalog::generate(30, 52);
    let mut config = cat.config();
    config.batch_forgets = 1.0;
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", cat.ids().join("\n"));
    let out = Audit::new(&wd, &server).out("o").args(["--api", "batch", "--max-attempts", "3"]).run();
    out.expect_code(3);
    let rows = csv_rows(&wd.read("o/images.csv"));
    assert_eq!(rows.len(), 30);
    for r in &rows {
        assert_eq!((r["outcome"].as_str(), r["error_code"].as_str()), ("failed", "Unaccounted"), "{r:?}");
        assert_eq!(r["attempts"], "3");
    }
    assert_eq!(wd.json("o/summary.json")["failures_by_code"]["Unaccounted"], 30);
}

#[test]
fn adaptive_rate_finishes_a_throttled_run_without_failures() {
    let cat = TestCatalog::generate(150, 53);
    let mut config = cat.config();
    config.qps = Some(60);
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", cat.ids().join("\n"));
    let out = Audit::new(&wd, &server).out("o").qps(300).args(["--rate", "adaptive"]).run();
    out.expect_code(0);
    assert_eq!(wd.json("o/summary.json")["totals"]["found"], 150);
    assert_eq!(wd.json("o/manifest.json")["settings"]["rate"], "adaptive");
    let stats = server.stats();
    assert!(stats.answers_by_image.values().all(|n| *n == 1));
}
