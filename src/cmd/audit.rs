//! The `run` command, start to finish: take the run directory, read back
//! the journal, call every id that is not settled yet, then the report pass
//! and the manifest, and the exit code that says how it went.
//!
//! It owns the order of these steps and what is printed about them; each
//! step's logic lives in `rundir`, `run` and `report`. The journal writes
//! and the report pass run off the async runtime, so a slow disk never
//! stalls the calls and a signal is always heard.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use super::error::{CmdError, Exit};
use super::progress::Progress;
use super::settings::{ApiTarget, RunSettings};
use crate::domain::record::{ImageRecord, OutcomeKind};
use crate::report::pass::{self, Expected, RunFacts};
use crate::report::summary::Summary;
use crate::report::{sort, trend, verdict, verify};
use crate::run::awaiting::AwaitingLog;
use crate::run::engine::{self, AuditSource, Counters, Sink, StopHandle, StopReason};
use crate::run::input::{Fingerprint, IdList};
use crate::run::journal::{Journal, Lines, Pins, Recorder};
use crate::run::outcome::Outcome;
use crate::run::stop::MODERATION_REGION_NOTE;
use crate::rundir::files::{open_private, sync_dir, FileDigest, Private};
use crate::rundir::manifest::{ActionCalls, Manifest, ManifestCalls, ManifestInput, RetryOf};
use crate::rundir::{self, signature, PreviousError, RunDir};

/// Where a run is, for the signal handler: while the reports are written a
/// signal quits at once (the journal still holds everything, so the run
/// resumes); before, the first signal lets the calls in flight finish.
#[derive(Clone, Default)]
pub struct Phase {
    reporting: Arc<AtomicBool>,
    /// The run's lock file, removed by a signal that quits at once.
    lock: Arc<std::sync::OnceLock<PathBuf>>,
}

impl Phase {
    fn reporting(&self) {
        self.reporting.store(true, Ordering::SeqCst);
    }

    fn is_reporting(&self) -> bool {
        self.reporting.load(Ordering::SeqCst)
    }

    fn holds_lock(&self, path: &std::path::Path) {
        let _ = self.lock.set(path.to_owned());
    }

    /// Removes the lock file before a quit that skips every destructor.
    fn release(&self) {
        if let Some(p) = self.lock.get() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Listens for SIGINT and SIGTERM for the life of the process.
pub fn spawn_signal_listener(stop: StopHandle, phase: Phase) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return;
        };
        // SIGINT or SIGTERM.
        macro_rules! next_signal {
            () => {{
                #[cfg(unix)]
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                #[cfg(not(unix))]
                let _ = tokio::signal::ctrl_c().await;
            }};
        }
        next_signal!();
        if !phase.is_reporting() {
            eprintln!(
                "vod-image-audit: stopping: waiting for the calls in flight, then writing the report (run again to resume; a second signal quits at once)"
            );
            stop.stop(StopReason::Interrupted);
            next_signal!();
        }
        // Every settled id is already in the journal: quitting now loses nothing.
        eprintln!("vod-image-audit: quitting at once; run the same command again to resume");
        phase.release();
        std::process::exit(i32::from(Exit::Interrupted.code()));
    });
}

/// The audit's sink: the progress display, then the recorder thread.
struct Settle<'a> {
    progress: &'a mut Progress,
    recorder: &'a Recorder,
    /// Settled, not yet handed to the recorder: their journal lines.
    held: Lines,
    /// Found images whose moderation call is still to come.
    awaiting: &'a mut AwaitingLog,
}

impl Sink for Settle<'_> {
    fn settle(&mut self, o: Outcome) -> Result<(), String> {
        self.progress.record(&o);
        let cut_short = o.cut_short;
        self.held
            .push(&o.record(), cut_short)
            .map_err(|e| format!("an outcome that cannot be written as JSON: {e}"))?;
        // A write that failed stops the run as soon as the next outcome
        // settles, as when each was handed over on its own.
        self.recorder.failure().map_or(Ok(()), |e| Err(e.to_owned()))
    }

    async fn flush(&mut self) -> Result<(), String> {
        let lines = std::mem::replace(&mut self.held, Lines::with_capacity(engine::HAND_ON_EVERY));
        self.recorder.record(lines).await
    }

    fn awaiting(&mut self, o: &Outcome) -> Result<(), String> {
        self.awaiting.append(o).map_err(|e| format!("{} could not be written: {e}", rundir::AWAITING))
    }
}

/// The audit, from validated settings and input to reports and exit code.
pub async fn run_audit(
    settings: &RunSettings,
    ids: Option<IdList>,
    mut target: ApiTarget,
    stop: StopHandle,
    phase: Phase,
) -> Result<Exit, CmdError> {
    // Everything that can refuse the run is checked before the directory is
    // touched, so a failed start leaves nothing behind.
    if let crate::run::input::InputSource::Path(input) = &settings.input {
        refuse_a_file_the_run_replaces("--input", input, &settings.out)?;
    }
    if let Some(metrics) = &settings.metrics_file {
        refuse_a_file_the_run_replaces("--metrics-file", metrics, &settings.out)?;
    }
    let input_name = settings.input.display();
    let id_column = ids.as_ref().map_or_else(|| "image_id".to_owned(), |i| i.id_column.clone());
    let key = rundir::InputKey { path: &input_name, id_column: &id_column };
    let previous = match settings.compare_with.as_deref() {
        Some(arg) => {
            let check = |dir: &std::path::Path| {
                verify::earlier_run(dir, &[rundir::IMAGES_CSV], true).map(drop).map_err(|e| e.to_string())
            };
            let found = rundir::find_previous(arg, &settings.out, &key, &check).map_err(|e| match e {
                PreviousError::NotComparable(_) => CmdError::usage(e),
                PreviousError::NotVerified(_) => CmdError::new(Exit::VerifyFailed, e),
            })?;
            // Loud whatever --quiet says: a run passed over may be evidence edited.
            for (dir, why) in &found.passed_over {
                eprintln!("vod-image-audit: --compare-with auto: passing over {}: {why}", dir.display());
            }
            match (&found.dir, arg) {
                _ if settings.quiet => {}
                (Some(dir), "auto") => eprintln!("vod-image-audit: comparing with {}", dir.display()),
                (None, _) => eprintln!(
                    "vod-image-audit: --compare-with auto: no earlier run of this input ({input_name}, column {}) beside {}; nothing is compared",
                    id_column,
                    settings.out.display()
                ),
                _ => {}
            }
            found.dir
        }
        None => None,
    };
    let retry_of_verified = match &settings.retry_failed {
        Some(old) => Some(earlier_for_retry(old, &settings.out)?),
        None => None,
    };
    let client = target.client()?;
    // A host that does not resolve is a mistake in the configuration, not an outage to ride out.
    // Through a proxy the proxy resolves the name: this machine may not.
    if target.client.proxy.is_none() {
        client.endpoint().resolve_host().await.map_err(|e| CmdError::new(Exit::Stopped, anyhow::anyhow!(e)))?;
    }
    client.first_key().await.map_err(|e| target.no_key(&e))?;
    target.identity = match client.caller_identity().await {
        Ok(i) => Some(i),
        // The first connection over TLS: a certificate not trusted is a setting to fix, before any run directory.
        Err(e) if e.is_untrusted_certificate() => return Err(CmdError::usage(e)),
        // STS answered that the key itself is wrong: so would every VOD
        // call. Stopped here, before the run directory exists, there is
        // nothing to resume and nothing to clean up.
        Err(e) if e.class == crate::api::error::ErrorClass::Fatal && e.is_about_the_key() => {
            return Err(CmdError::usage(format!(
                "the key was refused ({}): {e}; nothing was called on VOD and nothing was written",
                target.credentials.source
            )));
        }
        Err(e) => {
            eprintln!(
                "vod-image-audit: GetCallerIdentity failed (the manifest will not name the account): {e}{}",
                e.connection_hint().map_or(String::new(), |h| format!("; {h}"))
            );
            None
        }
    };
    client.check_certificate(true).await.map_err(CmdError::usage)?;
    let dir = RunDir::open(&settings.out, settings.force)?;
    if let Some(lock) = dir.lock_path() {
        phase.holds_lock(lock);
    }
    let pins_for = |input_sha256: &str| Pins {
        input_sha256: input_sha256.to_owned(),
        endpoint: Some(client.endpoint().as_str().to_owned()),
        region: Some(target.region.clone()),
        account: target.identity.as_ref().map(|i| i.account_id.clone()),
        api: Some(settings.audit.api.as_str().to_owned()),
        audit_source: Some(settings.audit.audit_source.as_str().to_owned()),
    };
    if let Some(m) = dir.completed_earlier() {
        return finish_leftover(&dir, m, settings, ids.as_ref().map(|i| pins_for(&i.sha256)));
    }
    let started = SystemTime::now();
    let (ids, inventory) = match (ids, &settings.input) {
        (Some(ids), _) => (ids, None),
        (None, crate::run::input::InputSource::AllImages(filters)) => {
            let (ids, listed) = super::listing::list_for_run(settings, *filters, &client, dir.path(), &stop).await?;
            (ids, Some(listed))
        }
        (None, _) => return Err(CmdError::internal(anyhow::anyhow!("no ids and no listing"))),
    };
    let fingerprint = Fingerprint::default();
    let mut done: std::collections::HashSet<u128> = std::collections::HashSet::new();
    let pins = pins_for(&ids.sha256);
    let mut duplicates = 0u64;
    let (mut journal, recovered) = Journal::open(dir.path(), &pins, settings.force, |o| {
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
        // The old run's reports go with its journal: none may be left for
        // the new run's manifest not to list.
        for name in rundir::REPORT_FILES.iter().filter(|n| **n != rundir::INVENTORY_CSV) {
            match std::fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(CmdError::disk(format!("--force: removing {}", dir.join(name).display()), e))
                }
                _ => {}
            }
        }
        eprintln!("vod-image-audit: --force: starting the run over ({why})");
    }
    let mut resumed = recovered.count - duplicates as usize;
    let mut retry_of = None;
    if let (Some(old), Some(m)) = (&settings.retry_failed, retry_of_verified) {
        let of = retry_of_manifest(old, m);
        if recovered.count == 0 {
            // A fresh directory: the earlier run's settled records start its journal.
            resumed = seed_from(old, &of, &ids, &mut journal, |id| {
                done.insert(fingerprint.of(id));
            })?;
        }
        retry_of = Some(of);
    }
    // Found images of an earlier attempt whose moderation call is still to
    // come: asked that call only.
    let (mut awaiting_log, awaiting) = AwaitingLog::open(dir.path(), |id| done.contains(&fingerprint.of(id)))
        .map_err(|e| CmdError::disk(format!("reading {}", dir.join(rundir::AWAITING).display()), e))?;
    for o in &awaiting {
        done.insert(fingerprint.of(&o.image_id));
    }
    let todo_count = ids.ids.iter().filter(|id| !done.contains(&fingerprint.of(id))).count() + awaiting.len();
    let counters = Arc::new(Counters::default());
    let mut progress = Progress::new(todo_count as u64, settings.progress, settings.quiet, counters.clone());
    if !progress.is_silent() {
        eprintln!(
            "vod-image-audit: {} unique ids ({} rows, {} duplicates, {} rejected) from {} -> {} at {} via {}",
            ids.ids.len(),
            ids.input_rows,
            ids.duplicates,
            ids.rejected.len(),
            settings.input.display(),
            settings.out.display(),
            settings.audit.qps.map_or("no client-side limit of".to_owned(), |q| format!("{q}")) + " calls/s",
            client.endpoint().as_str()
        );
        if let Some(of) = retry_of.as_ref().filter(|_| recovered.count == 0) {
            eprintln!(
                "vod-image-audit: retrying the failed ids of {}: {resumed} ids settled there, {todo_count} to go",
                of.dir
            );
        } else if resumed > 0 || !awaiting.is_empty() {
            eprintln!(
                "vod-image-audit: resuming: {resumed} ids already settled in {}{}, {todo_count} to go{}",
                journal.path().display(),
                if recovered.torn { " (a torn last line was cut off)" } else { "" },
                match awaiting.len() {
                    0 => String::new(),
                    n => format!(" ({n} of them found, waiting only for their GetMediaAuditResult)"),
                }
            );
        }
    }
    // Outcomes cut short by a stop are reported but not journaled (a resumed
    // run calls those ids again); they wait in this file for the reports.
    let unsettled_path = dir.join(rundir::UNSETTLED);
    let spill = open_private(dir.path(), rundir::UNSETTLED, Private::Truncate)
        .map_err(|e| CmdError::disk(format!("creating {}", unsettled_path.display()), e))?;
    let recorder = Recorder::start(journal, spill, unsettled_path.clone())
        .map_err(|e| CmdError::internal(anyhow::anyhow!("starting the journal thread: {e}")))?;
    let todo = ids.ids.iter().filter(|id| !done.contains(&fingerprint.of(id))).map(str::to_owned);
    progress.start_ticker();
    let mut sink = Settle {
        progress: &mut progress,
        recorder: &recorder,
        held: Lines::with_capacity(engine::HAND_ON_EVERY),
        awaiting: &mut awaiting_log,
    };
    engine::audit(&client, todo, awaiting, &settings.audit, counters.clone(), stop.clone(), &mut sink).await;
    progress.finish();
    drop(done);
    let (journal, failed) = recorder.finish().await.map_err(|e| CmdError::disk("finishing the journal", e))?;
    if let Some(e) = failed {
        // Seen here when the last outcomes' writes failed after the calls ended.
        stop.stop(StopReason::Storage(e));
    }
    // Its connections and their buffers (some 35 KB per call that was in
    // flight) go before the reports' sort needs memory, which then reuses
    // theirs: peak memory does not grow with --concurrency.
    let endpoint = client.endpoint().as_str().to_owned();
    drop(client);
    // The connection tasks notice the pool is gone when next polled; let
    // them run and free their buffers.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }

    phase.reporting();
    let reason = stop.reason();
    let facts = RunFacts {
        started: humantime::format_rfc3339_seconds(started).to_string(),
        finished: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        input: settings.input.display(),
        input_sha256: ids.sha256.clone(),
        endpoint,
        region: target.region.clone(),
        account: target.identity.as_ref().map(|i| i.account_id.clone()),
        earlier: {
            let parent = dir.path().parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let (points, left_out) = trend::earlier_runs(parent, dir.path(), settings.trend_runs.saturating_sub(1));
            // Loud whatever --quiet says, as a run passed over for --compare-with.
            for (run, why) in left_out {
                eprintln!("vod-image-audit: the trend leaves out {}: {why}", run.display());
            }
            points
        },
        inventory: matches!(settings.input, crate::run::input::InputSource::AllImages(_)),
        reviews: settings.compliance.reviews.clone(),
        // The earlier run was verified before use; one whose manifest cannot be read now explains nothing.
        settings_changed: previous
            .as_deref()
            .and_then(|p| crate::rundir::manifest::Manifest::read(p).ok())
            .map(|m| {
                crate::report::changes::settings_changes(
                    &m,
                    settings.audit.audit_source.as_str(),
                    settings.audit.api.as_str(),
                    &ids.id_column,
                )
            })
            .unwrap_or_default(),
    };
    let stop_reason = reason.as_ref().map(StopReason::describe);
    let reports = settings.reports.clone();
    let journal_path = journal.path().to_owned();
    let out = dir.path().to_owned();
    let prev = previous.clone();
    let facts_for_pass = facts.clone();
    let (summary, files, ids) = tokio::task::spawn_blocking(move || {
        let sources = [
            sort::Source { path: &journal_path, skip_lines: 1 },
            sort::Source { path: &unsettled_path, skip_lines: 0 },
        ];
        let expected = Expected {
            input_rows: ids.input_rows,
            blank_rows: ids.blank_rows,
            duplicates: ids.duplicates,
            unique_ids: ids.ids.len() as u64,
            rejected: &ids.rejected,
            sorted_ids: ids.ids.sorted(),
        };
        let written =
            pass::write_reports(&out, &reports, expected, &sources, prev.as_deref(), &facts_for_pass, stop_reason);
        if written.is_ok() {
            crate::rundir::files::crash_point("unlink .unsettled.jsonl.tmp");
            let _ = std::fs::remove_file(&unsettled_path);
        }
        written.map(|(summary, files)| (summary, files, ids))
    })
    .await
    .map_err(CmdError::internal)?
    .map_err(|e| CmdError::disk(format!("writing the reports in {}", settings.out.display()), e))?;
    if summary.ledger.unaccounted > 0 {
        // Never expected: every id yields an outcome. If it happens, say so loudly.
        eprintln!("vod-image-audit: error: ids unaccounted for: {:?}", summary.ledger.unaccounted_ids);
    }

    let exit = match &reason {
        _ if summary.ledger.unaccounted > 0 => Exit::Internal,
        Some(
            StopReason::Fatal(_)
            | StopReason::ModerationUnavailable(_)
            | StopReason::RetryBudget(_)
            | StopReason::ServiceDown { .. }
            | StopReason::Throttled { .. }
            | StopReason::TooManyFailures { .. }
            | StopReason::Storage(_),
        ) => Exit::Stopped,
        Some(StopReason::Interrupted) => Exit::Interrupted,
        None if inventory.as_ref().is_some_and(|(i, _)| !i.complete) => Exit::InventoryIncomplete,
        None if summary.verdict_coverage.below(settings.min_audit_status) => Exit::AuditStatusMissing,
        None if !alerts(&settings.fail_on, &summary).is_empty() => Exit::Alert,
        None if summary.totals.failed > 0 => Exit::Failures,
        None => Exit::Ok,
    };
    let calls = ManifestCalls {
        total: counters.calls.load(Ordering::Relaxed),
        throttled: counters.throttled.load(Ordering::Relaxed),
        retries: counters.retries.load(Ordering::Relaxed),
        by_action: engine::Action::ALL
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
    };
    let mut manifest =
        manifest(settings, &target, &facts, &ids, &summary, previous, resumed, retry_of, calls, files, exit);
    if let Some((inv, digest)) = inventory {
        // The digest taken as the listing wrote it.
        manifest.files.insert(0, digest);
        manifest.inventory = Some(inv);
    }
    let manifest_digest = manifest
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
        super::metrics::after_run(settings, &summary, &manifest, &manifest_digest.sha256, exit, dir.path(), started);
    if summary.complete {
        // The reports now hold everything the journal did. The journal
        // goes last: while it is there, the run can be finished.
        drop(journal);
        remove_journals(dir.path());
    }

    // Under --quiet every line about the end of the run goes into the one
    // closing line (the cron mail's subject matter); otherwise each is its own.
    let mut folded: Vec<String> = Vec::new();
    let mut say = |line: String| match settings.quiet {
        true => folded.push(line),
        false => eprintln!("vod-image-audit: {line}"),
    };
    if exit == Exit::AuditStatusMissing {
        let c = &summary.verdict_coverage;
        say(format!(
            "no verdict for most images: {} of {} found images ({}) have one, below --min-audit-status {}; the blocked count ({}) cannot be trusted, since an image without a verdict may be blocked. {}",
            c.with_verdict,
            c.found,
            c.percent(),
            settings.min_audit_status,
            summary.blocked(),
            verdict_advice(settings.audit.audit_source, &summary)
        ));
    }
    for line in verdict_warnings(&summary) {
        say(format!("warning: {line}"));
    }
    if let Some(r) = &reason {
        match r {
            StopReason::ModerationUnavailable(_) => {
                say(format!("{} (this run's region: {})", r.describe(), target.region))
            }
            _ => say(r.describe()),
        }
        say(format!("the report in {} is marked incomplete", settings.out.display()));
    }
    if let Some(c) = &summary.changes {
        if c.compared * 2 < summary.totals.unique_ids {
            // Kept under --quiet (in the one line): the comparison says little.
            say(format!(
                "warning: only {} of {} ids were compared with {} (the rest were not in both runs, or failed): its changes say little about tonight",
                c.compared,
                summary.totals.unique_ids,
                c.compared_with.as_deref().unwrap_or("the earlier run")
            ));
        }
    }
    if let Some(c) = summary.changes.as_ref().filter(|c| !c.settings_changed.is_empty() && !settings.quiet) {
        let explained: u64 = c.explained.values().sum();
        eprintln!(
            "vod-image-audit: {} used other settings ({}): the {explained} change(s) they explain are marked explained_by in changes.csv and not counted by --fail-on",
            c.compared_with.as_deref().unwrap_or("the earlier run"),
            c.settings_changed.join(", ")
        );
    }
    let alerted = alerts(&settings.fail_on, &summary);
    if exit == Exit::Alert {
        say(format!("alert (--fail-on): {}", alerted.join(", ")));
    }
    // --quiet is silent on success; a run that failed ids, stopped or
    // alerted still says so in one line, for the cron mail.
    if !settings.quiet || exit != Exit::Ok {
        let t = &summary.totals;
        let changes = match &summary.changes {
            Some(c) => format!(
                "; changes: {}",
                crate::report::changes::CHANGE_KINDS
                    .iter()
                    .map(|k| format!("{k} {}", c.counts.get(*k).copied().unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        let per_api = match manifest.calls.by_action.len() {
            0 | 1 => String::new(),
            _ => format!(
                " ({})",
                manifest
                    .calls
                    .by_action
                    .iter()
                    .map(|(a, c)| format!("{a} {}, {} throttled", c.calls, c.throttled))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        let line = format!(
            "vod-image-audit: {}: {} ids: {} found ({} blocked; verdict on {}), {} missing, {} failed{}; {} rejected rows; {} calls, {} throttled{per_api}{changes}; report in {}",
            if summary.complete { "done" } else { "stopped" },
            t.unique_ids,
            t.found,
            summary.blocked(),
            summary.verdict_coverage.percent(),
            t.missing,
            t.failed,
            match t.not_attempted {
                0 => String::new(),
                n => format!(", {n} not attempted"),
            },
            t.invalid,
            manifest.calls.total,
            manifest.calls.throttled,
            settings.out.display(),
        );
        let line = match folded.is_empty() {
            true => line,
            false => format!("{line} | {}", folded.join(" | ")),
        };
        eprintln!("{line}");
    }
    if !settings.quiet {
        eprintln!(
            "vod-image-audit: manifest.json SHA-256 {} (keep it elsewhere; `vod-image-audit verify --manifest-sha256 HEX {}` proves the reports against it)",
            manifest_digest.sha256,
            settings.out.display()
        );
    }
    super::notify::after_run(
        &settings.compliance.notify,
        &summary,
        exit,
        &alerted,
        dir.path(),
        &manifest_digest.sha256,
    )
    .await;
    metrics?;
    Ok(exit)
}

/// A file named by `flag` (`--input`, `--metrics-file`) that is one of the
/// files the run writes or removes in `--out` (`--input out/images.csv`):
/// the run would replace the input, whose digest the manifest records, or
/// the metrics file would replace a report after the manifest sealed it.
/// Refused, whether or not `--force` (a resume replaces the reports too).
fn refuse_a_file_the_run_replaces(flag: &str, path: &std::path::Path, out: &std::path::Path) -> Result<(), CmdError> {
    let Ok(out_real) = std::fs::canonicalize(out) else { return Ok(()) };
    // The file itself when it exists (a link is followed), else its directory.
    let real = std::fs::canonicalize(path).ok().or_else(|| {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        Some(std::fs::canonicalize(parent).ok()?.join(path.file_name()?))
    });
    let Some(real) = real else { return Ok(()) };
    let replaced = real.parent() == Some(out_real.as_path())
        && real
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| rundir::REPORT_FILES.contains(&n) || rundir::STATE_FILES.contains(&n));
    if replaced {
        return Err(CmdError::usage(format!(
            "{flag} {} is {}, a file the run writes in --out {}: it would be replaced; choose a path outside --out",
            path.display(),
            real.display(),
            out.display()
        )));
    }
    Ok(())
}

/// Removes a complete run's journals (the listing's first: the main one's
/// presence is what marks a complete run not yet cleaned up).
fn remove_journals(dir: &std::path::Path) {
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
fn finish_leftover(dir: &RunDir, m: &Manifest, settings: &RunSettings, pins: Option<Pins>) -> Result<Exit, CmdError> {
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

/// `--retry-failed OLD`, before the run directory is touched: OLD is not the
/// directory being written, and its manifest and `images.jsonl` verify (the
/// records are copied into this run, which `verify` then vouches for).
fn earlier_for_retry(old: &std::path::Path, out: &std::path::Path) -> Result<Manifest, CmdError> {
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(old), std::fs::canonicalize(out)) {
        if a == b {
            return Err(CmdError::usage(format!(
                "--retry-failed {}: that is the --out being written; retry into a new --out",
                old.display()
            )));
        }
    }
    let m = Manifest::read(old)?;
    if !m.lists(rundir::IMAGES_JSONL) {
        return Err(CmdError::usage(format!(
            "--retry-failed {}: the run has no images.jsonl (it keeps the records exactly); retry a run made with --format json, the default",
            old.display()
        )));
    }
    verify::earlier_run(old, &[rundir::IMAGES_JSONL], false)
        .map_err(|e| CmdError::new(Exit::VerifyFailed, anyhow::anyhow!("--retry-failed {}: {e}", old.display())))
}

/// What the manifest records of the run a `--retry-failed` run completes.
fn retry_of_manifest(old: &std::path::Path, m: Manifest) -> RetryOf {
    RetryOf { dir: old.display().to_string(), started: m.started, finished: m.finished, input_sha256: m.input.sha256 }
}

/// Copies the found and missing records of the earlier run `old` into
/// `journal`, as if this run had settled them: only its failed and never
/// attempted ids are called again, and the reports cover the whole input.
/// Returns how many were copied.
fn seed_from(
    old: &std::path::Path,
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

/// What `--fail-on` asked to be told of and happened: `kind count` each.
fn alerts(fail_on: &[String], summary: &Summary) -> Vec<String> {
    fail_on
        .iter()
        .filter_map(|kind| {
            let n = match kind.as_str() {
                "failed" => summary.totals.failed,
                super::settings::UNREVIEWED_BLOCKED => summary.review.unreviewed_blocked,
                // A change the settings explain is no news about the account.
                kind => summary.changes.as_ref().map_or(0, |c| c.news(kind)),
            };
            (n > 0).then(|| format!("{kind} {n}"))
        })
        .collect()
}

/// What to do when too few images have a verdict, for the mode the run
/// was in.
fn verdict_advice(source: AuditSource, summary: &Summary) -> String {
    let unavailable = summary.by_reason.keys().any(|r| r.starts_with(verdict::MODERATION_UNAVAILABLE));
    match source {
        AuditSource::ImageInfo => "The answers lack AuditStatus: run again with --audit-source both, which asks GetMediaAuditResult (the automated moderation) about the images without it, or check the account's answers with `vod-image-audit check`.".to_owned(),
        _ if unavailable => format!("GetMediaAuditResult is refused for this account (reason moderation-unavailable in images.csv): {MODERATION_REGION_NOTE}."),
        _ => "GetMediaAuditResult gave no verdict for them either (never reviewed, or a value this tool does not know: see unrecognised_values in summary.json). Check the account's moderation settings, or lower --min-audit-status if unreviewed images are expected.".to_owned(),
    }
}

/// Lines that say the verdict rests on less than it should, once each.
fn verdict_warnings(summary: &Summary) -> Vec<String> {
    let mut lines = Vec::new();
    let unavailable: Vec<(&String, &u64)> =
        summary.by_reason.iter().filter(|(r, _)| r.starts_with(verdict::MODERATION_UNAVAILABLE)).collect();
    for (reason, n) in unavailable {
        let code = reason.split_once(':').map_or("", |(_, c)| c);
        lines.push(format!(
            "GetMediaAuditResult is refused for this account ({code}): {n} images that needed it have no moderation verdict (reason {reason}); the audit went on with AuditStatus alone; {MODERATION_REGION_NOTE}",
            reason = crate::api::error::escape_for_terminal(reason),
            code = crate::api::error::escape_for_terminal(code),
        ));
    }
    if !summary.unrecognised_values.is_empty() {
        let values: Vec<String> = summary
            .unrecognised_values
            .iter()
            .take(5)
            .map(|(v, n)| format!("{} ({n})", crate::api::error::escape_for_terminal(v)))
            .collect();
        lines.push(format!(
            "values this tool does not recognise were counted as verdict Unknown: {}{}; see unrecognised_values in summary.json",
            values.join(", "),
            if summary.unrecognised_values.len() > 5 { ", ..." } else { "" }
        ));
    }
    lines
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
