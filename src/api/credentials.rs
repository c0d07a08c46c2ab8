//! Finding the AccessKey and region the way Alibaba Cloud's own tools do.
//!
//! Owns the default credential chain and region resolution: which
//! [`CredentialSource`] applies, never a call. Fetching temporary keys from a
//! source (STS, the instance metadata service, a credentials URI) and
//! renewing them is `provider`'s job. It reads the environment through a
//! function and the home directory as a path, so tests run it against a
//! made-up environment and a temporary HOME. It never takes a secret from a
//! command-line flag and never prints one.
//!
//! The files it reads (the CLI profile file, the credentials file, and for
//! `provider` the OIDC token file) are read by [`read_credentials_file`]:
//! opened without blocking, refused unless a regular file (a FIFO would
//! wait for a writer for ever), and never past [`MAX_CREDENTIALS_BYTES`]
//! (`/dev/zero` would fill the memory). A profile or credentials file that
//! other users can read is used, with one warning in [`Resolved::warnings`]
//! (the rule of ssh for a private key: any access for group or other).
//!
//! The order follows `aliyun/credentials-go` `credentials/providers/default.go`
//! (environment, OIDC, aliyun CLI profile, credentials file, ECS RAM role,
//! credentials URI), the CLI profile modes `aliyun/aliyun-cli`
//! `config/profile.go`, and the credentials file types
//! `credentials/providers/profile.go` of the same library.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::api::secret::Secret;

/// The region used when nothing names one: the profile default of the
/// aliyun CLI's own `configure` prompt.
pub(crate) const DEFAULT_REGION: &str = "cn-shanghai";

/// The most bytes of a credentials file, a token file or a credentials
/// URI's answer that are read. An aliyun CLI `config.json` with a dozen
/// profiles is a few KB, an OIDC token (a JWT) under 4 KB, a credentials
/// answer under 2 KB: 256 KiB is far past any of them, and small enough to
/// hold in memory.
pub(crate) const MAX_CREDENTIALS_BYTES: usize = 256 * 1024;

/// An AccessKey, optionally with an STS token, and where it was found.
#[derive(Clone, Debug)]
pub(crate) struct Credentials {
    /// The AccessKey ID. Not secret, but only printed where needed.
    pub access_key_id: String,
    /// The AccessKey secret.
    pub access_key_secret: Secret,
    /// The STS token, for temporary credentials.
    pub security_token: Option<Secret>,
    /// Where they came from, for logs and the manifest: an env variable
    /// name or `profile NAME in PATH`. Never the value.
    pub source: String,
    /// When a static STS token is known to expire: the CLI profile's
    /// `sts_expiration` (Unix seconds). `None`: not known, or not temporary.
    pub expires: Option<SystemTime>,
}

/// Why no usable credentials were found.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or ALIBABA_CLOUD_ROLE_ARN with ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE, or configure a profile with `aliyun configure` ({0} does not exist), or a credentials file, or ALIBABA_CLOUD_ECS_METADATA, or ALIBABA_CLOUD_CREDENTIALS_URI")]
    NotFound(String),
    #[error("the environment variable {var} is not valid UTF-8: set it to the plain text value, or unset it")]
    NotUnicode { var: &'static str },
    #[error("{set} is set but {missing} is not: set both, or neither")]
    HalfPair { set: String, missing: String },
    #[error("cannot read the aliyun CLI profile file {path}: {reason}")]
    ProfileFile { path: String, reason: String },
    #[error("profile {name:?} is not in {path}; profiles there: {available}")]
    NoSuchProfile { name: String, path: String, available: String },
    #[error("profile {name:?} in {path} uses mode {mode:?}, which this tool does not support; supported modes: {}", SUPPORTED_MODES.join(", "))]
    UnsupportedMode { name: String, path: String, mode: String },
    #[error("profile {name:?} in {path} has no {field}: run `aliyun configure --profile {name}`")]
    IncompleteProfile { name: String, path: String, field: &'static str },
    #[error("profile {name:?} in {path}: its source_profile chain loops or is deeper than {MAX_CHAIN}")]
    ChainTooLong { name: String, path: String },
    #[error("the credentials file {path}: {reason}")]
    CredentialsFile { path: String, reason: String },
    #[error("region {0:?} is not a region id (letters, digits and '-', like cn-shanghai)")]
    BadRegion(String),
}

/// The aliyun CLI modes this tool follows, as the CLI spells them.
pub(crate) const SUPPORTED_MODES: &[&str] =
    &["AK", "StsToken", "RamRoleArn", "EcsRamRole", "ChainableRamRoleArn", "OIDC", "CredentialsURI"];

/// How deep `source_profile` may chain.
const MAX_CHAIN: usize = 8;

/// The session name when none is configured.
pub(crate) const DEFAULT_SESSION_NAME: &str = "vod-image-audit";

/// STS `DurationSeconds` when a profile names none: the official
/// libraries' default of one hour.
pub(crate) const DEFAULT_ROLE_DURATION_SECS: u64 = 3600;

/// What the command line says about credentials and region.
#[derive(Clone, Debug, Default)]
pub(crate) struct CredentialRequest {
    /// `--profile NAME`: an explicit choice of profile; it wins over the
    /// environment's keys, because the operator asked for it by name.
    pub profile: Option<String>,
    /// `--region ID`.
    pub region: Option<String>,
}

/// How to get a key: given, or fetched (and renewed) from somewhere.
#[derive(Clone, Debug)]
pub(crate) enum SourceKind {
    /// A key at hand: an AccessKey, or an STS key with its token (which
    /// cannot be renewed).
    Static(Credentials),
    /// STS `AssumeRole`, signed with the key of `base`.
    RamRole {
        base: Box<SourceKind>,
        role_arn: String,
        session_name: String,
        duration_secs: u64,
        external_id: Option<String>,
    },
    /// STS `AssumeRoleWithOIDC`; the token file is read again at each renewal.
    Oidc { role_arn: String, provider_arn: String, token_file: PathBuf, session_name: String, duration_secs: u64 },
    /// The ECS instance RAM role from the metadata service; `None`: discovered.
    EcsRole { role: Option<String>, imds_v1_disabled: bool },
    /// `GET` a URI that answers with a key.
    Uri { uri: String },
}

impl SourceKind {
    /// Whether the keys of this source are renewed by the tool.
    pub(crate) fn renews(&self) -> bool {
        !matches!(self, SourceKind::Static(_))
    }
}

/// Where a key comes from, and how it is described (never a secret).
#[derive(Clone, Debug)]
pub(crate) struct CredentialSource {
    pub kind: SourceKind,
    /// For `check`, the logs and the manifest: an env variable name, a
    /// profile and its file, a role ARN.
    pub source: String,
}

impl From<Credentials> for CredentialSource {
    fn from(c: Credentials) -> Self {
        CredentialSource { source: c.source.clone(), kind: SourceKind::Static(c) }
    }
}

/// The outcome of resolution: credentials and the region to call.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub credentials: CredentialSource,
    pub region: String,
    /// What the operator should fix though the credentials work (a file
    /// other users can read), for the command to print once.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    current: Option<String>,
    #[serde(default)]
    profiles: Vec<Profile>,
}

#[derive(Deserialize, Default)]
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
    /// When `sts_token` expires, in Unix seconds (the CLI writes it for
    /// CloudSSO and OAuth keys).
    #[serde(default, deserialize_with = "crate::api::model::flexible_i64")]
    sts_expiration: Option<i64>,
    #[serde(default)]
    ram_role_name: Option<String>,
    #[serde(default)]
    ram_role_arn: Option<String>,
    #[serde(default)]
    ram_session_name: Option<String>,
    #[serde(default)]
    source_profile: Option<String>,
    #[serde(default)]
    expired_seconds: Option<u64>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    oidc_provider_arn: Option<String>,
    #[serde(default)]
    oidc_token_file: Option<String>,
    #[serde(default)]
    credentials_uri: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
}

/// Where and what kind of error a profile file has, never what it holds:
/// serde's own message quotes the offending value, which may be a secret.
pub(crate) fn json_error_without_values(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "cannot be read",
        serde_json::error::Category::Syntax => "is not valid JSON",
        serde_json::error::Category::Data => "has a value of the wrong type (a key or token must be a quoted string)",
        serde_json::error::Category::Eof => "ends too early",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// A credentials or token file, read without blocking and within
/// [`MAX_CREDENTIALS_BYTES`], with its metadata; the error is the reason,
/// for a message that names the file.
pub(crate) fn read_credentials_file(path: &Path) -> Result<(String, std::fs::Metadata), String> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading waits for a writer: not with O_NONBLOCK.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(|e| format!("cannot be opened: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot be read: {e}"))?;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err("is a directory, not a file".to_owned());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let odd =
            [(kind.is_fifo(), "a FIFO"), (kind.is_socket(), "a socket"), (kind.is_block_device(), "a block device")];
        if let Some((_, what)) = odd.iter().find(|(is, _)| *is) {
            return Err(format!(
                "is {what}, not a regular file (reading it could wait for ever); point to a regular file"
            ));
        }
    }
    let mut bytes = Vec::new();
    file.take(MAX_CREDENTIALS_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() > MAX_CREDENTIALS_BYTES {
        return Err(format!(
            "is larger than {} KiB, which no credentials file is: check the path",
            MAX_CREDENTIALS_BYTES / 1024
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_owned())?;
    Ok((text, meta))
}

/// The warning for a credentials file that group or other users may read
/// or change (ssh's rule for a private key), or none.
fn loose_permissions(path: &str, meta: &std::fs::Metadata) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!("{path} holds an AccessKey and other users can read it (mode {mode:04o}): run chmod 600 {path}")
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (path, meta);
        None
    }
}

/// The aliyun CLI profile file under a home directory.
pub(crate) fn profile_path(home: &Path) -> PathBuf {
    home.join(".aliyun").join("config.json")
}

/// Every environment variable the chain reads.
pub(crate) const ENV_VARS: &[&str] = &[
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALICLOUD_ACCESS_KEY_ID",
    "ALICLOUD_ACCESS_KEY_SECRET",
    "ALICLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_REGION_ID",
    "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    "ALIBABA_CLOUD_ROLE_SESSION_NAME",
    "ALIBABA_CLOUD_CLI_PROFILE_DISABLED",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
    "ALIBABA_CLOUD_ECS_METADATA",
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED",
    "ALIBABA_CLOUD_IMDSV1_DISABLED",
    "ALIBABA_CLOUD_CREDENTIALS_URI",
    "ALIBABA_CLOUD_STS_REGION",
    "VOD_IMAGE_AUDIT_STS_ENDPOINT",
    "VOD_IMAGE_AUDIT_METADATA_ENDPOINT",
];

/// One variable of [`ENV_VARS`] from the process environment: `None` when
/// unset or blank, an error when it is not UTF-8.
pub(crate) fn process_var(name: &'static str) -> Result<Option<String>, CredentialError> {
    debug_assert!(ENV_VARS.contains(&name), "{name} must be listed in ENV_VARS");
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
pub(crate) fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Resolves credentials and region from the process environment and `$HOME`.
/// Only the variables the chain reads are looked at, one by one, so a cron
/// environment holding some other variable that is not UTF-8 is no
/// concern; one of ours that is not UTF-8 is a clear error.
pub(crate) fn resolve_from_process(req: &CredentialRequest) -> Result<Resolved, CredentialError> {
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
///    (+ `ALIBABA_CLOUD_SECURITY_TOKEN`), then the legacy `ALICLOUD_*` names.
/// 3. OIDC (RRSA): `ALIBABA_CLOUD_ROLE_ARN` + `ALIBABA_CLOUD_OIDC_PROVIDER_ARN`
///    + `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (+ `ALIBABA_CLOUD_ROLE_SESSION_NAME`).
/// 4. The aliyun CLI file, when it exists (unless
///    `ALIBABA_CLOUD_CLI_PROFILE_DISABLED`): profile `ALIBABA_CLOUD_PROFILE`,
///    else `current`, else `default`.
/// 5. The credentials file: `ALIBABA_CLOUD_CREDENTIALS_FILE`, else
///    `~/.alibabacloud/credentials`, else `~/.alibabacloud/credentials.ini`;
///    section `ALIBABA_CLOUD_PROFILE`, else `default`.
/// 6. The ECS instance RAM role, when `ALIBABA_CLOUD_ECS_METADATA` names it.
///    (The official chain also tries the metadata service unasked; this
///    tool does not, so that a machine without credentials gets a clear
///    error instead of a wait on an address that is not there.)
/// 7. `ALIBABA_CLOUD_CREDENTIALS_URI`.
///
/// Region: `--region`, else `ALIBABA_CLOUD_REGION_ID`, else the profile's
/// `region_id` (when a CLI profile supplied the keys), else [`DEFAULT_REGION`].
pub(crate) fn resolve(
    req: &CredentialRequest,
    env: &dyn Fn(&str) -> Option<String>,
    home: &Path,
) -> Result<Resolved, CredentialError> {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let mut warnings = Vec::new();
    let (credentials, profile_region) = chain(req, &env, home, &mut warnings)?;
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
    Ok(Resolved { credentials, region, warnings })
}

type Found = (CredentialSource, Option<String>);

fn chain(
    req: &CredentialRequest,
    env: &dyn Fn(&str) -> Option<String>,
    home: &Path,
    warnings: &mut Vec<String>,
) -> Result<Found, CredentialError> {
    if let Some(name) = &req.profile {
        return from_profile(home, Some(name), env, warnings);
    }
    for (id, secret, token) in [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"),
        ("ALICLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECURITY_TOKEN"),
    ] {
        if let Some(c) = from_env_pair(env, id, secret, token)? {
            return Ok((c.into(), None));
        }
    }
    if let (Some(role_arn), Some(provider_arn), Some(token_file)) =
        (env("ALIBABA_CLOUD_ROLE_ARN"), env("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"), env("ALIBABA_CLOUD_OIDC_TOKEN_FILE"))
    {
        let kind = SourceKind::Oidc {
            role_arn: role_arn.trim().to_owned(),
            provider_arn: provider_arn.trim().to_owned(),
            token_file: PathBuf::from(token_file.trim()),
            session_name: env("ALIBABA_CLOUD_ROLE_SESSION_NAME").unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned()),
            duration_secs: DEFAULT_ROLE_DURATION_SECS,
        };
        let source = format!("OIDC role {} (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE)", role_arn.trim());
        return Ok((CredentialSource { kind, source }, None));
    }
    // A file there that cannot even be looked at (a symlink loop) is an
    // error, not a file that is not there.
    let profile_there = profile_path(home).try_exists().map_err(|e| CredentialError::ProfileFile {
        path: profile_path(home).display().to_string(),
        reason: e.to_string(),
    })?;
    if !is_true(env("ALIBABA_CLOUD_CLI_PROFILE_DISABLED").as_deref()) && profile_there {
        return from_profile(home, env("ALIBABA_CLOUD_PROFILE").as_deref(), env, warnings);
    }
    if let Some(found) = from_credentials_file(env, home, warnings)? {
        return Ok((found, None));
    }
    if let Some(role) = env("ALIBABA_CLOUD_ECS_METADATA") {
        if !is_true(env("ALIBABA_CLOUD_ECS_METADATA_DISABLED").as_deref()) {
            let kind = SourceKind::EcsRole {
                role: Some(role.trim().to_owned()),
                imds_v1_disabled: is_true(env("ALIBABA_CLOUD_IMDSV1_DISABLED").as_deref()),
            };
            let source = format!("ECS instance RAM role {} (ALIBABA_CLOUD_ECS_METADATA)", role.trim());
            return Ok((CredentialSource { kind, source }, None));
        }
    }
    if let Some(uri) = env("ALIBABA_CLOUD_CREDENTIALS_URI") {
        let source = "credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI)".to_owned();
        return Ok((CredentialSource { kind: SourceKind::Uri { uri: uri.trim().to_owned() }, source }, None));
    }
    Err(CredentialError::NotFound(profile_path(home).display().to_string()))
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
            expires: None,
        })),
    }
}

fn from_profile(
    home: &Path,
    wanted: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Found, CredentialError> {
    let path = profile_path(home);
    let shown = path.display().to_string();
    if !path.try_exists().unwrap_or(true) {
        return Err(CredentialError::NotFound(shown));
    }
    let (text, meta) =
        read_credentials_file(&path).map_err(|reason| CredentialError::ProfileFile { path: shown.clone(), reason })?;
    warnings.extend(loose_permissions(&shown, &meta));
    let file: ConfigFile = serde_json::from_str(&text)
        .map_err(|e| CredentialError::ProfileFile { path: shown.clone(), reason: json_error_without_values(&e) })?;
    let name = wanted
        .map(str::to_owned)
        .or(file.current.clone().filter(|c| !c.is_empty()))
        .unwrap_or_else(|| "default".to_owned());
    let (kind, profile) = profile_kind(&file, &name, &shown, env, 0)?;
    let source = match &kind {
        SourceKind::RamRole { role_arn, .. } => format!("profile {name} in {shown} (RamRoleArn {role_arn})"),
        _ => format!("profile {name} in {shown}"),
    };
    let kind = match kind {
        SourceKind::Static(mut c) => {
            c.source = source.clone();
            SourceKind::Static(c)
        }
        other => other,
    };
    Ok((CredentialSource { kind, source }, profile.region_id.clone().filter(|r| !r.is_empty())))
}

/// The source one profile describes; `depth` counts `source_profile` hops.
fn profile_kind<'f>(
    file: &'f ConfigFile,
    name: &str,
    shown: &str,
    env: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<(SourceKind, &'f Profile), CredentialError> {
    if depth > MAX_CHAIN {
        return Err(CredentialError::ChainTooLong { name: name.to_owned(), path: shown.to_owned() });
    }
    let Some(profile) = file.profiles.iter().find(|p| p.name == name) else {
        let available = file.profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
        return Err(CredentialError::NoSuchProfile { name: name.to_owned(), path: shown.to_owned(), available });
    };
    let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty()).map(|s| s.trim().to_owned());
    let field = |v: &Option<String>, field: &'static str| {
        given(v).ok_or_else(|| CredentialError::IncompleteProfile {
            name: name.to_owned(),
            path: shown.to_owned(),
            field,
        })
    };
    // An empty mode is inferred from the fields that are set, as the aliyun
    // CLI's `AutoModeRecognition` (config/profile.go) does.
    let has = |v: &Option<String>| given(v).is_some();
    let mode = match given(&profile.mode) {
        Some(m) => m,
        None if has(&profile.access_key_id) && has(&profile.access_key_secret) => {
            if has(&profile.sts_token) {
                "StsToken".to_owned()
            } else if has(&profile.ram_role_arn) {
                "RamRoleArn".to_owned()
            } else {
                "AK".to_owned()
            }
        }
        None if has(&profile.ram_role_name) => "EcsRamRole".to_owned(),
        None if has(&profile.oidc_provider_arn) && has(&profile.oidc_token_file) && has(&profile.ram_role_arn) => {
            "OIDC".to_owned()
        }
        None => "AK".to_owned(),
    };
    let Some(canonical) = SUPPORTED_MODES.iter().find(|m| m.eq_ignore_ascii_case(&mode)) else {
        return Err(CredentialError::UnsupportedMode { name: name.to_owned(), path: shown.to_owned(), mode });
    };
    let ak = |with_token: bool| -> Result<SourceKind, CredentialError> {
        Ok(SourceKind::Static(Credentials {
            access_key_id: field(&profile.access_key_id, "access_key_id")?,
            access_key_secret: Secret::new(field(&profile.access_key_secret, "access_key_secret")?),
            security_token: if with_token { Some(Secret::new(field(&profile.sts_token, "sts_token")?)) } else { None },
            source: format!("profile {name} in {shown}"),
            expires: profile
                .sts_expiration
                .filter(|s| with_token && *s > 0)
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s.unsigned_abs())),
        }))
    };
    let session_name = given(&profile.ram_session_name).unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned());
    let duration_secs = profile.expired_seconds.filter(|s| *s > 0).unwrap_or(DEFAULT_ROLE_DURATION_SECS);
    let kind = match *canonical {
        "AK" => ak(false)?,
        "StsToken" => ak(true)?,
        "RamRoleArn" => SourceKind::RamRole {
            base: Box::new(ak(false)?),
            role_arn: field(&profile.ram_role_arn, "ram_role_arn")?,
            session_name,
            duration_secs,
            external_id: given(&profile.external_id),
        },
        "ChainableRamRoleArn" => {
            let source_profile = field(&profile.source_profile, "source_profile")?;
            let (base, _) = profile_kind(file, &source_profile, shown, env, depth + 1)?;
            SourceKind::RamRole {
                base: Box::new(base),
                role_arn: field(&profile.ram_role_arn, "ram_role_arn")?,
                session_name,
                duration_secs,
                external_id: given(&profile.external_id),
            }
        }
        "EcsRamRole" => SourceKind::EcsRole {
            role: given(&profile.ram_role_name),
            imds_v1_disabled: is_true(env("ALIBABA_CLOUD_IMDSV1_DISABLED").as_deref()),
        },
        "OIDC" => SourceKind::Oidc {
            role_arn: field(&profile.ram_role_arn, "ram_role_arn")?,
            provider_arn: field(&profile.oidc_provider_arn, "oidc_provider_arn")?,
            token_file: PathBuf::from(field(&profile.oidc_token_file, "oidc_token_file")?),
            session_name,
            duration_secs,
        },
        _ => SourceKind::Uri { uri: field(&profile.credentials_uri, "credentials_uri")? },
    };
    Ok((kind, profile))
}

/// The credentials file's path: `ALIBABA_CLOUD_CREDENTIALS_FILE` (which
/// must exist), else the first of `~/.alibabacloud/credentials` and
/// `credentials.ini` that does.
fn credentials_file_path(env: &dyn Fn(&str) -> Option<String>, home: &Path) -> Option<(PathBuf, bool)> {
    if let Some(p) = env("ALIBABA_CLOUD_CREDENTIALS_FILE") {
        return Some((PathBuf::from(p.trim()), true));
    }
    let dir = home.join(".alibabacloud");
    ["credentials", "credentials.ini"].iter().map(|n| dir.join(n)).find(|p| p.is_file()).map(|p| (p, false))
}

/// The credentials file: INI sections with `type = access_key`,
/// `ecs_ram_role` or `ram_role_arn`.
fn from_credentials_file(
    env: &dyn Fn(&str) -> Option<String>,
    home: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<CredentialSource>, CredentialError> {
    let Some((path, named)) = credentials_file_path(env, home) else { return Ok(None) };
    let shown = path.display().to_string();
    let err = |reason: String| CredentialError::CredentialsFile { path: shown.clone(), reason };
    if !named && !path.try_exists().unwrap_or(true) {
        return Ok(None);
    }
    let (text, meta) = read_credentials_file(&path).map_err(err)?;
    warnings.extend(loose_permissions(&shown, &meta));
    let section = env("ALIBABA_CLOUD_PROFILE").unwrap_or_else(|| "default".to_owned());
    let sections = parse_ini(&text);
    let Some(values) = sections.get(section.trim()) else {
        let mut names: Vec<&str> = sections.keys().map(String::as_str).collect();
        names.sort_unstable();
        return Err(err(format!("has no section [{}]; sections there: {}", section.trim(), names.join(", "))));
    };
    let get = |k: &str| values.get(k).filter(|v| !v.is_empty()).cloned();
    let need = |k: &'static str| get(k).ok_or_else(|| err(format!("section [{}] has no {k}", section.trim())));
    let source = format!("section [{}] of {shown}", section.trim());
    let ak = || -> Result<SourceKind, CredentialError> {
        Ok(SourceKind::Static(Credentials {
            access_key_id: need("access_key_id")?,
            access_key_secret: Secret::new(need("access_key_secret")?),
            security_token: None,
            source: source.clone(),
            expires: None,
        }))
    };
    let kind = match get("type").as_deref() {
        Some("access_key") => ak()?,
        Some("ecs_ram_role") => SourceKind::EcsRole {
            role: get("role_name"),
            imds_v1_disabled: is_true(env("ALIBABA_CLOUD_IMDSV1_DISABLED").as_deref()),
        },
        Some("ram_role_arn") => SourceKind::RamRole {
            base: Box::new(ak()?),
            role_arn: need("role_arn")?,
            session_name: get("role_session_name").unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned()),
            duration_secs: DEFAULT_ROLE_DURATION_SECS,
            external_id: None,
        },
        other => {
            return Err(err(format!(
                "section [{}] has type {:?}; supported types: access_key, ecs_ram_role, ram_role_arn",
                section.trim(),
                other.unwrap_or("")
            )))
        }
    };
    Ok(Some(CredentialSource { kind, source }))
}

/// `[section]` and `key = value` lines; `#` and `;` start comments.
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_owned());
            out.entry(name.trim().to_owned()).or_default();
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            let v = v.trim().trim_matches('"');
            out.entry(section.clone()).or_default().insert(k.trim().to_owned(), v.to_owned());
        }
    }
    out
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
