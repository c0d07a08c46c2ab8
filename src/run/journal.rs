//! The run journal: every settled outcome appended as one JSON line, so a
//! crashed, killed or interrupted run resumes without calling an id twice.
//! A line is the id's report record exactly as `images.jsonl` holds it, so
//! the reports copy lines instead of decoding and encoding them again.
//!
//! Owns the journal file format, its header (which input and which
//! configuration it belongs to: [`Pins`]),
//! reading it back with a torn last line tolerated, and durability: each line
//! is written as soon as the recorder thread is free, after at most
//! [`LINGER`] of waiting for the lines settling with it, all in one `write`
//! call (so it survives the process being killed; a kill loses only the
//! lines not yet written, and those ids are called again on resume),
//! and the file is fsynced at least every [`SYNC_EVERY`] (so a power loss
//! costs at most that much re-done work). Deciding what to resume is the
//! `run` command's business.
//!
//! The writes happen on a thread of their own ([`Recorder`]), fed by a
//! bounded queue: a disk that stalls holds back at most
//! [`RECORDER_QUEUE`] outcomes, while the calls, the pacer and the timers on
//! the async runtime go on.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::domain::record::ImageRecord;

use crate::rundir::files::{open_private, Private};
pub(crate) use crate::rundir::JOURNAL as JOURNAL_FILE;

/// The format of the lines, in the header. 1 held the internal outcome;
/// 2 holds the report record.
pub(crate) const JOURNAL_FORMAT: u32 = 2;

/// Longest time a settled outcome may sit in the page cache before an
/// fsync: what a power loss can cost, in calls to redo.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Outcomes that may wait for the recorder thread: about 1.5 MB of records,
/// a minute of calls at 100 calls/s. When it is full the audit's consumer
/// waits, so new calls wait too and memory stays flat.
pub(crate) const RECORDER_QUEUE: usize = 4096;

/// Most outcomes the recorder writes with one `write` call: the ones that
/// queued while it wrote the last (about 250 KB at most).
pub(crate) const RECORDER_BATCH: usize = 256;

/// How long the recorder, woken by an outcome, waits for the ones settling
/// with it before it writes them all. The calls of one release tick answer
/// within a few milliseconds of each other, and unpaced ones settle a few
/// a millisecond: without it the recorder thread is woken (a futex call on
/// the runtime thread, a switch on its own) and writes for every few
/// outcomes. It is all a killed run can lose beyond what was in flight,
/// and those ids are called again on resume.
pub(crate) const LINGER: Duration = Duration::from_millis(5);

#[derive(Serialize, Deserialize)]
struct Header {
    vod_image_audit_journal: u32,
    #[serde(flatten)]
    pins: Pins,
}

/// What changes the meaning of an answer, pinned by the journal's header:
/// a run directory belongs to one of each, so a resume with another is
/// refused rather than mixing answers of two servers or accounts in one
/// report. `None`: not known (the account when `GetCallerIdentity`
/// failed) or not recorded (a journal written before these were pinned);
/// an unknown value matches anything, since nothing says it differs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pins {
    pub input_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_source: Option<String>,
}

impl Pins {
    /// Pins of the input alone (the rest unknown).
    #[cfg(test)]
    pub(crate) fn for_input(input_sha256: &str) -> Self {
        Pins { input_sha256: input_sha256.to_owned(), ..Pins::default() }
    }

    /// How `self` (the journal's) differs from `now` (this run's), besides
    /// the input: `endpoint http://a/ (now http://b/)`, one a field that
    /// both know and that differs. None of them is a secret.
    pub(crate) fn differences(&self, now: &Pins) -> Vec<String> {
        let fields = [
            ("endpoint", &self.endpoint, &now.endpoint),
            ("region", &self.region, &now.region),
            ("account", &self.account, &now.account),
            ("api", &self.api, &now.api),
            ("audit source", &self.audit_source, &now.audit_source),
        ];
        fields
            .into_iter()
            .filter_map(|(what, old, new)| match (old, new) {
                (Some(old), Some(new)) if old != new => Some(format!("{what} {old} (now {new})")),
                _ => None,
            })
            .collect()
    }
}

/// The pins of the journal in `dir`, if it has a header that can be read.
pub(crate) fn read_pins(dir: &Path) -> Option<Pins> {
    let file = File::open(dir.join(JOURNAL_FILE)).ok()?;
    let mut line = Vec::new();
    BufReader::new(file).read_until(b'\n', &mut line).ok()?;
    serde_json::from_slice::<Header>(&line).ok().map(|h| h.pins)
}

/// Why a journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path} belongs to another input (SHA-256 {theirs}, this input is {ours}): resume with the same input, choose another --out, or pass --force to start the run over")]
    OtherInput { path: String, theirs: String, ours: String },
    #[error("{path} belongs to a run of another configuration: {differences}; resume with the same settings, choose another --out, or pass --force to start the run over")]
    OtherConfig { path: String, differences: String },
    #[error("{path}: line {line} is damaged ({reason}); it is not the last line, so this is not a torn write: move the file away to start the run over")]
    Damaged { path: String, line: u64, reason: String },
    #[error("{path} was written by another version of vod-image-audit (journal format {theirs}, this version writes {ours}): finish that run with the version that started it, or move the file away to start the run over")]
    OtherFormat { path: String, theirs: u32, ours: u32 },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

/// An open journal, appending.
pub(crate) struct Journal {
    file: File,
    /// Bytes of whole lines written: a failed write is cut back to this.
    len: u64,
    path: PathBuf,
    last_sync: Instant,
    dirty: bool,
}

/// What an existing journal held.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Outcomes read back.
    pub count: usize,
    /// A torn last line was found and cut off.
    pub torn: bool,
    /// `force`: the journal belonged to another input or configuration and
    /// was emptied; why.
    pub restarted: Option<String>,
}

impl Journal {
    /// Opens the journal in `dir` for a run with these `pins`, creating it
    /// if absent; hands each outcome it already holds to `seen` (so they
    /// need not all be in memory at once). A journal of another input or
    /// configuration is refused, or with `force` emptied (the run starts
    /// over; [`Recovered::restarted`] says why).
    pub(crate) fn open(
        dir: &Path,
        pins: &Pins,
        force: bool,
        mut seen: impl FnMut(ImageRecord),
    ) -> Result<(Journal, Recovered), JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let shown = path.display().to_string();
        let io_err = |e: io::Error| JournalError::Io { path: shown.clone(), reason: e.to_string() };
        let mut file = open_private(dir, JOURNAL_FILE, Private::Append).map_err(io_err)?;
        let mut recovered = Recovered::default();
        let len = file.metadata().map_err(io_err)?.len();
        if len == 0 {
            write_header(&mut file, pins).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        } else {
            let read = read_back(&mut file, &shown, pins, &mut |o| {
                recovered.count += 1;
                seen(o)
            });
            let good_end = match read {
                Err(e @ (JournalError::OtherInput { .. } | JournalError::OtherConfig { .. })) if force => {
                    // The header is the first line: nothing was handed to `seen`.
                    recovered.restarted = Some(e.to_string());
                    file.set_len(0).map_err(io_err)?;
                    write_header(&mut file, pins).map_err(io_err)?;
                    file.sync_all().map_err(io_err)?;
                    None
                }
                other => Some(other?),
            };
            if let Some(good_end) = good_end.filter(|&end| end < len) {
                recovered.torn = true;
                file.set_len(good_end).map_err(io_err)?;
                if good_end == 0 {
                    // Not even the header survived: begin again.
                    write_header(&mut file, pins).map_err(io_err)?;
                }
                file.sync_all().map_err(io_err)?;
            }
        }
        let len = file.seek(SeekFrom::End(0)).map_err(io_err)?;
        Ok((Journal { file, len, path, last_sync: Instant::now(), dirty: false }, recovered))
    }

    /// Appends one settled outcome with a single write; fsyncs when the
    /// last sync is older than [`SYNC_EVERY`].
    pub(crate) fn append(&mut self, record: &ImageRecord) -> io::Result<()> {
        let mut line = Vec::with_capacity(1024);
        record.write_line(&mut line)?;
        self.append_lines(&line)
    }

    /// Appends whole journal lines (each ending in `\n`) with a single
    /// write, all or none of them; fsyncs when the last sync is older than
    /// [`SYNC_EVERY`].
    pub(crate) fn append_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        if let Err(e) = self.file.write_all(lines) {
            // Leave no torn line behind (a full disk, a file size limit),
            // and none of the batch: the caller keeps them all elsewhere.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += lines.len() as u64;
        self.dirty = true;
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Where the recorder writes settled outcomes: the [`Journal`], or a test
/// double.
pub(crate) trait Store: Send + 'static {
    /// Appends whole journal lines (each ending in `\n`), all of them or
    /// (on an error) none.
    fn append_lines(&mut self, lines: &[u8]) -> io::Result<()>;
    /// Makes everything appended durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Where it is, for messages.
    fn shown(&self) -> String;
}

impl Store for Journal {
    fn append_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        Journal::append_lines(self, lines)
    }

    fn sync(&mut self) -> io::Result<()> {
        Journal::sync(self)
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

/// Settled outcomes as journal lines, for the [`Recorder`]. They are
/// serialized on the thread that settled them, while the record is still in
/// its cache and its strings go back to that thread's allocator cache; the
/// recorder thread only copies bytes.
#[derive(Default)]
pub(crate) struct Lines {
    /// Journaled (and spilled if the journal cannot take them).
    settled: Vec<u8>,
    /// Cut short by a stop: reported but not journaled, so that a resumed
    /// run calls the ids again.
    cut_short: Vec<u8>,
    count: usize,
}

impl Lines {
    /// Room for about `outcomes` lines of a kilobyte.
    pub(crate) fn with_capacity(outcomes: usize) -> Self {
        Lines { settled: Vec::with_capacity(outcomes * 1024), ..Lines::default() }
    }

    /// Adds an outcome's line; `cut_short` ones go to the spill file only.
    pub(crate) fn push(&mut self, record: &ImageRecord, cut_short: bool) -> io::Result<()> {
        let to = if cut_short { &mut self.cut_short } else { &mut self.settled };
        let end = to.len();
        if let Err(e) = record.write_line(to) {
            to.truncate(end);
            return Err(e);
        }
        self.count += 1;
        Ok(())
    }

    /// Whether it holds no outcome.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Closes the recorder's queue room when its thread ends, however it ends,
/// so that a caller waiting for room is told instead of waiting for ever.
struct CloseOnDrop(std::sync::Arc<tokio::sync::Semaphore>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The journal and the spill file of outcomes cut short, written on a
/// thread of their own. Outcomes are handed over with
/// [`Recorder::record`]; the first write error is kept and handed back to
/// every later caller, which stops the run.
pub(crate) struct Recorder<S: Store = Journal> {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Lines>>,
    /// Room in the queue, in outcomes: [`RECORDER_QUEUE`] at most wait.
    room: std::sync::Arc<tokio::sync::Semaphore>,
    thread: Option<std::thread::JoinHandle<io::Result<S>>>,
    failed: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl<S: Store> Recorder<S> {
    /// Starts the thread; `spill` is the already created spill file, shown
    /// in messages as `spill_path`.
    pub(crate) fn start(journal: S, spill: File, spill_path: PathBuf) -> io::Result<Self> {
        Self::start_lingering(journal, spill, spill_path, || std::thread::sleep(LINGER))
    }

    /// [`Recorder::start`], with `linger` for the thread's wait of
    /// [`LINGER`] after an outcome wakes it: a test stands a gate there.
    fn start_lingering(
        mut journal: S,
        spill: File,
        spill_path: PathBuf,
        mut linger: impl FnMut() + Send + 'static,
    ) -> io::Result<Self> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Lines>();
        let room = std::sync::Arc::new(tokio::sync::Semaphore::new(RECORDER_QUEUE));
        let failed = std::sync::Arc::new(std::sync::OnceLock::new());
        let fail = failed.clone();
        let freed = room.clone();
        let thread = std::thread::Builder::new().name("journal".into()).spawn(move || {
            let _close = CloseOnDrop(freed.clone());
            let mut spill = io::BufWriter::new(spill);
            let spill_err = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", spill_path.display()));
            let mut spill_lines = |lines: &[u8]| {
                spill.write_all(lines).map_err(|e| {
                    let e = spill_err(e);
                    let _ = fail.set(with_advice(e.to_string(), &e));
                    e
                })
            };
            let mut batch: Vec<u8> = Vec::with_capacity(RECORDER_BATCH * 1024);
            let mut behind = false;
            while let Some(first) = rx.blocking_recv() {
                // What settles within LINGER of this one, and what queued
                // while the last batch was written, goes in one write with
                // it: one wake-up and one system call for them all. Sleeping
                // rather than waiting on the queue, the thread is not woken
                // by each hand-over. A full batch means it is behind: no
                // sleep then.
                if !behind {
                    linger();
                }
                let mut taken = 0;
                let mut next = Some(first);
                while let Some(lines) = next.take() {
                    if !lines.cut_short.is_empty() {
                        spill_lines(&lines.cut_short)?;
                    }
                    batch.extend_from_slice(&lines.settled);
                    taken += lines.count;
                    freed.add_permits(lines.count.min(RECORDER_QUEUE));
                    if taken < RECORDER_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                behind = taken >= RECORDER_BATCH;
                if batch.is_empty() {
                    continue;
                }
                if let Err(e) = journal.append_lines(&batch) {
                    // The run stops: said at once, so that no more calls
                    // start while what fits is saved. A batch that does not
                    // fit (a full disk, a file size limit) left nothing
                    // behind; its outcomes go one by one, as many as fit, so
                    // no more is lost than without batching. The rest are
                    // still reported (and called again on a resume).
                    let _ = fail.set(with_advice(format!("{}: {e}", journal.shown()), &e));
                    for line in batch.split_inclusive(|&b| b == b'\n') {
                        if journal.append_lines(line).is_err() {
                            spill_lines(line)?;
                        }
                    }
                }
                batch.clear();
            }
            spill.flush().map_err(spill_err)?;
            journal.sync().map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", journal.shown())))?;
            Ok(journal)
        })?;
        Ok(Recorder { tx: Some(tx), room, thread: Some(thread), failed })
    }

    /// Hands one outcome to the thread, waiting while its queue is full.
    /// `Err` once any write has failed.
    #[cfg(test)]
    pub(crate) async fn record_one(&self, record: ImageRecord, cut_short: bool) -> Result<(), String> {
        let mut lines = Lines::default();
        lines.push(&record, cut_short).map_err(|e| e.to_string())?;
        self.record(lines).await
    }

    /// Hands outcomes to the thread together, waiting while its queue has
    /// no room for them (up to [`RECORDER_QUEUE`] at a time): the thread is
    /// woken at most once for them. `Err` once any write has failed.
    pub(crate) async fn record(&self, lines: Lines) -> Result<(), String> {
        let tx = self.tx.as_ref().expect("recording before finish");
        let ended = || self.failed.get().cloned().unwrap_or_else(|| "the journal thread ended".into());
        if !lines.is_empty() {
            let need = lines.count.min(RECORDER_QUEUE) as u32;
            match self.room.acquire_many(need).await {
                Ok(permits) => permits.forget(),
                Err(_) => return Err(ended()),
            }
            if tx.send(lines).is_err() {
                return Err(ended());
            }
        }
        match self.failed.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// The first write that failed, if any: the run must stop.
    pub(crate) fn failure(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    /// Waits for every outcome to be written and synced (on a blocking
    /// thread, so the runtime keeps running); returns the store and the
    /// first append that failed, if any (its outcome was spilled instead).
    pub(crate) async fn finish(mut self) -> io::Result<(S, Option<String>)> {
        drop(self.tx.take());
        let thread = self.thread.take().expect("finished once");
        let store = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(io::Error::other)?
            .map_err(|_| io::Error::other("the journal thread panicked"))??;
        Ok((store, self.failed.get().cloned()))
    }
}

/// A write error's message, with what to do when the disk is full.
fn with_advice(message: String, e: &io::Error) -> String {
    match crate::rundir::files::room_advice(e) {
        Some(advice) => format!("{message}; {advice}"),
        None => message,
    }
}

fn write_header(file: &mut File, pins: &Pins) -> io::Result<()> {
    let header = Header { vod_image_audit_journal: JOURNAL_FORMAT, pins: pins.clone() };
    let mut line = serde_json::to_vec(&header)?;
    line.push(b'\n');
    file.write_all(&line)
}

/// Reads every line; returns the byte offset just past the last good line.
/// Only the last line may be bad (a torn write); a bad line followed by more
/// lines is damage, and refused.
fn read_back(
    file: &mut File,
    shown: &str,
    pins: &Pins,
    seen: &mut dyn FnMut(ImageRecord),
) -> Result<u64, JournalError> {
    let io_err = |e: io::Error| JournalError::Io { path: shown.to_owned(), reason: e.to_string() };
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut reader = BufReader::new(&mut *file);
    let mut buf = Vec::new();
    let (mut offset, mut good_end, mut line_no) = (0u64, 0u64, 0u64);
    let mut bad: Option<(u64, String)> = None;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        offset += n as u64;
        if let Some((line, reason)) = bad.take() {
            return Err(JournalError::Damaged { path: shown.to_owned(), line, reason });
        }
        if buf.last() != Some(&b'\n') {
            bad = Some((line_no, "no line end".to_owned()));
            continue;
        }
        let parsed = if line_no == 1 {
            match serde_json::from_slice::<Header>(&buf) {
                Ok(h) if h.vod_image_audit_journal != JOURNAL_FORMAT => {
                    return Err(JournalError::OtherFormat {
                        path: shown.to_owned(),
                        theirs: h.vod_image_audit_journal,
                        ours: JOURNAL_FORMAT,
                    })
                }
                Ok(h) if h.pins.input_sha256 != pins.input_sha256 => {
                    return Err(JournalError::OtherInput {
                        path: shown.to_owned(),
                        theirs: h.pins.input_sha256,
                        ours: pins.input_sha256.clone(),
                    })
                }
                Ok(h) if !h.pins.differences(pins).is_empty() => {
                    return Err(JournalError::OtherConfig {
                        path: shown.to_owned(),
                        differences: h.pins.differences(pins).join(", "),
                    })
                }
                Ok(_) => Ok(()),
                Err(e) => Err(format!("not a journal header: {e}")),
            }
        } else {
            serde_json::from_slice::<ImageRecord>(&buf).map(&mut *seen).map_err(|e| e.to_string())
        };
        match parsed {
            Ok(()) => good_end = offset,
            Err(reason) => bad = Some((line_no, reason)),
        }
    }
    Ok(good_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose first append blocks until the test opens the gate: a
    /// disk that stalls.
    struct Stalled {
        gate: Option<std::sync::mpsc::Receiver<()>>,
        appended: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Store for Stalled {
        fn append_lines(&mut self, lines: &[u8]) -> io::Result<()> {
            if let Some(gate) = self.gate.take() {
                let _ = gate.recv();
            }
            let records = lines.iter().filter(|&&b| b == b'\n').count();
            self.appended.fetch_add(records, std::sync::atomic::Ordering::SeqCst);
            self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn shown(&self) -> String {
            "stalled".into()
        }
    }

    /// A full disk: refuses every write, the first only once the gate (if
    /// any) opens, so that a test can stall it first; says on `entered`
    /// when the first write has begun.
    struct Full(Option<(std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>)>);

    impl Store for Full {
        fn append_lines(&mut self, _: &[u8]) -> io::Result<()> {
            if let Some((gate, entered)) = self.0.take() {
                let _ = entered.send(());
                let _ = gate.recv();
            }
            Err(io::Error::other("No space left on device"))
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn shown(&self) -> String {
            "journal.jsonl".into()
        }
    }

    fn record(id: &str) -> ImageRecord {
        crate::run::outcome::Outcome::missing(id.into(), 1, None).record()
    }

    /// While a journal write is stuck, outcomes keep being taken (up to the
    /// queue) and the runtime keeps running: the calls are not held up by
    /// the disk.
    #[test]
    fn a_stalled_journal_write_does_not_block_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let spill_path = dir.path().join("spill");
        let (open, gate) = std::sync::mpsc::channel();
        let appended = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let store = Stalled { gate: Some(gate), appended: appended.clone(), writes: writes.clone() };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let recorder = Recorder::start(store, File::create(&spill_path).unwrap(), spill_path.clone()).unwrap();
            let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let ticker = {
                let ticks = ticks.clone();
                tokio::spawn(async move {
                    loop {
                        ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::task::yield_now().await;
                    }
                })
            };
            let n = 1000;
            assert!(n < RECORDER_QUEUE);
            for i in 0..n {
                recorder.record_one(record(&format!("{i:032x}")), false).await.unwrap();
                tokio::task::yield_now().await;
            }
            // Every outcome was taken, and the other task ran, while the
            // first write is still stuck.
            assert_eq!(appended.load(std::sync::atomic::Ordering::SeqCst), 0, "the gate is still shut");
            assert!(ticks.load(std::sync::atomic::Ordering::SeqCst) >= n, "the runtime was held up");
            open.send(()).unwrap();
            let (_, failed) = recorder.finish().await.unwrap();
            assert_eq!(failed, None);
            assert_eq!(appended.load(std::sync::atomic::Ordering::SeqCst), n);
            // What queued behind the stuck write went in batches of up to
            // RECORDER_BATCH, not in a write each.
            let writes = writes.load(std::sync::atomic::Ordering::SeqCst);
            assert!(writes <= 1 + (n - 1).div_ceil(RECORDER_BATCH) + 1, "{writes} writes for {n} outcomes");
            ticker.abort();
        });
    }

    /// Outcomes that trickle in one at a time, as an unpaced run's do,
    /// while the recorder lingers after the first, are written together
    /// with it: one write, where a recorder that wrote as each came would
    /// make one each. The linger is a gate here, opened once all are in.
    #[test]
    fn outcomes_handed_over_one_at_a_time_are_written_together() {
        let dir = tempfile::tempdir().unwrap();
        let spill_path = dir.path().join("spill");
        let appended = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let store = Stalled { gate: None, appended: appended.clone(), writes: writes.clone() };
        let (lingering, lingers) = std::sync::mpsc::channel();
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let mut first = Some((lingering, gate));
        let linger = move || {
            if let Some((lingering, gate)) = first.take() {
                lingering.send(()).unwrap();
                let _ = gate.recv();
            }
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let n = 100;
        rt.block_on(async {
            let recorder =
                Recorder::start_lingering(store, File::create(&spill_path).unwrap(), spill_path.clone(), linger)
                    .unwrap();
            recorder.record_one(record(&format!("{:032x}", 0)), false).await.unwrap();
            // A bound only so that a recorder that never lingers fails
            // rather than hangs.
            lingers.recv_timeout(Duration::from_secs(20)).expect("the recorder lingers after the first outcome");
            for i in 1..n {
                recorder.record_one(record(&format!("{i:032x}")), false).await.unwrap();
            }
            open.send(()).unwrap();
            let (_, failed) = recorder.finish().await.unwrap();
            assert_eq!(failed, None);
        });
        assert_eq!(appended.load(std::sync::atomic::Ordering::SeqCst), n);
        let writes = writes.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(writes, 1, "{writes} writes for {n} outcomes handed over one by one");
    }

    /// When the recorder thread ends early (the journal refuses every
    /// write and the spill file cannot be written either) while a caller
    /// waits for room in the full queue, the caller is told, and does not
    /// wait for ever.
    #[test]
    fn a_caller_waiting_for_room_is_told_when_the_recorder_thread_ends() {
        let dir = tempfile::tempdir().unwrap();
        let spill_path = dir.path().join("spill");
        std::fs::write(&spill_path, b"").unwrap();
        // Opened for reading: every write to it fails.
        let spill = File::open(&spill_path).unwrap();
        let (open, gate) = std::sync::mpsc::channel();
        let (entered, writing) = std::sync::mpsc::channel();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let recorder = Recorder::start(Full(Some((gate, entered))), spill, spill_path.clone()).unwrap();
            let caller = tokio::time::timeout(Duration::from_secs(20), async {
                for i in 0..(2 * RECORDER_QUEUE) {
                    recorder.record_one(record(&format!("{i:032x}")), false).await?;
                }
                Ok::<_, String>(())
            });
            let opener = async {
                // Once the thread is held in its first write no room comes
                // back, so when the queue is full the caller waits for room.
                let mut held = false;
                while !held || recorder.room.available_permits() > 0 {
                    held = held || writing.try_recv().is_ok();
                    tokio::task::yield_now().await;
                }
                open.send(()).unwrap();
            };
            let (handed, ()) = tokio::join!(caller, opener);
            let handed = handed.expect("a caller waited for room that never came");
            let e = handed.expect_err("the failure reaches the caller");
            assert!(e.contains("journal.jsonl") || e.contains("spill"), "{e}");
            assert!(recorder.finish().await.is_err(), "the thread's own error is handed back");
        });
    }

    /// A batch that does not fit (a full disk here is a file that refuses
    /// writes past a length) leaves no torn line; its outcomes are then
    /// written one by one as long as they fit, so the journal is as full as
    /// without batching, and the rest are spilled for the reports: each
    /// outcome ends in exactly one of the two files.
    #[test]
    fn a_batch_that_does_not_fit_is_journaled_line_by_line_and_the_rest_spilled() {
        /// A journal on a disk with `room` bytes left.
        struct Cramped {
            journal: Journal,
            room: u64,
        }
        impl Store for Cramped {
            fn append_lines(&mut self, lines: &[u8]) -> io::Result<()> {
                if self.journal.len + lines.len() as u64 > self.room {
                    // What a full disk does to a write: part of it lands.
                    self.journal.file.write_all(&lines[..lines.len() / 2])?;
                    let _ = self.journal.file.set_len(self.journal.len);
                    return Err(io::Error::from_raw_os_error(libc::ENOSPC));
                }
                self.journal.append_lines(lines)
            }
            fn sync(&mut self) -> io::Result<()> {
                self.journal.sync()
            }
            fn shown(&self) -> String {
                self.journal.shown()
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), &Pins::for_input("ab"), false, |_| {}).unwrap();
        let spill_path = dir.path().join("spill");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let n = 600;
        let room = journal.len + 40_000;
        rt.block_on(async {
            let store = Cramped { room, journal };
            let recorder = Recorder::start(store, File::create(&spill_path).unwrap(), spill_path.clone()).unwrap();
            for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
                // Handed over 50 at a time, so that batches form.
                let mut lines = Lines::default();
                for i in chunk {
                    lines.push(&record(&format!("{i:032x}")), false).unwrap();
                }
                let _ = recorder.record(lines).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let (_, failed) = recorder.finish().await.unwrap();
            assert!(failed.is_some_and(|e| e.contains("free space")), "a full disk is reported with advice");
        });
        let mut journaled = Vec::new();
        let mut file = File::open(dir.path().join(JOURNAL_FILE)).unwrap();
        let end = read_back(&mut file, "journal", &Pins::for_input("ab"), &mut |r| journaled.push(r.image_id)).unwrap();
        assert_eq!(end, std::fs::metadata(dir.path().join(JOURNAL_FILE)).unwrap().len(), "no torn line");
        // Filled to the last line that fits: the next one would not have.
        let mut next = Vec::new();
        record(&format!("{:032x}", journaled.len())).write_line(&mut next).unwrap();
        assert!(end + next.len() as u64 > room, "{end} bytes journaled of {room}: lines that fit were spilled");
        let spilled: Vec<String> = std::fs::read_to_string(&spill_path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<ImageRecord>(l).unwrap().image_id)
            .collect();
        assert!(
            !journaled.is_empty() && !spilled.is_empty(),
            "{} journaled, {} spilled",
            journaled.len(),
            spilled.len()
        );
        let mut all: Vec<String> = journaled.into_iter().chain(spilled).collect();
        all.sort();
        let want: Vec<String> = (0..n).map(|i| format!("{i:032x}")).collect();
        assert_eq!(all, want, "each outcome in exactly one file");
    }

    #[test]
    fn a_failed_journal_write_is_spilled_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let spill_path = dir.path().join("spill");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let recorder = Recorder::start(Full(None), File::create(&spill_path).unwrap(), spill_path.clone()).unwrap();
            let mut first_error = None;
            for i in 0..50 {
                if let Err(e) = recorder.record_one(record(&format!("{i:032x}")), false).await {
                    first_error.get_or_insert(e);
                }
                tokio::task::yield_now().await;
            }
            let (_, failed) = recorder.finish().await.unwrap();
            let e = first_error.or(failed).expect("the failure reaches the caller");
            assert!(e.contains("journal.jsonl") && e.contains("No space left"), "{e}");
        });
        let spilled = std::fs::read_to_string(&spill_path).unwrap();
        assert_eq!(spilled.lines().count(), 50, "every outcome is kept for the reports");
    }
    use crate::api::model::ImageInfo;
    use crate::run::outcome::{FailureInfo, Outcome};

    fn outcomes() -> Vec<ImageRecord> {
        let info = ImageInfo { title: Some("a,\"b\"\n封".into()), cate_id: Some(3), ..Default::default() };
        vec![
            Outcome::found("a".into(), info, 1, Some("r1".into())),
            Outcome::missing("b".into(), 2, Some("r2".into())),
            Outcome::failed(
                "c".into(),
                5,
                FailureInfo {
                    code: "InternalError".into(),
                    message: "m".into(),
                    http_status: Some(500),
                    request_id: None,
                },
            ),
        ]
        .into_iter()
        .map(Outcome::record)
        .collect()
    }

    fn open(dir: &Path, sha: &str) -> Result<(Journal, Vec<ImageRecord>, bool), JournalError> {
        let mut got = Vec::new();
        let (j, r) = Journal::open(dir, &Pins::for_input(sha), false, |o| got.push(o))?;
        assert_eq!(r.count, got.len());
        Ok((j, got, r.torn))
    }

    #[test]
    fn round_trips_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, got, _) = open(dir.path(), "abc").unwrap();
        assert!(got.is_empty());
        for o in outcomes() {
            j.append(&o).unwrap();
        }
        drop(j);
        let (_, got, torn) = open(dir.path(), "abc").unwrap();
        assert_eq!(got, outcomes());
        assert!(!torn);
    }

    #[test]
    fn torn_last_line_is_cut_and_appending_continues() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _, _) = open(dir.path(), "abc").unwrap();
        for o in outcomes() {
            j.append(&o).unwrap();
        }
        drop(j);
        let path = dir.path().join(JOURNAL_FILE);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"image_id\":\"d\",\"outc");
        std::fs::write(&path, &text).unwrap();
        let (mut j, got, torn) = open(dir.path(), "abc").unwrap();
        assert!(torn);
        assert_eq!(got.len(), 3);
        j.append(&Outcome::missing("e".into(), 1, None).record()).unwrap();
        drop(j);
        let (_, got, torn) = open(dir.path(), "abc").unwrap();
        assert_eq!(got.len(), 4);
        assert!(!torn);
    }

    #[test]
    fn a_failed_append_leaves_no_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _, _) = open(dir.path(), "abc").unwrap();
        j.append(&outcomes()[0]).unwrap();
        // Make the next write fail: a read-only handle in place of the file.
        let good = std::fs::metadata(j.path()).unwrap().len();
        j.file = File::open(j.path()).unwrap();
        assert!(j.append(&outcomes()[1]).is_err());
        assert_eq!(std::fs::metadata(j.path()).unwrap().len(), good);
    }

    #[test]
    fn other_input_and_damage_in_the_middle_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _, _) = open(dir.path(), "abc").unwrap();
        for o in outcomes() {
            j.append(&o).unwrap();
        }
        drop(j);
        let e = open(dir.path(), "xyz").err().unwrap();
        assert!(matches!(e, JournalError::OtherInput { .. }), "{e}");
        let path = dir.path().join(JOURNAL_FILE);
        let text = std::fs::read_to_string(&path).unwrap().replacen("\"outcome\"", "\"outcame\"", 1);
        std::fs::write(&path, text).unwrap();
        let e = open(dir.path(), "abc").err().unwrap();
        assert!(matches!(e, JournalError::Damaged { line: 2, .. }), "{e}");
    }

    #[test]
    fn a_journal_of_another_format_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let text = "{\"vod_image_audit_journal\":1,\"input_sha256\":\"abc\"}\n{\"image_id\":\"a\",\"kind\":\"missing\",\"info\":null,\"attempts\":1,\"request_id\":null,\"failure\":null}\n";
        std::fs::write(&path, text).unwrap();
        let e = open(dir.path(), "abc").err().unwrap();
        assert!(matches!(e, JournalError::OtherFormat { theirs: 1, ours: JOURNAL_FORMAT, .. }), "{e}");
        assert!(e.to_string().contains("move the file away"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    fn pins(endpoint: &str) -> Pins {
        Pins {
            input_sha256: "abc".into(),
            endpoint: Some(endpoint.into()),
            region: Some("cn-shanghai".into()),
            account: Some("1234".into()),
            api: Some("single".into()),
            audit_source: Some("image-info".into()),
        }
    }

    #[test]
    fn another_configuration_is_refused_naming_the_difference_and_force_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), &pins("http://a/"), false, |_| {}).unwrap();
        j.append(&outcomes()[0]).unwrap();
        drop(j);
        let path = dir.path().join(JOURNAL_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        let e = Journal::open(dir.path(), &pins("http://b/"), false, |_| {}).err().unwrap();
        assert!(matches!(e, JournalError::OtherConfig { .. }), "{e}");
        assert!(e.to_string().contains("endpoint http://a/ (now http://b/)"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "refused untouched");
        // Unknown on either side is no difference.
        let mut unknown = pins("http://a/");
        unknown.account = None;
        let (_, r) = Journal::open(dir.path(), &unknown, false, |_| {}).unwrap();
        assert_eq!(r.count, 1);
        let (_, r) = Journal::open(dir.path(), &pins("http://b/"), true, |_| panic!("nothing read")).unwrap();
        assert!(r.restarted.as_deref().is_some_and(|w| w.contains("endpoint")), "{r:?}");
        let (_, r) = Journal::open(dir.path(), &pins("http://b/"), false, |_| {}).unwrap();
        assert_eq!(r.count, 0, "started over");
    }

    /// A journal written before the configuration was pinned resumes: it
    /// cannot say it differs (see the commit that pinned it).
    #[test]
    fn a_journal_without_pins_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut line = Vec::new();
        outcomes()[0].write_line(&mut line).unwrap();
        let text =
            format!("{{\"vod_image_audit_journal\":2,\"input_sha256\":\"abc\"}}\n{}", String::from_utf8(line).unwrap());
        std::fs::write(&path, text).unwrap();
        let (_, r) = Journal::open(dir.path(), &pins("http://a/"), false, |_| {}).unwrap();
        assert_eq!(r.count, 1);
    }
}
