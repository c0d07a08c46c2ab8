//! The commands, start to finish: raw flags become validated settings in one
//! step, then `run`, `check`, `simulate` and `demo` read like a table of
//! contents of the modules they call.
//!
//! Owns the order of a run (output directory, input, credentials, client,
//! audit, reports, manifest) and the mapping of results to exit codes. It
//! holds no protocol or report logic of its own.

pub mod cli;
pub mod progress;

use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};
use serde::Serialize;

use crate::api::client::{ClientConfig, Endpoint, VodClient, DEFAULT_CONNECT_TIMEOUT};
use crate::api::credentials::{self, CredentialRequest, Credentials};
use crate::api::error::ErrorClass;
use crate::cmd::cli::{
    ApiArgs, CheckArgs, Cli, Command, DemoArgs, DiffArgs, ProgressMode, ReportFormat, RunArgs, SimulateArgs, VerifyArgs,
};
use crate::cmd::progress::Progress;
use crate::report::changes::{self, Change, ChangesWriter};
use crate::report::html;
use crate::report::sort;
use crate::report::{self, Summary};
use crate::report::{FileDigest, Ledger};
use crate::run::engine::{self, AuditSettings, Counters, FailureLimit, StopHandle, StopReason};
use crate::run::input::{self, IdList, InputSource};
use crate::run::journal::{Journal, JournalError, JOURNAL_FILE};
use crate::run::outcome::{ImageRecord, OutcomeKind};
use crate::run::retry::RetryPolicy;
use crate::rundir::lock::{LockError, RunLock};
use crate::sim::{self, Catalog, Faults, SimConfig, SimKey, Simulator};

pub const EXIT_OK: u8 = 0;
pub const EXIT_INTERNAL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_FAILURES: u8 = 3;
pub const EXIT_FATAL: u8 = 4;
pub const EXIT_LOCKED: u8 = 5;
pub const EXIT_VERIFY_FAILED: u8 = 6;
pub const EXIT_INTERRUPTED: u8 = 130;

/// A usage, input or configuration problem: exit 2, no call made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error that ended a command.
pub fn exit_code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(LockError::Busy { .. }) = cause.downcast_ref::<LockError>() {
            return EXIT_LOCKED;
        }
        if cause.is::<UsageError>()
            || cause.is::<JournalError>()
            || cause.is::<input::InputError>()
            || cause.is::<credentials::CredentialError>()
            || cause.is::<crate::api::client::EndpointError>()
        {
            return EXIT_USAGE;
        }
    }
    EXIT_INTERNAL
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow!(UsageError(msg.into()))
}

/// Runs a parsed command line. `argv` is recorded in the manifest.
pub async fn run(cli: Cli, argv: Vec<String>) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => {
            let settings = RunSettings::from_args(&args, argv)?;
            let ids = read_input(&settings.input, args.id_column.as_deref())?;
            let endpoint_req = ApiTarget::resolve(&args.api)?;
            let stop = StopHandle::default();
            spawn_signal_listener(stop.clone());
            run_audit(&settings, ids, endpoint_req, stop).await
        }
        Command::Check(args) => check(&args).await,
        Command::Simulate(args) => simulate(&args).await,
        Command::Demo(args) => demo(&args, argv).await,
        Command::Verify(args) => verify(&args),
        Command::Diff(args) => diff(&args),
    }
}

/// Validated settings of `run`.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub input: InputSource,
    /// `--compare-with`: `auto` or a run directory.
    pub compare_with: Option<String>,
    pub out: PathBuf,
    pub force: bool,
    pub audit: AuditSettings,
    pub formats: Vec<ReportFormat>,
    pub progress: ProgressMode,
    pub quiet: bool,
    pub argv: Vec<String>,
}

/// The validated settings of a run, as recorded in the manifest.
#[derive(Debug, Serialize)]
struct ManifestSettings {
    api: engine::ApiMode,
    qps: u32,
    rate: crate::run::rate::RateMode,
    burst: u32,
    concurrency: usize,
    max_attempts: u32,
    max_failures: Option<String>,
    down_after_ms: u128,
    timeout_ms: u128,
    output_type: &'static str,
    auth_timeout: Option<u64>,
    formats: Vec<ReportFormat>,
}

impl RunSettings {
    /// Checks the flags of `run`.
    pub fn from_args(a: &RunArgs, argv: Vec<String>) -> anyhow::Result<Self> {
        let qps = a.qps.unwrap_or(engine::DEFAULT_QPS);
        let qps = NonZeroU32::new(qps).ok_or_else(|| usage("--qps must be at least 1"))?;
        let concurrency = a.concurrency.unwrap_or(engine::DEFAULT_CONCURRENCY);
        if concurrency == 0 || concurrency > 1024 {
            return Err(usage("--concurrency must be between 1 and 1024"));
        }
        let max_attempts = a.max_attempts.unwrap_or(crate::run::retry::DEFAULT_MAX_ATTEMPTS);
        if max_attempts == 0 || max_attempts > 100 {
            return Err(usage("--max-attempts must be between 1 and 100"));
        }
        let max_failures = match &a.max_failures {
            Some(t) => Some(FailureLimit::parse(t).map_err(|e| usage(format!("--max-failures {e}")))?),
            None => None,
        };
        let down_after = match &a.down_after {
            Some(t) => parse_duration_or_zero("--down-after", t)?,
            None => engine::DEFAULT_DOWN_AFTER,
        };
        if a.format.is_empty() {
            return Err(usage("--format needs csv, json or csv,json"));
        }
        let out = match &a.out {
            Some(p) => p.clone(),
            None => PathBuf::from("reports").join(utc_stamp(SystemTime::now())),
        };
        Ok(RunSettings {
            input: InputSource::from_arg(&a.input),
            compare_with: a.compare_with.clone(),
            out,
            force: a.force,
            audit: AuditSettings {
                api: a.operation,
                qps,
                rate_mode: a.rate,
                burst: NonZeroU32::new(engine::DEFAULT_BURST).expect("constant is non-zero"),
                concurrency,
                retry: RetryPolicy { max_attempts, ..RetryPolicy::default() },
                max_failures,
                down_after,
            },
            formats: a.format.clone(),
            progress: a.progress,
            quiet: a.quiet,
            argv,
        })
    }
}

/// Where calls go and with which key: resolved before any call.
pub struct ApiTarget {
    pub credentials: Credentials,
    pub region: String,
    pub client: ClientConfig,
}

impl ApiTarget {
    /// Resolves credentials, region, endpoint and client settings.
    pub fn resolve(a: &ApiArgs) -> anyhow::Result<Self> {
        let resolved = credentials::resolve_from_process(&CredentialRequest {
            profile: a.profile.clone(),
            region: a.region.clone(),
        })?;
        Self::with_credentials(a, resolved.credentials, resolved.region)
    }

    /// Builds the target with credentials already at hand.
    pub fn with_credentials(a: &ApiArgs, credentials: Credentials, region: String) -> anyhow::Result<Self> {
        let endpoint = match &a.endpoint {
            Some(e) => Endpoint::parse(e)?,
            None => Endpoint::for_region(&region),
        };
        let timeout = parse_duration("--timeout", &a.timeout)?;
        if let Some(0) = a.auth_timeout {
            return Err(usage("--auth-timeout must be at least 1 second"));
        }
        let client = ClientConfig {
            endpoint,
            request_timeout: timeout,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT.min(timeout),
            output_type: a.output_type,
            auth_timeout: a.auth_timeout,
        };
        Ok(ApiTarget { credentials, region, client })
    }
}

fn parse_duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let d = parse_duration_or_zero(flag, text)?;
    if d.is_zero() {
        return Err(usage(format!("{flag} must be more than zero")));
    }
    Ok(d)
}

fn parse_duration_or_zero(flag: &str, text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text).map_err(|e| usage(format!("{flag} {text:?}: {e} (write e.g. 10s or 1500ms)")))
}

/// `20261128T035600Z`: sorts by time and is safe in any file system.
pub fn utc_stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string().replace(['-', ':'], "")
}

fn read_input(source: &InputSource, id_column: Option<&str>) -> anyhow::Result<IdList> {
    let reader = source.open()?;
    Ok(input::read_ids(std::io::BufReader::with_capacity(256 * 1024, reader), &source.display(), id_column)?)
}

fn spawn_signal_listener(stop: StopHandle) {
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
        eprintln!(
            "vod-image-audit: stopping: waiting for the calls in flight, then writing the report (run again to resume; a second signal quits at once)"
        );
        stop.stop(StopReason::Interrupted);
        next_signal!();
        // Every settled id is already in the journal: quitting now loses nothing.
        eprintln!("vod-image-audit: quitting at once; run the same command again to resume");
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    });
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    version: &'static str,
    complete: bool,
    stop_reason: Option<String>,
    exit_code: u8,
    command_line: &'a [String],
    region: &'a str,
    endpoint: &'a str,
    credentials_source: &'a str,
    started: String,
    finished: String,
    ledger: &'a Ledger,
    compared_with: Option<String>,
    input: ManifestInput<'a>,
    /// Ids settled by earlier attempts of this run, read from the journal.
    resumed_ids: usize,
    settings: ManifestSettings,
    calls: ManifestCalls,
    /// Every report file with its size and SHA-256 (`verify` checks them).
    files: Vec<FileDigest>,
}

#[derive(Serialize)]
struct ManifestInput<'a> {
    path: String,
    bytes: u64,
    sha256: &'a str,
    id_column: &'a str,
    blank_rows: u64,
}

#[derive(Serialize)]
struct ManifestCalls {
    total: u64,
    throttled: u64,
    retries: u64,
    /// With `--api batch`: images whose batch answer lacked `AuditStatus`
    /// and were asked again with `GetImageInfo`.
    batch_fallbacks: u64,
}

/// Creates the output directory, takes its lock, refuses a complete run
/// (unless forced, when the old run's files are removed), and makes sure the
/// directory can be written: all before any call is made.
fn prepare_out_dir(out: &Path, force: bool) -> anyhow::Result<RunLock> {
    std::fs::create_dir_all(out)
        .map_err(|e| usage(format!("cannot create the output directory {}: {e}", out.display())))?;
    let lock = RunLock::acquire(out)?;
    let manifest = out.join(report::MANIFEST_JSON);
    if manifest.exists() {
        let complete = std::fs::read(&manifest)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("complete").and_then(|c| c.as_bool()))
            .unwrap_or(true);
        if complete && !force {
            return Err(usage(format!(
                "{} already holds a complete run: choose another --out, or pass --force to replace it",
                out.display()
            )));
        }
        if complete {
            for name in REPORT_FILES.iter().chain([&JOURNAL_FILE]) {
                match std::fs::remove_file(out.join(name)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(usage(format!("--force: cannot remove {}: {e}", out.join(name).display())))
                    }
                    _ => {}
                }
            }
        }
    }
    let probe = out.join(".write-probe");
    std::fs::write(&probe, b"probe")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| usage(format!("cannot write in the output directory {}: {e}", out.display())))?;
    Ok(lock)
}

/// Every file a run may write; `manifest.json` last.
const REPORT_FILES: &[&str] = &[
    report::IMAGES_CSV,
    changes::CHANGES_CSV,
    html::SUMMARY_HTML,
    report::SUMMARY_CSV,
    report::REJECTED_CSV,
    report::IMAGES_JSONL,
    report::SUMMARY_JSON,
    report::MANIFEST_JSON,
];

/// The audit, from validated settings and input to reports and exit code.
pub async fn run_audit(settings: &RunSettings, ids: IdList, target: ApiTarget, stop: StopHandle) -> anyhow::Result<u8> {
    let _lock = prepare_out_dir(&settings.out, settings.force)?;
    let previous = resolve_compare_with(settings.compare_with.as_deref(), &settings.out)?;
    let started = SystemTime::now();
    let client =
        VodClient::new(target.credentials.clone(), target.client.clone()).context("building the HTTP client")?;
    let fingerprint = input::Fingerprint::default();
    let mut done: std::collections::HashSet<u128> = std::collections::HashSet::new();
    let (mut journal, recovered) = Journal::open(&settings.out, &ids.sha256, |o| {
        done.insert(fingerprint.of(&o.image_id));
    })?;
    let resumed = recovered.count;
    let todo_count = ids.ids.iter().filter(|id| !done.contains(&fingerprint.of(id))).count();
    let counters = Arc::new(Counters::default());
    let mut progress = Progress::new(todo_count as u64, settings.progress, settings.quiet, counters.clone());
    if !progress.is_silent() {
        eprintln!(
            "vod-image-audit: {} unique ids ({} rows, {} duplicates, {} rejected) from {} -> {} at {} calls/s via {}",
            ids.ids.len(),
            ids.input_rows,
            ids.duplicates,
            ids.rejected.len(),
            settings.input.display(),
            settings.out.display(),
            settings.audit.qps,
            client.endpoint().as_str()
        );
        if resumed > 0 {
            eprintln!(
                "vod-image-audit: resuming: {resumed} ids already settled in {}{}, {todo_count} to go",
                journal.path().display(),
                if recovered.torn { " (a torn last line was cut off)" } else { "" },
            );
        }
    }
    // Outcomes cut short by a stop are reported but not journaled (a resumed
    // run calls those ids again); they wait in this file for the reports.
    let unsettled_path = settings.out.join(UNSETTLED_FILE);
    let mut unsettled = std::io::BufWriter::new(
        std::fs::File::create(&unsettled_path).with_context(|| format!("creating {}", unsettled_path.display()))?,
    );
    let journal_path = journal.path().display().to_string();
    let todo = ids.ids.iter().filter(|id| !done.contains(&fingerprint.of(id))).map(str::to_owned);
    engine::audit(&client, todo, &settings.audit, counters.clone(), stop.clone(), |o| {
        progress.record(&o);
        let cut_short = o.cut_short;
        let record = o.record();
        let mut spill =
            |r: &ImageRecord| r.write_line(&mut unsettled).map_err(|e| format!("{}: {e}", unsettled_path.display()));
        if cut_short {
            return spill(&record);
        }
        if let Err(e) = journal.append(&record) {
            // Still reported (and called again on a resume), then the run stops.
            spill(&record)?;
            return Err(format!("{journal_path}: {e}"));
        }
        Ok(())
    })
    .await;
    progress.finish();
    drop(done);
    unsettled.flush().with_context(|| format!("writing {}", unsettled_path.display()))?;
    drop(unsettled);
    journal.sync().with_context(|| format!("syncing {journal_path}"))?;
    // Its connections and their buffers (some 35 KB per call that was in
    // flight) go before the reports' sort needs memory, which then reuses
    // theirs: peak memory does not grow with --concurrency.
    let endpoint = client.endpoint().as_str().to_owned();
    drop(client);
    // The connection tasks notice the pool is gone when next polled; let
    // them run and free their buffers (on this thread, for reuse).
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }

    let reason = stop.reason();
    let page = ReportMeta {
        started: humantime::format_rfc3339_seconds(started).to_string(),
        finished: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        input: settings.input.display(),
        input_sha256: ids.sha256.clone(),
        endpoint: endpoint.clone(),
        region: target.region.clone(),
    };
    let sources =
        [sort::Source { path: journal.path(), skip_lines: 1 }, sort::Source { path: &unsettled_path, skip_lines: 0 }];
    let stop_reason = reason.as_ref().map(StopReason::describe);
    let (summary, files) =
        build_reports(&settings.out, &settings.formats, &ids, &sources, previous.as_deref(), &page, stop_reason)
            .with_context(|| format!("writing the reports in {}", settings.out.display()))?;
    let _ = std::fs::remove_file(&unsettled_path);
    let exit_code = match &reason {
        _ if summary.ledger.unaccounted > 0 => EXIT_INTERNAL,
        Some(
            StopReason::Fatal(_)
            | StopReason::RetryBudget(_)
            | StopReason::ServiceDown { .. }
            | StopReason::TooManyFailures { .. },
        ) => EXIT_FATAL,
        Some(StopReason::Interrupted) => EXIT_INTERRUPTED,
        Some(StopReason::Storage(_)) => EXIT_INTERNAL,
        None if summary.totals.failed > 0 => EXIT_FAILURES,
        None => EXIT_OK,
    };
    let manifest = Manifest {
        tool: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        complete: summary.complete,
        stop_reason: summary.stop_reason.clone(),
        exit_code,
        command_line: &settings.argv,
        region: &target.region,
        endpoint: &endpoint,
        credentials_source: &target.credentials.source,
        started: page.started.clone(),
        finished: page.finished.clone(),
        ledger: &summary.ledger,
        compared_with: previous.as_ref().map(|p| p.display().to_string()),
        input: ManifestInput {
            path: settings.input.display(),
            bytes: ids.bytes,
            sha256: &ids.sha256,
            id_column: &ids.id_column,
            blank_rows: ids.blank_rows,
        },
        resumed_ids: resumed,
        settings: ManifestSettings {
            api: settings.audit.api,
            qps: settings.audit.qps.get(),
            rate: settings.audit.rate_mode,
            burst: settings.audit.burst.get(),
            concurrency: settings.audit.concurrency,
            max_attempts: settings.audit.retry.max_attempts,
            max_failures: settings.audit.max_failures.map(|l| match l {
                FailureLimit::Count(n) => n.to_string(),
                FailureLimit::Percent(p) => format!("{p}%"),
            }),
            down_after_ms: settings.audit.down_after.as_millis(),
            timeout_ms: target.client.request_timeout.as_millis(),
            output_type: target.client.output_type.as_str(),
            auth_timeout: target.client.auth_timeout,
            formats: settings.formats.clone(),
        },
        calls: ManifestCalls {
            total: counters.calls.load(std::sync::atomic::Ordering::Relaxed),
            throttled: counters.throttled.load(std::sync::atomic::Ordering::Relaxed),
            retries: counters.retries.load(std::sync::atomic::Ordering::Relaxed),
            batch_fallbacks: counters.batch_fallbacks.load(std::sync::atomic::Ordering::Relaxed),
        },
        files,
    };
    report::write_atomic(&settings.out, report::MANIFEST_JSON, |w| {
        serde_json::to_writer_pretty(&mut *w, &manifest)?;
        w.write_all(b"\n")
    })
    .with_context(|| format!("writing {}", settings.out.join(report::MANIFEST_JSON).display()))?;
    if summary.complete {
        // The reports now hold everything the journal did.
        drop(journal);
        let _ = std::fs::remove_file(settings.out.join(JOURNAL_FILE));
        let _ = report::sync_dir(&settings.out);
    }

    if let Some(r) = &reason {
        eprintln!("vod-image-audit: {}", r.describe());
        eprintln!("vod-image-audit: the report in {} is marked incomplete", settings.out.display());
    }
    if !settings.quiet {
        let t = &summary.totals;
        eprintln!(
            "vod-image-audit: {}: {} ids: {} found ({} blocked), {} missing, {} failed; {} rejected rows; {} calls, {} throttled",
            if summary.complete { "done" } else { "stopped" },
            t.unique_ids,
            t.found,
            summary.by_audit_status.get("Blocked").copied().unwrap_or(0),
            t.missing,
            t.failed,
            t.invalid,
            manifest.calls.total,
            manifest.calls.throttled,
        );
    }
    Ok(exit_code)
}

/// What the HTML page says about the run.
struct ReportMeta {
    started: String,
    finished: String,
    input: String,
    input_sha256: String,
    endpoint: String,
    region: String,
}

/// `--compare-with`: `auto` is the latest complete run in the same parent
/// directory (by its manifest's `finished`), a path must be a complete run
/// with an `images.csv`. Resolved before any call.
fn resolve_compare_with(arg: Option<&str>, out: &Path) -> anyhow::Result<Option<PathBuf>> {
    let Some(arg) = arg else { return Ok(None) };
    if arg != "auto" {
        let dir = PathBuf::from(arg);
        return match run_finished(&dir) {
            Some(_) if dir.join(report::IMAGES_CSV).exists() => Ok(Some(dir)),
            _ => Err(usage(format!(
                "--compare-with {arg}: not a complete run with an images.csv (run `vod-image-audit verify {arg}`)"
            ))),
        };
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let me = std::fs::canonicalize(out).ok();
    let mut best: Option<(String, PathBuf)> = None;
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let dir = entry.path();
        if std::fs::canonicalize(&dir).ok() == me || !dir.join(report::IMAGES_CSV).exists() {
            continue;
        }
        if let Some(finished) = run_finished(&dir) {
            if best.as_ref().is_none_or(|(f, _)| finished > *f) {
                best = Some((finished, dir));
            }
        }
    }
    Ok(best.map(|(_, d)| d))
}

/// The `finished` time of a complete run directory.
fn run_finished(dir: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(report::MANIFEST_JSON)).ok()?).ok()?;
    if v.get("complete")?.as_bool()? {
        v.get("finished")?.as_str().map(str::to_owned)
    } else {
        None
    }
}

/// Newly blocked images shown on the HTML page.
const PAGE_CHANGES: usize = html::MAX_BLOCKED_ROWS;

/// Where a run keeps outcomes that were cut short until the reports are written.
const UNSETTLED_FILE: &str = ".unsettled.jsonl.tmp";

/// Writes every report from the outcome files in one sorted pass, in
/// bounded memory: `images.csv`, `images.jsonl` and `changes.csv` are
/// streamed, the summary is a fold, the ledger matches the sorted outcomes
/// against the sorted input ids. Returns the summary and the files' digests.
fn build_reports(
    out: &Path,
    formats: &[ReportFormat],
    ids: &IdList,
    sources: &[sort::Source<'_>],
    previous: Option<&Path>,
    meta: &ReportMeta,
    stop_reason: Option<String>,
) -> anyhow::Result<(Summary, Vec<FileDigest>)> {
    let sorted = sort::sort_outcomes(sources, out, sort::CHUNK_BYTES).context("sorting the outcomes")?;
    let mut images_csv = match formats.contains(&ReportFormat::Csv) {
        true => Some(report::ImagesCsv::new(report::AtomicFile::create(out, report::IMAGES_CSV)?)?),
        false => None,
    };
    let mut jsonl = match formats.contains(&ReportFormat::Json) {
        true => Some(report::AtomicFile::create(out, report::IMAGES_JSONL)?),
        false => None,
    };
    let mut fold = report::Fold::new(ids.input_rows, ids.duplicates, ids.rejected.len() as u64);
    let mut blocked: Vec<ImageRecord> = Vec::new();
    let mut expected = ids.ids.sorted().peekable();
    let mut unaccounted_ids: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    let mut records = sorted.filter_map(|line| {
        let line = match line {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        let r: ImageRecord = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => return Some(Err(std::io::Error::other(format!("an outcome line that is not a record: {e}")))),
        };
        if last.as_deref() == Some(r.image_id.as_str()) {
            tracing::warn!("a second outcome for {} was ignored", r.image_id);
            return None;
        }
        while let Some(want) = expected.next_if(|want| *want < r.image_id.as_str()) {
            unaccounted_ids.push(want.to_owned());
        }
        if expected.next_if_eq(&r.image_id.as_str()).is_none() {
            tracing::warn!("an outcome for {}, which is not in the input, was ignored", r.image_id);
            return None;
        }
        last = Some(r.image_id.clone());
        fold.add(&r);
        if r.outcome == OutcomeKind::Found
            && r.audit_status.as_deref() == Some("Blocked")
            && blocked.len() < html::MAX_BLOCKED_ROWS
        {
            blocked.push(r.clone());
        }
        let written = (|| {
            if let Some(w) = images_csv.as_mut() {
                w.write(&r)?;
            }
            if let Some(w) = jsonl.as_mut() {
                // The line is the record as serialized when it settled.
                w.write_all(&line)?;
            }
            Ok::<_, std::io::Error>(())
        })();
        Some(written.map(|_| r))
    });
    let mut newly_blocked: Vec<Change> = Vec::new();
    let mut changes_file = None;
    let mut change_counts = None;
    if let Some(prev) = previous {
        let old_path = prev.join(report::IMAGES_CSV);
        let old = std::fs::File::open(&old_path).with_context(|| format!("reading {}", old_path.display()))?;
        let old = changes::records_from_csv(std::io::BufReader::new(old), "the earlier run's images.csv");
        let mut writer = ChangesWriter::new(report::AtomicFile::create(out, changes::CHANGES_CSV)?)?;
        let counts = changes::compare(old, records.by_ref(), Some(prev.display().to_string()), |c| {
            if c.change == "newly_blocked" && newly_blocked.len() < PAGE_CHANGES {
                newly_blocked.push(c.clone());
            }
            writer.write(c)
        })
        .with_context(|| format!("comparing with {}", prev.display()))?;
        changes_file = Some(writer.into_inner()?);
        change_counts = Some(counts);
    }
    for r in records.by_ref() {
        r?;
    }
    drop(records);
    unaccounted_ids.extend(expected.map(str::to_owned));

    let mut files = Vec::new();
    if let Some(w) = images_csv {
        files.push(w.finish()?.commit()?);
    }
    if let Some(f) = changes_file {
        files.push(f.commit()?);
    }
    let mut summary = fold.finish();
    summary.changes = change_counts;
    let t = &summary.totals;
    summary.ledger = Ledger {
        input_rows: ids.input_rows,
        blank_rows: ids.blank_rows,
        rejected: ids.rejected.len() as u64,
        duplicates: ids.duplicates,
        unique_ids: ids.ids.len() as u64,
        found: t.found,
        missing: t.missing,
        failed: t.failed,
        unaccounted: unaccounted_ids.len() as u64,
        unaccounted_ids,
    };
    summary.complete = stop_reason.is_none() && summary.ledger.unaccounted == 0;
    summary.stop_reason = stop_reason;
    if summary.ledger.unaccounted > 0 {
        // Never expected: every id yields an outcome. If it happens, say so loudly.
        eprintln!("vod-image-audit: error: ids unaccounted for: {:?}", summary.ledger.unaccounted_ids);
        let why = format!("{} ids unaccounted for", summary.ledger.unaccounted);
        summary.stop_reason = Some(summary.stop_reason.map_or(why.clone(), |r| format!("{r}; {why}")));
    }
    if formats.contains(&ReportFormat::Csv) {
        files.push(report::write_atomic(out, report::SUMMARY_CSV, |w| report::write_summary_csv(w, &summary))?);
        files.push(report::write_atomic(out, report::REJECTED_CSV, |w| report::write_rejected_csv(w, &ids.rejected))?);
    }
    if let Some(f) = jsonl {
        files.push(f.commit()?);
        files.push(report::write_atomic(out, report::SUMMARY_JSON, |w| report::write_summary_json(w, &summary))?);
    }
    if formats.contains(&ReportFormat::Html) {
        let info = html::PageInfo {
            started: &meta.started,
            finished: &meta.finished,
            input: &meta.input,
            input_sha256: &meta.input_sha256,
            endpoint: &meta.endpoint,
            region: &meta.region,
            newly_blocked: &newly_blocked,
        };
        files.push(report::write_atomic(out, html::SUMMARY_HTML, |w| {
            html::write_summary_html(w, &summary, &info, &mut blocked.iter())
        })?);
    }
    Ok((summary, files))
}

/// `verify DIR`.
fn verify(a: &VerifyArgs) -> anyhow::Result<u8> {
    let v = crate::report::verify::verify(&a.dir).map_err(usage)?;
    for line in &v.checked {
        println!("ok: {line}");
    }
    for p in &v.problems {
        println!("FAILED: {p}");
    }
    if v.problems.is_empty() {
        println!("verified: {} is intact and complete", a.dir.display());
        Ok(EXIT_OK)
    } else {
        eprintln!("vod-image-audit: {}: {} problem(s) found", a.dir.display(), v.problems.len());
        Ok(EXIT_VERIFY_FAILED)
    }
}

/// `diff OLD NEW`: changes.csv to stdout or `--out`, counts to stderr.
fn diff(a: &DiffArgs) -> anyhow::Result<u8> {
    let open = |dir: &Path| -> anyhow::Result<std::io::BufReader<std::fs::File>> {
        let p = dir.join(report::IMAGES_CSV);
        let f = std::fs::File::open(&p)
            .map_err(|e| usage(format!("{}: {e} (diff needs runs with images.csv)", p.display())))?;
        Ok(std::io::BufReader::new(f))
    };
    let (old, new) = (open(&a.old)?, open(&a.new)?);
    let old = changes::records_from_csv(old, "the older images.csv");
    let new = changes::records_from_csv(new, "the newer images.csv");
    let compared_with = Some(a.old.display().to_string());
    let counts = match &a.out {
        Some(path) => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| usage("--out needs a file name"))?;
            let mut counts = None;
            report::write_atomic(dir, name, |w| {
                let mut writer = ChangesWriter::new(w)?;
                counts = Some(changes::compare(old, new, compared_with, |c| writer.write(c))?);
                writer.finish()
            })
            .with_context(|| format!("writing {}", path.display()))?;
            counts.expect("set by the writer")
        }
        None => {
            let stdout = std::io::stdout();
            let mut writer = ChangesWriter::new(stdout.lock())?;
            let counts = changes::compare(old, new, compared_with, |c| writer.write(c))?;
            writer.finish()?;
            counts
        }
    };
    let parts: Vec<String> = changes::CHANGE_KINDS.iter().map(|k| format!("{k} {}", counts.counts[*k])).collect();
    eprintln!(
        "vod-image-audit: {} ids compared ({} not in both or failed): {}",
        counts.compared,
        counts.not_compared,
        parts.join(", ")
    );
    Ok(EXIT_OK)
}

/// `check`: one signed call, printed as JSON on stdout.
async fn check(a: &CheckArgs) -> anyhow::Result<u8> {
    input::validate_id(a.image_id.trim()).map_err(|why| usage(format!("--image-id {:?}: {why}", a.image_id)))?;
    let target = ApiTarget::resolve(&a.api)?;
    let client = VodClient::new(target.credentials.clone(), target.client.clone())?;
    let result = client.get_image_info(a.image_id.trim()).await;
    let (value, code) = match result {
        Ok(found) => (
            serde_json::json!({"outcome": OutcomeKind::Found, "image_id": a.image_id.trim(), "request_id": found.request_id, "image_info": found.info}),
            EXIT_OK,
        ),
        Err(e) if e.class == ErrorClass::Missing => (
            serde_json::json!({"outcome": OutcomeKind::Missing, "image_id": a.image_id.trim(), "request_id": e.request_id}),
            EXIT_OK,
        ),
        Err(e) => {
            let fatal = e.class == ErrorClass::Fatal;
            if fatal {
                eprintln!("vod-image-audit: {e}\nvod-image-audit: {}", e.advice());
            } else {
                eprintln!("vod-image-audit: {e}");
            }
            (
                serde_json::json!({"outcome": OutcomeKind::Failed, "image_id": a.image_id.trim(), "error": {
                    "code": e.code, "message": e.message, "http_status": e.http_status, "request_id": e.request_id,
                    "fatal": fatal}}),
                if fatal { EXIT_FATAL } else { EXIT_FAILURES },
            )
        }
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    if code == EXIT_OK {
        eprintln!(
            "vod-image-audit: credentials ({}) and endpoint {} work (region {})",
            target.credentials.source,
            client.endpoint().as_str(),
            target.region
        );
    }
    Ok(code)
}

fn sim_config(a: &SimulateArgs) -> anyhow::Result<SimConfig> {
    let catalog = match (&a.catalog, a.generate) {
        (Some(path), _) => Catalog::load(path).map_err(usage)?,
        (None, Some(n)) => Catalog::from_values(sim::catalog::generate_iter(n, a.seed, &a.region)).map_err(usage)?,
        (None, None) => return Err(usage("give --catalog FILE or --generate N")),
    };
    for (flag, rate) in [
        ("--error-rate", a.error_rate),
        ("--unavailable-rate", a.unavailable_rate),
        ("--drop-rate", a.drop_rate),
        ("--slow-rate", a.slow_rate),
        ("--batch-forgets", a.batch_forgets),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(usage(format!("{flag} must be between 0 and 1")));
        }
    }
    let mut config = SimConfig::new(catalog);
    config.region = a.region.clone();
    config.keys = vec![SimKey {
        id: a.access_key_id.clone(),
        secret: a.access_key_secret.clone(),
        sts_token: a.sts_token.clone(),
    }];
    config.qps = a.qps.filter(|q| *q > 0);
    config.ratelimit_hints = a.ratelimit_hints;
    config.seed = a.seed;
    config.clock_offset_secs = a.clock_offset;
    config.revoke_key_after = a.revoke_key_after;
    config.batch_omits_audit_status = a.batch_omits_audit_status;
    config.batch_forgets = a.batch_forgets;
    config.faults = Faults {
        internal_error: a.error_rate,
        unavailable: a.unavailable_rate,
        drop: a.drop_rate,
        slow: a.slow_rate,
        slow_delay: humantime::parse_duration(&a.slow_time).map_err(|e| usage(format!("--slow-time: {e}")))?,
        latency: humantime::parse_duration(&a.latency).map_err(|e| usage(format!("--latency: {e}")))?,
        outage: match a.outage_after {
            Some(after_calls) => Some(crate::sim::OutageFault {
                after_calls,
                lasting: humantime::parse_duration(&a.outage_for).map_err(|e| usage(format!("--outage-for: {e}")))?,
            }),
            None => None,
        },
    };
    Ok(config)
}

/// `simulate`: serves until interrupted.
async fn simulate(a: &SimulateArgs) -> anyhow::Result<u8> {
    let config = sim_config(a)?;
    if let Some(path) = &a.write_catalog {
        let text = serde_json::to_string_pretty(&config.catalog.to_file_value())?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("vod-image-audit: wrote {} images to {}", config.catalog.len(), path.display());
        return Ok(EXIT_OK);
    }
    if let Some(path) = &a.write_ids {
        let mut text = String::from("ImageId\n");
        for id in config.catalog.ids() {
            text.push_str(id);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .map_err(|e| usage(format!("cannot listen on {}: {e}", a.listen)))?;
    let addr = listener.local_addr()?;
    let sim = Simulator::new(config);
    let c = sim.config();
    println!("VOD simulator listening on http://{addr}/ ({} images, region {})", c.catalog.len(), c.region);
    println!("quota: {}", c.qps.map_or("none".to_owned(), |q| format!("{q} calls/s")));
    println!("stats: http://{addr}/__sim/stats");
    println!("Point the tool at it (simulator-only credentials, not a real key):");
    println!("  export ALIBABA_CLOUD_ACCESS_KEY_ID={}", a.access_key_id);
    println!("  export ALIBABA_CLOUD_ACCESS_KEY_SECRET={}", a.access_key_secret);
    if let Some(t) = &a.sts_token {
        println!("  export ALIBABA_CLOUD_SECURITY_TOKEN={t}");
    }
    if let Some(id) = c.catalog.ids().first() {
        println!("  vod-image-audit check --endpoint http://{addr}/ --image-id {id}");
    }
    println!("  vod-image-audit run --endpoint http://{addr}/ --input ids.csv");
    sim::serve(listener, sim.clone(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(EXIT_OK)
}

/// The bundled demo catalog.
pub const DEMO_CATALOG: &str = include_str!("../../inputs/demo-catalog.json");
/// The bundled demo input.
pub const DEMO_IDS: &[u8] = include_bytes!("../../inputs/demo-image-ids.csv");

/// `demo`: the simulator in-process with a quota and some faults, an audit
/// of the bundled sample against it, and the summary.
async fn demo(a: &DemoArgs, argv: Vec<String>) -> anyhow::Result<u8> {
    let values: serde_json::Value = serde_json::from_str(DEMO_CATALOG).context("the bundled demo catalog")?;
    let images = values.get("images").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let mut config = SimConfig::new(Catalog::from_values(images).map_err(|e| anyhow!(e))?);
    // The quota sits below the client's rate so that throttling shows, and a
    // few faults show the retries.
    config.qps = Some(200);
    config.ratelimit_hints = true;
    config.seed = 2026;
    config.faults = Faults {
        internal_error: 0.02,
        unavailable: 0.01,
        drop: 0.005,
        latency: Duration::from_millis(5),
        ..Faults::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let sim = Simulator::new(config);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(sim::serve(listener, sim.clone(), shutdown.clone().cancelled_owned()));

    let ids = input::read_ids(DEMO_IDS, "inputs/demo-image-ids.csv", None)?;
    let api = ApiArgs {
        region: None,
        endpoint: Some(format!("http://{addr}/")),
        profile: None,
        timeout: "5s".into(),
        output_type: crate::api::client::OutputType::Cdn,
        auth_timeout: None,
    };
    let credentials = Credentials {
        access_key_id: sim::DEFAULT_KEY_ID.into(),
        access_key_secret: crate::api::secret::Secret::new(sim::DEFAULT_KEY_SECRET),
        security_token: None,
        source: "the demo simulator's built-in key".into(),
    };
    let target = ApiTarget::with_credentials(&api, credentials, "cn-shanghai".into())?;
    let settings = RunSettings {
        input: InputSource::Path("inputs/demo-image-ids.csv".into()),
        compare_with: None,
        out: a.out.clone(),
        force: true,
        audit: AuditSettings {
            api: engine::ApiMode::Single,
            qps: NonZeroU32::new(240).expect("non-zero"),
            rate_mode: crate::run::rate::RateMode::Fixed,
            burst: NonZeroU32::new(engine::DEFAULT_BURST).expect("non-zero"),
            concurrency: 32,
            retry: RetryPolicy::default(),
            max_failures: None,
            down_after: engine::DEFAULT_DOWN_AFTER,
        },
        formats: vec![ReportFormat::Csv, ReportFormat::Json, ReportFormat::Html],
        progress: a.progress,
        quiet: false,
        argv,
    };
    println!(
        "demo: simulator on http://{addr}/ with {} images, a quota of 200 calls/s, 2% 500s, 1% 503s, 0.5% dropped connections",
        sim.config().catalog.len()
    );
    println!("demo: auditing inputs/demo-image-ids.csv at 240 calls/s (above the quota, so throttling shows)");
    let stop = StopHandle::default();
    spawn_signal_listener(stop.clone());
    let code = run_audit(&settings, ids, target, stop).await?;
    shutdown.cancel();
    let _ = server.await;
    let stats = sim.stats();
    print_demo_summary(&settings.out, &stats)?;
    Ok(code)
}

fn print_demo_summary(out: &Path, stats: &sim::Stats) -> anyhow::Result<()> {
    let summary: Summary = serde_json::from_slice(&std::fs::read(out.join(report::SUMMARY_JSON))?)?;
    let t = &summary.totals;
    println!();
    println!(
        "reports in {}/: summary.html images.csv images.jsonl summary.csv summary.json rejected.csv manifest.json",
        out.display()
    );
    println!(
        "open {}/summary.html in a browser; check the files with: vod-image-audit verify {}",
        out.display(),
        out.display()
    );
    println!();
    println!("{:<28}{:>8}", "input rows", t.input_rows);
    println!("{:<28}{:>8}", "  unique ids", t.unique_ids);
    println!("{:<28}{:>8}", "  duplicates", t.duplicates);
    println!("{:<28}{:>8}", "  rejected (rejected.csv)", t.invalid);
    println!("{:<28}{:>8}", "found", t.found);
    println!("{:<28}{:>8}", "missing (NoSuchResource)", t.missing);
    println!("{:<28}{:>8}", "failed", t.failed);
    println!();
    println!("AuditStatus of found images:");
    for (k, v) in &summary.by_audit_status {
        println!("  {k:<26}{v:>8}");
    }
    println!("Status of found images:");
    for (k, v) in &summary.by_status {
        println!("  {k:<26}{v:>8}");
    }
    println!("Categories (images / blocked):");
    for c in &summary.by_category {
        let name = c.cate_name.as_deref().unwrap_or("(uncategorized)").replace('\n', "\\n");
        println!("  {:<26}{:>8}{:>8}", name, c.images, c.blocked);
    }
    println!();
    println!("simulator answers by code:");
    for (k, v) in &stats.by_code {
        println!("  {k:<26}{v:>8}");
    }
    let twice = stats.answers_by_image.values().filter(|n| **n > 1).count();
    println!("ids answered more than once: {twice}");
    Ok(())
}
