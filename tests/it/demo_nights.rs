//! `demo` as several nights (issue 29, item 3): each night in its own run
//! directory under `--out`, compared with the night before, the simulated
//! account changed by `simulate --night`'s changes; and a `--out` left by the
//! earlier one-directory demo is left alone. `--sample` keeps each night to
//! a second or so.

use serde_json::Value;
use vod_image_audit::sim::night;

use crate::common::*;

/// Rows of the bundled sample each test night audits.
const SAMPLE: &str = "150";

fn demo(wd: &Workdir, extra: &[&str]) -> Output {
    let mut args = vec!["demo", "--out", "demo", "--progress", "never", "--sample", SAMPLE];
    args.extend_from_slice(extra);
    wd.run(&args, &[], None)
}

fn counts(wd: &Workdir, night: u32) -> Value {
    wd.json(&format!("demo/night-{night}/summary.json"))["changes"]["counts"].clone()
}

#[test]
fn a_second_demo_is_night_2_compared_with_night_1() {
    let wd = Workdir::new();
    let first = demo(&wd, &[]);
    assert_eq!(first.code, 0, "{}", first.describe());
    assert!(wd.path().join("demo/night-1/manifest.json").is_file(), "{}", first.describe());
    assert!(wd.json("demo/night-1/summary.json")["changes"].is_null(), "night 1 has nothing to compare with");
    assert!(first.stdout.contains("run `demo` again for night 2"), "{}", first.describe());

    let second = demo(&wd, &[]);
    assert_eq!(second.code, 0, "{}", second.describe());
    assert!(wd.path().join("demo/night-1/manifest.json").is_file(), "night 1 is kept: {}", second.describe());
    let c = counts(&wd, 2);
    assert_eq!(c["unblocked"], night::UNBLOCKED_PER_NIGHT as u64, "{c}\n{}", second.describe());
    let unique = |n: u32| wd.json(&format!("demo/night-{n}/summary.json"))["totals"]["unique_ids"].as_u64().unwrap();
    assert_eq!(unique(2), unique(1) + night::ADDED_PER_NIGHT as u64, "the images uploaded on night 2 are audited");
    assert_eq!(c["newly_missing"], night::DELETED_PER_NIGHT as u64, "{c}\n{}", second.describe());
    assert_eq!(c["newly_blocked"], night::BLOCKED_PER_NIGHT as u64, "{c}\n{}", second.describe());
    let compared = wd.json("demo/night-2/summary.json")["changes"]["compared_with"].as_str().unwrap_or("").to_owned();
    assert!(compared.ends_with("night-1"), "compared with {compared:?}");
    let page = wd.read("demo/night-2/summary.html");
    assert!(page.contains("Trend over the last 2 runs"), "the page draws the trend of the two nights");
    for wanted in ["night 2: the changes since night 1 are in", "changes.csv", "summary.html"] {
        assert!(second.stdout.contains(wanted), "closing lines lack {wanted:?}: {}", second.describe());
    }
}

#[test]
fn demo_nights_3_runs_three_nights_each_compared_with_the_one_before() {
    let wd = Workdir::new();
    let out = demo(&wd, &["--nights", "3"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    for n in 1..=3u32 {
        assert!(wd.path().join(format!("demo/night-{n}/manifest.json")).is_file(), "night {n}: {}", out.describe());
    }
    let compared = wd.json("demo/night-3/summary.json")["changes"]["compared_with"].as_str().unwrap_or("").to_owned();
    assert!(compared.ends_with("night-2"), "night 3 compared with {compared:?}");
    assert_eq!(counts(&wd, 3)["newly_missing"], night::DELETED_PER_NIGHT as u64);
    assert!(wd.read("demo/night-3/summary.html").contains("Trend over the last 3 runs"));
    assert!(out.stdout.contains("night 3: the changes since night 2"), "{}", out.describe());
}

#[test]
fn a_demo_directory_left_by_the_one_directory_demo_is_left_alone() {
    let wd = Workdir::new();
    // The earlier demo wrote one run straight into --out.
    let old_manifest = r#"{"complete":true,"note":"an earlier one-directory demo"}"#;
    wd.write("demo/manifest.json", old_manifest);
    wd.write("demo/images.csv", "image_id\nabc\n");
    let out = demo(&wd, &[]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert!(
        out.stdout.contains("earlier one-directory demo"),
        "says what it does with the old files: {}",
        out.describe()
    );
    assert_eq!(wd.read("demo/manifest.json"), old_manifest, "the old run's files are not touched");
    assert_eq!(wd.read("demo/images.csv"), "image_id\nabc\n");
    assert!(wd.path().join("demo/night-1/manifest.json").is_file(), "{}", out.describe());
}

#[test]
fn an_interrupted_night_is_run_again_not_skipped() {
    let wd = Workdir::new();
    let first = demo(&wd, &[]);
    assert_eq!(first.code, 0, "{}", first.describe());
    // Night 2 began and never finished: a run directory without a manifest.
    wd.write("demo/night-2/journal.jsonl", "");
    let second = demo(&wd, &[]);
    assert_eq!(second.code, 0, "{}", second.describe());
    assert!(wd.path().join("demo/night-2/manifest.json").is_file(), "{}", second.describe());
    assert!(!wd.path().join("demo/night-3").exists(), "{}", second.describe());
    assert!(counts(&wd, 2).is_object(), "night 2 is compared with night 1");
}
