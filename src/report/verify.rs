//! `verify DIR`: re-checks a finished run directory, so a later reader can
//! trust it: every file's size and SHA-256 against the manifest, the
//! manifest's ledger (for every format), and each report that carries
//! counts against that ledger.
//!
//! Owns only checking; it writes nothing. The manifest is covered by
//! `manifest.sha256`, so an edit to it shows too. None of this is a
//! signature: it catches accidental or casual change (an edited cell, a cut
//! file, a changed exit code), not someone who recomputes every digest. For
//! that, keep the manifest's digest elsewhere (the run prints it; a cron
//! log or a ticket will do) and give it to `verify --manifest-sha256`.

use std::collections::BTreeMap;
use std::path::Path;

use super::summary::{Summary, Totals};
use crate::domain::ledger::Ledger;
use crate::domain::record::{IdOrder, ImageRecord, OutcomeKind};
use crate::rundir::files::{digest_file, FileDigest};
use crate::rundir::manifest::{Manifest, ManifestError};
use crate::rundir::{AUDIT_XLSX, IMAGES_CSV, MANIFEST_JSON, REJECTED_CSV, SUMMARY_JSON};

/// The result of a verification: what was checked and what failed.
#[derive(Debug, Default)]
pub struct Verdict {
    pub checked: Vec<String>,
    pub problems: Vec<String>,
}

/// Checks a run directory; `expected_manifest` is a digest of its manifest
/// kept elsewhere, if the caller has one. `Err` only when it is not a run
/// directory at all.
pub(crate) fn verify(dir: &Path, expected_manifest: Option<&str>) -> Result<Verdict, ManifestError> {
    let manifest = Manifest::read(dir)?;
    let mut v = Verdict::default();
    check_manifest_digest(dir, expected_manifest, &mut v);
    if !manifest.complete {
        v.problems.push(INCOMPLETE.into());
    }
    for f in &manifest.files {
        check_file(dir, f, &mut v);
    }
    if let Some(inv) = &manifest.inventory {
        // An --all-images run: the inventory must prove itself complete, be
        // hashed with the reports, and be exactly what was audited.
        if !manifest.lists(crate::rundir::INVENTORY_CSV) {
            v.problems.push("an --all-images run whose manifest does not list inventory.csv".into());
        }
        if !(inv.complete && inv.root_total == inv.leaf_total && inv.leaf_total == inv.distinct) {
            v.problems.push(format!(
                "the inventory is not proven complete: SearchMedia counted {}, the queries listed {}, {} distinct ids",
                inv.root_total, inv.leaf_total, inv.distinct
            ));
        } else if inv.distinct != manifest.ledger.unique_ids {
            v.problems.push(format!(
                "the inventory lists {} images; the ledger audited {} unique ids",
                inv.distinct, manifest.ledger.unique_ids
            ));
        } else {
            v.checked.push(format!(
                "inventory: {} images, SearchMedia's Total, the queries' Totals and the distinct ids agree, all audited",
                inv.distinct
            ));
        }
    }
    if !manifest.lists(SUMMARY_JSON) && !manifest.lists(IMAGES_CSV) && !manifest.lists(AUDIT_XLSX) {
        v.problems.push("the manifest lists no report (summary.json, images.csv or audit.xlsx)".into());
    }
    let l = &manifest.ledger;
    let problems = l.problems();
    if problems.is_empty() {
        let rows: Vec<String> = l.rows().map(|(key, _, n)| format!("{key} {n}")).collect();
        v.checked.push(format!("ledger balances ({}): {}", Ledger::SUMS, rows.join(", ")));
    }
    v.problems.extend(problems.into_iter().map(|p| format!("ledger: {p}")));
    if manifest.lists(SUMMARY_JSON) {
        match std::fs::read(dir.join(SUMMARY_JSON))
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Summary>(&b).map_err(|e| e.to_string()))
        {
            Err(e) => v.problems.push(format!("summary.json: {e}")),
            Ok(s) => check_summary(&s, l, &mut v),
        }
    }
    if manifest.lists(IMAGES_CSV) {
        match count_images(dir) {
            Err(e) => v.problems.push(format!("images.csv: {e}")),
            Ok(c) => {
                let want = BTreeMap::from([
                    (OutcomeKind::Found, l.found),
                    (OutcomeKind::Missing, l.missing),
                    (OutcomeKind::Failed, l.failed),
                    (OutcomeKind::NotAttempted, l.not_attempted),
                ]);
                if c == want {
                    v.checked.push("images.csv rows match the ledger".into());
                } else {
                    v.problems.push(format!("images.csv has {c:?} rows by outcome; the ledger says {want:?}"));
                }
            }
        }
    }
    if manifest.lists(REJECTED_CSV) {
        match csv::Reader::from_path(dir.join(REJECTED_CSV)).map(|mut r| r.records().count() as u64) {
            Err(e) => v.problems.push(format!("rejected.csv: {e}")),
            Ok(n) if n != l.rejected => {
                v.problems.push(format!("rejected.csv has {n} rows; the ledger says {}", l.rejected))
            }
            Ok(_) => v.checked.push("rejected.csv rows match the ledger".into()),
        }
    }
    Ok(v)
}

/// A file the manifest lists against its size and SHA-256.
fn check_file(dir: &Path, f: &FileDigest, v: &mut Verdict) {
    if f.name.contains('/') || f.name.contains('\\') || f.name == ".." || f.name == "." || f.name.is_empty() {
        return v.problems.push(format!("{}: a file name with a path in the manifest", f.name));
    }
    match digest_file(&dir.join(&f.name)) {
        Err(e) => v.problems.push(format!("{}: {e}", f.name)),
        Ok((bytes, sha)) if bytes != f.bytes || sha != f.sha256 => v.problems.push(format!(
            "{}: changed since the run (size {bytes}, SHA-256 {sha}; the manifest says {} and {})",
            f.name, f.bytes, f.sha256
        )),
        Ok(_) => v.checked.push(format!("{}: SHA-256 matches", f.name)),
    }
}

/// Why an earlier run the tool was about to read is not used.
#[derive(Debug, thiserror::Error)]
#[error("{dir} does not verify ({}): see `vod-image-audit verify {dir}`", .problems.join("; "))]
pub(crate) struct NotVerified {
    pub dir: String,
    pub problems: Vec<String>,
}

/// An earlier run the tool is about to read from (`--retry-failed`,
/// `--compare-with`, `diff`, the trend): checked as `verify` checks it, as
/// far as the files it reads go: the manifest against `manifest.sha256`,
/// and each of `uses` listed in the manifest and matching its size and
/// SHA-256; with `complete`, the manifest must say every id was accounted
/// for. Returns the manifest. The whole of `verify` would hash every report
/// of every run the trend reads; a file not read cannot launder anything.
pub(crate) fn earlier_run(dir: &Path, uses: &[&str], complete: bool) -> Result<Manifest, NotVerified> {
    let shown = dir.display().to_string();
    let manifest =
        Manifest::read(dir).map_err(|e| NotVerified { dir: shown.clone(), problems: vec![e.to_string()] })?;
    let mut v = Verdict::default();
    check_manifest_digest(dir, None, &mut v);
    if complete && !manifest.complete {
        v.problems.push(INCOMPLETE.into());
    }
    for name in uses {
        match manifest.files.iter().find(|f| f.name == *name) {
            Some(f) => check_file(dir, f, &mut v),
            None => v.problems.push(format!("{name}: not listed in the manifest")),
        }
    }
    if v.problems.is_empty() {
        Ok(manifest)
    } else {
        Err(NotVerified { dir: shown, problems: v.problems })
    }
}

/// The problem of a run that stopped before it accounted for every id.
pub(crate) const INCOMPLETE: &str = "the manifest marks the run incomplete: it does not account for every id";

/// The manifest against `manifest.sha256`, and against the digest the
/// caller kept elsewhere.
fn check_manifest_digest(dir: &Path, expected: Option<&str>, v: &mut Verdict) {
    let actual = match digest_file(&dir.join(MANIFEST_JSON)) {
        Ok((_, sha)) => sha,
        Err(e) => return v.problems.push(format!("manifest.json: {e}")),
    };
    match Manifest::recorded_digest(dir) {
        Ok(Some(recorded)) if recorded == actual => {
            v.checked.push("manifest.json: SHA-256 matches manifest.sha256".into())
        }
        Ok(Some(recorded)) => v
            .problems
            .push(format!("manifest.json: changed since the run (SHA-256 {actual}; manifest.sha256 says {recorded})")),
        Ok(None) => v.problems.push("manifest.sha256: not a digest of manifest.json".into()),
        Err(e) => v.problems.push(format!("manifest.sha256: {e}: the manifest itself cannot be checked")),
    }
    if let Some(want) = expected {
        if want.eq_ignore_ascii_case(&actual) {
            v.checked.push("manifest.json: SHA-256 matches the digest given".into());
        } else {
            v.problems.push(format!("manifest.json: SHA-256 {actual}, not the {want} given"));
        }
    }
}

/// summary.json's own ledger and totals against the manifest's ledger.
fn check_summary(s: &Summary, l: &Ledger, v: &mut Verdict) {
    v.problems.extend(s.ledger.problems().into_iter().map(|p| format!("summary.json ledger: {p}")));
    if s.ledger != *l {
        v.problems.push("summary.json: its ledger differs from the manifest's".into());
    }
    let implied = Totals::of_ledger(l);
    for row in &Totals::ROWS {
        let (total, ledger) = ((row.count)(&s.totals), (row.count)(&implied));
        if total != ledger {
            v.problems.push(format!("summary.json: totals.{} {total} but the ledger says {ledger}", row.key));
        }
    }
}

fn count_images(dir: &Path) -> Result<BTreeMap<OutcomeKind, u64>, String> {
    let mut r = csv::Reader::from_path(dir.join(IMAGES_CSV)).map_err(|e| e.to_string())?;
    let mut counts = BTreeMap::from([
        (OutcomeKind::Found, 0),
        (OutcomeKind::Missing, 0),
        (OutcomeKind::Failed, 0),
        (OutcomeKind::NotAttempted, 0),
    ]);
    let mut order = IdOrder::default();
    for row in r.deserialize::<ImageRecord>() {
        let row = row.map_err(|e| e.to_string())?;
        order.next(&row.image_id).map_err(|e| e.to_string())?;
        *counts.entry(row.outcome).or_default() += 1;
    }
    Ok(counts)
}
