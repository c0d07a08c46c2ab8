//! Throttling as the service may signal it: recognised by `x-acs-retry-after`
//! whatever the answer's code and status (vod-openapi.md §4), waited out,
//! never a failure; and a throttle that never ends, which stops the run
//! resumably at `--down-after` instead of stalling it silently.
//!
//! The real binary against the in-process simulator on 127.0.0.1:0, its
//! quota answered `403 Forbidden.FlowControl` (`ThrottleStyle::ForbiddenFlowControl`).

use std::collections::BTreeMap;

use crate::common::{csv_rows, id_file, unknown_ids, Audit, Output, SimServer, TestCatalog, Workdir};
use vod_image_audit::sim::{QuotaAction, SimConfig, Stats, ThrottleStyle};

/// `n` catalog images and `misses` unknown ids (spread through the file),
/// through a simulator set by `tweak`.
fn throttled_setup(n: usize, misses: usize, seed: u64, tweak: impl FnOnce(&mut SimConfig)) -> Bed {
    let cat = TestCatalog::generate(n, seed);
    let mut config = cat.config();
    config.seed = seed;
    config.throttle_style = ThrottleStyle::ForbiddenFlowControl;
    tweak(&mut config);
    let server = SimServer::start(config);
    let unknown = unknown_ids(misses, seed as u32);
    let mut ids = cat.ids();
    for (i, m) in unknown.iter().enumerate() {
        ids.insert((i * 8 + 3).min(ids.len()), m.clone());
    }
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&ids));
    Bed { cat, unknown, ids, server, wd }
}

struct Bed {
    cat: TestCatalog,
    unknown: Vec<String>,
    ids: Vec<String>,
    server: SimServer,
    wd: Workdir,
}

impl Bed {
    /// Every id of the input in images.csv of `out` as the catalog has it:
    /// found with its own data, or missing; none failed, none left out.
    fn assert_exact_report(&self, out_dir: &str, out: &Output) {
        let rows: BTreeMap<String, _> = csv_rows(&self.wd.read(&format!("{out_dir}/images.csv")))
            .into_iter()
            .map(|r| (r["image_id"].clone(), r))
            .collect();
        assert_eq!(rows.len(), self.ids.len(), "one row per input id\n{}", out.describe());
        for (id, info) in &self.cat.by_id {
            let row = &rows[id];
            assert_eq!(row["outcome"], "found", "{id}: {row:?}\n{}", out.describe());
            assert_eq!(row["title"], info.title.clone().unwrap_or_default(), "{id}");
            assert_eq!(row["audit_status"], info.audit_status.clone().unwrap_or_default(), "{id}");
            assert_eq!(row["status"], info.status.clone().unwrap_or_default(), "{id}");
            assert_eq!(row["url"], info.url.clone().unwrap_or_default(), "{id}");
        }
        for id in &self.unknown {
            assert_eq!(rows[id]["outcome"], "missing", "{id}\n{}", out.describe());
        }
        let summary = self.wd.json(&format!("{out_dir}/summary.json"));
        assert_eq!(summary["complete"], true, "{}", out.describe());
        assert_eq!(summary["totals"]["found"], self.cat.by_id.len() as u64);
        assert_eq!(summary["totals"]["missing"], self.unknown.len() as u64);
        assert_eq!(summary["totals"]["failed"], 0);
        assert_eq!(summary["totals"]["not_attempted"], 0);
    }
}

fn throttled_answers(stats: &Stats) -> u64 {
    stats.quota.get(QuotaAction::GetImageInfo.as_str()).map_or(0, |q| q.throttled)
}

#[test]
fn a_403_forbidden_flowcontrol_with_x_acs_retry_after_is_waited_out_and_the_report_is_exact() {
    // GetImageInfo at 60 calls/s, asked for at 300: every second's 61st call
    // is answered 403 Forbidden.FlowControl with the milliseconds left in
    // the window as x-acs-retry-after.
    let bed = throttled_setup(120, 15, 261, |c| c.qps = Some(60));
    let out = Audit::new(&bed.wd, &bed.server).qps(300).concurrency(16).arg("--csv-safe=false").run();
    out.expect_code(0);
    bed.assert_exact_report("out", &out);

    let stats = bed.server.stats();
    let throttled = throttled_answers(&stats);
    assert!(throttled > 0, "the quota never bit: {:?}", stats.quota);
    assert_eq!(stats.by_code.get("Forbidden.FlowControl"), Some(&throttled), "{:?}", stats.by_code);
    for id in &bed.ids {
        assert_eq!(stats.answers_by_image.get(id), Some(&1), "{id} answered once, never twice");
    }
    // Each throttled answer counted as throttled, none as a failure.
    let manifest = bed.wd.json("out/manifest.json");
    assert_eq!(manifest["calls"]["throttled"], throttled, "{manifest}");
    assert_eq!(manifest["calls"]["total"], stats.requests, "{manifest}");
    let closing = format!("{} calls, {throttled} throttled", stats.requests);
    assert!(out.stderr.contains(&closing), "expected {closing:?}\n{}", out.describe());
}

#[test]
fn a_403_forbidden_flowcontrol_whose_x_acs_retry_after_is_no_hint_stops_the_run_as_before() {
    for value in ["0", "", "abc"] {
        let bed = throttled_setup(6, 0, 262, |c| {
            c.api_qps.insert(QuotaAction::GetImageInfo, Some(0));
            c.throttle_retry_after = Some(value.to_owned());
        });
        let out = Audit::new(&bed.wd, &bed.server).concurrency(1).run();
        out.expect_code(4);
        let want = "stopped by a fatal API error: Forbidden.FlowControl";
        assert!(out.stderr.contains(want), "x-acs-retry-after {value:?}: expected {want:?}\n{}", out.describe());
        assert_eq!(bed.server.stats().requests, 1, "x-acs-retry-after {value:?}: stopped at the first answer");
        let summary = bed.wd.json("out/summary.json");
        assert_eq!(summary["complete"], false);
        assert_eq!(summary["totals"]["not_attempted"], 5, "{summary}");
    }
}

/// What `--down-after` says when every answer has been a throttle for it.
const THROTTLED_TOO_LONG: &str =
    "throttled without pause for 2s: the quota may be used up by other traffic; run the same command again later to resume";

#[test]
fn a_throttle_that_never_ends_stops_the_run_at_down_after_and_the_same_command_resumes_it() {
    // Five GetImageInfo calls a second, then 403 Forbidden.FlowControl
    // asking for 999999999 ms (11 days; each hint is capped at 2 minutes).
    let mut bed = throttled_setup(40, 5, 263, |c| {
        c.api_qps.insert(QuotaAction::GetImageInfo, Some(5));
        c.throttle_retry_after = Some("999999999".to_owned());
    });
    let audit =
        Audit::new(&bed.wd, &bed.server).qps(100).concurrency(4).args(["--down-after", "2s", "--csv-safe=false"]);
    // Without --down-after counting throttled time, each call waits out the
    // 2-minute cap: the limit is the test's, not a bound on the tool's time.
    let out = audit.spawn("throttled").wait(std::time::Duration::from_secs(30));
    out.expect_code(4);
    assert!(out.stderr.contains(THROTTLED_TOO_LONG), "expected {THROTTLED_TOO_LONG:?}\n{}", out.describe());
    let summary = bed.wd.json("out/summary.json");
    assert_eq!(summary["complete"], false, "{}", out.describe());
    assert!(summary["stop_reason"].as_str().unwrap().contains(THROTTLED_TOO_LONG), "{summary}");
    let t = &summary["totals"];
    let settled = t["found"].as_u64().unwrap() + t["missing"].as_u64().unwrap();
    assert!(settled >= 1, "the calls within the quota were answered: {summary}");
    assert_eq!(settled + t["failed"].as_u64().unwrap() + t["not_attempted"].as_u64().unwrap(), 45, "{summary}");
    let stats = bed.server.stats();
    let manifest = bed.wd.json("out/manifest.json");
    assert_eq!(manifest["exit_code"], 4);
    assert_eq!(manifest["calls"]["throttled"], throttled_answers(&stats), "{manifest}");
    assert!(throttled_answers(&stats) >= 1);
    let answered_first: Vec<String> = stats.answers_by_image.keys().cloned().collect();

    // The same command, once the quota is free again: the run finishes,
    // exactly, and what the first run settled is not asked again.
    // On the same address: a run directory belongs to one endpoint.
    let throttling = std::mem::replace(&mut bed.server, SimServer::start(bed.cat.config()));
    let healthy = throttling.restart(bed.cat.config());
    let out = audit.run();
    out.expect_code(0);
    bed.assert_exact_report("out", &out);
    let stats = healthy.stats();
    for id in &bed.ids {
        let (before, now) = (answered_first.contains(id), stats.answers_by_image.get(id));
        assert!(before != now.is_some(), "{id}: answered before {before}, now {now:?}");
    }
}
