//! What became of one image id: the unit every other stage passes along.
//!
//! Owns [`Outcome`] and its conversion to the report's flat record
//! ([`ImageRecord`]). Deciding the outcome is the engine's job; adding the
//! records up is `report`'s.

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::api::model::ImageInfo;
use crate::api::moderation::ModerationReading;
use crate::domain::record::{ImageRecord, OutcomeKind};
use crate::domain::verdict::{Disagreement, Verdict, VerdictSource};
use crate::report::verdict::{self, AccountDecision, Machine};

/// The error of a failed id, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FailureInfo {
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

/// The `error_code` of a missing image: the API's answer for it.
pub(crate) const MISSING_CODE: &str = "NoSuchResource";

/// The code used for ids that were never called because the run stopped.
pub(crate) const NOT_ATTEMPTED: &str = "NotAttempted";

/// What became of the question to `GetMediaAuditResult` about a found
/// image, when it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModerationNote {
    /// It answered.
    Answered(ModerationReading),
    /// It does not know the medium (`NoSuchResource`): asked, nothing said.
    NotFound,
    /// The account cannot have it (this `Code`): the API is not offered in
    /// the region, or the key may not call it.
    Unavailable(String),
    /// No answer after retries (this `Code`); asked only for the reasons,
    /// since the account had decided.
    Failed(String),
}

/// The end of one id. Journaled and reported as its [`ImageRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
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
    /// What `GetMediaAuditResult` said, when it was asked.
    pub moderation: Option<ModerationNote>,
    /// Set when the run stopped before this id was settled (not called, or
    /// its retries cut short): such an outcome is reported but not
    /// journaled, so a resumed run calls the id again.
    pub cut_short: bool,
}

impl Outcome {
    /// An id that was found.
    pub(crate) fn found(image_id: String, info: ImageInfo, attempts: u32, request_id: Option<String>) -> Self {
        Outcome {
            image_id,
            kind: OutcomeKind::Found,
            info: Some(Box::new(info)),
            attempts,
            request_id,
            failure: None,
            moderation: None,
            cut_short: false,
        }
    }

    /// An id the API does not know.
    pub(crate) fn missing(image_id: String, attempts: u32, request_id: Option<String>) -> Self {
        Outcome {
            image_id,
            kind: OutcomeKind::Missing,
            info: None,
            attempts,
            request_id,
            failure: None,
            moderation: None,
            cut_short: false,
        }
    }

    /// An id that could not be settled.
    pub(crate) fn failed(image_id: String, attempts: u32, failure: FailureInfo) -> Self {
        Outcome {
            image_id,
            kind: OutcomeKind::Failed,
            info: None,
            attempts,
            request_id: None,
            failure: Some(failure),
            moderation: None,
            cut_short: false,
        }
    }

    /// An id never called because the run stopped first.
    pub(crate) fn not_attempted(image_id: String, why: &str) -> Self {
        let failure = FailureInfo {
            code: NOT_ATTEMPTED.to_owned(),
            message: format!("not called: {why}"),
            http_status: None,
            request_id: None,
        };
        Outcome { cut_short: true, kind: OutcomeKind::NotAttempted, ..Outcome::failed(image_id, 0, failure) }
    }

    /// The flat record of this outcome.
    pub(crate) fn record(self) -> ImageRecord {
        let info = self.info.map(|b| *b).unwrap_or_default();
        let mezz = info.mezzanine.unwrap_or_default();
        let (error_code, error_message, http_status, failure_request_id) = match self.failure {
            Some(f) => (Some(f.code), Some(f.message), f.http_status, f.request_id),
            // The answer a missing row stands for, where a reader of
            // images.csv looks for it.
            None if self.kind == OutcomeKind::Missing => (Some(MISSING_CODE.to_owned()), None, None, None),
            None => (None, None, None, None),
        };
        let judged = (self.kind == OutcomeKind::Found).then(|| judge(info.audit_status.as_deref(), self.moderation));
        let judged = judged.unwrap_or_default();
        ImageRecord {
            image_id: self.image_id,
            outcome: self.kind,
            verdict: judged.verdict.map(|v| v.as_str().to_owned()),
            verdict_source: judged.source.map(|v| v.as_str().to_owned()),
            audit_status: info.audit_status,
            moderation_suggestion: judged.suggestion,
            reasons: judged.reasons,
            abnormal_modules: judged.abnormal_modules,
            disagreement: judged.disagreement.map(|d| d.as_str().to_owned()),
            unrecognised: judged.unrecognised,
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
            // Filled by the report pass, from the review ledger and the run compared with.
            review_decision: None,
            reviewer: None,
            reviewed_at: None,
            blocked_since: None,
        }
    }
}

/// The verdict columns of a found image's record.
#[derive(Default)]
struct Judged {
    verdict: Option<Verdict>,
    source: Option<VerdictSource>,
    suggestion: Option<String>,
    reasons: Option<String>,
    abnormal_modules: Option<String>,
    disagreement: Option<Disagreement>,
    unrecognised: Option<String>,
}

/// Applies the verdict rule ([`crate::report::verdict`]) to what the two
/// calls said, and gathers the reasons and the values not recognised.
fn judge(audit_status: Option<&str>, moderation: Option<ModerationNote>) -> Judged {
    let mut unrecognised = Vec::new();
    if AccountDecision::read(audit_status) == AccountDecision::Unrecognised {
        unrecognised.push(format!("AuditStatus={}", audit_status.unwrap_or_default()));
    }
    let (machine, mut reasons, suggestion, abnormal_modules) = match moderation {
        Some(ModerationNote::Answered(r)) => {
            let machine = Machine { strictest: r.strictest, unrecognised: !r.unrecognised.is_empty() };
            unrecognised.extend(r.unrecognised);
            (Some(machine), r.reasons, r.suggestion, r.abnormal_modules)
        }
        Some(ModerationNote::NotFound) => {
            (Some(Machine { strictest: None, unrecognised: false }), Vec::new(), None, None)
        }
        Some(ModerationNote::Unavailable(code)) => {
            (None, vec![format!("{}:{code}", verdict::MODERATION_UNAVAILABLE)], None, None)
        }
        Some(ModerationNote::Failed(code)) => {
            (None, vec![format!("{}:{code}", verdict::MODERATION_FAILED)], None, None)
        }
        None => (None, Vec::new(), None, None),
    };
    let d = verdict::decide(audit_status, machine);
    if machine.is_some() && reasons.is_empty() && matches!(d.verdict, Verdict::Blocked | Verdict::Review) {
        reasons.push(match d.source {
            VerdictSource::AuditStatus => verdict::ACCOUNT_DECISION.to_owned(),
            _ => verdict::UNSPECIFIED.to_owned(),
        });
    }
    let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join(";"));
    Judged {
        verdict: Some(d.verdict),
        source: Some(d.source),
        suggestion,
        reasons: join(reasons),
        abnormal_modules,
        disagreement: d.disagreement,
        unrecognised: join(unrecognised),
    }
}
