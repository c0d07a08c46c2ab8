//! Finding the AccessKey and region the way Alibaba Cloud's own tools do.
//!
//! Owns the credential chain (environment, legacy environment, aliyun CLI
//! profile file) and region resolution. It reads the environment through a
//! function and the home directory as a path, so tests run it against a
//! made-up environment and a temporary HOME. It never takes a secret from a
//! command-line flag and never prints one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::secret::Secret;

/// The region used when nothing names one: the profile default of the
/// aliyun CLI's own `configure` prompt.
pub const DEFAULT_REGION: &str = "cn-shanghai";

/// An AccessKey, optionally with an STS token, and where it was found.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The AccessKey ID. Not secret, but only printed where needed.
    pub access_key_id: String,
    /// The AccessKey secret.
    pub access_key_secret: Secret,
    /// The STS token, for temporary credentials.
    pub security_token: Option<Secret>,
    /// Where they came from, for logs and the manifest: an env variable
    /// name or `profile NAME in PATH`. Never the value.
    pub source: String,
}

/// Why no usable credentials were found.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or configure a profile with `aliyun configure` ({0} does not exist)")]
    NotFound(String),
    #[error("the environment variable {var} is not valid UTF-8: set it to the plain text value, or unset it")]
    NotUnicode { var: &'static str },
    #[error("{set} is set but {missing} is not: set both, or neither")]
    HalfPair { set: String, missing: String },
    #[error("cannot read the aliyun CLI profile file {path}: {reason}")]
    ProfileFile { path: String, reason: String },
    #[error("profile {name:?} is not in {path}; profiles there: {available}")]
    NoSuchProfile { name: String, path: String, available: String },
    #[error("profile {name:?} in {path} uses mode {mode:?}, which this tool does not support; use a profile of mode AK or StsToken, or export ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN) from your credential helper")]
    UnsupportedMode { name: String, path: String, mode: String },
    #[error("profile {name:?} in {path} has no {field}: run `aliyun configure --profile {name}`")]
    IncompleteProfile { name: String, path: String, field: &'static str },
    #[error("region {0:?} is not a region id (letters, digits and '-', like cn-shanghai)")]
    BadRegion(String),
}

/// What the command line says about credentials and region.
#[derive(Clone, Debug, Default)]
pub struct CredentialRequest {
    /// `--profile NAME`: an explicit choice of profile; it wins over the
    /// environment's keys, because the operator asked for it by name.
    pub profile: Option<String>,
    /// `--region ID`.
    pub region: Option<String>,
}

/// The outcome of resolution: credentials and the region to call.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub credentials: Credentials,
    pub region: String,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    current: Option<String>,
    #[serde(default)]
    profiles: Vec<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    access_key_secret: Option<String>,
    #[serde(default)]
    sts_token: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
}

/// Where and what kind of error a profile file has, never what it holds:
/// serde's own message quotes the offending value, which may be a secret.
fn json_error_without_values(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "cannot be read",
        serde_json::error::Category::Syntax => "is not valid JSON",
        serde_json::error::Category::Data => "has a value of the wrong type (a key or token must be a quoted string)",
        serde_json::error::Category::Eof => "ends too early",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// The aliyun CLI profile file under a home directory.
pub fn profile_path(home: &Path) -> PathBuf {
    home.join(".aliyun").join("config.json")
}

/// Every environment variable the chain reads.
pub const ENV_VARS: &[&str] = &[
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALICLOUD_ACCESS_KEY_ID",
    "ALICLOUD_ACCESS_KEY_SECRET",
    "ALICLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_REGION_ID",
    "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED",
];

/// One variable of [`ENV_VARS`] from the process environment: `None` when
/// unset or blank, an error when it is not UTF-8.
pub fn process_var(name: &'static str) -> Result<Option<String>, CredentialError> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) => {
            let v = v.into_string().map_err(|_| CredentialError::NotUnicode { var: name })?;
            Ok(Some(v).filter(|v| !v.trim().is_empty()))
        }
    }
}

/// Whether a variable holds `true` (any case), as the official libraries
/// read their switches.
pub fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Resolves credentials and region from the process environment and `$HOME`.
/// Only the variables the chain reads are looked at, one by one, so a cron
/// environment holding some other variable that is not UTF-8 is no
/// concern; one of ours that is not UTF-8 is a clear error.
pub fn resolve_from_process(req: &CredentialRequest) -> Result<Resolved, CredentialError> {
    let mut env: HashMap<&str, String> = HashMap::new();
    for name in ENV_VARS {
        if let Some(value) = std::env::var_os(name) {
            let value = value.into_string().map_err(|_| CredentialError::NotUnicode { var: name })?;
            env.insert(name, value);
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    resolve(req, &|k| env.get(k).cloned(), &home)
}

/// The credential chain:
///
/// 1. `--profile NAME` given: that profile of the aliyun CLI file.
/// 2. `ALIBABA_CLOUD_ACCESS_KEY_ID` + `ALIBABA_CLOUD_ACCESS_KEY_SECRET`
///    (+ `ALIBABA_CLOUD_SECURITY_TOKEN`).
/// 3. The legacy `ALICLOUD_ACCESS_KEY_ID` + `ALICLOUD_ACCESS_KEY_SECRET`
///    (+ `ALICLOUD_SECURITY_TOKEN`).
/// 4. The aliyun CLI file: profile `ALIBABA_CLOUD_PROFILE`, else `current`,
///    else `default`.
///
/// Region: `--region`, else `ALIBABA_CLOUD_REGION_ID`, else the profile's
/// `region_id` (when a profile supplied the keys), else [`DEFAULT_REGION`].
pub fn resolve(
    req: &CredentialRequest,
    env: &dyn Fn(&str) -> Option<String>,
    home: &Path,
) -> Result<Resolved, CredentialError> {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let (credentials, profile_region) = if let Some(name) = &req.profile {
        from_profile(home, Some(name))?
    } else if let Some(c) = from_env_pair(
        &env,
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
    )? {
        (c, None)
    } else if let Some(c) =
        from_env_pair(&env, "ALICLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECURITY_TOKEN")?
    {
        (c, None)
    } else {
        from_profile(home, env("ALIBABA_CLOUD_PROFILE").as_deref())?
    };
    let region = req
        .region
        .clone()
        .or_else(|| env("ALIBABA_CLOUD_REGION_ID"))
        .or(profile_region)
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
    let region = region.trim().to_owned();
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(CredentialError::BadRegion(region));
    }
    Ok(Resolved { credentials, region })
}

fn from_env_pair(
    env: &dyn Fn(&str) -> Option<String>,
    id_var: &str,
    secret_var: &str,
    token_var: &str,
) -> Result<Option<Credentials>, CredentialError> {
    match (env(id_var), env(secret_var)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(CredentialError::HalfPair { set: id_var.into(), missing: secret_var.into() }),
        (None, Some(_)) => Err(CredentialError::HalfPair { set: secret_var.into(), missing: id_var.into() }),
        (Some(id), Some(secret)) => Ok(Some(Credentials {
            access_key_id: id.trim().to_owned(),
            access_key_secret: Secret::new(secret.trim()),
            security_token: env(token_var).map(|t| Secret::new(t.trim())),
            source: format!("environment ({id_var})"),
        })),
    }
}

fn from_profile(home: &Path, wanted: Option<&str>) -> Result<(Credentials, Option<String>), CredentialError> {
    let path = profile_path(home);
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CredentialError::NotFound(shown)),
        Err(e) => return Err(CredentialError::ProfileFile { path: shown, reason: e.to_string() }),
    };
    let file: ConfigFile = serde_json::from_str(&text)
        .map_err(|e| CredentialError::ProfileFile { path: shown.clone(), reason: json_error_without_values(&e) })?;
    let name = wanted
        .map(str::to_owned)
        .or(file.current.clone().filter(|c| !c.is_empty()))
        .unwrap_or_else(|| "default".to_owned());
    let Some(profile) = file.profiles.iter().find(|p| p.name == name) else {
        let available = file.profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
        return Err(CredentialError::NoSuchProfile { name, path: shown, available });
    };
    let mode = profile.mode.clone().unwrap_or_else(|| "AK".to_owned());
    let wants_token = match mode.as_str() {
        "AK" | "" => false,
        "StsToken" => true,
        _ => return Err(CredentialError::UnsupportedMode { name, path: shown, mode }),
    };
    let field = |v: &Option<String>, field: &'static str| {
        v.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| CredentialError::IncompleteProfile {
            name: name.clone(),
            path: shown.clone(),
            field,
        })
    };
    let access_key_id = field(&profile.access_key_id, "access_key_id")?;
    let access_key_secret = Secret::new(field(&profile.access_key_secret, "access_key_secret")?);
    let security_token = if wants_token { Some(Secret::new(field(&profile.sts_token, "sts_token")?)) } else { None };
    let credentials =
        Credentials { access_key_id, access_key_secret, security_token, source: format!("profile {name} in {shown}") };
    Ok((credentials, profile.region_id.clone().filter(|r| !r.is_empty())))
}

#[cfg(test)]
mod tests {
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
        assert_eq!(r.credentials.access_key_id, "ENV_ID");
        assert_eq!(r.credentials.access_key_secret.expose(), "ENV_SECRET");
        assert_eq!(r.credentials.security_token.unwrap().expose(), "ENV_TOKEN");
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
        assert_eq!(r.credentials.access_key_id, "NEW");
        let legacy = env_of(&[("ALICLOUD_ACCESS_KEY_ID", "OLD"), ("ALICLOUD_ACCESS_KEY_SECRET", "OLDS")]);
        let r = resolve(&CredentialRequest::default(), &legacy, Path::new("/nonexistent")).unwrap();
        assert_eq!(r.credentials.access_key_id, "OLD");
        assert!(r.credentials.security_token.is_none());
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
        assert_eq!(r.credentials.access_key_id, "ENV_ID");
        assert_eq!(r.region, DEFAULT_REGION);
    }

    #[test]
    fn profile_file_current_then_env_profile_then_flag() {
        let home = home_with(CONFIG);
        let none = env_of(&[]);
        let r = resolve(&CredentialRequest::default(), &none, home.path()).unwrap();
        assert_eq!(r.credentials.access_key_id, "ID_PROD", "current profile");
        assert_eq!(r.region, "ap-southeast-1", "profile region");

        let env = env_of(&[("ALIBABA_CLOUD_PROFILE", "default")]);
        let r = resolve(&CredentialRequest::default(), &env, home.path()).unwrap();
        assert_eq!(r.credentials.access_key_id, "ID_DEFAULT");

        let req = CredentialRequest { profile: Some("sts".into()), region: None };
        let r = resolve(&req, &env, home.path()).unwrap();
        assert_eq!(r.credentials.access_key_id, "STS.ID", "--profile beats ALIBABA_CLOUD_PROFILE");
        assert_eq!(r.credentials.security_token.as_ref().unwrap().expose(), "TOKEN");
        assert_eq!(r.region, "eu-central-1");
    }

    #[test]
    fn explicit_profile_beats_environment_keys() {
        let home = home_with(CONFIG);
        let env = env_of(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "ENV_ID"), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "S")]);
        let req = CredentialRequest { profile: Some("default".into()), region: None };
        assert_eq!(resolve(&req, &env, home.path()).unwrap().credentials.access_key_id, "ID_DEFAULT");
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
        let req = CredentialRequest { profile: Some("role".into()), region: None };
        let e = resolve(&req, &env_of(&[]), home.path()).unwrap_err();
        assert!(e.to_string().contains("\"RamRoleArn\""), "{e}");
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
        let env = env_of(&[("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "TOPSECRET")]);
        let e = resolve(&CredentialRequest::default(), &env, Path::new("/x")).unwrap_err();
        assert!(!e.to_string().contains("TOPSECRET"));
    }
}
