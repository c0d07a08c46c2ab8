//! The first hour of a new user and the nightly habit (issue 29): the README's
//! commands run as written, the simulator walkthrough, the page answering the
//! analyst, cron output, and a wrong key that leaves nothing behind.

use std::io::BufRead;
use std::process::{Command, Stdio};

use clap::CommandFactory;
use serde_json::Value;
use vod_image_audit::cmd::cli::Cli;
use vod_image_audit::sim;

use crate::common::*;

const README: &str = include_str!("../../README.md");

/// The README's fenced blocks of a language (`sh`, `cron`), as lines with
/// their continuations (`\` at the end) joined.
fn blocks(lang: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut pending = String::new();
    for line in README.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed == format!("```{lang}") => current = Some(Vec::new()),
            None => {}
            Some(_) if trimmed.starts_with("```") => out.push(current.take().expect("in a block")),
            Some(lines) => {
                pending.push_str(line.trim_end().trim_end_matches('\\'));
                pending.push(' ');
                if !line.trim_end().ends_with('\\') {
                    lines.push(std::mem::take(&mut pending));
                }
            }
        }
    }
    out
}

/// Every `vod-image-audit SUB --flag ...` (or `cargo run ... -- SUB`) in a
/// command line: the subcommand and the flags it is given.
fn invocations(line: &str) -> Vec<(String, Vec<String>)> {
    let line = line.split(" #").next().unwrap_or(line);
    let mut found = Vec::new();
    for segment in line.split(['|', ';', '&']) {
        let words: Vec<&str> = segment.split_whitespace().collect();
        // The command word: the first that is not a variable assignment.
        let first = words.iter().position(|w| !w.contains('=')).unwrap_or(words.len());
        let start = words.get(first).filter(|w| w.ends_with("vod-image-audit")).map(|_| first + 1).or_else(|| {
            (words.first() == Some(&"cargo") && words.get(1) == Some(&"run"))
                .then(|| words.iter().position(|w| *w == "--").map(|i| i + 1))
                .flatten()
        });
        let Some(start) = start else { continue };
        let Some(sub) = words.get(start) else { continue };
        let flags = words[start + 1..]
            .iter()
            .map(|w| w.trim_matches(['[', ']']))
            .filter(|w| w.starts_with("--"))
            .map(|w| w.split('=').next().unwrap_or(w).to_owned())
            .collect();
        found.push((sub.to_string(), flags));
    }
    found
}

#[test]
fn every_command_the_readme_shows_uses_a_subcommand_and_flags_the_cli_has() {
    let cli = Cli::command();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for lang in ["sh", "cron"] {
        for block in blocks(lang) {
            for line in &block {
                for (sub, flags) in invocations(line) {
                    let Some(cmd) = cli.find_subcommand(&sub) else {
                        wrong.push(format!("{line}\n    no subcommand {sub:?}"));
                        continue;
                    };
                    for flag in flags {
                        let name = flag.trim_start_matches('-');
                        // `--config` of run and check is read before the flags are parsed
                        // (cmd::sources), so clap does not list it.
                        let pre_parsed = name == "config" && ["run", "check"].contains(&sub.as_str());
                        if !cmd.get_arguments().any(|a| a.get_long() == Some(name)) && name != "help" && !pre_parsed {
                            wrong.push(format!("{line}\n    `{sub}` has no {flag}"));
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 40, "the parser found only {checked} flags in the README: it is broken");
    assert!(wrong.is_empty(), "the README shows commands the CLI refuses:\n{}", wrong.join("\n"));
}

#[test]
fn the_readme_says_how_to_install_and_cron_finds_the_binary() {
    let first = &blocks("sh")[0];
    assert!(
        first.iter().any(|l| l.trim_start().starts_with("cargo install --path .")),
        "the README's opening block must put the binary on PATH: {first:#?}"
    );
    for block in blocks("cron") {
        for line in block.iter().filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty()) {
            if line.contains("PATH=") {
                continue;
            }
            for word in line.split_whitespace().filter(|w| w.ends_with("vod-image-audit")) {
                assert!(word.starts_with('/'), "cron has no ~/.cargo/bin on its PATH: {word:?} in\n{line}");
            }
        }
    }
}

/// Options whose absence is their meaning (nothing to compare, no ledger):
/// the help says what they do when given, there is no default to show.
const NO_DEFAULT: &[&str] = &[
    "input",
    "out",
    "id-column",
    "delimiter",
    "region",
    "endpoint",
    "profile",
    "auth-timeout",
    "created-after",
    "created-before",
    "cate-id",
    "compare-with",
    "retry-failed",
    "fail-on",
    "reviews",
    "sign-key",
    "notify",
    "notify-secret-env",
    "metrics-file",
    "max-failures",
    "image-id",
    "manifest-sha256",
    "allowed-signers",
    "keep-daily",
    "catalog",
    "generate",
    "burst-second",
    "burst-hour",
    "write-catalog",
    "write-ids",
    "api-qps",
    "throttle-retry-after",
    "media-audit-refused",
    "search-qps",
    "outage-after",
    "revoke-key-after",
    "sts-token",
    "role",
    "ecs-role",
    "oidc-provider-arn",
    "oidc-token",
    "keep-last",
    "night",
    "ca-file",
    "tls-cert",
    "tls-key",
];

#[test]
fn every_option_of_every_subcommand_shows_its_default_in_help() {
    let mut cli = Cli::command();
    cli.build();
    let mut silent = Vec::new();
    for sub in cli.get_subcommands() {
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if !arg.get_action().takes_values() || arg.is_positional() || NO_DEFAULT.contains(&long) {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let shown = !arg.get_default_values().is_empty() && !arg.is_hide_default_value_set();
            if !shown && !help.contains("default") {
                silent.push(format!("{} --{long}", sub.get_name()));
            }
        }
    }
    assert!(silent.is_empty(), "options whose --help does not show the default: {silent:?}");
    let help = Workdir::new().run(&["run", "--help"], &[], None);
    for want in ["[default: 16]", "[default: 5]"] {
        assert!(help.stdout.contains(want), "run --help lacks {want}\n{}", help.describe());
    }
}

#[test]
fn simulate_write_ids_works_with_write_catalog() {
    let wd = Workdir::new();
    let out =
        wd.run(&["simulate", "--generate", "7", "--write-catalog", "c.json", "--write-ids", "ids.csv"], &[], None);
    out.expect_code(0);
    let ids = wd.read("ids.csv");
    assert_eq!(ids.lines().count(), 8, "a header and 7 ids\n{ids}\n{}", out.describe());
    assert!(out.stderr.contains("ids.csv"), "it says where the ids went\n{}", out.describe());
}

/// `simulate` on a free port: the lines it prints until the `run` advice.
fn simulate_until_ready(wd: &Workdir, args: &[&str]) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vod-image-audit"));
    cmd.args(["simulate", "--listen", "127.0.0.1:0"]).args(args).current_dir(wd.path());
    cmd.env_clear().env("HOME", wd.home()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("vod-image-audit run ");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn simulate_prints_the_ids_file_it_wrote_and_the_run_line_reads_it() {
    let wd = Workdir::new();
    let lines = simulate_until_ready(&wd, &["--generate", "5", "--write-ids", "my-ids.csv"]);
    let text = lines.join("\n");
    assert!(text.contains("wrote 5 ids to my-ids.csv"), "it says where the ids are\n{text}");
    assert!(text.contains("--input my-ids.csv"), "the printed run line reads that file\n{text}");
    assert_eq!(wd.read("my-ids.csv").lines().count(), 6);
}

fn catalog_of_night(wd: &Workdir, night: &str) -> Vec<Value> {
    let name = format!("night-{night}.json");
    let out = wd.run(&["simulate", "--generate", "300", "--night", night, "--write-catalog", &name], &[], None);
    out.expect_code(0);
    wd.json(&name)["images"].as_array().unwrap().clone()
}

#[test]
fn simulate_night_blocks_unblocks_deletes_and_adds_a_few_images_each_night() {
    let wd = Workdir::new();
    let one = catalog_of_night(&wd, "1");
    let two = catalog_of_night(&wd, "2");
    let three = catalog_of_night(&wd, "3");
    assert_eq!(catalog_of_night(&wd, "2"), two, "a night is deterministic");
    let status = |cat: &[Value]| -> std::collections::HashMap<String, String> {
        cat.iter()
            .map(|v| (v["ImageId"].as_str().unwrap().to_owned(), v["AuditStatus"].as_str().unwrap_or("").to_owned()))
            .collect()
    };
    for (before, after) in [(&one, &two), (&two, &three)] {
        let (b, a) = (status(before), status(after));
        let deleted = b.keys().filter(|id| !a.contains_key(*id)).count();
        let added = a.keys().filter(|id| !b.contains_key(*id)).count();
        let blocked = a.iter().filter(|(id, s)| *s == "Blocked" && b.get(*id).is_some_and(|o| o != "Blocked")).count();
        let unblocked =
            a.iter().filter(|(id, s)| *s != "Blocked" && b.get(*id).is_some_and(|o| o == "Blocked")).count();
        for (what, n) in [("deleted", deleted), ("added", added), ("blocked", blocked), ("unblocked", unblocked)] {
            assert!((1..=10).contains(&n), "{what}: {n} images between two nights");
        }
    }
}

#[test]
fn missing_rows_carry_no_such_resource_and_the_page_lists_them_bounded() {
    let cat = TestCatalog::generate(120, 29);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let mut ids = cat.ids();
    let missing = unknown_ids(60, 29);
    ids.extend(missing.iter().cloned());
    wd.write("ids.csv", id_file(&ids));
    Audit::new(&wd, &server).qps(0).run().expect_code(0);
    let rows = csv_rows(&wd.read("out/images.csv"));
    for r in rows.iter().filter(|r| r["outcome"] == "missing") {
        assert_eq!(r["error_code"], "NoSuchResource", "{r:?}");
    }
    let page = wd.read("out/summary.html");
    let listed = missing.iter().filter(|id| page.contains(id.as_str())).count();
    assert!(listed >= 10, "the page lists missing ids, {listed} of 60 shown");
    assert!(listed < 60, "the list is bounded");
    assert!(page.contains(&format!("and {} more in images.csv", 60 - listed)), "the bound is said");
    let unknown: Vec<_> = rows.iter().filter(|r| r["verdict"] == "Unknown").collect();
    assert!(!unknown.is_empty());
    assert!(page.contains(&unknown[0]["image_id"]), "Unknown-verdict images are listed");
    let manifest_files = wd.json("out/manifest.json")["files"].clone();
    let images_csv = manifest_files.as_array().unwrap().iter().find(|f| f["name"] == "images.csv").unwrap();
    assert!(page.contains(images_csv["sha256"].as_str().unwrap()), "the headline carries images.csv's digest");
    assert!(page.contains("manifest.sha256"), "the headline says where the manifest's digest is");
}

#[test]
fn the_page_lists_unblocked_and_newly_missing_images_and_blocked_ones_newest_first() {
    let cat = TestCatalog::generate(200, 30);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    {
        let server = SimServer::start(cat.config());
        Audit::new(&wd, &server).qps(0).out("reports/n1").run().expect_code(0);
    }
    let mut values = cat.values.clone();
    let was_blocked: Vec<String> = values
        .iter()
        .filter(|v| v["AuditStatus"] == "Blocked")
        .map(|v| v["ImageId"].as_str().unwrap().to_owned())
        .collect();
    let unblocked = was_blocked[0].clone();
    let gone = values.iter().find(|v| v["AuditStatus"] == "Normal").unwrap()["ImageId"].as_str().unwrap().to_owned();
    let newly =
        values.iter().rev().find(|v| v["AuditStatus"] == "Normal").unwrap()["ImageId"].as_str().unwrap().to_owned();
    for v in values.iter_mut() {
        if v["ImageId"] == unblocked.as_str() {
            v["AuditStatus"] = "Normal".into();
        }
        if v["ImageId"] == newly.as_str() {
            v["AuditStatus"] = "Blocked".into();
        }
    }
    values.retain(|v| v["ImageId"] != gone.as_str());
    let server = SimServer::start(TestCatalog::from_values(values).config());
    Audit::new(&wd, &server).qps(0).out("reports/n2").arg("--compare-with").arg("auto").run().expect_code(0);
    let page = wd.read("reports/n2/summary.html");
    let headline = page.split("<h2").next().unwrap();
    assert!(headline.contains("newly blocked 1"), "the headline names the changes\n{headline}");
    for (what, id) in [("unblocked", &unblocked), ("newly missing", &gone)] {
        assert!(page.contains(id.as_str()), "the {what} image {id} is listed");
    }
    // The blocked list: the image blocked tonight first, then those blocked since night 1.
    let section = page.split("id=\"blocked\"").nth(1).expect("a blocked section");
    let first_newly = section.find(newly.as_str()).expect("the newly blocked image is in the blocked list");
    let first_old = was_blocked[1..].iter().filter_map(|id| section.find(id.as_str())).min().expect("older blocks");
    assert!(first_newly < first_old, "newest change first");
}

#[test]
fn quiet_prints_one_line_on_any_failure_and_nothing_on_success() {
    let cat = TestCatalog::generate(200, 31);
    let mut config = cat.config();
    config.omit_audit_status = true;
    config.media_audit_refused = Some("InvalidApi.NotFound".into());
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    // Moderation refused, no verdict: loud today in several lines.
    let out = Audit::new(&wd, &server).qps(0).args(["--quiet", "--audit-source", "both"]).run();
    out.expect_code(9);
    assert_eq!(out.stderr.lines().count(), 1, "exactly one line under --quiet\n{}", out.describe());
    assert!(out.stderr.contains("moderation"), "the one line keeps the cause\n{}", out.describe());
    let ok = TestCatalog::generate(50, 32);
    let server = SimServer::start(ok.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&ok.ids()));
    let out = Audit::new(&wd, &server).qps(0).arg("--quiet").run();
    out.expect_code(0);
    assert_eq!(out.stderr, "", "nothing on success");
    assert_eq!(out.stdout, "");
}

/// The value of an unlabelled series in a metrics file.
fn series(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}\n{text}"));
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

/// When a run finished, from its manifest, in Unix seconds.
fn finished(wd: &Workdir, dir: &str) -> f64 {
    let m = wd.json(&format!("{dir}/manifest.json"));
    let at = humantime::parse_rfc3339(m["finished"].as_str().unwrap()).unwrap();
    at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn exit_9_outranks_8_and_each_is_a_complete_run_for_the_metrics() {
    let cat = TestCatalog::generate(100, 33);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let night = |values: Vec<Value>, out: &str, extra: &[&str]| {
        let server = SimServer::start(TestCatalog::from_values(values).config());
        let args =
            ["--metrics-file", "m.prom", "--compare-with", "auto", "--fail-on", "newly_blocked,failed", "--quiet"];
        let out = Audit::new(&wd, &server).qps(0).out(out).args(args).args(extra.iter().copied()).run();
        (out, wd.read("m.prom"))
    };
    let (out, m) = night(cat.values.clone(), "r/1", &[]);
    out.expect_code(0);
    let digest = wd.read("r/1/manifest.sha256");
    let digest = digest.split_whitespace().next().unwrap();
    assert!(m.contains(&format!("vod_image_audit_manifest_info{{manifest_sha256=\"{digest}\"")), "{m}");
    let mut values = cat.values.clone();
    let i = values.iter().position(|v| v["AuditStatus"] == "Normal").unwrap();
    values[i]["AuditStatus"] = "Blocked".into();
    // An alert (8) is a complete run: the last success moves.
    let (out, m) = night(values.clone(), "r/2", &[]);
    out.expect_code(8);
    assert_eq!(series(&m, "vod_image_audit_last_success_timestamp_seconds"), finished(&wd, "r/2"), "{m}");
    // Too few verdicts (9) outranks the alert (8): the blocked count cannot be trusted.
    let mut values = cat.values.clone();
    values[i]["AuditStatus"] = "Blocked".into();
    let j = values.iter().position(|v| v["AuditStatus"] == "Normal").unwrap();
    values[j]["AuditStatus"] = "Blocked".into();
    for v in values.iter_mut().filter(|v| v["AuditStatus"] == "Normal").take(60) {
        v.as_object_mut().unwrap().remove("AuditStatus");
    }
    let (out, m) = night(values, "r/3", &[]);
    out.expect_code(9);
    assert_eq!(series(&m, "vod_image_audit_exit_code"), 9.0);
    assert_eq!(series(&m, "vod_image_audit_last_success_timestamp_seconds"), finished(&wd, "r/3"), "{m}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.describe());
}

#[test]
fn a_wrong_secret_stops_with_exit_2_and_leaves_no_run_directory() {
    let cat = TestCatalog::generate(50, 34);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let key =
        [("ALIBABA_CLOUD_ACCESS_KEY_ID", sim::DEFAULT_KEY_ID), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret")];
    let out = Audit::new(&wd, &server).qps(0).credentials(&key).arg("--quiet").run();
    out.expect_code(2);
    assert!(!wd.path().join("out").exists(), "no run directory is left\n{}", out.describe());
    assert_eq!(out.stderr.lines().count(), 1, "one line\n{}", out.describe());
    assert!(out.stderr.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"), "{}", out.describe());
    for never in ["resume", "role settings", "run again"] {
        assert!(!out.stderr.contains(never), "no {never:?} advice for a plain key\n{}", out.describe());
    }
}

#[test]
fn check_and_run_against_an_endpoint_that_is_down_ask_whether_it_is_running() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let wd = Workdir::new();
    wd.write("ids.csv", "ImageId\nabc\n");
    let env = sim_env();
    for args in [
        vec!["check", "--endpoint", &url, "--image-id", "abc", "--timeout", "2s"],
        vec![
            "run",
            "--endpoint",
            &url,
            "--input",
            "ids.csv",
            "--out",
            "out",
            "--quiet",
            "--timeout",
            "2s",
            "--down-after",
            "0s",
        ],
    ] {
        let out = wd.run(&args, &env, None);
        assert_ne!(out.code, 0, "{}", out.describe());
        assert!(out.stderr.contains("is the endpoint running"), "the hint names the cause\n{}", out.describe());
        assert!(!out.stderr.contains("role settings"), "{}", out.describe());
    }
}
