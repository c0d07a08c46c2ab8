//! The words of a verdict: what the service decided about a found image,
//! where that word came from, and a person's decision against the
//! machine's. How a verdict is decided is [`crate::report::verdict`]'s job;
//! these are here because the record and the run name them too.

named_enum! {
    /// What the service decided about a found image.
    pub enum Verdict {
        Blocked => "Blocked",
        /// The machine asks a person to look (`review`), and no person's
        /// decision is on record.
        Review => "Review",
        Normal => "Normal",
        /// Neither fact could be had or read.
        Unknown => "Unknown",
    }
}

named_enum! {
    /// Where a verdict came from.
    pub enum VerdictSource {
        /// The account's decision: GetImageInfo's `AuditStatus`.
        AuditStatus => "audit_status",
        /// The machine's: GetMediaAuditResult's `Suggestion`.
        Moderation => "moderation",
        /// Neither.
        None => "none",
    }
}

named_enum! {
    /// A person's decision that overrides the machine's.
    pub enum Disagreement {
        /// `AuditStatus` Normal where the machine said block.
        ClearedByAccount => "cleared_by_account",
        /// `AuditStatus` Blocked where the machine said pass.
        BlockedByAccount => "blocked_by_account",
    }
}

/// The verdict a record written before the verdict had its own column
/// stands for: its `audit_status` column, which then held the verdict
/// (`Normal`, `Blocked`, or `Review` from moderation).
pub fn legacy(audit_status: Option<&str>) -> Verdict {
    match audit_status.map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("blocked") => Verdict::Blocked,
        Some(t) if t.eq_ignore_ascii_case("normal") => Verdict::Normal,
        Some(t) if t.eq_ignore_ascii_case("review") => Verdict::Review,
        _ => Verdict::Unknown,
    }
}
