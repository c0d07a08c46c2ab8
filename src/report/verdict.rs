//! The verdict: one word for what the service decided about an image, and
//! where that word came from.
//!
//! Two facts are read and never passed off as each other (vod-openapi.md
//! §9):
//!
//! - `AuditStatus` (GetImageInfo, `Normal` / `Blocked`) is **the account's
//!   decision**. The VOD manual review page ("Manual review": "the result of
//!   manual review always overrides the result of automated review") makes a
//!   person's decision final, and `AuditStatus` is where it shows.
//! - `Suggestion` (GetMediaAuditResult, `block` / `review` / `pass`) is **the
//!   machine's**: the automated moderation result.
//!
//! So the verdict is `AuditStatus` when the answer carries one this tool can
//! read; otherwise the machine's suggestion (the strictest part of its
//! answer, [`crate::api::moderation`]); otherwise `Unknown`. Values are
//! matched trimmed and in any case; any other value is unrecognised: it is
//! named, counted, and gives `Unknown`, never `Normal`. Where both facts are
//! present and a person overrode the machine (cleared what it blocked, or
//! blocked what it passed), the record says so.

use crate::api::moderation::Suggestion;
use crate::domain::verdict::{Disagreement, Verdict, VerdictSource};

/// `AuditStatus` as read: `Normal`, `Blocked`, absent, or a value this
/// tool does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccountDecision {
    Normal,
    Blocked,
    Absent,
    Unrecognised,
}

impl AccountDecision {
    /// Reads the raw field, trimmed, in any case; an empty value is absent.
    pub(crate) fn read(raw: Option<&str>) -> Self {
        match raw.map(str::trim) {
            None | Some("") => AccountDecision::Absent,
            Some(t) if t.eq_ignore_ascii_case("normal") => AccountDecision::Normal,
            Some(t) if t.eq_ignore_ascii_case("blocked") => AccountDecision::Blocked,
            Some(_) => AccountDecision::Unrecognised,
        }
    }

    /// Whether GetMediaAuditResult is asked in `--audit-source both`: when
    /// the account's decision is Blocked (for the reasons) or cannot be read
    /// (for the verdict).
    pub(crate) fn wants_moderation(self) -> bool {
        self != AccountDecision::Normal
    }
}

/// The machine's answer as the verdict needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Machine {
    /// The strictest recognised suggestion of any part.
    pub strictest: Option<Suggestion>,
    /// Whether some part's suggestion was not recognised.
    pub unrecognised: bool,
}

impl Machine {
    /// The machine's verdict: a block anywhere is Blocked; otherwise a value
    /// not recognised leaves it Unknown (it may have been a block); then
    /// review, then pass; nothing at all is Unknown.
    pub(crate) fn verdict(self) -> Verdict {
        match (self.strictest, self.unrecognised) {
            (Some(Suggestion::Block), _) => Verdict::Blocked,
            (_, true) | (None, false) => Verdict::Unknown,
            (Some(Suggestion::Review), false) => Verdict::Review,
            (Some(Suggestion::Pass), false) => Verdict::Normal,
        }
    }
}

/// What the two facts decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decided {
    pub verdict: Verdict,
    pub source: VerdictSource,
    pub disagreement: Option<Disagreement>,
}

/// The verdict of a found image from its `AuditStatus` and, when asked and
/// answered, the machine's moderation. Pure; table-tested below.
pub(crate) fn decide(audit_status: Option<&str>, machine: Option<Machine>) -> Decided {
    let account = AccountDecision::read(audit_status);
    let machine_says = machine.map(Machine::verdict);
    let disagreement = match (account, machine.and_then(|m| m.strictest)) {
        (AccountDecision::Normal, Some(Suggestion::Block)) => Some(Disagreement::ClearedByAccount),
        (AccountDecision::Blocked, Some(Suggestion::Pass)) if machine_says == Some(Verdict::Normal) => {
            Some(Disagreement::BlockedByAccount)
        }
        _ => None,
    };
    let (verdict, source) = match (account, machine_says) {
        (AccountDecision::Normal, _) => (Verdict::Normal, VerdictSource::AuditStatus),
        (AccountDecision::Blocked, _) => (Verdict::Blocked, VerdictSource::AuditStatus),
        (_, Some(v)) if v != Verdict::Unknown => (v, VerdictSource::Moderation),
        _ => (Verdict::Unknown, VerdictSource::None),
    };
    Decided { verdict, source, disagreement }
}

/// The reason of a Blocked or Review verdict from moderation whose answer
/// names no label: never an empty cell.
pub(crate) const UNSPECIFIED: &str = "unspecified";

/// The reason of an image the account blocked where the machine, asked,
/// named no label (a person's own decision).
pub(crate) const ACCOUNT_DECISION: &str = "account:blocked";

/// The reason of an image whose verdict needed moderation that the account
/// cannot have: `moderation-unavailable:CODE`.
pub(crate) const MODERATION_UNAVAILABLE: &str = "moderation-unavailable";

/// The reason of an image whose account had decided and whose moderation
/// answer could not be had after retries: `moderation-failed:CODE`.
pub(crate) const MODERATION_FAILED: &str = "moderation-failed";

#[cfg(test)]
mod tests {
    use super::*;
    use Suggestion::{Block, Pass, Review};

    fn m(strictest: Option<Suggestion>) -> Option<Machine> {
        Some(Machine { strictest, unrecognised: false })
    }

    #[test]
    fn the_account_decides_when_it_has_decided_then_the_machine_then_nobody() {
        use Disagreement::*;
        use Verdict::{Blocked as B, Normal as N, Review as R, Unknown as U};
        use VerdictSource::{AuditStatus as A, Moderation as M, None as X};
        type Case<'a> = (Option<&'a str>, Option<Machine>, Verdict, VerdictSource, Option<Disagreement>);
        let cases: &[Case] = &[
            (Some("Normal"), None, N, A, None),
            (Some("Blocked"), None, B, A, None),
            (Some("BLOCKED"), None, B, A, None),
            (Some(" blocked "), None, B, A, None),
            (Some("normal"), m(Some(Pass)), N, A, None),
            // A reviewer cleared what the machine blocked: the account wins, and it shows.
            (Some("Normal"), m(Some(Block)), N, A, Some(ClearedByAccount)),
            // A reviewer blocked what the machine passed.
            (Some("Blocked"), m(Some(Pass)), B, A, Some(BlockedByAccount)),
            (Some("Blocked"), m(Some(Block)), B, A, None),
            (Some("Normal"), m(Some(Review)), N, A, None),
            (None, m(Some(Block)), B, M, None),
            (None, m(Some(Review)), R, M, None),
            (None, m(Some(Pass)), N, M, None),
            (None, m(None), U, X, None),
            (None, None, U, X, None),
            (Some(""), None, U, X, None),
            // A value nobody documents is no decision: the machine, if asked, decides.
            (Some("Pending"), None, U, X, None),
            (Some("Pending"), m(Some(Block)), B, M, None),
            (None, Some(Machine { strictest: Some(Pass), unrecognised: true }), U, X, None),
            (None, Some(Machine { strictest: Some(Block), unrecognised: true }), B, M, None),
            (Some("Blocked"), Some(Machine { strictest: Some(Pass), unrecognised: true }), B, A, None),
        ];
        for (raw, machine, verdict, source, disagreement) in cases {
            let d = decide(*raw, *machine);
            assert_eq!(
                (d.verdict, d.source, d.disagreement),
                (*verdict, *source, *disagreement),
                "{raw:?} {machine:?}"
            );
        }
    }

    #[test]
    fn both_asks_the_machine_unless_the_account_said_normal() {
        assert!(!AccountDecision::read(Some("Normal")).wants_moderation());
        assert!(!AccountDecision::read(Some(" NORMAL")).wants_moderation());
        for raw in [Some("Blocked"), Some("blocked"), None, Some(""), Some("Pending")] {
            assert!(AccountDecision::read(raw).wants_moderation(), "{raw:?}");
        }
    }

    #[test]
    fn an_old_record_s_audit_status_stands_for_its_verdict() {
        assert_eq!(crate::domain::verdict::legacy(Some("Blocked")), Verdict::Blocked);
        assert_eq!(crate::domain::verdict::legacy(Some("Review")), Verdict::Review);
        assert_eq!(crate::domain::verdict::legacy(Some("Normal")), Verdict::Normal);
        assert_eq!(crate::domain::verdict::legacy(None), Verdict::Unknown);
        assert_eq!(crate::domain::verdict::legacy(Some("Pending")), Verdict::Unknown);
    }
}
