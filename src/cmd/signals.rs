//! SIGINT and SIGTERM for the life of the process: the first lets the calls
//! in flight finish and the report say so; a second, or any while the
//! reports are written, quits at once (the journal holds every settled id,
//! so the same command resumes). `run` and `list-images` both listen.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::error::Exit;
use crate::run::stop::{StopHandle, StopReason};

/// Where a run is, for the signal handler: while the reports are written a
/// signal quits at once (the journal still holds everything, so the run
/// resumes); before, the first signal lets the calls in flight finish.
#[derive(Clone, Default)]
pub(crate) struct Phase {
    reporting: Arc<AtomicBool>,
    /// The run's lock file, removed by a signal that quits at once.
    lock: Arc<std::sync::OnceLock<PathBuf>>,
}

impl Phase {
    pub(super) fn reporting(&self) {
        self.reporting.store(true, Ordering::SeqCst);
    }

    fn is_reporting(&self) -> bool {
        self.reporting.load(Ordering::SeqCst)
    }

    pub(super) fn holds_lock(&self, path: &std::path::Path) {
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
pub(crate) fn spawn_signal_listener(stop: StopHandle, phase: Phase) {
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
