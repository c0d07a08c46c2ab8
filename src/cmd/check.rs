//! `check`: who the key is (`GetCallerIdentity`), then one signed
//! `GetImageInfo` call, printed as JSON on stdout, to see that the
//! credentials, the region and the endpoint work; or, with `--dry-run`, what
//! would be used.

use super::cli::CheckArgs;
use super::error::{CmdError, CmdResult, Exit};
use super::settings::ApiTarget;
use crate::api::error::{json_for_terminal, ErrorClass};
use crate::domain::record::OutcomeKind;

/// `check --image-id ID`, or `check --dry-run`.
pub(crate) async fn check(a: &CheckArgs) -> CmdResult {
    let raw_id = a.image_id.clone().unwrap_or_default();
    let id = raw_id.trim();
    if !a.dry_run {
        crate::domain::id::validate_id(id).map_err(|why| CmdError::usage(format!("--image-id {raw_id:?}: {why}")))?;
    }
    let target = ApiTarget::resolve(&a.api)?;
    if a.dry_run {
        println!("region: {}", target.region);
        println!("endpoint: {}", target.client.endpoint.as_str());
        println!("credentials: {}", target.credentials.source);
        if target.credentials.kind.renews() {
            println!("sts endpoint: {}", target.client.sts_endpoint.as_str());
        }
        if let Some(ca) = &a.api.ca_file {
            println!("also trusted: {} ({} certificates)", ca.display(), target.client.extra_roots.len());
        }
        for line in a.sources.lines() {
            println!("{line}");
        }
        return Ok(Exit::Ok);
    }
    target.refuse_an_unresolvable_host().await?;
    let client = target.client()?;
    eprintln!("vod-image-audit: credentials: {}", target.credentials.source);
    if let Err(e) = client.first_key().await {
        eprintln!("vod-image-audit: {e}");
        return Err(target.no_key(&e));
    }
    let identity = match client.caller_identity().await {
        Ok(i) => {
            eprintln!(
                "vod-image-audit: caller: account {}, {} {}",
                i.account_id,
                if i.identity_type.is_empty() { "identity" } else { i.identity_type.as_str() },
                i.arn
            );
            Some(i)
        }
        Err(e) if e.is_untrusted_certificate() => return Err(CmdError::usage(e)),
        Err(e) => {
            eprintln!("vod-image-audit: GetCallerIdentity failed, going on with GetImageInfo: {e}");
            None
        }
    };
    client.check_certificate(true).await.map_err(CmdError::usage)?;
    let (value, exit) = match client.get_image_info(id).await {
        Ok(found) => (
            serde_json::json!({"outcome": OutcomeKind::Found, "image_id": id, "request_id": found.request_id, "image_info": found.info,
                "caller": identity, "credentials_source": target.credentials.source}),
            Exit::Ok,
        ),
        Err(e) if e.class == ErrorClass::Missing => (
            serde_json::json!({"outcome": OutcomeKind::Missing, "image_id": id, "request_id": e.request_id,
                "caller": identity, "credentials_source": target.credentials.source}),
            Exit::Ok,
        ),
        Err(e) => {
            let fatal = e.class == ErrorClass::Fatal;
            if fatal {
                eprintln!("vod-image-audit: {e}\nvod-image-audit: {}", e.advice());
            } else {
                eprintln!("vod-image-audit: {e}");
                if let Some(hint) = e.connection_hint() {
                    eprintln!("vod-image-audit: {hint}");
                }
            }
            (
                serde_json::json!({"outcome": OutcomeKind::Failed, "image_id": id, "error": {
                    "code": e.code, "message": e.message, "http_status": e.http_status, "request_id": e.request_id,
                    "fatal": fatal}}),
                if fatal { Exit::Stopped } else { Exit::Failures },
            )
        }
    };
    // The answer's text as JSON, with what serde_json leaves raw (C1 and bidi
    // controls) escaped too: stdout is often a terminal.
    let text = json_for_terminal(serde_json::to_string_pretty(&value).map_err(CmdError::internal)?);
    println!("{text}");
    if exit == Exit::Ok {
        eprintln!(
            "vod-image-audit: credentials ({}) and endpoint {} work (region {}; {})",
            target.credentials.source,
            client.endpoint().as_str(),
            target.region,
            match &target.client.proxy {
                Some(proxy) => format!("through proxy {proxy}"),
                None => "no proxy".to_owned(),
            }
        );
    }
    Ok(exit)
}
