//! The `run` command, start to finish. [`run_audit`] is the table of
//! contents; each phase is a module:
//!
//! - [`preflight`]: everything that can refuse the run, before the run
//!   directory is touched (paths, earlier runs, the service and the key);
//! - [`resume`]: the journal read back, `--retry-failed`'s records copied in,
//!   what is left to call;
//! - [`call`]: the calls, each outcome shown and journaled beside them;
//! - [`reporting`]: the report pass, off the async runtime;
//! - [`verdict`]: the exit code, a pure function of what happened;
//! - [`seal`]: the manifest, its signature, the metrics, the journals gone;
//! - [`announce`]: what is printed about it.
//!
//! It owns the order of these steps; each step's logic lives in `rundir`,
//! `run` and `report`.

mod announce;
mod call;
mod preflight;
mod reporting;
mod resume;
mod seal;
mod verdict;

use std::time::SystemTime;

use super::error::{CmdError, Exit};
use super::settings::{ApiTarget, RunSettings};
use super::signals::Phase;
use crate::api::client::VodClient;
use crate::domain::record::{ImageRecord, OutcomeKind};
use crate::run::input::{IdList, InputSource};
use crate::run::journal::Pins;
use crate::run::stop::{StopHandle, StopReason};
use crate::rundir::files::FileDigest;
use crate::rundir::manifest::ManifestInventory;
use crate::rundir::{self, RunDir};

/// The audit, from validated settings and input to reports and exit code.
pub(crate) async fn run_audit(
    settings: &RunSettings,
    ids: Option<IdList>,
    mut target: ApiTarget,
    stop: StopHandle,
    phase: Phase,
) -> Result<Exit, CmdError> {
    let earlier = preflight::check_files_and_earlier_runs(settings, ids.as_ref())?;
    let client = preflight::connect(&mut target).await?;
    let dir = RunDir::open(&settings.out, settings.force)?;
    if let Some(lock) = dir.lock_path() {
        phase.holds_lock(lock);
    }
    if let Some(m) = dir.completed_earlier() {
        let pins = ids.as_ref().map(|i| pins(settings, &target, &client, &i.sha256));
        return seal::finish_leftover(&dir, m, settings, pins);
    }
    let started = SystemTime::now();
    let (ids, inventory) = list(settings, ids, &client, &dir, &stop).await?;
    let resumed = resume::open(settings, &dir, &ids, &pins(settings, &target, &client, &ids.sha256), earlier.retry_of)?;
    let called = call::call(settings, client, &dir, &ids, resumed, &stop).await?;
    if let Some(StopReason::Fatal(e)) = stop.reason().filter(|_| called.resumed == 0) {
        if e.is_about_the_key() && !settled_any(&dir) {
            drop(called.journal);
            return Err(abandon(dir, &target, &e));
        }
    }

    phase.reporting();
    let reason = stop.reason();
    let facts =
        reporting::facts(settings, &target, &dir, &ids, called.endpoint, started, earlier.compare_with.as_deref());
    let stop_reason = reason.as_ref().map(StopReason::describe);
    let journal = called.journal.path().to_owned();
    let reported =
        reporting::write(settings, &dir, ids, journal, earlier.compare_with.clone(), facts, stop_reason).await?;
    drop(called.journal);
    let summary = &reported.summary;
    if summary.ledger.unaccounted > 0 {
        // Never expected: every id yields an outcome. If it happens, say so loudly.
        eprintln!("vod-image-audit: error: ids unaccounted for: {:?}", summary.ledger.unaccounted_ids);
    }
    let inventory_complete = inventory.as_ref().map(|(i, _)| i.complete);
    let verdict::Decision { exit, alerted } =
        verdict::verdict(reason.as_ref(), summary, inventory_complete, verdict::Rules::of(settings));

    let sealed = seal::seal(
        settings,
        &dir,
        &reported,
        seal::Seal {
            target: &target,
            previous: earlier.compare_with,
            resumed: called.resumed,
            retry_of: called.retry_of,
            counters: &called.counters,
            inventory,
            started,
            exit,
        },
    )?;
    announce::end(&announce::Ending {
        settings,
        target: &target,
        summary,
        sealed: &sealed,
        stop: reason.as_ref(),
        exit,
        alerted: &alerted,
    });
    super::notify::after_run(&settings.compliance.notify, summary, exit, &alerted, dir.path(), &sealed.sha256).await;
    sealed.metrics?;
    Ok(exit)
}

/// Whether this directory holds an image found or missing (in the journal,
/// or waiting for its moderation call): something a rerun would resume.
fn settled_any(dir: &RunDir) -> bool {
    let settled = |name: &str, skip: usize| {
        let Ok(f) = std::fs::File::open(dir.join(name)) else { return false };
        std::io::BufRead::lines(std::io::BufReader::new(f)).skip(skip).map_while(Result::ok).any(|line| {
            serde_json::from_str::<ImageRecord>(&line)
                .is_ok_and(|r| matches!(r.outcome, OutcomeKind::Found | OutcomeKind::Missing))
        })
    };
    settled(rundir::JOURNAL, 1) || settled(rundir::AWAITING, 0)
}

/// A run whose first calls were refused for the key or the signature (a key
/// without VOD, revoked between STS and VOD, a secret that does not match)
/// and that settled nothing: a mistake in the configuration, not an outage. Nothing is left
/// behind (there is nothing to resume) and the exit code is 2, as when STS
/// refuses the key before the run directory exists.
fn abandon(dir: RunDir, target: &ApiTarget, e: &crate::api::error::ApiError) -> CmdError {
    let shown = dir.path().display().to_string();
    match dir.abandon() {
        Ok(()) => CmdError::usage(format!(
            "the key was refused by the first call ({}): {e}; {}; nothing was written",
            target.credentials.source,
            e.advice()
        )),
        Err(io) => CmdError::disk(format!("removing the files of the refused run in {shown}"), io),
    }
}

/// What the journal pins the run to: a journal of another input, endpoint,
/// account or mode is not resumed.
fn pins(settings: &RunSettings, target: &ApiTarget, client: &VodClient, input_sha256: &str) -> Pins {
    Pins {
        input_sha256: input_sha256.to_owned(),
        endpoint: Some(client.endpoint().as_str().to_owned()),
        region: Some(target.region.clone()),
        account: target.identity.as_ref().map(|i| i.account_id.clone()),
        api: Some(settings.audit.api.as_str().to_owned()),
        audit_source: Some(settings.audit.audit_source.as_str().to_owned()),
    }
}

/// The ids: those read from `--input`, or, for `--all-images`, the
/// account's inventory listed into the run directory.
async fn list(
    settings: &RunSettings,
    ids: Option<IdList>,
    client: &VodClient,
    dir: &RunDir,
    stop: &StopHandle,
) -> Result<(IdList, Option<(ManifestInventory, FileDigest)>), CmdError> {
    match (ids, &settings.input) {
        (Some(ids), _) => Ok((ids, None)),
        (None, InputSource::AllImages(filters)) => {
            let (ids, listed) = super::listing::list_for_run(settings, *filters, client, dir.path(), stop).await?;
            Ok((ids, Some(listed)))
        }
        (None, _) => Err(CmdError::internal(anyhow::anyhow!("no ids and no listing"))),
    }
}
