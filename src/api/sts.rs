//! The STS calls (API version 2015-04-01): `AssumeRole`,
//! `AssumeRoleWithOIDC` and `GetCallerIdentity`, and the metadata service
//! and credentials URI answers, as wire models and requests.
//!
//! Owns the parameters and the decoding of these answers, and the advice
//! for their errors. A parse error of an answer names where it broke, never
//! the value (serde's own message quotes it, and it may be the new secret);
//! the metadata service's and a credentials URI's answers are read within
//! [`MAX_CREDENTIALS_BYTES`]; who `GetCallerIdentity` says the key is, is
//! redacted like any server text. Signing and the HTTP exchange are the client's
//! ([`crate::api::rpc::signed_call`]); deciding when to call is
//! `provider`'s.

use std::time::SystemTime;

use serde::Deserialize;

use crate::api::answer::{read_capped, transport_error};
use crate::api::credentials::{json_error_without_values, Credentials, MAX_CREDENTIALS_BYTES};
use crate::api::error::{ApiError, ErrorClass};
pub(crate) use crate::api::rpc::Key;
use crate::api::rpc::{signed_call, MAX_ANSWER_BYTES};
use crate::api::secret::Secret;

/// The STS API version.
pub(crate) const STS_VERSION: &str = "2015-04-01";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResponse {
    credentials: StsCredentials,
}

/// Who a key is, as `GetCallerIdentity` tells.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Identity {
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub arn: String,
    #[serde(default)]
    pub identity_type: String,
}

/// The metadata service's and a credentials URI's answer.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FetchedKey {
    #[serde(default)]
    code: Option<String>,
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

fn parse_expiration(text: &str) -> Result<SystemTime, ApiError> {
    humantime::parse_rfc3339(text.trim()).map_err(|e| bad(format!("the Expiration {text:?} is not a UTC time: {e}")))
}

fn bad(message: String) -> ApiError {
    ApiError { class: ErrorClass::Fatal, ..ApiError::transport("BadCredentialsAnswer", message) }
}

fn key_from(c: StsCredentials, source: &str) -> Result<Key, ApiError> {
    let expires = parse_expiration(&c.expiration)?;
    let credentials = Credentials {
        access_key_id: c.access_key_id,
        access_key_secret: Secret::new(c.access_key_secret),
        security_token: Some(Secret::new(c.security_token)),
        source: source.to_owned(),
        expires: None,
    };
    Ok(Key::new(credentials, Some(expires)))
}

/// What to do about an STS error, in words.
fn sts_advice(code: &str) -> &'static str {
    let family = code.split('.').next().unwrap_or(code);
    match (family, code) {
        ("NoPermission", _) => "the key may not assume this role: grant it sts:AssumeRole (AliyunSTSAssumeRoleAccess) and check that the role's trust policy names its account",
        (_, "EntityNotExist.Role") => "the role does not exist: check the role ARN",
        (_, "InvalidParameter.RoleArn") => "the role ARN is malformed: it reads acs:ram::<account id>:role/<role name>",
        ("AuthenticationFail", _) | (_, "InvalidParameter.OIDCToken") => "the OIDC token was refused: check the token file, the OIDC provider ARN and the role's trust policy",
        _ => ROLE_ADVICE,
    }
}

/// The advice for an STS error nothing more precise explains.
const ROLE_ADVICE: &str = "check the role settings";

/// Makes an STS error say which call failed and what to do; anything but a
/// throttled or transient answer is fatal for the credentials.
fn sts_error(action: &str, mut e: ApiError) -> ApiError {
    if !matches!(e.class, ErrorClass::Throttled | ErrorClass::Transient) {
        e.class = ErrorClass::Fatal;
        // An error about the key itself (its secret, its id, the clock, a
        // token) says so whatever the call; the role advice is for the rest.
        let advice = match sts_advice(&e.code) {
            ROLE_ADVICE if e.is_about_the_key() => e.advice(),
            advice => advice.to_owned(),
        };
        e.message = format!("STS {action}: {}; {advice}", e.message);
    } else {
        e.message = format!("STS {action}: {}", e.message);
    }
    e
}

/// `AssumeRole`, signed with `base`.
pub(crate) async fn assume_role(
    http: &reqwest::Client,
    sts: &reqwest::Url,
    base: &Key,
    role_arn: &str,
    session_name: &str,
    duration_secs: u64,
    external_id: Option<&str>,
) -> Result<Key, ApiError> {
    let duration = duration_secs.to_string();
    let mut op = vec![("RoleArn", role_arn), ("RoleSessionName", session_name), ("DurationSeconds", duration.as_str())];
    if let Some(x) = external_id {
        op.push(("ExternalId", x));
    }
    let (body, _) =
        signed_call(http, sts, base, STS_VERSION, "AssumeRole", &op).await.map_err(|e| sts_error("AssumeRole", e))?;
    let r: AssumeRoleResponse = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("STS AssumeRole: the answer {}", json_error_without_values(&e))))?;
    key_from(r.credentials, &format!("role {role_arn}"))
}

/// `AssumeRoleWithOIDC`: not signed; the OIDC token is the proof.
pub(crate) async fn assume_role_with_oidc(
    http: &reqwest::Client,
    sts: &reqwest::Url,
    role_arn: &str,
    provider_arn: &str,
    token: &str,
    session_name: &str,
    duration_secs: u64,
) -> Result<Key, ApiError> {
    let timestamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let duration = duration_secs.to_string();
    let params = [
        ("Action", "AssumeRoleWithOIDC"),
        ("Version", STS_VERSION),
        ("Format", "JSON"),
        ("Timestamp", timestamp.as_str()),
        ("RoleArn", role_arn),
        ("OIDCProviderArn", provider_arn),
        ("OIDCToken", token),
        ("RoleSessionName", session_name),
        ("DurationSeconds", duration.as_str()),
    ];
    let body = crate::api::signing::canonical_query(&params);
    let response = http
        .post(sts.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| sts_error("AssumeRoleWithOIDC", transport_error(e)))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = read_capped(response, "AssumeRoleWithOIDC", MAX_ANSWER_BYTES)
        .await
        .map_err(|e| sts_error("AssumeRoleWithOIDC", e))?;
    if status != 200 {
        let e = crate::api::answer::error_from_answer(status, &headers, &bytes);
        return Err(sts_error("AssumeRoleWithOIDC", e));
    }
    let r: AssumeRoleResponse = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("STS AssumeRoleWithOIDC: the answer {}", json_error_without_values(&e))))?;
    key_from(r.credentials, &format!("OIDC role {role_arn}"))
}

/// `GetCallerIdentity`: who the key is. Needs no permission.
pub(crate) async fn get_caller_identity(
    http: &reqwest::Client,
    sts: &reqwest::Url,
    key: &Key,
) -> Result<Identity, ApiError> {
    let (body, _) = signed_call(http, sts, key, STS_VERSION, "GetCallerIdentity", &[])
        .await
        .map_err(|e| sts_error("GetCallerIdentity", e))?;
    let mut who: Identity = serde_json::from_slice(&body).map_err(|e| {
        let e = bad(format!("STS GetCallerIdentity: the answer {}", json_error_without_values(&e)));
        key.redactor.redact_error(e)
    })?;
    for text in [&mut who.account_id, &mut who.arn, &mut who.identity_type] {
        key.redactor.redact_in_place(text);
    }
    Ok(who)
}

/// An answer's body as text, read within [`MAX_CREDENTIALS_BYTES`]: one
/// past it is refused for good (no retry makes it smaller).
async fn capped_text(response: reqwest::Response, what: &str) -> Result<String, ApiError> {
    let action = what.strip_prefix("the ").unwrap_or(what);
    let bytes = read_capped(response, action, MAX_CREDENTIALS_BYTES).await.map_err(|mut e| {
        if e.code == "BadResponse" {
            e.class = ErrorClass::Fatal;
        }
        context(what, e)
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A `GET` of a metadata or credentials URI path, as text.
async fn get_text(
    http: &reqwest::Client,
    url: reqwest::Url,
    token: Option<&str>,
    what: &str,
) -> Result<String, ApiError> {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.header("X-aliyun-ecs-metadata-token", t);
    }
    let response = req.send().await.map_err(transport_error).map_err(|e| context(what, e))?;
    let status = response.status().as_u16();
    let text = capped_text(response, what).await?;
    if status != 200 {
        let class = if status >= 500 { ErrorClass::Transient } else { ErrorClass::Fatal };
        let snippet: String = text.chars().take(120).collect();
        return Err(ApiError {
            class,
            http_status: Some(status),
            ..ApiError::transport(&format!("HttpStatus{status}"), format!("{what}: HTTP {status}: {snippet:?}"))
        });
    }
    Ok(text)
}

fn context(what: &str, mut e: ApiError) -> ApiError {
    e.message = format!("{what}: {}", e.message);
    e
}

fn fetched_key(text: &str, what: &str, source: &str) -> Result<Key, ApiError> {
    let f: FetchedKey =
        serde_json::from_str(text).map_err(|e| bad(format!("{what}: the answer {}", json_error_without_values(&e))))?;
    if let Some(code) = f.code.as_deref().filter(|c| *c != "Success") {
        return Err(bad(format!("{what}: answered Code {code}")));
    }
    let (Some(id), Some(secret), Some(expiration)) = (f.access_key_id, f.access_key_secret, f.expiration) else {
        return Err(bad(format!("{what}: the answer lacks AccessKeyId, AccessKeySecret or Expiration")));
    };
    let credentials = Credentials {
        access_key_id: id,
        access_key_secret: Secret::new(secret),
        security_token: f.security_token.filter(|t| !t.is_empty()).map(Secret::new),
        source: source.to_owned(),
        expires: None,
    };
    Ok(Key::new(credentials, Some(parse_expiration(&expiration)?)))
}

/// The ECS instance RAM role's key from the metadata service: an IMDSv2
/// session token first (`PUT /latest/api/token`), the IMDSv1 way without
/// one if that fails and IMDSv1 is allowed; the role is discovered when not
/// named.
pub(crate) async fn ecs_role(
    http: &reqwest::Client,
    metadata: &reqwest::Url,
    role: Option<&str>,
    imds_v1_disabled: bool,
) -> Result<Key, ApiError> {
    let join = |path: &str| metadata.join(path).map_err(|e| bad(format!("metadata URL: {e}")));
    let token = match http
        .put(join("latest/api/token")?)
        .header("X-aliyun-ecs-metadata-token-ttl-seconds", "21600")
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Some(capped_text(r, "the metadata service's IMDSv2 token").await?),
        Ok(r) if imds_v1_disabled => {
            return Err(bad(format!(
                "the metadata service gave no IMDSv2 token (HTTP {}) and ALIBABA_CLOUD_IMDSV1_DISABLED forbids IMDSv1",
                r.status().as_u16()
            )))
        }
        Err(e) if imds_v1_disabled => {
            return Err(context("the metadata service's IMDSv2 token (IMDSv1 is disabled)", transport_error(e)))
        }
        _ => None,
    };
    let role =
        match role {
            Some(r) => r.to_owned(),
            None => {
                let list = get_text(
                    http,
                    join("latest/meta-data/ram/security-credentials/")?,
                    token.as_deref(),
                    "the metadata service's role list",
                )
                .await?;
                list.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned).ok_or_else(|| {
                    bad("the metadata service lists no RAM role: attach one to the instance".to_owned())
                })?
            }
        };
    let what = format!("the metadata service's credentials of role {role}");
    let url = join(&format!("latest/meta-data/ram/security-credentials/{role}"))?;
    let text = get_text(http, url, token.as_deref(), &what).await?;
    fetched_key(&text, &what, &format!("ECS instance RAM role {role}"))
}

/// A key from a credentials URI.
pub(crate) async fn from_uri(http: &reqwest::Client, uri: &str) -> Result<Key, ApiError> {
    let url = reqwest::Url::parse(uri).map_err(|e| bad(format!("ALIBABA_CLOUD_CREDENTIALS_URI is not a URL: {e}")))?;
    let text = get_text(http, url, None, "the credentials URI").await?;
    fetched_key(&text, "the credentials URI", "credentials URI")
}
