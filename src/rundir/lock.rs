//! One run per output directory: an OS file lock, so a crashed run never
//! leaves a stale lock behind.
//!
//! Owns the lock file and the message naming the holder. The lock is held
//! for the life of [`RunLock`]; the kernel drops it when the process dies,
//! however it dies.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::LOCK as LOCK_FILE;

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another vod-image-audit run ({holder}) is writing to {dir}: wait for it, or choose another --out")]
    Busy { dir: String, holder: String },
    #[error("cannot lock {path}: {reason}")]
    Io { path: String, reason: String },
}

/// A held lock; released on drop (or by the kernel when the process dies).
#[derive(Debug)]
pub(crate) struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `dir` without waiting.
    ///
    /// The lock file is removed when the lock is dropped, so a finished run
    /// leaves none behind. That opens a race, closed here: a second process
    /// may open the file just before the first removes it, then lock the
    /// removed file while a third creates and locks a new one. So a lock
    /// counts only if the name still leads to the file that was locked;
    /// otherwise it is taken again on the file the name now holds.
    pub(crate) fn acquire(dir: &Path) -> Result<RunLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |e: std::io::Error| LockError::Io { path: path.display().to_string(), reason: e.to_string() };
        for _ in 0..100 {
            let file = Self::try_once(dir, &path)?;
            let locked = file.metadata().map_err(io)?;
            match std::fs::symlink_metadata(&path) {
                Ok(now) if now.dev() == locked.dev() && now.ino() == locked.ino() => {
                    return Self::claim(file, path.clone()).map_err(io)
                }
                // Removed or replaced since it was opened: try again.
                _ => continue,
            }
        }
        Err(io(std::io::Error::other("the lock file keeps being replaced")))
    }

    fn try_once(dir: &Path, path: &Path) -> Result<File, LockError> {
        let io = |e: std::io::Error| LockError::Io { path: path.display().to_string(), reason: e.to_string() };
        let mut file = super::files::open_private(dir, LOCK_FILE, super::files::Private::ReadWrite).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "pid unknown".to_owned() } else { holder.to_owned() };
                return Err(LockError::Busy { dir: dir.display().to_string(), holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        Ok(file)
    }

    fn claim(mut file: File, path: PathBuf) -> std::io::Result<RunLock> {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        write!(file, "pid {}", std::process::id())?;
        Ok(RunLock { file, path })
    }

    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still held, so no one can take the old file's lock
        // after it is gone and believe it (see `acquire`).
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let e = RunLock::acquire(dir.path()).unwrap_err();
        assert!(e.to_string().contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        assert!(!dir.path().join(LOCK_FILE).exists(), "a released lock leaves no file");
        RunLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_lock_on_a_removed_file_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        // Someone opened the old file before the holder removed it.
        let first = RunLock::acquire(dir.path()).unwrap();
        let stale = std::fs::File::open(dir.path().join(LOCK_FILE)).unwrap();
        drop(first);
        stale.try_lock().unwrap();
        // The stale file's lock does not keep the directory: a new run takes
        // the lock of the file the name holds now, and a third is refused.
        let second = RunLock::acquire(dir.path()).unwrap();
        assert!(RunLock::acquire(dir.path()).is_err());
        drop(second);
        drop(stale);
    }
}
