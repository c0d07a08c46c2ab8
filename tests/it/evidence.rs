//! Evidence the tool reads back: earlier runs it compares with, retries,
//! diffs, draws on the trend or prunes are verified first; a run directory
//! belongs to one configuration; finishing a run survives a crash at any
//! step; and what a run leaves behind (journal, temporary files) never
//! outlives it.

use serde_json::Value;

use crate::common::{csv_rows, id_file, Audit, SimServer, TestCatalog, Workdir};

/// Replaces the first `n` occurrences of `from` with `to` in `dir/name`.
fn edit(wd: &Workdir, name: &str, from: &str, to: &str, n: usize) {
    let text = wd.read(name);
    assert!(text.matches(from).count() >= n, "{name} holds fewer than {n} of {from:?}");
    wd.write(name, text.replacen(from, to, n));
}

/// A catalog of `n` images with at least `blocked` of them Blocked.
fn catalog_with_blocked(n: usize, seed: u64, blocked: usize) -> TestCatalog {
    let cat = TestCatalog::generate(n, seed);
    let have = cat.values.iter().filter(|v| v["AuditStatus"] == "Blocked").count();
    assert!(have >= blocked, "seed {seed}: only {have} blocked images");
    cat
}

// ---------------------------------------------------------------------------
// Earlier runs are verified before they are read
// ---------------------------------------------------------------------------

/// Four Blocked answers edited to Normal in the earlier run's images.jsonl:
/// the retry must not launder them into a run that verifies.
#[test]
fn retry_failed_refuses_an_earlier_run_whose_images_jsonl_was_edited() {
    let cat = catalog_with_blocked(120, 271, 4);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &server).qps(1000).out("night").run().expect_code(0);
    edit(&wd, "night/images.jsonl", "\"audit_status\":\"Blocked\"", "\"audit_status\":\"Normal\"", 4);
    wd.run(&["verify", "night"], &[], None).expect_code(6);

    let calls = server.stats().requests;
    let out = Audit::new(&wd, &server).qps(1000).out("night-retry").args(["--retry-failed", "night"]).run();
    out.expect_code(6);
    assert!(out.stderr.contains("--retry-failed night"), "names the flag and the run\n{}", out.describe());
    assert!(out.stderr.contains("images.jsonl"), "names the file that does not match\n{}", out.describe());
    assert_eq!(server.stats().requests, calls, "no call\n{}", out.describe());
    assert!(!wd.path().join("night-retry").exists(), "nothing written\n{}", out.describe());

    // --retry-failed of the directory being written: refused, never read.
    let out = Audit::new(&wd, &server).qps(1000).out("night").args(["--retry-failed", "night", "--force"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("--retry-failed"), "{}", out.describe());
    assert!(wd.path().join("night/images.jsonl").exists(), "the earlier run is left alone\n{}", out.describe());
}

/// Three cells of the newer run edited: `--compare-with DIR` refuses it,
/// `auto` passes it over (one line) for the newest run that verifies, and
/// `diff` refuses it.
#[test]
fn compare_with_and_diff_refuse_an_earlier_run_that_does_not_verify_and_auto_passes_it_over() {
    let cat = catalog_with_blocked(40, 272, 3);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &server).qps(1000).out("reports/n1").run().expect_code(0);
    Audit::new(&wd, &server).qps(1000).out("reports/n2").run().expect_code(0);
    edit(&wd, "reports/n2/images.csv", ",Blocked,", ",Normal,", 3);

    let out = Audit::new(&wd, &server).qps(1000).out("reports/n3").args(["--compare-with", "reports/n2"]).run();
    out.expect_code(6);
    assert!(out.stderr.contains("reports/n2") && out.stderr.contains("images.csv"), "{}", out.describe());
    assert!(!wd.path().join("reports/n3").exists(), "nothing written\n{}", out.describe());

    let out = Audit::new(&wd, &server).qps(1000).out("reports/n3").args(["--compare-with", "auto"]).run();
    out.expect_code(0);
    let skipped: Vec<&str> = out.stderr.lines().filter(|l| l.contains("reports/n2")).collect();
    assert_eq!(skipped.len(), 1, "one line says n2 was passed over\n{}", out.describe());
    assert!(skipped[0].contains("images.csv"), "{}", out.describe());
    assert!(out.stderr.contains("comparing with reports/n1"), "{}", out.describe());
    let changes = &wd.json("reports/n3/summary.json")["changes"];
    assert_eq!(changes["counts"]["newly_blocked"], 0, "no change that never happened\n{}", out.describe());
    assert!(changes["compared_with"].as_str().unwrap().ends_with("n1"), "{changes}");

    for args in [["diff", "reports/n2", "reports/n3"], ["diff", "reports/n3", "reports/n2"]] {
        let out = wd.run(&args, &[], None);
        out.expect_code(6);
        assert!(out.stderr.contains("reports/n2") && out.stderr.contains("images.csv"), "{}", out.describe());
        assert_eq!(out.stdout, "", "no changes written\n{}", out.describe());
    }
    wd.run(&["diff", "reports/n1", "reports/n3"], &[], None).expect_code(0);
}

/// A run whose summary.json was edited is left off the trend, and the run
/// says so.
#[test]
fn the_trend_leaves_out_a_run_that_does_not_verify_and_says_so() {
    let cat = TestCatalog::generate(20, 273);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &server).qps(1000).out("reports/n1").run().expect_code(0);
    Audit::new(&wd, &server).qps(1000).out("reports/n2").run().expect_code(0);
    edit(&wd, "reports/n2/summary.json", "\"found\": 20", "\"found\": 2000", 1);

    let out = Audit::new(&wd, &server).qps(1000).out("reports/n3").run();
    out.expect_code(0);
    let page = wd.read("reports/n3/summary.html");
    assert_eq!(page.matches("<circle class=\"found\"").count(), 2, "n1 and n3 only\n{}", out.describe());
    assert!(!page.contains(">2000<") && !page.contains(" found 2000"), "the edited count is not drawn");
    let said: Vec<&str> = out.stderr.lines().filter(|l| l.contains("reports/n2")).collect();
    assert_eq!(said.len(), 1, "one line says n2 is left out\n{}", out.describe());
    assert!(said[0].contains("trend") && said[0].contains("summary.json"), "{}", out.describe());
}

/// A user's own images.csv beside a copied manifest: prune keeps the
/// directory and names it.
#[test]
fn prune_never_removes_a_directory_whose_files_do_not_match_its_manifest() {
    let cat = TestCatalog::generate(5, 274);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    for n in ["n1", "n2", "n3"] {
        Audit::new(&wd, &server).qps(1000).out(&format!("reports/{n}")).run().expect_code(0);
    }
    // n1: the user's own images.csv where the run's was.
    wd.write("reports/n1/images.csv", "image_id,note\nmine,keep me\n");
    let out = wd.run(&["prune", "reports", "--keep-last", "1"], &[], None);
    out.expect_code(0);
    assert!(wd.path().join("reports/n1/images.csv").exists(), "removed the user's file\n{}", out.describe());
    assert!(!wd.path().join("reports/n2").exists(), "a run that verifies still goes\n{}", out.describe());
    let named: Vec<&str> = out.stdout.lines().filter(|l| l.contains("reports/n1")).collect();
    assert_eq!(named.len(), 1, "{}", out.describe());
    assert!(named[0].starts_with("kept") && named[0].contains("images.csv"), "{}", out.describe());
}

// ---------------------------------------------------------------------------
// A run directory belongs to one configuration
// ---------------------------------------------------------------------------

/// A run stopped against one server (its key revoked after 30 answers),
/// then resumed with another endpoint, region, API or audit source: each
/// refused before any call, naming the old and the new value; `--force`
/// starts over.
#[test]
fn a_resume_with_another_endpoint_region_api_or_audit_source_is_refused_and_force_starts_over() {
    let cat = TestCatalog::generate(100, 275);
    let mut config = cat.config();
    config.revoke_key_after = Some(30);
    let first = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &first).qps(1000).concurrency(2).run().expect_code(4);
    let journal = wd.read("out/journal.jsonl");
    let first = first.restart(cat.config());

    let other = SimServer::start(cat.config());
    let out = Audit::new(&wd, &other).qps(1000).run();
    out.expect_code(2);
    assert!(out.stderr.contains("endpoint"), "{}", out.describe());
    assert!(out.stderr.contains(&first.url) && out.stderr.contains(&other.url), "old and new\n{}", out.describe());
    for (flags, what, old, new) in [
        (vec!["--region", "cn-beijing"], "region", "cn-shanghai", "cn-beijing"),
        (vec!["--api", "batch"], "api", "single", "batch"),
        (vec!["--audit-source", "media-audit"], "audit source", "image-info", "media-audit"),
    ] {
        let out = Audit::new(&wd, &first).qps(1000).args(flags).run();
        out.expect_code(2);
        assert!(
            out.stderr.contains(what) && out.stderr.contains(old) && out.stderr.contains(new),
            "{}",
            out.describe()
        );
        assert!(out.stderr.contains("--force"), "says what to do\n{}", out.describe());
    }
    assert_eq!(first.stats().requests + other.stats().requests, 0, "a refused resume made calls");
    assert_eq!(wd.read("out/journal.jsonl"), journal, "the journal is untouched");

    // --force starts over against the new endpoint: every id from it.
    let out = Audit::new(&wd, &other).qps(1000).arg("--force").run();
    out.expect_code(0);
    assert_eq!(other.stats().requests, 100, "{}", out.describe());
    let m = wd.json("out/manifest.json");
    assert_eq!(m["resumed_ids"], 0);
    wd.run(&["verify", "out"], &[], None).expect_code(0);

    // The same configuration still resumes.
    let mut config = cat.config();
    config.revoke_key_after = Some(30);
    let again = SimServer::start(config);
    Audit::new(&wd, &again).qps(1000).out("out2").concurrency(2).run().expect_code(4);
    let again = again.restart(cat.config());
    let out = Audit::new(&wd, &again).qps(1000).out("out2").concurrency(2).run();
    out.expect_code(0);
    assert!(out.stderr.contains("resuming"), "{}", out.describe());
}

// ---------------------------------------------------------------------------
// Finishing a run survives a crash
// ---------------------------------------------------------------------------

/// A stopped run resumed to completion, with what it left at each stage
/// kept aside: (the journal just before the finishing run removed it, the
/// manifest.sha256 of the stopped attempt).
fn finished_after_a_stop(wd: &Workdir, cat: &TestCatalog) -> (String, String, SimServer) {
    let mut config = cat.config();
    config.revoke_key_after = Some(20);
    let server = SimServer::start(config);
    Audit::new(wd, &server).qps(1000).concurrency(2).run().expect_code(4);
    let stale_sha = wd.read("out/manifest.sha256");
    let server = server.restart(cat.config());
    Audit::new(wd, &server).qps(1000).run().expect_code(0);
    // The journal as the finishing run left it before removing it: every
    // id it settled. Rebuilt from the reports (the lines are the records).
    let jsonl = wd.read("out/images.jsonl");
    let sha = wd.json("out/manifest.json")["input"]["sha256"].as_str().unwrap().to_owned();
    let header = format!("{{\"vod_image_audit_journal\":2,\"input_sha256\":\"{sha}\"}}\n");
    (format!("{header}{jsonl}"), stale_sha, server)
}

/// The state a kill between the rename of manifest.json and that of
/// manifest.sha256 leaves: the complete manifest, the stopped attempt's
/// digest, the journal. The same command finishes it.
#[test]
fn a_kill_between_manifest_json_and_manifest_sha256_is_finished_by_the_same_command() {
    let cat = TestCatalog::generate(60, 276);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let (journal, stale_sha, server) = finished_after_a_stop(&wd, &cat);
    let images = wd.read("out/images.csv");
    wd.write("out/journal.jsonl", &journal);
    wd.write("out/manifest.sha256", &stale_sha);
    wd.write("out/.audit.xlsx.0123456789abcdef.tmp", "half a workbook");
    wd.run(&["verify", "out"], &[], None).expect_code(6);

    let calls = server.stats().requests;
    let out = Audit::new(&wd, &server).qps(1000).run();
    out.expect_code(0);
    assert_eq!(server.stats().requests, calls, "no id called again\n{}", out.describe());
    wd.run(&["verify", "out"], &[], None).expect_code(0);
    assert_eq!(wd.read("out/images.csv"), images, "the same report");
    assert!(!wd.path().join("out/journal.jsonl").exists(), "{}", out.describe());
    assert!(!wd.path().join("out/.audit.xlsx.0123456789abcdef.tmp").exists(), "temporary file left");
}

/// A kill just before the journal is removed: a complete run with its
/// journal beside it. The same command removes the journal and exits as the
/// run did; prune removes it too.
#[test]
fn a_complete_run_with_its_journal_left_beside_it_is_finished_by_the_same_command_and_by_prune() {
    let cat = TestCatalog::generate(40, 277);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let (journal, _, server) = finished_after_a_stop(&wd, &cat);
    wd.write("out/journal.jsonl", &journal);
    let calls = server.stats().requests;
    let out = Audit::new(&wd, &server).qps(1000).run();
    out.expect_code(0);
    assert_eq!(server.stats().requests, calls, "{}", out.describe());
    assert!(!wd.path().join("out/journal.jsonl").exists(), "{}", out.describe());
    wd.run(&["verify", "out"], &[], None).expect_code(0);
    // Run again, it is a complete run as before.
    Audit::new(&wd, &server).qps(1000).run().expect_code(2);

    // prune: the journal of a complete run that verifies goes with it.
    std::fs::create_dir(wd.path().join("reports")).unwrap();
    std::fs::rename(wd.path().join("out"), wd.path().join("reports/n1")).unwrap();
    wd.write("reports/n1/journal.jsonl", &journal);
    Audit::new(&wd, &server).qps(1000).out("reports/n2").run().expect_code(0);
    let out = wd.run(&["prune", "reports", "--keep-last", "1"], &[], None);
    out.expect_code(0);
    assert!(!wd.path().join("reports/n1").exists(), "kept for ever\n{}", out.describe());
}

/// A run killed at each step of its report phase (every rename and unlink,
/// as the code lists them), then the same command run again: exit 0,
/// `verify` passes, the reports are those of a run never killed, no id is
/// called twice, and no journal or temporary file is left.
#[test]
fn a_crash_at_every_step_of_the_report_phase_is_finished_by_the_same_command() {
    use vod_image_audit::rundir::files::{CRASH_AT_VAR, CRASH_STEPS};
    let cat = TestCatalog::generate(20, 281);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    // Signed too: a kill between the manifest and its signature is a step.
    let key = crate::signature::key_file(&wd, "sign_key", 7);
    crate::signature::allowed_signers(&wd, "allowed_signers", &key);
    let base = SimServer::start(cat.config());
    Audit::new(&wd, &base).qps(1000).out("base").run().expect_code(0);
    let run = |server: &SimServer, out: &str| {
        Audit::new(&wd, server).qps(1000).out(out).args([
            "--compare-with",
            "base",
            "--format",
            "csv,json,html,xlsx",
            "--metrics-file",
            &format!("{out}.prom"),
            "--sign-key",
            "sign_key",
        ])
    };
    run(&base, "clean").run().expect_code(0);
    let want = comparable(&wd, "clean");
    for (i, step) in CRASH_STEPS.iter().enumerate() {
        let server = SimServer::start(cat.config());
        let out = format!("c{i}");
        let killed = run(&server, &out).env(CRASH_AT_VAR, step).run();
        assert_eq!(killed.code, -1, "not killed at {step:?}\n{}", killed.describe());
        let again = run(&server, &out).run();
        again.expect_code(0);
        wd.run(&["verify", &out, "--allowed-signers", "allowed_signers"], &[], None).expect_code(0);
        assert_eq!(comparable(&wd, &out), want, "{step}: not the report of a run never killed\n{}", again.describe());
        let stats = server.stats();
        assert_eq!(stats.answers_by_image.len(), 20, "{step}");
        assert!(stats.answers_by_image.values().all(|n| *n == 1), "{step}: an id called twice {stats:?}");
        let left: Vec<String> = std::fs::read_dir(wd.path().join(&out))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") || n.starts_with("journal") || n.starts_with(".vod"))
            .collect();
        assert!(left.is_empty(), "{step}: left {left:?}\n{}", again.describe());
    }
}

/// A run's reports with what differs between two runs of the same
/// answers (request ids) taken out.
fn comparable(wd: &Workdir, dir: &str) -> (Vec<std::collections::HashMap<String, String>>, Value) {
    let mut rows = csv_rows(&wd.read(&format!("{dir}/images.csv")));
    for r in &mut rows {
        r.remove("request_id");
    }
    let s = wd.json(&format!("{dir}/summary.json"));
    let keep = serde_json::json!({"totals": s["totals"], "ledger": s["ledger"], "by_audit_status": s["by_audit_status"],
        "by_status": s["by_status"], "changes": s["changes"]["counts"]});
    (rows, keep)
}

// ---------------------------------------------------------------------------
// Degraded cases
// ---------------------------------------------------------------------------

#[test]
fn a_metrics_file_that_cannot_be_written_is_exit_4_naming_the_flag_and_the_path() {
    let cat = TestCatalog::generate(5, 278);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    std::fs::create_dir(wd.path().join("textfile")).unwrap();
    std::os::unix::fs::symlink("elsewhere.prom", wd.path().join("textfile/link.prom")).unwrap();
    std::fs::create_dir(wd.path().join("textfile/dir.prom")).unwrap();
    // A directory that does not exist is refused before any call (exit 2), as before.
    let out = Audit::new(&wd, &server).qps(1000).out("r9").args(["--metrics-file", "no-such-dir/m.prom"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("--metrics-file no-such-dir/m.prom"), "{}", out.describe());
    for (i, path) in ["textfile/link.prom", "textfile/dir.prom"].into_iter().enumerate() {
        let out = Audit::new(&wd, &server).qps(1000).out(&format!("r{i}")).args(["--metrics-file", path]).run();
        out.expect_code(4);
        let line =
            out.stderr.lines().find(|l| l.contains("--metrics-file")).unwrap_or_else(|| panic!("{}", out.describe()));
        assert!(line.contains(path), "names the path\n{}", out.describe());
        assert!(!line.contains("--out"), "not the advice for --out\n{}", out.describe());
        wd.run(&["verify", &format!("r{i}")], &[], None).expect_code(0);
    }
    assert!(!wd.path().join("textfile/elsewhere.prom").exists(), "written through the link");
    // A metrics file named as a report of --out would replace it after the
    // manifest sealed it: refused before any call.
    let calls = server.stats().requests;
    let out = Audit::new(&wd, &server).qps(1000).out("r0").args(["--metrics-file", "r0/images.csv", "--force"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("--metrics-file r0/images.csv") && out.stderr.contains("--out"), "{}", out.describe());
    assert_eq!(server.stats().requests, calls);
    wd.run(&["verify", "r0"], &[], None).expect_code(0);
}

/// A journal holding an id twice, the second time Blocked: the first wins,
/// and the duplicate is counted in one line.
#[test]
fn the_first_journal_outcome_of_an_id_wins_and_later_duplicates_are_reported() {
    let cat = TestCatalog::generate(80, 279);
    let mut config = cat.config();
    config.revoke_key_after = Some(50);
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &server).qps(1000).concurrency(2).run().expect_code(4);
    let journal = wd.read("out/journal.jsonl");
    let normal: Vec<&str> = journal.lines().skip(1).filter(|l| l.contains("\"audit_status\":\"Normal\"")).collect();
    assert!(normal.len() >= 3, "{journal}");
    let mut text = journal.clone();
    for line in &normal[..3] {
        text.push_str(&line.replace("\"audit_status\":\"Normal\"", "\"audit_status\":\"Blocked\""));
        text.push('\n');
    }
    wd.write("out/journal.jsonl", &text);
    let server = server.restart(cat.config());
    let out = Audit::new(&wd, &server).qps(1000).run();
    out.expect_code(0);
    let rows = csv_rows(&wd.read("out/images.csv"));
    for line in &normal[..3] {
        let id = serde_json::from_str::<Value>(line).unwrap()["image_id"].as_str().unwrap().to_owned();
        let row = rows.iter().find(|r| r["image_id"] == id).unwrap();
        assert_eq!(row["audit_status"], "Normal", "the first outcome of {id} wins\n{}", out.describe());
    }
    let said: Vec<&str> = out.stderr.lines().filter(|l| l.contains("duplicate outcome")).collect();
    assert_eq!(said.len(), 1, "one line\n{}", out.describe());
    assert!(said[0].contains('3'), "counted\n{}", out.describe());
}

/// `--input out/images.csv --out out --force`: the input would be replaced
/// by the report of the same name. Refused before anything is touched.
#[test]
fn an_input_inside_out_that_the_run_would_replace_is_refused_before_anything_is_touched() {
    let cat = TestCatalog::generate(10, 280);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &server).qps(1000).run().expect_code(0);
    let before: Vec<(String, String)> = ["images.csv", "manifest.json", "manifest.sha256"]
        .iter()
        .map(|n| (n.to_string(), wd.read(&format!("out/{n}"))))
        .collect();
    let calls = server.stats().requests;
    for input in ["out/images.csv", "./out/images.csv"] {
        let out = Audit::new(&wd, &server).qps(1000).input(input).args(["--id-column", "image_id", "--force"]).run();
        out.expect_code(2);
        assert!(out.stderr.contains(input) && out.stderr.contains("--out"), "names both\n{}", out.describe());
        for (n, text) in &before {
            assert_eq!(&wd.read(&format!("out/{n}")), text, "{n} touched\n{}", out.describe());
        }
    }
    assert_eq!(server.stats().requests, calls);
    wd.run(&["verify", "out"], &[], None).expect_code(0);
}
