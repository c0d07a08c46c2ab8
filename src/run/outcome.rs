//! What became of one image id: the unit every other stage passes along.
//!
//! Owns [`Outcome`] and its conversion to the report's flat record
//! ([`ImageRecord`]). Deciding the outcome is the engine's job; adding the
//! records up is `report`'s.

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::api::model::ImageInfo;
use crate::report::record::{ImageRecord, OutcomeKind};

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

/// What `GetMediaAuditResult` said of a found image, and whether its
/// verdict replaced (or filled in) the answer's `AuditStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditNote {
    /// `block`, `review` or `pass`; none when never reviewed.
    pub suggestion: Option<String>,
    pub labels: Vec<String>,
    /// The `AuditStatus` this verdict gives, when it decides the verdict.
    pub verdict: Option<String>,
}

impl AuditNote {
    /// The `AuditStatus` a suggestion stands for: `block` is `Blocked`,
    /// `pass` is `Normal`, `review` is its own `Review` (a person has yet to
    /// decide), anything else none.
    pub fn status_of(suggestion: Option<&str>) -> Option<String> {
        match suggestion? {
            "block" => Some(crate::report::record::BLOCKED.to_owned()),
            "pass" => Some("Normal".to_owned()),
            "review" => Some("Review".to_owned()),
            _ => None,
        }
    }
}

/// `audit_source` of a verdict from `GetImageInfo`'s `AuditStatus`.
pub const AUDIT_SOURCE_IMAGE: &str = "image-info";
/// `audit_source` of a verdict from `GetMediaAuditResult`'s `Suggestion`.
pub const AUDIT_SOURCE_MEDIA: &str = "media-audit";

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
    /// The moderation verdict from `GetMediaAuditResult`, when asked.
    #[serde(default)]
    pub audit: Option<AuditNote>,
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
            audit: None,
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
            audit: None,
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
            audit: None,
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
        Outcome { cut_short: true, kind: OutcomeKind::NotAttempted, ..Outcome::failed(image_id, 0, failure) }
    }

    /// The flat record of this outcome.
    pub fn record(self) -> ImageRecord {
        let info = self.info.map(|b| *b).unwrap_or_default();
        let mezz = info.mezzanine.unwrap_or_default();
        let (error_code, error_message, http_status, failure_request_id) = match self.failure {
            Some(f) => (Some(f.code), Some(f.message), f.http_status, f.request_id),
            None => (None, None, None, None),
        };
        let (audit_status, audit_suggestion, audit_labels, audit_source) = match self.audit {
            Some(a) => {
                let labels = (!a.labels.is_empty()).then(|| a.labels.join(";"));
                match a.verdict {
                    Some(v) => (Some(v), a.suggestion, labels, Some(AUDIT_SOURCE_MEDIA.to_owned())),
                    None => (info.audit_status, a.suggestion, labels, Some(AUDIT_SOURCE_IMAGE.to_owned())),
                }
            }
            None if self.kind == OutcomeKind::Found => {
                let source = info.audit_status.is_some().then(|| AUDIT_SOURCE_IMAGE.to_owned());
                (info.audit_status, None, None, source)
            }
            None => (None, None, None, None),
        };
        ImageRecord {
            image_id: self.image_id,
            outcome: self.kind,
            audit_status,
            audit_suggestion,
            audit_labels,
            audit_source,
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
