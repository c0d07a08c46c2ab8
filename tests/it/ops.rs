//! Operating the nightly job: the metrics file for the node_exporter
//! textfile collector (`run --metrics-file`), the one JSON line for wrappers
//! (`run --json`, `diff --json`), and retention (`prune`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::common::{id_file, unknown_ids, Audit, SimServer, TestCatalog, Workdir};

/// One sample: the metric name and its labels, sorted.
type Series = (String, BTreeMap<String, String>);

/// A strict reader of the Prometheus text exposition format (0.0.4), with
/// the rules `promtool check metrics` enforces: every sample's family has
/// one `# TYPE` before its samples, a family's lines are one group, names and
/// label names match their patterns, label values use only the three escapes,
/// values are floats, no series twice, and the text ends with a newline.
fn parse_prometheus(text: &str) -> Result<BTreeMap<Series, f64>, String> {
    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        let first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
        chars.next().is_some_and(first) && chars.all(|c| first(c) || c.is_ascii_digit())
    }
    fn float(s: &str) -> Option<f64> {
        match s {
            "+Inf" | "Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            "NaN" => Some(f64::NAN),
            _ if s.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) => s.parse().ok(),
            _ => None,
        }
    }
    if !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeMap<String, String> = BTreeMap::new();
    let mut done_families: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut samples = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, arg) = (parts.next().unwrap(), parts.next().unwrap_or(""), parts.next());
            if kind != "HELP" && kind != "TYPE" {
                continue; // a comment
            }
            if !is_name(name, true) {
                return Err(at("bad metric name"));
            }
            let seen = if kind == "HELP" { &mut helps } else { &mut types };
            if seen.insert(name.to_owned(), arg.unwrap_or("").to_owned()).is_some() {
                return Err(at("second HELP/TYPE for the family"));
            }
            if kind == "TYPE" {
                if !matches!(arg, Some("counter" | "gauge" | "histogram" | "summary" | "untyped")) {
                    return Err(at("bad type"));
                }
                if samples.keys().any(|(m, _): &Series| m == name) {
                    return Err(at("TYPE after the family's samples"));
                }
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            return Err(at("a line that is neither a comment nor a sample"));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value"))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(at("bad metric name"));
        }
        if !types.contains_key(name) {
            return Err(at("no # TYPE for the metric"));
        }
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end = loop {
                let (i, c) = chars.next().ok_or_else(|| at("unclosed labels"))?;
                if c == '}' {
                    break i;
                }
                let start = i;
                let mut eq = None;
                while let Some(&(j, c)) = chars.peek() {
                    if c == '=' {
                        eq = Some(j);
                        chars.next();
                        break;
                    }
                    chars.next();
                }
                let label = &body[start..eq.ok_or_else(|| at("label without ="))?];
                if !is_name(label, false) || label.starts_with("__") {
                    return Err(at("bad label name"));
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(at("label value not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars.next().ok_or_else(|| at("unterminated label value"))?.1 {
                        '"' => break,
                        '\\' => match chars.next().ok_or_else(|| at("dangling backslash"))?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            _ => return Err(at("bad escape in a label value")),
                        },
                        '\n' => return Err(at("raw newline in a label value")),
                        c => value.push(c),
                    }
                }
                if labels.insert(label.to_owned(), value).is_some() {
                    return Err(at("label twice"));
                }
                match chars.next().ok_or_else(|| at("unclosed labels"))?.1 {
                    ',' => {}
                    '}' => break chars.peek().map_or(body.len(), |&(j, _)| j) - 1,
                    _ => return Err(at("expected , or } after a label")),
                }
            };
            rest = &body[end + 1..];
        }
        let fields: Vec<&str> =
            rest.strip_prefix(' ').ok_or_else(|| at("no space before the value"))?.split(' ').collect();
        if fields.is_empty() || fields.len() > 2 {
            return Err(at("expected a value and at most a timestamp"));
        }
        let value = float(fields[0]).ok_or_else(|| at("value is not a float"))?;
        if fields.len() == 2 && fields[1].parse::<i64>().is_err() {
            return Err(at("bad timestamp"));
        }
        if current.as_deref() != Some(name) {
            if done_families.iter().any(|f| f == name) {
                return Err(at("the family's lines are not one group"));
            }
            if let Some(c) = current.take() {
                done_families.push(c);
            }
            current = Some(name.to_owned());
        }
        if samples.insert((name.to_owned(), labels), value).is_some() {
            return Err(at("the same series twice"));
        }
    }
    if let Some(name) = types.keys().find(|t| !helps.contains_key(*t)) {
        return Err(format!("{name}: # TYPE without # HELP"));
    }
    Ok(samples)
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    (format!("vod_image_audit_{name}"), labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn metrics(wd: &Workdir, name: &str) -> BTreeMap<Series, f64> {
    let text = wd.read(name);
    parse_prometheus(&text).unwrap_or_else(|e| panic!("{name} is not valid exposition text: {e}\n{text}"))
}

fn get(m: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    *m.get(&series(name, labels)).unwrap_or_else(|| panic!("no {name} {labels:?} in {m:#?}"))
}

fn n(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_parser_is_strict() {
    let ok = "# HELP a_b x\n# TYPE a_b gauge\na_b{l=\"q\\\"\\\\\\n\",m=\"\"} 1.5\na_b 2\n";
    let m = parse_prometheus(ok).unwrap();
    assert_eq!(
        m[&("a_b".to_owned(), BTreeMap::from([("l".into(), "q\"\\\n".into()), ("m".into(), String::new())]))],
        1.5
    );
    for bad in [
        "a 1\n",
        "# HELP a x\n# TYPE a gauge\na 1",
        "# HELP a x\n# TYPE a gauge\na one\n",
        "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n",
        "# HELP a x\n# TYPE a gauge\na{l=\"\\x\"} 1\n",
        "# HELP a x\n# TYPE a gauge\na{l=q} 1\n",
        "# HELP a x\n# TYPE a gauge\na 1\na 2\n",
        "# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\na{l=\"1\"} 1\nb 1\na{l=\"2\"} 1\n",
    ] {
        assert!(parse_prometheus(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn metrics_file_holds_every_series_and_keeps_the_last_success_on_failure() {
    let cat = TestCatalog::generate(30, 161);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let mut ids = cat.ids();
    ids.extend(unknown_ids(3, 16));
    wd.write("ids.csv", id_file(&ids));
    std::fs::create_dir(wd.path().join("textfile")).unwrap();
    let prom = "textfile/vod_image_audit.prom";

    let out = Audit::new(&wd, &server).out("reports/a").args(["--metrics-file", prom]).run();
    out.expect_code(0);
    Audit::new(&wd, &server)
        .out("reports/b")
        .args(["--metrics-file", prom, "--compare-with", "reports/a"])
        .run()
        .expect_code(0);
    let m = metrics(&wd, prom);
    let summary = wd.json("reports/b/summary.json");
    let manifest = wd.json("reports/b/manifest.json");
    let totals = &summary["totals"];
    for outcome in ["found", "missing", "failed", "not_attempted"] {
        assert_eq!(get(&m, "ids", &[("outcome", outcome)]), n(&totals[outcome]), "{outcome}");
    }
    assert_eq!(get(&m, "ids", &[("outcome", "missing")]), 3.0);
    let blocked = summary["by_audit_status"].get("Blocked").map_or(0.0, n);
    assert_eq!(get(&m, "blocked", &[]), blocked);
    for (status, count) in summary["by_audit_status"].as_object().unwrap() {
        assert_eq!(get(&m, "images_by_audit_status", &[("audit_status", status)]), n(count), "{status}");
    }
    for (status, count) in summary["by_status"].as_object().unwrap() {
        assert_eq!(get(&m, "images_by_status", &[("status", status)]), n(count), "{status}");
    }
    let changes = summary["changes"]["counts"].as_object().expect("compared");
    assert!(!changes.is_empty());
    for (kind, count) in changes {
        assert_eq!(get(&m, "changes", &[("kind", kind)]), n(count), "{kind}");
    }
    // One action called: its series holds every call.
    assert_eq!(get(&m, "calls", &[("action", "GetImageInfo")]), n(&manifest["calls"]["total"]));
    assert_eq!(get(&m, "throttled_calls", &[("action", "GetImageInfo")]), n(&manifest["calls"]["throttled"]));
    assert_eq!(get(&m, "retries", &[]), n(&manifest["calls"]["retries"]));
    assert_eq!(get(&m, "exit_code", &[]), 0.0);
    // serde_json's default float parsing may be one ulp off.
    let share = n(&summary["audit_status_coverage"]["share"]);
    assert!((get(&m, "audit_status_share", &[]) - share).abs() < 1e-12, "{share}");
    let duration = get(&m, "run_duration_seconds", &[]);
    assert!(duration.is_finite() && duration >= 0.0, "{duration}");
    let success = get(&m, "last_success_timestamp_seconds", &[]);
    let finished = humantime::parse_rfc3339(manifest["finished"].as_str().unwrap()).unwrap();
    let finished = finished.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((finished..finished + 1.0).contains(&success), "{success} vs finished {finished}");
    let only_the_file: Vec<_> =
        std::fs::read_dir(wd.path().join("textfile")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(only_the_file, ["vod_image_audit.prom"], "no temporary file left");

    // A run refused before any call leaves the file alone.
    let before = wd.read(prom);
    Audit::new(&wd, &server)
        .out("reports/c")
        .args(["--metrics-file", prom, "--compare-with", "reports/nope"])
        .run()
        .expect_code(2);
    assert_eq!(wd.read(prom), before);

    // A run that fails (the key revoked after its first call) reports its
    // exit code and keeps the last success.
    let mut config = cat.config();
    config.revoke_key_after = Some(1);
    let revoking = SimServer::start(config);
    let out = Audit::new(&wd, &revoking).out("reports/d").args(["--metrics-file", prom]).run();
    out.expect_code(4);
    let failed = metrics(&wd, prom);
    assert_eq!(get(&failed, "exit_code", &[]), 4.0, "{}", out.describe());
    assert_eq!(get(&failed, "last_success_timestamp_seconds", &[]), success);
    let d = wd.json("reports/d/summary.json");
    assert_eq!(get(&failed, "ids", &[("outcome", "not_attempted")]), n(&d["totals"]["not_attempted"]));
}

#[test]
fn a_first_run_that_fails_has_no_last_success() {
    let cat = TestCatalog::generate(5, 162);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let mut config = cat.config();
    // The key revoked after its first call: a run that stops (exit 4).
    config.revoke_key_after = Some(1);
    let server = SimServer::start(config);
    Audit::new(&wd, &server).args(["--metrics-file", "m.prom"]).run().expect_code(4);
    let m = metrics(&wd, "m.prom");
    assert_eq!(get(&m, "exit_code", &[]), 4.0);
    assert!(!m.contains_key(&series("last_success_timestamp_seconds", &[])), "{m:#?}");
}

#[test]
fn json_prints_one_object_that_matches_the_reports() {
    let cat = TestCatalog::generate(20, 163);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let mut ids = cat.ids();
    ids.extend(unknown_ids(2, 163));
    wd.write("ids.csv", id_file(&ids));
    Audit::new(&wd, &server).out("a").run().expect_code(0);
    let out = Audit::new(&wd, &server).out("b").args(["--json", "--compare-with", "a"]).run();
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 1, "one line\n{}", out.describe());
    let j: Value = serde_json::from_str(out.stdout.trim_end()).unwrap_or_else(|e| panic!("{e}\n{}", out.describe()));
    let summary = wd.json("b/summary.json");
    assert_eq!(j["totals"], summary["totals"]);
    assert_eq!(j["blocked"], summary["by_audit_status"].get("Blocked").cloned().unwrap_or(Value::from(0)));
    assert_eq!(j["changes"], summary["changes"]["counts"]);
    assert_eq!(j["exit_code"], 0);
    assert_eq!(j["complete"], true);
    assert_eq!(j["run_dir"], "b");
    let manifest = wd.json("b/manifest.json");
    let names: Vec<&Value> = manifest["files"].as_array().unwrap().iter().map(|f| &f["name"]).collect();
    let listed: Vec<&Value> = j["files"].as_array().unwrap().iter().collect();
    assert_eq!(listed, names);
    assert_eq!(j["manifest_sha256"].as_str().unwrap(), &wd.read("b/manifest.sha256")[..64]);

    let out = wd.run(&["diff", "a", "b", "--json"], &[], None);
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 1, "only the counts\n{}", out.describe());
    let d: Value = serde_json::from_str(out.stdout.trim_end()).unwrap();
    assert_eq!(d["counts"], summary["changes"]["counts"]);
    assert_eq!(d["compared"], summary["changes"]["compared"]);
    assert_eq!(d["not_compared"], summary["changes"]["not_compared"]);
}

/// A copy of the complete run `from` as `to`, its manifest edited.
fn copy_run(wd: &Workdir, from: &str, to: &str, edit: impl FnOnce(&mut Value)) {
    let (from, to) = (wd.path().join(from), wd.path().join(to));
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    let mut m: Value = serde_json::from_slice(&std::fs::read(to.join("manifest.json")).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(to.join("manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    // As the run would have sealed it: prune removes only runs that verify.
    crate::common::reseal_manifest(&to);
}

fn finished(at: &str) -> impl FnOnce(&mut Value) + '_ {
    move |m| m["finished"] = Value::from(at)
}

fn exists(wd: &Workdir, dir: &str) -> bool {
    wd.path().join("reports").join(dir).exists()
}

#[test]
fn prune_keeps_what_it_must_and_removes_the_rest() {
    let cat = TestCatalog::generate(5, 164);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &server).out("template").run().expect_code(0);
    for (dir, at) in [
        ("d1", "2026-01-01T12:00:00Z"),
        ("d2", "2026-01-02T12:00:00Z"),
        ("d3", "2026-01-03T12:00:00Z"),
        ("d4", "2026-01-04T12:00:00Z"),
        ("d5-early", "2026-01-05T06:00:00Z"),
        ("old-locked", "2025-12-01T12:00:00Z"),
    ] {
        copy_run(&wd, "template", &format!("reports/{dir}"), finished(at));
    }
    copy_run(&wd, "template", "reports/old-compared", finished("2025-11-01T12:00:00Z"));
    copy_run(&wd, "template", "reports/d5", |m| {
        m["finished"] = Value::from("2026-01-05T12:00:00Z");
        m["compared_with"] = Value::from("reports/old-compared");
    });
    copy_run(&wd, "template", "reports/incomplete", |m| {
        m["finished"] = Value::from("2025-10-01T12:00:00Z");
        m["complete"] = Value::from(false);
    });
    copy_run(&wd, "template", "reports/journaled", finished("2025-10-02T12:00:00Z"));
    wd.write("reports/journaled/journal.jsonl", "{}\n");
    wd.write("reports/no-manifest/journal.jsonl", "{}\n");
    copy_run(&wd, "template", "reports/foreign", finished("2025-10-03T12:00:00Z"));
    wd.write("reports/foreign/notes.txt", "mine\n");
    let lock = std::fs::File::create(wd.path().join("reports/old-locked/.vod-image-audit.lock")).unwrap();
    lock.lock().unwrap();

    // A complete run that verifies with a journal beside it was killed
    // before removing the journal: the journal goes, then the run by the rules.
    let removed = ["d1", "d2", "d5-early", "journaled"];
    let kept = ["d3", "d4", "d5", "old-compared", "old-locked", "incomplete", "no-manifest", "foreign"];
    let args = ["prune", "reports", "--keep-last", "1", "--keep-daily", "3"];
    let dry = wd.run(&[&args[..], &["--dry-run"]].concat(), &[], None);
    dry.expect_code(0);
    for dir in removed.iter().chain(&kept) {
        assert!(exists(&wd, dir), "--dry-run removed {dir}\n{}", dry.describe());
    }
    for dir in removed {
        assert!(dry.stdout.lines().any(|l| l.contains("would remove") && l.contains(dir)), "{dir}\n{}", dry.describe());
    }
    assert!(!wd.path().join("reports/d1/.vod-image-audit.lock").exists(), "--dry-run leaves no lock file");
    assert!(wd.path().join("reports/journaled/journal.jsonl").exists(), "--dry-run removed a journal");
    assert!(
        dry.stdout.contains("would remove the journal left beside the complete run reports/journaled"),
        "{}",
        dry.describe()
    );

    let out = wd.run(&args, &[], None);
    out.expect_code(0);
    for dir in removed {
        assert!(!exists(&wd, dir), "{dir} kept\n{}", out.describe());
        assert!(out.stdout.lines().any(|l| l.starts_with("removed") && l.contains(dir)), "{dir}\n{}", out.describe());
    }
    for dir in kept {
        assert!(exists(&wd, dir), "{dir} removed\n{}", out.describe());
        assert!(out.stdout.contains(dir) || out.stderr.contains(dir), "{dir} not named\n{}", out.describe());
    }
    assert!(wd.path().join("reports/foreign/notes.txt").exists());
    assert!(out.stderr.contains("notes.txt"), "the refusal names the file\n{}", out.describe());
    assert!(out.stdout.contains("locked") && out.stdout.contains("compared with"), "{}", out.describe());

    // Once the lock is released, a run older than every kept one goes.
    drop(lock);
    let out = wd.run(&args, &[], None);
    out.expect_code(0);
    assert!(!exists(&wd, "old-locked"), "{}", out.describe());
    assert!(exists(&wd, "old-compared") && exists(&wd, "d5"), "{}", out.describe());
}

#[test]
fn prune_refuses_a_usage_error() {
    let wd = Workdir::new();
    std::fs::create_dir(wd.path().join("reports")).unwrap();
    wd.run(&["prune", "reports"], &[], None).expect_code(2);
    wd.run(&["prune", "nope", "--keep-last", "1"], &[], None).expect_code(2);
    wd.run(&["prune", "reports", "--keep-last", "1"], &[], None).expect_code(0);
    assert!(Path::new(&wd.path().join("reports")).is_dir());
}
