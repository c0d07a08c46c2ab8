//! One run per output directory: an OS file lock, so a crashed run never
//! leaves a stale lock behind.
//!
//! Owns the lock file and the message naming the holder. The lock is held
//! for the life of [`RunLock`]; the kernel drops it when the process dies,
//! however it dies.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

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
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of `dir` without waiting.
    pub fn acquire(dir: &Path) -> Result<RunLock, LockError> {
        let path = dir.join(LOCK_FILE);
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
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "pid {}", std::process::id()).map_err(io)?;
        Ok(RunLock { _file: file })
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
        RunLock::acquire(dir.path()).unwrap();
    }
}
