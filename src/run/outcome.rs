//! What became of one image id: the unit every other stage passes along.
//!
//! Owns [`Outcome`] and its flat, serializable form [`ImageRecord`], which is
//! both a row of `images.csv` and a line of `images.jsonl`. Deciding the
//! outcome is `run`'s job; adding outcomes up is `report`'s.

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::api::model::ImageInfo;

/// The three ends of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    /// The API described the image.
    Found,
    /// The API said `NoSuchResource`.
    Missing,
    /// No answer could be had (the error says why).
    Failed,
}

impl OutcomeKind {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Found => "found",
            OutcomeKind::Missing => "missing",
            OutcomeKind::Failed => "failed",
        }
    }
}

/// The error of a failed id, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureInfo {
    pub code: String,
    pub message: String,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
}

impl From<&ApiError> for FailureInfo {
    fn from(e: &ApiError) -> Self {
        FailureInfo {
            code: e.code.clone(),
            message: e.message.clone(),
            http_status: e.http_status,
            request_id: e.request_id.clone(),
        }
    }
}

/// The code used for ids that were never called because the run stopped.
pub const NOT_ATTEMPTED: &str = "NotAttempted";

/// The end of one id. Journaled and reported as its [`ImageRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub image_id: String,
    pub kind: OutcomeKind,
    /// The image, when found.
    pub info: Option<Box<ImageInfo>>,
    /// Calls made for this id, retries included.
    pub attempts: u32,
    /// RequestId of the answer that settled it (found or missing).
    pub request_id: Option<String>,
    /// Why it failed, when it did.
    pub failure: Option<FailureInfo>,
    /// Set when the run stopped before this id was settled (not called, or
    /// its retries cut short): such an outcome is reported but not
    /// journaled, so a resumed run calls the id again.
    #[serde(skip)]
    pub cut_short: bool,
}

impl Outcome {
    /// An id that was found.
    pub fn found(image_id: String, info: ImageInfo, attempts: u32, request_id: Option<String>) -> Self {
        Outcome {
            image_id,
            kind: OutcomeKind::Found,
            info: Some(Box::new(info)),
            attempts,
            request_id,
            failure: None,
            cut_short: false,
        }
    }

    /// An id the API does not know.
    pub fn missing(image_id: String, attempts: u32, request_id: Option<String>) -> Self {
        Outcome {
            image_id,
            kind: OutcomeKind::Missing,
            info: None,
            attempts,
            request_id,
            failure: None,
            cut_short: false,
        }
    }

    /// An id that could not be settled.
    pub fn failed(image_id: String, attempts: u32, failure: FailureInfo) -> Self {
        Outcome {
            image_id,
            kind: OutcomeKind::Failed,
            info: None,
            attempts,
            request_id: None,
            failure: Some(failure),
            cut_short: false,
        }
    }

    /// An id never called because the run stopped first.
    pub fn not_attempted(image_id: String, why: &str) -> Self {
        let failure = FailureInfo {
            code: NOT_ATTEMPTED.to_owned(),
            message: format!("not called: {why}"),
            http_status: None,
            request_id: None,
        };
        Outcome { cut_short: true, ..Outcome::failed(image_id, 0, failure) }
    }

    /// The flat record of this outcome.
    pub fn record(self) -> ImageRecord {
        let info = self.info.map(|b| *b).unwrap_or_default();
        let mezz = info.mezzanine.unwrap_or_default();
        let (error_code, error_message, http_status, failure_request_id) = match self.failure {
            Some(f) => (Some(f.code), Some(f.message), f.http_status, f.request_id),
            None => (None, None, None, None),
        };
        ImageRecord {
            image_id: self.image_id,
            outcome: self.kind,
            audit_status: info.audit_status,
            status: info.status,
            cate_id: info.cate_id,
            cate_name: info.cate_name,
            title: info.title,
            image_type: info.image_type,
            creation_time: info.creation_time,
            tags: info.tags,
            description: info.description,
            storage_location: info.storage_location,
            url: info.url,
            app_id: info.app_id,
            region_id: info.region_id,
            file_size: mezz.file_size,
            width: mezz.width,
            height: mezz.height,
            original_file_name: mezz.original_file_name,
            file_url: mezz.file_url,
            attempts: self.attempts,
            error_code,
            error_message,
            http_status,
            request_id: failure_request_id.or(self.request_id),
        }
    }
}

/// One row of `images.csv` / one line of `images.jsonl`. The field order is
/// the CSV column order, pinned by a test in `report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub image_id: String,
    pub outcome: OutcomeKind,
    pub audit_status: Option<String>,
    pub status: Option<String>,
    pub cate_id: Option<i64>,
    pub cate_name: Option<String>,
    pub title: Option<String>,
    pub image_type: Option<String>,
    pub creation_time: Option<String>,
    pub tags: Option<String>,
    pub description: Option<String>,
    pub storage_location: Option<String>,
    pub url: Option<String>,
    pub app_id: Option<String>,
    pub region_id: Option<String>,
    pub file_size: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub original_file_name: Option<String>,
    pub file_url: Option<String>,
    pub attempts: u32,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
}

impl ImageRecord {
    /// Writes the record as one JSON line: the journal's line and the
    /// `images.jsonl` line, which is copied from it.
    pub fn write_line<W: std::io::Write + ?Sized>(&self, w: &mut W) -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, self)?;
        w.write_all(b"\n")
    }
}
