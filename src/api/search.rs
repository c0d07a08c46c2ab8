//! `SearchMedia` for images: one page of a query by `CreationTime` range
//! (and category), checked against the question before anything is kept.
//!
//! Sources:
//! - The operation (SearchMedia, VOD 2017-03-21,
//!   <https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-searchmedia>):
//!   `SearchType` (`image` here), `Match`, `Fields`, `SortBy`, `PageNo`,
//!   `PageSize` (at most 100). Paging reaches only the first **5,000**
//!   results of a query (`PageNo × PageSize ≤ 5,000`); the full traversal
//!   with `ScrollToken` is documented for audio and video only, so a larger
//!   result set must be cut into smaller queries (`run::inventory`).
//! - The media search protocol (<https://www.alibabacloud.com/help/doc-detail/86991.html>):
//!   a range is `field = (a,b)` open or `[a,b]` closed, and the half-open
//!   forms mix the two; conditions are joined with `and`; times are
//!   `yyyy-MM-ddTHH:mm:ssZ` (UTC), quoted. `CateId` is an exact-match field.
//!   By default an item carries only its id, creation time and type;
//!   `Fields` names the rest.
//! - The answer (official SDK model `SearchMediaResponseBody`, e.g.
//!   alibabacloud-go `vod-20170321` `search_media_response_body_model.go`):
//!   `Total`, `MediaList[]` of `MediaType`, `MediaId`, `CreationTime` and an
//!   `Image` object (`ImageId`, `Title`, `CateId`, `CateName`, `Status`,
//!   `CreationTime`, `ModificationTime`, `StorageLocation`, `Tags`, `URL`,
//!   `AppId`, `Description`).
//!
//! Every item must answer the question: an image (`MediaType` `image`),
//! with a valid `ImageId` (equal to `MediaId` when both are given), created
//! inside the range asked, in the category asked. An answer with one item
//! that is not is refused whole as a bad answer (transient, asked again):
//! a server that ignored the `Match` would otherwise fill the inventory
//! with images from outside the range, and the counts would still add up.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::api::answer::{bad_answer, bad_response};
use crate::api::client::{VodClient, MAX_BATCH_ANSWER_BYTES};
use crate::api::error::ApiError;
use crate::api::model::flexible_i64;

/// SearchMedia's own quota: 50 calls per second per account ("QPS limits
/// on API operations", <https://www.alibabacloud.com/help/en/vod/developer-reference/qps-limits-on-api-operations>).
/// The listing never asks faster, whatever `--qps` says.
pub(crate) const SEARCH_MEDIA_QPS: u32 = 50;

/// The most results a query can page through (`PageNo × PageSize`).
pub(crate) const PAGING_LIMIT: u64 = 5_000;
/// The largest page.
pub(crate) const MAX_PAGE_SIZE: u32 = 100;
/// The fields each listed image carries (`Fields`).
pub(crate) const FIELDS: &str = "Title,CateId,CateName,Status,CreationTime,ModificationTime,StorageLocation,Tags";

/// One query: images created in `[from, to)` (seconds since the epoch,
/// UTC), in category `cate` when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Query {
    pub from: i64,
    pub to: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cate: Option<i64>,
}

impl Query {
    /// The `Match` text: `CreationTime = ['a','b')`, closed below and open
    /// above, so that adjacent ranges share no second.
    pub(crate) fn match_text(&self) -> String {
        let mut m = format!("CreationTime = ['{}','{}')", utc(self.from), utc(self.to));
        if let Some(c) = self.cate {
            m.push_str(&format!(" and CateId = {c}"));
        }
        m
    }

    /// Seconds covered.
    pub(crate) fn seconds(&self) -> i64 {
        self.to - self.from
    }

    /// How it is named in messages: `[a, b)` and the category.
    pub(crate) fn describe(&self) -> String {
        let range = if self.seconds() == 1 {
            format!("the second {}", utc(self.from))
        } else {
            format!("[{}, {})", utc(self.from), utc(self.to))
        };
        match self.cate {
            Some(c) => format!("{range} in category {c}"),
            None => range,
        }
    }
}

/// Seconds since the epoch as the protocol's UTC time.
pub(crate) fn utc(secs: i64) -> String {
    let t = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The protocol's UTC time as seconds since the epoch.
pub(crate) fn parse_utc(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(text).ok()?;
    Some(match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    })
}

/// Now, in whole seconds.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// One image as the listing found it: the inventory's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Listed {
    pub image_id: String,
    pub creation_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modification_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cate_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cate_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_location: Option<String>,
}

/// The inventory's columns, in order.
pub(crate) const INVENTORY_COLUMNS: &[&str] = &[
    "image_id",
    "creation_time",
    "modification_time",
    "status",
    "cate_id",
    "cate_name",
    "title",
    "tags",
    "storage_location",
];

/// One page of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    /// Matches of the whole query, as the server counts them.
    pub total: u64,
    pub items: Vec<Listed>,
    pub request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Body {
    request_id: Option<String>,
    total: Option<i64>,
    #[serde(default)]
    media_list: Vec<Media>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Media {
    media_type: Option<String>,
    media_id: Option<String>,
    creation_time: Option<String>,
    image: Option<ImageItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImageItem {
    image_id: Option<String>,
    creation_time: Option<String>,
    modification_time: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "flexible_i64")]
    cate_id: Option<i64>,
    cate_name: Option<String>,
    title: Option<String>,
    tags: Option<String>,
    storage_location: Option<String>,
}

impl VodClient {
    /// One `SearchMedia` page of images for `q`, sorted by creation time,
    /// checked item by item against `q` (see the module doc).
    pub(crate) async fn search_images(&self, q: &Query, page_no: u32, page_size: u32) -> Result<Page, ApiError> {
        let (m, no, size) = (q.match_text(), page_no.to_string(), page_size.to_string());
        let params = [
            ("SearchType", "image"),
            ("Match", m.as_str()),
            ("Fields", FIELDS),
            ("SortBy", "CreationTime:Asc"),
            ("PageNo", no.as_str()),
            ("PageSize", size.as_str()),
        ];
        let (body, request_id_header, key) = self.call("SearchMedia", &params, MAX_BATCH_ANSWER_BYTES).await?;
        let mut page = parse_page(&body, q, page_size).map_err(|e| key.redactor.redact_error(e))?;
        if page.request_id.is_none() {
            page.request_id = request_id_header;
        }
        let r = &key.redactor;
        for item in &mut page.items {
            for text in
                [&mut item.title, &mut item.cate_name, &mut item.tags, &mut item.storage_location, &mut item.status]
                    .into_iter()
                    .flatten()
            {
                r.redact_in_place(text);
            }
        }
        if let Some(id) = &mut page.request_id {
            r.redact_in_place(id);
        }
        Ok(page)
    }
}

/// Decodes and checks one answer to `q`, asked with `page_size`.
pub(crate) fn parse_page(body: &[u8], q: &Query, page_size: u32) -> Result<Page, ApiError> {
    let parsed: Body = serde_json::from_slice(body).map_err(|e| bad_response(200, &e.to_string()))?;
    let total = parsed.total.ok_or_else(|| bad_response(200, "the SearchMedia answer has no Total"))?;
    let total = u64::try_from(total).map_err(|_| bad_response(200, &format!("Total is {total}")))?;
    let refuse = |why: String| bad_answer(200, format!("the SearchMedia answer for {}: {why}; not kept", q.describe()));
    if parsed.media_list.len() > page_size as usize {
        return Err(refuse(format!("{} items on a page of {page_size}", parsed.media_list.len())));
    }
    let mut items = Vec::with_capacity(parsed.media_list.len());
    for (i, m) in parsed.media_list.into_iter().enumerate() {
        let n = i + 1;
        if m.media_type.as_deref() != Some("image") {
            return Err(refuse(format!("item {n} is not an image (MediaType {:?})", m.media_type)));
        }
        let image = m.image.ok_or_else(|| refuse(format!("item {n} has no Image")))?;
        let id = image.image_id.or(m.media_id.clone()).ok_or_else(|| refuse(format!("item {n} has no ImageId")))?;
        if let Err(why) = crate::domain::id::validate_id(&id) {
            return Err(refuse(format!("item {n} has an ImageId that is not one ({why})")));
        }
        if m.media_id.as_deref().is_some_and(|mid| mid != id) {
            return Err(refuse(format!("item {n}: MediaId and ImageId differ")));
        }
        let created =
            image.creation_time.or(m.creation_time).ok_or_else(|| refuse(format!("image {id} has no CreationTime")))?;
        let secs = parse_utc(&created).ok_or_else(|| refuse(format!("image {id}: CreationTime {created:?}")))?;
        if secs < q.from || secs >= q.to {
            return Err(refuse(format!("image {id} was created at {created}, outside the range asked")));
        }
        if let Some(c) = q.cate {
            if image.cate_id != Some(c) {
                return Err(refuse(format!("image {id} is in category {:?}, not {c}", image.cate_id)));
            }
        }
        items.push(Listed {
            image_id: id,
            creation_time: created,
            modification_time: image.modification_time,
            status: image.status,
            cate_id: image.cate_id,
            cate_name: image.cate_name,
            title: image.title,
            tags: image.tags,
            storage_location: image.storage_location,
        });
    }
    Ok(Page { total, items, request_id: parsed.request_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> Query {
        Query {
            from: parse_utc("2024-01-01T00:00:00Z").unwrap(),
            to: parse_utc("2024-01-02T00:00:00Z").unwrap(),
            cate: None,
        }
    }

    #[test]
    fn match_text_is_closed_below_and_open_above() {
        assert_eq!(q().match_text(), "CreationTime = ['2024-01-01T00:00:00Z','2024-01-02T00:00:00Z')");
        let c = Query { cate: Some(7), ..q() };
        assert_eq!(c.match_text(), "CreationTime = ['2024-01-01T00:00:00Z','2024-01-02T00:00:00Z') and CateId = 7");
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_utc("1970-01-01T00:00:01Z"), Some(1));
    }

    fn item(id: &str, t: &str, cate: Option<i64>) -> serde_json::Value {
        serde_json::json!({"MediaType": "image", "MediaId": id, "CreationTime": t,
            "Image": {"ImageId": id, "CreationTime": t, "CateId": cate, "Title": "x"}})
    }

    fn body(items: Vec<serde_json::Value>, total: i64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"RequestId": "r", "Total": total, "MediaList": items})).unwrap()
    }

    #[test]
    fn a_page_in_range_is_kept() {
        let p = parse_page(&body(vec![item("a1", "2024-01-01T00:00:00Z", Some(3))], 9), &q(), 100).unwrap();
        assert_eq!(p.total, 9);
        assert_eq!(p.items[0].image_id, "a1");
        assert_eq!(p.items[0].cate_id, Some(3));
    }

    #[test]
    fn an_answer_that_ignores_the_question_is_refused() {
        let cases = [
            (item("a1", "2024-01-02T00:00:00Z", None), "outside the range"),
            (item("a1", "2023-12-31T23:59:59Z", None), "outside the range"),
            (serde_json::json!({"MediaType": "video", "MediaId": "v"}), "not an image"),
            (
                serde_json::json!({"MediaType": "image", "MediaId": "a", "Image": {"ImageId": "b", "CreationTime": "2024-01-01T01:00:00Z"}}),
                "differ",
            ),
            (
                serde_json::json!({"MediaType": "image", "Image": {"ImageId": "a b", "CreationTime": "2024-01-01T01:00:00Z"}}),
                "not one",
            ),
            (serde_json::json!({"MediaType": "image", "Image": {"ImageId": "a"}}), "no CreationTime"),
        ];
        for (it, want) in cases {
            let e = parse_page(&body(vec![it], 1), &q(), 100).unwrap_err();
            assert!(e.message.contains(want), "{want}: {e}");
            assert_eq!(e.class, crate::api::error::ErrorClass::Transient);
        }
        let c = Query { cate: Some(7), ..q() };
        let e = parse_page(&body(vec![item("a1", "2024-01-01T00:00:00Z", Some(8))], 1), &c, 100).unwrap_err();
        assert!(e.message.contains("not 7"), "{e}");
        let e = parse_page(br#"{"MediaList": []}"#, &q(), 100).unwrap_err();
        assert!(e.message.contains("no Total"), "{e}");
        let many: Vec<_> = (0..3).map(|i| item(&format!("a{i}"), "2024-01-01T00:00:00Z", None)).collect();
        let e = parse_page(&body(many, 3), &q(), 2).unwrap_err();
        assert!(e.message.contains("3 items on a page of 2"), "{e}");
    }
}
