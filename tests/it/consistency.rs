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

/// `verify`, `prune` and `list-images` print their result as one JSON
/// object on stdout with `--json`, as `run`, `diff` and `check` do; what
/// they say on stderr is unchanged.
#[test]
fn verify_prune_and_list_images_take_json() {
    let cat = TestCatalog::generate(6, 30);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let json = |out: &crate::common::Output| -> serde_json::Value {
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not one JSON object: {e}\n{}", out.describe()))
    };
    Audit::new(&wd, &server).out("reports/a").run().expect_code(0);
    Audit::new(&wd, &server).out("reports/b").run().expect_code(0);

    let out = wd.run(&["verify", "reports/b", "--json"], &[], None);
    out.expect_code(0);
    let v = json(&out);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["exit_code"], 0, "{v}");
    assert!(v["checked"].as_array().is_some_and(|c| !c.is_empty()), "{v}");
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");

    let csv = wd.read("reports/a/images.csv");
    wd.write("reports/a/images.csv", csv.replacen("Normal", "Blocked", 1));
    let out = wd.run(&["verify", "reports/a", "--json"], &[], None);
    out.expect_code(6);
    let v = json(&out);
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["problems"].to_string().contains("images.csv"), "{v}");

    let out = wd.run(&["prune", "reports", "--keep-last", "1", "--dry-run", "--json"], &[], None);
    out.expect_code(0);
    let v = json(&out);
    let runs = v["runs"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(runs.len(), 2, "{v}");
    assert!(runs.iter().any(|r| r["run"].as_str().is_some_and(|p| p.ends_with('b')) && r["action"] == "kept"), "{v}");
    // The edited run does not verify: kept, and the JSON says why.
    assert!(
        runs.iter().any(|r| r["run"].as_str().is_some_and(|p| p.ends_with('a'))
            && r["action"] == "kept"
            && r["why"].as_str().is_some_and(|w| !w.is_empty())),
        "{v}"
    );

    let out = Audit::new(&wd, &server)
        .no_input()
        .no_out()
        .subcommand("list-images")
        .args(["--out", "listed.csv", "--json"])
        .run();
    out.expect_code(0);
    let v = json(&out);
    assert_eq!(v["images"], 6, "{v}");
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(v["out"], "listed.csv", "{v}");
}
