//! The VOD wire model: `ImageInfo` and the response envelopes, as the API
//! sends them.
//!
//! Every field is optional, unknown fields are ignored and unknown enum
//! values are kept as strings, because the service and its SDK models drift
//! (newer models omit `AuditStatus`; `FileSize` is a string in the schema and a
//! number in the example). This module only decodes; what a field means for
//! the audit is `report`'s business.

use serde::{Deserialize, Deserializer, Serialize};

/// One image as `GetImageInfo` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_location: Option<String>,
    #[serde(rename = "URL", default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_id: Option<String>,
    /// `Normal` or `Blocked`; absent in some answers, which is its own bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_status: Option<String>,
    /// `Uploading`, `Normal`, `UploadFail`, or a value we have not seen yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "flexible_i64", skip_serializing_if = "Option::is_none")]
    pub cate_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cate_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mezzanine: Option<Mezzanine>,
}

impl ImageInfo {
    /// Hands every text field to `f` (to redact them), the `Mezzanine`'s
    /// included. The destructuring is exhaustive: a field added to the model
    /// does not compile until it is listed here.
    pub fn for_each_text(&mut self, mut f: impl FnMut(&mut String)) {
        let ImageInfo {
            image_id,
            app_id,
            title,
            description,
            image_type,
            storage_location,
            url,
            region_id,
            audit_status,
            status,
            cate_id: _,
            cate_name,
            creation_time,
            tags,
            mezzanine,
        } = self;
        for text in [
            image_id,
            app_id,
            title,
            description,
            image_type,
            storage_location,
            url,
            region_id,
            audit_status,
            status,
            cate_name,
            creation_time,
            tags,
        ]
        .into_iter()
        .flatten()
        {
            f(text);
        }
        if let Some(Mezzanine { file_size, file_url, width: _, height: _, original_file_name }) = mezzanine {
            for text in [file_size, file_url, original_file_name].into_iter().flatten() {
                f(text);
            }
        }
    }
}

/// The image's source file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mezzanine {
    /// Bytes, kept as the decimal text the server sent (string or number).
    #[serde(default, deserialize_with = "flexible_text", skip_serializing_if = "Option::is_none")]
    pub file_size: Option<String>,
    #[serde(rename = "FileURL", default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    #[serde(default, deserialize_with = "flexible_i64", skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    #[serde(default, deserialize_with = "flexible_i64", skip_serializing_if = "Option::is_none")]
    pub height: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_file_name: Option<String>,
}

/// The success body of `GetImageInfo`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetImageInfoResponse {
    /// An error `Code` in a 200 answer: not the action's answer.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub image_info: Option<ImageInfo>,
}

/// The success body of `GetImageInfos` (the batch call).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetImageInfosResponse {
    /// An error `Code` in a 200 answer: not the action's answer.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub image_info: Vec<ImageInfo>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub non_exist_image_ids: Vec<String>,
}

/// A list that the service may send as JSON `null`: an empty list, not a
/// failed answer.
fn null_as_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The success body of `GetMediaAuditResult`: the **automated** moderation
/// result (the machine's `Suggestion`, not the account's decision; see
/// [`crate::api::moderation`]). Shape from the official models
/// (alibabacloud-go-sdk and alibabacloud-java-sdk `vod-20170321`
/// `GetMediaAuditResultResponseBody`; vod-openapi.md §9): scores are strings,
/// every part may be absent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMediaAuditResultResponse {
    /// An error `Code` in a 200 answer: not the action's answer.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub media_audit_result: Option<MediaAuditResult>,
}

/// The moderation result of one medium (for an image id: the image).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MediaAuditResult {
    /// `block`, `review` or `pass` (lower case in the model).
    #[serde(default)]
    pub suggestion: Option<String>,
    /// Comma list of labels.
    #[serde(default)]
    pub label: Option<String>,
    /// Comma list of the modules that were not normal: `video`,
    /// `image-cover`, `text-title`.
    #[serde(default)]
    pub abnormal_modules: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub image_result: Vec<ImageAuditResult>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub text_result: Vec<TextAuditResult>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub audio_result: Vec<LabelledPart>,
    #[serde(default)]
    pub video_result: Option<VideoAuditResult>,
}

/// The verdict on one image of the medium (`Type`: `cover`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageAuditResult {
    #[serde(default)]
    pub suggestion: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, rename = "Type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub result: Vec<LabelledPart>,
}

/// One text of the medium (`Type`: `title`, ...) and its verdict.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TextAuditResult {
    #[serde(default)]
    pub suggestion: Option<String>,
    /// spam, ad, abuse, flood, contraband, meaningless, normal.
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, rename = "Type")]
    pub kind: Option<String>,
}

/// A part that carries a label and a suggestion: an image's scene (`porn`,
/// `terrorism`), an audio result, a video sub-result.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelledPart {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub suggestion: Option<String>,
}

/// The video's verdict and its five sub-results.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VideoAuditResult {
    #[serde(default)]
    pub suggestion: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub ad_result: Option<LabelledPart>,
    #[serde(default)]
    pub live_result: Option<LabelledPart>,
    #[serde(default)]
    pub logo_result: Option<LabelledPart>,
    #[serde(default)]
    pub porn_result: Option<LabelledPart>,
    #[serde(default)]
    pub terrorism_result: Option<LabelledPart>,
}

/// The error body every Alibaba Cloud RPC API sends with a 4xx or 5xx.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub host_id: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub recommend: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Int(i64),
    Uint(u64),
    Float(f64),
    Text(String),
}

/// Accepts `123`, `"123"` and `null`; keeps the decimal text exactly as
/// sent, digit for digit: the raw JSON of a number (a 30-digit one would
/// lose its digits as an `f64`), the content of a string. Anything else
/// (`true`, an object) is an error, as before.
fn flexible_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    let Some(raw) = Option::<Box<serde_json::value::RawValue>>::deserialize(d)? else { return Ok(None) };
    let text = raw.get().trim();
    if text.starts_with('"') {
        return serde_json::from_str::<String>(text).map(Some).map_err(D::Error::custom);
    }
    if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Ok(Some(text.to_owned()));
    }
    Err(D::Error::custom("expected a number or a string"))
}

/// Accepts `123`, `"123"` and `null`; text that is not an integer is an error.
pub(crate) fn flexible_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Option::<NumberOrText>::deserialize(d)? {
        None => Ok(None),
        Some(NumberOrText::Int(n)) => Ok(Some(n)),
        Some(NumberOrText::Uint(n)) => i64::try_from(n).map(Some).map_err(D::Error::custom),
        Some(NumberOrText::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        Some(NumberOrText::Float(f)) => Err(D::Error::custom(format!("not an integer: {f}"))),
        Some(NumberOrText::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(NumberOrText::Text(s)) => {
            s.trim().parse().map(Some).map_err(|_| D::Error::custom(format!("not an integer: {s:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_decodes() {
        let body = r#"{
            "RequestId": "AB99D4DF-FAFA-49*****DC-9C548C1E261E",
            "ImageInfo": {
                "Description": "Test description",
                "Mezzanine": {"OriginalFileName": "a.gif", "Height": 200, "Width": 200, "FileSize": 8932},
                "CreationTime": "2018-11-21T02:37:23Z",
                "ImageId": "bbc65bba53f9*****ed90de118a7849",
                "Title": "this is a sample",
                "CateId": 254766071,
                "CateName": "Test",
                "StorageLocation": "outin.oss-cn-shanghai.aliyuncs.com",
                "Tags": "tag1,tag2,tag3",
                "URL": "https://example.invalid/a.gif?auth_key=1",
                "ImageType": "default"
            }
        }"#;
        let r: GetImageInfoResponse = serde_json::from_str(body).unwrap();
        let info = r.image_info.unwrap();
        assert_eq!(info.cate_id, Some(254766071));
        assert_eq!(info.audit_status, None, "absent AuditStatus stays absent");
        let m = info.mezzanine.unwrap();
        assert_eq!(m.file_size.as_deref(), Some("8932"));
        assert_eq!((m.width, m.height), (Some(200), Some(200)));
        assert_eq!(info.url.as_deref(), Some("https://example.invalid/a.gif?auth_key=1"));
    }

    #[test]
    fn a_file_size_keeps_its_decimal_text_digit_for_digit() {
        let size = |v: &str| {
            let body = format!(r#"{{"Mezzanine": {{"FileSize": {v}}}}}"#);
            serde_json::from_str::<ImageInfo>(&body).map(|i| i.mezzanine.unwrap().file_size)
        };
        assert_eq!(size("123456789012345678901234567890").unwrap().as_deref(), Some("123456789012345678901234567890"));
        assert_eq!(size("8932").unwrap().as_deref(), Some("8932"));
        assert_eq!(size("1.5e3").unwrap().as_deref(), Some("1.5e3"));
        assert_eq!(size(r#""0042""#).unwrap().as_deref(), Some("0042"));
        assert_eq!(size("null").unwrap(), None);
        assert!(size("true").is_err() && size("{}").is_err());
    }

    #[test]
    fn file_size_as_string_unknown_fields_and_unknown_status() {
        let body = r#"{"ImageInfo": {"Status": "Transcoding", "AuditStatus": "Pending",
            "Mezzanine": {"FileSize": "123456789012", "FileURL": "u"}, "SomethingNew": [1, 2]}}"#;
        let r: GetImageInfoResponse = serde_json::from_str(body).unwrap();
        let info = r.image_info.unwrap();
        assert_eq!(info.status.as_deref(), Some("Transcoding"));
        assert_eq!(info.audit_status.as_deref(), Some("Pending"));
        assert_eq!(info.mezzanine.unwrap().file_size.as_deref(), Some("123456789012"));
    }

    #[test]
    fn cate_id_as_text_and_null() {
        let a: ImageInfo = serde_json::from_str(r#"{"CateId": "42"}"#).unwrap();
        assert_eq!(a.cate_id, Some(42));
        let b: ImageInfo = serde_json::from_str(r#"{"CateId": null}"#).unwrap();
        assert_eq!(b.cate_id, None);
        assert!(serde_json::from_str::<ImageInfo>(r#"{"CateId": "x"}"#).is_err());
    }

    #[test]
    fn round_trips_through_serialize() {
        let info = ImageInfo {
            image_id: Some("x".into()),
            title: Some("a,\"b\"\n封面".into()),
            cate_id: Some(-1),
            ..Default::default()
        };
        let text = serde_json::to_string(&info).unwrap();
        assert_eq!(serde_json::from_str::<ImageInfo>(&text).unwrap(), info);
        assert!(!text.contains("AuditStatus"), "absent fields are not invented: {text}");
    }

    #[test]
    fn batch_answer_decodes() {
        let r: GetImageInfosResponse =
            serde_json::from_str(r#"{"RequestId": "r", "ImageInfo": [{"ImageId": "a"}], "NonExistImageIds": ["b"]}"#)
                .unwrap();
        assert_eq!(r.image_info.len(), 1);
        assert_eq!(r.non_exist_image_ids, vec!["b".to_string()]);
    }

    #[test]
    fn every_text_field_is_visited() {
        let mut info: ImageInfo = serde_json::from_str(
            r#"{"ImageId": "t", "AppId": "t", "Title": "t", "Description": "t", "ImageType": "t",
                "StorageLocation": "t", "URL": "t", "RegionId": "t", "AuditStatus": "t", "Status": "t",
                "CateId": 1, "CateName": "t", "CreationTime": "t", "Tags": "t",
                "Mezzanine": {"FileSize": "t", "FileURL": "t", "Width": 1, "Height": 2, "OriginalFileName": "t"}}"#,
        )
        .unwrap();
        let mut n = 0;
        info.for_each_text(|s| {
            n += 1;
            *s = "x".into();
        });
        assert_eq!(n, 16);
        assert!(!serde_json::to_string(&info).unwrap().contains("\"t\""), "{info:?}");
    }
}
