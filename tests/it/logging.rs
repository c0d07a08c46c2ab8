//! What the tool says on stderr besides its results (issue 29, item 6): a
//! warning is a `vod-image-audit: warning:` line, never a `tracing` line with
//! a timestamp and a module path; `--quiet` keeps a run that ended well
//! silent; `-v`/`-vv` (a global flag) show more.

use std::time::Duration;

use vod_image_audit::sim::{Faults, OutageFault};

use crate::common::*;

/// 120 ids through a simulator that answers 503 to everything for its first
/// second: the outage guard warns, then the service answers again and the
/// run ends well (exit 0; ten attempts, so that no id spends them all in
/// the second before the guard pauses the run).
fn through_a_short_outage(extra: &[&str]) -> Output {
    let cat = TestCatalog::generate(120, 29);
    let mut config = cat.config();
    config.faults =
        Faults { outage: Some(OutageFault { after_calls: 0, lasting: Duration::from_secs(1) }), ..Faults::default() };
    let server = SimServer::start(config);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server)
        .args(["--concurrency", "16", "--qps", "5000", "--max-attempts", "10", "--progress", "never"])
        .args(extra.iter().copied())
        .run();
    out.expect_code(0);
    out
}

#[test]
fn a_warning_is_the_tools_own_line_not_a_tracing_line() {
    let out = through_a_short_outage(&[]);
    assert!(
        out.stderr.contains("vod-image-audit: warning: every call is failing"),
        "the outage is said in the tool's format: {}",
        out.describe()
    );
    assert!(!out.stderr.contains("WARN"), "no tracing line at the default level: {}", out.describe());
    assert!(!out.stderr.contains("vod_image_audit::"), "no module path: {}", out.describe());
}

#[test]
fn quiet_keeps_a_run_that_ended_well_silent_through_an_outage() {
    let out = through_a_short_outage(&["--quiet"]);
    assert_eq!(out.stderr, "", "{}", out.describe());
    assert_eq!(out.stdout, "", "{}", out.describe());
}

#[test]
fn v_and_vv_show_more() {
    let default = through_a_short_outage(&[]);
    assert!(!default.stderr.contains("retrying after"), "{}", default.describe());
    let vv = through_a_short_outage(&["-vv"]);
    assert!(vv.stderr.contains("vod-image-audit: debug: retrying after"), "-vv shows each retry: {}", vv.describe());
    assert!(!vv.stderr.contains("DEBUG"), "{}", vv.describe());
    let v = through_a_short_outage(&["-v"]);
    assert!(v.stderr.contains("vod-image-audit: warning: every call is failing"), "{}", v.describe());
    assert!(!v.stderr.contains("retrying after"), "-v is info, not debug: {}", v.describe());
}
