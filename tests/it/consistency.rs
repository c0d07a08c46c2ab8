//! One syntax for every duration flag (a bare number is seconds), `prune
//! --keep-daily` on its own, and `--json` on `check` as on `run` and `diff`.

use crate::common::{id_file, Audit, SimServer, TestCatalog, Workdir};

#[test]
fn every_duration_flag_takes_units_and_a_bare_number_is_seconds() {
    let cat = TestCatalog::generate(3, 29);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server)
        .args(["--auth-timeout", "1h", "--timeout", "7", "--down-after", "90", "--notify-timeout", "20"])
        .run();
    out.expect_code(0);
    let m = wd.json("out/manifest.json");
    assert_eq!(m["settings"]["auth_timeout"], 3600, "{}", out.describe());
    assert_eq!(m["settings"]["timeout_ms"], 7000);
    assert_eq!(m["settings"]["down_after_ms"], 90_000);

    let out = Audit::new(&wd, &server).out("secs").args(["--auth-timeout", "3600", "--timeout", "1500ms"]).run();
    out.expect_code(0);
    assert_eq!(wd.json("secs/manifest.json")["settings"]["auth_timeout"], 3600);

    // AuthTimeout is whole seconds: a part of one is refused, saying so.
    let out = Audit::new(&wd, &server).out("ms").args(["--auth-timeout", "1500ms"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("--auth-timeout") && out.stderr.contains("whole seconds"), "{}", out.describe());
    let out = Audit::new(&wd, &server).out("bad").args(["--timeout", "soon"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("a bare number is seconds"), "{}", out.describe());
}

#[test]
fn prune_keep_daily_alone_is_allowed() {
    let wd = Workdir::new();
    std::fs::create_dir(wd.path().join("reports")).unwrap();
    let out = wd.run(&["prune", "reports", "--keep-daily", "7"], &[], None);
    out.expect_code(0);
    let out = wd.run(&["prune", "reports"], &[], None);
    out.expect_code(2);
    assert!(out.stderr.contains("--keep-last") && out.stderr.contains("--keep-daily"), "{}", out.describe());
    wd.run(&["prune", "reports", "--keep-daily", "0"], &[], None).expect_code(2);
}

#[test]
fn check_accepts_json_as_run_and_diff_do() {
    let cat = TestCatalog::generate(1, 29);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let out = Audit::check(&wd, &server, &cat.ids()[0]).arg("--json").run();
    out.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.describe()));
    assert_eq!(v["outcome"], "found");
}
