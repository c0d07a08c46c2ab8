//! `SearchMedia` (VOD 2017-03-21) for images: the request's checks, the
//! 5,000-result paging window, the order of the results, the answer, and the
//! `search` section of the stats. Authentication, nonce and version
//! (`dispatch`, `auth`), the outage and the quota (SearchMedia's own, as
//! each action's: `quota`) and the seeded faults (`faults`) are the
//! simulator's, shared with every VOD action; the `Match` grammar is [`protocol`]'s.
//!
//! What is documented (operation page
//! <https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-searchmedia>,
//! Chinese <https://help.aliyun.com/document_detail/86044.html>, and the
//! official SDK models, alibabacloud-java-sdk `vod-20170321`
//! `SearchMediaRequest` / `SearchMediaResponseBody`):
//!
//! - Parameters `SearchType` (`video` (the default), `audio`, `image`,
//!   `attached`), `Match`, `Fields`, `SortBy` (`CreationTime:Desc`, the
//!   default, or `CreationTime:Asc`), `PageNo` (default 1), `PageSize`
//!   (default 10, at most 100), `ScrollToken` (full traversal, for audio and
//!   video only).
//! - Paging reaches the first 5,000 results of a query only ("You can
//!   traverse up to 5,000 search results by setting PageNo and PageSize");
//!   beyond that the filter must be narrowed.
//! - The answer: `RequestId`, `Total` (int64, every match of the query),
//!   `MediaList` of `{MediaType, MediaId, CreationTime, Image}`, the `Image`
//!   object's fields as in `SearchMediaResponseBodyMediaListImage`: `AppId`,
//!   `CateId` (long), `CateName`, `CreationTime`, `Description`, `ImageId`,
//!   `ModificationTime`, `Status`, `StorageLocation`, `Tags`, `Title`, `URL`.
//!   "By default, only the basic media asset fields are returned"; `Fields`
//!   asks for more.
//! - Quota: 50 calls/s per account ("QPS limits on API operations",
//!   <https://www.alibabacloud.com/help/en/vod/developer-reference/qps-limits-on-api-operations>;
//!   also on the older operation page
//!   <https://www.alibabacloud.com/help/en/apsaravideo-for-vod/latest/searchmedia>):
//!   [`DOCUMENTED_QPS`], served when its quota is set (`api_qps`).
//!
//! What is assumed (no page or SDK found says otherwise):
//!
//! - Every refused request is `400 InvalidParameter`, the code the other
//!   VOD operations use for a bad value, with a message naming the
//!   parameter: `PageNo` or `PageSize` not a whole number in range,
//!   `PageNo*PageSize` over 5,000, a bad `Match`, `SortBy`, `Fields` or
//!   `SearchType`, and a `ScrollToken` with `SearchType=image` (full
//!   traversal is documented for audio and video only). The real code for
//!   a page beyond 5,000 was not found in the docs or SDKs.
//! - The basic fields of an image are its `ImageId` and `CreationTime`; a
//!   `Fields` entry that is not one of the model's names is refused.
//! - Other search types are answered `Total` 0 and an empty `MediaList`,
//!   their `Match` and `Fields` unchecked.
//! - Ties of `CreationTime` are broken by `ImageId` (ascending, in both
//!   orders), so that paging a fixed query is stable; images without a
//!   readable `CreationTime` come last in both orders. The
//!   `search_unstable_ties` fault breaks ties by a key drawn per request
//!   instead: pages of one query may then overlap and miss images.

mod protocol;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::catalog::{mix64, Catalog};
use super::wire::Answer;
use super::{Dropped, Simulator};
use protocol::{Condition, Searchable};

/// `SearchMedia`'s documented quota per account, in calls per second.
pub const DOCUMENTED_QPS: u32 = 50;
/// The largest `PageSize` (documented).
pub(super) const MAX_PAGE_SIZE: u64 = 100;
/// `PageSize` when absent (documented).
pub(super) const DEFAULT_PAGE_SIZE: u64 = 10;
/// The most results paging reaches: `PageNo*PageSize` at most (documented).
pub(super) const MAX_PAGED_RESULTS: u64 = 5_000;

/// The fields of `SearchMediaResponseBodyMediaListImage`, the names `Fields` may list.
const IMAGE_FIELDS: [&str; 12] = [
    "AppId",
    "CateId",
    "CateName",
    "CreationTime",
    "Description",
    "ImageId",
    "ModificationTime",
    "Status",
    "StorageLocation",
    "Tags",
    "Title",
    "URL",
];

/// What `/__sim/stats` reports of `SearchMedia` (its `search` section).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SearchStats {
    /// Successful answers (each holds a `MediaList`, empty or not).
    pub pages: u64,
    /// The largest `PageNo*PageSize` asked, refused requests included.
    pub max_page_end: u64,
    /// Requests refused because `PageNo*PageSize` was over 5,000.
    pub over_limit: u64,
    /// Distinct (`SearchType`, `Match`, `SortBy`, `PageNo`, `PageSize`,
    /// `Fields`) requests answered successfully more than once.
    pub duplicate_pages: u64,
    /// Distinct `Match` strings among the successful answers (absent is "").
    pub queries: u64,
}

/// Sort order of `CreationTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Asc,
    Desc,
}

/// A checked request.
#[derive(Debug, Clone)]
pub(crate) struct SearchRequest {
    /// False for `video`, `audio`, `attached`: answered empty.
    pub image: bool,
    pub conditions: Vec<Condition>,
    pub order: Order,
    /// Names from [`IMAGE_FIELDS`], in request order.
    pub fields: Vec<&'static str>,
    pub page_no: u64,
    pub page_size: u64,
    /// The `Match` as sent ("" when absent).
    pub match_text: String,
    /// What `duplicate_pages` tells requests apart by.
    pub key: String,
}

/// Why a request is refused, and what the stats learn from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub message: String,
    /// `PageNo*PageSize`, when both were readable.
    pub page_end: Option<u64>,
    pub over_limit: bool,
}

fn refuse(message: String) -> Refusal {
    Refusal { message, page_end: None, over_limit: false }
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// A whole number in `1..=max`, or the default when absent.
fn number(params: &[(String, String)], name: &str, default: u64, max: u64) -> Result<u64, Refusal> {
    let Some(v) = get(params, name) else { return Ok(default) };
    match v.parse::<u64>() {
        Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) && (1..=max).contains(&n) => Ok(n),
        _ => Err(refuse(format!(
            "The specified parameter {name} is not valid: {v:?} is not a whole number from 1 to {max}."
        ))),
    }
}

/// Checks a request's own parameters (the common ones are the caller's).
pub(crate) fn parse_request(params: &[(String, String)]) -> Result<SearchRequest, Refusal> {
    let page_no = number(params, "PageNo", 1, u64::MAX)?;
    let page_size = number(params, "PageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let page_end = page_no.saturating_mul(page_size);
    if page_end > MAX_PAGED_RESULTS {
        return Err(Refusal {
            message: format!(
                "The specified parameters PageNo and PageSize are not valid: paging reaches the first {MAX_PAGED_RESULTS} results only (PageNo*PageSize = {page_end}); narrow the Match."
            ),
            page_end: Some(page_end),
            over_limit: true,
        });
    }
    let with_end = |mut r: Refusal| {
        r.page_end = Some(page_end);
        r
    };
    let image = match get(params, "SearchType").unwrap_or("video") {
        "image" => true,
        "video" | "audio" | "attached" => false,
        other => {
            return Err(with_end(refuse(format!(
                "The specified parameter SearchType is not valid: {other:?} is not video, audio, image or attached."
            ))))
        }
    };
    let order = match get(params, "SortBy").unwrap_or("CreationTime:Desc") {
        "CreationTime:Desc" => Order::Desc,
        "CreationTime:Asc" => Order::Asc,
        other => {
            return Err(with_end(refuse(format!(
                "The specified parameter SortBy is not valid: {other:?} (the simulator sorts by CreationTime:Desc or CreationTime:Asc)."
            ))))
        }
    };
    let match_text = get(params, "Match").unwrap_or_default().to_owned();
    let mut conditions = Vec::new();
    let mut fields = Vec::new();
    if image {
        if get(params, "ScrollToken").is_some() {
            return Err(with_end(refuse(
                "The specified parameter ScrollToken is not valid: full traversal serves audio and video only.".into(),
            )));
        }
        conditions = protocol::parse(&match_text)
            .map_err(|e| with_end(refuse(format!("The specified parameter Match is not valid: {e}."))))?;
        for name in get(params, "Fields").into_iter().flat_map(|f| f.split(',')).map(str::trim) {
            match IMAGE_FIELDS.iter().find(|f| **f == name) {
                Some(f) if !fields.contains(f) => fields.push(*f),
                Some(_) => {}
                None => {
                    return Err(with_end(refuse(format!(
                        "The specified parameter Fields is not valid: {name:?} is not a field of an image."
                    ))))
                }
            }
        }
    }
    let key = [
        get(params, "SearchType").unwrap_or_default(),
        &match_text,
        get(params, "SortBy").unwrap_or_default(),
        &page_no.to_string(),
        &page_size.to_string(),
        get(params, "Fields").unwrap_or_default(),
    ]
    .join("\n");
    Ok(SearchRequest { image, conditions, order, fields, page_no, page_size, match_text, key })
}

/// The catalog's images as [`Searchable`], with both orders precomputed.
pub(crate) struct Index {
    entries: Vec<Searchable>,
    asc: Vec<u32>,
    desc: Vec<u32>,
}

impl Index {
    pub(crate) fn build(catalog: &Catalog) -> Index {
        let entries: Vec<Searchable> = catalog
            .ids()
            .iter()
            .map(|id| {
                let v = catalog.get(id).map(|i| i.value()).unwrap_or(Value::Null);
                Searchable {
                    id: id.clone(),
                    created: v.get("CreationTime").and_then(Value::as_str).and_then(protocol::parse_catalog_time),
                    cate_id: cate_id(v.get("CateId")),
                    status: v.get("Status").and_then(Value::as_str).map(str::to_owned),
                }
            })
            .collect();
        let mut asc: Vec<u32> = (0..entries.len() as u32).collect();
        let mut desc = asc.clone();
        asc.sort_by(|&a, &b| {
            order_key(&entries[a as usize], Order::Asc).cmp(&order_key(&entries[b as usize], Order::Asc))
        });
        desc.sort_by(|&a, &b| {
            order_key(&entries[a as usize], Order::Desc).cmp(&order_key(&entries[b as usize], Order::Desc))
        });
        Index { entries, asc, desc }
    }
}

/// Sort key: images without a time last, then time in the order asked, then id.
fn order_key(e: &Searchable, order: Order) -> (bool, i64, &str) {
    let t = e.created.unwrap_or_default();
    (e.created.is_none(), if order == Order::Asc { t } else { -t }, &e.id)
}

/// A `CateId` as the catalog holds it: a number, or a string of one.
fn cate_id(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// FNV-1a of an id: stable across Rust releases, unlike std's hasher.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The query's match count and the page's images (positions in the index).
/// `tie_salt`: break ties of `CreationTime` by a key drawn from it instead of by id.
pub(crate) fn select(index: &Index, req: &SearchRequest, tie_salt: Option<u64>) -> (u64, Vec<usize>) {
    if !req.image {
        return (0, Vec::new());
    }
    let start = (req.page_no - 1) * req.page_size;
    let end = start + req.page_size;
    let order = if req.order == Order::Asc { &index.asc } else { &index.desc };
    let matching =
        order.iter().map(|&i| i as usize).filter(|&i| protocol::matches_all(&req.conditions, &index.entries[i]));
    match tie_salt {
        None => {
            let mut total = 0u64;
            let mut page = Vec::new();
            for i in matching {
                if (start..end).contains(&total) {
                    page.push(i);
                }
                total += 1;
            }
            (total, page)
        }
        Some(salt) => {
            let mut all: Vec<usize> = matching.collect();
            all.sort_by_cached_key(|&i| {
                let e = &index.entries[i];
                let (none, t, _) = order_key(e, req.order);
                (none, t, mix64(salt ^ fnv(&e.id)))
            });
            let page = all.iter().skip(start as usize).take(req.page_size as usize).copied().collect();
            (all.len() as u64, page)
        }
    }
}

/// The answer's body (without `RequestId`).
pub(crate) fn render(catalog: &Catalog, index: &Index, req: &SearchRequest, total: u64, page: &[usize]) -> Value {
    let list: Vec<Value> = page
        .iter()
        .map(|&i| {
            let id = &index.entries[i].id;
            let img = catalog.get(id).map(|i| i.value()).unwrap_or(Value::Null);
            let mut image = Map::new();
            image.insert("ImageId".into(), json!(id));
            for name in ["CreationTime"].iter().chain(req.fields.iter()) {
                let v = match (*name, img.get(*name)) {
                    ("CateId", v) => cate_id(v).map(Value::from),
                    (_, v) => v.cloned(),
                };
                if let Some(v) = v.filter(|v| !v.is_null()) {
                    image.insert((*name).into(), v);
                }
            }
            let mut media = Map::new();
            media.insert("MediaType".into(), json!("image"));
            media.insert("MediaId".into(), json!(id));
            if let Some(t) = image.get("CreationTime") {
                media.insert("CreationTime".into(), t.clone());
            }
            media.insert("Image".into(), Value::Object(image));
            Value::Object(media)
        })
        .collect();
    json!({"Total": total, "MediaList": list})
}

/// The simulator's `SearchMedia` state: the index (built on first use) and
/// the counters. Its quota is the parent module's, one per action.
#[derive(Default)]
pub(crate) struct SearchState {
    index: OnceLock<Index>,
    requests: AtomicU64,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    stats: SearchStats,
    answered: HashMap<String, u64>,
    queries: HashSet<String>,
}

impl SearchState {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `search` section of the stats.
    pub(crate) fn stats(&self) -> SearchStats {
        self.counts().stats.clone()
    }

    fn refused(&self, r: &Refusal) {
        let mut c = self.counts();
        if let Some(end) = r.page_end {
            c.stats.max_page_end = c.stats.max_page_end.max(end);
        }
        if r.over_limit {
            c.stats.over_limit += 1;
        }
    }

    fn asked(&self, req: &SearchRequest) {
        let mut c = self.counts();
        c.stats.max_page_end = c.stats.max_page_end.max(req.page_no * req.page_size);
    }

    fn answered(&self, req: &SearchRequest) {
        let mut c = self.counts();
        c.stats.pages += 1;
        let n = c.answered.entry(req.key.clone()).or_default();
        *n += 1;
        if *n == 2 {
            c.stats.duplicate_pages += 1;
        }
        if c.queries.insert(req.match_text.clone()) {
            c.stats.queries += 1;
        }
    }
}

/// Serves an authenticated `SearchMedia` call (`authenticated`: its number
/// among authenticated calls, for the outage window).
pub(super) async fn call(sim: &Simulator, params: &[(String, String)], authenticated: u64) -> Result<Answer, Dropped> {
    let state = &sim.search;
    let req = match parse_request(params) {
        Ok(r) => r,
        Err(r) => {
            state.refused(&r);
            return Ok(Answer::error(400, "InvalidParameter", &r.message));
        }
    };
    state.asked(&req);
    if let Some(refused) = super::quota::admit(sim, authenticated, super::QuotaAction::SearchMedia) {
        return Ok(refused);
    }
    // Faults are drawn from (seed, request, how many times it was made), as for images.
    let key = format!("SearchMedia\n{}", req.key);
    let call = sim.count_batch(&key);
    if let Some(fault) = super::faults::inject_faults(sim, &key, call).await? {
        return Ok(fault);
    }
    let index = state.index.get_or_init(|| Index::build(&sim.config.catalog));
    let salt = sim.config.search_unstable_ties.then(|| {
        let n = state.requests.fetch_add(1, Ordering::Relaxed);
        mix64(sim.config.seed ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EA2_C4ED)
    });
    let (total, page) = select(index, &req, salt);
    let body = render(&sim.config.catalog, index, &req, total, &page);
    state.answered(&req);
    Ok(Answer::Action { root: "SearchMediaResponse", body })
}
