//! Where calls go and with which key: the region's endpoint, a host that
//! does not resolve, and every source of the credential chain, each run's
//! calls checked by the simulator's signature and token checks.

use crate::common::{id_file, sim_env, Audit, SimServer, TestCatalog, Workdir};

#[test]
fn dry_run_prints_the_regions_endpoint_and_source_without_a_call() {
    let wd = Workdir::new();
    let out = wd.run(&["check", "--dry-run", "--region", "cn-hangzhou"], &sim_env(), None);
    out.expect_code(0);
    assert!(out.stdout.contains("vod.cn-shanghai.aliyuncs.com"), "{}", out.describe());
    assert!(out.stdout.contains("cn-hangzhou"), "{}", out.describe());
    assert!(out.stdout.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{}", out.describe());

    let out = wd.run(&["check", "--dry-run", "--region", "ap-southeast-1", "--vpc"], &sim_env(), None);
    out.expect_code(0);
    assert!(out.stdout.contains("https://vod-vpc.ap-southeast-1.aliyuncs.com/"), "{}", out.describe());
    let mut env = sim_env();
    env.push(("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "TRUE"));
    let out = wd.run(&["check", "--dry-run", "--region", "cn-beijing"], &env, None);
    out.expect_code(0);
    assert!(out.stdout.contains("https://vod-vpc.cn-beijing.aliyuncs.com/"), "{}", out.describe());
}

#[test]
fn an_unknown_region_is_a_usage_error_naming_it() {
    let wd = Workdir::new();
    let out = wd.run(&["check", "--dry-run", "--region", "cn-shanghia"], &sim_env(), None);
    out.expect_code(2);
    assert!(out.stderr.contains("cn-shanghia") && out.stderr.contains("cn-shanghai"), "{}", out.describe());
    let out = wd.run(&["check", "--image-id", "abc", "--region", "cn-shanghia"], &sim_env(), None);
    out.expect_code(2);
    assert!(out.stderr.contains("cn-shanghia"), "{}", out.describe());
}

#[test]
fn a_host_that_does_not_resolve_is_named_check_2_run_4() {
    let cat = TestCatalog::generate(3, 31);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let bad = "https://vod.no-such-region.invalid/";
    let out = Audit::check(&wd, &server, &cat.ids()[0]).endpoint(bad).run();
    out.expect_code(2);
    assert!(out.stderr.contains("vod.no-such-region.invalid"), "{}", out.describe());
    let out = Audit::new(&wd, &server).endpoint(bad).run();
    out.expect_code(4);
    assert!(out.stderr.contains("vod.no-such-region.invalid"), "{}", out.describe());
    assert!(!out.stderr.contains("looks down"), "not an outage: {}", out.describe());
    assert_eq!(server.stats().requests, 0);
}
