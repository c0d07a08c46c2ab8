//! The nightly loop around a run: what a finished or failed run leaves in
//! the reports folder, and what may write there afterwards.

use crate::common::{id_file, Audit, Bench, SimServer, TestCatalog, Workdir};

#[test]
fn a_finished_run_leaves_no_lock_file_and_a_failed_start_leaves_nothing() {
    let cat = TestCatalog::generate(10, 41);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &server).out("reports/night1").run().expect_code(0);
    assert!(!wd.path().join("reports/night1/.vod-image-audit.lock").exists(), "the lock goes with the run");
    wd.run(&["verify", "reports/night1"], &[], None).expect_code(0);

    // A comparison that cannot be made refuses the run before --out exists.
    let out = Audit::new(&wd, &server).out("reports/night2").args(["--compare-with", "reports/nope"]).run();
    out.expect_code(2);
    assert!(!wd.path().join("reports/night2").exists(), "a failed start leaves nothing\n{}", out.describe());

    // So does one refused by the directory itself (foreign files) that
    // the run did not create: the files stay, no lock is added.
    wd.write("reports/mine/notes.txt", "mine\n");
    Audit::new(&wd, &server).out("reports/mine").run().expect_code(2);
    let names: Vec<_> =
        std::fs::read_dir(wd.path().join("reports/mine")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["notes.txt"]);

    // A run stopped by a fatal error (the key revoked after its first
    // call) releases its lock too.
    let mut config = cat.config();
    config.revoke_key_after = Some(1);
    let revoking = SimServer::start(config);
    let out = Audit::new(&wd, &revoking).out("reports/bad-key");
    out.run().expect_code(4);
    assert!(!wd.path().join("reports/bad-key/.vod-image-audit.lock").exists());
    assert!(wd.path().join("reports/bad-key/journal.jsonl").exists(), "resumable");
}

/// A key STS accepts but VOD refuses from its very first call (a key
/// without VOD, or revoked between the two): a configuration mistake, not
/// a run to resume. Exit 2, no run directory, no resume advice; under
/// `--quiet`, one line.
#[test]
fn a_key_refused_by_the_first_vod_call_leaves_nothing_and_exits_2() {
    let Bench { cat, server, wd } = Bench::with(20, 43, |c| c.revoke_key_after = Some(0));
    wd.write("ids.csv", id_file(&cat.ids()));
    for quiet in [false, true] {
        let mut audit = Audit::new(&wd, &server).out("reports/n1");
        if quiet {
            audit = audit.args(["--quiet"]);
        }
        let out = audit.run();
        out.expect_code(2);
        assert!(out.stderr.contains("InvalidAccessKeyId"), "{}", out.describe());
        assert!(out.stderr.contains("nothing was written"), "{}", out.describe());
        assert!(
            !out.stderr.contains("resum") && !out.stderr.contains("run again") && !out.stderr.contains("same command"),
            "no resume advice: {}",
            out.describe()
        );
        assert!(!wd.path().join("reports/n1").exists(), "the run directory is gone\n{}", out.describe());
        if quiet {
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
        }
    }
    // A directory that was there before (made by hand) stays, emptied of
    // what the run wrote.
    std::fs::create_dir_all(wd.path().join("reports/mine")).unwrap();
    Audit::new(&wd, &server).out("reports/mine").run().expect_code(2);
    assert_eq!(std::fs::read_dir(wd.path().join("reports/mine")).unwrap().count(), 0);
}

#[test]
fn diff_does_not_write_into_a_finished_run() {
    let cat = TestCatalog::generate(10, 42);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &server).out("a").run().expect_code(0);
    Audit::new(&wd, &server).out("b").run().expect_code(0);
    let out = wd.run(&["diff", "a", "b", "--out", "b/changes.csv"], &[], None);
    out.expect_code(2);
    assert!(out.stderr.contains("finished run"), "{}", out.describe());
    assert!(!wd.path().join("b/changes.csv").exists());
    wd.run(&["verify", "b"], &[], None).expect_code(0);
    wd.run(&["diff", "a", "b", "--out", "changes.csv"], &[], None).expect_code(0);
}
