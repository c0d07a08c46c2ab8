//! The reports: one model (an [`record::ImageRecord`] per id, the
//! [`summary::Summary`]), one writer per file, and the report pass that
//! turns the settled outcomes into the files.
//!
//! - [`record`]: the flat record of one id and the words the reports use.
//! - [`verdict`]: the account's decision and the machine's, and the one
//!   verdict they give.
//! - [`summary`]: aggregation, a fold over the records.
//! - [`review`]: the team's review ledger, `blocked_since` and the review queue.
//! - [`write`]: `images.csv`, `images.jsonl`, `summary.*`, `rejected.csv`.
//! - [`changes`]: what changed since an earlier run (a merge-join).
//! - [`html`]: the one-page `summary.html`.
//! - [`xlsx`]: the workbook `audit.xlsx`.
//! - [`sort`]: the outcomes in `image_id` order, in bounded memory.
//! - [`pass`]: the report pass, from the sorted outcomes and the expected
//!   ids to the written files and the summary.
//! - [`trend`]: the runs before this one, for the page's trend chart.
//! - [`verify`]: re-checking a finished run directory.
//!
//! It knows nothing about HTTP or the API; it is handed records and input
//! counts. Where files go and how they are made durable is
//! [`crate::rundir`]'s.

pub(crate) mod changes;
pub(crate) mod html;
pub mod pass;
pub(crate) mod review;
pub mod sort;
pub mod summary;
pub(crate) mod trend;
pub(crate) mod verdict;
pub(crate) mod verify;
pub mod write;
pub(crate) mod xlsx;

#[cfg(test)]
pub(crate) mod testing {
    //! Records for the tests of this module.
    use crate::api::model::ImageInfo;
    use crate::domain::record::ImageRecord;
    use crate::run::outcome::{FailureInfo, Outcome};

    pub(crate) fn found(id: &str, audit: Option<&str>, status: Option<&str>, cate: Option<(i64, &str)>) -> ImageRecord {
        let info = ImageInfo {
            image_id: Some(id.into()),
            audit_status: audit.map(Into::into),
            status: status.map(Into::into),
            cate_id: cate.map(|c| c.0),
            cate_name: cate.map(|c| c.1.into()),
            ..Default::default()
        };
        Outcome::found(id.into(), info, 1, Some("r".into())).record()
    }

    pub(crate) fn failed(id: &str, code: &str) -> ImageRecord {
        let f = FailureInfo { code: code.into(), message: "m".into(), http_status: Some(500), request_id: None };
        Outcome::failed(id.into(), 5, f).record()
    }
}
