//! Writing files into the run directory so that a crash never leaves half
//! of one: a temporary file, flushed and fsynced, renamed into place, the
//! directory fsynced; and the size and SHA-256 of each file written, which
//! the manifest lists and `verify` checks.
//!
//! The run directory may be shared (a reports folder on a cron host that
//! other users can write in), so no file is ever opened through a link
//! someone planted there: temporary files get fresh random names and are
//! created exclusively (`O_CREAT|O_EXCL`, which never follows a link), the
//! run's own state (journal, spill, lock) is opened with `O_NOFOLLOW` and
//! mode 0600, and a link where a report is to be renamed into place is
//! refused by name. The directory itself may be a link (users do that).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A written file's name, size and SHA-256, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

struct HashingWriter<W> {
    inner: W,
    hash: super::digest::Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A report's mode before the umask: reports are made to be shared, so
/// they follow the user's umask like any file the user creates.
pub const REPORT_MODE: u32 = 0o666;

/// The mode of the run's own files (journal, spill, lock, sorted runs): they
/// hold signed image URLs or a pid, for no one else to read.
pub const PRIVATE_MODE: u32 = 0o600;

/// What to do about a write that failed for want of room (a full disk, a
/// quota, a file size limit): the journal keeps every settled id, so the
/// run resumes once there is room.
pub fn room_advice(e: &io::Error) -> Option<&'static str> {
    let full =
        matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge)
            || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG));
    full.then_some("the run is resumable: free space and run the same command again")
}

/// How a file of the run's own state is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Private {
    /// Read and append, created if absent (the journal).
    Append,
    /// Read and write, created if absent, not truncated (the lock).
    ReadWrite,
    /// Write, created or emptied (the spill).
    Truncate,
}

/// Opens `dir/name`, a file of the run's own state that holds image data
/// (signed URLs) or a pid: mode 0600, and never through a symbolic link.
pub fn open_private(dir: &Path, name: &str, how: Private) -> io::Result<File> {
    let path = dir.join(name);
    let mut o = OpenOptions::new();
    o.create(true).mode(PRIVATE_MODE).custom_flags(libc::O_NOFOLLOW);
    match how {
        Private::Append => o.read(true).append(true),
        Private::ReadWrite => o.read(true).write(true).truncate(false),
        Private::Truncate => o.write(true).truncate(true),
    };
    let file = o.open(&path).map_err(|e| link_error(&path, e))?;
    // A file left by an earlier version may be 0644: tighten it.
    file.set_permissions(fs::Permissions::from_mode(PRIVATE_MODE))?;
    Ok(file)
}

/// An error about `path`, said plainly when it was a symbolic link.
fn link_error(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        symlink_refused(path)
    } else {
        e
    }
}

fn symlink_refused(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is a symbolic link: vod-image-audit never writes through a link in the output directory (someone else may have planted it); remove it, or choose another --out",
            path.display()
        ),
    )
}

/// Fails if `path` is a symbolic link (a dangling one included).
pub fn refuse_symlink(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(symlink_refused(path)),
        _ => Ok(()),
    }
}

/// Creates a new file in `dir` under a fresh random name that starts with
/// `.{stem}.` and ends with `.tmp`, exclusively: a planted file or link of
/// that name makes it try another, never write through it. `mode` is less
/// the umask: [`REPORT_MODE`] for a report, 0600 for the run's own data.
pub fn create_temp(dir: &Path, stem: &str, mode: u32) -> io::Result<(File, PathBuf)> {
    let mut last = None;
    for _ in 0..16 {
        let path = dir.join(format!(".{stem}.{:016x}.tmp", rand::random::<u64>()));
        match OpenOptions::new().write(true).read(true).create_new(true).mode(mode).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Whether `name` is one of the temporary files the tool makes: one of
/// [`create_temp`]'s (`.{stem}.{16 hex digits}.tmp`) or the spill of
/// outcomes cut short. Strict, so that a file of the user's that merely
/// ends in `.tmp` is never taken (and removed) for one.
pub fn is_temp_name(name: &str) -> bool {
    if name == super::UNSETTLED {
        return true;
    }
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { return false };
    match rest.rsplit_once('.') {
        Some((stem, hex)) => !stem.is_empty() && hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// Removes the tool's temporary files from `dir` (see [`is_temp_name`]):
/// what a run killed while writing leaves. Only regular files, and only by
/// a caller that holds the directory's lock (a live run's are in use).
/// Returns the names removed.
pub fn remove_temp_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_temp_name(&name) && entry.file_type()?.is_file() {
            match fs::remove_file(entry.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => removed.push(name),
            }
        }
    }
    Ok(removed)
}

/// The steps of a run's report phase at which a test build may kill the
/// run: every rename and unlink between the calls and the run's end, in
/// order. `rename X` is the rename of a report file into place (made by
/// [`AtomicFile::commit`] for each name listed here), so every report file
/// but `inventory.csv` (written by the listing, before the report phase)
/// must have one; a unit test holds that, and [`crash_point`] refuses a
/// step not listed, so a new step cannot be forgotten.
pub const CRASH_STEPS: &[&str] = &[
    "rename images.csv",
    "rename changes.csv",
    "rename summary.csv",
    "rename rejected.csv",
    "rename images.jsonl",
    "rename summary.json",
    "rename summary.html",
    "rename audit.xlsx",
    "unlink .unsettled.jsonl.tmp",
    "rename manifest.json",
    "rename manifest.sha256",
    "rename manifest.json.sig",
    "write --metrics-file",
    "unlink inventory.jsonl",
    "unlink journal.awaiting.jsonl",
    "unlink journal.jsonl",
];

/// The environment variable naming the step of [`CRASH_STEPS`] at which a
/// debug build aborts (as `kill -9` would, no destructor run). Read only in
/// builds with debug assertions: a release build has no such point.
pub const CRASH_AT_VAR: &str = "VOD_IMAGE_AUDIT_CRASH_AT";

/// A point where the tests kill the run (see [`CRASH_STEPS`]); nothing in a
/// release build.
#[inline]
pub fn crash_point(step: &str) {
    #[cfg(debug_assertions)]
    {
        assert!(CRASH_STEPS.contains(&step), "crash point {step:?} is not in CRASH_STEPS");
        if std::env::var_os(CRASH_AT_VAR).is_some_and(|v| v == step) {
            std::process::abort();
        }
    }
    let _ = step;
}

/// A file being written atomically: a temporary file, flushed and fsynced,
/// renamed into place, and the directory fsynced on [`AtomicFile::commit`].
/// A crash leaves either the old file or the new one, never half of one;
/// dropping it uncommitted removes the temporary file.
pub struct AtomicFile {
    dir: PathBuf,
    name: String,
    tmp: PathBuf,
    /// Buffered before the hash, so the hash sees large blocks, not the
    /// many small writes of a CSV or JSON encoder.
    writer: Option<BufWriter<HashingWriter<File>>>,
}

impl AtomicFile {
    /// Starts writing `name` in `dir`; a symbolic link at `dir/name` is
    /// refused.
    pub fn create(dir: &Path, name: &str) -> io::Result<Self> {
        refuse_symlink(&dir.join(name))?;
        let (file, tmp) = create_temp(dir, name, REPORT_MODE)?;
        let writer =
            BufWriter::with_capacity(256 * 1024, HashingWriter { inner: file, hash: Default::default(), bytes: 0 });
        Ok(AtomicFile { dir: dir.to_owned(), name: name.to_owned(), tmp, writer: Some(writer) })
    }

    /// Makes it durable and puts it in place; returns its digest.
    pub fn commit(mut self) -> io::Result<FileDigest> {
        let w = self.writer.take().expect("committed once");
        let w = w.into_inner().map_err(|e| e.into_error())?;
        let digest = FileDigest { name: self.name.clone(), bytes: w.bytes, sha256: w.hash.finish_hex() };
        let file = w.inner;
        file.sync_all()?;
        let dest = self.dir.join(&self.name);
        // A link planted while the file was written is refused too (rename
        // would replace the link, not write through it, but say so).
        refuse_symlink(&dest)?;
        let step = format!("rename {}", self.name);
        if CRASH_STEPS.contains(&step.as_str()) {
            crash_point(&step);
        }
        fs::rename(&self.tmp, dest)?;
        sync_dir(&self.dir)?;
        Ok(digest)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `name` in `dir` atomically with one closure (see [`AtomicFile`]).
pub fn write_atomic(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<FileDigest> {
    let mut f = AtomicFile::create(dir, name)?;
    fill(&mut f)?;
    f.commit()
}

/// Fsyncs a directory so a rename in it survives power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    let _ = dir;
    Ok(())
}

/// The SHA-256 and size of a file on disk.
pub fn digest_file(path: &Path) -> io::Result<(u64, String)> {
    let mut w = HashingWriter { inner: io::sink(), hash: super::digest::Sha256::default(), bytes: 0 };
    io::copy(&mut File::open(path)?, &mut w)?;
    Ok((w.bytes, w.hash.finish_hex()))
}

/// Why [`read_small_file`] refused a file.
#[derive(Debug, thiserror::Error)]
pub enum SmallFileError {
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    #[error("not a regular file (a pipe, a device or a directory); give a file")]
    NotRegular,
    #[error("larger than {max} bytes; this is not the file it should be")]
    TooLarge { max: u64 },
}

/// Reads a small file that the user named (a key, a ledger) whole, refusing
/// what could hang or exhaust the run: a FIFO or a device (opened without
/// blocking, then refused by its type) and anything over `max` bytes (read
/// no further than `max + 1`, whatever its size claims). Returns the bytes
/// and the file's metadata.
pub fn read_small_file(path: &Path, max: u64) -> Result<(Vec<u8>, fs::Metadata), SmallFileError> {
    use std::io::Read;
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(SmallFileError::NotRegular);
    }
    let mut bytes = Vec::with_capacity(meta.len().min(max) as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(SmallFileError::TooLarge { max });
    }
    Ok((bytes, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_small_file_refuses_pipes_devices_and_big_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer ever opens it: a blocking open would hang here.
        assert!(matches!(read_small_file(&fifo, 10), Err(SmallFileError::NotRegular)));
        assert!(matches!(read_small_file(Path::new("/dev/zero"), 10), Err(SmallFileError::NotRegular)));
        let big = dir.path().join("big");
        fs::write(&big, [b'x'; 11]).unwrap();
        assert!(matches!(read_small_file(&big, 10), Err(SmallFileError::TooLarge { max: 10 })));
        assert_eq!(read_small_file(&big, 11).unwrap().0.len(), 11);
    }

    #[test]
    fn atomic_write_leaves_no_temp_file_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "x.txt", |w| w.write_all(b"one")).unwrap();
        write_atomic(dir.path(), "x.txt", |w| w.write_all(b"two")).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("x.txt")).unwrap(), "two");
        let err = write_atomic(dir.path(), "x.txt", |_| Err(io::Error::other("disk full")));
        assert!(err.is_err());
        assert_eq!(fs::read_to_string(dir.path().join("x.txt")).unwrap(), "two", "a failed write keeps the old file");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn every_report_file_of_the_report_phase_has_a_crash_step() {
        // inventory.csv is the listing's; notifications.json is written after
        // the run is complete and its journal gone (a kill there loses the
        // delivery record only, never a report, and is not resumed).
        let after = [super::super::INVENTORY_CSV, super::super::NOTIFICATIONS_JSON];
        for name in super::super::REPORT_FILES.iter().filter(|n| !after.contains(n)) {
            assert!(CRASH_STEPS.contains(&format!("rename {name}").as_str()), "{name}");
        }
        for name in
            [super::super::JOURNAL, super::super::AWAITING, super::super::INVENTORY_JOURNAL, super::super::UNSETTLED]
        {
            assert!(CRASH_STEPS.contains(&format!("unlink {name}").as_str()), "{name}");
        }
    }

    #[test]
    fn only_the_tool_s_own_temporary_names_count_as_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let (_, made) = create_temp(dir.path(), "audit.xlsx", PRIVATE_MODE).unwrap();
        let name = made.file_name().unwrap().to_str().unwrap().to_owned();
        fs::remove_file(&made).unwrap();
        assert!(is_temp_name(&name), "{name}");
        assert!(is_temp_name(super::super::UNSETTLED));
        for theirs in [".notes.tmp", "a.0123456789abcdef.tmp", ".x.0123456789abcdeg.tmp", "..0123456789abcdef.tmp"] {
            assert!(!is_temp_name(theirs), "{theirs}");
        }
    }
}
