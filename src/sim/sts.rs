//! What the credential sources talk to, on the simulator's port: STS
//! (`AssumeRole`, `AssumeRoleWithOIDC`, `GetCallerIdentity`, version
//! 2015-04-01, told apart from VOD by `Version`), the ECS metadata service
//! (`/latest/...`, IMDSv1 and v2) and a credentials URI
//! (`/__sim/credentials-uri`); and the temporary keys they issue, which the
//! VOD checks then accept until they expire.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::auth::authenticate;
use super::catalog::mix64;
use super::config::SimConfig;
use super::wire::get;
use super::wire::unavailable;
use super::wire::{self, Answer};
use super::Simulator;

/// The IMDSv2 session token the metadata service hands out.
const IMDS_TOKEN: &str = "sim-imds-session-token";

/// A temporary key the simulator issued.
#[derive(Debug, Clone)]
pub(super) struct Issued {
    pub(super) secret: String,
    pub(super) token: String,
    pub(super) expires: SystemTime,
    /// `acs:ram::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub(super) arn: String,
}

impl Simulator {
    /// Issues a temporary key that lives `lifetime` (at most `sts_duration`).
    pub(super) fn issue(&self, arn: String, lifetime: Option<Duration>) -> serde_json::Value {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        let a = mix64(self.config.seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F) ^ 0x5555);
        let b = mix64(a ^ 0x1234_5678);
        let id = format!("STS.{a:016X}");
        let secret = format!("sim-sts-secret-{b:016x}");
        let token = format!("sim-sts-token-{:016x}{:016x}", mix64(b), mix64(a ^ b));
        let life = lifetime.unwrap_or(self.config.sts_duration).min(self.config.sts_duration);
        let expires = self.now() + life;
        let expiration = humantime::format_rfc3339_seconds(expires).to_string();
        let issued = Issued { secret: secret.clone(), token: token.clone(), expires, arn };
        self.issued.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), issued);
        serde_json::json!({
            "AccessKeyId": id,
            "AccessKeySecret": secret,
            "SecurityToken": token,
            "Expiration": expiration,
        })
    }
}

/// `acs:ram::ACCOUNT:role/NAME`, checked as STS does.
fn check_role(cfg: &SimConfig, role_arn: Option<&str>) -> Result<String, Answer> {
    let Some(arn) = role_arn.filter(|a| !a.is_empty()) else {
        return Err(Answer::error(400, "MissingRoleArn", "RoleArn is mandatory for this action."));
    };
    let parsed = arn.strip_prefix("acs:ram::").and_then(|rest| rest.split_once(":role/"));
    let Some((account, name)) =
        parsed.filter(|(a, n)| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty())
    else {
        return Err(Answer::error(400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed."));
    };
    if account != cfg.account_id || !cfg.roles.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(Answer::error(404, "EntityNotExist.Role", "The specified Role not exists ."));
    }
    Ok(name.to_owned())
}

/// The lifetime a request asks for: `DurationSeconds`, 900 to 43200 as STS allows.
fn duration_asked(params: &[(String, String)]) -> Result<Option<Duration>, Answer> {
    match get(params, "DurationSeconds") {
        None | Some("") => Ok(None),
        Some(d) => match d.parse::<u64>() {
            Ok(n) if (900..=43_200).contains(&n) => Ok(Some(Duration::from_secs(n))),
            _ => Err(Answer::error(
                400,
                "InvalidParameter.DurationSeconds",
                "The Min/Max value of DurationSeconds is 15min/12hr.",
            )),
        },
    }
}

/// The STS actions.
pub(super) fn sts(sim: &Simulator, method: &Method, params: &[(String, String)]) -> Answer {
    match sts_answer(sim, method, params) {
        Ok(a) | Err(a) => a,
    }
}

/// [`sts`], with a refusal as `Err` so that each check can end it with `?`.
fn sts_answer(sim: &Simulator, method: &Method, params: &[(String, String)]) -> Result<Answer, Answer> {
    let cfg = &sim.config;
    let action = get(params, "Action").unwrap_or_default();
    let session = || match get(params, "RoleSessionName") {
        Some(s) if !s.is_empty() => Ok(s.to_owned()),
        _ => Err(Answer::error(400, "MissingRoleSessionName", "RoleSessionName is mandatory for this action.")),
    };
    if action == "AssumeRoleWithOIDC" {
        // Not signed: the OIDC token is the proof.
        let name = check_role(cfg, get(params, "RoleArn"))?;
        let session = session()?;
        let Some((provider_arn, token)) = &cfg.oidc else {
            return Err(Answer::error(
                404,
                "EntityNotExist.OIDCProvider",
                "The specified OIDC provider does not exist.",
            ));
        };
        if get(params, "OIDCProviderArn") != Some(provider_arn.as_str()) {
            return Err(Answer::error(
                404,
                "EntityNotExist.OIDCProvider",
                "The specified OIDC provider does not exist.",
            ));
        }
        if get(params, "OIDCToken") != Some(token.as_str()) {
            return Err(Answer::error(400, "AuthenticationFail.OIDCToken.Invalid", "The OIDC token is invalid."));
        }
        let asked = duration_asked(params)?;
        let arn = format!("acs:ram::{}:assumed-role/{name}/{session}", cfg.account_id);
        let credentials = sim.issue(arn.clone(), asked);
        return Ok(Answer::Json(serde_json::json!({
            "Credentials": credentials,
            "AssumedRoleUser": {"Arn": arn, "AssumedRoleId": format!("3{}:{session}", cfg.account_id)},
        })));
    }
    let caller = authenticate(sim, method, params, false)?;
    if !sim.fresh_nonce(get(params, "SignatureNonce").unwrap_or_default()) {
        return Err(Answer::error(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
    }
    match action {
        "GetCallerIdentity" => Ok(Answer::Json(serde_json::json!({
            "AccountId": cfg.account_id,
            "Arn": caller.arn,
            "IdentityType": caller.identity_type,
            "UserId": "216959339000000000",
            "PrincipalId": "216959339000000000",
        }))),
        "AssumeRole" => {
            if cfg.assume_role_denied.iter().any(|k| Some(k.as_str()) == get(params, "AccessKeyId")) {
                return Err(Answer::error(
                    403,
                    "NoPermission",
                    "You are not authorized to do this action. You should be authorized by RAM.",
                ));
            }
            let name = check_role(cfg, get(params, "RoleArn"))?;
            let session = session()?;
            let asked = duration_asked(params)?;
            if cfg.sts_fail_after.is_some_and(|n| sim.assumed.load(Ordering::Relaxed) >= n) {
                return Err(unavailable());
            }
            sim.assumed.fetch_add(1, Ordering::Relaxed);
            let arn = format!("acs:ram::{}:assumed-role/{name}/{session}", cfg.account_id);
            let credentials = sim.issue(arn.clone(), asked);
            Ok(Answer::Json(serde_json::json!({
                "Credentials": credentials,
                "AssumedRoleUser": {"Arn": arn, "AssumedRoleId": format!("3{}:{session}", cfg.account_id)},
            })))
        }
        _ => Err(Answer::error(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )),
    }
}

/// The ECS metadata service and the credentials URI.
pub(super) fn metadata(sim: &Simulator, req: &Request<Incoming>, path: &str) -> Response<Full<Bytes>> {
    let cfg = &sim.config;
    let text = |status: StatusCode, body: &str| wire::raw(status, "text/plain", body.as_bytes().to_vec());
    if path == "/__sim/credentials-uri" {
        sim.count_action("CredentialsURI", "OK");
        let mut v = sim.issue(format!("acs:ram::{}:assumed-role/uri-role/uri", cfg.account_id), None);
        if let Some(m) = v.as_object_mut() {
            m.insert("Code".into(), "Success".into());
        }
        return wire::raw(StatusCode::OK, "application/json", serde_json::to_vec(&v).unwrap_or_default());
    }
    if path == "/latest/api/token" {
        if req.method() != Method::PUT || !cfg.imds_v2 {
            sim.count_action("MetadataToken", "Refused");
            return text(StatusCode::NOT_FOUND, "Not Found");
        }
        if req.headers().get("X-aliyun-ecs-metadata-token-ttl-seconds").is_none() {
            sim.count_action("MetadataToken", "Refused");
            return text(StatusCode::BAD_REQUEST, "missing X-aliyun-ecs-metadata-token-ttl-seconds");
        }
        sim.count_action("MetadataToken", "OK");
        return text(StatusCode::OK, IMDS_TOKEN);
    }
    let version = match req.headers().get("X-aliyun-ecs-metadata-token").and_then(|v| v.to_str().ok()) {
        Some(IMDS_TOKEN) => "v2",
        Some(_) => {
            sim.count_action("MetadataCredentials", "BadToken");
            return text(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        None if cfg.imds_v1 => "v1",
        None => {
            sim.count_action("MetadataCredentials", "v1Refused");
            return text(StatusCode::FORBIDDEN, "Forbidden");
        }
    };
    let Some(role) = &cfg.ecs_role else { return text(StatusCode::NOT_FOUND, "Not Found") };
    match path.strip_prefix("/latest/meta-data/ram/security-credentials/") {
        Some("") => {
            sim.count_action(&format!("MetadataRoleList.{version}"), "OK");
            text(StatusCode::OK, role)
        }
        Some(r) if r == role => {
            sim.count_action(&format!("MetadataCredentials.{version}"), "OK");
            let mut v = sim.issue(format!("acs:ram::{}:assumed-role/{role}/ecs", cfg.account_id), None);
            if let Some(m) = v.as_object_mut() {
                m.insert("Code".into(), "Success".into());
                m.insert("LastUpdated".into(), humantime::format_rfc3339_seconds(sim.now()).to_string().into());
            }
            wire::raw(StatusCode::OK, "text/plain", serde_json::to_vec(&v).unwrap_or_default())
        }
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}
