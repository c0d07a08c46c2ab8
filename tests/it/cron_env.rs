//! What a cron host's environment can hold: arguments and environment
//! variables that are not UTF-8, and a `--format csv` run that `verify`
//! must still check in full.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::common::{id_file, Audit, SimServer, TestCatalog, Workdir};

/// Never exit 101 (a panic), whatever bytes an argument holds.
#[test]
fn a_non_utf8_argument_is_a_usage_error_or_works_never_a_panic() {
    let cat = TestCatalog::generate(5, 7);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let bad = OsStr::from_bytes(b"ids-\xff\xfe.csv");

    // --input is text: clap refuses it, exit 2, no call.
    let out = Audit::new(&wd, &server).no_input().out("r1").run_with("--input <non-UTF-8>", |c| {
        c.arg("--input").arg(bad);
    });
    out.expect_code(2);
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    assert_eq!(server.stats().requests, 0);

    // --out is a path: any bytes a file name can hold work.
    let out = Audit::new(&wd, &server).no_out().run_with("--out <non-UTF-8>", |c| {
        c.arg("--out").arg(OsStr::from_bytes(b"out-\xff"));
    });
    out.expect_code(0);
    let dir = wd.path().join(OsStr::from_bytes(b"out-\xff"));
    assert!(dir.join("manifest.json").exists(), "{}", out.describe());

    // A non-UTF-8 word where a subcommand is expected.
    let mut cmd = wd.command(&[], &[]);
    let out = crate::common::Output::of("<non-UTF-8>".into(), cmd.arg(bad).output().unwrap());
    out.expect_code(2);
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
}

#[test]
fn a_non_utf8_environment_variable_is_ignored_unless_the_tool_reads_it() {
    let cat = TestCatalog::generate(5, 8);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let junk = OsStr::from_bytes(b"\xc3\x28 latin-1 \xe9t\xe9");

    // Some other variable of the cron environment: no concern.
    let out = Audit::new(&wd, &server).out("r1").run_with("LC_JUNK=<non-UTF-8>", |c| {
        c.env("LC_JUNK", junk);
    });
    out.expect_code(0);

    // One the credential chain reads: a clear error naming it, no call.
    let before = server.stats().requests;
    let out = Audit::new(&wd, &server).out("r2").run_with("ALIBABA_CLOUD_REGION_ID=<non-UTF-8>", |c| {
        c.env("ALIBABA_CLOUD_REGION_ID", junk);
    });
    out.expect_code(2);
    assert!(out.stderr.contains("ALIBABA_CLOUD_REGION_ID") && out.stderr.contains("UTF-8"), "{}", out.describe());
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    assert_eq!(server.stats().requests, before);
}

/// A `--format csv` run has no summary.json: verify checks the manifest's
/// own ledger, and images.csv against it.
#[test]
fn verify_checks_the_ledger_of_a_csv_only_run() {
    let cat = TestCatalog::generate(20, 9);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &server).out("r").args(["--format", "csv"]).run().expect_code(0);
    let ok = wd.run(&["verify", "r"], &[], None);
    ok.expect_code(0);
    assert!(ok.stdout.contains("ledger balances"), "{}", ok.describe());
    assert!(ok.stdout.contains("images.csv rows match the ledger"), "{}", ok.describe());

    // The manifest's ledger no longer adds up: verify says so.
    let mut m = wd.json("r/manifest.json");
    m["ledger"]["found"] = serde_json::json!(19);
    std::fs::write(wd.path().join("r/manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let bad = wd.run(&["verify", "r"], &[], None);
    bad.expect_code(6);
    assert!(bad.stdout.contains("ledger: unique_ids 20 != found 19"), "{}", bad.describe());
    assert!(bad.stdout.contains("images.csv has"), "{}", bad.describe());
}
