//! `manifest.json`: what a run directory holds, written last. One typed
//! [`Manifest`] that `run` writes and `run` (refusing or resuming), `verify`,
//! `diff` and `--compare-with` read.
//!
//! Owns the manifest's shape and the completeness [`Ledger`] it carries. The
//! manifest is not a signature: it proves a report was not edited or cut
//! since the run (with `verify`), not who ran it.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::domain::ledger::Ledger;

use super::files::{write_atomic, FileDigest};
use super::{MANIFEST_JSON, MANIFEST_SHA256};

/// The `sha256sum` line for the manifest.
fn sha256sum_line(hex: &str) -> String {
    format!("{hex}  {MANIFEST_JSON}\n")
}

/// The manifest of a run directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub version: String,
    /// Every id accounted for and the run not stopped early.
    pub complete: bool,
    pub stop_reason: Option<String>,
    pub exit_code: u8,
    pub command_line: Vec<String>,
    pub region: String,
    pub endpoint: String,
    /// The proxy the calls went through (user and password shown as `***`);
    /// none: direct.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Where the credentials came from (never the secret).
    pub credentials_source: String,
    /// The account the key belongs to (`GetCallerIdentity`), when known.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The key's identity ARN (`GetCallerIdentity`), when known.
    #[serde(default)]
    pub identity_arn: Option<String>,
    /// RFC 3339, UTC.
    pub started: String,
    /// RFC 3339, UTC.
    pub finished: String,
    pub ledger: Ledger,
    /// How many found images carried `AuditStatus`.
    #[serde(default)]
    pub audit_status_coverage: AuditStatusCoverage,
    /// How many found images have a verdict (not `Unknown`).
    #[serde(default)]
    pub verdict_coverage: VerdictCoverage,
    /// The run directory compared with, if any.
    pub compared_with: Option<String>,
    pub input: ManifestInput,
    /// Ids settled by earlier attempts of this run, read from the journal
    /// (or, with `--retry-failed`, taken from the earlier run).
    pub resumed_ids: usize,
    /// `--retry-failed`: the run whose failed ids this one audited again.
    #[serde(default)]
    pub retry_of: Option<RetryOf>,
    pub settings: ManifestSettings,
    pub calls: ManifestCalls,
    /// Every report file with its size and SHA-256 (`verify` checks them).
    pub files: Vec<FileDigest>,
    /// `--all-images`: the listing, and whether its counts prove it
    /// complete. Its `inventory.csv` is among `files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ManifestInventory>,
    /// `--reviews`: the review ledger read (its path as given, size and
    /// SHA-256), evidence of the decisions the reports show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviews: Option<FileDigest>,
    /// `--sign-key`: the fingerprint (`SHA256:...`) of the key that signs
    /// this manifest in `manifest.json.sig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
}

/// The listing of an `--all-images` run (see `run::inventory`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestInventory {
    /// What was listed: `[lower, upper)` of creation time, UTC, and the filters.
    pub listed: String,
    pub lower: String,
    pub upper: String,
    /// SearchMedia's `Total` for the whole range.
    pub root_total: u64,
    /// The sum of the `Total`s of the queries paged through.
    pub leaf_total: u64,
    /// Distinct ids listed (the rows of inventory.csv).
    pub distinct: u64,
    /// The three agree.
    pub complete: bool,
    /// Queries and pages asked by the run's last attempt (a resumed listing
    /// asks only what its journal does not hold).
    pub queries: u64,
    pub pages: u64,
    pub split_by_category: u64,
    pub relisted: u64,
}

/// The earlier run a `--retry-failed` run completes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOf {
    pub dir: String,
    pub started: String,
    pub finished: String,
    pub input_sha256: String,
}

/// The input a run read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestInput {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    pub id_column: String,
    pub blank_rows: u64,
    /// The field delimiter read (sniffed from the header, or `--delimiter`).
    #[serde(default)]
    pub delimiter: String,
}

/// The validated settings of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSettings {
    pub api: String,
    pub qps: u32,
    pub rate: String,
    pub burst: u32,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub max_failures: Option<String>,
    pub down_after_ms: u128,
    pub timeout_ms: u128,
    pub output_type: String,
    pub auth_timeout: Option<u64>,
    #[serde(default)]
    pub audit_source: String,
    pub formats: Vec<String>,
    /// Each API's rate in calls per second (0: no limit).
    #[serde(default)]
    pub api_qps: std::collections::BTreeMap<String, u32>,
}

/// One API's calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCalls {
    pub calls: u64,
    pub throttled: u64,
    /// Ids this API answered (found or missing): with `--api mixed`, how
    /// the ids were shared out.
    #[serde(default)]
    pub ids: u64,
}

/// What the calls of a run came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCalls {
    pub total: u64,
    pub throttled: u64,
    pub retries: u64,
    /// Calls and throttles per API action (those called).
    #[serde(default)]
    pub by_action: std::collections::BTreeMap<String, ActionCalls>,
    /// With `--api batch`: images whose batch answer lacked `AuditStatus`
    /// and were asked again with `GetImageInfo`.
    pub batch_fallbacks: u64,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: no manifest (not a finished vod-image-audit run)")]
    Absent { path: String },
    #[error("{path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}: not a vod-image-audit manifest: {reason}")]
    Invalid { path: String, reason: String },
}

impl Manifest {
    /// Reads the manifest of the run directory `dir`.
    pub fn read(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(MANIFEST_JSON);
        let shown = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ManifestError::Absent { path: shown.clone() },
            _ => ManifestError::Unreadable { path: shown.clone(), reason: e.to_string() },
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ManifestError::Invalid { path: shown, reason: e.to_string() })
    }

    /// Writes it into `dir`, atomically, then its digest as
    /// `manifest.sha256` (`sha256sum -c manifest.sha256` checks it too);
    /// returns the digest.
    pub fn write(&self, dir: &Path) -> io::Result<FileDigest> {
        let digest = write_atomic(dir, MANIFEST_JSON, |w| {
            serde_json::to_writer_pretty(&mut *w, self)?;
            w.write_all(b"\n")
        })?;
        write_atomic(dir, MANIFEST_SHA256, |w| w.write_all(sha256sum_line(&digest.sha256).as_bytes()))?;
        Ok(digest)
    }

    /// The digest `manifest.sha256` in `dir` records, if it holds one.
    pub fn recorded_digest(dir: &Path) -> io::Result<Option<String>> {
        let text = std::fs::read_to_string(dir.join(MANIFEST_SHA256))?;
        Ok(text
            .strip_suffix(&format!("  {MANIFEST_JSON}\n"))
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase))
    }

    /// Whether the manifest lists a file of this name.
    pub fn lists(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.name == name)
    }
}

/// Found images before the verdict's share is judged (see
/// [`VerdictCoverage::below`]): with a few per cent of images lacking it
/// by chance, a 90 % floor flaps on twenty images and holds on a hundred.
pub(crate) const MIN_FOUND_FOR_SHARE: u64 = 100;

/// What a share reads as when no image was found: there is nothing to have
/// a share of, and "100 %" would vouch for answers that never came (every id
/// `NoSuchResource`, as a wrong region gives).
pub(crate) const NO_IMAGE_FOUND: &str = "no image found";

fn share_of(found: u64, with: u64) -> Option<f64> {
    (found > 0).then(|| with as f64 / found as f64)
}

fn percent_of(share: Option<f64>) -> String {
    share.map_or_else(|| NO_IMAGE_FOUND.to_owned(), |s| format!("{:.1} %", s * 100.0))
}

/// Found images, and how many of them carried `AuditStatus` (the raw
/// field, whatever its value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditStatusCoverage {
    pub found: u64,
    pub with_audit_status: u64,
    /// `with_audit_status / found`; none (`null`) when nothing was found.
    pub share: Option<f64>,
}

impl AuditStatusCoverage {
    /// The coverage of these counts.
    pub fn new(found: u64, with_audit_status: u64) -> Self {
        AuditStatusCoverage { found, with_audit_status, share: share_of(found, with_audit_status) }
    }

    /// `97.5 %` for people, or "no image found".
    pub fn percent(&self) -> String {
        percent_of(self.share)
    }
}

/// Found images, and how many of them have a verdict (`Blocked`, `Review`
/// or `Normal`: not `Unknown`), from either source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct VerdictCoverage {
    pub found: u64,
    pub with_verdict: u64,
    /// `with_verdict / found`; none (`null`) when nothing was found.
    pub share: Option<f64>,
}

impl VerdictCoverage {
    /// The coverage of these counts.
    pub fn new(found: u64, with_verdict: u64) -> Self {
        VerdictCoverage { found, with_verdict, share: share_of(found, with_verdict) }
    }

    /// Whether too few found images have a verdict for the blocked count to
    /// be trusted: the share is below `min` (0..1), judged once
    /// [`MIN_FOUND_FOR_SHARE`] images are found; fewer are judged only
    /// when not one of them has one (a share of a handful of images says
    /// more about chance than about the service).
    pub fn below(&self, min: f64) -> bool {
        match (self.found, self.share) {
            (0, _) | (_, None) => false,
            (n, _) if n < MIN_FOUND_FOR_SHARE => self.with_verdict == 0 && min > 0.0,
            (_, Some(share)) => share < min,
        }
    }

    /// `97.5 %` for people, or "no image found".
    pub fn percent(&self) -> String {
        percent_of(self.share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reports_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Manifest::read(dir.path()), Err(ManifestError::Absent { .. })));
        let m = Manifest {
            tool: "vod-image-audit".into(),
            complete: true,
            ledger: Ledger { input_rows: 2, unique_ids: 2, found: 2, ..Default::default() },
            files: vec![FileDigest { name: "images.csv".into(), bytes: 1, sha256: "00".into() }],
            ..Default::default()
        };
        let digest = m.write(dir.path()).unwrap();
        assert_eq!(Manifest::recorded_digest(dir.path()).unwrap(), Some(digest.sha256.clone()));
        let (_, sha) = super::super::files::digest_file(&dir.path().join(MANIFEST_JSON)).unwrap();
        assert_eq!(sha, digest.sha256);
        let back = Manifest::read(dir.path()).unwrap();
        assert_eq!(back, m);
        assert!(back.lists("images.csv") && !back.lists("summary.json"));
        std::fs::write(dir.path().join(MANIFEST_JSON), b"{\"complete\": tru").unwrap();
        let e = Manifest::read(dir.path()).unwrap_err();
        assert!(matches!(e, ManifestError::Invalid { .. }), "{e}");
    }

    #[test]
    fn the_verdict_guard_judges_a_share_only_on_enough_images() {
        assert!(!VerdictCoverage::new(0, 0).below(0.9), "nothing found, nothing to judge");
        assert!(!VerdictCoverage::new(20, 17).below(0.9), "a few by chance on a small run");
        assert!(VerdictCoverage::new(20, 0).below(0.9), "none at all is judged at once");
        assert!(!VerdictCoverage::new(20, 0).below(0.0), "--min-audit-status 0 turns it off");
        assert!(VerdictCoverage::new(1000, 899).below(0.9));
        assert!(!VerdictCoverage::new(1000, 900).below(0.9));
        assert_eq!(VerdictCoverage::new(1000, 975).percent(), "97.5 %");
    }

    #[test]
    fn nothing_found_is_no_share_not_a_hundred_per_cent() {
        assert_eq!(VerdictCoverage::new(0, 0).percent(), "no image found");
        assert_eq!(AuditStatusCoverage::new(0, 0).percent(), "no image found");
        assert_eq!(AuditStatusCoverage::new(0, 0).share, None);
        let old: AuditStatusCoverage =
            serde_json::from_str(r#"{"found": 0, "with_audit_status": 0, "share": 1.0}"#).unwrap();
        assert_eq!(old.share, Some(1.0), "an old manifest still reads");
    }

    #[test]
    fn ledger_problems_name_the_broken_sum() {
        let mut l = Ledger { input_rows: 5, unique_ids: 4, duplicates: 1, found: 3, missing: 1, ..Default::default() };
        assert!(l.problems().is_empty());
        l.found = 2;
        let p = l.problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("unique_ids 4 != found 2"), "{p:?}");
    }
}
