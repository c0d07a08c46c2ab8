//! Evidence the tool reads back: earlier runs it compares with, retries,
//! diffs, draws on the trend or prunes are verified first; a run directory
//! belongs to one configuration; finishing a run survives a crash at any
//! step; and what a run leaves behind (journal, temporary files) never
//! outlives it.

use crate::common::{id_file, Audit, SimServer, TestCatalog, Workdir};

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
    Audit::new(&wd, &server).out("night").run().expect_code(0);
    edit(&wd, "night/images.jsonl", "\"audit_status\":\"Blocked\"", "\"audit_status\":\"Normal\"", 4);
    wd.run(&["verify", "night"], &[], None).expect_code(6);

    let calls = server.stats().requests;
    let out = Audit::new(&wd, &server).out("night-retry").args(["--retry-failed", "night"]).run();
    out.expect_code(6);
    assert!(out.stderr.contains("--retry-failed night"), "names the flag and the run\n{}", out.describe());
    assert!(out.stderr.contains("images.jsonl"), "names the file that does not match\n{}", out.describe());
    assert_eq!(server.stats().requests, calls, "no call\n{}", out.describe());
    assert!(!wd.path().join("night-retry").exists(), "nothing written\n{}", out.describe());

    // --retry-failed of the directory being written: refused, never read.
    let out = Audit::new(&wd, &server).out("night").args(["--retry-failed", "night", "--force"]).run();
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
    Audit::new(&wd, &server).out("reports/n1").run().expect_code(0);
    Audit::new(&wd, &server).out("reports/n2").run().expect_code(0);
    edit(&wd, "reports/n2/images.csv", ",Blocked,", ",Normal,", 3);

    let out = Audit::new(&wd, &server).out("reports/n3").args(["--compare-with", "reports/n2"]).run();
    out.expect_code(6);
    assert!(out.stderr.contains("reports/n2") && out.stderr.contains("images.csv"), "{}", out.describe());
    assert!(!wd.path().join("reports/n3").exists(), "nothing written\n{}", out.describe());

    let out = Audit::new(&wd, &server).out("reports/n3").args(["--compare-with", "auto"]).run();
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
    Audit::new(&wd, &server).out("reports/n1").run().expect_code(0);
    Audit::new(&wd, &server).out("reports/n2").run().expect_code(0);
    edit(&wd, "reports/n2/summary.json", "\"found\": 20", "\"found\": 2000", 1);

    let out = Audit::new(&wd, &server).out("reports/n3").run();
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
        Audit::new(&wd, &server).out(&format!("reports/{n}")).run().expect_code(0);
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
    Audit::new(&wd, &first).concurrency(2).run().expect_code(4);
    let journal = wd.read("out/journal.jsonl");
    let first = first.restart(cat.config());

    let other = SimServer::start(cat.config());
    let out = Audit::new(&wd, &other).run();
    out.expect_code(2);
    assert!(out.stderr.contains("endpoint"), "{}", out.describe());
    assert!(out.stderr.contains(&first.url) && out.stderr.contains(&other.url), "old and new\n{}", out.describe());
    for (flags, what, old, new) in [
        (vec!["--region", "cn-beijing"], "region", "cn-shanghai", "cn-beijing"),
        (vec!["--api", "batch"], "api", "single", "batch"),
        (vec!["--audit-source", "media-audit"], "audit source", "image-info", "media-audit"),
    ] {
        let out = Audit::new(&wd, &first).args(flags).run();
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
    let out = Audit::new(&wd, &other).arg("--force").run();
    out.expect_code(0);
    assert_eq!(other.stats().requests, 100, "{}", out.describe());
    let m = wd.json("out/manifest.json");
    assert_eq!(m["resumed_ids"], 0);
    wd.run(&["verify", "out"], &[], None).expect_code(0);

    // The same configuration still resumes.
    let mut config = cat.config();
    config.revoke_key_after = Some(30);
    let again = SimServer::start(config);
    Audit::new(&wd, &again).out("out2").concurrency(2).run().expect_code(4);
    let again = again.restart(cat.config());
    let out = Audit::new(&wd, &again).out("out2").concurrency(2).run();
    out.expect_code(0);
    assert!(out.stderr.contains("resuming"), "{}", out.describe());
}
