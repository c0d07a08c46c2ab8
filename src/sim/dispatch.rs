//! From a request to its answer: the stats page, the metadata service and
//! credentials URI, STS, and the VOD actions (`GetImageInfo`,
//! `GetImageInfos`, `GetMediaAuditResult`, and `SearchMedia` through
//! `search`), each after the checks, the quota and the faults; the answer
//! rendered in the format asked for, with its request id.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::auth::authenticate;
use super::catalog::{mix64, CatalogImage};
use super::config::STS_VERSION;
use super::faults::{inject_faults, misname, Dropped};
use super::quota::{admit, QuotaAction};
use super::sts::{metadata, sts};
use super::wire::{self, get, Answer, Format};
use super::{search, Simulator};

/// The largest form body accepted on `POST`.
const MAX_BODY: usize = 1 << 20;

/// One HTTP request: the stats page, the metadata service and credentials
/// URI, STS (by its `Version`), or a VOD call; `Err` closes the connection
/// without an answer.
pub(super) async fn handle(sim: Arc<Simulator>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    if req.uri().path() == "/__sim/stats" {
        let body = serde_json::to_vec(&sim.stats()).unwrap_or_default();
        return Ok(wire::raw(StatusCode::OK, "application/json", body));
    }
    let path = req.uri().path().to_owned();
    if path.starts_with("/latest/") || path == "/__sim/credentials-uri" {
        return Ok(metadata(&sim, &req, &path));
    }
    let method = req.method().clone();
    let path_ok = req.uri().path() == "/";
    let mut params = parse_pairs(req.uri().query().unwrap_or(""));
    let is_form = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if method == Method::POST && is_form {
        params.extend(parse_pairs(&String::from_utf8_lossy(&body)));
    }
    let format = match get(&params, "Format") {
        Some(f) if f.eq_ignore_ascii_case("json") => Format::Json,
        _ => Format::Xml,
    };
    if path_ok && get(&params, "Version") == Some(STS_VERSION) {
        let action = get(&params, "Action").unwrap_or_default().to_owned();
        let answer = sts(&sim, &method, &params);
        sim.count_action(&action, answer.code());
        return Ok(answer.render(format, &sim.request_id(), "sts.aliyuncs.com"));
    }
    sim.requests.fetch_add(1, Ordering::Relaxed);
    let answer = process(&sim, &method, path_ok, &params).await;
    match answer {
        Err(Dropped) => {
            sim.count_code("Dropped");
            Err(Dropped)
        }
        Ok(a) => {
            sim.count_code(a.code());
            let mut response = a.render(format, &sim.request_id(), &format!("vod.{}.aliyuncs.com", sim.config.region));
            if sim.config.clock_offset_secs != 0 {
                let date = httpdate::fmt_http_date(sim.now());
                if let Ok(v) = date.parse() {
                    response.headers_mut().insert(hyper::header::DATE, v);
                }
            }
            Ok(response)
        }
    }
}

/// `k=v&...`, percent-decoded, in order.
fn parse_pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A call to the VOD endpoint: its checks, then its action's.
async fn process(
    sim: &Simulator,
    method: &Method,
    path_ok: bool,
    params: &[(String, String)],
) -> Result<Answer, Dropped> {
    let authenticated = match check_vod_call(sim, method, path_ok, params) {
        Ok(n) => n,
        Err(refused) => return Ok(refused),
    };
    let action = get(params, "Action").unwrap_or_default();
    if action == "SearchMedia" {
        let answer = search::call(sim, params, authenticated).await;
        sim.count_action("SearchMedia", answer.as_ref().map_or("Dropped", Answer::code));
        return answer;
    }
    let ids = match ids_asked(action, params).and_then(|ids| check_output(params).map(|()| ids)) {
        Ok(ids) => ids,
        Err(refused) => return Ok(refused),
    };
    let quota = match action {
        "GetImageInfo" => QuotaAction::GetImageInfo,
        "GetMediaAuditResult" => QuotaAction::GetMediaAuditResult,
        _ => QuotaAction::GetImageInfos,
    };
    if let Some(refused) = admit(sim, authenticated, quota) {
        return Ok(refused);
    }
    // Faults are drawn from (seed, ids, how many times these ids were called),
    // so a run sees the same faults whatever the order of its calls.
    let key_ids = ids.join(",");
    let call = if ids.len() > 1 { sim.count_batch(&key_ids) } else { sim.count_call(&key_ids) };
    let id_calls: Vec<u64> = if ids.len() > 1 { ids.iter().map(|id| sim.count_call(id)).collect() } else { vec![call] };
    if let Some(fault) = inject_faults(sim, &key_ids, call).await? {
        return Ok(fault);
    }
    Ok(match action {
        "GetMediaAuditResult" => media_audit_result(sim, ids[0]),
        "GetImageInfo" => image_info(sim, &ids, call),
        _ => image_infos(sim, &ids, &id_calls, call),
    })
}

/// What every VOD call passes before its action is looked at: the path,
/// the method, the signature checks, the nonce and the version. `Ok` is
/// the call's number among authenticated calls (1-based).
fn check_vod_call(sim: &Simulator, method: &Method, path_ok: bool, params: &[(String, String)]) -> Result<u64, Answer> {
    if !path_ok {
        return Err(Answer::error(
            404,
            "InvalidApi.NotFound",
            "Specified api is not found, please check your url and method.",
        ));
    }
    if method != Method::GET && method != Method::POST {
        return Err(Answer::error(400, "UnsupportedHTTPMethod", "Specified http method is not supported."));
    }
    authenticate(sim, method, params, true)?;
    let p = |name: &str| get(params, name).unwrap_or_default();
    let authenticated = sim.authenticated.fetch_add(1, Ordering::Relaxed) + 1;
    if !sim.fresh_nonce(p("SignatureNonce")) {
        return Err(Answer::error(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
    }
    if p("Version") != crate::api::client::API_VERSION {
        return Err(Answer::error(400, "InvalidVersion", "Specified parameter Version is not valid."));
    }
    Ok(authenticated)
}

/// The ids an image or audit action names, checked as the service does.
fn ids_asked<'a>(action: &str, params: &'a [(String, String)]) -> Result<Vec<&'a str>, Answer> {
    match action {
        "GetImageInfo" => match get(params, "ImageId") {
            None | Some("") => Err(Answer::error(400, "MissingImageId", "ImageId is mandatory for this action.")),
            Some(id) => Ok(vec![id]),
        },
        "GetMediaAuditResult" => match get(params, "MediaId") {
            None | Some("") => Err(Answer::error(400, "MissingMediaId", "MediaId is mandatory for this action.")),
            Some(id) => Ok(vec![id]),
        },
        "GetImageInfos" => match get(params, "ImageIds") {
            None | Some("") => Err(Answer::error(400, "MissingImageIds", "ImageIds is mandatory for this action.")),
            Some(list) => {
                let ids: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
                if ids.is_empty() || ids.len() > crate::api::client::MAX_BATCH_IDS {
                    return Err(Answer::error(
                        400,
                        "InvalidParameter",
                        "The specified parameter ImageIds is not valid: 1 to 20 ids are allowed.",
                    ));
                }
                Ok(ids)
            }
        },
        _ => Err(Answer::error(
            404,
            "InvalidApi.NotFound",
            "Specified api is not found, please check your url and method.",
        )),
    }
}

/// `OutputType` and `AuthTimeout`, checked as the service does.
fn check_output(params: &[(String, String)]) -> Result<(), Answer> {
    match get(params, "OutputType") {
        None | Some("cdn") | Some("oss") => {}
        Some(_) => {
            return Err(Answer::error(400, "InvalidParameter", "The specified parameter OutputType is not valid."))
        }
    }
    if let Some(t) = get(params, "AuthTimeout") {
        let max = if get(params, "OutputType") == Some("oss") { 2_592_000 } else { i64::MAX };
        if !t.parse::<i64>().is_ok_and(|t| (1..=max).contains(&t)) {
            return Err(Answer::error(400, "InvalidParameter", "The specified parameter AuthTimeout is not valid."));
        }
    }
    Ok(())
}

/// `GetMediaAuditResult` of `id`.
fn media_audit_result(sim: &Simulator, id: &str) -> Answer {
    let cfg = &sim.config;
    // Counted apart: `answers_by_image` says how often an image was looked up.
    if let Some(code) = &cfg.media_audit_refused {
        sim.count_action("GetMediaAuditResult", code);
        let status = if code.starts_with("InvalidApi") { 404 } else { 403 };
        return Answer::error(status, code, "GetMediaAuditResult is not available to this account.");
    }
    sim.count_action("GetMediaAuditResult", "OK");
    match cfg.catalog.moderation(id) {
        Some(result) => Answer::Audit(result),
        // An assumption (no page documents it): an unknown media id is
        // answered as GetImageInfo answers one.
        None => Answer::error(404, "NoSuchResource", "The specified resource does not exist."),
    }
}

/// `GetImageInfo` of `ids[0]`, its `call`-th call (0-based).
fn image_info(sim: &Simulator, ids: &[&str], call: u64) -> Answer {
    let cfg = &sim.config;
    let id = ids[0];
    if sim.draw(id, call, 5) < cfg.faults.wrong_image_id {
        if let Some((_, other)) = cfg.catalog.other_than(ids, sim.draw(id, call, 7)) {
            return Answer::WrongImageId(Box::new(Answer::Image(other.clone())));
        }
    }
    sim.count_answer(id);
    match cfg.catalog.get(id) {
        Some(img) if cfg.omit_audit_status => Answer::Image(without_audit_status(img)),
        Some(img) => Answer::Image(img.clone()),
        None => Answer::error(404, "NoSuchResource", "The specified resource does not exist."),
    }
}

/// `GetImageInfos` of `ids`, the batch's `call`-th call (0-based);
/// `id_calls`: each id's.
fn image_infos(sim: &Simulator, ids: &[&str], id_calls: &[u64], call: u64) -> Answer {
    let cfg = &sim.config;
    let key_ids = ids.join(",");
    let mut found: Vec<CatalogImage> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut answered: Vec<&str> = Vec::with_capacity(ids.len());
    for (&id, &n) in ids.iter().zip(id_calls) {
        if sim.draw(id, n, 4) < cfg.batch_forgets {
            continue;
        }
        answered.push(id);
        match cfg.catalog.get(id) {
            Some(img) if cfg.batch_omits_audit_status || cfg.omit_audit_status => found.push(without_audit_status(img)),
            Some(img) => found.push(img.clone()),
            None => missing.push(id.to_owned()),
        }
    }
    if sim.draw(&key_ids, call, 5) < cfg.faults.wrong_image_id {
        let (how, pick) = (sim.draw(&key_ids, call, 6), sim.draw(&key_ids, call, 7));
        if misname(&cfg.catalog, ids, &mut found, &mut missing, how, pick) {
            // A wrong answer answers none of its ids.
            return Answer::WrongImageId(Box::new(Answer::Images(found, missing)));
        }
    }
    for id in answered {
        sim.count_answer(id);
    }
    Answer::Images(found, missing)
}

/// The image as an answer that does not carry `AuditStatus`.
fn without_audit_status(img: &CatalogImage) -> CatalogImage {
    let mut v = img.value();
    if let Some(m) = v.as_object_mut() {
        m.remove("AuditStatus");
    }
    CatalogImage { json: v.to_string().into() }
}

impl Simulator {
    /// The next `RequestId`: seeded, in the service's UUID shape.
    pub(super) fn request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        let a = mix64(self.config.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let b = mix64(a ^ 0xD1B5_4A32_D192_ED03);
        format!(
            "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }
}
