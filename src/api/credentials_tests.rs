//! Unit tests of [`super`] (credentials.rs), kept beside it to keep that file readable.
use super::*;

#[test]
fn a_profile_file_error_never_quotes_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "918273645546372819";
    let text = format!(
        r#"{{"current":"default","profiles":[{{"name":"default","mode":"AK","access_key_id":"LTAIx","access_key_secret":{secret}}}]}}"#
    );
    std::fs::create_dir_all(dir.path().join(".aliyun")).unwrap();
    std::fs::write(profile_path(dir.path()), text).unwrap();
    let e = resolve(&CredentialRequest::default(), &|_| None, dir.path()).unwrap_err();
    let shown = e.to_string();
    assert!(!shown.contains(secret) && !shown.contains("9182"), "{shown}");
    assert!(shown.contains("line 1 column"), "{shown}");
}

fn key(r: &Resolved) -> &Credentials {
    match &r.credentials.kind {
        SourceKind::Static(c) => c,
        other => panic!("not a static key: {other:?}"),
    }
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

fn home_with(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".aliyun")).unwrap();
    std::fs::write(profile_path(dir.path()), config).unwrap();
    dir
}

const CONFIG: &str = r#"{
    "current": "prod",
    "profiles": [
        {"name": "default", "mode": "AK", "access_key_id": "ID_DEFAULT", "access_key_secret": "SEC_DEFAULT", "region_id": "cn-beijing"},
        {"name": "prod", "mode": "AK", "access_key_id": "ID_PROD", "access_key_secret": "SEC_PROD", "region_id": "ap-southeast-1"},
        {"name": "sts", "mode": "StsToken", "access_key_id": "STS.ID", "access_key_secret": "SEC_STS", "sts_token": "TOKEN", "region_id": "eu-central-1"},
        {"name": "role", "mode": "RamRoleArn", "access_key_id": "X", "access_key_secret": "Y"},
        {"name": "sso", "mode": "CloudSSO"},
        {"name": "broken", "mode": "AK", "access_key_id": "X", "access_key_secret": ""}
    ]
}"#;

#[test]
fn environment_pair_with_token() {
    let env = env_of(&[
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ENV_ID"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ENV_SECRET"),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", "ENV_TOKEN"),
    ]);
    let r = resolve(&CredentialRequest::default(), &env, Path::new("/nonexistent")).unwrap();
    assert_eq!(key(&r).access_key_id, "ENV_ID");
    assert_eq!(key(&r).access_key_secret.expose(), "ENV_SECRET");
    assert_eq!(key(&r).security_token.as_ref().unwrap().expose(), "ENV_TOKEN");
    assert_eq!(r.region, DEFAULT_REGION);
}

#[test]
fn new_environment_names_beat_legacy_ones_and_legacy_works_alone() {
    let both = env_of(&[
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "NEW"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "NEWS"),
        ("ALICLOUD_ACCESS_KEY_ID", "OLD"),
        ("ALICLOUD_ACCESS_KEY_SECRET", "OLDS"),
    ]);
    let r = resolve(&CredentialRequest::default(), &both, Path::new("/nonexistent")).unwrap();
    assert_eq!(key(&r).access_key_id, "NEW");
    let legacy = env_of(&[("ALICLOUD_ACCESS_KEY_ID", "OLD"), ("ALICLOUD_ACCESS_KEY_SECRET", "OLDS")]);
    let r = resolve(&CredentialRequest::default(), &legacy, Path::new("/nonexistent")).unwrap();
    assert_eq!(key(&r).access_key_id, "OLD");
    assert!(key(&r).security_token.is_none());
}

#[test]
fn half_a_pair_is_an_error_naming_the_missing_variable() {
    let env = env_of(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "ID")]);
    let e = resolve(&CredentialRequest::default(), &env, Path::new("/nonexistent")).unwrap_err();
    assert!(e.to_string().contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET is not"), "{e}");
}

#[test]
fn environment_beats_profile_file_and_profile_region_is_not_used_then() {
    let home = home_with(CONFIG);
    let env = env_of(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "ENV_ID"), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "S")]);
    let r = resolve(&CredentialRequest::default(), &env, home.path()).unwrap();
    assert_eq!(key(&r).access_key_id, "ENV_ID");
    assert_eq!(r.region, DEFAULT_REGION);
}

#[test]
fn profile_file_current_then_env_profile_then_flag() {
    let home = home_with(CONFIG);
    let none = env_of(&[]);
    let r = resolve(&CredentialRequest::default(), &none, home.path()).unwrap();
    assert_eq!(key(&r).access_key_id, "ID_PROD", "current profile");
    assert_eq!(r.region, "ap-southeast-1", "profile region");

    let env = env_of(&[("ALIBABA_CLOUD_PROFILE", "default")]);
    let r = resolve(&CredentialRequest::default(), &env, home.path()).unwrap();
    assert_eq!(key(&r).access_key_id, "ID_DEFAULT");

    let req = CredentialRequest { profile: Some("sts".into()), region: None };
    let r = resolve(&req, &env, home.path()).unwrap();
    assert_eq!(key(&r).access_key_id, "STS.ID", "--profile beats ALIBABA_CLOUD_PROFILE");
    assert_eq!(key(&r).security_token.as_ref().unwrap().expose(), "TOKEN");
    assert_eq!(r.region, "eu-central-1");
}

#[test]
fn explicit_profile_beats_environment_keys() {
    let home = home_with(CONFIG);
    let env = env_of(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "ENV_ID"), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "S")]);
    let req = CredentialRequest { profile: Some("default".into()), region: None };
    assert_eq!(key(&resolve(&req, &env, home.path()).unwrap()).access_key_id, "ID_DEFAULT");
}

#[test]
fn region_precedence() {
    let home = home_with(CONFIG);
    let env = env_of(&[("ALIBABA_CLOUD_REGION_ID", "cn-shenzhen")]);
    let r = resolve(&CredentialRequest::default(), &env, home.path()).unwrap();
    assert_eq!(r.region, "cn-shenzhen", "env region beats profile region");
    let req = CredentialRequest { profile: None, region: Some("us-west-1".into()) };
    assert_eq!(resolve(&req, &env, home.path()).unwrap().region, "us-west-1", "flag beats env");
    let req = CredentialRequest { profile: None, region: Some("vod.evil.com/x".into()) };
    assert!(matches!(resolve(&req, &env, home.path()), Err(CredentialError::BadRegion(_))));
}

#[test]
fn unsupported_mode_names_it() {
    let home = home_with(CONFIG);
    let req = CredentialRequest { profile: Some("sso".into()), region: None };
    let e = resolve(&req, &env_of(&[]), home.path()).unwrap_err().to_string();
    assert!(e.contains("\"CloudSSO\"") && e.contains("ChainableRamRoleArn, OIDC, CredentialsURI"), "{e}");
    let req = CredentialRequest { profile: Some("role".into()), region: None };
    let e = resolve(&req, &env_of(&[]), home.path()).unwrap_err().to_string();
    assert!(e.contains("ram_role_arn"), "{e}");
}

#[test]
fn missing_and_broken_profiles_explain_themselves() {
    let home = home_with(CONFIG);
    let req = CredentialRequest { profile: Some("nope".into()), region: None };
    let e = resolve(&req, &env_of(&[]), home.path()).unwrap_err().to_string();
    assert!(e.contains("\"nope\"") && e.contains("default, prod, sts"), "{e}");
    let req = CredentialRequest { profile: Some("broken".into()), region: None };
    let e = resolve(&req, &env_of(&[]), home.path()).unwrap_err().to_string();
    assert!(e.contains("access_key_secret"), "{e}");
    let e = resolve(&CredentialRequest::default(), &env_of(&[]), Path::new("/nonexistent")).unwrap_err();
    assert!(matches!(e, CredentialError::NotFound(_)));
    let bad = home_with("{not json");
    let e = resolve(&CredentialRequest::default(), &env_of(&[]), bad.path()).unwrap_err();
    assert!(e.to_string().contains("not valid JSON"), "{e}");
}

#[test]
fn secrets_never_show_in_debug_or_errors() {
    let home = home_with(CONFIG);
    let req = CredentialRequest { profile: Some("sts".into()), region: None };
    let r = resolve(&req, &env_of(&[]), home.path()).unwrap();
    let shown = format!("{r:?}");
    assert!(!shown.contains("SEC_STS") && !shown.contains("TOKEN\""), "{shown}");
    // Shown as redacted, not left out: a Debug that dropped the fields
    // would hide that they are there.
    assert!(shown.contains("access_key_secret: ***") && shown.contains("security_token: Some(***)"), "{shown}");
    let env = env_of(&[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "TOPSECRET")]);
    let e = resolve(&CredentialRequest::default(), &env, Path::new("/x")).unwrap_err();
    assert!(!e.to_string().contains("TOPSECRET"));
}

fn kind_of(r: &Resolved) -> &SourceKind {
    &r.credentials.kind
}

#[test]
fn the_chain_goes_env_oidc_cli_file_ecs_uri() {
    let home = home_with(CONFIG);
    std::fs::create_dir_all(home.path().join(".alibabacloud")).unwrap();
    std::fs::write(
        home.path().join(".alibabacloud/credentials"),
        "[default]\ntype = access_key\naccess_key_id = INI_ID\naccess_key_secret = INI_SECRET\n",
    )
    .unwrap();
    let all = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ENV_ID"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "S"),
        ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"),
        ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/p"),
        ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/tok"),
        ("ALIBABA_CLOUD_ECS_METADATA", "ecs-role"),
        ("ALIBABA_CLOUD_CREDENTIALS_URI", "http://127.0.0.1:1/c"),
    ];
    let req = CredentialRequest::default();
    let r = resolve(&req, &env_of(&all), home.path()).unwrap();
    assert_eq!(key(&r).access_key_id, "ENV_ID");
    let r = resolve(&req, &env_of(&all[2..]), home.path()).unwrap();
    assert!(matches!(kind_of(&r), SourceKind::Oidc { token_file, .. } if token_file == Path::new("/tok")), "{r:?}");
    let r = resolve(&req, &env_of(&all[5..]), home.path()).unwrap();
    assert_eq!(key(&r).access_key_id, "ID_PROD", "the CLI file before the credentials file");
    std::fs::remove_file(profile_path(home.path())).unwrap();
    let r = resolve(&req, &env_of(&all[5..]), home.path()).unwrap();
    assert_eq!(key(&r).access_key_id, "INI_ID");
    assert!(r.credentials.source.contains("section [default]"), "{}", r.credentials.source);
    let empty = tempfile::tempdir().unwrap();
    let r = resolve(&req, &env_of(&all[5..]), empty.path()).unwrap();
    assert!(matches!(kind_of(&r), SourceKind::EcsRole { role: Some(n), .. } if n == "ecs-role"), "{r:?}");
    let r = resolve(&req, &env_of(&all[6..]), empty.path()).unwrap();
    assert!(matches!(kind_of(&r), SourceKind::Uri { .. }), "{r:?}");
    let disabled = [("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "TRUE")];
    let home = home_with(CONFIG);
    let e = resolve(&req, &env_of(&disabled), home.path()).unwrap_err();
    assert!(matches!(e, CredentialError::NotFound(_)), "{e}");
}

#[test]
fn modes_are_case_insensitive_and_an_empty_mode_is_inferred() {
    let home = home_with(
        r#"{"profiles": [
        {"name": "a", "mode": "ak", "access_key_id": "I", "access_key_secret": "S"},
        {"name": "t", "access_key_id": "I", "access_key_secret": "S", "sts_token": "T"},
        {"name": "r", "mode": "", "access_key_id": "I", "access_key_secret": "S", "ram_role_arn": "acs:ram::1:role/x", "expired_seconds": 900},
        {"name": "c", "mode": "chainableramrolearn", "source_profile": "r", "ram_role_arn": "acs:ram::1:role/y"},
        {"name": "loop", "mode": "ChainableRamRoleArn", "source_profile": "loop", "ram_role_arn": "acs:ram::1:role/y"},
        {"name": "e", "mode": "ECSRAMROLE"},
        {"name": "u", "mode": "credentialsuri", "credentials_uri": "http://127.0.0.1:1/"},
        {"name": "ie", "ram_role_name": "r"},
        {"name": "io", "ram_role_arn": "acs:ram::1:role/x", "oidc_provider_arn": "p", "oidc_token_file": "/t"}
    ]}"#,
    );
    let get = |name: &str| {
        let req = CredentialRequest { profile: Some(name.into()), region: None };
        resolve(&req, &env_of(&[]), home.path())
    };
    assert!(!get("a").unwrap().credentials.kind.renews());
    let t = get("t").unwrap();
    assert_eq!(key(&t).security_token.as_ref().unwrap().expose(), "T");
    let r = get("r").unwrap();
    assert!(
        matches!(kind_of(&r), SourceKind::RamRole { role_arn, duration_secs: 900, .. } if role_arn == "acs:ram::1:role/x"),
        "{r:?}"
    );
    let c = get("c").unwrap();
    match kind_of(&c) {
        SourceKind::RamRole { base, role_arn, .. } => {
            assert_eq!(role_arn, "acs:ram::1:role/y");
            assert!(matches!(&**base, SourceKind::RamRole { role_arn, .. } if role_arn == "acs:ram::1:role/x"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(get("loop"), Err(CredentialError::ChainTooLong { .. })));
    assert!(matches!(kind_of(&get("e").unwrap()), SourceKind::EcsRole { role: None, .. }));
    assert!(matches!(kind_of(&get("u").unwrap()), SourceKind::Uri { .. }));
    assert!(matches!(kind_of(&get("ie").unwrap()), SourceKind::EcsRole { role: Some(r), .. } if r == "r"));
    assert!(matches!(kind_of(&get("io").unwrap()), SourceKind::Oidc { .. }));
}

#[test]
fn the_credentials_file_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds");
    std::fs::write(&path, "# c\n[default]\ntype = rsa_key_pair\n[r]\ntype = ram_role_arn\naccess_key_id = I\n")
        .unwrap();
    let p = path.to_str().unwrap();
    let e = resolve(&CredentialRequest::default(), &env_of(&[("ALIBABA_CLOUD_CREDENTIALS_FILE", p)]), dir.path());
    assert!(e.unwrap_err().to_string().contains("\"rsa_key_pair\""));
    let env = env_of(&[("ALIBABA_CLOUD_CREDENTIALS_FILE", p), ("ALIBABA_CLOUD_PROFILE", "r")]);
    let e = resolve(&CredentialRequest::default(), &env, dir.path()).unwrap_err().to_string();
    assert!(e.contains("access_key_secret"), "{e}");
    let env = env_of(&[("ALIBABA_CLOUD_CREDENTIALS_FILE", p), ("ALIBABA_CLOUD_PROFILE", "nope")]);
    let e = resolve(&CredentialRequest::default(), &env, dir.path()).unwrap_err().to_string();
    assert!(e.contains("[nope]") && e.contains("default, r"), "{e}");
    let env = env_of(&[("ALIBABA_CLOUD_CREDENTIALS_FILE", "/no/such/file")]);
    assert!(resolve(&CredentialRequest::default(), &env, dir.path()).is_err(), "a named file must exist");
}

/// `resolve_from_process` reads only `ENV_VARS`: every name the chain
/// asks for must be listed, or it would never be seen.
#[test]
fn every_variable_the_chain_reads_is_listed() {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let env = |k: &str| {
        asked.borrow_mut().insert(k.to_owned());
        None
    };
    let home = tempfile::tempdir().unwrap();
    let _ = resolve(&CredentialRequest::default(), &env, home.path());
    std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
    std::fs::write(profile_path(home.path()), r#"{"profiles":[{"name":"default","mode":"EcsRamRole"}]}"#).unwrap();
    let _ = resolve(&CredentialRequest::default(), &env, home.path());
    let asked = asked.into_inner();
    assert!(asked.len() > 10, "{asked:?}");
    for name in &asked {
        assert!(ENV_VARS.contains(&name.as_str()), "{name} is read but not in ENV_VARS");
    }
}
