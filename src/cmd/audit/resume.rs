//! Where the run starts from: the journal read back (a resumed run calls
//! only what it has not settled), `--retry-failed`'s earlier records copied
//! into a fresh journal, and the found images still waiting for their
//! moderation call.

use std::collections::HashSet;
use std::path::Path;

use super::super::error::CmdError;
use super::super::settings::RunSettings;
use crate::domain::record::{ImageRecord, OutcomeKind};
use crate::run::awaiting::AwaitingLog;
use crate::run::input::{Fingerprint, IdList};
use crate::run::journal::{Journal, Pins};
use crate::run::outcome::Outcome;
use crate::rundir::manifest::{Manifest, RetryOf};
use crate::rundir::{self, RunDir};

/// The run's journal and what is left to call.
pub(super) struct Resumed {
    pub journal: Journal,
    /// Fingerprints of the ids settled already (or waiting for moderation only).
    pub done: HashSet<u128>,
    pub fingerprint: Fingerprint,
    pub awaiting_log: AwaitingLog,
    /// Found images of an earlier attempt whose moderation call is still to come.
    pub awaiting: Vec<Outcome>,
    /// Ids settled before this attempt (journal, or `--retry-failed`'s run).
    pub resumed: usize,
    pub retry_of: Option<RetryOf>,
    /// A fresh directory whose journal `--retry-failed`'s run started.
    pub seeded: bool,
    /// A torn last journal line was cut off.
    pub torn: bool,
}

impl Resumed {
    /// Ids still to call, in input order.
    pub(super) fn todo<'a>(&'a self, ids: &'a IdList) -> impl Iterator<Item = String> + 'a {
        ids.ids.iter().filter(|id| !self.done.contains(&self.fingerprint.of(id))).map(str::to_owned)
    }

    /// Calls still to make: the ids to call and those waiting for moderation.
    pub(super) fn todo_count(&self, ids: &IdList) -> usize {
        self.todo(ids).count() + self.awaiting.len()
    }
}

/// Opens (or resumes) the journal in `dir` and works out what is left.
pub(super) fn open(
    settings: &RunSettings,
    dir: &RunDir,
    ids: &IdList,
    pins: &Pins,
    retry: Option<Manifest>,
) -> Result<Resumed, CmdError> {
    let fingerprint = Fingerprint::default();
    let mut done: HashSet<u128> = HashSet::new();
    let mut duplicates = 0u64;
    let (mut journal, recovered) = Journal::open(dir.path(), pins, settings.force, |o| {
        if !done.insert(fingerprint.of(&o.image_id)) {
            duplicates += 1;
        }
    })?;
    if duplicates > 0 {
        // Whatever --quiet says: a journal the tool wrote never holds an id twice.
        eprintln!(
            "vod-image-audit: {} holds {duplicates} later duplicate outcome(s) of ids it had already settled; the first of each is kept, the duplicates are ignored",
            journal.path().display()
        );
    }
    if let Some(why) = &recovered.restarted {
        remove_the_old_runs_reports(dir)?;
        eprintln!("vod-image-audit: --force: starting the run over ({why})");
    }
    let mut resumed = recovered.count - duplicates as usize;
    let mut retry_of = None;
    let seeded = recovered.count == 0 && settings.retry_failed.is_some();
    if let (Some(old), Some(m)) = (&settings.retry_failed, retry) {
        let of = retry_of_manifest(old, m);
        if seeded {
            resumed = seed_from(old, &of, ids, &mut journal, |id| {
                done.insert(fingerprint.of(id));
            })?;
        }
        retry_of = Some(of);
    }
    let (awaiting_log, awaiting) = AwaitingLog::open(dir.path(), |id| done.contains(&fingerprint.of(id)))
        .map_err(|e| CmdError::disk(format!("reading {}", dir.join(rundir::AWAITING).display()), e))?;
    for o in &awaiting {
        done.insert(fingerprint.of(&o.image_id));
    }
    Ok(Resumed { journal, done, fingerprint, awaiting_log, awaiting, resumed, retry_of, seeded, torn: recovered.torn })
}

/// `--force` over another run's journal: the old run's reports go with it,
/// so none is left for the new run's manifest not to list.
fn remove_the_old_runs_reports(dir: &RunDir) -> Result<(), CmdError> {
    for name in rundir::REPORT_FILES.iter().filter(|n| **n != rundir::INVENTORY_CSV) {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CmdError::disk(format!("--force: removing {}", dir.join(name).display()), e))
            }
            _ => {}
        }
    }
    Ok(())
}

/// What the manifest records of the run a `--retry-failed` run completes.
fn retry_of_manifest(old: &Path, m: Manifest) -> RetryOf {
    RetryOf { dir: old.display().to_string(), started: m.started, finished: m.finished, input_sha256: m.input.sha256 }
}

/// Copies the found and missing records of the earlier run `old` into
/// `journal`, as if this run had settled them: only its failed and never
/// attempted ids are called again, and the reports cover the whole input.
/// Returns how many were copied.
fn seed_from(
    old: &Path,
    of: &RetryOf,
    ids: &IdList,
    journal: &mut Journal,
    mut seen: impl FnMut(&str),
) -> Result<usize, CmdError> {
    if of.input_sha256 != ids.sha256 {
        return Err(CmdError::usage(format!(
            "--retry-failed {}: that run read another input (SHA-256 {}, this one is {}); give it the same --input",
            old.display(),
            of.input_sha256,
            ids.sha256
        )));
    }
    let path = old.join(rundir::IMAGES_JSONL);
    let text = std::fs::read_to_string(&path).map_err(|e| CmdError::usage(format!("{}: {e}", path.display())))?;
    let mut kept = 0;
    for (n, line) in text.lines().enumerate() {
        let r: ImageRecord = serde_json::from_str(line)
            .map_err(|e| CmdError::usage(format!("{} line {}: not a record: {e}", path.display(), n + 1)))?;
        if matches!(r.outcome, OutcomeKind::Found | OutcomeKind::Missing) {
            // The settled answer only: tonight's pass fills the review columns anew.
            let r = ImageRecord { review_decision: None, reviewer: None, reviewed_at: None, blocked_since: None, ..r };
            journal.append(&r).map_err(|e| CmdError::disk(format!("writing {}", journal.path().display()), e))?;
            seen(&r.image_id);
            kept += 1;
        }
    }
    journal.sync().map_err(|e| CmdError::disk(format!("syncing {}", journal.path().display()), e))?;
    Ok(kept)
}
