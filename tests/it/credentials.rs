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

/// A host that does not resolve is a mistake in the configuration, not an
/// outage to ride out: every command that calls the service says so with
/// exit 2 (usage), naming the host, before any file is written.
#[test]
fn a_host_that_does_not_resolve_is_named_with_exit_2_by_every_command() {
    let cat = TestCatalog::generate(3, 31);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let bad = "https://vod.no-such-region.invalid/";
    let out = Audit::check(&wd, &server, &cat.ids()[0]).endpoint(bad).run();
    out.expect_code(2);
    assert!(out.stderr.contains("vod.no-such-region.invalid"), "{}", out.describe());
    let out = Audit::new(&wd, &server).endpoint(bad).run();
    out.expect_code(2);
    assert!(out.stderr.contains("vod.no-such-region.invalid"), "{}", out.describe());
    assert!(!out.stderr.contains("looks down"), "not an outage: {}", out.describe());
    assert!(!wd.path().join("out").exists(), "a refused start leaves nothing behind");
    let out = Audit::new(&wd, &server)
        .no_input()
        .no_out()
        .subcommand("list-images")
        .args(["--out", "listed.csv"])
        .endpoint(bad)
        .run();
    out.expect_code(2);
    assert!(out.stderr.contains("vod.no-such-region.invalid"), "{}", out.describe());
    assert!(!wd.path().join("listed.csv").exists(), "{}", out.describe());
    assert_eq!(server.stats().requests, 0);
}

const ACCOUNT: &str = vod_image_audit::sim::DEFAULT_ACCOUNT_ID;
const OIDC_PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-sim";
const OIDC_TOKEN: &str = "eyJzaW0iOiJvaWRjLXRva2VuIn0.not-a-real-token";
/// An STS key the simulator knows, with its token: a static one.
const STS_ID: &str = "STS.STATIC-KEY";
const STS_SECRET: &str = "sim-static-sts-secret";
const STS_TOKEN: &str = "sim-static-sts-token";

fn role_arn(name: &str) -> String {
    format!("acs:ram::{ACCOUNT}:role/{name}")
}

/// A simulator with the default key, a static STS key, a role `auditor`,
/// an OIDC provider and an instance role `ecs-auditor`.
fn server_with_roles(cat: &TestCatalog, tune: impl FnOnce(&mut vod_image_audit::sim::SimConfig)) -> SimServer {
    let mut config = cat.config();
    config.keys.push(vod_image_audit::sim::SimKey {
        id: STS_ID.into(),
        secret: STS_SECRET.into(),
        sts_token: Some(STS_TOKEN.into()),
    });
    config.roles = vec!["auditor".into()];
    config.oidc = Some((OIDC_PROVIDER.into(), OIDC_TOKEN.into()));
    config.ecs_role = Some("ecs-auditor".into());
    tune(&mut config);
    SimServer::start(config)
}

fn action_count(server: &SimServer, key: &str) -> u64 {
    server.stats().by_action.get(key).copied().unwrap_or(0)
}

/// Every VOD call the simulator answered passed its signature and token
/// checks: the only codes are OK (and no error at all).
fn all_calls_ok(server: &SimServer, n: u64) {
    let stats = server.stats();
    assert_eq!(stats.by_code.get("OK").copied(), Some(n), "{stats:?}");
    assert_eq!(stats.by_code.len(), 1, "only OK answers: {stats:?}");
}

const CLI_CONFIG: &str = r#"{
    "current": "ak",
    "profiles": [
        {"name": "ak", "mode": "ak", "access_key_id": "SIMULATOR-KEY-ID", "access_key_secret": "simulator-secret-not-a-real-key"},
        {"name": "sts-inferred", "mode": "", "access_key_id": "STS.STATIC-KEY", "access_key_secret": "sim-static-sts-secret", "sts_token": "sim-static-sts-token"},
        {"name": "role", "mode": "RAMROLEARN", "access_key_id": "SIMULATOR-KEY-ID", "access_key_secret": "simulator-secret-not-a-real-key", "ram_role_arn": "acs:ram::1234567890123456:role/auditor", "ram_session_name": "nightly"},
        {"name": "role-inferred", "access_key_id": "SIMULATOR-KEY-ID", "access_key_secret": "simulator-secret-not-a-real-key", "ram_role_arn": "acs:ram::1234567890123456:role/auditor"},
        {"name": "chain", "mode": "ChainableRamRoleArn", "source_profile": "ak", "ram_role_arn": "acs:ram::1234567890123456:role/auditor"},
        {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "ecs-auditor"},
        {"name": "ecs-discover", "mode": "ecsramrole"},
        {"name": "oidc", "mode": "OIDC", "ram_role_arn": "acs:ram::1234567890123456:role/auditor", "oidc_provider_arn": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-sim", "oidc_token_file": "TOKEN_FILE"},
        {"name": "uri", "mode": "CredentialsURI", "credentials_uri": "URI"},
        {"name": "sso", "mode": "CloudSSO"},
        {"name": "no-role", "mode": "RamRoleArn", "access_key_id": "SIMULATOR-KEY-ID", "access_key_secret": "simulator-secret-not-a-real-key", "ram_role_arn": "acs:ram::1234567890123456:role/nobody"},
        {"name": "bad-arn", "mode": "RamRoleArn", "access_key_id": "SIMULATOR-KEY-ID", "access_key_secret": "simulator-secret-not-a-real-key", "ram_role_arn": "acs:ram::oops:rol/x"}
    ]
}"#;

fn write_cli_config(wd: &Workdir, server: &SimServer) {
    let token = wd.write("oidc-token", OIDC_TOKEN);
    let text = CLI_CONFIG
        .replace("TOKEN_FILE", token.to_str().unwrap())
        .replace("\"URI\"", &format!("\"{}__sim/credentials-uri\"", server.url));
    wd.write("home/.aliyun/config.json", text);
}

#[test]
fn check_names_the_caller_and_run_records_it() {
    let cat = TestCatalog::generate(4, 41);
    let server = server_with_roles(&cat, |_| {});
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::check(&wd, &server, &cat.ids()[0]).run();
    out.expect_code(0);
    assert!(out.stderr.contains(&format!("account {ACCOUNT}")), "{}", out.describe());
    assert!(out.stderr.contains(&format!("acs:ram::{ACCOUNT}:user/simulator")), "{}", out.describe());
    assert!(out.stderr.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{}", out.describe());
    Audit::new(&wd, &server).run().expect_code(0);
    let m = wd.json("out/manifest.json");
    assert_eq!(m["account_id"], ACCOUNT);
    assert_eq!(m["identity_arn"], format!("acs:ram::{ACCOUNT}:user/simulator"));
    assert!(m["credentials_source"].as_str().unwrap().contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{m}");
    assert_eq!(action_count(&server, "GetCallerIdentity OK"), 2);
}

#[test]
fn every_cli_profile_mode_signs_calls_the_simulator_accepts() {
    let cat = TestCatalog::generate(3, 42);
    let server = server_with_roles(&cat, |_| {});
    let wd = Workdir::new();
    write_cli_config(&wd, &server);
    let id = cat.ids()[0].clone();
    let meta = server.url.clone();
    let mut answered = 0;
    for (profile, arn_part) in [
        ("ak", "user/simulator"),
        ("sts-inferred", "user/simulator"),
        ("role", "assumed-role/auditor/nightly"),
        ("role-inferred", "assumed-role/auditor/"),
        ("chain", "assumed-role/auditor/"),
        ("ecs", "assumed-role/ecs-auditor/"),
        ("ecs-discover", "assumed-role/ecs-auditor/"),
        ("oidc", "assumed-role/auditor/"),
        ("uri", "assumed-role/uri-role/"),
    ] {
        let out = Audit::check(&wd, &server, &id)
            .credentials(&[])
            .env("VOD_IMAGE_AUDIT_METADATA_ENDPOINT", &meta)
            .args(["--profile", profile])
            .run();
        out.expect_code(0);
        answered += 1;
        assert!(out.stderr.contains(&format!("profile {profile} in")), "{}", out.describe());
        assert!(out.stderr.contains(arn_part), "{profile}: {}", out.describe());
        all_calls_ok(&server, answered);
    }
    assert!(action_count(&server, "AssumeRole OK") >= 3);
    assert!(action_count(&server, "AssumeRoleWithOIDC OK") >= 1);
    assert!(action_count(&server, "MetadataRoleList.v2 OK") >= 1, "{:?}", server.stats());
    assert!(action_count(&server, "CredentialsURI OK") >= 1);

    // The file's current profile, with no flag.
    let out = Audit::check(&wd, &server, &id).credentials(&[]).run();
    out.expect_code(0);
    assert!(out.stderr.contains("profile ak in"), "{}", out.describe());
}

#[test]
fn profile_and_role_errors_say_what_to_fix() {
    let cat = TestCatalog::generate(3, 43);
    let server = server_with_roles(&cat, |c| c.assume_role_denied = vec!["DENIED-KEY".into()]);
    let wd = Workdir::new();
    write_cli_config(&wd, &server);
    let id = cat.ids()[0].clone();
    let check = |profile: &str| Audit::check(&wd, &server, &id).credentials(&[]).args(["--profile", profile]).run();
    let out = check("sso");
    out.expect_code(2);
    assert!(out.stderr.contains("\"CloudSSO\"") && out.stderr.contains("RamRoleArn, EcsRamRole"), "{}", out.describe());
    let out = check("no-role");
    out.expect_code(2);
    assert!(
        out.stderr.contains("EntityNotExist.Role") && out.stderr.contains("check the role ARN"),
        "{}",
        out.describe()
    );
    let out = check("bad-arn");
    out.expect_code(2);
    assert!(out.stderr.contains("InvalidParameter.RoleArn"), "{}", out.describe());
    assert_eq!(server.stats().requests, 0, "no VOD call without a key");
}

#[test]
fn assume_role_without_permission_is_named() {
    let cat = TestCatalog::generate(3, 44);
    let server = server_with_roles(&cat, |c| c.assume_role_denied = vec![vod_image_audit::sim::DEFAULT_KEY_ID.into()]);
    let wd = Workdir::new();
    write_cli_config(&wd, &server);
    let out = Audit::check(&wd, &server, &cat.ids()[0]).credentials(&[]).args(["--profile", "role"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("NoPermission") && out.stderr.contains("sts:AssumeRole"), "{}", out.describe());
}

#[test]
fn oidc_from_the_environment_runs_and_reads_the_token_file() {
    let cat = TestCatalog::generate(10, 45);
    let server = server_with_roles(&cat, |_| {});
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let token = wd.write("token", format!("{OIDC_TOKEN}\n"));
    let arn = role_arn("auditor");
    let run = Audit::new(&wd, &server).credentials(&[
        ("ALIBABA_CLOUD_ROLE_ARN", &arn),
        ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", OIDC_PROVIDER),
        ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token.to_str().unwrap()),
        ("ALIBABA_CLOUD_ROLE_SESSION_NAME", "rrsa-session"),
    ]);
    run.run().expect_code(0);
    all_calls_ok(&server, 10);
    let m = wd.json("out/manifest.json");
    assert!(m["credentials_source"].as_str().unwrap().contains("OIDC role"), "{m}");
    assert_eq!(m["identity_arn"], format!("acs:ram::{ACCOUNT}:assumed-role/auditor/rrsa-session"));
    assert_eq!(action_count(&server, "AssumeRoleWithOIDC OK"), 1);

    // A token the provider refuses.
    wd.write("token", "not-the-token");
    let out = run.clone().out("r2").run();
    out.expect_code(2);
    assert!(out.stderr.contains("AuthenticationFail") && out.stderr.contains("OIDC token"), "{}", out.describe());
}

#[test]
fn the_credentials_file_in_each_type() {
    let cat = TestCatalog::generate(3, 46);
    let server = server_with_roles(&cat, |_| {});
    let wd = Workdir::new();
    let file = wd.write(
        "alibabacloud-credentials.ini",
        "[default]\ntype = access_key\naccess_key_id = SIMULATOR-KEY-ID\naccess_key_secret = simulator-secret-not-a-real-key\n\n\
         [role]\ntype = ram_role_arn\naccess_key_id = SIMULATOR-KEY-ID\naccess_key_secret = simulator-secret-not-a-real-key\n\
         role_arn = acs:ram::1234567890123456:role/auditor\nrole_session_name = from-ini\n\n\
         [ecs]\ntype = ecs_ram_role\nrole_name = ecs-auditor\n\n[odd]\ntype = bearer\n",
    );
    let file = file.to_str().unwrap().to_owned();
    let id = cat.ids()[0].clone();
    let check = |section: Option<&str>| {
        let mut a = Audit::check(&wd, &server, &id)
            .credentials(&[])
            .env("ALIBABA_CLOUD_CREDENTIALS_FILE", &file)
            .env("VOD_IMAGE_AUDIT_METADATA_ENDPOINT", &server.url);
        if let Some(s) = section {
            a = a.env("ALIBABA_CLOUD_PROFILE", s);
        }
        a.run()
    };
    let out = check(None);
    out.expect_code(0);
    assert!(out.stderr.contains("section [default]"), "{}", out.describe());
    let out = check(Some("role"));
    out.expect_code(0);
    assert!(out.stderr.contains("assumed-role/auditor/from-ini"), "{}", out.describe());
    let out = check(Some("ecs"));
    out.expect_code(0);
    assert!(out.stderr.contains("assumed-role/ecs-auditor/"), "{}", out.describe());
    all_calls_ok(&server, 3);
    let out = check(Some("odd"));
    out.expect_code(2);
    assert!(out.stderr.contains("\"bearer\"") && out.stderr.contains("access_key, ecs_ram_role"), "{}", out.describe());

    // The default place, without the variable.
    let text = std::fs::read_to_string(&file).unwrap();
    wd.write("home/.alibabacloud/credentials.ini", text);
    let out = Audit::check(&wd, &server, &id).credentials(&[]).run();
    out.expect_code(0);
    assert!(out.stderr.contains("section [default]") && out.stderr.contains("credentials.ini"), "{}", out.describe());
}

#[test]
fn the_instance_role_with_imdsv2_and_the_imdsv1_fallback() {
    let cat = TestCatalog::generate(5, 47);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let ecs = |server: &SimServer| {
        Audit::new(&wd, server)
            .credentials(&[("ALIBABA_CLOUD_ECS_METADATA", "ecs-auditor")])
            .env("VOD_IMAGE_AUDIT_METADATA_ENDPOINT", &server.url)
    };
    let v2 = server_with_roles(&cat, |_| {});
    ecs(&v2).out("v2").run().expect_code(0);
    all_calls_ok(&v2, 5);
    assert!(action_count(&v2, "MetadataCredentials.v2 OK") >= 1, "{:?}", v2.stats());
    assert_eq!(action_count(&v2, "MetadataCredentials.v1 OK"), 0);
    assert!(wd.json("v2/manifest.json")["credentials_source"].as_str().unwrap().contains("ECS instance RAM role"));

    let v1 = server_with_roles(&cat, |c| c.imds_v2 = false);
    ecs(&v1).out("v1").run().expect_code(0);
    all_calls_ok(&v1, 5);
    assert!(action_count(&v1, "MetadataCredentials.v1 OK") >= 1, "{:?}", v1.stats());

    let out = ecs(&v1).out("v1-off").env("ALIBABA_CLOUD_IMDSV1_DISABLED", "true").run();
    out.expect_code(2);
    assert!(
        out.stderr.contains("IMDSv2") && out.stderr.contains("ALIBABA_CLOUD_IMDSV1_DISABLED"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_credentials_uri() {
    let cat = TestCatalog::generate(5, 48);
    let server = server_with_roles(&cat, |_| {});
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let uri = format!("{}__sim/credentials-uri", server.url);
    Audit::new(&wd, &server).credentials(&[("ALIBABA_CLOUD_CREDENTIALS_URI", &uri)]).run().expect_code(0);
    all_calls_ok(&server, 5);
    assert!(action_count(&server, "CredentialsURI OK") >= 1);
    assert!(wd.json("out/manifest.json")["credentials_source"].as_str().unwrap().contains("credentials URI"));
}

/// Keys that live 10 s, a run of some 20 s: renewed before they expire,
/// so no call ever meets an expired token.
#[test]
fn short_lived_role_keys_are_renewed_during_a_run() {
    let cat = TestCatalog::generate(40, 49);
    let server = server_with_roles(&cat, |c| c.sts_duration = vod_image_audit::sim::MIN_STS_DURATION);
    let wd = Workdir::new();
    write_cli_config(&wd, &server);
    wd.write("ids.csv", id_file(&cat.ids()));
    Audit::new(&wd, &server).credentials(&[]).args(["--profile", "role"]).qps(2).concurrency(2).run().expect_code(0);
    let stats = server.stats();
    assert!(action_count(&server, "AssumeRole OK") >= 2, "{stats:?}");
    assert_eq!(stats.by_code.get("InvalidSecurityToken.Expired"), None, "{stats:?}");
    all_calls_ok(&server, 40);
}

/// A static token from the environment cannot be renewed: when it expires
/// the run stops at once, resumable, and resumes with fresh credentials.
#[test]
fn a_static_token_that_expires_stops_the_run_resumably() {
    let cat = TestCatalog::generate(30, 50);
    let expires = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    let server = server_with_roles(&cat, |c| c.static_token_expires = Some(expires));
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server)
        .credentials(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", STS_ID),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", STS_SECRET),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", STS_TOKEN),
        ])
        .qps(5)
        .concurrency(1)
        .run();
    out.expect_code(4);
    assert!(
        out.stderr.contains("the STS token expired at") && out.stderr.contains("use a RAM role source"),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains(STS_TOKEN), "the token never shows: {}", out.describe());
    assert_eq!(server.stats().by_code.get("InvalidSecurityToken.Expired"), Some(&1));
    let resumed = Audit::new(&wd, &server).run();
    resumed.expect_code(0);
    assert!(resumed.stderr.contains("resuming"), "{}", resumed.describe());
    assert_eq!(wd.json("out/manifest.json")["complete"], true);
}

/// Renewals that keep failing: tried again while the key lasts, and the
/// run stops, resumable, only once it has expired.
#[test]
fn a_renewal_that_keeps_failing_stops_the_run_once_the_key_expired() {
    let cat = TestCatalog::generate(200, 51);
    let server = server_with_roles(&cat, |c| {
        c.sts_duration = vod_image_audit::sim::MIN_STS_DURATION;
        c.sts_fail_after = Some(1);
    });
    let wd = Workdir::new();
    write_cli_config(&wd, &server);
    wd.write("ids.csv", id_file(&cat.ids()));
    let out = Audit::new(&wd, &server).credentials(&[]).args(["--profile", "role"]).qps(2).concurrency(1).run();
    out.expect_code(4);
    assert!(out.stderr.contains("expired at") && out.stderr.contains("could not be renewed"), "{}", out.describe());
    let stats = server.stats();
    assert_eq!(action_count(&server, "AssumeRole OK"), 1, "{stats:?}");
    assert!(action_count(&server, "AssumeRole ServiceUnavailable") >= 2, "retried: {stats:?}");
    assert_eq!(wd.json("out/manifest.json")["complete"], false);
}

/// `VOD_IMAGE_AUDIT_STS_ENDPOINT` sends STS calls elsewhere than `--endpoint`.
#[test]
fn the_sts_endpoint_override_is_used() {
    let cat = TestCatalog::generate(3, 52);
    let vod = server_with_roles(&cat, |_| {});
    let sts = server_with_roles(&cat, |_| {});
    let wd = Workdir::new();
    write_cli_config(&wd, &vod);
    let dry = wd.run(
        &["check", "--dry-run", "--profile", "role", "--region", "eu-central-1"],
        &[("ALIBABA_CLOUD_STS_REGION", "eu-central-1")],
        None,
    );
    dry.expect_code(0);
    assert!(dry.stdout.contains("sts endpoint: https://sts.eu-central-1.aliyuncs.com/"), "{}", dry.describe());
    let out = Audit::check(&wd, &vod, &cat.ids()[0])
        .credentials(&[])
        .env("VOD_IMAGE_AUDIT_STS_ENDPOINT", &sts.url)
        .args(["--profile", "role"])
        .run();
    // The key came from the other simulator's STS: this one never issued it.
    out.expect_code(4);
    assert!(out.stdout.contains("InvalidAccessKeyId.NotFound"), "{}", out.describe());
    assert!(out.stderr.contains("assumed-role/auditor/nightly"), "{}", out.describe());
    assert_eq!(action_count(&sts, "AssumeRole OK"), 1);
    assert_eq!(action_count(&sts, "GetCallerIdentity OK"), 1);
    assert_eq!(action_count(&vod, "AssumeRole OK"), 0);
}

#[test]
fn a_non_utf8_value_of_a_variable_the_chain_reads_is_named() {
    use std::os::unix::ffi::OsStrExt;
    let cat = TestCatalog::generate(3, 53);
    let server = server_with_roles(&cat, |_| {});
    let wd = Workdir::new();
    let junk = std::ffi::OsStr::from_bytes(b"acs:ram::\xff:role/x");
    for var in ["ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "VOD_IMAGE_AUDIT_STS_ENDPOINT"] {
        let out = Audit::check(&wd, &server, &cat.ids()[0]).run_with(&format!("{var}=<non-UTF-8>"), |c| {
            c.env(var, junk);
        });
        out.expect_code(2);
        assert!(out.stderr.contains(var) && out.stderr.contains("UTF-8"), "{}", out.describe());
    }
    assert_eq!(server.stats().requests, 0);
}
