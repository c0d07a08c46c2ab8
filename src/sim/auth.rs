//! The checks every signed call passes, as the real endpoint makes them:
//! the mandatory parameters, signature method and version, the timestamp
//! (UTC whole seconds, within the allowed skew), the key (configured,
//! issued by STS, or revoked), the signature, the STS token and its
//! expiry; and the nonces seen, each accepted once. The signature is
//! checked with the client's [`crate::api::signing`], fed with the
//! parameters as the server decoded them.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use hyper::Method;

use super::wire::get;
use super::wire::Answer;
use super::{shard_of, Simulator};
use crate::api::signing;

/// Nonces seen recently, in two generations: a nonce older than two skew
/// windows can no longer pass the timestamp check, so it may be forgotten.
#[derive(Default)]
pub(super) struct NonceShard {
    current: HashSet<Box<str>>,
    previous: HashSet<Box<str>>,
    generation: u64,
}

impl Simulator {
    /// Records a nonce; false if it was seen before.
    pub(super) fn fresh_nonce(&self, nonce: &str) -> bool {
        // A timestamp passes while it is within max_skew of now on either side, so
        // for 2 × max_skew: generations that long, two kept, never forget it sooner.
        let generation = self.started.elapsed().as_secs() / (2 * self.config.max_skew.as_secs()).max(1);
        let mut shard = self.nonces[shard_of(nonce)].lock().unwrap_or_else(|e| e.into_inner());
        if shard.generation != generation {
            let cur = std::mem::take(&mut shard.current);
            shard.previous = if generation == shard.generation + 1 { cur } else { HashSet::new() };
            shard.generation = generation;
        }
        if shard.current.contains(nonce) || shard.previous.contains(nonce) {
            return false;
        }
        shard.current.insert(nonce.into());
        true
    }
}

/// Who signed a request.
pub(super) struct Caller {
    pub(super) arn: String,
    pub(super) identity_type: &'static str,
}

/// The checks every signed call passes: parameters, signature method and
/// version, timestamp, key, signature, STS token. `vod`: the VOD endpoint's
/// call, which a revoked key fails.
pub(super) fn authenticate(
    sim: &Simulator,
    method: &Method,
    params: &[(String, String)],
    vod: bool,
) -> Result<Caller, Answer> {
    let cfg = &sim.config;
    for name in [
        "AccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
        "Version",
        "Action",
    ] {
        if get(params, name).is_none_or(str::is_empty) {
            let code = if name == "Signature" { "IncompleteSignature".to_owned() } else { format!("Missing{name}") };
            return Err(Answer::error(400, &code, &format!("{name} is mandatory for this action.")));
        }
    }
    let p = |name: &str| get(params, name).unwrap_or_default();
    if p("SignatureMethod") != "HMAC-SHA1" {
        return Err(Answer::error(400, "InvalidSignatureMethod", "Specified signature method is not valid."));
    }
    if p("SignatureVersion") != "1.0" {
        return Err(Answer::error(400, "InvalidSignatureVersion", "Specified signature version is not valid."));
    }
    let Ok(ts) = humantime::parse_rfc3339(p("Timestamp")) else {
        return Err(Answer::error(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        ));
    };
    if !is_utc_seconds(p("Timestamp")) {
        return Err(Answer::error(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        ));
    }
    let now = sim.now();
    let skew = now.duration_since(ts).unwrap_or_else(|e| e.duration());
    if skew > cfg.max_skew {
        return Err(Answer::error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."));
    }
    let revoked = vod && cfg.revoke_key_after.is_some_and(|n| sim.authenticated.load(Ordering::Relaxed) >= n);
    let id = p("AccessKeyId");
    // (secret, token, expires, arn) of a configured key or an issued one.
    let (secret, token, expires, caller) = match sim.keys.get(id).filter(|_| !revoked) {
        Some(k) => (
            k.secret.clone(),
            k.sts_token.clone(),
            k.sts_token.as_ref().and(cfg.static_token_expires),
            Caller { arn: format!("acs:ram::{}:user/simulator", cfg.account_id), identity_type: "RAMUser" },
        ),
        None => match sim.issued.lock().unwrap_or_else(|e| e.into_inner()).get(id).filter(|_| !revoked) {
            Some(i) => (
                i.secret.clone(),
                Some(i.token.clone()),
                Some(i.expires),
                Caller { arn: i.arn.clone(), identity_type: "AssumedRoleUser" },
            ),
            None => {
                return Err(Answer::error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."))
            }
        },
    };
    let string_to_sign = signing::string_to_sign(method.as_str(), params);
    let expected = signing::signature_of(&string_to_sign, &secret);
    if expected != p("Signature") {
        return Err(Answer::error(
            400,
            "SignatureDoesNotMatch",
            &format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
            ),
        ));
    }
    if let Some(token) = &token {
        match get(params, "SecurityToken") {
            None | Some("") => {
                return Err(Answer::error(400, "MissingSecurityToken", "SecurityToken is mandatory for this action."))
            }
            Some(t) if t != token => {
                return Err(Answer::error(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                ))
            }
            Some(_) => {}
        }
        if expires.is_some_and(|e| now >= e) {
            return Err(Answer::error(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."));
        }
    }
    Ok(caller)
}

/// The API wants `YYYY-MM-DDThh:mm:ssZ`: UTC, whole seconds.
pub(super) fn is_utc_seconds(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && b.iter().enumerate().all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19) || c.is_ascii_digit())
}
