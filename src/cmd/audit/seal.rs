//! Sealing a run: the manifest (every file's digest, the ledger, the
//! settings, the calls), its signature, the metrics file, and then, for a
//! complete run, the journals go. The order is what makes a kill at any
//! point safe: while the journal is there the same command can finish the
//! run ([`finish_leftover`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::super::error::{CmdError, Exit};
use super::super::settings::{ApiTarget, RunSettings};
use super::reporting::Reported;
use crate::report::pass::RunFacts;
use crate::report::summary::Summary;
use crate::run::counters::Counters;
use crate::run::input::IdList;
use crate::run::journal::Pins;
use crate::rundir::files::{sync_dir, FileDigest};
use crate::rundir::manifest::{ActionCalls, Manifest, ManifestCalls, ManifestInput, ManifestInventory, RetryOf};
use crate::rundir::{self, signature, RunDir};

/// What the manifest records besides the reports.
pub(super) struct Seal<'a> {
    pub target: &'a ApiTarget,
    pub previous: Option<PathBuf>,
    pub resumed: usize,
    pub retry_of: Option<RetryOf>,
    pub counters: &'a Counters,
    pub inventory: Option<(ManifestInventory, FileDigest)>,
    pub started: SystemTime,
    pub exit: Exit,
}

/// The sealed manifest, its digest, and how writing the metrics file went
/// (reported last: a metrics file that cannot be written does not unseal
/// the run).
pub(super) struct Sealed {
    pub manifest: Manifest,
    pub sha256: String,
    pub metrics: Result<(), CmdError>,
}

/// Writes and signs the manifest, the metrics file, and removes the
/// journals of a complete run.
pub(super) fn seal(settings: &RunSettings, dir: &RunDir, reported: &Reported, s: Seal<'_>) -> Result<Sealed, CmdError> {
    let Reported { summary, files, facts, ids } = reported;
    let calls = calls(s.counters);
    let mut manifest = manifest(
        settings,
        s.target,
        facts,
        ids,
        summary,
        s.previous,
        s.resumed,
        s.retry_of,
        calls,
        files.clone(),
        s.exit,
    );
    if let Some((inv, digest)) = s.inventory {
        // The digest taken as the listing wrote it.
        manifest.files.insert(0, digest);
        manifest.inventory = Some(inv);
    }
    let digest = manifest
        .write(dir.path())
        .map_err(|e| CmdError::disk(format!("writing {}", dir.join(rundir::MANIFEST_JSON).display()), e))?;
    if let Some(key) = &settings.compliance.sign_key {
        // A crash before this line leaves a manifest naming a key and no
        // signature, with the journal still there: the same command signs
        // it (finish_leftover); `verify` says it is missing.
        signature::sign_manifest(dir.path(), key)
            .map_err(|e| CmdError::disk(format!("writing {}", dir.join(rundir::MANIFEST_SIG).display()), e))?;
    }
    // Before the journal goes: a kill from here on leaves a complete run
    // with its journal, which the same command finishes (finish_leftover).
    let metrics =
        super::super::metrics::after_run(settings, summary, &manifest, &digest.sha256, s.exit, dir.path(), s.started);
    if summary.complete {
        // The reports now hold everything the journal did. The journal
        // goes last: while it is there, the run can be finished.
        remove_journals(dir.path());
    }
    Ok(Sealed { manifest, sha256: digest.sha256, metrics })
}

/// The calls made, in all and per action (those that made none left out).
fn calls(counters: &Counters) -> ManifestCalls {
    ManifestCalls {
        total: counters.calls.load(Ordering::Relaxed),
        throttled: counters.throttled.load(Ordering::Relaxed),
        retries: counters.retries.load(Ordering::Relaxed),
        by_action: crate::run::lanes::Action::ALL
            .iter()
            .map(|a| {
                let c = counters.of(*a);
                (
                    a.as_str().to_owned(),
                    ActionCalls {
                        calls: c.calls.load(Ordering::Relaxed),
                        throttled: c.throttled.load(Ordering::Relaxed),
                        ids: c.ids.load(Ordering::Relaxed),
                    },
                )
            })
            .filter(|(_, c)| c.calls > 0)
            .collect(),
        batch_fallbacks: counters.batch_fallbacks.load(Ordering::Relaxed),
    }
}

/// Removes a complete run's journals (the listing's first: the main one's
/// presence is what marks a complete run not yet cleaned up).
pub(super) fn remove_journals(dir: &Path) {
    crate::rundir::files::crash_point("unlink inventory.jsonl");
    let _ = std::fs::remove_file(dir.join(rundir::INVENTORY_JOURNAL));
    crate::rundir::files::crash_point("unlink journal.awaiting.jsonl");
    let _ = std::fs::remove_file(dir.join(rundir::AWAITING));
    crate::rundir::files::crash_point("unlink journal.jsonl");
    let _ = std::fs::remove_file(dir.join(rundir::JOURNAL));
    let _ = sync_dir(dir);
}

/// A complete run, sealed, with its journal still beside it: the run was
/// killed after its manifest was sealed, before it removed the journal. The
/// same command finishes it: the journal goes and the run's own exit code
/// is the answer. Another command (another input or configuration) is told
/// the directory holds a complete run, as for any complete run.
pub(super) fn finish_leftover(
    dir: &RunDir,
    m: &Manifest,
    settings: &RunSettings,
    pins: Option<Pins>,
) -> Result<Exit, CmdError> {
    let same = match (crate::run::journal::read_pins(dir.path()), pins) {
        (Some(old), Some(now)) => old.input_sha256 == now.input_sha256 && old.differences(&now).is_empty(),
        (Some(old), None) => {
            old.differences(&Pins { input_sha256: old.input_sha256.clone(), ..Pins::default() }).is_empty()
        }
        (None, _) => false,
    };
    // Killed between the manifest and its signature: the same key signs it.
    if let Some(key) = settings
        .compliance
        .sign_key
        .as_ref()
        .filter(|k| same && m.signing_key.as_deref() == Some(k.fingerprint.as_str()))
    {
        if !dir.join(rundir::MANIFEST_SIG).exists() {
            signature::sign_manifest(dir.path(), key)
                .map_err(|e| CmdError::disk(format!("writing {}", dir.join(rundir::MANIFEST_SIG).display()), e))?;
        }
    }
    remove_journals(dir.path());
    let exit = Exit::from_code(m.exit_code)
        .filter(|_| same)
        .ok_or_else(|| CmdError::from(rundir::RunDirError::Finished { dir: settings.out.display().to_string() }))?;
    eprintln!(
        "vod-image-audit: {} already holds this run, complete (it was stopped before removing its journal, now removed); report in {}{}",
        settings.out.display(),
        settings.out.display(),
        if settings.metrics_file.is_some() { "; --metrics-file was not rewritten" } else { "" }
    );
    Ok(exit)
}

/// The manifest of a finished (or stopped) run.
#[allow(clippy::too_many_arguments)]
fn manifest(
    settings: &RunSettings,
    target: &ApiTarget,
    facts: &RunFacts,
    ids: &IdList,
    summary: &Summary,
    previous: Option<PathBuf>,
    resumed_ids: usize,
    retry_of: Option<RetryOf>,
    calls: ManifestCalls,
    files: Vec<FileDigest>,
    exit: Exit,
) -> Manifest {
    Manifest {
        tool: env!("CARGO_PKG_NAME").to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        complete: summary.complete,
        stop_reason: summary.stop_reason.clone(),
        exit_code: exit.code(),
        command_line: settings.argv.clone(),
        region: target.region.clone(),
        endpoint: facts.endpoint.clone(),
        proxy: target.client.proxy.as_ref().map(ToString::to_string),
        credentials_source: target.credentials.source.clone(),
        account_id: target.identity.as_ref().map(|i| i.account_id.clone()),
        identity_arn: target.identity.as_ref().map(|i| i.arn.clone()),
        started: facts.started.clone(),
        finished: facts.finished.clone(),
        ledger: summary.ledger.clone(),
        audit_status_coverage: summary.audit_status_coverage,
        verdict_coverage: summary.verdict_coverage,
        compared_with: previous.map(|p| p.display().to_string()),
        input: ManifestInput {
            path: settings.input.display(),
            bytes: ids.bytes,
            sha256: ids.sha256.clone(),
            id_column: ids.id_column.clone(),
            blank_rows: ids.blank_rows,
            delimiter: crate::run::input::delimiter_name(ids.delimiter).to_owned(),
        },
        resumed_ids,
        retry_of,
        settings: settings.for_manifest(&target.client),
        calls,
        files,
        inventory: None,
        signing_key: settings.compliance.sign_key.as_ref().map(|k| k.fingerprint.clone()),
        reviews: settings.compliance.reviews.as_ref().map(|l| FileDigest {
            name: l.file.clone(),
            bytes: l.bytes,
            sha256: l.sha256.clone(),
        }),
    }
}
