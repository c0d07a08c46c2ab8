//! Filing a `GetImageInfos` answer under the ids asked: an answer that names
//! an id not asked, an id twice, or an image without `ImageId` is refused
//! whole (`MismatchedImageId`), never filed under another id. Pure; the
//! engine calls it and retries a refused answer like any bad one. The
//! batch model: alibabacloud-go-sdk `vod-20170321`
//! `get_image_infos_response_body_model.go` (`ImageInfo[]`,
//! `NonExistImageIds[]`); the rule for an entry without `ImageId` is this
//! tool's (the model makes the field optional).

use std::collections::{HashMap, HashSet};

use crate::api::error::{quote_answer_id, ApiError};
use crate::api::model::{GetImageInfosResponse, ImageInfo};

/// A `GetImageInfos` answer filed under the ids asked.
#[derive(Debug)]
pub(crate) struct Filed {
    pub(crate) found: HashMap<String, ImageInfo>,
    pub(crate) missing: HashSet<String>,
    pub(crate) request_id: Option<String>,
}

/// Files a batch answer under the ids `asked`, or refuses it whole as
/// `MismatchedImageId` when it names an id not asked, names one twice, or
/// holds an `ImageInfo` without `ImageId` (see the module doc). Ids in
/// neither list are simply absent from the result.
pub(crate) fn file_batch_answer(asked: &[&str], answer: GetImageInfosResponse) -> Result<Filed, ApiError> {
    let GetImageInfosResponse { request_id, image_info, non_exist_image_ids, code: _ } = answer;
    let refuse = |why: String| {
        let why = format!("the GetImageInfos answer for this id's call {why}; nothing in it is filed");
        Err(ApiError::mismatched_image_id(why, request_id.clone()))
    };
    let asked: HashSet<&str> = asked.iter().copied().collect();
    let mut found = HashMap::with_capacity(image_info.len());
    for info in image_info {
        let Some(id) = info.image_id.clone() else {
            return refuse("holds an ImageInfo without ImageId".to_owned());
        };
        if !asked.contains(id.as_str()) {
            return refuse(format!("lists ImageId {} in ImageInfo, which was not asked", quote_answer_id(&id)));
        }
        if found.insert(id.clone(), info).is_some() {
            return refuse(format!("lists ImageId {} twice in ImageInfo", quote_answer_id(&id)));
        }
    }
    let mut missing = HashSet::with_capacity(non_exist_image_ids.len());
    for id in non_exist_image_ids {
        if !asked.contains(id.as_str()) {
            return refuse(format!("lists ImageId {} in NonExistImageIds, which was not asked", quote_answer_id(&id)));
        }
        if found.contains_key(&id) {
            return refuse(format!("lists ImageId {} both in ImageInfo and NonExistImageIds", quote_answer_id(&id)));
        }
        if !missing.insert(id.clone()) {
            return refuse(format!("lists ImageId {} twice in NonExistImageIds", quote_answer_id(&id)));
        }
    }
    Ok(Filed { found, missing, request_id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::ErrorClass;

    fn info(id: Option<&str>) -> ImageInfo {
        ImageInfo { image_id: id.map(str::to_owned), title: id.map(|i| format!("title of {i}")), ..Default::default() }
    }

    fn answer(found: &[Option<&str>], missing: &[&str]) -> GetImageInfosResponse {
        GetImageInfosResponse {
            code: None,
            request_id: Some("R".into()),
            image_info: found.iter().map(|id| info(*id)).collect(),
            non_exist_image_ids: missing.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_batch_answer_is_filed_under_the_ids_it_names() {
        let filed = file_batch_answer(&["a", "b", "c", "d"], answer(&[Some("b"), Some("a")], &["c"])).unwrap();
        assert_eq!(filed.found["a"].title.as_deref(), Some("title of a"));
        assert_eq!(filed.found["b"].title.as_deref(), Some("title of b"));
        assert_eq!(filed.missing, HashSet::from(["c".to_owned()]));
        assert!(!filed.found.contains_key("d") && !filed.missing.contains("d"), "d is unaccounted, not invented");
        assert_eq!(filed.request_id.as_deref(), Some("R"));
    }

    #[test]
    fn a_batch_answer_that_names_ids_wrongly_is_refused_whole() {
        let asked = ["a", "b", "c"];
        // (ImageInfo ids, NonExistImageIds, what the refusal says)
        type Row<'a> = (&'a [Option<&'a str>], &'a [&'a str], &'a str);
        let table: &[Row] = &[
            (&[Some("a"), Some("x")], &[], r#"lists ImageId "x" in ImageInfo, which was not asked"#),
            (&[Some("a")], &["y"], r#"lists ImageId "y" in NonExistImageIds, which was not asked"#),
            (&[Some("a"), Some("a")], &[], r#"lists ImageId "a" twice in ImageInfo"#),
            (&[], &["b", "b"], r#"lists ImageId "b" twice in NonExistImageIds"#),
            (&[Some("c")], &["c"], r#"lists ImageId "c" both in ImageInfo and NonExistImageIds"#),
            (&[Some("a"), None], &[], "holds an ImageInfo without ImageId"),
            (&[Some("")], &[], r#"lists ImageId "" in ImageInfo, which was not asked"#),
        ];
        for (found, missing, why) in table {
            let e = file_batch_answer(&asked, answer(found, missing)).unwrap_err();
            assert_eq!(e.code, "MismatchedImageId", "{why}");
            assert_eq!(e.class, ErrorClass::Transient, "retried like a bad answer");
            assert_eq!((e.http_status, e.request_id.as_deref()), (Some(200), Some("R")));
            assert!(e.message.contains(why), "{} does not say {why}", e.message);
        }
    }

    #[test]
    fn a_foreign_id_is_quoted_escaped_and_short() {
        let long = format!("\u{1b}]0;x\u{7}{}", "z".repeat(300));
        let e = file_batch_answer(&["a"], answer(&[Some(&long)], &[])).unwrap_err();
        assert!(!e.message.contains('\u{1b}') && e.message.contains(r"\u{1b}]0;x\u{7}"), "{}", e.message);
        assert!(!e.message.contains(&"z".repeat(100)) && e.message.contains("(306 characters)"), "{}", e.message);
    }
}
