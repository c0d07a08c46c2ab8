//! The run directory (`--out`): the name of every file a run writes there,
//! taking the directory for a run (lock, refusal of a finished run or its
//! removal under `--force`, write probe), finding an earlier run to compare
//! with, writing files so that a crash never leaves half of one, and the
//! typed [`manifest::Manifest`].
//!
//! - [`lock`]: one run per directory.
//! - [`files`]: atomic writes and file digests.
//! - [`manifest`]: `manifest.json` and its ledger.
//! - [`digest`]: SHA-256 in hex.
//! - [`signature`]: `manifest.json.sig`, an SSH signature of the manifest.
//!
//! It knows nothing of the API or of what the reports say.

pub(crate) mod digest;
pub mod files;
pub(crate) mod lock;
pub(crate) mod manifest;
pub(crate) mod signature;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use lock::{LockError, RunLock};
use manifest::{Manifest, ManifestError};

/// `images.csv`: one row per unique id.
pub const IMAGES_CSV: &str = "images.csv";
/// `images.jsonl`: one JSON line per unique id.
pub const IMAGES_JSONL: &str = "images.jsonl";
/// `summary.json`: the totals and counts.
pub const SUMMARY_JSON: &str = "summary.json";
/// `summary.csv`: the counts as one long table.
pub const SUMMARY_CSV: &str = "summary.csv";
/// `rejected.csv`: input rows that were not used.
pub const REJECTED_CSV: &str = "rejected.csv";
/// `changes.csv`: what changed since an earlier run.
pub const CHANGES_CSV: &str = "changes.csv";
/// `summary.html`: the one-page summary.
pub const SUMMARY_HTML: &str = "summary.html";
/// `audit.xlsx`: the workbook (Summary, Blocked, Changes, All images).
pub const AUDIT_XLSX: &str = "audit.xlsx";
/// `manifest.json`: lists every other report file.
pub const MANIFEST_JSON: &str = "manifest.json";
/// `manifest.sha256`: the manifest's own digest, in `sha256sum` form;
/// written last.
pub const MANIFEST_SHA256: &str = "manifest.sha256";
/// `manifest.json.sig`: the manifest's SSH signature (`run --sign-key`),
/// written after it.
pub const MANIFEST_SIG: &str = "manifest.json.sig";
/// `notifications.json`: how each `--notify` delivery went; written after
/// the manifest (whose digest the messages carry), so not listed in it.
pub const NOTIFICATIONS_JSON: &str = "notifications.json";
/// The journal of settled ids, while a run is unfinished.
pub const JOURNAL: &str = "journal.jsonl";
/// Found images whose `GetMediaAuditResult` is still to be asked, while a
/// run is unfinished (`run::awaiting`).
pub const AWAITING: &str = "journal.awaiting.jsonl";
/// The lock file (held while a run writes here).
pub const LOCK: &str = ".vod-image-audit.lock";
/// Outcomes cut short by a stop, waiting for the reports.
pub const UNSETTLED: &str = ".unsettled.jsonl.tmp";
/// Written and removed once to check the directory can be written.
pub const WRITE_PROBE: &str = ".write-probe";

/// `--all-images`: the account's images as listed, the run's input.
pub const INVENTORY_CSV: &str = "inventory.csv";
/// `--all-images`: the listing journal, which a stopped listing resumes from.
pub const INVENTORY_JOURNAL: &str = "inventory.jsonl";

/// Every report file a run may write; the manifest and its digest last.
pub const REPORT_FILES: &[&str] = &[
    INVENTORY_CSV,
    IMAGES_CSV,
    CHANGES_CSV,
    SUMMARY_HTML,
    SUMMARY_CSV,
    REJECTED_CSV,
    IMAGES_JSONL,
    SUMMARY_JSON,
    AUDIT_XLSX,
    MANIFEST_JSON,
    MANIFEST_SHA256,
    MANIFEST_SIG,
    NOTIFICATIONS_JSON,
];

/// Every file of a run's own state.
pub const STATE_FILES: &[&str] = &[LOCK, JOURNAL, AWAITING, UNSETTLED, INVENTORY_JOURNAL];

/// Why a directory cannot be used for a run.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{dir} already holds a complete run: choose another --out, or pass --force to replace it")]
    Finished { dir: String },
    #[error("{dir} holds a manifest that cannot be read ({why}): choose another --out, or pass --force to replace it")]
    BadManifest { dir: String, why: String },
    #[error("cannot create the output directory {dir}: {reason}")]
    Create { dir: String, reason: String },
    #[error("--force: cannot remove {path}: {reason}")]
    Remove { path: String, reason: String },
    #[error("cannot write in the output directory {dir}: {reason}")]
    NotWritable { dir: String, reason: String },
    #[error("{0}")]
    Link(String),
    #[error("{dir} holds files vod-image-audit did not write ({names}): choose an empty or new --out, or pass --force to write the reports beside them (files of the same names are replaced)")]
    Foreign { dir: String, names: String },
}

/// A run directory taken for a run: held locked until dropped. Dropped, it
/// leaves no lock file behind, and a directory it created that stayed
/// empty (a run that failed to start) is removed.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    lock: Option<RunLock>,
    created: bool,
    leftover: Option<Manifest>,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        drop(self.lock.take());
        if self.created {
            // Fails, as it should, unless the directory is empty.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

impl RunDir {
    /// Creates the directory, takes its lock, refuses a complete run (unless
    /// `force`, when that run's files are removed), and makes sure the
    /// directory can be written: all before any call is made. A manifest that
    /// cannot be read counts as a complete run: it is never replaced unasked.
    pub fn open(out: &Path, force: bool) -> Result<RunDir, RunDirError> {
        let dir = out.display().to_string();
        let created = !out.exists();
        std::fs::create_dir_all(out).map_err(|e| RunDirError::Create { dir: dir.clone(), reason: e.to_string() })?;
        let run_dir = Self::take(out, force, dir);
        if run_dir.is_err() && created {
            let _ = std::fs::remove_dir(out);
        }
        run_dir.map(|(path, lock, leftover)| RunDir { path, lock: Some(lock), created, leftover })
    }

    fn take(out: &Path, force: bool, dir: String) -> Result<(PathBuf, RunLock, Option<Manifest>), RunDirError> {
        for name in STATE_FILES.iter().chain(REPORT_FILES) {
            files::refuse_symlink(&out.join(name)).map_err(|e| RunDirError::Link(e.to_string()))?;
        }
        let lock = RunLock::acquire(out)?;
        // A run's journal, or the listing of an --all-images run that has
        // not got to its audit yet.
        let started =
            out.join(MANIFEST_JSON).exists() || out.join(JOURNAL).exists() || out.join(INVENTORY_JOURNAL).exists();
        if !started && !force {
            let foreign =
                foreign_files(out).map_err(|e| RunDirError::NotWritable { dir: dir.clone(), reason: e.to_string() })?;
            if !foreign.is_empty() {
                return Err(RunDirError::Foreign { dir, names: foreign.join(", ") });
            }
        }
        // What a run killed while writing left (it holds the lock no more).
        let removed = files::remove_temp_files(out)
            .map_err(|e| RunDirError::NotWritable { dir: dir.clone(), reason: e.to_string() })?;
        if !removed.is_empty() {
            tracing::debug!("removed temporary files a killed run left: {removed:?}");
        }
        let mut leftover = None;
        let finished = match Manifest::read(out) {
            // Killed between the rename of manifest.json and that of
            // manifest.sha256: the journal still holds every answer and
            // the run is resumed (its reports and manifest written again).
            Ok(m) if m.complete && out.join(JOURNAL).exists() && !sealed(out) => false,
            // Killed after the manifest was sealed, before the journal was
            // removed: complete; the caller finishes it.
            Ok(m) if m.complete && out.join(JOURNAL).exists() && !force => {
                leftover = Some(m);
                false
            }
            Ok(m) => m.complete,
            Err(ManifestError::Absent { .. }) => false,
            Err(e) if force => {
                tracing::debug!("--force replaces an unreadable manifest: {e}");
                true
            }
            Err(e) => return Err(RunDirError::BadManifest { dir, why: e.to_string() }),
        };
        if finished && !force {
            return Err(RunDirError::Finished { dir });
        }
        if finished {
            for name in REPORT_FILES.iter().chain([&JOURNAL, &AWAITING, &INVENTORY_JOURNAL]) {
                let path = out.join(name);
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(RunDirError::Remove { path: path.display().to_string(), reason: e.to_string() })
                    }
                    _ => {}
                }
            }
        }
        files::create_temp(out, WRITE_PROBE.trim_start_matches('.'), files::PRIVATE_MODE)
            .and_then(|(mut f, probe)| {
                let written = f.write_all(b"probe");
                std::fs::remove_file(&probe)?;
                written
            })
            .map_err(|e| RunDirError::NotWritable { dir, reason: e.to_string() })?;
        Ok((out.to_owned(), lock, leftover))
    }

    /// Gives up a run that settled nothing (its first call refused for
    /// good): removes the files it made, and the directory itself if the
    /// run created it, so that nothing is left to resume or to prune.
    pub fn abandon(mut self) -> io::Result<()> {
        for name in STATE_FILES.iter().filter(|n| **n != LOCK) {
            match std::fs::remove_file(self.path.join(name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        drop(self.lock.take());
        if self.created {
            std::fs::remove_dir(&self.path)?;
            self.created = false;
        }
        Ok(())
    }

    /// A complete run whose journal is still beside it (a kill after its
    /// manifest was sealed), found by [`RunDir::open`]: its manifest.
    pub fn completed_earlier(&self) -> Option<&Manifest> {
        self.leftover.as_ref()
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file in it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The lock file, for a process that must exit at once to remove.
    pub fn lock_path(&self) -> Option<&Path> {
        self.lock.as_ref().map(RunLock::path)
    }
}

/// Whether `manifest.sha256` in `dir` holds the digest of its manifest.json.
fn sealed(dir: &Path) -> bool {
    match (Manifest::recorded_digest(dir), files::digest_file(&dir.join(MANIFEST_JSON))) {
        (Ok(Some(recorded)), Ok((_, actual))) => recorded == actual,
        _ => false,
    }
}

/// The entries of `dir` that are not a run's own: at most a few, sorted.
fn foreign_files(dir: &Path) -> io::Result<Vec<String>> {
    const SHOWN: usize = 5;
    let mut names: Vec<String> = Vec::new();
    let mut more = 0usize;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name == LOCK || files::is_temp_name(&name) {
            continue;
        }
        names.push(name);
    }
    names.sort();
    if names.len() > SHOWN {
        more = names.len() - SHOWN;
        names.truncate(SHOWN);
    }
    if more > 0 {
        names.push(format!("and {more} more"));
    }
    Ok(names)
}

/// The input a run was made from, as `--compare-with auto` matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputKey<'a> {
    /// The input's path as given (`-` for stdin), as the manifest records it.
    pub path: &'a str,
    /// The id column.
    pub id_column: &'a str,
}

/// What `--compare-with` found.
#[derive(Debug, Default)]
pub struct Previous {
    /// The run to compare with, if any.
    pub dir: Option<PathBuf>,
    /// `auto`: newer runs of the same input passed over, and why (they did
    /// not pass `check`).
    pub passed_over: Vec<(PathBuf, String)>,
}

/// Why `--compare-with DIR` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PreviousError {
    /// Not a complete run with an `images.csv`.
    #[error("{0}")]
    NotComparable(String),
    /// A complete run whose files do not match its manifest.
    #[error("{0}")]
    NotVerified(String),
}

/// `--compare-with`: `auto` is the latest complete run in the same parent
/// directory as `out` (by its manifest's `finished`) made from the same
/// input (the same path and id column, as restic picks a parent snapshot
/// by its paths) that passes `check`; a path must be a complete run whose
/// manifest lists an `images.csv`, and pass `check`. `check` verifies a run
/// before it is read (it lives above this module: `report::verify`).
pub fn find_previous(
    arg: &str,
    out: &Path,
    input: &InputKey<'_>,
    check: &dyn Fn(&Path) -> Result<(), String>,
) -> Result<Previous, PreviousError> {
    let comparable = |dir: &Path| -> Result<Manifest, String> {
        let m = Manifest::read(dir).map_err(|e| e.to_string())?;
        if !m.complete {
            return Err("the run is incomplete".into());
        }
        if !m.lists(IMAGES_CSV) || !dir.join(IMAGES_CSV).exists() {
            return Err("the run has no images.csv".into());
        }
        Ok(m)
    };
    if arg != "auto" {
        let dir = PathBuf::from(arg);
        if let Err(why) = comparable(&dir) {
            return Err(PreviousError::NotComparable(format!(
                "--compare-with {arg}: not a complete run with an images.csv ({why}; run `vod-image-audit verify {arg}`)"
            )));
        }
        check(&dir).map_err(|why| PreviousError::NotVerified(format!("--compare-with {arg}: {why}")))?;
        return Ok(Previous { dir: Some(dir), passed_over: Vec::new() });
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let me = std::fs::canonicalize(out).ok();
    let mut candidates: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let dir = entry.path();
        if std::fs::canonicalize(&dir).ok() == me {
            continue;
        }
        if let Ok(m) = comparable(&dir) {
            if m.input.path == input.path && m.input.id_column == input.id_column {
                candidates.push((m.finished, dir));
            }
        }
    }
    // Newest first; the first that verifies is the one.
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    let mut found = Previous::default();
    for (_, dir) in candidates {
        match check(&dir) {
            Ok(()) => {
                found.dir = Some(dir);
                break;
            }
            Err(why) => found.passed_over.push((dir, why)),
        }
    }
    Ok(found)
}
