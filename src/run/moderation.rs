//! The moderation lane: which found images are still to be asked
//! `GetMediaAuditResult` ([`needs_moderation`]), how many may wait for it
//! ([`MAX_AWAITING_MODERATION`]), and the question itself
//! ([`ask_moderation`]), with what each way it can end makes of the image.
//!
//! The verdict is decided from what both calls said, in
//! [`super::outcome::Outcome::record`]; the engine runs the lane beside the
//! lookups, and [`super::awaiting`] keeps the waiting images across a crash.

use super::call::{unsettled, with_retries, Settled, Shared};
use super::lanes::Action;
use super::outcome::{ModerationNote, Outcome};
use super::settings::AuditSource;
use crate::api::error::ErrorClass;
use crate::domain::record::OutcomeKind;
use crate::report::verdict::AccountDecision;

/// Found images waiting for their `GetMediaAuditResult` at most, before
/// the lookups wait for the moderation lane: the backlog of a slower API is
/// bounded (about a kilobyte each), and the wall time is the slowest API's
/// either way.
pub(crate) const MAX_AWAITING_MODERATION: usize = 4096;

/// Whether a looked-up image is still to be asked `GetMediaAuditResult`:
/// `media-audit` asks about every found image, `both` only where the
/// account's decision (`AuditStatus`) is Blocked (for the reasons) or cannot
/// be read (for the verdict); once asked, never again.
pub(crate) fn needs_moderation(source: AuditSource, o: &Outcome) -> bool {
    if o.kind != OutcomeKind::Found || o.moderation.is_some() || o.cut_short {
        return false;
    }
    match source {
        AuditSource::ImageInfo => false,
        AuditSource::MediaAudit => true,
        AuditSource::Both => {
            AccountDecision::read(o.info.as_ref().and_then(|i| i.audit_status.as_deref())).wants_moderation()
        }
    }
}

/// Asks `GetMediaAuditResult` about a found image ([`needs_moderation`]),
/// through its own lane, with the same retries and error classes as every
/// call.
///
/// What cannot be had: an answer the account cannot get (the API is not
/// offered in the region, or the key may not call it) stops a `media-audit`
/// run, whose every verdict needs it; in `both` it marks every image that
/// needed it `moderation-unavailable:CODE` and the audit goes on. A failure
/// after retries fails the id when the verdict needed the answer, and is a
/// reason (`moderation-failed:CODE`) when the account had decided.
pub(crate) async fn ask_moderation(s: &Shared<'_>, mut o: Outcome) -> Outcome {
    let account = AccountDecision::read(o.info.as_ref().and_then(|i| i.audit_status.as_deref()));
    if let Some(code) = s.moderation_unavailable.get() {
        o.moderation = Some(ModerationNote::Unavailable(code.clone()));
        return o;
    }
    let decided = matches!(account, AccountDecision::Normal | AccountDecision::Blocked);
    let id = o.image_id.clone();
    let (end, attempts) = with_retries(s, Action::GetMediaAuditResult, || s.client.get_media_audit_result(&id)).await;
    o.attempts += attempts;
    match end {
        Settled::Ok(m) => {
            o.moderation = Some(ModerationNote::Answered(m.reading));
            o
        }
        // No moderation record for it: asked, nothing to say.
        Settled::Final(e) if e.class == ErrorClass::Missing => {
            o.moderation = Some(ModerationNote::NotFound);
            o
        }
        Settled::Fatal(e) if !s.stop.is_stopped() => {
            // Spared by `fatal_stops`: the account cannot have moderation.
            let code = s.moderation_unavailable.get_or_init(|| e.code.clone());
            o.moderation = Some(ModerationNote::Unavailable(code.clone()));
            o
        }
        Settled::Final(e) if decided => {
            o.moderation = Some(ModerationNote::Failed(e.code));
            o
        }
        Settled::Final(e) => {
            let attempts = o.attempts;
            unsettled(s, id, attempts, Settled::Final(e))
        }
        // The run stopped first: reported as found so far, not journaled,
        // so the same command asks the missing call again.
        Settled::Stopped(_) | Settled::Fatal(_) => {
            o.cut_short = true;
            o
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::ImageInfo;

    #[test]
    fn only_found_images_not_yet_asked_wait_for_moderation() {
        let found = |status: Option<&str>| {
            let info = ImageInfo { audit_status: status.map(Into::into), ..Default::default() };
            Outcome::found("a".into(), info, 1, None)
        };
        use AuditSource::{Both, ImageInfo as Info, MediaAudit};
        assert!(!needs_moderation(Info, &found(None)));
        assert!(needs_moderation(MediaAudit, &found(Some("Normal"))));
        assert!(!needs_moderation(Both, &found(Some("Normal"))));
        assert!(needs_moderation(Both, &found(Some("Blocked"))));
        assert!(needs_moderation(Both, &found(None)));
        assert!(needs_moderation(Both, &found(Some("Pending"))));
        assert!(!needs_moderation(MediaAudit, &Outcome::missing("a".into(), 1, None)));
        let mut asked = found(None);
        asked.moderation = Some(ModerationNote::NotFound);
        assert!(!needs_moderation(MediaAudit, &asked), "asked once, never again");
    }
}
