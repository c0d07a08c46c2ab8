//! A shared, hostile or mistaken output directory: links planted where the
//! tool writes, files the tool did not write, a manifest edited after the
//! run, and who may read what the run leaves behind.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use crate::common::{id_file, Audit, SimServer, TestCatalog, Workdir};

/// Every name the tool writes in `--out`.
const WRITTEN: &[&str] = &[
    ".vod-image-audit.lock",
    "journal.jsonl",
    ".unsettled.jsonl.tmp",
    "images.csv",
    "images.jsonl",
    "summary.csv",
    "summary.json",
    "summary.html",
    "rejected.csv",
    "changes.csv",
    "manifest.json",
    "manifest.sha256",
];

/// The temporary names older versions wrote under: fixed, and so plantable.
const OLD_TEMP_NAMES: &[&str] =
    &[".write-probe", ".images.csv.tmp", ".summary.csv.tmp", ".manifest.json.tmp", ".sort-run-0.tmp"];

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_link_planted_at_any_name_the_tool_writes_is_refused_and_never_written_through() {
    let cat = TestCatalog::generate(10, 31);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    for name in WRITTEN {
        let out = format!("out-{}", name.trim_start_matches('.'));
        std::fs::create_dir_all(wd.path().join(&out)).unwrap();
        let victim = wd.write(&format!("victim-{name}"), "someone else's file\n");
        symlink(&victim, wd.path().join(&out).join(name)).unwrap();
        for force in [false, true] {
            let mut audit = Audit::new(&wd, &server).out(&out);
            if force {
                audit = audit.arg("--force");
            }
            let done = audit.run();
            done.expect_code(2);
            assert!(
                done.stderr.contains(name) && done.stderr.contains("symbolic link"),
                "the message names the link\n{}",
                done.describe()
            );
            assert_eq!(wd.read(&format!("victim-{name}")), "someone else's file\n", "{name} was written through");
        }
    }
    assert_eq!(server.stats().requests, 0, "refused before any call");
}

#[test]
fn links_at_old_temporary_names_are_left_alone() {
    let cat = TestCatalog::generate(10, 32);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    std::fs::create_dir_all(wd.path().join("out")).unwrap();
    for name in OLD_TEMP_NAMES {
        let victim = wd.write(&format!("victim{name}"), "someone else's file\n");
        symlink(&victim, wd.path().join("out").join(name)).unwrap();
    }
    // --force: a planted link is otherwise a file the tool did not write.
    Audit::new(&wd, &server).arg("--force").run().expect_code(0);
    for name in OLD_TEMP_NAMES {
        assert_eq!(wd.read(&format!("victim{name}")), "someone else's file\n", "{name} was written through");
    }
    let images = std::fs::symlink_metadata(wd.path().join("out/images.csv")).unwrap();
    assert!(images.file_type().is_file(), "images.csv is a file of its own");
    wd.run(&["verify", "out"], &[], None).expect_code(0);
}

#[test]
fn an_out_that_is_itself_a_link_to_a_directory_works() {
    let cat = TestCatalog::generate(10, 33);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    std::fs::create_dir_all(wd.path().join("real-reports")).unwrap();
    symlink(wd.path().join("real-reports"), wd.path().join("reports")).unwrap();
    Audit::new(&wd, &server).out("reports").run().expect_code(0);
    assert!(wd.path().join("real-reports/manifest.json").exists());
}

#[test]
fn an_out_holding_files_the_tool_did_not_write_is_refused_unless_forced() {
    let cat = TestCatalog::generate(10, 34);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    wd.write("scratch/images.csv", "my own spreadsheet\n");
    wd.write("scratch/summary.html", "<p>my page</p>\n");
    let out = Audit::new(&wd, &server).out("scratch").run();
    out.expect_code(2);
    assert!(out.stderr.contains("images.csv, summary.html") && out.stderr.contains("--force"), "{}", out.describe());
    assert_eq!(wd.read("scratch/images.csv"), "my own spreadsheet\n");
    assert_eq!(server.stats().requests, 0);
    Audit::new(&wd, &server).out("scratch").arg("--force").run().expect_code(0);
    assert_ne!(wd.read("scratch/images.csv"), "my own spreadsheet\n");
}

#[test]
fn verify_catches_an_edited_manifest_and_checks_a_digest_kept_elsewhere() {
    let cat = TestCatalog::generate(20, 35);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let run = Audit::new(&wd, &server).out("r").run();
    run.expect_code(0);
    let printed = run
        .stderr
        .split("manifest.json SHA-256 ")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .unwrap_or_else(|| panic!("the run prints the manifest's digest\n{}", run.describe()))
        .to_owned();
    wd.run(&["verify", "r", "--manifest-sha256", &printed], &[], None).expect_code(0);

    // A casual edit: the exit code and the call count.
    let original = wd.read("r/manifest.json");
    let mut m = wd.json("r/manifest.json");
    m["exit_code"] = serde_json::json!(3);
    m["calls"]["total"] = serde_json::json!(2);
    std::fs::write(wd.path().join("r/manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let bad = wd.run(&["verify", "r"], &[], None);
    bad.expect_code(6);
    assert!(bad.stdout.contains("FAILED: manifest.json: changed since the run"), "{}", bad.describe());

    // A tamperer who also rewrites manifest.sha256 passes the local check,
    // not the digest kept elsewhere.
    let (_, sha) = vod_image_audit::rundir::files::digest_file(&wd.path().join("r/manifest.json")).unwrap();
    std::fs::write(wd.path().join("r/manifest.sha256"), format!("{sha}  manifest.json\n")).unwrap();
    wd.run(&["verify", "r"], &[], None).expect_code(0);
    let kept = wd.run(&["verify", "r", "--manifest-sha256", &printed], &[], None);
    kept.expect_code(6);
    assert!(kept.stdout.contains("not the"), "{}", kept.describe());
    std::fs::write(wd.path().join("r/manifest.json"), original).unwrap();
}

#[test]
fn the_run_state_is_private_and_the_reports_follow_the_umask() {
    let cat = TestCatalog::generate(30, 36);
    let mut config = cat.config();
    config.revoke_key_after = Some(10);
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    // The key is revoked mid-run: the run stops (exit 4) and keeps its journal.
    let out = Audit::new(&wd, &server).concurrency(1).run_in_shell("umask 022; exec \"$0\" \"$@\"", "(umask 022)");
    out.expect_code(4);
    let dir = wd.path().join("out");
    assert_eq!(mode(&dir.join("journal.jsonl")), 0o600, "the journal holds signed URLs");
    assert!(!dir.join(".vod-image-audit.lock").exists(), "the lock (0600 while held) goes with the run");
    assert_eq!(mode(&dir.join("images.csv")), 0o644, "reports follow the umask");

    let server = SimServer::start(cat.config());
    let out = Audit::new(&wd, &server).out("private").run_in_shell("umask 077; exec \"$0\" \"$@\"", "(umask 077)");
    out.expect_code(0);
    assert_eq!(mode(&wd.path().join("private/images.csv")), 0o600);
}
