//! Settings from the environment (`VOD_IMAGE_AUDIT_<FLAG>`) and from a
//! TOML file (`--config FILE`, the flags' names): precedence flag >
//! environment > file, each setting's source shown by `--dry-run`, secrets
//! never read from a file, file errors naming the file and the line.

use crate::common::{sim_env, Bench, Workdir};

fn ids(wd: &Workdir) {
    wd.write("ids.csv", "ImageId\nbb7b49ab8801cf70ba57b7db607f9d1a\n");
}

fn dry_run(wd: &Workdir, extra: &[&str], env: &[(&str, &str)]) -> crate::common::Output {
    let mut args = vec!["run", "--dry-run", "--input", "ids.csv", "--endpoint", "http://127.0.0.1:9/"];
    args.extend_from_slice(extra);
    let mut vars = sim_env();
    vars.extend_from_slice(env);
    wd.run(&args, &vars, None)
}

fn expect_in(out: &crate::common::Output, wants: &[&str]) {
    for want in wants {
        assert!(out.stdout.contains(want) || out.stderr.contains(want), "expected {want:?}\n{}", out.describe());
    }
}

#[test]
fn a_run_flag_comes_from_its_environment_variable_and_the_plan_says_so() {
    let wd = Workdir::new();
    ids(&wd);
    let out = dry_run(&wd, &[], &[("VOD_IMAGE_AUDIT_QPS", "7"), ("VOD_IMAGE_AUDIT_AUDIT_SOURCE", "both")]);
    out.expect_code(0);
    expect_in(
        &out,
        &[
            "GetImageInfo 7/s",
            "audit source: both",
            "--qps 7 (from VOD_IMAGE_AUDIT_QPS)",
            "--audit-source both (from VOD_IMAGE_AUDIT_AUDIT_SOURCE)",
            "--input ids.csv (from the command line)",
        ],
    );
}

#[test]
fn a_config_file_gives_settings_and_flag_beats_environment_beats_file() {
    let wd = Workdir::new();
    ids(&wd);
    wd.write(
        "audit.toml",
        "# nightly\nqps = 9\naudit-source = \"both\"\nconcurrency = 3\nfail_on = [\"newly_blocked\", \"failed\"]\n",
    );
    let out = dry_run(&wd, &["--config", "audit.toml"], &[]);
    out.expect_code(0);
    expect_in(
        &out,
        &[
            "GetImageInfo 9/s",
            "--qps 9 (from audit.toml line 2)",
            "--audit-source both (from audit.toml line 3)",
            "--concurrency 3 (from audit.toml line 4)",
            "--fail-on newly_blocked,failed (from audit.toml line 5)",
        ],
    );
    let out = dry_run(&wd, &["--config", "audit.toml"], &[("VOD_IMAGE_AUDIT_QPS", "7")]);
    out.expect_code(0);
    expect_in(&out, &["GetImageInfo 7/s", "--qps 7 (from VOD_IMAGE_AUDIT_QPS)"]);
    let out = dry_run(&wd, &["--config", "audit.toml", "--qps", "5"], &[("VOD_IMAGE_AUDIT_QPS", "7")]);
    out.expect_code(0);
    expect_in(&out, &["GetImageInfo 5/s", "--qps 5 (from the command line)"]);
    // The file itself may be named by the environment.
    let out = dry_run(&wd, &[], &[("VOD_IMAGE_AUDIT_CONFIG", "audit.toml")]);
    out.expect_code(0);
    expect_in(&out, &["GetImageInfo 9/s"]);
}

#[test]
fn a_run_takes_its_input_and_out_from_the_config_file() {
    let b = Bench::new(3, 29);
    b.wd.write("ids.csv", format!("ImageId\n{}\n", b.ids(3).join("\n")));
    b.wd.write(
        "audit.toml",
        format!("input = \"ids.csv\"\nout = \"night1\"\nendpoint = \"{}\"\nqps = 0\n", b.server.url),
    );
    let out = b.wd.run(&["run", "--config", "audit.toml"], &sim_env(), None);
    out.expect_code(0);
    assert!(b.wd.path().join("night1/manifest.json").exists(), "{}", out.describe());
}

#[test]
fn a_secret_in_the_config_file_is_refused_naming_the_file_and_line() {
    let wd = Workdir::new();
    ids(&wd);
    for key in ["access_key_secret", "access-key-secret", "sts_token", "security_token", "password"] {
        wd.write("audit.toml", format!("qps = 9\n{key} = \"abc123\"\n"));
        let out = dry_run(&wd, &["--config", "audit.toml"], &[]);
        out.expect_code(2);
        expect_in(&out, &["audit.toml", "line 2", key, "secret"]);
        assert!(!out.stderr.contains("abc123"), "the value was shown\n{}", out.describe());
    }
}

#[test]
fn config_file_errors_name_the_file_and_line() {
    let wd = Workdir::new();
    ids(&wd);
    wd.write("audit.toml", "qps = 9\nconcurrency = = 3\n");
    let out = dry_run(&wd, &["--config", "audit.toml"], &[]);
    out.expect_code(2);
    expect_in(&out, &["audit.toml", "line 2"]);

    wd.write("audit.toml", "qps = 9\n\nquux = 1\n");
    let out = dry_run(&wd, &["--config", "audit.toml"], &[]);
    out.expect_code(2);
    expect_in(&out, &["audit.toml", "line 3", "quux", "not a setting"]);

    wd.write("audit.toml", "qps = \"fast\"\n");
    let out = dry_run(&wd, &["--config", "audit.toml"], &[]);
    out.expect_code(2);
    expect_in(&out, &["audit.toml", "line 1", "fast"]);

    wd.write("big.toml", "#".repeat(2 * 1024 * 1024));
    let out = dry_run(&wd, &["--config", "big.toml"], &[]);
    out.expect_code(2);
    expect_in(&out, &["big.toml", "larger than"]);

    let out = dry_run(&wd, &["--config", "missing.toml"], &[]);
    out.expect_code(2);
    expect_in(&out, &["missing.toml"]);
}

#[test]
fn check_dry_run_shows_each_settings_source() {
    let wd = Workdir::new();
    wd.write("audit.toml", "timeout = \"7s\"\n");
    let mut vars = sim_env();
    vars.push(("VOD_IMAGE_AUDIT_REGION", "cn-beijing"));
    let out = wd.run(&["check", "--dry-run", "--config", "audit.toml"], &vars, None);
    out.expect_code(0);
    expect_in(
        &out,
        &[
            "region: cn-beijing",
            "--region cn-beijing (from VOD_IMAGE_AUDIT_REGION)",
            "--timeout 7s (from audit.toml line 1)",
        ],
    );
}

#[test]
fn a_value_the_tool_refuses_names_where_it_was_set() {
    let wd = Workdir::new();
    ids(&wd);
    wd.write("audit.toml", "\nconcurrency = 0\n");
    let out = dry_run(&wd, &["--config", "audit.toml"], &[]);
    out.expect_code(2);
    expect_in(&out, &["--concurrency must be between 1 and 1024", "(set in audit.toml line 2)"]);
    let out = dry_run(&wd, &[], &[("VOD_IMAGE_AUDIT_MAX_ATTEMPTS", "0")]);
    out.expect_code(2);
    expect_in(&out, &["--max-attempts must be between 1 and 100", "(set in VOD_IMAGE_AUDIT_MAX_ATTEMPTS)"]);
}
