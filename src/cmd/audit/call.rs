//! The calls: every id not settled yet, through the engine, each outcome
//! shown on the progress display and handed to the journal thread, which
//! writes it beside the calls so a slow disk never stalls them.

use std::sync::Arc;

use super::super::error::CmdError;
use super::super::progress::Progress;
use super::super::settings::RunSettings;
use super::announce;
use super::resume::Resumed;
use crate::api::client::VodClient;
use crate::run::awaiting::AwaitingLog;
use crate::run::counters::Counters;
use crate::run::engine::{self, Sink};
use crate::run::input::IdList;
use crate::run::journal::{Journal, Lines, Recorder};
use crate::run::outcome::Outcome;
use crate::run::stop::{StopHandle, StopReason};
use crate::rundir::files::{open_private, Private};
use crate::rundir::manifest::RetryOf;
use crate::rundir::{self, RunDir};

/// What the calls leave for the reports and the manifest.
pub(super) struct Called {
    pub journal: Journal,
    pub counters: Arc<Counters>,
    pub endpoint: String,
    pub resumed: usize,
    pub retry_of: Option<RetryOf>,
}

/// Calls what is left; a journal write that fails stops the run
/// (`StopReason::Storage`) like any other stop.
pub(super) async fn call(
    settings: &RunSettings,
    client: VodClient,
    dir: &RunDir,
    ids: &IdList,
    mut r: Resumed,
    stop: &StopHandle,
) -> Result<Called, CmdError> {
    let todo_count = r.todo_count(ids);
    let counters = Arc::new(Counters::default());
    let mut progress = Progress::new(todo_count as u64, settings.progress, settings.quiet, counters.clone());
    if !progress.is_silent() {
        announce::start(settings, ids, &r, todo_count, client.endpoint().as_str());
    }
    // Outcomes cut short by a stop are reported but not journaled (a resumed
    // run calls those ids again); they wait in this file for the reports.
    let unsettled_path = dir.join(rundir::UNSETTLED);
    let spill = open_private(dir.path(), rundir::UNSETTLED, Private::Truncate)
        .map_err(|e| CmdError::disk(format!("creating {}", unsettled_path.display()), e))?;
    let awaiting = std::mem::take(&mut r.awaiting);
    let recorder = Recorder::start(r.journal, spill, unsettled_path)
        .map_err(|e| CmdError::internal(anyhow::anyhow!("starting the journal thread: {e}")))?;
    progress.start_ticker();
    let mut sink = Settle {
        progress: &mut progress,
        recorder: &recorder,
        held: Lines::with_capacity(engine::HAND_ON_EVERY),
        awaiting: &mut r.awaiting_log,
    };
    let todo = ids.ids.iter().filter(|id| !r.done.contains(&r.fingerprint.of(id))).map(str::to_owned);
    engine::audit(&client, todo, awaiting, &settings.audit, counters.clone(), stop.clone(), &mut sink).await;
    progress.finish();
    drop(r.done);
    let (journal, failed) = recorder.finish().await.map_err(|e| CmdError::disk("finishing the journal", e))?;
    if let Some(e) = failed {
        // Seen here when the last outcomes' writes failed after the calls ended.
        stop.stop(StopReason::Storage(e));
    }
    let endpoint = release(client).await;
    Ok(Called { journal, counters, endpoint, resumed: r.resumed, retry_of: r.retry_of })
}

/// Drops the client so that its connections and their buffers (some 35 KB
/// per call that was in flight) are freed before the reports' sort needs
/// memory, which then reuses theirs: peak memory does not grow with
/// --concurrency. Returns the endpoint, for the report.
async fn release(client: VodClient) -> String {
    let endpoint = client.endpoint().as_str().to_owned();
    drop(client);
    // The connection tasks free their buffers only when next polled, after
    // they see the pool gone: give them a few turns of the runtime.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    endpoint
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
